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
RECIPIENT_INDIVIDUAL = "individual"
RECIPIENT_TYPES = (RECIPIENT_INDIVIDUAL,)

#: Interactive types the provider models field by field: reply buttons, a list, a call-to-action URL.
INTERACTIVE_BUTTON = "button"
INTERACTIVE_LIST = "list"
INTERACTIVE_CTA_URL = "cta_url"
MODELLED_INTERACTIVE_TYPES = (INTERACTIVE_BUTTON, INTERACTIVE_LIST, INTERACTIVE_CTA_URL)
#: Interactive types WhatsApp knows that the provider sends as given (catalogues, flows, requests).
PASSTHROUGH_INTERACTIVE_TYPES = (
    "flow",
    "product",
    "product_list",
    "catalog_message",
    "call_permission_request",
    "location_request_message",
    "address_message",
    # Payments (India): Meta's own request examples send these, though its schema's enum omits them.
    "order_details",
    "order_status",
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
    "order_details",
    "order_status",
)
#: ``interactive.action.name`` each interactive type requires (the others have no ``name``).
INTERACTIVE_ACTION_NAMES = {
    "flow": "flow",
    "catalog_message": "catalog_message",
    "call_permission_request": "call_permission_request",
    "location_request_message": "send_location",
    "address_message": "address_message",
}
#: A flow message's ``flow_message_version``, ``flow_action`` and ``mode``.
FLOW_MESSAGE_VERSIONS = ("3",)
FLOW_ACTIONS = ("navigate", "data_exchange")
FLOW_MODES = ("draft", "published")
#: ``typing_indicator.type`` of a read receipt.
TYPING_INDICATOR_TYPES = ("text",)
#: Interactive header types; media headers only on the kinds in INTERACTIVE_MEDIA_HEADER_KINDS.
INTERACTIVE_HEADER_TYPES = ("text", "image", "video", "document")
INTERACTIVE_MEDIA_HEADER_TYPES = ("image", "video", "document")
#: Interactive types whose header may be an image, video or document (Meta's reply-button and
#: call-to-action URL documentation, and its "Send Order Details Message" example, which sends an image
#: header); the others take a text header or none.
INTERACTIVE_MEDIA_HEADER_KINDS = ("button", "cta_url", "order_details")

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
    "action",
    "coupon_code",
)
#: Parameter types whose value is a string (the others carry an object).
TEMPLATE_STRING_PARAMETER_TYPES = ("text", "payload", "coupon_code")
#: Which parameter types each part takes.
TEMPLATE_PARAMETERS_BY_PART = {
    "header": ("text", "image", "video", "document", "location"),
    "body": ("text", "currency", "date_time"),
}
#: A button component's ``sub_type`` and the one parameter type it takes. An ``action`` parameter carries
#: an object the provider passes through (a catalogue's thumbnail, a flow's token and data).
TEMPLATE_BUTTON_PARAMETER = {
    "quick_reply": "payload",
    "url": "text",
    "catalog": "action",
    "mpm": "action",
    "flow": "action",
    "copy_code": "coupon_code",
}
#: The ``sub_type`` a send gives the button component of each template button type (an authentication
#: template's OTP button takes the code as a ``url`` button).
TEMPLATE_BUTTON_SUB_TYPES = {
    "QUICK_REPLY": "quick_reply",
    "URL": "url",
    "OTP": "url",
    "COPY_CODE": "copy_code",
    "FLOW": "flow",
    "CATALOG": "catalog",
    "MPM": "mpm",
}

# --- templates: defining -------------------------------------------------------------------------

