"""Waiting for the answer to a sent message: one assessment of the event store, and its trigger.

The reply sensor and the approval operator ask the same question of the store (has one of these
messages been answered by someone allowed to answer it?), in poke mode from the worker and deferred
from the triggerer. :func:`assess` is that question, asked once; :class:`WhatsAppReplyTrigger` asks it
every ``poke_interval`` seconds from the triggerer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.spec.vocabulary import INBOUND_REACTION, MESSAGE_FAILED_STATUS
from airflow_provider_whatsapp.triggers._events import TIMEOUT, EventStoreTrigger

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_whatsapp.webhooks.events import InboundMessage, StatusEvent
    from airflow_provider_whatsapp.webhooks.store import EventStore

# Outcomes of one look (also the ``status`` of the trigger's event).
REPLIED = "replied"
FAILED = "failed"
WAITING = "waiting"


@dataclass(frozen=True)
class Assessment:
    """What one look at the store found.

    :param outcome: :data:`REPLIED`, :data:`FAILED` or :data:`WAITING`.
    :param reply: the answer that counts (``REPLIED``).
    :param message_id: the sent message it answers (``REPLIED``), or the failed one (``FAILED``).
    :param failure: the ``failed`` status event (``FAILED``: every message failed, so no answer can come).
    :param ignored: answers that did not count (from a number not allowed to answer, or not a button
        of ours), so the caller can log them once.
    """

    outcome: str
    reply: InboundMessage | None = None
    message_id: str | None = None
    failure: StatusEvent | None = None
    ignored: tuple[InboundMessage, ...] = ()


def assess(
    store: EventStore,
    message_ids: Iterable[str],
    *,
    allowed_senders: Iterable[str] = (),
    button_ids: Iterable[str] = (),
) -> Assessment:
    """Look in the store for the first answer that counts to one of ``message_ids``.

    An answer counts when it comes from the message's original recipient (the ``recipient_id`` of its
    status events: until one is stored, nobody's answer counts) or from one of ``allowed_senders``,
    and, when ``button_ids`` is given, when it is a tap on one of those buttons. When every message
    has failed (a ``failed`` status), no answer can come: the outcome is :data:`FAILED`.

    Each message costs two reads of the store (its status, its replies); nothing is scanned.
    """
    allowed = frozenset(allowed_senders)
    buttons = frozenset(button_ids)
    answers: list[tuple[int, str, InboundMessage]] = []
    ignored: list[InboundMessage] = []
    failures: list[StatusEvent] = []
    ids = list(dict.fromkeys(message_ids))
    for message_id in ids:
        status = store.status(message_id)
        recipient = status.recipient_id if status is not None else None
        if status is not None and status.status == MESSAGE_FAILED_STATUS:
            failures.append(status)
        for reply in store.replies(message_id):
            if reply.type == INBOUND_REACTION:
                continue  # an emoji on the message (or one taken back) is not an answer to it
            may_answer = reply.sender == recipient or reply.sender in allowed
            if may_answer and (not buttons or reply.button_id in buttons):
                answers.append((reply.timestamp, message_id, reply))
            else:
                ignored.append(reply)
    if answers:
        # The first answer wins, whichever message it answers; the wamid breaks a tie in the same second.
        _, message_id, reply = min(answers, key=lambda item: (item[0], item[2].wamid))
        return Assessment(REPLIED, reply=reply, message_id=message_id, ignored=tuple(ignored))
    if ids and len(failures) == len(ids):
        return Assessment(FAILED, message_id=failures[0].wamid, failure=failures[0], ignored=tuple(ignored))
    return Assessment(WAITING, ignored=tuple(ignored))


def log_ignored(log: Any, ignored: Iterable[InboundMessage], seen: set[str]) -> None:
    """Log, once each, the answers that did not count (``seen`` holds the wamids already logged)."""
    from airflow_provider_whatsapp.redact import mask_phone_number

    for reply in ignored:
        if reply.wamid not in seen:
            seen.add(reply.wamid)
            log.info(
                "Ignoring the answer %s from %s to %s: not from a number allowed to answer, or not one of "
                "the buttons sent",
                reply.wamid,
                mask_phone_number(reply.sender),
                reply.context_id,
            )


class WhatsAppReplyTrigger(EventStoreTrigger):
    """Wait in the triggerer for the first answer that counts to one of ``message_ids``.

    Yields exactly one event: ``{"status": "replied", "message_id", "reply"}`` (``reply`` is the
    stored :class:`~airflow_provider_whatsapp.webhooks.events.InboundMessage` as a dict),
    ``{"status": "failed", "message_id", "event"}`` (every message failed; ``event`` is the status event
    as a dict), ``{"status": "timeout", "message_ids"}`` or ``{"status": "error", "message"}`` (the store
    cannot be opened). Serialised with the store's description: no secret.

    :param message_ids: the sent messages (wamids) whose answers count.
    :param allowed_senders: numbers (digits) whose answers count besides each message's recipient.
    :param button_ids: when given, only a tap on one of these buttons counts.
    :param store: the event store's description (see :class:`~._events.EventStoreTrigger`).
    :param poke_interval: seconds between two looks at the store.
    :param end_time: epoch seconds after which a ``timeout`` event is yielded; ``None`` waits forever.
    """

    def __init__(
        self,
        *,
        message_ids: list[str],
        allowed_senders: list[str] | None = None,
        button_ids: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.message_ids = list(message_ids)
        self.allowed_senders = list(allowed_senders or [])
        self.button_ids = list(button_ids or [])
        self._logged: set[str] = set()

    def arguments(self) -> dict[str, Any]:
        return {
            "message_ids": self.message_ids,
            "allowed_senders": self.allowed_senders,
            "button_ids": self.button_ids,
        }

    def look(self, store: EventStore) -> dict[str, Any] | None:
        found = assess(
            store, self.message_ids, allowed_senders=self.allowed_senders, button_ids=self.button_ids
        )
        log_ignored(self.log, found.ignored, self._logged)
        return outcome_payload(found)

    def timeout_event(self) -> dict[str, Any]:
        return {"status": TIMEOUT, "message_ids": self.message_ids}


def outcome_payload(found: Assessment) -> dict[str, Any] | None:
    """A decided :class:`Assessment` as the trigger's event payload; ``None`` while waiting."""
    if found.outcome == REPLIED and found.reply is not None:
        return {"status": REPLIED, "message_id": found.message_id, "reply": found.reply.as_dict()}
    if found.outcome == FAILED and found.failure is not None:
        return {"status": FAILED, "message_id": found.message_id, "event": found.failure.as_dict()}
    return None


def reply_from(payload: dict[str, Any] | None, *, on_timeout: Any) -> tuple[InboundMessage, str | None]:
    """The answer and the message it answers from a ``replied`` payload; raise for every other outcome
    (the typed error of a failed message, ``on_timeout(message)`` for a timeout, a permanent error for
    anything unexpected)."""
    from airflow_provider_whatsapp.triggers.status import failure_error
    from airflow_provider_whatsapp.webhooks.events import InboundMessage

    payload = payload or {}
    status = payload.get("status")
    if status == REPLIED:
        return InboundMessage.from_dict(payload["reply"]), payload.get("message_id")
    if status == FAILED:
        raise failure_error(payload)
    if status == TIMEOUT:
        raise on_timeout(f"No answer to {', '.join(payload.get('message_ids') or [])} in time.")
    from airflow_provider_whatsapp.errors import WhatsAppPermanentError

    raise WhatsAppPermanentError(
        str(payload.get("message") or f"Unexpected event from the trigger: {str(payload)[:300]}")
    )
