"""``confirm=``: the checks of its arguments at DAG parse time, and the wait after a send in a worker.

Cheap to import (operators import it on every DAG parse): the event store and the triggers are
imported when a task first waits.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from airflow_provider_whatsapp.webhooks.store import EventStore

#: How long a task waits for the status it asked to ``confirm`` before it fails (without resending).
DEFAULT_CONFIRM_TIMEOUT = 600.0
#: Seconds between two looks at the event store while confirming.
DEFAULT_CONFIRM_POKE_INTERVAL = 5.0


def check_target(field: str, value: Any, *, optional: bool = False) -> str | None:
    """``value`` if it is a status a message can be waited for (``None`` too when ``optional``); else an
    error naming the argument and the allowed values."""
    from airflow_provider_whatsapp.spec.vocabulary import MESSAGE_STATUSES

    if (optional and value is None) or (isinstance(value, str) and value in MESSAGE_STATUSES):
        return value
    from airflow_provider_whatsapp.errors import WhatsAppValidationError

    allowed = ", ".join(repr(status) for status in MESSAGE_STATUSES)
    raise WhatsAppValidationError(
        f"{field}: must be {'None or ' if optional else ''}one of {allowed}, not {_shown(value)}"
    )


def check_message_id(field: str, value: Any) -> str:
    """``value`` if it is a message id (``wamid...``); else an error naming the argument and the rule."""
    from airflow_provider_whatsapp.spec.grammar import is_message_id

    if is_message_id(value):
        return str(value)
    from airflow_provider_whatsapp.errors import WhatsAppValidationError
    from airflow_provider_whatsapp.spec.limits import WAMID_MAX_CHARS

    raise WhatsAppValidationError(
        f"{field}: must be a message id (wamid...): 1 to {WAMID_MAX_CHARS} printable ASCII "
        f"characters without spaces, not {_shown(value)}"
    )


def check_seconds(field: str, value: Any) -> float:
    """``value`` (seconds or a ``timedelta``) as a positive, finite number of seconds."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    is_number = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
    if is_number and math.isfinite(seconds) and seconds > 0:
        return float(seconds)
    from airflow_provider_whatsapp.errors import WhatsAppValidationError

    raise WhatsAppValidationError(
        f"{field}: must be a positive number of seconds or a timedelta, not {_shown(value)}"
    )


def _shown(value: Any) -> str:
    # A hostile value may be megabytes long: its start and its length, not all of it.
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:60]}... ({len(str(value))} characters)"


def confirm_in_process(
    store: EventStore,
    message_id: str,
    target: str,
    *,
    poke_interval: float,
    end_time: float | None,
    log: Any,
) -> dict[str, Any]:
    """Wait in this process until ``message_id`` reaches ``target``; returns its status event.

    Raises the typed error of a ``failed`` status, and
    :class:`~airflow_provider_whatsapp.errors.WhatsAppNotConfirmedError` when ``end_time`` passes first.
    """
    from airflow_provider_whatsapp.errors import WhatsAppNotConfirmedError
    from airflow_provider_whatsapp.triggers._events import TIMEOUT, tolerant, wait_blocking
    from airflow_provider_whatsapp.triggers.status import look, not_confirmed_text, settle

    outcome = wait_blocking(
        tolerant(lambda: look(store, message_id, target), log), poke_interval=poke_interval, end_time=end_time
    )
    if outcome is None:
        seen = tolerant(lambda: {"event": store.status(message_id)}, log)()
        event = seen["event"] if seen else None
        text = not_confirmed_text(message_id, target, event.status if event is not None else None)
        outcome = {"status": TIMEOUT, "message_id": message_id, "target": target, "message": text}
    return settle(outcome, on_timeout=WhatsAppNotConfirmedError)


@dataclass
class Confirmation:
    """How many sent messages reached the status a task waited for (see :func:`confirm_all`).

    :param confirmed: messages at the target status or beyond.
    :param failed: one ``{"to", "wamid", "code", "title"}`` per message that failed by status, in the
        order the failures were seen.
    :param unconfirmed: ``{"to", "wamid", "seen"}`` per message still undecided at the end time
        (``seen``: its last status, or ``None``).
    """

    confirmed: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    unconfirmed: list[dict[str, Any]] = field(default_factory=list)


