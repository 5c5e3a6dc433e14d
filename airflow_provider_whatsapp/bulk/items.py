"""Turn a bulk send's arguments into validated ``(recipient, payload)`` items, before anything is sent.

Every recipient is checked, and every per-recipient template built, before the first request: one
bad entry among thousands fails the task with the entry's position and the reason, and nothing is
sent.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from collections.abc import Mapping
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


@dataclass
class BulkPlan:
    """The validated recipients with their messages; payloads are built by :meth:`items`."""

    recipients: list[tuple[str, OutgoingMessage]]
    shared: OutgoingMessage | None

    def upload_target(self) -> tuple[str, Any] | None:
        """``(media_type, file)`` when the shared message needs its file uploaded first."""
        return self.shared.upload_target() if self.shared is not None else None

    def with_media_id(self, media_id: str) -> BulkPlan:
        assert self.shared is not None
        shared = self.shared.with_media_id(media_id)
        swapped = [(to, shared if message is self.shared else message) for to, message in self.recipients]
        return BulkPlan(swapped, shared)

    def items(self) -> list[BulkItem]:
        payloads: dict[int, dict[str, Any]] = {}
        built = []
        for to, message in self.recipients:
            # The shared message's object is built once and reused: 10 000 recipients, one content().
            key = id(message)
            if key not in payloads:
                payload = message.to_payload(to)
                payloads[key] = {k: v for k, v in payload.items() if k != "to"}
            built.append(BulkItem(to=to, payload={"to": to, **payloads[key]}))
        return built


def parse_recipients(recipients: Any) -> list[Any]:
    """Recipients as a list: a list or tuple as it is; a string rendered by Jinja or pulled from XCom
    (a JSON or Python list, or numbers separated by commas, semicolons or new lines) is parsed.
    """
    if isinstance(recipients, (list, tuple)):
        return list(recipients)
    if isinstance(recipients, (str, int)) and not isinstance(recipients, bool):
        text = str(recipients).strip()
        if not text:
            return []
        if text[0] in "[(":
            for parse in (json.loads, ast.literal_eval):
                try:
                    value = parse(text)
                except (ValueError, SyntaxError):
                    continue
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

    chosen: dict[str, tuple[int, OutgoingMessage]] = {}
    planned: list[tuple[str, OutgoingMessage]] = []
    duplicates = 0
    for position, entry in enumerate(entries):
        if isinstance(entry, Mapping):
            if "to" not in entry:
                problems.append(f"recipients[{position}]: a recipient dict needs 'to'.")
                continue
            raw_to = entry["to"]
        else:
            raw_to, entry = entry, {}
        try:
            to = normalize_recipient(raw_to)
        except WhatsAppValidationError as error:
            problems.append(f"recipients[{position}]: {error.message}")
            continue
        own = per_recipient(position, entry)
        if own is None:
            continue
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
        shown = problems[:_MAX_PROBLEMS_SHOWN]
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
