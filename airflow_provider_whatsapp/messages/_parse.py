"""Turn a raw Graph message payload (a dict) into the matching validated model."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.messages._common import OutgoingMessage, WhatsAppModel, to_whatsapp_error
from airflow_provider_whatsapp.messages.interactive import (
    Body,
    ButtonsMessage,
    CtaUrlMessage,
    Footer,
    InteractiveHeader,
    ListMessage,
)
from airflow_provider_whatsapp.messages.media import (
    AudioMessage,
    DocumentMessage,
    ImageMessage,
    StickerMessage,
    VideoMessage,
)
from airflow_provider_whatsapp.messages.simple import (
    ContactsMessage,
    LocationMessage,
    ReactionMessage,
    TextMessage,
)
from airflow_provider_whatsapp.messages.template import TemplateMessage
from airflow_provider_whatsapp.spec import interactive_actions, vocabulary


def _by_type(models: tuple[type[OutgoingMessage], ...], key: str, types: tuple[str, ...]) -> dict[str, Any]:
    """Each model by the type it declares (its ``key`` class attribute), in the vocabulary's order.

    The vocabulary decides which types exist; a type without a model, or a model of a type the
    vocabulary does not list, stops the import rather than surfacing at the first send.
    """
    declared = {getattr(model, key): model for model in models}
    if set(declared) != set(types):
        raise RuntimeError(f"message models declare {sorted(declared)}, the vocabulary lists {sorted(types)}")
    return {kind: declared[kind] for kind in types}


#: The model of each message type. ``interactive`` is refined by the interactive object's own type.
MESSAGE_TYPES: dict[str, type[OutgoingMessage]] = _by_type(
    (
        TextMessage,
        TemplateMessage,
        ImageMessage,
        VideoMessage,
        AudioMessage,
        DocumentMessage,
        StickerMessage,
        LocationMessage,
        ContactsMessage,
        ButtonsMessage,
        ReactionMessage,
    ),
    "message_type",
    vocabulary.MESSAGE_TYPES,
)
#: The model of each interactive type the provider checks field by field.
INTERACTIVE_TYPES: dict[str, type[OutgoingMessage]] = _by_type(
    (ButtonsMessage, ListMessage, CtaUrlMessage), "interactive_type", vocabulary.MODELLED_INTERACTIVE_TYPES
)
#: Interactive types WhatsApp knows that are sent as given (catalogues, flows, requests...).
PASSTHROUGH_INTERACTIVE = vocabulary.PASSTHROUGH_INTERACTIVE_TYPES
# Top-level keys a payload may carry besides ``type`` and its object; ``to`` and ``context`` come from
# the operator (``to``, ``reply_to``) and are ignored here.
_ENVELOPE = {"type", "to", "messaging_product", "recipient_type", "context", "biz_opaque_callback_data"}
_MISSING = object()


class RawInteractiveMessage(OutgoingMessage):
    """An interactive message of a kind the provider does not model (flow, product, ...): sent as given."""

    message_type: ClassVar[str] = "interactive"
    kind: ClassVar[str] = "interactive message"

    interactive: dict[str, Any]

    def content(self) -> dict[str, Any]:
        return self.interactive


class _BodyText(WhatsAppModel):
    text: Body


class _FooterText(WhatsAppModel):
    text: Footer


class _SharedParts(WhatsAppModel):
    """The parts every interactive kind shares, checked as the modelled kinds' are.

    The action, which Graph requires of every kind, is the spec's to check (``spec.interactive_actions``).
    """

    model_config = ConfigDict(extra="ignore", defer_build=True)

    header: InteractiveHeader | None = None
    body: _BodyText | None = None
    footer: _FooterText | None = None

    @field_validator("header", mode="before")
    @classmethod
    def _graph_header_object(cls, value: Any) -> Any:
        # Sent as given, so no shortcut: Graph's own header object, {"type": "text", "text": ...} or
        # {"type": "image", "image": {"link": ...}} (which kinds take media is checked with the kind).
        if value is None or (isinstance(value, dict) and value.get("type") == "text"):
            return value
        kind = value.get("type") if isinstance(value, dict) else None
        if (
            isinstance(kind, str)
            and kind in vocabulary.INTERACTIVE_MEDIA_HEADER_TYPES
            and isinstance(value.get(kind), dict)
            and set(value) <= {"type", kind}
        ):
            return value
        raise ValueError(
            'must be a header object, {"type": "text", "text": ...} or {"type": "image", "image": {...}}'
        )

    @field_validator("body", "footer", mode="before")
    @classmethod
    def _text_object(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            raise ValueError('must be an object, {"text": ...}')
        return value


def _passthrough(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` once its header, body and footer pass the checks the modelled interactive kinds get."""
    try:
        _SharedParts.model_validate(obj)
    except ValidationError as error:
        where = {part: f"interactive.{part}" for part in ("header", "body", "footer", "action")}
        raise to_whatsapp_error(error, what="interactive message", rename=where) from None
    kind = obj["type"]
    if obj.get("body") is None and kind in vocabulary.INTERACTIVE_TYPES_WITH_BODY:
        raise WhatsAppValidationError(
            f"Invalid WhatsApp interactive message: interactive.body: is required for a {kind} message"
        )
    header_type = (obj.get("header") or {}).get("type")
    if (
        header_type != "text"
        and header_type is not None
        and kind not in vocabulary.INTERACTIVE_MEDIA_HEADER_KINDS
    ):
        raise WhatsAppValidationError(
            f"Invalid WhatsApp interactive message: interactive.header.type: a {kind} message takes only a "
            f"text header, not {header_type}"
        )
    # The action's rules are the spec's, the same check the sandbox answers with.
    problem = interactive_actions.check_action(kind, obj.get("action"))
    if problem is not None:
        field = interactive_actions.dotted(problem.path)
        raise WhatsAppValidationError(f"Invalid WhatsApp interactive message: {field}: {problem.rule}")
    return obj


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _only(value: Any, allowed: set[str], path: str) -> None:
    if not isinstance(value, dict):
        raise WhatsAppValidationError(f"Invalid WhatsApp message: {path}: must be an object, got {value!r}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise WhatsAppValidationError(
            f"Invalid WhatsApp message: {path}.{unknown[0]}: is not a field WhatsApp knows here"
        )