def confirm_all(
    store: EventStore,
    messages: Mapping[str, str],
    target: str,
    *,
    poke_interval: float,
    end_time: float | None,
    log: Any,
) -> Confirmation:
    """Wait in this process until every message of ``messages`` (wamid -> recipient) reached ``target``
    or failed, or ``end_time`` passed. Each look reads the status of each undecided message once; a
    message is not read again once decided. Raises nothing for a failure: the caller weighs them."""
    from airflow_provider_whatsapp.triggers._events import tolerant, wait_blocking
    from airflow_provider_whatsapp.triggers.status import FAILED, assess

    pending = dict(messages)
    seen: dict[str, str] = {}
    confirmation = Confirmation()

    def look_at_all() -> dict[str, Any] | None:
        before = len(pending)
        for wamid in list(pending):
            event = store.status(wamid)
            outcome = assess(event, target)
            if outcome is None or event is None:
                if event is not None:
                    seen[wamid] = event.status
                continue
            to = pending.pop(wamid)
            if outcome == FAILED:
                error = event.errors[0] if event.errors else None
                confirmation.failed.append(
                    {
                        "to": to,
                        "wamid": wamid,
                        "code": error.code if error is not None else None,
                        "title": error.title if error is not None else None,
                    }
                )
            else:
                confirmation.confirmed += 1
        if len(pending) != before:
            log.info(
                "Confirming: %d %s, %d failed, %d still waiting.",
                confirmation.confirmed,
                target,
                len(confirmation.failed),
                len(pending),
            )
        return None if pending else {}  # anything but None ends the wait

    wait_blocking(tolerant(look_at_all, log), poke_interval=poke_interval, end_time=end_time)
    confirmation.unconfirmed = [
        {"to": to, "wamid": wamid, "seen": seen.get(wamid)} for wamid, to in pending.items()
    ]
    return confirmation


# --- after a send: no error Airflow retries ------------------------------------------------------
# A task that sent a message and then waits (confirm=, an approval) must not end with an error Airflow
# retries: the retry runs ``execute`` again, and the message goes out again (or every approver is asked
# again). Whatever breaks the wait after the send becomes a fail-type error that says so.


def not_sent_again(sent: str, why: str) -> BaseException:
    """The fail-type error for a wait after a send that broke: ``sent`` says what went out, ``why`` what
    broke."""
    from airflow_provider_whatsapp.errors import WhatsAppNotConfirmedError

    return WhatsAppNotConfirmedError(
        f"{sent} was sent, but waiting for the outcome failed: {why[:500]}. It is not sent again: the "
        "task fails without Airflow retries (a retry would send it a second time). Check the WhatsApp "
        "event store (events_path) and the triggerer's log, then clear the task only if a second "
        "message is acceptable."
    )


@contextlib.contextmanager
def nothing_sent_again(sent: str) -> Iterator[None]:
    """Let through what already ends the task for good (a fail-type error, a skip, a deferral); turn
    anything else raised in the block (an error Airflow would retry, the task's ``execution_timeout``)
    into :func:`not_sent_again`, chained from it."""
    from airflow_provider_whatsapp._compat import (
        AirflowFailException,
        AirflowSkipException,
        AirflowTaskTimeout,
    )

    try:
        yield
    except (AirflowFailException, AirflowSkipException):
        raise
    except (Exception, AirflowTaskTimeout) as error:
        raise not_sent_again(sent, f"{type(error).__name__}: {error}") from error


def resume_without_resending(
    resume: Callable[[], Any], *, next_method: str, next_kwargs: dict[str, Any] | None, log: Any, sent: str
) -> Any:
    """``BaseOperator.resume_execution`` for a task that sent before it deferred.

    Airflow resumes a task whose trigger failed (it raised, could not be imported in the triggerer, or
    timed out) with ``next_method`` ``__fail__``, and raises a plain, retried ``TaskDeferralError``;
    here that becomes :func:`not_sent_again`. ``resume`` is the base class's ``resume_execution`` bound
    to its arguments; what it raises is turned the same way.
    """
    from airflow_provider_whatsapp._compat import TRIGGER_FAILED_METHOD

    if next_method == TRIGGER_FAILED_METHOD:
        details = next_kwargs or {}
        traceback = details.get("traceback")
        if traceback:
            log.error("The trigger failed:\n%s", "\n".join(str(line) for line in traceback))
        raise not_sent_again(sent, f"the trigger failed ({details.get('error') or 'no reason given'})")
    with nothing_sent_again(sent):
        return resume()
