"""Bounded waits, over real sockets: Retry-After is honoured up to ``max_retry_after`` and no further,
a server trickling its answer cannot hold a send, a read, a bulk send or the approval trigger past the
timeout, and an answer far larger than any API answer does not grow the process's memory."""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import AirflowException, AirflowFailException
from airflow_provider_whatsapp.errors import (
    WhatsAppDeliveryUnknownError,
    WhatsAppRateLimitError,
    WhatsAppTransientError,
)
from airflow_provider_whatsapp.hooks.maton import MatonHook
from tests.bulk.helpers import MESSAGES, Inbox, context, digits, numbers
from tests.conftest import PHONE_NUMBER_ID, REPO_ROOT, WABA_ID
from tests.loopback import LoopbackServer, Reply, sent

TEXT = {"to": "14155550100", "type": "text", "text": {"body": "hello"}}
TEMPLATES = rf"^/whatsapp-business/v21\.0/{WABA_ID}/message_templates$"
PHONE = rf"^/whatsapp-business/v21\.0/{PHONE_NUMBER_ID}$"
TRICKLE = 0.5  # seconds between two bytes of the answer
TIMEOUT = 2.0


class Hung(BaseException):  # not an Exception: nothing under test may swallow it
    pass


def ends_within(seconds: float, call: Any) -> dict[str, Any]:
    """Run ``call`` here (Airflow 2 runs operators only in the thread that imported them), failing the
    test instead of hanging it if it is not done in ``seconds``; returns its value or error and time."""

    def give_up(*_: Any) -> None:
        raise Hung(f"still running after {seconds} s")

    outcome: dict[str, Any] = {}
    previous = signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        outcome["value"] = call()
    except Hung:
        raise
    except Exception as error:
        outcome["error"] = error
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    outcome["elapsed"] = time.monotonic() - started
    return outcome


# --- Retry-After ---------------------------------------------------------------------------------


def test_retry_after_as_an_http_date_is_honoured(maton_conn: LoopbackServer) -> None:
    later = email.utils.formatdate(time.time() + 5, usegmt=True)
    maton_conn.route(
        "POST", MESSAGES, Reply(429, headers={"Retry-After": later}), Reply(json=sent("wamid.D"))
    )

    answer = MatonHook(rate_limit=0).send_message(TEXT)

    assert MatonHook.message_id(answer) == "wamid.D"
    first, second = maton_conn.requests
    assert second.at - first.at >= 2.0  # the date has one-second resolution; the set-up takes a while


def test_retry_after_beyond_max_retry_after_gives_up_at_once_and_says_how_long(
    maton_conn: LoopbackServer,
) -> None:
    # 90 s is within the 120 s retry budget: only max_retry_after (60 s) stops the wait.
    maton_conn.route("POST", MESSAGES, Reply(429, headers={"Retry-After": "90"}), Reply(json=sent()))

    done = ends_within(10, lambda: MatonHook(rate_limit=0).send_message(TEXT))

    error = done["error"]
    assert isinstance(error, WhatsAppRateLimitError)
    assert not isinstance(error, AirflowFailException)  # Airflow's task retries apply
    assert "90 s" in str(error) and "max_retry_after=60" in str(error)
    assert len(maton_conn.requests) == 1


def test_max_retry_after_is_a_hook_argument(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(503, headers={"Retry-After": "3"}), Reply(json=sent()))

    done = ends_within(10, lambda: MatonHook(rate_limit=0, max_retry_after=1).send_message(TEXT))

    assert isinstance(done["error"], WhatsAppTransientError)
    assert "max_retry_after=1 s" in str(done["error"])
    assert len(maton_conn.requests) == 1


