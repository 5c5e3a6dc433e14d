"""Turn a bulk send's arguments into validated ``(recipient, payload)`` items, before anything is sent.

Every recipient is checked, and every per-recipient template built, before the first request: one
bad entry among thousands fails the task with the entry's position and the reason, and nothing is
sent. Values of any shape (nested without end, of odd types) end in that same error, never in a
``RecursionError`` or ``TypeError``.

Each item carries a fingerprint of its payload (:func:`payload_fingerprint`), which the journal keeps
with every attempt so that a new try can tell whether a recipient got this message or another one.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.bulk.engine import BulkItem
from airflow_provider_whatsapp.errors import WhatsAppValidationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_whatsapp.messages import OutgoingMessage

log = logging.getLogger(__name__)

# Keys a recipient dict may carry in template mode, besides "to".
TEMPLATE_RECIPIENT_KEYS = ("body_parameters", "components", "header")
_SEPARATORS = re.compile(r"[,;\n]+")
_MAX_PROBLEMS_SHOWN = 10
# A problem line quotes the value it is about: keep a huge value from making a huge error.
_MAX_PROBLEM_CHARS = 300
# Deepest nesting of lists and dicts accepted in a recipient or a message argument. The deepest real
# payload (an interactive list: message, interactive, action, sections, section, rows, row) is 7.
MAX_NESTING = 16


@dataclass
class BulkPlan:
    """The validated recipients with their messages; payloads are built by :meth:`items`.

    :param uploaded: ``(media id, stand-in)`` once the shared message's file was uploaded: fingerprints
        use the stand-in, which names the file, so that a new try's upload (a new id) does not look
        like a changed message.
    """

    recipients: list[tuple[str, OutgoingMessage]]
    shared: OutgoingMessage | None
    uploaded: tuple[str, str] | None = None

    def upload_target(self) -> tuple[str, Any] | None:
        """``(media_type, file)`` when the shared message needs its file uploaded first."""
        return self.shared.upload_target() if self.shared is not None else None

    def with_media_id(self, media_id: str) -> BulkPlan:
        assert self.shared is not None
        target = self.shared.upload_target()
        stand_in = _upload_stand_in(target[1]) if target is not None else media_id
        shared = self.shared.with_media_id(media_id)
        swapped = [(to, shared if message is self.shared else message) for to, message in self.recipients]
        return BulkPlan(swapped, shared, uploaded=(media_id, stand_in))

    def fingerprints(self) -> dict[str, str | None]:
        """Each recipient's payload fingerprint; also before the shared file is uploaded."""
        target = self.upload_target()
        plan = self if target is None else self.with_media_id(_upload_stand_in(target[1]))
        return {item.to: item.fingerprint for item in plan.items()}

    def items(self) -> list[BulkItem]:
        built_once: dict[int, tuple[dict[str, Any], str]] = {}
        built = []
        for to, message in self.recipients:
            # The shared message's object is built once and reused: 10 000 recipients, one content().
            key = id(message)
            if key not in built_once:
                payload = message.to_payload(to)
                body = {k: v for k, v in payload.items() if k != "to"}
                compared = body if self.uploaded is None else _swap_media_id(body, *self.uploaded)
                built_once[key] = (body, payload_fingerprint(compared))
            body, fingerprint = built_once[key]
            built.append(BulkItem(to=to, payload={"to": to, **body}, fingerprint=fingerprint))
        return built


