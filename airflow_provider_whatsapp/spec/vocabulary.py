"""Every list of values WhatsApp allows: message types, interactive types, template parts, statuses.

The message models, the template checks, the operators and the sandbox read these; none keeps its own
list. Media types and their MIME types are in :data:`.limits.MEDIA_RULES` (they go with sizes).
"""

from __future__ import annotations

from airflow_provider_whatsapp.spec.limits import MEDIA_RULES

# --- messages ------------------------------------------------------------------------------------

#: Media message types (``image``, ``video``, ``audio``, ``document``, ``sticker``).
MEDIA_TYPES: tuple[str, ...] = tuple(MEDIA_RULES)
#: Every ``type`` a ``/messages`` send may have.
MESSAGE_TYPES: tuple[str, ...] = (
    "text",
    "template",
    *MEDIA_TYPES,
    "location",
    "contacts",
    "interactive",
    "reaction",
)
#: Media types that may carry a caption.
CAPTIONED_MEDIA = frozenset({"image", "video", "document"})
#: Media types that may carry a ``filename``.
NAMED_MEDIA = frozenset({"document"})
#: The only ``recipient_type`` the Cloud API sends to.
RECIPIENT_TYPES = ("individual",)

#: Interactive types the provider models field by field (reply buttons, list, call-to-action URL).
MODELLED_INTERACTIVE_TYPES = ("button", "list", "cta_url")
#: Interactive types WhatsApp knows that the provider sends as given (catalogues, flows, requests).
PASSTHROUGH_INTERACTIVE_TYPES = (
    "flow",
    "product",
    "product_list",
    "catalog_message",
    "call_permission_request",
    "location_request_message",
    "address_message",
)
#: Every ``interactive.type``.
INTERACTIVE_TYPES = (*MODELLED_INTERACTIVE_TYPES, *PASSTHROUGH_INTERACTIVE_TYPES)
#: Interactive types whose ``body`` is required (the others may omit it).
INTERACTIVE_TYPES_WITH_BODY = (
    "button",
    "list",
    "cta_url",
    "product_list",
    "catalog_message",
    "location_request_message",
    "address_message",
    "call_permission_request",
)
#: Interactive header types; media headers only on the kinds in INTERACTIVE_MEDIA_HEADER_KINDS.
INTERACTIVE_HEADER_TYPES = ("text", "image", "video", "document")
INTERACTIVE_MEDIA_HEADER_TYPES = ("image", "video", "document")
#: Interactive types whose header may be an image, video or document (Meta's reply-button and
#: call-to-action URL documentation); the others take a text header or none.
INTERACTIVE_MEDIA_HEADER_KINDS = ("button", "cta_url")

#: A contact phone's ``type``.
CONTACT_PHONE_TYPES = ("CELL", "MAIN", "IPHONE", "HOME", "WORK", "MOBILE")
#: A contact email's, URL's and address's ``type``.
CONTACT_ENTRY_TYPES = ("HOME", "WORK")

# --- templates: sending --------------------------------------------------------------------------

#: The parts of a template a send fills (``components[].type``), in the order WhatsApp shows them.
TEMPLATE_SEND_COMPONENT_TYPES = ("header", "body", "button")
#: Parameter types a template send may carry.
TEMPLATE_PARAMETER_TYPES = (
    "text",
    "currency",
    "date_time",
    "image",
    "video",
    "document",
    "location",
    "payload",
)
#: Which parameter types each part takes.
TEMPLATE_PARAMETERS_BY_PART = {
    "header": ("text", "image", "video", "document", "location"),
    "body": ("text", "currency", "date_time"),
}
#: A button component's ``sub_type`` and the one parameter type it takes.
TEMPLATE_BUTTON_PARAMETER = {"quick_reply": "payload", "url": "text", "catalog": "action"}

# --- templates: defining -------------------------------------------------------------------------

TEMPLATE_CATEGORIES = ("AUTHENTICATION", "MARKETING", "UTILITY")
#: Components of a template definition.
TEMPLATE_COMPONENT_TYPES = ("HEADER", "BODY", "FOOTER", "BUTTONS")
TEMPLATE_HEADER_FORMATS = ("TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION")
#: Header formats whose send parameter is a media object.
TEMPLATE_MEDIA_HEADER_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT")
#: Button types a template definition may have.
TEMPLATE_BUTTON_TYPES = (
    "QUICK_REPLY",
    "URL",
    "PHONE_NUMBER",
    "COPY_CODE",
    "OTP",
    "FLOW",
    "CATALOG",
    "MPM",
    "VOICE_CALL",
)
#: Button types whose label (``text``) is required.
TEMPLATE_LABELLED_BUTTONS = frozenset({"QUICK_REPLY", "URL", "PHONE_NUMBER"})
#: How an authentication template's OTP button delivers the code.
TEMPLATE_OTP_TYPES = ("COPY_CODE", "ONE_TAP", "ZERO_TAP")
#: ``parameter_format`` of a template: ``{{1}}`` or ``{{name}}`` placeholders.
TEMPLATE_PARAMETER_FORMATS = ("POSITIONAL", "NAMED")

#: Template review states. A template in a failed state will not become approved by waiting (a deleted
#: one neither); any other state (PENDING, IN_APPEAL...) may still change.
TEMPLATE_APPROVED = "APPROVED"
TEMPLATE_FAILED_STATUSES = frozenset({"REJECTED", "DISABLED", "PAUSED", "PENDING_DELETION", "DELETED"})
TEMPLATE_STATUSES = (
    TEMPLATE_APPROVED,
    "PENDING",
    "IN_APPEAL",
    "LIMIT_EXCEEDED",
    "ARCHIVED",
    *sorted(TEMPLATE_FAILED_STATUSES),
)

# --- conversations -------------------------------------------------------------------------------

#: Delivery statuses a sent message goes through, in order; ``failed`` may come instead of any.
MESSAGE_STATUSES = ("sent", "delivered", "read")
MESSAGE_FAILED_STATUS = "failed"

# --- the Graph API -------------------------------------------------------------------------------

#: ``messaging_product`` of every WhatsApp request.
MESSAGING_PRODUCT = "whatsapp"
