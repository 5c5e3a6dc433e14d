"""Turn a bulk send's arguments into validated ``(recipient, payload)`` items, before anything is sent.

Every recipient is checked before the first request: one bad entry among thousands fails the task
with the entry's position (list index, or line / CSV row of a file) and the reason, and nothing is
sent. Values of any shape (nested without end, of odd types) end in that same error, never in a
``RecursionError`` or ``TypeError``.

Planning keeps plain data: the recipients as given (or the file they come from, see :mod:`.sources`)
and one int per distinct number to find duplicates. Payloads are built again, one at a time, when
the engine takes the next item, so a million recipients never sit in memory as models or payloads.

Each item carries a fingerprint of its payload (:func:`payload_fingerprint`), which the journal keeps
with every attempt so that a new try can tell whether a recipient got this message or another one.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import math
import re
import zlib
from collections.abc import Mapping, Set
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

from airflow_provider_whatsapp.bulk.engine import BulkItem
from airflow_provider_whatsapp.bulk.sources import BadLine, RecipientSource, is_location
from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.messages import TemplateMessage, normalize_recipient
from airflow_provider_whatsapp.messages.template import TemplateParameter, check_parameters

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from airflow_provider_whatsapp.messages import OutgoingMessage

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# Keys a recipient dict may carry in template mode, besides "to".
TEMPLATE_RECIPIENT_KEYS = ("body_parameters", "components", "header")
_SEPARATORS = re.compile(r"[,;\n]+")
_MAX_PROBLEMS_SHOWN = 10
# A valid recipient, to build a payload skeleton whose "to" is then replaced.
_ANY_RECIPIENT = "10000000"
# A problem line quotes the value it is about: keep a huge value from making a huge error.
_MAX_PROBLEM_CHARS = 300
_DIGEST_MASK = (1 << 64) - 1
# Deepest nesting of lists and dicts accepted in a recipient or a message argument. The deepest real
# payload (an interactive list: message, interactive, action, sections, section, rows, row) is 7.
MAX_NESTING = 16


def _number(value: Any) -> str:
    """:func:`normalize_recipient`, refusing a negative number (whose sign it would read as a dash)."""
    if type(value) is int and value < 0:
        raise WhatsAppValidationError(f"to: {value} is negative; a phone number has no sign.")
    return normalize_recipient(value)


# The dedupe key of a recipient: its digits as a number, with a leading 1 so that leading zeros count.
def _key(to: str) -> int:
    return int("1" + to)


def share_of(to: str, shares: int) -> int:
    """Which of ``shares`` workers sends to ``to`` (normalised): stable across processes and runs."""
    # Normalised numbers are ASCII digits; anything else (a damaged journal's entry) still gets a share.
    return zlib.crc32(to.encode("utf-8", "surrogatepass")) % shares


@dataclass
class BulkPlan:
    """The validated recipients with their messages: plain data, payloads built by :meth:`items`.

    The plan keeps the recipients as they were given (a list, or the :class:`RecipientSource` of a file,
    read again by each pass) and the shared message; each recipient's payload is built when the sender
    takes it. Picklable, and small: a worker process can re-iterate its own share.

    :param entries: the recipients as given (numbers or dicts), or the file they are read from.
    :param shared: the message (or template with the shared values) sent to recipients without fields
        of their own.
    :param template_defaults: the template's shared fields, which per-recipient fields override;
        ``None`` for a ``message`` send.
    :param count: distinct recipients (duplicates are sent once).
    :param uploaded: ``(media id, stand-in)`` once the shared message's file was uploaded: fingerprints
        use the stand-in, which names the file, so that a new try's upload (a new id) does not look
        like a changed message.
    """

    entries: Sequence[Any] | RecipientSource
    shared: OutgoingMessage
    template_defaults: dict[str, Any] | None
    count: int
    uploaded: tuple[str, str] | None = None
    # (template content, index of its body component) of the shared template with a body, or () when
    # per-recipient parameters cannot simply replace its body; worked out on first use.
    _body_slot: tuple[dict[str, Any], int] | tuple[()] | None = field(default=None, repr=False, compare=False)
    # The shared message's payload (sent to a placeholder number) and its body texts when a
    # PersonalTemplate can say the same: what a recipient's own message is compared with, worked out on
    # first use.
    _shared_sent: tuple[dict[str, Any], tuple[str, ...] | None] | None = field(
        default=None, repr=False, compare=False
    )

    def upload_target(self) -> tuple[str, Any] | None:
        """``(media_type, file)`` when the shared message needs its file uploaded first."""
        return self.shared.upload_target()

    def with_media_id(self, media_id: str) -> BulkPlan:
        target = self.shared.upload_target()
        stand_in = _upload_stand_in(target[1]) if target is not None else media_id
        return replace(
            self,
            shared=self.shared.with_media_id(media_id),
            uploaded=(media_id, stand_in),
            _body_slot=None,
            _shared_sent=None,
        )

    def fingerprints(self) -> Iterator[tuple[str, str | None]]:
        """``(recipient, payload fingerprint)`` of each recipient, built one at a time; also before the
        shared file is uploaded."""
        target = self.upload_target()
        plan = self if target is None else self.with_media_id(_upload_stand_in(target[1]))
        return ((item.to, item.fingerprint) for item in plan.items())

    def items(self, share: tuple[int, int] | None = None) -> PlannedItems:
        """The items to send, each built when it is taken; ``share=(k, n)``: only those whose
        :func:`share_of` is ``k`` of ``n``, for the k-th of n workers."""
        if share is not None:
            k, n = share
            if not (isinstance(k, int) and isinstance(n, int) and 0 <= k < n):
                raise ValueError(f"share must be (k, n) with 0 <= k < n, got {share!r}")
        return PlannedItems(self, share)

    # --- one recipient ----------------------------------------------------------------------------

    def numbered(self) -> Iterator[tuple[int, Any]]:
        """``(position, entry)``: list positions from 0, or a file's line (row) numbers."""
        if isinstance(self.entries, RecipientSource):
            return self.entries.entries()
        return enumerate(self.entries)

    def where(self, position: int) -> str:
        if isinstance(self.entries, RecipientSource):
            return self.entries.where(position)
        return f"recipients[{position}]"

    def recipient(self, entry: Any) -> tuple[str, Mapping[str, Any]]:
        """``(normalised number, the entry's other fields)``; raises what is wrong with the entry."""
        if isinstance(entry, BadLine):
            raise WhatsAppValidationError(entry.reason)
        if not isinstance(entry, str) and too_deep(entry):
            raise WhatsAppValidationError(f"nested more than {MAX_NESTING} levels deep (or in a cycle).")
        if isinstance(entry, Mapping):
            if "to" not in entry:
                raise WhatsAppValidationError("a recipient dict needs 'to'.")
            return _number(entry["to"]), entry
        return _number(entry), {}

    def message(self, entry: Mapping[str, Any]) -> OutgoingMessage | PersonalTemplate:
        """The message of a recipient with these fields: the shared one, or a template of its own."""
        extra = [k for k in entry if k != "to"]
        if not extra:
            return self.shared
        if self.template_defaults is None:
            raise WhatsAppValidationError(
                f"{extra[0]!r} is not allowed with message=...; per-recipient values "
                f"({', '.join(TEMPLATE_RECIPIENT_KEYS)}) are for template sends."
            )
        unknown = [k for k in extra if k not in TEMPLATE_RECIPIENT_KEYS]
        if unknown:
            allowed = ", ".join(TEMPLATE_RECIPIENT_KEYS)
            raise WhatsAppValidationError(
                f"{unknown[0]!r} is not a per-recipient field (allowed: to, {allowed})."
            )
        if extra == ["body_parameters"]:
            personal = self._personal(entry["body_parameters"])
            if personal is not None:
                return personal
        own = TemplateMessage.build(**_drop_none({**self.template_defaults, **{k: entry[k] for k in extra}}))
        if own.upload_target() is not None:
            raise WhatsAppValidationError(
                "a per-recipient header cannot be a file_path (it would be uploaded once per recipient); "
                "upload it once and give its media_id."
            )
        return own

    def _personal(self, texts: Any) -> PersonalTemplate | None:
        """The common case without a pydantic model per recipient: the shared template with body text
        parameters of the recipient's own, checked by the template's own rule. ``None`` when the case
        is not that simple (or the texts break the rule: the model then says how)."""
        slot = self.body_slot()
        if not slot or type(texts) is not list or not texts:
            return None
        shown = []
        for index, value in enumerate(texts):
            kind = type(value)
            if kind is str:
                shown.append(value)
            elif kind is int or (kind is float and math.isfinite(value)):
                shown.append(str(value))  # as the model reads a number given as a text parameter
            elif kind is float:
                raise WhatsAppValidationError(
                    f"body_parameters[{index}]: {value} is not a number a message can carry; give a text."
                )
            else:
                return None
        try:
            check_parameters("body", cast("Any", [_Text("text", text) for text in shown]), "body_parameters")
        except ValueError:
            return None
        return PersonalTemplate(slot, tuple(shown))

    def body_slot(self) -> tuple[dict[str, Any], int] | tuple[()]:
        """:func:`_body_slot` of the shared message, worked out once."""
        if self._body_slot is None:
            self._body_slot = _body_slot(self.shared)
        return self._body_slot

    def digest(self, message: OutgoingMessage | PersonalTemplate) -> int:
        """A non-negative hash of what ``message`` sends (its payload without ``to``), 0 for exactly what
        the shared message sends: equal whichever way the fields were given (texts or parameter objects,
        a field given as ``null``, a recipient's own parameters equal to the shared ones), so that a
        recipient given twice with one effective message is a duplicate, not a conflict. Recipients
        with only body texts of their own (the common case) are hashed by their texts, never built
        into a payload."""
        if message is self.shared:
            return 0
        if self._shared_sent is None:
            sent = self.shared.to_payload(_ANY_RECIPIENT)
            self._shared_sent = (sent, self._texts_sent(sent))
        shared_sent, shared_texts = self._shared_sent
        if isinstance(message, PersonalTemplate):
            texts: tuple[str, ...] | None = message.texts
        else:
            sent = message.to_payload(_ANY_RECIPIENT)
            if sent == shared_sent:
                return 0
            texts = self._texts_sent(sent)
            if texts is None:
                text = json.dumps(sent, sort_keys=True, separators=(",", ":"), default=str)
                return hash(("payload", text)) & _DIGEST_MASK | 1
        if texts == shared_texts:
            return 0
        return hash(texts) & _DIGEST_MASK | 1

    def _texts_sent(self, sent: dict[str, Any]) -> tuple[str, ...] | None:
        """The body texts of ``sent`` when the shared template with those texts (a
        :class:`PersonalTemplate`) sends exactly ``sent``; else ``None``."""
        slot = self.body_slot()
        if not slot:
            return None
        try:
            parameters = sent[sent["type"]]["components"][slot[1]]["parameters"]
            texts = tuple(p["text"] for p in parameters if p["type"] == "text")
        except (KeyError, IndexError, TypeError):
            return None
        if PersonalTemplate(slot, texts).to_payload(_ANY_RECIPIENT) != sent:
            return None
        return texts

    def checked(self, position: int, entry: Any) -> tuple[str, OutgoingMessage | PersonalTemplate]:
        """:meth:`recipient` and :meth:`message`, any failure as one error naming the position."""
        to, fields = self.named(position, self.recipient, entry)
        return to, self.named(position, self.message, fields)

    def named(self, position: int, step: Callable[[Any], _T], value: Any) -> _T:
        """``step(value)``, any failure as one error naming the position."""
        try:
            return step(value)
        except WhatsAppValidationError as error:
            raise WhatsAppValidationError(f"{self.where(position)}: {error.message}") from None
        except (ValueError, TypeError, OverflowError, RecursionError) as error:
            # Whatever the value is, it names its position instead of escaping as a bare exception.
            raise WhatsAppValidationError(
                f"{self.where(position)}: cannot be read ({type(error).__name__}: {error})."
            ) from None

    def body(self, to: str, message: OutgoingMessage | PersonalTemplate) -> tuple[dict[str, Any], str]:
        """The payload without ``to``, and its fingerprint (the uploaded file's id as its stand-in)."""
        payload = message.to_payload(to)
        del payload["to"]
        compared = payload if self.uploaded is None else _swap_media_id(payload, *self.uploaded)
        return payload, payload_fingerprint(compared)


