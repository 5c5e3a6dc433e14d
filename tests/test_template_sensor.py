"""Template approval: the sensor in poke mode, in deferrable mode, and its trigger, over loopback."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    TaskDeferred,
)
from airflow_provider_whatsapp.errors import WhatsAppPermanentError, WhatsAppTemplateRejectedError
from airflow_provider_whatsapp.sensors.template import WhatsAppTemplateApprovalSensor
from airflow_provider_whatsapp.triggers.template import WhatsAppTemplateApprovalTrigger
from tests.conftest import TEST_KEY, WABA_ID
from tests.loopback import LoopbackServer, Reply, graph_error

TEMPLATES = rf"^/whatsapp-business/v21\.0/{WABA_ID}/message_templates$"


def listing(status: str | None, *, language: str = "en_US", **fields: Any) -> Reply:
    """A template listing as Graph answers it; ``None`` means the template is not visible yet."""
    data = []
    if status is not None:
        data.append(
            {
                "name": "daily_report",
                "language": language,
                "status": status,
                "category": "UTILITY",
                "id": "594425479261596",
                "components": [],
                **fields,
            }
        )
    return Reply(json={"data": data, "paging": {"cursors": {"before": "b", "after": "a"}}})


APPROVED_INFO = {
    "id": "594425479261596",
    "status": "APPROVED",
    "category": "UTILITY",
    "name": "daily_report",
    "language": "en_US",
}


def sensor(**kwargs: Any) -> WhatsAppTemplateApprovalSensor:
    args: dict[str, Any] = {
        "task_id": "wait",
        "template_name": "daily_report",
        "language_code": "en_US",
        "poke_interval": 0.05,
        "timeout": 30,
        **kwargs,
    }
    return WhatsAppTemplateApprovalSensor(**args)


# --- poke mode -----------------------------------------------------------------------------------


def test_pokes_false_false_true_then_returns_template_info(maton_conn: LoopbackServer) -> None:
    maton_conn.route(
        "GET", TEMPLATES, listing("PENDING"), listing("PENDING"), listing("APPROVED"), listing("APPROVED")
    )
    task = sensor(deferrable=False)

    pokes = [task.poke({}) for _ in range(3)]

    assert [bool(p) for p in pokes] == [False, False, True]
    assert pokes[2].xcom_value == APPROVED_INFO  # type: ignore[union-attr]
    assert task.execute({}) == APPROVED_INFO  # the poke loop returns the same XCom
    request = maton_conn.requests[0]
    assert request.query["name"] == ["daily_report"]
    assert request.query["language"] == ["en_US"]


def test_not_visible_and_in_appeal_keep_waiting(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", TEMPLATES, listing(None), listing("IN_APPEAL"), listing("APPROVED"))
    task = sensor(deferrable=False)

    assert [bool(task.poke({})) for _ in range(3)] == [False, False, True]


def test_rejected_fails_at_once_with_the_reason_and_no_retry(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", TEMPLATES, listing("REJECTED", rejected_reason="INVALID_FORMAT"))
    task = sensor(deferrable=False, retries=3)

    with pytest.raises(WhatsAppTemplateRejectedError, match="REJECTED: rejected_reason INVALID_FORMAT"):
        task.execute({})

    assert issubclass(WhatsAppTemplateRejectedError, AirflowFailException)  # Airflow does not retry it
    assert len(maton_conn.requests) == 1


@pytest.mark.parametrize("status", ["DISABLED", "PAUSED"])
def test_disabled_and_paused_fail_at_once(maton_conn: LoopbackServer, status: str) -> None:
    maton_conn.route("GET", TEMPLATES, listing(status))

    with pytest.raises(WhatsAppTemplateRejectedError, match=f"is {status}"):
        sensor(deferrable=False).poke({})


def test_language_filter_ignores_other_languages(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", TEMPLATES, listing("REJECTED", language="es"))

    assert not sensor(deferrable=False).poke({})  # a rejected es template says nothing of en_US


def test_a_passing_outage_does_not_end_the_wait(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", TEMPLATES, Reply(503, {}))
    task = sensor(deferrable=False)
    task.hook.retry_policy = type(task.hook.retry_policy)(max_attempts=1)

    assert task.poke({}) is False


def test_bad_key_fails_the_sensor(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", TEMPLATES, Reply(401, {}))

    with pytest.raises(WhatsAppPermanentError):
        sensor(deferrable=False).poke({})


# --- deferrable mode -----------------------------------------------------------------------------


def test_deferrable_default_comes_from_airflow_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert sensor().deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert sensor().deferrable is False


def test_deferrable_execute_defers_to_the_trigger(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", TEMPLATES, listing("PENDING"))
    task = sensor(deferrable=True, poke_interval=7, timeout=600, waba_id=WABA_ID)

    before = time.time()
    with pytest.raises(TaskDeferred) as caught:
        task.execute({})

    deferred = caught.value
    assert deferred.method_name == "execute_complete"
    trigger = deferred.trigger
    assert isinstance(trigger, WhatsAppTemplateApprovalTrigger)
    assert trigger.template_name == "daily_report"
    assert trigger.language_code == "en_US"
    assert trigger.poke_interval == 7
    assert trigger.end_time is not None
    assert before + 600 <= trigger.end_time <= time.time() + 600


def test_deferrable_execute_returns_at_once_when_already_approved(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", TEMPLATES, listing("APPROVED"))

    assert sensor(deferrable=True).execute({}) == APPROVED_INFO


def test_trigger_serialises_without_any_secret() -> None:
    trigger = WhatsAppTemplateApprovalTrigger(
        template_name="daily_report",
        language_code="en_US",
        maton_conn_id="maton_default",
        waba_id=WABA_ID,
        poke_interval=5,
        end_time=1_900_000_000.0,
    )

    classpath, kwargs = trigger.serialize()

    assert classpath == "airflow_provider_whatsapp.triggers.template.WhatsAppTemplateApprovalTrigger"
    assert kwargs == {
        "template_name": "daily_report",
        "language_code": "en_US",
        "maton_conn_id": "maton_default",
        "connection_id": None,
        "waba_id": WABA_ID,
        "poke_interval": 5.0,
        "end_time": 1_900_000_000.0,
    }
    assert TEST_KEY not in json.dumps(kwargs)
    assert isinstance(WhatsAppTemplateApprovalTrigger(**kwargs), WhatsAppTemplateApprovalTrigger)


async def run_trigger(trigger: WhatsAppTemplateApprovalTrigger) -> list[Any]:
    return [event async for event in trigger.run()]


def trigger(**kwargs: Any) -> WhatsAppTemplateApprovalTrigger:
    args: dict[str, Any] = {"template_name": "daily_report", "language_code": "en_US", "poke_interval": 0.05}
    return WhatsAppTemplateApprovalTrigger(**{**args, **kwargs})


async def test_trigger_yields_one_approved_event(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", TEMPLATES, listing(None), listing("PENDING"), listing("APPROVED"))

    events = await asyncio.wait_for(run_trigger(trigger(end_time=time.time() + 30)), 20)

    assert len(events) == 1
    assert events[0].payload["status"] == "approved"
    assert events[0].payload["template"] == APPROVED_INFO
    assert len(maton_conn.requests) == 3
    assert all(r.header("Authorization") == f"Bearer {TEST_KEY}" for r in maton_conn.requests)


async def test_trigger_honours_poke_interval(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", TEMPLATES, listing("PENDING"), listing("PENDING"), listing("APPROVED"))

    await asyncio.wait_for(run_trigger(trigger(poke_interval=0.3)), 20)

    first, second, third = (r.at for r in maton_conn.requests)
    assert second - first >= 0.28
    assert third - second >= 0.28


async def test_trigger_yields_one_failed_event_with_the_reason(maton_conn: LoopbackServer) -> None:
    maton_conn.route(
        "GET", TEMPLATES, listing("PENDING"), listing("REJECTED", rejected_reason="TAG_CONTENT_MISMATCH")
    )

    events = await asyncio.wait_for(run_trigger(trigger()), 20)

    assert len(events) == 1
    assert events[0].payload["status"] == "failed"
    assert "TAG_CONTENT_MISMATCH" in events[0].payload["message"]


async def test_trigger_yields_timeout_at_the_end_time(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", TEMPLATES, listing("PENDING"))

    started = time.monotonic()
    events = await asyncio.wait_for(run_trigger(trigger(poke_interval=5, end_time=time.time() + 0.5)), 20)

    assert [e.payload["status"] for e in events] == ["timeout"]
    assert time.monotonic() - started < 3  # the end time cuts the poke interval short


async def test_trigger_yields_error_on_a_permanent_failure(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", TEMPLATES, Reply(400, graph_error(190, "Error validating access token")))

    events = await asyncio.wait_for(run_trigger(trigger()), 20)

    assert [e.payload["status"] for e in events] == ["error"]
    assert TEST_KEY not in events[0].payload["message"]


def test_execute_complete_turns_events_into_results() -> None:
    task = sensor()
    assert task.execute_complete({}, {"status": "approved", "template": APPROVED_INFO}) == APPROVED_INFO
    with pytest.raises(WhatsAppTemplateRejectedError, match="INVALID_FORMAT"):
        task.execute_complete({}, {"status": "failed", "message": "REJECTED: INVALID_FORMAT"})
    with pytest.raises(AirflowSensorTimeout):
        task.execute_complete({}, {"status": "timeout", "message": "not approved in time"})
    with pytest.raises(WhatsAppPermanentError, match="token"):
        task.execute_complete({}, {"status": "error", "message": "token expired"})


def test_trigger_event_round_trip_through_execute_complete(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", TEMPLATES, listing("PENDING"))
    task = sensor(deferrable=True, poke_interval=0.05)
    with pytest.raises(TaskDeferred) as caught:
        task.execute({})
    maton_conn.route("GET", TEMPLATES, listing("APPROVED"))

    (event,) = asyncio.run(asyncio.wait_for(run_trigger(caught.value.trigger), 20))

    assert task.execute_complete({}, event.payload) == APPROVED_INFO
