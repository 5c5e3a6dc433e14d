"""``confirm=`` on the send operators: the sandbox accepts the send over a real socket, its status
webhooks reach the event store, and the task succeeds only at the asked status; nothing is sent twice."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import AirflowFailException, TaskDeferred
from airflow_provider_whatsapp.errors import (
    WhatsAppNotConfirmedError,
    WhatsAppReEngagementError,
    WhatsAppUndeliverableError,
    WhatsAppValidationError,
)
from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from airflow_provider_whatsapp.operators.messages import (
    WhatsAppSendImageOperator,
    WhatsAppSendMessageOperator,
    WhatsAppSendTemplateOperator,
    WhatsAppSendTextOperator,
)
from airflow_provider_whatsapp.sandbox.controller import WhatsAppSandbox
from airflow_provider_whatsapp.spec.error_codes import RE_ENGAGEMENT, UNDELIVERABLE
from airflow_provider_whatsapp.triggers.status import WhatsAppMessageStatusTrigger
from airflow_provider_whatsapp.webhooks.store import EventStore
from tests.conversations.statuses import RECIPIENT, Receiver, store_at

pytestmark = pytest.mark.whatsapp_sandbox(auto_deliver=False)


@pytest.fixture
def store(whatsapp_sandbox: WhatsAppSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EventStore:
    """``maton_default`` pointing at the sandbox, its events stored in ``tmp_path``; that store."""
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
        "confirm_timeout": 20,
        "deferrable": False,
    }
    return WhatsAppSendTextOperator(**{**args, **kwargs})


def deliver(sandbox: WhatsAppSandbox, message: Any) -> None:
    sandbox.set_status(message.id, "delivered")


def fail_with(code: int) -> Any:
    # As WhatsApp does for these codes: one ``failed`` status, no ``sent`` before it.
    def fail(sandbox: WhatsAppSandbox, message: Any) -> None:
        sandbox.set_status(message.id, "failed", error_code=code)

    return fail


# --- parse time ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"confirm": "failed"}, "confirm: must be None or one of 'sent', 'delivered', 'read'"),
        ({"confirm": True}, "confirm: must be None or one of"),
        ({"confirm_timeout": 0}, "confirm_timeout: must be a positive number of seconds"),
        ({"confirm_timeout": float("inf")}, "confirm_timeout: must be a positive"),
        ({"confirm_poke_interval": -1}, "confirm_poke_interval: must be a positive"),
    ],
)
def test_bad_confirm_arguments_are_refused_at_parse_time(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(WhatsAppValidationError, match=match):
        text(**kwargs)


def test_every_send_operator_takes_confirm() -> None:
    image = WhatsAppSendImageOperator(
        task_id="i",
        to=RECIPIENT,
        link="https://example.com/a.png",
        confirm="read",
        confirm_timeout=timedelta(1),
    )
    generic = WhatsAppSendMessageOperator(
        task_id="g", to=RECIPIENT, message={"type": "text", "text": {"body": "x"}}, confirm="sent"
    )
    template = WhatsAppSendTemplateOperator(task_id="t", to=RECIPIENT, template_name="etl_failure")

    assert (image.confirm, image.confirm_timeout) == ("read", 86400.0)
    assert generic.confirm == "sent"
    assert template.confirm is None
    assert "confirm" not in template.template_fields  # a flag, fixed when the DAG is parsed


def test_the_bulk_operator_takes_confirm_too() -> None:
    task = WhatsAppSendBulkOperator(
        task_id="b",
        recipients=[RECIPIENT],
        template_name="x",
        confirm="delivered",
        confirm_timeout=timedelta(1),
    )

    assert (task.confirm, task.confirm_timeout) == ("delivered", 86400.0)
    with pytest.raises(WhatsAppValidationError, match="confirm: must be None or one of"):
        WhatsAppSendBulkOperator(task_id="b", recipients=[RECIPIENT], template_name="x", confirm="failed")


# --- waiting in the worker -----------------------------------------------------------------------


def test_the_task_succeeds_once_the_message_is_delivered(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    with Receiver(whatsapp_sandbox, store, react=deliver):
        wamid = text().execute({})  # type: ignore[arg-type]

    (message,) = whatsapp_sandbox.messages_to(RECIPIENT)
    assert wamid == message.id
    event = store.status(wamid)
    assert event is not None and event.status == "delivered"


def test_a_131047_failure_fails_confirm_sent_with_the_re_engagement_error_and_no_resend(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    failing = Receiver(whatsapp_sandbox, store, react=fail_with(RE_ENGAGEMENT))
    with failing, pytest.raises(WhatsAppReEngagementError, match="send an approved template") as raised:
        text(confirm="sent", retries=3).execute({})  # type: ignore[arg-type]

    assert isinstance(raised.value, AirflowFailException)
    assert len(whatsapp_sandbox.messages_to(RECIPIENT)) == 1  # accepted once, never sent again
    assert whatsapp_sandbox.messages_to(RECIPIENT)[0].id in str(raised.value)


def test_an_undeliverable_number_fails_with_its_error(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    with (
        Receiver(whatsapp_sandbox, store, react=fail_with(UNDELIVERABLE)),
        pytest.raises(WhatsAppUndeliverableError),
    ):
        text().execute({})  # type: ignore[arg-type]


def test_no_confirmation_in_time_fails_without_resending(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    started = time.monotonic()
    only_sent = Receiver(whatsapp_sandbox, store, react=lambda sb, m: sb.set_status(m.id, "sent"))
    with only_sent, pytest.raises(WhatsAppNotConfirmedError) as raised:
        text(confirm="read", confirm_timeout=0.5).execute({})  # type: ignore[arg-type]

    assert time.monotonic() - started < 10
    message = str(raised.value)
    assert "accepted message" in message and "not confirmed read" in message
    assert "last status seen: sent" in message
    assert "not sent again" in message
    assert isinstance(raised.value, AirflowFailException)
    assert len(whatsapp_sandbox.messages_to(RECIPIENT)) == 1


def test_without_confirm_nothing_reads_the_store(whatsapp_sandbox: WhatsAppSandbox, tmp_path: Path) -> None:
    # The connection names no events_path: a send without confirm must work as before.
    wamid = text(confirm=None).execute({})  # type: ignore[arg-type]

    assert wamid == whatsapp_sandbox.messages_to(RECIPIENT)[0].id


# --- deferrable ----------------------------------------------------------------------------------


def test_deferrable_confirm_defers_with_the_sent_wamid_and_resumes_without_sending(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    task = text(deferrable=True, confirm_timeout=600)

    with pytest.raises(TaskDeferred) as caught:
        task.execute({})  # type: ignore[arg-type]

    (message,) = whatsapp_sandbox.messages_to(RECIPIENT)
    trigger = caught.value.trigger
    assert isinstance(trigger, WhatsAppMessageStatusTrigger)
    assert (trigger.message_id, trigger.target) == (message.id, "delivered")
    assert trigger.end_time is not None and trigger.end_time <= time.time() + 600
    whatsapp_sandbox.set_status(message.id, "delivered")
    with Receiver(whatsapp_sandbox, store):
        (event,) = asyncio.run(asyncio.wait_for(_events(trigger), 20))

    assert task.execute_complete({}, event.payload) == message.id  # type: ignore[arg-type]
    assert len(whatsapp_sandbox.messages_to(RECIPIENT)) == 1


def test_deferrable_confirm_resumes_into_the_typed_error(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    task = text(deferrable=True, confirm="sent")
    with pytest.raises(TaskDeferred) as caught:
        task.execute({})  # type: ignore[arg-type]
    fail_with(RE_ENGAGEMENT)(whatsapp_sandbox, whatsapp_sandbox.messages_to(RECIPIENT)[0])

    with Receiver(whatsapp_sandbox, store):
        (event,) = asyncio.run(asyncio.wait_for(_events(caught.value.trigger), 20))

    with pytest.raises(WhatsAppReEngagementError):
        task.execute_complete({}, event.payload)  # type: ignore[arg-type]
    with pytest.raises(WhatsAppNotConfirmedError, match="not confirmed"):
        task.execute_complete({}, {"status": "timeout", "message": "not confirmed delivered in time"})  # type: ignore[arg-type]


async def _events(trigger: Any) -> list[Any]:
    return [event async for event in trigger.run()]
