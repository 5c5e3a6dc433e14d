"""WhatsAppMessageStatusSensor: poke and deferrable modes read the real event store and decide alike."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from airflow_provider_whatsapp.errors import (
    WhatsAppPermanentError,
    WhatsAppReEngagementError,
    WhatsAppUndeliverableError,
    WhatsAppValidationError,
)
from airflow_provider_whatsapp.sensors.status import WhatsAppMessageStatusSensor
from airflow_provider_whatsapp.spec.error_codes import RE_ENGAGEMENT, UNDELIVERABLE
from airflow_provider_whatsapp.triggers.status import WhatsAppMessageStatusTrigger
from airflow_provider_whatsapp.webhooks.store import EventStore
from tests.conftest import TEST_KEY, connection_json
from tests.conversations.statuses import RECIPIENT, WAMID, status, store_at

SECRETS = {
    "webhook_app_secret": "app-secret-5b1e0c",
    "webhook_path_token": "path-token-9d2f7a" * 3,
    "webhook_verify_token": "verify-token-44c1",
}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EventStore:
    """``maton_default`` whose events live in ``tmp_path`` (webhook secrets set too); that store."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_DEFAULT",
        connection_json("http://127.0.0.1:9", events_path=str(tmp_path), **SECRETS),
    )
    return store_at(tmp_path)


def sensor(**kwargs: Any) -> WhatsAppMessageStatusSensor:
    args: dict[str, Any] = {"task_id": "wait", "message_id": WAMID, "poke_interval": 0.05, "timeout": 30}
    return WhatsAppMessageStatusSensor(**{**args, **kwargs})


# --- parse time ----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["failed", "DELIVERED", "", None])
def test_a_target_whatsapp_never_reports_is_refused_at_parse_time(target: Any) -> None:
    with pytest.raises(WhatsAppValidationError, match="target: must be one of 'sent', 'delivered', 'read'"):
        sensor(target=target)


@pytest.mark.parametrize("message_id", ["", "wamid with spaces", "x" * 5000, "wamid.\x00"])
def test_a_message_id_that_is_not_one_is_refused_naming_the_field(message_id: str) -> None:
    with pytest.raises(WhatsAppValidationError, match=r"message_id: must be a message id") as raised:
        sensor(message_id=message_id)
    assert len(str(raised.value)) < 300  # a huge value is not echoed whole


def test_a_templated_message_id_is_checked_when_rendered(store: EventStore) -> None:
    task = sensor(message_id="{{ ti.xcom_pull('send') }}")  # not refused at parse time
    task.message_id = "not a wamid"  # what it rendered to

    with pytest.raises(WhatsAppValidationError, match="message_id"):
        task.poke({})


# --- poke mode -----------------------------------------------------------------------------------


def test_waits_until_the_target_status_then_returns_the_event(store: EventStore) -> None:
    task = sensor(deferrable=False)

    assert task.poke({}) is False  # nothing yet
    store.add(status(state="sent"))
    assert task.poke({}) is False  # sent is short of delivered
    store.add(status(state="delivered"))
    done = task.poke({})

    assert done
    assert done.xcom_value["status"] == "delivered"  # type: ignore[union-attr]
    assert done.xcom_value["wamid"] == WAMID  # type: ignore[union-attr]
    assert task.execute({})["recipient_id"] == RECIPIENT


def test_a_later_status_counts_as_reaching_the_target(store: EventStore) -> None:
    store.add(status(state="read"))  # statuses may arrive out of order, or the earlier ones not at all

    assert sensor(deferrable=False, target="sent").execute({})["status"] == "read"


def test_a_131047_failure_fails_at_once_with_the_re_engagement_error(store: EventStore) -> None:
    store.add(status(state="sent"))
    store.add(
        status(state="failed", code=RE_ENGAGEMENT, message="Re-engagement message", details="window closed")
    )
    task = sensor(deferrable=False, retries=3)

    with pytest.raises(WhatsAppReEngagementError) as raised:
        task.execute({})

    message = str(raised.value)
    assert "send an approved template" in message
    assert "Graph error 131047: Re-engagement message" in message
    assert "window closed" in message  # Graph's details
    assert WAMID in message
    assert RECIPIENT not in message  # the number is masked
    assert raised.value.code == RE_ENGAGEMENT
    assert isinstance(raised.value, AirflowFailException)  # no Airflow retry


def test_an_undeliverable_failure_gets_its_own_error(store: EventStore) -> None:
    store.add(status(state="failed", code=UNDELIVERABLE, title="Message undeliverable"))

    with pytest.raises(WhatsAppUndeliverableError, match="could not be delivered"):
        sensor(deferrable=False).poke({})