class _Text(NamedTuple):
    """A text parameter as :func:`check_parameters` reads one, without building a model."""

    type: str
    text: str


def _body_slot(shared: OutgoingMessage) -> tuple[dict[str, Any], int] | tuple[()]:
    """The shared template's payload with a body placeholder, and where the body is in its components;
    ``()`` when per-recipient body parameters need the model (another message type, a body in
    ``components``, a header file to upload)."""
    if not isinstance(shared, TemplateMessage) or shared.upload_target() is not None:
        return ()
    if any(component.type == "body" for component in shared.components or ()):
        return ()
    placeholder = TemplateParameter(type="text", text="-")
    payload = shared.model_copy(update={"body_parameters": [placeholder]}).to_payload(_ANY_RECIPIENT)
    components = payload[shared.message_type]["components"]
    return payload, next(i for i, component in enumerate(components) if component["type"] == "body")


class PersonalTemplate:
    """The shared template with a recipient's own body text parameters, as plain data: the payload a
    model built from the same fields gives, without a model per recipient."""

    __slots__ = ("slot", "texts")

    def __init__(self, slot: tuple[dict[str, Any], int], texts: tuple[str, ...]) -> None:
        self.slot = slot
        self.texts = texts

    def to_payload(self, to: str) -> dict[str, Any]:
        payload, position = self.slot
        kind = payload["type"]
        components = list(payload[kind]["components"])
        components[position] = {
            "type": "body",
            "parameters": [{"type": "text", "text": t} for t in self.texts],
        }
        return {**payload, "to": to, kind: {**payload[kind], "components": components}}

    def content(self) -> dict[str, Any]:
        payload = self.to_payload(_ANY_RECIPIENT)
        return payload[payload["type"]]  # type: ignore[no-any-return]