#: Authentication templates (one-time codes) differ: Meta writes their body, and they carry an OTP button.
TEMPLATE_AUTHENTICATION = "AUTHENTICATION"
TEMPLATE_CATEGORIES = (TEMPLATE_AUTHENTICATION, "MARKETING", "UTILITY")
#: Components of a template definition.
TEMPLATE_COMPONENT_TYPES = ("HEADER", "BODY", "FOOTER", "BUTTONS")
TEMPLATE_HEADER_FORMATS = ("TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION")
#: Header formats whose send parameter is a media object.
TEMPLATE_MEDIA_HEADER_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT")
#: Button types the definition checks name: a URL (with at most one trailing placeholder), a phone
#: number to call, and an authentication template's one-time-code button.
TEMPLATE_BUTTON_URL = "URL"
TEMPLATE_BUTTON_PHONE_NUMBER = "PHONE_NUMBER"
TEMPLATE_BUTTON_OTP = "OTP"
TEMPLATE_BUTTON_QUICK_REPLY = "QUICK_REPLY"
#: Button types a template definition may have.
TEMPLATE_BUTTON_TYPES = (
    TEMPLATE_BUTTON_QUICK_REPLY,
    TEMPLATE_BUTTON_URL,
    TEMPLATE_BUTTON_PHONE_NUMBER,
    "COPY_CODE",
    TEMPLATE_BUTTON_OTP,
    "FLOW",
    "CATALOG",
    "MPM",
    "VOICE_CALL",
)
#: Button types whose label (``text``) is required.
TEMPLATE_LABELLED_BUTTONS = frozenset(
    {TEMPLATE_BUTTON_QUICK_REPLY, TEMPLATE_BUTTON_URL, TEMPLATE_BUTTON_PHONE_NUMBER}
)
#: How an authentication template's OTP button delivers the code.
TEMPLATE_OTP_TYPES = ("COPY_CODE", "ONE_TAP", "ZERO_TAP")
#: Template buttons a send must always fill: the OTP button (the code) and a coupon's copy-code button.
#: (A URL button needs its parameter only when its URL ends in a placeholder.)
TEMPLATE_BUTTONS_ALWAYS_FILLED = ("OTP", "COPY_CODE")
#: OTP buttons that open an app, and so need the app's ``package_name`` and ``signature_hash``.
TEMPLATE_OTP_APP_TYPES = ("ONE_TAP", "ZERO_TAP")
#: What an authentication template's body says (WhatsApp writes it; the code is the one parameter).
AUTHENTICATION_BODY_TEXT = "{{1}} is your verification code."
#: ``parameter_format`` of a template: ``{{1}}`` or ``{{name}}`` placeholders.
TEMPLATE_POSITIONAL = "POSITIONAL"
TEMPLATE_NAMED = "NAMED"
TEMPLATE_PARAMETER_FORMATS = (TEMPLATE_POSITIONAL, TEMPLATE_NAMED)
#: A template's fields as the template list returns them (``fields=`` picks among them).
TEMPLATE_FIELDS = (
    "id",
    "name",
    "language",
    "status",
    "category",
    "components",
    "parameter_format",
    "rejected_reason",
)

#: Template review states. A template in a failed state will not become approved by waiting (a deleted
#: one neither); any other state (PENDING, IN_APPEAL...) may still change.
TEMPLATE_APPROVED = "APPROVED"
#: A new or edited template, in review.
TEMPLATE_PENDING = "PENDING"
TEMPLATE_REJECTED = "REJECTED"
TEMPLATE_PAUSED = "PAUSED"
TEMPLATE_FAILED_STATUSES = frozenset(
    {TEMPLATE_REJECTED, "DISABLED", TEMPLATE_PAUSED, "PENDING_DELETION", "DELETED"}
)
#: What to do about a template in a failed state (the states a user can act on).
TEMPLATE_FAILED_STATUS_ADVICE = {
    "REJECTED": "fix the definition (or appeal in WhatsApp Manager) and create it again",
    "PAUSED": "Meta paused it after poor quality feedback; see WhatsApp Manager",
    "DISABLED": "Meta disabled it after repeated quality problems",
}
TEMPLATE_STATUSES = (
    TEMPLATE_APPROVED,
    TEMPLATE_PENDING,
    "IN_APPEAL",
    "LIMIT_EXCEEDED",
    "ARCHIVED",
    *sorted(TEMPLATE_FAILED_STATUSES),
)