def test_bulk_send_told_to_wait_100000_s_stops_with_the_rest_pending(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator

    inbox = Inbox(delay=0.05)
    recipients = numbers(20)
    inbox.rules[digits(recipients[3])] = [
        Reply(429, {"error": "slow down"}, headers={"Retry-After": "100000"})
    ]
    maton_conn.route("POST", MESSAGES, inbox)
    ctx = context()

    def bulk() -> WhatsAppSendBulkOperator:
        message = {"type": "text", "text": {"body": "Your report is ready"}}
        return WhatsAppSendBulkOperator(
            task_id="bulk", recipients=recipients, message=message, progress_path=str(tmp_path), max_rate=5
        )

    done = ends_within(15, lambda: bulk().execute(ctx))

    error = done["error"]
    assert type(error) is AirflowException  # a retryable stop: the task's next try sends the rest
    assert "100000 s" in str(error) and "not sent" in str(error)
    assert len(inbox.delivered) < len(recipients)
    # The next try sends everyone still pending, the throttled recipient included, each exactly once.
    result = ends_within(30, lambda: bulk().execute(ctx))["value"]
    assert result["sent"] + result["skipped"] == len(recipients)
    assert sorted(inbox.counts().values()) == [1] * len(recipients)


# --- a server that trickles its answer -----------------------------------------------------------


def test_trickled_answer_cannot_hold_a_send(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(json=sent(), trickle=TRICKLE))

    done = ends_within(TIMEOUT + 5, lambda: MatonHook(timeout=TIMEOUT, rate_limit=0).send_message(TEXT))

    assert isinstance(done["error"], WhatsAppDeliveryUnknownError)
    assert done["elapsed"] < TIMEOUT + 1
    assert len(maton_conn.requests) == 1


def test_trickled_answer_cannot_hold_a_read(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", PHONE, Reply(json={"id": PHONE_NUMBER_ID}, trickle=TRICKLE))

    done = ends_within(TIMEOUT + 5, lambda: MatonHook(timeout=TIMEOUT, rate_limit=0).get_phone_number())

    assert isinstance(done["error"], WhatsAppTransientError)  # retryable by Airflow
    assert "within the timeout" in str(done["error"])
    assert done["elapsed"] < TIMEOUT + 1
    assert len(maton_conn.requests) == 1  # the timeout bounds the call: it is not asked again


def test_trickled_answers_cannot_hold_a_bulk_send(maton_conn: LoopbackServer, tmp_path: Path) -> None:
    from airflow_provider_whatsapp.bulk.engine import BulkConfig, BulkItem, run_bulk
    from airflow_provider_whatsapp.bulk.progress import LocalJournal

    maton_conn.route("POST", MESSAGES, Reply(json=sent(), trickle=TRICKLE))
    recipients = [digits(n) for n in numbers(3)]
    items = [BulkItem(to=to, payload={**TEXT, "to": to}) for to in recipients]
    journal = LocalJournal(str(tmp_path / "journal.jsonl"))

    async def main() -> Any:
        hook = MatonHook(timeout=TIMEOUT, max_attempts=1, rate_limit=0)

        async def send(payload: dict[str, Any]) -> str:
            return MatonHook.message_id(await hook.asend_message(payload))

        try:
            return await run_bulk(items, send, journal, BulkConfig(max_rate=50, max_concurrency=5))
        finally:
            await hook.aclose()

    try:
        done = ends_within(TIMEOUT + 5, lambda: asyncio.run(main()))
    finally:
        journal.close()

    result = done["value"]
    assert [entry["to"] for entry in result.unknown] == recipients or sorted(
        entry["to"] for entry in result.unknown
    ) == sorted(recipients)
    assert done["elapsed"] < TIMEOUT + 1


def test_trickled_answer_cannot_delay_the_triggers_timeout(maton_conn: LoopbackServer) -> None:
    from airflow_provider_whatsapp.triggers.template import TIMEOUT as TIMED_OUT
    from airflow_provider_whatsapp.triggers.template import WhatsAppTemplateApprovalTrigger

    maton_conn.route("GET", TEMPLATES, Reply(json={"data": []}, trickle=TRICKLE))
    trigger = WhatsAppTemplateApprovalTrigger(
        template_name="daily_report", poke_interval=60, end_time=time.time() + TIMEOUT
    )

    async def first_event() -> Any:
        async for event in trigger.run():
            return event.payload
        return None

    done = ends_within(TIMEOUT + 5, lambda: asyncio.run(first_event()))

    assert done["value"]["status"] == TIMED_OUT
    assert done["elapsed"] < TIMEOUT + 1


def test_trickled_answer_cannot_hold_a_poking_sensor_past_its_timeout(maton_conn: LoopbackServer) -> None:
    from airflow_provider_whatsapp._compat import AirflowSensorTimeout
    from airflow_provider_whatsapp.sensors.template import WhatsAppTemplateApprovalSensor

    maton_conn.route("GET", TEMPLATES, Reply(json={"data": []}, trickle=TRICKLE))
    sensor = WhatsAppTemplateApprovalSensor(
        task_id="wait", template_name="daily_report", poke_interval=0.1, timeout=TIMEOUT, deferrable=False
    )

    done = ends_within(TIMEOUT + 5, lambda: sensor.execute({}))

    assert isinstance(done["error"], AirflowSensorTimeout)
    assert done["elapsed"] < TIMEOUT + 1


# --- memory --------------------------------------------------------------------------------------

MIB = 1024 * 1024


@pytest.mark.parametrize("method", ["send", "read"])
def test_a_300_mb_answer_does_not_grow_memory(maton_conn: LoopbackServer, method: str) -> None:
    block = b" " * MIB
    huge = Reply(chunks=lambda: (block for _ in range(300)))
    maton_conn.route("POST", MESSAGES, huge)
    maton_conn.route("GET", PHONE, huge)

    child = subprocess.run(
        [sys.executable, "-m", "tests.answer_memory_child", method],
        cwd=REPO_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["error"] in ("WhatsAppDeliveryUnknownError", "WhatsAppTransientError"), report
    assert "larger than" in report["message"]
    assert report["peak_rss_growth_mb"] < 20, report


def test_a_download_larger_than_the_reported_size_is_cut_and_removed(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    info = {
        "url": f"{maton_conn.url}/media-bytes/4490001",
        "mime_type": "image/png",
        "file_size": 1000,
        "id": "4490001",
    }
    maton_conn.route("GET", r"/v21\.0/4490001$", Reply(json=info))
    block = b"\x89" * MIB
    maton_conn.route("GET", r"^/media-bytes/4490001$", Reply(chunks=lambda: (block for _ in range(300))))
    target = tmp_path / "photo.png"

    done = ends_within(30, lambda: MatonHook().download_media("4490001", target))

    assert isinstance(done["error"], WhatsAppTransientError)
    assert "larger than the 1000 bytes" in str(done["error"])
    assert not target.exists()


DOWNLOAD_TIMEOUT = 1.5


def test_a_trickled_download_ends_within_download_timeout_and_is_removed(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    info = {"url": f"{maton_conn.url}/media-bytes/4490002", "mime_type": "image/png", "id": "4490002"}
    maton_conn.route("GET", r"/v21\.0/4490002$", Reply(json=info))

    def trickle() -> Any:
        for _ in range(200):  # a byte every 0.2 s: each read well within timeout, the whole far beyond
            yield b"\x89"
            time.sleep(0.2)

    maton_conn.route("GET", r"^/media-bytes/4490002$", Reply(chunks=trickle))
    target = tmp_path / "photo.png"
    hook = MatonHook(timeout=TIMEOUT, download_timeout=DOWNLOAD_TIMEOUT, rate_limit=0)

    done = ends_within(DOWNLOAD_TIMEOUT + 20, lambda: hook.download_media("4490002", target))

    assert isinstance(done["error"], WhatsAppTransientError)
    assert "safe to try again" in str(done["error"])
    assert done["elapsed"] < DOWNLOAD_TIMEOUT + 1.0 + 1.0  # + the media lookup before the stream
    assert not target.exists()


def test_download_timeout_defaults_to_five_minutes_or_timeout_if_longer() -> None:
    assert MatonHook().download_timeout == 300.0
    assert MatonHook(timeout=900).download_timeout == 900.0
    assert MatonHook(download_timeout=12).download_timeout == 12.0


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "60", True, 10**400])
def test_download_timeout_must_be_a_positive_finite_number(value: Any) -> None:
    with pytest.raises(AirflowFailException, match="download_timeout must be a positive, finite number"):
        MatonHook(download_timeout=value)
