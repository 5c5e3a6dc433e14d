"""Whether a sent message reached a status: one assessment for the status sensor, for ``confirm`` on the
send operators and for the notifier, in a worker or in the triggerer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.redact import mask_phone_number
from airflow_provider_whatsapp.triggers._events import TIMEOUT, EventStoreTrigger

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_whatsapp.errors import WhatsAppError
    from airflow_provider_whatsapp.webhooks.events import StatusEvent
    from airflow_provider_whatsapp.webhooks.store import EventStore

# Outcomes of a look at a message's status (also the ``status`` of the trigger's event).
REACHED = "reached"
FAILED = "failed"


def assess(event: StatusEvent | None, target: str) -> str | None:
    """:data:`REACHED` when ``event`` is ``target`` or a later status, :data:`FAILED` when the message
    failed, ``None`` while there is still something to wait for."""
    if event is None:
        return None
    if event.failed:
        return FAILED
    return REACHED if event.reached(target) else None


def look(store: EventStore, message_id: str, target: str) -> dict[str, Any] | None:
    """One read of the store: the decided outcome as a trigger event payload, or ``None`` to wait on."""
    return decide(store.status(message_id), message_id, target)


def decide(event: StatusEvent | None, message_id: str, target: str) -> dict[str, Any] | None:
    """The outcome of :func:`assess` as a trigger event payload, or ``None`` to wait on."""
    outcome = assess(event, target)
    if outcome is None or event is None:
        return None
    return {"status": outcome, "message_id": message_id, "target": target, "event": event.as_dict()}


def failure_class(code: int | None) -> tuple[type[WhatsAppError], str]:
    """The error class and advice for a message that failed by status with Graph error ``code``.

    A code whose class would be retried by Airflow still fails for good: the failure is final for this
    message, and the task that waited for it should say so rather than wait again.
    """
    from airflow_provider_whatsapp.errors import (
        WhatsAppPermanentError,
        WhatsAppRetryableError,
        error_class_for_code,
    )

    known = error_class_for_code(code)
    if known is None:
        return WhatsAppPermanentError, "WhatsApp reported that the message could not be delivered."
    cls, advice = known
    return (WhatsAppPermanentError if issubclass(cls, WhatsAppRetryableError) else cls), advice


def failure_error(payload: dict[str, Any]) -> WhatsAppError:
    """The typed error for a ``failed`` outcome: the class and advice of its Graph code (see
    :func:`failure_class`), Graph's title, message and details, the wamid and the (masked) recipient."""
    event = payload.get("event") or {}
    errors = event.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {}
    code = first.get("code") if isinstance(first.get("code"), int) else None
    details = first.get("details")
    cls, advice = failure_class(code)
    said = "; ".join(str(part) for part in (first.get("title"), first.get("message"), details) if part)
    graph = f" (Graph error {code}: {said})" if code is not None else (f" ({said})" if said else "")
    recipient = event.get("recipient_id")
    to = f" to {mask_phone_number(str(recipient))}" if recipient else ""
    text = (
        f"WhatsApp accepted message {payload.get('message_id')}{to}, then reported it failed: {advice}{graph}"
    )
    return cls(text, code=code, details=str(details) if details else None)


def not_confirmed_text(message_id: str, target: str, seen: str | None) -> str:
    """Why a wait for ``target`` ended without an answer, and what it does not mean."""
    where = f"last status seen: {seen}" if seen else "no status seen"
    return (
        f"WhatsApp accepted message {message_id}, but it was not confirmed {target} in time ({where}). "
        "It was not sent again: it may still arrive. Check that WhatsApp's webhooks reach the receiver "
        "and that it writes to the same events_path."
    )


class WhatsAppMessageStatusTrigger(EventStoreTrigger):
    """Wait in the triggerer until a sent message reaches ``target`` (or beyond), or fails.

    Yields one event: ``{"status": "reached" | "failed" | "timeout" | "error", "message_id", "target",
    "event"?, "message"?}``; ``event`` is the status event as a dict. Serialised with the wamid, the
    target, the store's description, the interval and the end time: no secret.

    :param message_id: the wamid of the sent message.
    :param target: ``sent``, ``delivered`` or ``read``.
    :param store: the event store's description (see :class:`~.EventStoreTrigger`).
    :param poke_interval: seconds between two looks.
    :param end_time: epoch seconds after which a ``timeout`` event is yielded; ``None`` waits forever.
    """

    def __init__(self, *, message_id: str, target: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message_id = message_id
        self.target = target
        self._seen: str | None = None

    def arguments(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "target": self.target}

    def look(self, store: EventStore) -> dict[str, Any] | None:
        event = store.status(self.message_id)
        self._seen = event.status if event is not None else None
        outcome = decide(event, self.message_id, self.target)
        if outcome is None:
            self.log.info(
                "Message %s is %s; waiting for %s", self.message_id, self._seen or "not seen yet", self.target
            )
        return outcome

    def timeout_event(self) -> dict[str, Any]:
        return {
            "status": TIMEOUT,
            "message_id": self.message_id,
            "target": self.target,
            "seen": self._seen,
            "message": not_confirmed_text(self.message_id, self.target, self._seen),
        }


def settle(payload: dict[str, Any] | None, *, on_timeout: Callable[[str], BaseException]) -> dict[str, Any]:
    """The status event of a ``reached`` outcome; raise for every other one (the typed error for a
    failure, ``on_timeout(message)`` for a timeout, a permanent error for anything unexpected)."""
    payload = payload or {}
    status = payload.get("status")
    if status == REACHED:
        event: dict[str, Any] = payload["event"]
        return event
    if status == FAILED:
        raise failure_error(payload)
    message = str(payload.get("message") or f"Unexpected event from the trigger: {str(payload)[:300]}")
    if status == TIMEOUT:
        raise on_timeout(message)
    from airflow_provider_whatsapp.errors import WhatsAppPermanentError

    raise WhatsAppPermanentError(message)
