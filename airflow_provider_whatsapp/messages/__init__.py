"""Validated models of every message the provider sends, and the helpers that check them.

Each model checks WhatsApp's limits (see :mod:`airflow_provider_whatsapp.spec.limits`) when it is built and
turns into a Graph ``/messages`` body with ``to_payload(to, reply_to=None)``. Bad input raises
:class:`~airflow_provider_whatsapp.errors.WhatsAppValidationError` naming the field, the problem and
the limit, before any request is made.
"""

from __future__ import annotations

from airflow_provider_whatsapp.messages._common import (
    OutgoingMessage,
    WhatsAppModel,
    normalize_recipient,
    to_whatsapp_error,
)
from airflow_provider_whatsapp.messages._parse import (
    MESSAGE_TYPES,
    RawInteractiveMessage,
    parse_message,
)
from airflow_provider_whatsapp.messages.interactive import (
    ButtonsMessage,
    CtaUrlMessage,
    InteractiveHeader,
    ListMessage,
    ListRow,
    ListSection,
    ReplyButton,
)
from airflow_provider_whatsapp.messages.media import (
    AudioMessage,
    DocumentMessage,
    ImageMessage,
    MediaMessage,
    MediaRef,
    StickerMessage,
    VideoMessage,
)
from airflow_provider_whatsapp.messages.simple import (
    Contact,
    ContactsMessage,
    LocationMessage,
    MarkAsRead,
    ReactionMessage,
    TextMessage,
)
from airflow_provider_whatsapp.messages.template import (
    TemplateComponent,
    TemplateHeader,
    TemplateMessage,
    TemplateParameter,
)

__all__ = [
    "MESSAGE_TYPES",
    "AudioMessage",
    "ButtonsMessage",
    "Contact",
    "ContactsMessage",
    "CtaUrlMessage",
    "DocumentMessage",
    "ImageMessage",
    "InteractiveHeader",
    "ListMessage",
    "ListRow",
    "ListSection",
    "LocationMessage",
    "MarkAsRead",
    "MediaMessage",
    "MediaRef",
    "OutgoingMessage",
    "RawInteractiveMessage",
    "ReactionMessage",
    "ReplyButton",
    "StickerMessage",
    "TemplateComponent",
    "TemplateHeader",
    "TemplateMessage",
    "TemplateParameter",
    "TextMessage",
    "VideoMessage",
    "WhatsAppModel",
    "normalize_recipient",
    "parse_message",
    "to_whatsapp_error",
]