def _fields(pairs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in pairs.items() if v is not _MISSING}


def _interactive(obj: Any) -> tuple[type[OutgoingMessage], dict[str, Any], dict[str, str]]:
    _only(obj, {"type", "header", "body", "footer", "action"}, "interactive")
    kind = obj.get("type")
    # A list or dict here is not a type (and not hashable: a membership test would raise TypeError).
    if isinstance(kind, str) and kind in PASSTHROUGH_INTERACTIVE:
        return RawInteractiveMessage, {"interactive": _passthrough(obj)}, {}
    if not isinstance(kind, str) or kind not in INTERACTIVE_TYPES:
        known = ", ".join([*INTERACTIVE_TYPES, *PASSTHROUGH_INTERACTIVE])
        raise WhatsAppValidationError(
            f"Invalid WhatsApp message: interactive.type: {kind!r} is not an interactive type WhatsApp "
            f"knows ({known})"
        )
    if obj.get("footer") is not None and _dig(obj, "footer", "text") is _MISSING:
        # Without this, {"footer": {}} would drop the footer silently; Graph refuses it.
        raise WhatsAppValidationError(
            "Invalid WhatsApp message: interactive.footer.text: is required (or leave the footer out)"
        )
    action = obj.get("action", {})
    common = {
        "body": _dig(obj, "body", "text"),
        "header": obj.get("header", _MISSING),
        "footer": _dig(obj, "footer", "text"),
    }
    rename = {
        "body": "interactive.body.text",
        "header": "interactive.header",
        "footer": "interactive.footer.text",
    }
    if kind == vocabulary.INTERACTIVE_BUTTON:
        _only(action, {"buttons"}, "interactive.action")
        fields = {**common, "buttons": action.get("buttons", _MISSING)}
        rename["buttons"] = "interactive.action.buttons"
    elif kind == vocabulary.INTERACTIVE_LIST:
        _only(action, {"button", "sections"}, "interactive.action")
        fields = {
            **common,
            "button": action.get("button", _MISSING),
            "sections": action.get("sections", _MISSING),
        }
        rename.update(button="interactive.action.button", sections="interactive.action.sections")
    else:
        _only(action, {"name", "parameters"}, "interactive.action")
        fields = {
            **common,
            "display_text": _dig(action, "parameters", "display_text"),
            "url": _dig(action, "parameters", "url"),
        }
        rename.update(
            display_text="interactive.action.parameters.display_text", url="interactive.action.parameters.url"
        )
    return INTERACTIVE_TYPES[kind], _fields(fields), rename


