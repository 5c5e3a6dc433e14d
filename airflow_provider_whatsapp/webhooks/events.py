"""The events a WhatsApp webhook delivers, and the parser that reads one delivery.

Every byte of a delivery is untrusted until :func:`parse_delivery` has checked it: types, lengths,
digits where WhatsApp writes digits, statuses from the vocabulary. A delivery with one bad event is
refused whole (:class:`WebhookPayloadError`, naming the field), so nothing of it is stored; what the
provider does not model (other subscribed fields, unknown keys) is ignored. No Airflow import here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_provider_whatsapp.spec import limits, vocabulary
from airflow_provider_whatsapp.spec.grammar import TYPE_NAME_PATTERN, is_message_id, is_wa_id

#: Statuses in the order a message goes through them; ``failed`` outranks them all.
_STATUS_RANK = {status: rank for rank, status in enumerate(vocabulary.MESSAGE_STATUSES)}
_STATUS_RANK[vocabulary.MESSAGE_FAILED_STATUS] = len(vocabulary.MESSAGE_STATUSES)

# A wamid is printable ASCII without spaces (``wamid.`` and base64 today); a type is a lowercase name.
_TIMESTAMP_END = 10**limits.WEBHOOK_TIMESTAMP_MAX_DIGITS


class WebhookPayloadError(ValueError):
    """A webhook delivery that is not valid JSON or not shaped like Meta's; the message names the field."""


def status_rank(status: str) -> int:
    """How far ``status`` is along sent → delivered → read (``failed`` beyond all); -1 if unknown."""
    return _STATUS_RANK.get(status, -1)


@dataclass(frozen=True)
class WebhookError:
    """One entry of a failed status's ``errors``.

    :param code: Graph's error code (131047: outside the 24-hour window...).
    :param title: Graph's short title.
    :param message: Graph's message, when given.
    :param details: ``error_data.details``, when given.
    """

    code: int
    title: str
    message: str | None = None
    details: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "title": self.title, "message": self.message, "details": self.details}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WebhookError:
        return cls(
            code=int(data["code"]),
            title=str(data["title"]),
            message=data.get("message"),
            details=data.get("details"),
        )


