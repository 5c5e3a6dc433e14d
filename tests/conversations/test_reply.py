"""The reply sensor: who may answer, poke and deferrable mode, its trigger, all on a real event store."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import pytest

from airflow_provider_whatsapp._compat import AirflowSensorTimeout, AirflowSkipException, TaskDeferred
from airflow_provider_whatsapp.errors import (
    WhatsAppReEngagementError,
    WhatsAppUndeliverableError,
    WhatsAppValidationError,
)
from airflow_provider_whatsapp.sensors.reply import WhatsAppReplySensor
from airflow_provider_whatsapp.spec.error_codes import RE_ENGAGEMENT, UNDELIVERABLE
from airflow_provider_whatsapp.triggers.reply import FAILED, REPLIED, WAITING, WhatsAppReplyTrigger, assess
from airflow_provider_whatsapp.webhooks.events import InboundMessage, StatusEvent, WebhookError
from airflow_provider_whatsapp.webhooks.store import EventStore
from tests.conftest import PHONE_NUMBER_ID, TEST_KEY, connection_json

SENT = "wamid.QUESTION"
RECIPIENT = "14155550100"
STRANGER = "14155550199"
NOW = int(time.time()) - 3600  # the store keeps only events within its retention
REPLY_KEYS = {"from", "type", "text", "button_id", "button_title", "row_id", "wamid", "timestamp"}


@pytest.fixture
def store(tmp_path, monkeypatch: pytest.MonkeyPatch) -> EventStore:
    """A real store in tmp_path; ``maton_default`` names it in its extras."""
    root = tmp_path / "events"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_DEFAULT", connection_json("http://127.0.0.1:9", events_path=str(root))
    )
    return EventStore(root, retention=timedelta(days=30))


def status(state: str = "delivered", *, wamid: str = SENT, code: int | None = None) -> StatusEvent:
    errors = (WebhookError(code=code, title="failed", message=None, details="why"),) if code else ()
    return StatusEvent(
        wamid=wamid,
        status=state,
        timestamp=NOW,
        recipient_id=RECIPIENT,
        phone_number_id=PHONE_NUMBER_ID,
        errors=errors,
    )


def reply(
    wamid: str,
    *,
    sender: str = RECIPIENT,
    context_id: str | None = SENT,
    button_id: str | None = None,
    text: str | None = "yes",
    at: int = NOW + 60,
) -> InboundMessage:
    return InboundMessage(
        wamid=wamid,
        sender=sender,
        type="interactive" if button_id else "text",
        timestamp=at,
        phone_number_id=PHONE_NUMBER_ID,
        text=text,
        button_id=button_id,
        button_title=text if button_id else None,
        row_id=None,
        context_id=context_id,
        contact_name="Ana",
    )


# --- the assessment --------------------------------------------------------------------------------


def test_only_the_recipients_answer_counts(store: EventStore) -> None:
    store.add(status("sent"))
    store.add(reply("wamid.STRANGER", sender=STRANGER, at=NOW + 10))
    store.add(reply("wamid.OTHER", context_id="wamid.SOMETHING_ELSE", at=NOW + 20))
    found = assess(store, [SENT])
    assert found.outcome == WAITING
    assert [m.wamid for m in found.ignored] == ["wamid.STRANGER"]

    store.add(reply("wamid.ANSWER", at=NOW + 30))
    found = assess(store, [SENT])
    assert found.outcome == REPLIED
    assert found.reply is not None and found.reply.wamid == "wamid.ANSWER"


def test_nobodys_answer_counts_before_a_status_names_the_recipient(store: EventStore) -> None:
    store.add(reply("wamid.ANSWER"))
    assert assess(store, [SENT]).outcome == WAITING
    # ...unless the number was allowed explicitly.
    assert assess(store, [SENT], allowed_senders=[RECIPIENT]).outcome == REPLIED
    store.add(status("read"))
    assert assess(store, [SENT]).outcome == REPLIED


def test_allowed_senders_count_besides_the_recipient_and_the_first_answer_wins(store: EventStore) -> None:
    store.add(status())
    store.add(reply("wamid.LATER", at=NOW + 90))
    store.add(reply("wamid.FIRST", sender=STRANGER, at=NOW + 30))
    assert assess(store, [SENT]).reply.wamid == "wamid.LATER"  # type: ignore[union-attr]
    assert assess(store, [SENT], allowed_senders=[STRANGER]).reply.wamid == "wamid.FIRST"  # type: ignore[union-attr]


def test_only_listed_buttons_count_when_given(store: EventStore) -> None:
    store.add(status())
    store.add(reply("wamid.TEXT", text="approve", at=NOW + 10))
    store.add(reply("wamid.OLD_TAP", button_id="run-1:approve", at=NOW + 20))
    found = assess(store, [SENT], button_ids=["run-2:approve", "run-2:reject"])
    assert found.outcome == WAITING
    assert {m.wamid for m in found.ignored} == {"wamid.TEXT", "wamid.OLD_TAP"}
    store.add(reply("wamid.TAP", button_id="run-2:reject", at=NOW + 30))
    assert (
        assess(store, [SENT], button_ids=["run-2:approve", "run-2:reject"]).reply.button_id == "run-2:reject"
    )  # type: ignore[union-attr]


def test_failed_only_when_every_message_failed(store: EventStore) -> None:
    store.add(status("failed", code=RE_ENGAGEMENT))
    store.add(status("delivered", wamid="wamid.SECOND"))
    assert assess(store, [SENT, "wamid.SECOND"]).outcome == WAITING
    found = assess(store, [SENT])
    assert found.outcome == FAILED and found.message_id == SENT


# --- the sensor ----------------------------------------------------------------------------------


def sensor(**kwargs) -> WhatsAppReplySensor:  # type: ignore[no-untyped-def]
    return WhatsAppReplySensor(task_id="wait_for_reply", message_id=SENT, **kwargs)


def test_poke_returns_the_normalised_reply(store: EventStore) -> None:
    task = sensor(deferrable=False)
    assert task.poke({}) is False
    store.add(status())
    store.add(reply("wamid.TAP", button_id="yes-1", text="Yes"))
    done = task.poke({})
    result = done.xcom_value  # type: ignore[union-attr]
    assert set(result) == REPLY_KEYS
    assert result["from"] == RECIPIENT
    assert (result["button_id"], result["button_title"], result["wamid"]) == ("yes-1", "Yes", "wamid.TAP")


@pytest.mark.parametrize(
    ("code", "error"),
    [(RE_ENGAGEMENT, WhatsAppReEngagementError), (UNDELIVERABLE, WhatsAppUndeliverableError)],
)
def test_a_failed_message_fails_the_sensor_with_its_typed_error(store: EventStore, code, error) -> None:  # type: ignore[no-untyped-def]
    store.add(status("failed", code=code))
    with pytest.raises(error) as caught:
        sensor(deferrable=False).poke({})
    assert caught.value.code == code
    assert RECIPIENT not in str(caught.value)  # the number is masked


def test_bad_arguments_are_refused_at_parse_naming_the_field() -> None:
    with pytest.raises(WhatsAppValidationError, match=r"allowed_senders\[1\]"):
        sensor(allowed_senders=["+1 415 555 0100", "12ab"])
    with pytest.raises(WhatsAppValidationError, match="message_id"):
        WhatsAppReplySensor(task_id="t", message_id="wamid with spaces")
    sensor(allowed_senders="{{ var.value.approvers }}")  # templated: checked at run time


def test_deferrable_defers_with_no_secret_then_the_trigger_finds_the_reply(store: EventStore) -> None:
    store.add(status())
    task = sensor(deferrable=True, poke_interval=0.05, timeout=60, allowed_senders=["+1 415 555 0199"])
    with pytest.raises(TaskDeferred) as caught:
        task.execute({})
    trigger = caught.value.trigger
    assert isinstance(trigger, WhatsAppReplyTrigger)
    _, kwargs = trigger.serialize()
    assert TEST_KEY not in json.dumps(kwargs)
    assert kwargs["allowed_senders"] == [STRANGER]
    rebuilt = WhatsAppReplyTrigger(**kwargs)  # what the triggerer does

    async def run() -> dict:
        events = rebuilt.run()
        pending = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0.1)
        assert not pending.done()  # nothing to find yet
        store.add(reply("wamid.ANSWER", sender=STRANGER, text="ok"))
        event = await asyncio.wait_for(pending, timeout=10)
        await events.aclose()
        return event.payload

    payload = asyncio.run(run())
    result = task.execute_complete({}, payload)
    assert result["wamid"] == "wamid.ANSWER" and result["from"] == STRANGER and result["text"] == "ok"


def test_deferrable_returns_at_once_when_the_reply_is_already_stored(store: EventStore) -> None:
    store.add(status())
    store.add(reply("wamid.ANSWER"))
    assert sensor(deferrable=True).execute({})["wamid"] == "wamid.ANSWER"


def test_the_trigger_times_out_into_a_sensor_timeout_or_a_skip(store: EventStore) -> None:
    trigger = WhatsAppReplyTrigger(
        message_ids=[SENT], store=store.describe(), poke_interval=0.05, end_time=time.time() + 0.2
    )

    async def first() -> dict:
        return (await asyncio.wait_for(trigger.run().__anext__(), timeout=10)).payload

    payload = asyncio.run(first())
    with pytest.raises(AirflowSensorTimeout):
        sensor().execute_complete({}, payload)
    with pytest.raises(AirflowSkipException):
        sensor(soft_fail=True).execute_complete({}, payload)


def test_the_trigger_reports_a_failed_message(store: EventStore) -> None:
    store.add(status("failed", code=RE_ENGAGEMENT))
    trigger = WhatsAppReplyTrigger(message_ids=[SENT], store=store.describe(), poke_interval=0.05)

    async def first() -> dict:
        return (await asyncio.wait_for(trigger.run().__anext__(), timeout=10)).payload

    payload = asyncio.run(first())
    with pytest.raises(WhatsAppReEngagementError, match="template"):
        sensor().execute_complete({}, payload)


@pytest.mark.parametrize("emoji", ["\N{THUMBS UP SIGN}", ""])  # "": the recipient took the reaction back
def test_a_reaction_to_the_message_is_not_its_answer(store: EventStore, emoji: str) -> None:
    from airflow_provider_whatsapp.webhooks.events import parse_delivery

    store.add(status("read"))
    reaction = {"from": RECIPIENT, "id": "wamid.REACTION", "timestamp": str(NOW + 5), "type": "reaction",
                "reaction": {"message_id": SENT, "emoji": emoji}}  # fmt: skip
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
            "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881",
                      "phone_number_id": PHONE_NUMBER_ID}, "messages": [reaction]}}]}]}  # fmt: skip
    (event,) = parse_delivery(json.dumps(body).encode())
    assert store.add(event)

    assert assess(store, [SENT]).outcome == WAITING
    store.add(reply("wamid.ANSWER", at=NOW + 30))
    assert assess(store, [SENT]).reply.wamid == "wamid.ANSWER"  # type: ignore[union-attr]