def parse_message(payload: dict[str, Any] | BaseModel) -> OutgoingMessage:
    """Validate a message given as a Graph payload (``{"type": "text", "text": {...}}``) or a model.

    ``type`` must be one WhatsApp knows and its object must be present; the object is then checked
    against every limit. ``to``, ``messaging_product``, ``recipient_type`` and ``context`` are ignored:
    the recipient and the reply context are given separately when the message is sent.

    :raises WhatsAppValidationError: naming the field, the problem and the limit.
    """
    if isinstance(payload, OutgoingMessage):
        return payload
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(exclude_none=True)
    if not isinstance(payload, dict):
        raise WhatsAppValidationError(
            "Invalid WhatsApp message: expected a payload dict or a message model, "
            f"got {type(payload).__name__}"
        )
    known = ", ".join(MESSAGE_TYPES)
    kind = payload.get("type")
    if kind is None:
        raise WhatsAppValidationError(f"Invalid WhatsApp message: type: is required (one of {known})")
    if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
        raise WhatsAppValidationError(
            f"Invalid WhatsApp message: type: {kind!r} is not a message type WhatsApp knows ({known})"
        )
    obj = payload.get(kind)
    if obj is None:
        raise WhatsAppValidationError(
            f"Invalid WhatsApp message: {kind}: is required for a message of type {kind!r}"
        )
    unknown = sorted(set(payload) - _ENVELOPE - {kind})
    if unknown:
        raise WhatsAppValidationError(
            f"Invalid WhatsApp message: {unknown[0]}: is not a field of a {kind} message"
        )

    model: type[OutgoingMessage]
    rename: dict[str, str]
    if kind == "interactive":
        model, fields, rename = _interactive(obj)
    elif kind == "contacts":
        model, fields, rename = ContactsMessage, {"contacts": obj}, {}
    elif kind == "template":
        _only(obj, {"name", "language", "components", "namespace"}, "template")
        model = TemplateMessage
        # Graph requires the language object: a raw payload without one is refused, not sent in en_US
        # (the model's default is for the operator's language_code argument).
        language = obj.get("language")
        if not isinstance(language, dict) or language.get("code") is None:
            raise WhatsAppValidationError(
                'Invalid WhatsApp template message: template.language: is required, as {"code": "en_US"} '
                "(the language the template was approved in)"
            )
        fields = _fields({"name": obj.get("name", _MISSING), "language_code": language["code"]})
        if obj.get("components") is not None:
            fields["components"] = obj["components"]
        rename = {"name": "template.name", "language_code": "template.language.code",
                  "components": "template.components"}  # fmt: skip
    else:
        model = MESSAGE_TYPES[kind]
        _only(obj, {*model.model_fields, "id"}, kind)
        fields = {("media_id" if k == "id" else k): v for k, v in obj.items()}
        rename = {k: f"{kind}.{k}" for k in model.model_fields}
        rename["media_id"] = f"{kind}.id"
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        raise to_whatsapp_error(error, what=model.kind, rename=rename) from None