@dataclass(frozen=True)
class StatusEvent:
    """A status of a message the business sent.

    :param wamid: the id of the message sent.
    :param status: one of ``MESSAGE_STATUSES`` or ``MESSAGE_FAILED_STATUS``.
    :param timestamp: when WhatsApp reached it, unix seconds.
    :param recipient_id: the recipient's WhatsApp id (digits).
    :param phone_number_id: the business phone number that sent the message.
    :param errors: why it failed (``failed`` only).
    """

    wamid: str
    status: str
    timestamp: int
    recipient_id: str
    phone_number_id: str
    errors: tuple[WebhookError, ...] = ()

    @property
    def failed(self) -> bool:
        return self.status == vocabulary.MESSAGE_FAILED_STATUS

    def reached(self, target: str) -> bool:
        """Whether this (non-failed) status is ``target`` or beyond it."""
        return not self.failed and status_rank(self.status) >= status_rank(target)

    def as_dict(self) -> dict[str, Any]:
        return {
            "wamid": self.wamid,
            "status": self.status,
            "timestamp": self.timestamp,
            "recipient_id": self.recipient_id,
            "phone_number_id": self.phone_number_id,
            "errors": [error.as_dict() for error in self.errors],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StatusEvent:
        return cls(
            wamid=str(data["wamid"]),
            status=str(data["status"]),
            timestamp=int(data["timestamp"]),
            recipient_id=str(data["recipient_id"]),
            phone_number_id=str(data["phone_number_id"]),
            errors=tuple(WebhookError.from_dict(error) for error in data.get("errors") or ()),
        )


@dataclass(frozen=True)
class InboundMessage:
    """A message a WhatsApp user sent to the business.

    :param wamid: its id.
    :param sender: the sender's WhatsApp id (the webhook's ``from``, digits).
    :param type: the webhook's message type (text, interactive, button, image...).
    :param timestamp: when it was sent, unix seconds.
    :param phone_number_id: the business phone number it was sent to.
    :param text: the text body, a media caption, or the tapped button's or row's title.
    :param button_id: the tapped reply button's id (or a template quick-reply's payload).
    :param button_title: the tapped button's title.
    :param row_id: the chosen list row's id.
    :param context_id: the wamid this message answers or quotes (or reacts to).
    :param contact_name: the sender's profile name.
    """

    wamid: str
    sender: str
    type: str
    timestamp: int
    phone_number_id: str
    text: str | None = None
    button_id: str | None = None
    button_title: str | None = None
    row_id: str | None = None
    context_id: str | None = None
    contact_name: str | None = None

    def as_reply(self) -> dict[str, Any]:
        """The normalised reply a task returns: who answered what, and when (ISO-8601, UTC)."""
        return {
            "from": self.sender,
            "type": self.type,
            "text": self.text,
            "button_id": self.button_id,
            "button_title": self.button_title,
            "row_id": self.row_id,
            "wamid": self.wamid,
            "timestamp": datetime.fromtimestamp(self.timestamp, tz=timezone.utc).isoformat(),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "wamid": self.wamid,
            "sender": self.sender,
            "type": self.type,
            "timestamp": self.timestamp,
            "phone_number_id": self.phone_number_id,
            "text": self.text,
            "button_id": self.button_id,
            "button_title": self.button_title,
            "row_id": self.row_id,
            "context_id": self.context_id,
            "contact_name": self.contact_name,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InboundMessage:
        return cls(
            wamid=str(data["wamid"]),
            sender=str(data["sender"]),
            type=str(data["type"]),
            timestamp=int(data["timestamp"]),
            phone_number_id=str(data["phone_number_id"]),
            **{key: data.get(key) for key in _OPTIONAL_MESSAGE_FIELDS},
        )


_OPTIONAL_MESSAGE_FIELDS = ("text", "button_id", "button_title", "row_id", "context_id", "contact_name")

Event = StatusEvent | InboundMessage


def event_from_dict(data: dict[str, Any]) -> Event:
    """A stored event back as its class (a status has a ``status``, a message a ``sender``)."""
    return StatusEvent.from_dict(data) if "status" in data else InboundMessage.from_dict(data)


# --- parsing -------------------------------------------------------------------------------------


def parse_delivery(body: bytes) -> list[Event]:
    """The events of one webhook POST body, in the order Meta listed them.

    :raises WebhookPayloadError: the body is too large, not JSON, or not shaped like Meta's webhook
        (the message names the field and the rule).
    """
    if not isinstance(body, (bytes, bytearray)):
        raise WebhookPayloadError("the body must be bytes")
    if len(body) > limits.WEBHOOK_BODY_MAX_BYTES:
        raise WebhookPayloadError(f"the body is larger than {limits.WEBHOOK_BODY_MAX_BYTES} bytes")
    try:
        payload = json.loads(bytes(body), parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise WebhookPayloadError(f"the body is not JSON ({type(error).__name__})") from None
    root = _object(payload, "body")
    if root.get("object") != vocabulary.WEBHOOK_OBJECT:
        raise WebhookPayloadError(f"object must be {vocabulary.WEBHOOK_OBJECT!r}")
    events: list[Event] = []
    for e, entry in enumerate(_array(root.get("entry"), "entry")):
        entry = _object(entry, f"entry[{e}]")
        for c, change in enumerate(_array(entry.get("changes"), f"entry[{e}].changes")):
            where = f"entry[{e}].changes[{c}]"
            change = _object(change, where)
            if change.get("field") != vocabulary.WEBHOOK_MESSAGES_FIELD:
                continue  # group and other events: not modelled
            events.extend(_change_events(_object(change.get("value"), f"{where}.value"), f"{where}.value"))
            if len(events) > limits.WEBHOOK_EVENTS_MAX:
                raise WebhookPayloadError(f"a delivery holds at most {limits.WEBHOOK_EVENTS_MAX} events")
    return events


def _change_events(value: dict[str, Any], where: str) -> list[Event]:
    metadata = _object(value.get("metadata"), f"{where}.metadata")
    phone_number_id = _graph_id(metadata.get("phone_number_id"), f"{where}.metadata.phone_number_id")
    names: dict[str, str] = {}
    for i, contact in enumerate(_array(value.get("contacts"), f"{where}.contacts", optional=True)):
        contact = _object(contact, f"{where}.contacts[{i}]")
        wa_id = contact.get("wa_id")
        profile = contact.get("profile")
        if isinstance(profile, dict) and isinstance(wa_id, str):
            name = _text(
                profile.get("name"), f"{where}.contacts[{i}].profile.name", limits.WEBHOOK_NAME_MAX_CHARS
            )
            if name is not None:
                names[wa_id] = name
    events: list[Event] = []
    for i, message in enumerate(_array(value.get("messages"), f"{where}.messages", optional=True)):
        events.append(_message(_object(message, f"{where}.messages[{i}]"), f"{where}.messages[{i}]",
                               phone_number_id, names))  # fmt: skip
    for i, status in enumerate(_array(value.get("statuses"), f"{where}.statuses", optional=True)):
        events.append(
            _status(_object(status, f"{where}.statuses[{i}]"), f"{where}.statuses[{i}]", phone_number_id)
        )
    return events


def _message(data: dict[str, Any], where: str, phone_number_id: str, names: dict[str, str]) -> InboundMessage:
    sender = _wa_id(data.get("from"), f"{where}.from")
    kind = _type(data.get("type"), f"{where}.type")
    fields: dict[str, str | None] = {}
    content = data.get(kind)
    if kind == vocabulary.INBOUND_TEXT:
        body = _object(content, f"{where}.text")
        fields["text"] = _text(
            body.get("body"), f"{where}.text.body", limits.WEBHOOK_TEXT_MAX_CHARS, required=True
        )
    elif kind in vocabulary.CAPTIONED_MEDIA and isinstance(content, dict):
        fields["text"] = _text(
            content.get("caption"), f"{where}.{kind}.caption", limits.WEBHOOK_TEXT_MAX_CHARS
        )
    elif kind == vocabulary.INBOUND_BUTTON:  # a template's quick-reply button
        button = _object(content, f"{where}.button")
        fields["button_id"] = _text(button.get("payload"), f"{where}.button.payload",
                                    limits.WEBHOOK_REPLY_ID_MAX_CHARS)  # fmt: skip
        fields["button_title"] = _text(button.get("text"), f"{where}.button.text",
                                       limits.WEBHOOK_REPLY_TITLE_MAX_CHARS)  # fmt: skip
        fields["text"] = fields["button_title"]
    elif kind == vocabulary.INBOUND_INTERACTIVE:
        fields.update(_interactive(_object(content, f"{where}.interactive"), f"{where}.interactive"))
    elif kind == vocabulary.INBOUND_REACTION and isinstance(content, dict):
        fields["context_id"] = _wamid(
            content.get("message_id"), f"{where}.reaction.message_id", optional=True
        )
        fields["text"] = _text(content.get("emoji"), f"{where}.reaction.emoji", limits.WEBHOOK_NAME_MAX_CHARS)
    context = data.get("context")
    if context is not None:
        context_id = _wamid(
            _object(context, f"{where}.context").get("id"), f"{where}.context.id", optional=True
        )
        fields["context_id"] = context_id or fields.get("context_id")
    return InboundMessage(
        wamid=_wamid(data.get("id"), f"{where}.id"),
        sender=sender,
        type=kind,
        timestamp=_timestamp(data.get("timestamp"), f"{where}.timestamp"),
        phone_number_id=phone_number_id,
        contact_name=names.get(sender),
        **fields,
    )


def _interactive(content: dict[str, Any], where: str) -> dict[str, str | None]:
    kind = _type(content.get("type"), f"{where}.type")
    if kind not in vocabulary.REPLY_KINDS:
        return {}  # a flow's answer and other kinds: the type says what it was
    reply = _object(content.get(kind), f"{where}.{kind}")
    reply_id = _text(reply.get("id"), f"{where}.{kind}.id", limits.WEBHOOK_REPLY_ID_MAX_CHARS, required=True)
    title = _text(reply.get("title"), f"{where}.{kind}.title", limits.WEBHOOK_REPLY_TITLE_MAX_CHARS)
    if kind == vocabulary.REPLY_BUTTON:
        return {"button_id": reply_id, "button_title": title, "text": title}
    return {"row_id": reply_id, "text": title}


def _status(data: dict[str, Any], where: str, phone_number_id: str) -> StatusEvent:
    status = data.get("status")
    if status not in _STATUS_RANK:
        raise WebhookPayloadError(f"{where}.status must be one of {', '.join(_STATUS_RANK)}")
    errors = []
    for i, error in enumerate(_array(data.get("errors"), f"{where}.errors", optional=True)):
        at = f"{where}.errors[{i}]"
        error = _object(error, at)
        code = error.get("code")
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code < 10**9:
            raise WebhookPayloadError(f"{at}.code must be a whole number")
        error_data = error.get("error_data")
        details = error_data.get("details") if isinstance(error_data, dict) else None
        errors.append(
            WebhookError(
                code=code,
                title=_text(error.get("title"), f"{at}.title", limits.WEBHOOK_ERROR_TEXT_MAX_CHARS) or "",
                message=_text(error.get("message"), f"{at}.message", limits.WEBHOOK_ERROR_TEXT_MAX_CHARS),
                details=_text(details, f"{at}.error_data.details", limits.WEBHOOK_ERROR_TEXT_MAX_CHARS),
            )
        )
    return StatusEvent(
        wamid=_wamid(data.get("id"), f"{where}.id"),
        status=status,
        timestamp=_timestamp(data.get("timestamp"), f"{where}.timestamp"),
        recipient_id=_wa_id(data.get("recipient_id"), f"{where}.recipient_id"),
        phone_number_id=phone_number_id,
        errors=tuple(errors),
    )


# --- field checks --------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WebhookPayloadError(f"{where} must be an object")
    return value


def _array(value: Any, where: str, *, optional: bool = False) -> list[Any]:
    if value is None and optional:
        return []
    if not isinstance(value, list):
        raise WebhookPayloadError(f"{where} must be an array")
    if len(value) > limits.WEBHOOK_EVENTS_MAX:
        raise WebhookPayloadError(f"{where} holds more than {limits.WEBHOOK_EVENTS_MAX} items")
    return value


def _text(value: Any, where: str, max_chars: int, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise WebhookPayloadError(f"{where} must be a string")
    if len(value) > max_chars:
        raise WebhookPayloadError(f"{where} is longer than {max_chars} characters")
    return value


def _wamid(value: Any, where: str, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not is_message_id(value):
        raise WebhookPayloadError(
            f"{where} must be a message id: 1 to {limits.WAMID_MAX_CHARS} printable ASCII characters"
        )
    return value


def _wa_id(value: Any, where: str) -> str:
    if not is_wa_id(value):
        raise WebhookPayloadError(
            f"{where} must be a WhatsApp id: "
            f"{limits.RECIPIENT_MIN_DIGITS} to {limits.RECIPIENT_MAX_DIGITS} digits"
        )
    return str(value)


def _graph_id(value: Any, where: str) -> str:
    if (
        not isinstance(value, str)
        or not value.isascii()
        or not value.isdigit()
        or len(value) > limits.GRAPH_ID_MAX_DIGITS
    ):
        raise WebhookPayloadError(f"{where} must be 1 to {limits.GRAPH_ID_MAX_DIGITS} digits")
    return value


def _type(value: Any, where: str) -> str:
    if (
        not isinstance(value, str)
        or len(value) > limits.WEBHOOK_TYPE_MAX_CHARS
        or not TYPE_NAME_PATTERN.fullmatch(value)
    ):
        raise WebhookPayloadError(
            f"{where} must be a lowercase name of at most {limits.WEBHOOK_TYPE_MAX_CHARS} characters"
        )
    return value


def _timestamp(value: Any, where: str) -> int:
    # Meta writes unix seconds as a string of digits; a number is accepted too.
    if isinstance(value, str) and value.isascii() and value.isdigit():
        digits = value
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _TIMESTAMP_END:
        digits = str(value)
    else:
        digits = ""
    if not 0 < len(digits) <= limits.WEBHOOK_TIMESTAMP_MAX_DIGITS:
        raise WebhookPayloadError(
            f"{where} must be unix seconds: up to {limits.WEBHOOK_TIMESTAMP_MAX_DIGITS} digits"
        )
    return int(digits)