def payload_fingerprint(payload: Mapping[str, Any]) -> str:
    """SHA-256 of the payload as canonical JSON, without the recipient (``to``)."""
    body = {k: v for k, v in payload.items() if k != "to"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _upload_stand_in(file_path: Any) -> str:
    return f"upload:{file_path}"


def _swap_media_id(value: Any, media_id: str, stand_in: str) -> Any:
    """``value`` with every ``"id": media_id`` replaced by ``stand_in``."""
    if isinstance(value, dict):
        return {
            k: stand_in if k == "id" and v == media_id else _swap_media_id(v, media_id, stand_in)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_swap_media_id(v, media_id, stand_in) for v in value]
    return value


def too_deep(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether lists, tuples, sets and dicts in ``value`` nest more than ``limit`` levels (or in a cycle).

    Iterative, so that it cannot itself exceed Python's recursion limit.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, Mapping):
            children: Any = current.values()
        elif isinstance(current, (list, tuple, Set)):
            children = current
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_PROBLEM_CHARS else text[: _MAX_PROBLEM_CHARS - 1] + "\u2026"


def parse_recipients(recipients: Any) -> list[Any]:
    """Recipients as a list: a list or tuple as it is; a string rendered by Jinja or pulled from XCom
    (a JSON or Python list, or numbers separated by commas, semicolons or new lines) is parsed.
    """
    if isinstance(recipients, (list, tuple)):
        return list(recipients)
    if isinstance(recipients, (bytes, bytearray, memoryview)):
        raise WhatsAppValidationError(
            "recipients: got bytes; give a list of phone numbers, or text such as "
            "'+14155550100, +14155550101'."
        )
    if isinstance(recipients, (str, int)) and not isinstance(recipients, bool):
        try:
            text = str(recipients).strip()
        except ValueError:  # an int too long to print (more than 4300 digits)
            raise WhatsAppValidationError(
                "recipients: got a number far too long for a phone number (8 to 15 digits)."
            ) from None
        if not text:
            return []
        if text[0] in "[(":
            for parse in (json.loads, ast.literal_eval):
                try:
                    value = parse(text)
                except (ValueError, SyntaxError):
                    continue
                except (RecursionError, MemoryError):
                    raise WhatsAppValidationError(
                        f"recipients: the list in the text is nested too deeply to read (more than "
                        f"{MAX_NESTING} levels are never needed)."
                    ) from None
                if isinstance(value, (list, tuple)):
                    return list(value)
        return [part.strip() for part in _SEPARATORS.split(text) if part.strip()]
    if isinstance(recipients, Mapping):
        raise WhatsAppValidationError(
            "recipients: got a dict; give a list of numbers or of dicts such as "
            '[{"to": "+14155550100", "body_parameters": ["Ada"]}].'
        )
    try:
        return list(recipients)
    except TypeError:
        raise WhatsAppValidationError(
            f"recipients: expected a list of phone numbers or of dicts with 'to', got "
            f"{type(recipients).__name__}."
        ) from None


def build_plan(
    recipients: Any,
    *,
    message: Any = None,
    template_name: str | None = None,
    language_code: str = "en_US",
    components: list[Any] | None = None,
    body_parameters: list[Any] | None = None,
    header: Any = None,
) -> BulkPlan:
    """Validate everything; raise one :class:`WhatsAppValidationError` listing what is wrong."""
    from airflow_provider_whatsapp.messages import TemplateMessage, normalize_recipient, parse_message

    if (message is None) == (template_name is None):
        raise WhatsAppValidationError(
            "Give either message (the same message for every recipient) or template_name (a template, "
            "with per-recipient parameters), not both and not neither."
        )
    for name, value in (
        ("message", message),
        ("components", components),
        ("body_parameters", body_parameters),
        ("header", header),
    ):
        if too_deep(value):
            raise WhatsAppValidationError(
                f"{name}: nested more than {MAX_NESTING} levels deep (or in a cycle)."
            )
    entries = parse_recipients(recipients)
    problems: list[str] = []
    shared: OutgoingMessage | None = None
    template_defaults = {
        "name": template_name,
        "language_code": language_code,
        "components": components,
        "body_parameters": body_parameters,
        "header": header,
    }
    if message is not None:
        try:
            shared = parse_message(message)
        except WhatsAppValidationError as error:
            raise WhatsAppValidationError(f"message: {error.message}") from None
    else:
        try:
            shared = TemplateMessage.build(**_drop_none(template_defaults))
        except WhatsAppValidationError as error:
            raise WhatsAppValidationError(f"template: {error.message}") from None

    def per_recipient(position: int, entry: Mapping[str, Any]) -> OutgoingMessage | None:
        assert shared is not None
        extra = [k for k in entry if k != "to"]
        if not extra:
            return shared
        if message is not None:
            problems.append(
                f"recipients[{position}]: {extra[0]!r} is not allowed with message=...; per-recipient "
                f"values ({', '.join(TEMPLATE_RECIPIENT_KEYS)}) are for template sends."
            )
            return None
        unknown = [k for k in extra if k not in TEMPLATE_RECIPIENT_KEYS]
        if unknown:
            problems.append(
                f"recipients[{position}]: {unknown[0]!r} is not a per-recipient field (allowed: to, "
                f"{', '.join(TEMPLATE_RECIPIENT_KEYS)})."
            )
            return None
        fields = {**template_defaults, **{k: entry[k] for k in extra}}
        try:
            own = TemplateMessage.build(**_drop_none(fields))
        except WhatsAppValidationError as error:
            problems.append(f"recipients[{position}]: {error.message}")
            return None
        if own.upload_target() is not None:
            problems.append(
                f"recipients[{position}]: a per-recipient header cannot be a file_path (it would be "
                "uploaded once per recipient); upload it once and give its media_id."
            )
            return None
        return own

    def check_entry(position: int, entry: Any) -> tuple[str, OutgoingMessage] | None:
        if isinstance(entry, Mapping):
            if "to" not in entry:
                problems.append(f"recipients[{position}]: a recipient dict needs 'to'.")
                return None
            raw_to = entry["to"]
        else:
            raw_to, entry = entry, {}
        to = normalize_recipient(raw_to)
        own = per_recipient(position, entry)
        return None if own is None else (to, own)

    chosen: dict[str, tuple[int, OutgoingMessage]] = {}
    planned: list[tuple[str, OutgoingMessage]] = []
    duplicates = 0
    for position, entry in enumerate(entries):
        if too_deep(entry):
            problems.append(
                f"recipients[{position}]: nested more than {MAX_NESTING} levels deep (or in a cycle)."
            )
            continue
        try:
            checked = check_entry(position, entry)
        except WhatsAppValidationError as error:
            problems.append(f"recipients[{position}]: {error.message}")
            continue
        except (ValueError, TypeError, OverflowError, RecursionError) as error:
            # Whatever the value is, it names its position instead of escaping as a bare exception.
            problems.append(f"recipients[{position}]: cannot be read ({type(error).__name__}: {error}).")
            continue
        if checked is None:
            continue
        to, own = checked
        if to in chosen:
            first, earlier = chosen[to]
            if earlier == own:
                duplicates += 1
                continue
            problems.append(
                f"recipients[{position}]: {to} is already recipients[{first}] with other parameters; a "
                "recipient gets one message per bulk send."
            )
            continue
        chosen[to] = (position, own)
        planned.append((to, own))

    if problems:
        shown = [_clip(problem) for problem in problems[:_MAX_PROBLEMS_SHOWN]]
        more = len(problems) - len(shown)
        tail = f"\n... and {more} more." if more else ""
        raise WhatsAppValidationError(
            f"{len(problems)} of {len(entries)} recipient(s) are invalid; nothing was sent:\n"
            + "\n".join(shown)
            + tail
        )
    if duplicates:
        log.warning("%d recipient(s) appeared more than once; each is sent one message.", duplicates)
    return BulkPlan(planned, shared)


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def upload_once(plan: BulkPlan, upload: Callable[[str, Any], str]) -> BulkPlan:
    """Upload the shared message's file (if any) once, and send its media id to everyone."""
    target = plan.upload_target()
    if target is None:
        return plan
    media_type, file_path = target
    media_id = upload(media_type, file_path)
    log.info("Uploaded %s once for the bulk send: media id %s.", file_path, media_id)
    return plan.with_media_id(media_id)