class PlannedItems:
    """The plan's items (or one worker's share of them), built one at a time on each iteration.

    Iterable again and again (each pass reads the recipients again); ``len()`` is the number of
    distinct recipients it yields. A recipient given twice is yielded once, at its first place.
    """

    def __init__(self, plan: BulkPlan, share: tuple[int, int] | None) -> None:
        self.plan = plan
        self.share = share
        self._count = plan.count if share is None else None

    def __len__(self) -> int:
        if self._count is None:
            self._count = sum(1 for _ in self._recipients())
        return self._count

    def _recipients(self) -> Iterator[tuple[int, str, Mapping[str, Any]]]:
        """``(position, number, fields)`` of each distinct recipient in this share, before its message."""
        plan = self.plan
        seen: set[int] = set()
        for position, entry in plan.numbered():
            try:
                to, fields = plan.named(position, plan.recipient, entry)
            except WhatsAppValidationError as error:
                raise _changed(error) from None
            if self.share is not None and share_of(to, self.share[1]) != self.share[0]:
                continue
            key = _key(to)
            if key in seen:
                continue
            seen.add(key)
            yield position, to, fields

    def __iter__(self) -> Iterator[BulkItem]:
        plan = self.plan
        shared_body: tuple[dict[str, Any], str] | None = None
        for position, to, fields in self._recipients():
            try:
                message = plan.named(position, plan.message, fields)
            except WhatsAppValidationError as error:
                raise _changed(error) from None
            if message is plan.shared:
                # The shared payload is built once and reused: 10 000 recipients, one content().
                if shared_body is None:
                    shared_body = plan.body(to, message)
                body, fingerprint = shared_body
            else:
                body, fingerprint = plan.body(to, message)
            yield BulkItem(to=to, payload={"to": to, **body}, fingerprint=fingerprint)