# --- conversations -------------------------------------------------------------------------------

#: Delivery statuses a sent message goes through, in order; ``failed`` may come instead of any.
MESSAGE_STATUSES = ("sent", "delivered", "read")
MESSAGE_FAILED_STATUS = "failed"

# --- webhooks (inbound) ---------------------------------------------------------------------------

#: ``object`` of every WhatsApp Business webhook delivery.
WEBHOOK_OBJECT = "whatsapp_business_account"
#: The subscribed ``field`` that carries inbound messages and the statuses of sent ones (the others,
#: group and template events, are not modelled).
WEBHOOK_MESSAGES_FIELD = "messages"
#: Query parameters of Meta's verification request (a GET on the callback URL).
HUB_MODE = "hub.mode"
HUB_VERIFY_TOKEN = "hub.verify_token"
HUB_CHALLENGE = "hub.challenge"
#: ``hub.mode`` of a subscription request.
HUB_MODE_SUBSCRIBE = "subscribe"
#: The header carrying the HMAC-SHA256 of the raw body, keyed by the app secret, and its value's prefix.
SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_PREFIX = "sha256="
#: Inbound message types that answer a message: a template's quick-reply button, an interactive reply.
INBOUND_BUTTON = "button"
INBOUND_INTERACTIVE = "interactive"
INBOUND_TEXT = "text"
INBOUND_REACTION = "reaction"
#: ``interactive.type`` of an inbound interactive reply: a reply-button tap, a list row choice.
REPLY_BUTTON = "button_reply"
REPLY_LIST = "list_reply"
REPLY_KINDS = (REPLY_BUTTON, REPLY_LIST)

# --- webhooks: the sandbox's names for the same facts, and what only the sandbox sends --------------

#: The query parameters of Meta's verification request (a GET to the callback URL), and the mode it sends.
WEBHOOK_MODE_PARAM = HUB_MODE
WEBHOOK_VERIFY_TOKEN_PARAM = HUB_VERIFY_TOKEN
WEBHOOK_CHALLENGE_PARAM = HUB_CHALLENGE
WEBHOOK_SUBSCRIBE_MODE = HUB_MODE_SUBSCRIBE
#: The header carrying ``sha256=<hex HMAC-SHA256 of the raw body, keyed with the app secret>``.
WEBHOOK_SIGNATURE_HEADER = SIGNATURE_HEADER
WEBHOOK_SIGNATURE_PREFIX = SIGNATURE_PREFIX
#: The body fields of ``POST /{waba_id}/subscribed_apps`` (Meta's ``SubscriptionRequest``).
SUBSCRIPTION_CALLBACK_FIELD = "override_callback_uri"
SUBSCRIPTION_VERIFY_TOKEN_FIELD = "verify_token"
#: A status webhook's ``pricing``: per-message pricing; what a template costs, and a free reply in the window.
PRICING_MODEL_PER_MESSAGE = "PMP"
PRICING_TYPE_REGULAR = "regular"
PRICING_TYPE_FREE_SERVICE = "free_customer_service"
#: Inbound interactive replies: a reply button tapped, a list row chosen.
INTERACTIVE_BUTTON_REPLY = REPLY_BUTTON
INTERACTIVE_LIST_REPLY = REPLY_LIST

# --- business profile ----------------------------------------------------------------------------

#: What a business profile update may set (besides ``messaging_product``); text limits are in
#: :data:`.limits.PROFILE_TEXT_MAX`.
PROFILE_FIELDS = (
    "about",
    "address",
    "description",
    "email",
    "websites",
    "vertical",
    "profile_picture_handle",
)

# --- the Graph API -------------------------------------------------------------------------------

#: ``messaging_product`` of every WhatsApp request.
MESSAGING_PRODUCT = "whatsapp"
