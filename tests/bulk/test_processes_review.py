"""The multi-process bulk send's edges, in this process (no worker process is started): what it refuses
before claiming the journal, how it shares the requests in flight, how it hands out recipients it cannot
let the workers reread, how it starts workers under the lease, and counts when the journal fails.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS, ObjectStoragePath
from airflow_provider_whatsapp.bulk.engine import BulkConfig, BulkItem, run_bulk
from airflow_provider_whatsapp.bulk.items import build_plan, share_of
from airflow_provider_whatsapp.bulk.lease import Lease
from airflow_provider_whatsapp.bulk.progress import ACCEPTED, LocalJournal, Outcome
from airflow_provider_whatsapp.bulk.workers import (
    _CHUNK,
    _CHUNKS_AHEAD,
    WorkerLease,
    WorkerSpec,
    _brief,
    _go,
    _HandOut,
    _launch,
    _listen,
    _Stream,
    _Worker,
    share_config,
)
from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from tests.bulk.helpers import MESSAGES, Inbox, context, numbers
from tests.loopback import LoopbackServer

TEXT = {"type": "text", "text": {"body": "Your statement is ready"}}
ENDS_WITHIN = 30


def fake_workers(tmp_path: Path, count: int) -> tuple[list[_Worker], list[Connection]]:
    """Workers as the parent sees them, and the workers' ends of their sockets."""
    workers, theirs = [], []
    for index in range(count):
        ours, their = socket.socketpair()
        spec = WorkerSpec(
            index=index,
            count=count,
            journal=LocalJournal(str(tmp_path / "j.jsonl")),
            config=BulkConfig(max_rate=10, max_concurrency=10),
            settings=None,  # type: ignore[arg-type]
            hook_kwargs={},
            log_level=20,
        )
        workers.append(_Worker(spec=spec, conn=Connection(ours.detach())))
        theirs.append(Connection(their.detach()))
    return workers, theirs


def received(conn: Connection) -> list[Any]:
    messages = []
    while conn.poll(0.2):
        messages.append(conn.recv())
    return messages


# --- refused before the journal is claimed ---------------------------------------------------------