def _changed(error: WhatsAppValidationError) -> WhatsAppValidationError:
    """A failure on a pass after planning: the recipients changed since they were checked."""
    return WhatsAppValidationError(
        f"{error.message} The recipients changed after they were checked: the send stopped here."
    )


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
    if limit >= 2 and _shallow(value):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        kind = type(current)
        if kind is str or kind is int or kind is float or current is None:
            continue  # the usual leaves, without the slower abstract checks below
        if kind is dict or isinstance(current, Mapping):
            children: Any = current.values()
        elif kind is list or isinstance(current, (tuple, Set)):
            children = current
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _shallow(value: Any) -> bool:
    """Whether ``value`` is a plain value, or a dict or list of plain values and lists of plain values
    (two levels): every usual recipient, told apart at a fraction of :func:`too_deep`'s walk."""
    kind = type(value)
    if kind is dict:
        values = value.values()
    elif kind is list:
        values = value
    else:
        return kind is str or kind is int or kind is float or value is None
    for item in values:
        kind = type(item)
        if kind is list:
            for leaf in item:
                if not (type(leaf) is str or type(leaf) is int or type(leaf) is float or leaf is None):
                    return False
        elif not (kind is str or kind is int or kind is float or item is None):
            return False
    return True


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
    """Validate everything; raise one :class:`WhatsAppValidationError` listing what is wrong.

    ``recipients`` is a list (or text listing numbers), or a file (see :mod:`.sources`) read as a
    stream: planning keeps one small number per distinct recipient, never the recipients' payloads.
    """
    from airflow_provider_whatsapp.messages import parse_message

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
    entries: Sequence[Any] | RecipientSource = (
        RecipientSource.of(recipients) if is_location(recipients) else parse_recipients(recipients)
    )
    template_defaults: dict[str, Any] | None = None
    if message is not None:
        try:
            shared = parse_message(message)
        except WhatsAppValidationError as error:
            raise WhatsAppValidationError(f"message: {error.message}") from None
    else:
        template_defaults = {
            "name": template_name,
            "language_code": language_code,
            "components": components,
            "body_parameters": body_parameters,
            "header": header,
        }
        try:
            shared = TemplateMessage.build(**_drop_none(template_defaults))
        except WhatsAppValidationError as error:
            raise WhatsAppValidationError(f"template: {error.message}") from None
    plan = BulkPlan(entries, shared, template_defaults, count=0)
    plan.count, duplicates = _check_all(plan)
    if not plan.count:
        # As with an empty list: nothing to send is not an error (an export with no one in it today).
        source = entries.location if isinstance(entries, RecipientSource) else "the list"
        log.warning("recipients: %s holds no recipients; nothing is sent.", source)
    if duplicates:
        log.warning("%d recipient(s) appeared more than once; each is sent one message.", duplicates)
    return plan


