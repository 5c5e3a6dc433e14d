"""Two runs of one bulk task instance at once (a zombie and its retry, a manual re-run): one sends.

The runs are two processes against one loopback gateway, as a zombie and its retry would be. The
gateway holds the first message until one of the runs has ended, so the other is mid-send whenever
the second one starts, whichever of the two gets the journal first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import ObjectStoragePath
from airflow_provider_whatsapp.bulk.lease import Holder, JournalBusyError, LeaseLostError, ObjectStoreLease
from airflow_provider_whatsapp.bulk.progress import ObjectStoreJournal, record
from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from tests.bulk.concurrent_child import RECIPIENTS, TEXT, recipients
from tests.bulk.helpers import MESSAGES, Inbox, context, digits, journal_file, numbers
from tests.conftest import REPO_ROOT, connection_json
from tests.loopback import LoopbackServer, Recorded, Reply

BUSY = "Another run of this task instance is using its bulk send journal"


def start_run(
    loopback: LoopbackServer, progress: Path, store: str, journal_wait: float = 0.0
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tests.bulk.concurrent_child", str(progress), "manual__1", store]
    if journal_wait:
        command.append(str(journal_wait))
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, "AIRFLOW_CONN_MATON_DEFAULT": connection_json(loopback.url)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def hold_first_send(loopback: LoopbackServer, inbox: Inbox, until: threading.Event) -> None:
    """Answer sends like WhatsApp, but keep the first one waiting until ``until`` (at most 25 s)."""
    first = threading.Event()

    def gateway(request: Recorded) -> Reply:
        if not first.is_set():
            first.set()
            until.wait(timeout=25)  # under the hook's 30 s read timeout
        return inbox(request)

    loopback.route("POST", MESSAGES, gateway)


def finish(runs: list[subprocess.Popen[bytes]]) -> list[tuple[int, str, str]]:
    try:
        outputs = [run.communicate(timeout=90) for run in runs]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait()
    # The result is the last line of stdout (Airflow may log there before it).
    return [
        (run.returncode, (out.decode().strip().splitlines() or [""])[-1], err.decode())
        for run, (out, err) in zip(runs, outputs, strict=True)
    ]


@pytest.mark.parametrize("store", ["local", "object"])
def test_two_runs_at_once_send_each_recipient_once_and_the_second_says_why(
    loopback: LoopbackServer, tmp_path: Path, store: str
) -> None:
    inbox = Inbox()
    one_ended = threading.Event()
    hold_first_send(loopback, inbox, one_ended)

    runs = [start_run(loopback, tmp_path, store), start_run(loopback, tmp_path, store)]
    deadline = time.monotonic() + 60
    while all(run.poll() is None for run in runs) and time.monotonic() < deadline:
        time.sleep(0.05)
    one_ended.set()
    (code_a, out_a, err_a), (code_b, out_b, err_b) = finish(runs)

    assert inbox.counts() == {digits(n): 1 for n in recipients()}  # each recipient exactly once
    assert sorted([code_a, code_b]) == [0, 3], (err_a[-2000:], err_b[-2000:])
    winner, (out, loser_error) = (runs[0], (out_a, err_b)) if code_a == 0 else (runs[1], (out_b, err_a))
    assert json.loads(out)["sent"] == RECIPIENTS
    assert "JournalBusyError: " + BUSY in loser_error
    assert f"pid {winner.pid}, try 1" in loser_error  # which run holds it
    assert "this run sent nothing" in loser_error


def test_a_second_run_that_waits_goes_on_after_the_first_and_sends_nothing_again(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    inbox = Inbox()
    both_started = threading.Event()
    hold_first_send(loopback, inbox, both_started)

    runs = [start_run(loopback, tmp_path, "local", journal_wait=60) for _ in range(2)]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let the second reach the journal's lock and wait there
    both_started.set()
    results = finish(runs)

    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    sent = sorted((json.loads(out)["sent"], json.loads(out)["skipped"]) for _, out, _ in results)
    assert sent == [(0, RECIPIENTS), (RECIPIENTS, 0)]
    assert inbox.counts() == {digits(n): 1 for n in recipients()}


def test_a_dead_holder_of_a_local_journal_does_not_block_the_next_try(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    inbox = Inbox()
    maton_conn.route("POST", MESSAGES, inbox)
    ctx = context()
    lock = f"{journal_file(tmp_path, ctx)}.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from airflow_provider_whatsapp.bulk.lease import Holder, LocalLease\n"
            "LocalLease(sys.argv[1]).acquire(Holder.this_process(try_number=1))\n"
            "print('held', flush=True)\n"
            "time.sleep(120)\n",
            lock,
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"

        def run() -> dict[str, Any]:
            return WhatsAppSendBulkOperator(
                task_id="bulk", recipients=numbers(3), message=TEXT, progress_path=str(tmp_path)
            ).execute(ctx)

        with pytest.raises(JournalBusyError, match=f"pid {holder.pid}, try 1"):
            run()  # alive: not taken over
        assert maton_conn.requests == []

        holder.kill()  # SIGKILL: no clean-up runs; the kernel drops the lock
        holder.wait()
        result = run()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()

    assert result["sent"] == 3
    assert inbox.counts() == {digits(n): 1 for n in numbers(3)}


def object_store_journal(monkeypatch: pytest.MonkeyPatch, directory: ObjectStoragePath) -> None:
    import airflow_provider_whatsapp.bulk.progress as progress

    monkeypatch.setattr(progress, "open_journal", lambda *a, **k: ObjectStoreJournal(directory))


def test_an_expired_object_store_lease_is_taken_over_and_a_live_one_is_not(
    maton_conn: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = Inbox()
    maton_conn.route("POST", MESSAGES, inbox)
    directory = ObjectStoragePath(f"file://{tmp_path}/store/journal")
    object_store_journal(monkeypatch, directory)
    (tmp_path / "store" / "journal").mkdir(parents=True)
    lease = tmp_path / "store" / "journal" / "lease-00000001.json"
    someone = Holder(host="worker-7", pid=4242, try_number=2)

    def run() -> dict[str, Any]:
        return WhatsAppSendBulkOperator(task_id="bulk", recipients=numbers(3), message=TEXT).execute(
            context()
        )

    lease.write_bytes(someone.encode(expires_at=time.time() + 600))  # alive, renewed
    with pytest.raises(JournalBusyError, match=r"host worker-7, pid 4242, try 2"):
        run()
    assert maton_conn.requests == []

    lease.write_bytes(someone.encode(expires_at=time.time() - 1))  # its holder died a while ago
    result = run()

    assert result["sent"] == 3 and inbox.counts() == {digits(n): 1 for n in numbers(3)}
    taken = json.loads((tmp_path / "store" / "journal" / "lease-00000002.json").read_bytes())
    assert taken["pid"] == os.getpid() and taken["expires_at"] == 0  # taken over, then released


def test_an_object_store_lease_is_renewed_while_held_and_lost_when_not(tmp_path: Path) -> None:
    directory = ObjectStoragePath(f"file://{tmp_path}/journal")
    mine = ObjectStoreJournal(directory, lease_seconds=0.6)
    mine.acquire(Holder.this_process())
    other = ObjectStoreLease(directory, seconds=0.6)
    try:
        time.sleep(1.5)  # well past one lease: only renewal keeps it
        with pytest.raises(JournalBusyError):
            other.acquire(Holder(host="other", pid=1))
        mine.append([record("1", "attempt")])

        mine.lease._stop.set()  # type: ignore[attr-defined]  # the holder hangs: no more renewals
        other.acquire(Holder(host="other", pid=1), wait=5)
        assert mine.lease.lost
        with pytest.raises(LeaseLostError):
            mine.append([record("2", "attempt")])  # a hung holder that wakes up sends no more
    finally:
        other.release()
        mine.close()
    assert set(ObjectStoreJournal(directory).outcomes()) == {"1"}