def test_a_failure_with_an_unknown_or_retryable_code_still_fails_for_good(store: EventStore) -> None:
    store.add(
        status(state="failed", code=131049, title="Message not delivered to maintain healthy ecosystem")
    )
    store.add(status(wamid="wamid.OTHER", state="failed", code=131000, title="Something went wrong"))

    with pytest.raises(WhatsAppPermanentError, match="131049: Message not delivered to maintain"):
        sensor(deferrable=False).poke({})
    with pytest.raises(WhatsAppPermanentError, match="131000"):
        sensor(deferrable=False, message_id="wamid.OTHER").poke({})


def test_poke_mode_times_out_as_any_sensor(store: EventStore) -> None:
    with pytest.raises(AirflowSensorTimeout):
        sensor(deferrable=False, timeout=0.3).execute({})


# --- deferrable mode -----------------------------------------------------------------------------


def test_deferrable_defers_with_a_trigger_that_carries_no_secret(store: EventStore) -> None:
    task = sensor(deferrable=True, poke_interval=7, timeout=600)

    before = time.time()
    with pytest.raises(TaskDeferred) as caught:
        task.execute({})

    trigger = caught.value.trigger
    assert caught.value.method_name == "execute_complete"
    assert isinstance(trigger, WhatsAppMessageStatusTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_whatsapp.triggers.status.WhatsAppMessageStatusTrigger"
    assert kwargs["message_id"] == WAMID
    assert kwargs["target"] == "delivered"
    assert kwargs["poke_interval"] == 7.0
    assert before + 600 <= kwargs["end_time"] <= time.time() + 600
    assert kwargs["store"] == store.describe()
    serialised = json.dumps(kwargs)
    assert all(secret not in serialised for secret in (*SECRETS.values(), TEST_KEY))
    assert isinstance(WhatsAppMessageStatusTrigger(**kwargs), WhatsAppMessageStatusTrigger)


def test_deferrable_returns_at_once_when_already_delivered(store: EventStore) -> None:
    store.add(status(state="delivered"))

    assert sensor(deferrable=True).execute({})["status"] == "delivered"


def test_deferrable_fails_at_once_when_already_failed(store: EventStore) -> None:
    store.add(status(state="failed", code=RE_ENGAGEMENT))

    with pytest.raises(WhatsAppReEngagementError):
        sensor(deferrable=True).execute({})


async def _events(trigger: WhatsAppMessageStatusTrigger) -> list[Any]:
    return [event async for event in trigger.run()]


def _trigger(store: EventStore, **kwargs: Any) -> WhatsAppMessageStatusTrigger:
    args: dict[str, Any] = {
        "message_id": WAMID,
        "target": "delivered",
        "store": store.describe(),
        "poke_interval": 0.05,
        "end_time": time.time() + 30,
    }
    return WhatsAppMessageStatusTrigger(**{**args, **kwargs})


def test_the_trigger_yields_one_event_once_the_status_arrives(store: EventStore) -> None:
    def deliver_later() -> None:
        store.add(status(state="sent"))
        time.sleep(0.3)
        store.add(status(state="delivered"))

    writer = threading.Thread(target=deliver_later)
    writer.start()
    events = asyncio.run(asyncio.wait_for(_events(_trigger(store)), 20))
    writer.join()

    assert len(events) == 1
    assert events[0].payload["status"] == "reached"
    assert events[0].payload["event"]["status"] == "delivered"
    assert sensor().execute_complete({}, events[0].payload)["wamid"] == WAMID


def test_the_trigger_yields_a_failure_that_resumes_as_the_typed_error(store: EventStore) -> None:
    store.add(status(state="failed", code=RE_ENGAGEMENT, details="window closed"))

    (event,) = asyncio.run(asyncio.wait_for(_events(_trigger(store)), 20))

    assert event.payload["status"] == "failed"
    with pytest.raises(WhatsAppReEngagementError, match="window closed"):
        sensor().execute_complete({}, event.payload)


def test_the_trigger_times_out_and_the_sensor_fails_or_skips(store: EventStore) -> None:
    store.add(status(state="sent"))

    started = time.monotonic()
    (event,) = asyncio.run(
        asyncio.wait_for(_events(_trigger(store, poke_interval=5, end_time=time.time() + 0.3)), 20)
    )

    assert time.monotonic() - started < 4  # the end time cuts the interval short
    assert event.payload["status"] == "timeout"
    assert "last status seen: sent" in event.payload["message"]
    with pytest.raises(AirflowSensorTimeout, match="not confirmed delivered"):
        sensor().execute_complete({}, event.payload)
    with pytest.raises(AirflowSkipException):
        sensor(soft_fail=True).execute_complete({}, event.payload)


def test_an_unexpected_event_fails_the_sensor() -> None:
    with pytest.raises(WhatsAppPermanentError, match="Unexpected event"):
        sensor().execute_complete({}, {"status": "bogus"})
