"""The bulk engine against a real HTTP server: pace, throttling, pair rate, ambiguity, resume, results."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import AirflowException, AirflowFailException
from airflow_provider_whatsapp.bulk.engine import BulkConfig, Pacer
from airflow_provider_whatsapp.bulk.progress import LocalJournal
from airflow_provider_whatsapp.hooks._retry import RetryPolicy
from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from tests.bulk.helpers import (
    MESSAGES,
    Inbox,
    context,
    digits,
    graph,
    journal_file,
    max_in_any_window,
    numbers,
    run_through_hook,
    text_items,
    throttled_429,
)
from tests.loopback import LoopbackServer, Reply

TEXT = {"type": "text", "text": {"body": "Your report is ready"}}


def bulk(tmp_path: Path, recipients: list[Any], **kwargs: Any) -> WhatsAppSendBulkOperator:
    return WhatsAppSendBulkOperator(
        task_id="bulk", recipients=recipients, message=TEXT, progress_path=str(tmp_path), **kwargs
    )


def run_engine(tmp_path: Path, recipients: list[str], config: BulkConfig) -> Any:
    journal = LocalJournal(str(tmp_path / "journal.jsonl"))
    return run_through_hook(text_items(recipients), journal, config)


# --- pace ----------------------------------------------------------------------------------------


def test_never_more_than_max_rate_in_any_second(maton_conn: LoopbackServer, tmp_path: Path) -> None:
    inbox = Inbox(delay=0.02)
    maton_conn.route("POST", MESSAGES, inbox)

    result = bulk(tmp_path, numbers(45), max_rate=15).execute(context())

    assert result["sent"] == 45
    arrivals = [at for _, at in inbox.attempts]
    assert max_in_any_window(arrivals) <= 15
    # ... and not far below it either: 45 at 15/s is about 3 s.
    assert arrivals[-1] - arrivals[0] < 3.6


def test_default_rate_through_maton_is_ten_per_second(maton_conn: LoopbackServer, tmp_path: Path) -> None:
    inbox = Inbox()
    maton_conn.route("POST", MESSAGES, inbox)

    bulk(tmp_path, numbers(22)).execute(context())

    assert max_in_any_window([at for _, at in inbox.attempts]) <= 10


def test_pacer_halves_on_throttling_and_recovers() -> None:
    now = [100.0]
    pacer = Pacer(80, clock=lambda: now[0])
    pacer.throttled(retry_after=2.0)
    assert pacer.rate == 40
    assert pacer.wait_time() == pytest.approx(2.0)
    for _ in range(20):
        pacer.succeeded()
    assert pacer.rate == 80


def test_pacer_counts_a_late_request_where_the_server_saw_it() -> None:
    now = [0.0]
    pacer = Pacer(2, clock=lambda: now[0])  # 2 requests in any 1.015 s
    window = 2 / 2 * 1.015

    async def depart_at(t: float) -> Any:
        now[0] = t
        return await pacer.depart()

    first = asyncio.run(depart_at(0.0))
    second = asyncio.run(depart_at(0.1))
    now[0] = 0.15
    pacer.answered(second)  # a quick round trip: 50 ms
    now[0] = 0.5
    pacer.answered(first)  # 500 ms: it reached the server about 450 ms after it left

    now[0] = 1.2  # 1.2 s after the first left, but only 0.75 s after it arrived
    assert pacer.room() == (True, 0.0)  # the second has left the window
    asyncio.run(depart_at(1.2))
    fits, wait = pacer.room()
    assert not fits
    assert wait == pytest.approx(0.45 + window - 1.2)  # counted from its arrival, not its departure

    in_flight = Pacer(1, clock=lambda: now[0])
    now[0] = 5.0
    asyncio.run(in_flight.depart())
    now[0] = 60.0
    assert in_flight.room() == (False, None)  # unanswered: it may still be on its way


# --- throttling and pair rate --------------------------------------------------------------------


@pytest.mark.parametrize(
    "refusal", [throttled_429(), graph(130429), graph(80007), graph(4)], ids=["429", "130429", "80007", "4"]
)
def test_throttled_recipient_alone_is_sent_again(
    maton_conn: LoopbackServer, tmp_path: Path, refusal: Reply
) -> None:
    inbox = Inbox()
    inbox.rules["14155550003"] = [refusal]
    maton_conn.route("POST", MESSAGES, inbox)

    result = bulk(tmp_path, numbers(8), max_rate=40).execute(context())

    assert result["sent"] == 8 and result["throttled"] == 1 and result["failed"] == 0
    attempts = [to for to, _ in inbox.attempts]
    assert attempts.count("14155550003") == 2
    assert all(attempts.count(digits(n)) == 1 for n in numbers(8) if digits(n) != "14155550003")
    assert sorted(inbox.delivered) == sorted(digits(n) for n in numbers(8))


def test_throttling_pauses_everyone_for_retry_after(maton_conn: LoopbackServer, tmp_path: Path) -> None:
    inbox = Inbox()
    inbox.rules["14155550001"] = [throttled_429("0.8")]
    maton_conn.route("POST", MESSAGES, inbox)

    bulk(tmp_path, numbers(6), max_rate=50).execute(context())

    refused_at, retried_at = [at for to, at in inbox.attempts if to == "14155550001"]
    # A send already on its way when the 429 came back may still arrive; nothing new leaves after it.
    during_pause = [at for to, at in inbox.attempts if refused_at + 0.05 < at < refused_at + 0.75]
    assert during_pause == []
    assert retried_at - refused_at >= 0.75
    assert len(inbox.delivered) == 6


def test_pair_rate_backs_off_one_recipient_without_stalling_others(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    inbox = Inbox()
    # The server's Retry-After (0.1 s) is a floor; the wait is the policy's pair_backoff, doubling.
    inbox.rules["14155550000"] = [graph(131056, retry_after="0.1"), graph(131056, retry_after="0.1")]
    maton_conn.route("POST", MESSAGES, inbox)
    started = time.monotonic()

    result = run_engine(tmp_path, numbers(20), BulkConfig(max_rate=40, max_concurrency=8, pair_backoff=0.6))

    assert result.sent == 20 and not result.failed and result.throttled == 0
    first_try = [at for to, at in inbox.attempts if to == "14155550000"]
    assert len(first_try) == 3
    assert first_try[1] - first_try[0] >= 0.55 and first_try[2] - first_try[1] >= 1.15  # 0.6 s, then doubled
    others_done = max(at for to, at in inbox.attempts if to != "14155550000")
    assert others_done < first_try[1]  # everyone else went out while it waited
    assert others_done - started < 1.5


def test_retryable_failures_give_up_after_max_attempts(maton_conn: LoopbackServer, tmp_path: Path) -> None:
    inbox = Inbox()
    inbox.rules["14155550001"] = [Reply(503, {})] * 10
    maton_conn.route("POST", MESSAGES, inbox)

    result = run_engine(
        tmp_path,
        numbers(3),
        BulkConfig(max_rate=50, max_concurrency=4, max_attempts=3, transient_backoff=0.05),
    )

    assert result.sent == 2
    (failure,) = result.failed
    assert failure["to"] == "14155550001" and failure["retryable"] is True
    assert "Gave up after 3 attempt(s)" in failure["reason"]
    assert [to for to, _ in inbox.attempts].count("14155550001") == 3


# --- ambiguous sends -----------------------------------------------------------------------------


def test_ambiguous_500_is_unknown_and_not_sent_again(maton_conn: LoopbackServer, tmp_path: Path) -> None:
    inbox = Inbox()
    inbox.rules["14155550002"] = ["deliver-500"]
    maton_conn.route("POST", MESSAGES, inbox)
    ctx = context()

    with pytest.raises(AirflowFailException, match="1 unknown"):
        bulk(tmp_path, numbers(5)).execute(ctx)
    # The retry (same task instance) sends nothing again and still reports the doubt.
    again = bulk(tmp_path, numbers(5), max_failure_ratio=0.2).execute(ctx)

    assert again["skipped"] == 4 and again["sent"] == 0 and again["unknown"] == 1
    assert again["unknown_recipients"][0]["to"] == "14155550002"
    assert inbox.counts() == {digits(n): 1 for n in numbers(5)}


def test_resend_unknown_lists_who_to_send_again(maton_conn: LoopbackServer, tmp_path: Path) -> None:
    inbox = Inbox()
    inbox.rules["14155550002"] = [Reply(500, {"error": {"message": "boom"}})]  # refused, not delivered
    maton_conn.route("POST", MESSAGES, inbox)
    ctx = context()
    with pytest.raises(AirflowFailException):
        bulk(tmp_path, numbers(5)).execute(ctx)

    result = bulk(tmp_path, numbers(5), resend_unknown=["+1 415 555 0002"]).execute(ctx)

    assert result["sent"] == 1 and result["skipped"] == 4 and result["unknown"] == 0
    assert inbox.counts() == {digits(n): 1 for n in numbers(5)}


def test_a_run_of_ambiguous_answers_stops_the_send(maton_conn: LoopbackServer, tmp_path: Path) -> None:
    maton_conn.route("POST", MESSAGES, Reply(500, {"error": {"message": "OAuth grant expired"}}))

    with pytest.raises(AirflowFailException, match="in a row"):
        bulk(tmp_path, numbers(40), max_rate=20, max_concurrency=1).execute(context())

    assert len(maton_conn.requests) == 5


# --- resume, results, failure ratio --------------------------------------------------------------


def test_retry_skips_recipients_already_accepted(maton_conn: LoopbackServer, tmp_path: Path) -> None:
    inbox = Inbox()
    maton_conn.route("POST", MESSAGES, inbox)
    ctx = context()
    first = bulk(tmp_path, numbers(6)).execute(ctx)
    second = bulk(tmp_path, numbers(8)).execute(ctx)  # the list grew between tries

    assert first["sent"] == 6
    assert second["skipped"] == 6 and second["sent"] == 2
    assert inbox.counts() == {digits(n): 1 for n in numbers(8)}
    records = [json.loads(line) for line in journal_file(tmp_path, ctx).read_text().splitlines()]
    accepted = {r["to"]: r["wamid"] for r in records if r["state"] == "accepted"}
    assert len(accepted) == 8 and all(w.startswith("wamid.") for w in accepted.values())


def test_other_task_instances_have_their_own_progress(maton_conn: LoopbackServer, tmp_path: Path) -> None:
    inbox = Inbox()
    maton_conn.route("POST", MESSAGES, inbox)
    bulk(tmp_path, numbers(3)).execute(context(run_id="run_1"))
    result = bulk(tmp_path, numbers(3)).execute(context(run_id="run_2"))
    mapped = bulk(tmp_path, numbers(3)).execute(context(run_id="run_2", map_index=1))

    assert result["sent"] == 3 and mapped["sent"] == 3
    assert len(inbox.delivered) == 9


def test_permanent_failures_are_counted_and_decide_the_task(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    inbox = Inbox()
    inbox.rules["14155550004"] = [graph(131026)] * 3
    maton_conn.route("POST", MESSAGES, inbox)

    with pytest.raises(AirflowFailException, match=r"1 failed and 0 unknown of 10"):
        bulk(tmp_path, numbers(10)).execute(context())
    result = bulk(tmp_path, numbers(10), max_failure_ratio=0.1).execute(context())

    assert (result["sent"], result["skipped"], result["failed"], result["unknown"]) == (9, 0, 1, 0)
    (failure,) = result["failures"]
    assert failure["to"] == "14155550004" and failure["code"] == 131026
    assert "could not be delivered" in failure["reason"]


def test_failed_recipients_are_tried_again_on_the_next_try(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    inbox = Inbox()
    inbox.rules["14155550001"] = [graph(131047)]
    maton_conn.route("POST", MESSAGES, inbox)
    ctx = context()
    with pytest.raises(AirflowFailException):
        bulk(tmp_path, numbers(3)).execute(ctx)

    kept = bulk(tmp_path, numbers(3), retry_failed=False, max_failure_ratio=0.5).execute(ctx)
    retried = bulk(tmp_path, numbers(3)).execute(ctx)

    assert kept["failed"] == 1 and kept["sent"] == 0 and kept["failures"][0]["code"] == 131047
    assert retried["sent"] == 1 and retried["skipped"] == 2 and retried["failed"] == 0


def test_an_error_every_recipient_would_get_stops_the_send(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    maton_conn.route("POST", MESSAGES, Reply(401, {"error": {"message": "bad key"}}))

    with pytest.raises(AirflowFailException, match=r"stopped.*not sent yet"):
        bulk(tmp_path, numbers(30), max_rate=10, max_concurrency=2).execute(context())

    assert len(maton_conn.requests) <= 2


def test_exhausted_throttling_fails_so_airflow_may_retry(
    maton_conn: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The outcome is under test, not the backoff: each retry waits 10 ms instead of 0.5 s doubling.
    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, attempt: 0.01)
    maton_conn.route("POST", MESSAGES, throttled_429("0"))
    op = WhatsAppSendBulkOperator(
        task_id="bulk", recipients=numbers(1), message=TEXT, progress_path=str(tmp_path)
    )

    with pytest.raises(AirflowException) as raised:
        op.execute(context())

    assert not isinstance(raised.value, AirflowFailException)
    assert len(maton_conn.requests) == 6
