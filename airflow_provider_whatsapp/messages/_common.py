"""What every outgoing message shares: the recipient, the reply context and readable validation errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.spec import grammar, limits, vocabulary

if TYPE_CHECKING:
    from collections.abc import Iterable


class Recipient(str):
    """A recipient :func:`normalize_recipient` has already checked and reduced to digits.

    The type carries the proof, so :meth:`OutgoingMessage.to_payload` takes it as it is instead of
    normalising the same number a second time.
    """

    __slots__ = ()


def normalize_recipient(value: str | int) -> Recipient:
    """A recipient as WhatsApp wants it: digits only, ``+1 (415) 555-0100`` -> ``14155550100``.

    :raises WhatsAppValidationError: when the value cannot be a phone number.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise WhatsAppValidationError(
            f"to: {value!r} is not a phone number; give the recipient as a string such as '+1 415 555 0100'."
        )
    text = str(value).strip()
    digits = grammar.recipient_digits(text)
    if digits is not None:
        return Recipient(digits)
    # Not a recipient: say whether a character or the length is wrong.
    stripped = grammar.RECIPIENT_SEPARATORS.sub("", text)
    if not stripped.isdigit() or not stripped.isascii():
        raise WhatsAppValidationError(
            f"to: {text!r} is not a phone number; only digits, '+', spaces, '-' and parentheses are allowed."
        )
    raise WhatsAppValidationError(
        f"to: {text!r} has {len(stripped)} digits; a WhatsApp recipient has "
        f"{limits.RECIPIENT_MIN_DIGITS} to {limits.RECIPIENT_MAX_DIGITS} digits with the country code."
    )


def check_http_url(value: str) -> str:
    """``value`` when it is an absolute ``http(s)://`` URL, else ``ValueError`` naming the rule."""
    if not grammar.is_http_url(value):
        raise ValueError(f"{value!r} is not an absolute http(s):// URL, which WhatsApp needs to fetch it")
    return value


def check_not_blank(value: str) -> str:
    """The rule for every text WhatsApp refuses when empty: something visible must be left."""
    if grammar.is_blank(value):
        raise ValueError(
            "is empty; WhatsApp needs some text (whitespace and invisible characters alone do not count)"
        )
    return value


def one_of(allowed: Iterable[str]) -> AfterValidator:
    """A check that a value is one of the spec's ``allowed`` values, naming them when it is not.

    Used instead of ``Literal[...]`` so that the values come from :mod:`~airflow_provider_whatsapp.spec`
    and nowhere else.
    """
    values = tuple(allowed)

    def check(value: str) -> str:
        if value not in values:
            raise ValueError(f"{value!r} is not one of {', '.join(values)}")
        return value

    return AfterValidator(check)


class WhatsAppModel(BaseModel):
    """Base of every message model: unknown fields are refused, schemas are built on first use."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    kind: ClassVar[str] = "message"  # a human name for errors, e.g. "list message"

    @classmethod
    def build(cls, **fields: Any) -> Any:
        """Validate ``fields`` into this model, raising :class:`WhatsAppValidationError` on bad input."""
        try:
            return cls.model_validate(fields)
        except ValidationError as error:
            raise to_whatsapp_error(error, what=cls.kind) from None


class OutgoingMessage(WhatsAppModel):
    """A message that can be sent to a recipient; subclasses give ``message_type`` and ``content()``."""

    message_type: ClassVar[str]

    def content(self) -> Any:
        """The object stored under ``message_type`` in the Graph payload."""
        raise NotImplementedError

    def upload_target(self) -> tuple[str, Any] | None:
        """``(media_type, file_path)`` when a file must be uploaded before sending, else ``None``."""
        return None

    def with_media_id(self, media_id: str) -> OutgoingMessage:
        """A copy that sends the uploaded ``media_id`` instead of the file (see :meth:`upload_target`)."""
        raise TypeError(f"{type(self).__name__} has nothing to upload")

    def to_payload(self, to: str | int, *, reply_to: str | None = None) -> dict[str, Any]:
        """The Graph ``/messages`` body for ``to``, without ``messaging_product`` (the hook adds it).

        :param to: the recipient; normalised to digits unless it already is a :class:`Recipient`.
        :param reply_to: the wamid of a received message to reply to (sent as ``context.message_id``).
        """
        recipient = to if isinstance(to, Recipient) else normalize_recipient(to)
        payload: dict[str, Any] = {
            "recipient_type": vocabulary.RECIPIENT_INDIVIDUAL,
            # A plain str in the payload: what is sent, journalled or compared is never the marker type.
            "to": str(recipient),
            "type": self.message_type,
        }
        if reply_to:
            payload["context"] = {"message_id": str(reply_to)}
        payload[self.message_type] = self.content()
        return payload


def drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# --- pydantic errors -> one error that names the field, the problem and the limit ----------------


def format_location(loc: tuple[Any, ...]) -> str:
    """``("action", "sections", 0, "rows", 2, "title")`` -> ``action.sections[0].rows[2].title``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def describe_error(error: Any) -> str:
    """One pydantic error as ``field: problem; limit``."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    value = error.get("input")
    where = format_location(tuple(error.get("loc", ())))
    if value is None and kind != "missing" and "input" in error:
        # A template or XCom that produced nothing: say so, not "Input should be a valid string".
        problem = "rendered to None; give it a value (a template or XCom that returned nothing?)"
    elif kind == "string_too_long":
        problem = f"{len(value)} characters; WhatsApp allows at most {ctx.get('max_length')}"
    elif kind == "string_too_short":
        problem = "is empty; WhatsApp needs some text"
    elif kind == "too_long":
        problem = f"{ctx.get('actual_length', '?')} items; WhatsApp allows at most {ctx.get('max_length')}"
    elif kind == "too_short":
        problem = f"{ctx.get('actual_length', 0)} items; WhatsApp needs at least {ctx.get('min_length')}"
    elif kind == "missing":
        problem = "is required"
    elif kind == "extra_forbidden":
        problem = "is not a field WhatsApp knows here"
    elif kind in {"value_error", "assertion_error"}:
        message = str(error.get("msg", ""))
        problem = (
            message.split(", ", 1)[1]
            if message.startswith(("Value error, ", "Assertion failed, "))
            else message
        )
    else:
        problem = f"{error.get('msg', 'is invalid')} (got {value!r})"
    return f"{where}: {problem}" if where else problem


def to_whatsapp_error(
    error: ValidationError, *, what: str, rename: dict[str, str] | None = None
) -> WhatsAppValidationError:
    """Turn a pydantic ``ValidationError`` into a :class:`WhatsAppValidationError` naming each field.

    :param what: the kind of message, e.g. ``"text message"``.
    :param rename: top-level field -> path to show instead (used when validating a raw Graph payload).
    """
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(item.get("loc", ()))
        if rename and loc and isinstance(loc[0], str) and loc[0] in rename:
            item = {**item, "loc": (rename[loc[0]], *loc[1:])}
        problem = describe_error(item)
        if rename and not loc:
            # A check across fields names its path in the text: translate that path too.
            for field, shown in rename.items():
                if problem.startswith(field) and problem[len(field) : len(field) + 1] in {"[", ".", ":"}:
                    problem = shown + problem[len(field) :]
                    break
        problems.append(problem)
    return WhatsAppValidationError(f"Invalid WhatsApp {what}: " + "; ".join(problems))
