"""One bulk send in several worker processes (``processes=N``), through real sockets.

The end-to-end tests start real worker processes (a fresh interpreter each, a few seconds under load)
against the loopback server, which records every arrival: exactly once per recipient, never over the
limit in any second, across tries with different numbers of processes and after a worker is killed.
The quick tests check the journal shards, the worker's view of the lease and the argument's bounds.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import socket
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil
import pytest

from airflow_provider_whatsapp._compat import AirflowException, AirflowFailException, ObjectStoragePath
from airflow_provider_whatsapp.bulk.engine import BulkConfig, BulkItem
from airflow_provider_whatsapp.bulk.items import share_of
from airflow_provider_whatsapp.bulk.lease import LeaseLostError
from airflow_provider_whatsapp.bulk.progress import (
    ACCEPTED,
    ATTEMPT,
    UNKNOWN,
    LocalJournal,
    ObjectStoreJournal,
    record,
)
from airflow_provider_whatsapp.bulk.workers import (
    WorkerLease,
    WorkerSpec,
    WorkerStoppedError,
    _listen,
    _send_share,
    share_config,
)
from airflow_provider_whatsapp.hooks.maton import MatonHook
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
)
from tests.conftest import TEST_KEY
from tests.loopback import LoopbackServer, Recorded, Reply

TEXT = {"type": "text", "text": {"body": "Your statement is ready"}}
WORKER_MODULE = "airflow_provider_whatsapp.bulk.workers"
# Generous: two or three fresh interpreters importing Airflow on a loaded 2-core machine.
ENDS_WITHIN = 120


def bulk(tmp_path: Path, recipients: list[str] | str, **kwargs: Any) -> WhatsAppSendBulkOperator:
    return WhatsAppSendBulkOperator(
        task_id="bulk", recipients=recipients, message=TEXT, progress_path=str(tmp_path), **kwargs
    )


def workers_of_this_process() -> list[psutil.Process]:
    """The launcher and the workers forked from it."""
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if WORKER_MODULE in " ".join(_quietly(child.cmdline))
    ]


def worker_writing(shard_suffix: str) -> psutil.Process:
    """The worker process that has the journal shard ending in ``shard_suffix`` open."""
    return next(
        process
        for process in workers_of_this_process()
        if any(f.path.endswith(shard_suffix) for f in _quietly(process.open_files))
    )


def _quietly(read: Any) -> Any:
    try:
        return read()
    except psutil.Error:
        return []


def shards(tmp_path: Path, ctx: dict[str, Any]) -> list[str]:
    journal = journal_file(tmp_path, ctx)
    return sorted(p.name[len(journal.name) :] for p in journal.parent.glob(journal.name + ".*.shard"))


# --- end to end: real worker processes -------------------------------------------------------------


def test_two_processes_send_each_recipient_once_within_the_rate_and_never_see_the_key(
    maton_conn: LoopbackServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    inbox = Inbox(delay=0.02)
    seen: dict[int, tuple[str, dict[str, str]]] = {}

    def look_at_the_workers(to: str, count: int) -> None:
        # While they send: what anyone on the machine can read of them (ps, /proc).
        for worker in workers_of_this_process():
            seen.setdefault(worker.pid, (" ".join(_quietly(worker.cmdline)), _quietly(worker.environ)))

    inbox.on_delivery = look_at_the_workers
    maton_conn.route("POST", MESSAGES, inbox)
    recipients = numbers(40)
    # From a local file: each worker reads its own share of it.
    listed = tmp_path / "recipients.jsonl"
    listed.write_text("".join(json.dumps(number) + "\n" for number in recipients))
    ctx = context()

    started = time.monotonic()
    result = bulk(tmp_path, str(listed), max_rate=20, processes=2).execute(ctx)

    assert time.monotonic() - started < ENDS_WITHIN
    assert result["total"] == 40 and result["sent"] == 40
    assert (result["failed"], result["unknown"], result["not_sent"], result["throttled"]) == (0, 0, 0, 0)
    assert sorted(inbox.delivered) == sorted(digits(n) for n in recipients)  # each exactly once
    assert max_in_any_window([at for _, at in inbox.attempts]) <= 20  # both workers together
    assert shards(tmp_path, ctx) == [".00001-000.shard", ".00001-001.shard"]
    # The key went to the workers over their socket only.
    assert len(seen) == 3  # the launcher and the two workers forked from it
    for cmdline, environment in seen.values():
        assert environment, "could not read a worker's environment"
        assert TEST_KEY not in cmdline
        assert not [name for name, value in environment.items() if TEST_KEY in value]
    assert "AIRFLOW_CONN_MATON_DEFAULT" in os.environ  # ... though this process's environment has it
    assert TEST_KEY not in capfd.readouterr().err
    assert not workers_of_this_process()  # none outlives the task


def test_a_try_with_two_processes_stopped_part_way_then_three_send_each_recipient_once(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    inbox = Inbox(delay=0.02)
    key_revoked = threading.Event()
    inbox.on_delivery = lambda to, count: key_revoked.set() if count >= 15 else None

    def gateway(request: Recorded) -> Reply:
        if key_revoked.is_set():
            return graph(190, status=401)  # nothing delivered: a fatal error for the whole send
        return inbox(request)

    maton_conn.route("POST", MESSAGES, gateway)
    recipients = numbers(60)
    ctx = context()

    with pytest.raises(AirflowFailException, match="sent") as first:
        bulk(tmp_path, recipients, max_rate=30, processes=2).execute(ctx)
    delivered_first = len(inbox.delivered)
    assert 15 <= delivered_first < 60, first.value

    key_revoked.clear()
    inbox.on_delivery = None
    result = bulk(tmp_path, recipients, max_rate=30, processes=3).execute(ctx)

    assert result["skipped"] == delivered_first  # accepted by either worker of the first try
    assert result["sent"] == 60 - delivered_first
    assert result["failed"] == result["unknown"] == 0
    assert sorted(inbox.delivered) == sorted(digits(n) for n in recipients)  # each exactly once in all
    assert shards(tmp_path, ctx) == [
        ".00001-000.shard",
        ".00001-001.shard",
        ".00002-000.shard",
        ".00002-001.shard",
        ".00002-002.shard",
    ]


def test_a_killed_worker_fails_the_task_naming_it_and_its_inflight_recipients_are_unknown(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    inbox = Inbox(delay=0.1)  # several requests of each worker in flight at any time
    killed: list[tuple[str, int]] = []

    def kill_its_worker(to: str, count: int) -> None:
        # Delivered, and the worker that sent it dies before it hears so.
        if count == 20 and not killed:
            worker = worker_writing(f"-{share_of(to, 2):03d}.shard")
            killed.append((to, worker.pid))
            os.kill(worker.pid, signal.SIGKILL)

    inbox.on_delivery = kill_its_worker
    maton_conn.route("POST", MESSAGES, inbox)
    recipients = numbers(80)
    ctx = context()

    started = time.monotonic()
    with pytest.raises(AirflowException) as failure:
        bulk(tmp_path, recipients, max_rate=40, processes=2).execute(ctx)
    assert time.monotonic() - started < ENDS_WITHIN
    assert not isinstance(failure.value, AirflowFailException)  # a new try is safe, and resumes
    ((to, pid),) = killed
    number = share_of(to, 2) + 1
    assert f"bulk worker {number} of 2 (pid {pid}) was killed by signal {signal.SIGKILL}" in str(
        failure.value
    )
    assert "The other workers were stopped" in str(failure.value)
    assert not workers_of_this_process()
    delivered_first = list(inbox.delivered)
    assert len(delivered_first) < 80  # the other worker stopped too

    inbox.on_delivery = None
    resumed = bulk(tmp_path, recipients, max_rate=40, max_failure_ratio=1.0).execute(ctx)

    unknown = {entry["to"] for entry in resumed["unknown_recipients"]}
    assert to in unknown  # delivered, never answered: reported, not sent again
    assert {share_of(other, 2) + 1 for other in unknown} == {number}  # only the killed worker's
    assert resumed["skipped"] + resumed["sent"] + resumed["unknown"] == 80
    assert max(inbox.counts().values()) == 1  # nobody got it twice
    assert set(inbox.delivered) | unknown == {digits(n) for n in recipients}


# --- the worker side, in this process ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("tell", "error", "reason"),
    [
        ([("lease", float("inf"), True)], LeaseLostError, "lost the journal's lease"),
        ([None], LeaseLostError, "is gone"),  # its end of the socket closed: the parent died, its flock too
        ([("stop", "bulk worker 2 of 2 stopped: bad key")], WorkerStoppedError, "bulk worker 2 of 2"),
    ],
)
def test_a_worker_sends_nothing_more_once_its_parent_lost_the_lease_is_gone_or_says_stop(
    maton_conn: LoopbackServer, tmp_path: Path, tell: list[Any], error: type[Exception], reason: str
) -> None:
    inbox = Inbox(delay=0.05)
    lease = WorkerLease()
    parent_end, worker_end = socket.socketpair()
    parent, conn = Connection(parent_end.detach()), Connection(worker_end.detach())

    def parent_speaks(to: str, count: int) -> None:
        # The first message is delivered, its answer not back yet; one request in flight at a time.
        if count == 1:
            for message in tell:
                if message is None:
                    parent.close()
                else:
                    parent.send(message)

    inbox.on_delivery = parent_speaks
    maton_conn.route("POST", MESSAGES, inbox)
    spec = WorkerSpec(
        index=0,
        count=1,
        journal=LocalJournal(str(tmp_path / "j.jsonl"), lease=lease, target=str(tmp_path / "shard")),
        config=BulkConfig(max_rate=20, max_concurrency=1),
        settings=MatonHook().settings,
        hook_kwargs={"max_attempts": 1, "rate_limit": 0},
        log_level=20,
    )
    items = [BulkItem(to=digits(n), payload={"to": digits(n), **TEXT}) for n in numbers(10)]
    stop, reasons = threading.Event(), []
    threading.Thread(target=_listen, args=(conn, lease, stop, reasons), daemon=True).start()

    result = asyncio.run(asyncio.wait_for(_send_share(spec, lease, items, {}, stop, reasons), ENDS_WITHIN))

    assert isinstance(result.aborted, error)
    assert reason in (lease.lost_reason or str(result.aborted))
    assert len(inbox.delivered) == result.sent == 1
    if error is WorkerStoppedError:  # stopped between sends: the rest pending for a new try, none in doubt
        assert (result.not_sent, result.unknown) == (9, [])


def test_a_worker_lease_is_lost_once_its_last_renewal_ran_out() -> None:
    lease = WorkerLease()
    assert not lease.lost
    lease.until = time.time() + 60
    assert not lease.lost
    lease.until = time.time() - 0.001
    assert lease.lost


# --- journal shards -------------------------------------------------------------------------------


def test_local_shards_replay_after_the_journal_and_earlier_generations(tmp_path: Path) -> None:
    path = str(tmp_path / "bulk.jsonl")
    first = LocalJournal(path)  # a single-process try: the journal itself
    first.load()
    first.append([record("1", ATTEMPT), record("2", ATTEMPT), record("2", UNKNOWN)])
    first.close()

    second = LocalJournal(path)  # two processes: shards of generation 1
    second.load()
    lease = WorkerLease()
    for index, to in enumerate(["1", "3"]):
        shard = second.shard(index, lease)
        shard.append([record(to, ATTEMPT), record(to, ACCEPTED, wamid=f"w{to}")])
        shard.close()
    second.close()

    third = LocalJournal(path)  # one process after shards: writes a shard of the next generation
    assert third.outcomes()["1"].state == ACCEPTED
    third.append([record("2", ATTEMPT), record("2", ACCEPTED, wamid="w2")])
    third.close()

    outcomes = LocalJournal(path).outcomes()
    assert {to: o.state for to, o in outcomes.items()} == {"1": ACCEPTED, "2": ACCEPTED, "3": ACCEPTED}
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "bulk.jsonl",
        "bulk.jsonl.00001-000.shard",
        "bulk.jsonl.00001-001.shard",
        "bulk.jsonl.00002-000.shard",
    ]


def test_a_shard_of_one_task_never_reads_as_another_tasks_journal(tmp_path: Path) -> None:
    one = LocalJournal(str(tmp_path / "a.jsonl"))
    one.load()
    shard = one.shard(0, WorkerLease())
    shard.append([record("1", ACCEPTED)])
    shard.close()

    other = LocalJournal(str(tmp_path / "a.jsonl.00001-000.shard.jsonl"))
    assert other.outcomes() == {}
    assert LocalJournal(str(tmp_path / "b.jsonl")).outcomes() == {}


def test_object_store_shards_of_one_run_share_its_generation_under_distinct_names(tmp_path: Path) -> None:
    directory = ObjectStoragePath(f"file://{tmp_path}/journal")
    parent = ObjectStoreJournal(directory)
    parent.load()
    lease = WorkerLease()
    # As a worker gets it: pickled over its socket.
    workers = [pickle.loads(pickle.dumps(parent.shard(index, lease))) for index in range(3)]
    for index, worker in enumerate(workers):
        worker.append([record(f"{index}", ATTEMPT)])
        worker.append([record(f"{index}", ACCEPTED, wamid=f"w{index}")])

    names = sorted(p.name for p in directory.iterdir())
    assert len(names) == 6 and {name.split("-")[0] for name in names} == {"00001"}
    later = ObjectStoreJournal(directory)
    assert {to: o.state for to, o in later.outcomes().items()} == {
        "0": ACCEPTED,
        "1": ACCEPTED,
        "2": ACCEPTED,
    }
    later.append([record("0", ATTEMPT)])
    assert any(p.name.startswith("00002-") for p in directory.iterdir())

    workers[0].lease.lost_reason = "the task process lost the journal's lease"
    with pytest.raises(LeaseLostError):
        workers[0].append([record("9", ATTEMPT)])


# --- partition, shares, arguments ------------------------------------------------------------------


def test_each_worker_paces_its_share_of_the_rate_and_of_the_requests_in_flight() -> None:
    share = share_config(BulkConfig(max_rate=1000, max_concurrency=2001, resend_unknown=True), 3, 0)
    assert share.max_rate == pytest.approx(1000 / 3)
    assert share.max_concurrency == 667
    assert share.resend_unknown is True


@pytest.mark.parametrize("processes", [0, 33, True, 2.0, "2"])
def test_processes_is_a_whole_number_up_to_the_limit(processes: Any) -> None:
    with pytest.raises(ValueError, match="processes must be") as error:
        WhatsAppSendBulkOperator(
            task_id="bulk", recipients=["+14155550100"], message=TEXT, processes=processes
        )
    if processes in (0, 33):
        assert "between 1 and 32" in str(error.value)


def test_a_hook_from_resolved_settings_reads_no_connection(
    maton_conn: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    maton_conn.route("POST", MESSAGES, Inbox())
    settings = MatonHook().settings
    monkeypatch.delenv("AIRFLOW_CONN_MATON_DEFAULT")

    hook = MatonHook.from_settings(settings, max_attempts=1, rate_limit=0)
    answer = hook.send_message({"to": "14155550100", **TEXT})

    assert MatonHook.message_id(answer).startswith("wamid.")
    assert hook.settings.rate_limit == 0
    assert (
        json.dumps(maton_conn.requests_to("POST", MESSAGES)[0].header("Authorization")).count(TEST_KEY) == 1
    )
