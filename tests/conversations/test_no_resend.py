"""No message goes out twice after a send: whatever breaks the wait that follows it (a trigger that
fails in the triggerer, a half-written event file, the task's ``execution_timeout``, approvers of whom
one may have been asked) ends the task with an error Airflow does not retry.

The sends go to the sandbox through real sockets; the waits read a real event store on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import (
    AIRFLOW_V_3_PLUS,
    TRIGGER_FAILED_METHOD,
    AirflowFailException,
    TaskDeferred,
)
from airflow_provider_whatsapp.errors import (
    WhatsAppDeliveryUnknownError,
    WhatsAppNotConfirmedError,
    WhatsAppRateLimitError,
)
from airflow_provider_whatsapp.hooks.maton import MatonHook
from airflow_provider_whatsapp.operators.approval import WhatsAppApprovalOperator
from airflow_provider_whatsapp.operators.messages import WhatsAppSendTextOperator
from airflow_provider_whatsapp.sandbox.controller import WhatsAppSandbox
from airflow_provider_whatsapp.triggers.status import WhatsAppMessageStatusTrigger
from airflow_provider_whatsapp.webhooks.store import EventStore
from tests.conversations.statuses import RECIPIENT, status, store_at, wait_until

pytestmark = pytest.mark.whatsapp_sandbox(auto_deliver=False)

SECOND = "14155550101"
#: What Airflow hands ``resume_execution`` when the trigger raised in the triggerer.
TRIGGER_FAILURE = {"error": "Trigger failure", "traceback": ["Traceback ...", "JSONDecodeError: Expecting"]}


class _TI:
    dag_id, run_id, task_id, map_index, try_number = "nightly", "manual__1", "ask", -1, 1


@pytest.fixture
def store(whatsapp_sandbox: WhatsAppSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EventStore:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_DEFAULT", whatsapp_sandbox.connection_json(events_path=str(tmp_path))
    )
    return store_at(tmp_path)


def text(**kwargs: Any) -> WhatsAppSendTextOperator:
    args: dict[str, Any] = {
        "task_id": "send",
        "to": f"+{RECIPIENT}",
        "body": "nightly load done",
        "confirm": "delivered",
        "confirm_poke_interval": 0.05,
        "confirm_timeout": 60,
        "deferrable": True,
        "retries": 3,
    }
    return WhatsAppSendTextOperator(**{**args, **kwargs})


def approval(**kwargs: Any) -> WhatsAppApprovalOperator:
    args: dict[str, Any] = {
        "task_id": "ask",
        "to": [RECIPIENT, SECOND],
        "body": "Publish?",
        "poke_interval": 0.05,
        "deferrable": True,
        "retries": 3,
    }
    return WhatsAppApprovalOperator(**{**args, **kwargs})


def _half_written(store_root: Path, event: Any, store: EventStore) -> tuple[Path, bytes]:
    """Store ``event``, then cut its file in half (as a reader sees a file still being written)."""
    store.add(event)
    (path,) = (store_root / "statuses").rglob("*.json")
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return path, whole


# --- the trigger: a half-written file is "not decided yet" ---------------------------------------


def test_a_half_written_event_keeps_the_trigger_waiting_and_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_at(tmp_path)
    event = status("wamid.HALF", "delivered")
    path, whole = _half_written(tmp_path, event, store)
    trigger = WhatsAppMessageStatusTrigger(
        message_id=event.wamid, target="delivered", store=store.describe(), poke_interval=0.05, end_time=None
    )
    looks: list[int] = []
    original = trigger.look
    trigger.look = lambda s: looks.append(1) or original(s)  # type: ignore[method-assign]

    def finish_writing() -> None:
        wait_until(lambda: len(looks) >= 4)
        # Whole at once, as the store writes: write_bytes would truncate first, and a look between the
        # truncation and the write would meet an empty file, a second and different half-written state.
        finished = tmp_path / "finishing"  # outside the store, on the same file system
        finished.write_bytes(whole)
        os.replace(finished, path)

    writer = threading.Thread(target=finish_writing, daemon=True)
    writer.start()
    with caplog.at_level(logging.WARNING):
        events = asyncio.run(asyncio.wait_for(_events(trigger), 20))
    writer.join(5)

    assert [e.payload["status"] for e in events] == ["reached"]
    # Airflow 2 logs through logging, Airflow 3 through structlog to stdout: read both.
    logged = "\n".join(r.getMessage() for r in caplog.records) + capsys.readouterr().out
    warnings = [line for line in logged.splitlines() if "Could not read the WhatsApp event store" in line]
    assert len(warnings) == 1, warnings
    assert "JSONDecodeError" in warnings[0]


# --- confirm=: nothing after the send is retried ---------------------------------------------------


def test_a_failed_status_trigger_fails_the_send_for_good(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    task = text()
    with pytest.raises(TaskDeferred):
        task.execute({})  # type: ignore[arg-type]

    with pytest.raises(WhatsAppNotConfirmedError) as raised:
        task.resume_execution(TRIGGER_FAILED_METHOD, dict(TRIGGER_FAILURE), {})  # type: ignore[arg-type]

    assert isinstance(raised.value, AirflowFailException)  # Airflow does not retry it
    assert "Trigger failure" in str(raised.value) and "not sent again" in str(raised.value)
    assert len(whatsapp_sandbox.messages_to(RECIPIENT)) == 1


def test_resuming_with_the_trigger_event_still_returns_the_wamid(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    task = text()
    with pytest.raises(TaskDeferred):
        task.execute({})  # type: ignore[arg-type]
    (message,) = whatsapp_sandbox.messages_to(RECIPIENT)
    event = status(message.id, "delivered").as_dict()
    reached = {"status": "reached", "message_id": message.id, "target": "delivered", "event": event}

    assert task.resume_execution("execute_complete", {"event": reached}, {}) == message.id  # type: ignore[arg-type]


def test_execution_timeout_during_an_in_worker_confirm_fails_without_a_retry(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    started = time.monotonic()

    # Airflow's execution_timeout fires while the worker waits for "delivered".
    with (
        pytest.raises(WhatsAppNotConfirmedError, match="AirflowTaskTimeout") as raised,
        _execution_timeout_once_sent(whatsapp_sandbox, 1),
    ):
        text(deferrable=False).execute({})  # type: ignore[arg-type]

    assert time.monotonic() - started < 30
    assert isinstance(raised.value, AirflowFailException)
    assert "not sent again" in str(raised.value)
    assert len(whatsapp_sandbox.messages_to(RECIPIENT)) == 1


# --- the approval: nobody is asked twice ------------------------------------------------------------


def test_a_failed_reply_trigger_fails_the_approval_for_good(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    task = approval()
    with pytest.raises(TaskDeferred):
        task.execute({"ti": _TI()})

    with pytest.raises(WhatsAppNotConfirmedError, match="not sent again") as raised:
        task.resume_execution(TRIGGER_FAILED_METHOD, dict(TRIGGER_FAILURE), {"ti": _TI()})  # type: ignore[arg-type]

    assert isinstance(raised.value, AirflowFailException)
    asked = whatsapp_sandbox.messages_to(RECIPIENT) + whatsapp_sandbox.messages_to(SECOND)
    assert len(asked) == 2


def test_an_approver_who_may_have_been_asked_is_not_asked_again(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    # The first question reaches the sandbox but its answer is lost (it may have arrived); the second
    # is throttled (provably not sent). A retry would ask the first approver again: it must not happen.
    whatsapp_sandbox.inject_fault(drop=True, after=True, times=1, path="/messages$")
    whatsapp_sandbox.inject_fault(status=429, path="/messages$")
    task = approval()
    task.__dict__["hook"] = MatonHook("maton_default", max_attempts=1)

    with pytest.raises(WhatsAppDeliveryUnknownError, match="may have arrived") as raised:
        task.execute({"ti": _TI()})

    assert isinstance(raised.value, AirflowFailException)
    assert isinstance(raised.value.__cause__, WhatsAppDeliveryUnknownError)
    assert "WhatsAppRateLimitError" in str(raised.value)
    assert len(whatsapp_sandbox.messages_to(RECIPIENT)) == 1


def test_questions_provably_not_sent_may_be_retried(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    whatsapp_sandbox.inject_fault(status=429, path="/messages$")
    task = approval()
    task.__dict__["hook"] = MatonHook("maton_default", max_attempts=1)

    with pytest.raises(WhatsAppRateLimitError):
        task.execute({"ti": _TI()})

    assert whatsapp_sandbox.messages == []


def test_execution_timeout_during_an_in_worker_approval_fails_without_a_retry(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    with (
        pytest.raises(WhatsAppNotConfirmedError, match="AirflowTaskTimeout") as raised,
        _execution_timeout_once_sent(whatsapp_sandbox, 2),
    ):
        approval(deferrable=False).execute({"ti": _TI()})

    assert isinstance(raised.value, AirflowFailException)
    asked = whatsapp_sandbox.messages_to(RECIPIENT) + whatsapp_sandbox.messages_to(SECOND)
    assert len(asked) == 2


@contextlib.contextmanager
def _execution_timeout_once_sent(sandbox: WhatsAppSandbox, messages: int) -> Iterator[None]:
    """Airflow's own ``execution_timeout`` mechanism (its SIGALRM handler raising ``AirflowTaskTimeout``),
    set to fire once ``messages`` messages reached the sandbox: during the wait, never during a send."""
    if AIRFLOW_V_3_PLUS:
        from airflow.sdk.execution_time.timeout import timeout
    else:
        from airflow.utils.timeout import timeout  # type: ignore[no-redef,attr-defined]

    def fire_once_sent() -> None:
        wait_until(lambda: len(sandbox.messages) >= messages)
        signal.setitimer(signal.ITIMER_REAL, 0.1)  # the process's timer: the main thread gets the signal

    with timeout(600):
        threading.Thread(target=fire_once_sent, daemon=True).start()
        yield


async def _events(trigger: Any) -> list[Any]:
    return [event async for event in trigger.run()]