def _check_all(plan: BulkPlan) -> tuple[int, int]:
    """One pass over the recipients: ``(distinct recipients, duplicates)``, or the error listing the
    first problems. Keeps one int per distinct recipient (its number) mapped to one int (where it
    first appeared, and a hash of its payload), so a million recipients take tens of megabytes."""
    problems: list[str] = []
    problem_count = 0
    # number -> position << 64 | hash of the payload body (0: the shared message).
    first_seen: dict[int, int] = {}
    duplicates = entry_count = 0
    for position, entry in plan.numbered():
        entry_count += 1
        try:
            to, message = plan.checked(position, entry)
        except WhatsAppValidationError as error:
            problem_count += 1
            if len(problems) < _MAX_PROBLEMS_SHOWN:
                problems.append(error.message)
            continue
        digest = plan.digest(message)
        key = _key(to)
        earlier = first_seen.get(key)
        if earlier is None:
            first_seen[key] = position << 64 | digest
        elif earlier & _DIGEST_MASK == digest:
            duplicates += 1
        else:
            problem_count += 1
            if len(problems) < _MAX_PROBLEMS_SHOWN:
                problems.append(
                    f"{plan.where(position)}: {to} is already {plan.where(earlier >> 64)} with other "
                    "parameters; a recipient gets one message per bulk send."
                )
    if problem_count:
        shown = [_clip(problem) for problem in problems]
        more = problem_count - len(shown)
        tail = f"\n... and {more} more." if more else ""
        raise WhatsAppValidationError(
            f"{problem_count} of {entry_count} recipient(s) are invalid; nothing was sent:\n"
            + "\n".join(shown)
            + tail
        )
    return len(first_seen), duplicates


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