def test_an_object_store_journal_with_processes_is_refused_before_anything_is_claimed(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    from fsspec.implementations.memory import MemoryFileSystem

    if AIRFLOW_V_3_PLUS:
        from airflow.sdk.io.store import attach
    else:
        from airflow.io.store import attach
    memory = MemoryFileSystem()
    attach("memory", fs=memory)
    inbox = Inbox()
    maton_conn.route("POST", MESSAGES, inbox)
    root = f"memory://journal-{tmp_path.name}"

    started = time.monotonic()
    with pytest.raises(WhatsAppValidationError) as refused:
        WhatsAppSendBulkOperator(
            task_id="bulk",
            recipients=numbers(6),
            message=TEXT,
            progress_path=ObjectStoragePath(f"{root}/p"),
            max_rate=50,
            processes=2,
        ).execute(context())

    message = str(refused.value)
    assert "progress_path" in message and "processes=2" in message
    assert "mapped tasks" in message and "Nothing was claimed or sent" in message
    assert time.monotonic() - started < ENDS_WITHIN  # no worker process was started
    assert inbox.delivered == []
    assert not [key for key in memory.store if f"journal-{tmp_path.name}" in key]  # no lease taken


def test_more_processes_than_requests_in_flight_is_refused_before_anything_is_sent(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    inbox = Inbox()
    maton_conn.route("POST", MESSAGES, inbox)

    with pytest.raises(WhatsAppValidationError, match=r"processes=4 is more than max_concurrency=3"):
        WhatsAppSendBulkOperator(
            task_id="bulk",
            recipients=numbers(6),
            message=TEXT,
            progress_path=str(tmp_path),
            max_concurrency=3,
            processes=4,
        ).execute(context())

    assert inbox.delivered == []
    assert not list(tmp_path.rglob("*.jsonl"))


def test_the_workers_shares_of_the_requests_in_flight_sum_to_max_concurrency() -> None:
    config = BulkConfig(max_rate=100, max_concurrency=10)
    shares = [share_config(config, 4, index).max_concurrency for index in range(4)]
    assert shares == [3, 3, 2, 2]
    assert {share_config(config, 4, index).max_rate for index in range(4)} == {25}
    with pytest.raises(ValueError, match="max_concurrency=1"):
        share_config(BulkConfig(max_rate=10, max_concurrency=1), 4, 0)


# --- the hand-out of recipients the workers cannot reread ------------------------------------------


def test_recipients_are_handed_out_while_the_workers_send_with_bounded_chunks_in_flight(
    tmp_path: Path,
) -> None:
    total = 12 * _CHUNK
    items = [BulkItem(to=f"1415{n:07d}", payload={"n": n}) for n in range(total)]
    prior = {items[7].to: Outcome(ACCEPTED, wamid="w7")}
    drawn = [0]
    taken = [0, 0]
    most_waiting = [0]

    def planned() -> Iterator[BulkItem]:
        for item in items:
            drawn[0] += 1
            most_waiting[0] = max(most_waiting[0], drawn[0] - sum(taken))
            yield item

    workers, theirs = fake_workers(tmp_path, 2)
    priors: list[dict[str, Outcome]] = [{}, {}]
    streams = [_Stream(conn, priors[index]) for index, conn in enumerate(theirs)]
    for conn, stream in zip(theirs, streams, strict=True):
        args = (conn, WorkerLease(), threading.Event(), [], stream)
        threading.Thread(target=_listen, args=args, daemon=True).start()
    hand_out = _HandOut(workers, planned(), prior, resend_changed=False)

    hand_out.pump()  # no worker takes anything yet: the hand-out stops, it does not read everything

    assert drawn[0] <= 2 * (_CHUNKS_AHEAD + 1) * _CHUNK
    deadline = time.monotonic() + ENDS_WITHIN
    while sum(s.chunks.qsize() for s in streams) < 2 * _CHUNKS_AHEAD and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [s.chunks.qsize() for s in streams] == [_CHUNKS_AHEAD, _CHUNKS_AHEAD]

    got: list[list[str]] = [[], []]

    def worker(index: int) -> None:
        for item in streams[index]:
            got[index].append(item.to)
            taken[index] += 1

    consumers = [threading.Thread(target=worker, args=(index,), daemon=True) for index in range(2)]
    for consumer in consumers:
        consumer.start()
    while any(c.is_alive() for c in consumers) and time.monotonic() < deadline:
        for ready in wait([w.conn for w in workers], timeout=0.05):
            owner = next(w for w in workers if w.conn is ready)
            kind, _ = owner.conn.recv()
            assert kind == "more"
            hand_out.more(owner)

    assert not any(c.is_alive() for c in consumers)
    assert most_waiting[0] <= 2 * (_CHUNKS_AHEAD + 2) * _CHUNK  # never the whole list
    for index in range(2):
        assert got[index] == [item.to for item in items if share_of(item.to, 2) == index]
        assert workers[index].size == streams[index].received == len(got[index])
    assert priors[share_of(items[7].to, 2)] == prior  # what earlier tries did comes with the recipient


def test_a_journal_recipient_that_is_not_ascii_is_passed_over_not_a_crash(tmp_path: Path) -> None:
    listed = tmp_path / "recipients.jsonl"
    listed.write_text('"+1 415 555 0100"\n"+1 415 555 0101"\n')
    plan = build_plan(str(listed), message=TEXT)
    workers, theirs = fake_workers(tmp_path, 2)
    prior = {"\u0661\u0662\u0663": Outcome(ACCEPTED), "14155550100": Outcome(ACCEPTED, wamid="w")}

    assert _brief(workers, plan.items(), prior, resend_changed=False) is None  # each reads its share

    messages = [received(conn) for conn in theirs]
    priors = [dict(p for kind, chunk in m if kind == "prior" for p in chunk) for m in messages]
    assert priors[share_of("14155550100", 2)] == {"14155550100": Outcome(ACCEPTED, wamid="w")}
    assert all(m[-1] == ("end", None) for m in messages)


# --- starting under the lease ----------------------------------------------------------------------


class _LostLease(Lease):
    @property
    def lost(self) -> bool:
        return True


def test_workers_do_not_start_when_the_lease_was_lost_and_start_with_its_expiry_otherwise(
    tmp_path: Path,
) -> None:
    lost = LocalJournal(str(tmp_path / "a.jsonl"), lease=_LostLease())
    workers, theirs = fake_workers(tmp_path, 2)

    assert _go(workers, lost) is False
    assert [received(conn) for conn in theirs] == [
        [("stop", "the task process lost the journal's lease before the send began")]
    ] * 2

    class Renewed(Lease):
        @property
        def valid_until(self) -> float:
            return 1234.5

    workers, theirs = fake_workers(tmp_path, 2)
    assert _go(workers, LocalJournal(str(tmp_path / "b.jsonl"), lease=Renewed())) is True
    assert [received(conn) for conn in theirs] == [[("go", 1234.5)]] * 2
    assert WorkerLease(1234.5).lost  # a worker told so stops at once: that time has passed


# --- the launcher, once the task's process is gone -------------------------------------------------


def test_the_launcher_keeps_reaping_quietly_once_nobody_reads_its_reports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the task's process is gone: its end of the launcher's stdout with it
    broken = open(write_end, "w")  # noqa: SIM115 (closed below)
    monkeypatch.setattr(sys, "stdout", broken)
    ours, theirs = socket.socketpair()
    parent = Connection(ours.detach())
    parent.send(("stop", "the task stopped"))  # the worker ends at once, briefed with nothing

    try:
        _launch([theirs.detach()])  # raised BrokenPipeError from its report before
    finally:
        broken.close()
        parent.close()


# --- counts when the journal fails -----------------------------------------------------------------


class _FailingJournal(LocalJournal):
    """Appends fail once ``failing`` says so for the batch."""

    def __init__(self, path: str, failing: Any) -> None:
        super().__init__(path)
        self.failing = failing

    def append(self, records: list[dict[str, Any]]) -> None:
        if self.failing(records):
            raise OSError("disk full")
        super().append(records)


@pytest.mark.parametrize(
    "failing",
    [
        pytest.param(lambda records: True, id="every-record"),
        pytest.param(lambda records: any(r["state"] == ACCEPTED for r in records), id="outcomes"),
    ],
)
def test_every_recipient_is_counted_when_a_journal_write_fails(tmp_path: Path, failing: Any) -> None:
    items = [BulkItem(to=f"1415555{i:04d}", payload={"to": f"1415555{i:04d}"}) for i in range(6)]

    async def send(payload: dict[str, Any]) -> str:
        return "wamid." + payload["to"]

    journal = _FailingJournal(str(tmp_path / "j.jsonl"), failing)
    config = BulkConfig(max_rate=1000, max_concurrency=10)
    result = asyncio.run(run_bulk(items, send, journal, config, prior={}))

    counts = result.as_dict()
    assert result.aborted is not None
    assert counts["total"] == 6
    assert counts["sent"] + counts["skipped"] + counts["failed"] + counts["unknown"] + counts["not_sent"] == 6
