"""SIGKILL a bulk send part-way, run the task again: every recipient gets exactly one message.

The kill comes from the server at the moment the 80th message is delivered, before it answers: so at
least that recipient received the message without the sender ever learning it, the worst case for
duplicates. A retry skips every recipient the journal shows accepted and reports the ones that were
in flight as unknown, without sending to them again. The test then does what the task's error tells
the user to do: check those recipients' chats (here, the server's record of deliveries) and list the
ones that did not get the message in ``resend_unknown``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from tests.bulk.crash_child import RECIPIENTS, recipients
from tests.bulk.helpers import MESSAGES, Inbox, context, digits, journal_file
from tests.conftest import REPO_ROOT, connection_json
from tests.loopback import LoopbackServer, Recorded, Reply

KILL_AT = 80
HELD_INDEX = 60
TEXT = {"type": "text", "text": {"body": "Quarterly results are out"}}


def test_sigkill_mid_send_then_retry_delivers_each_message_exactly_once(
    loopback: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = connection_json(loopback.url)
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", conn)
    inbox = Inbox(delay=0.05)
    killed = threading.Event()
    # One request reaches the gateway but is still queued there when the worker dies, and the gateway
    # drops it: the journal cannot tell this recipient from the in-flight ones that were delivered.
    held = digits(recipients()[HELD_INDEX])

    def gateway(request: Recorded) -> Reply:
        if request.json["to"] == held and not killed.is_set():
            killed.wait(timeout=30)
            return Reply(503, {})  # dropped, not delivered; nobody is listening any more
        return inbox(request)

    loopback.route("POST", MESSAGES, gateway)
    run_id = "scheduled__2026-11-21T00:00:00+00:00"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.bulk.crash_child", str(tmp_path), run_id],
        cwd=REPO_ROOT,
        env={**os.environ, "AIRFLOW_CONN_MATON_DEFAULT": conn},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def kill_on_delivery(to: str, count: int) -> None:
        if count == KILL_AT and not killed.is_set():
            os.kill(child.pid, signal.SIGKILL)  # delivered, and the sender never hears back
            killed.set()

    inbox.on_delivery = kill_on_delivery
    try:
        _, stderr = child.communicate(timeout=60)
        assert killed.is_set(), f"the child ended before it could be killed: {stderr.decode()[-2000:]}"
        assert child.returncode == -signal.SIGKILL
        delivered_before_retry = list(inbox.delivered)
        ctx = context(run_id=run_id)
        recorded = [json.loads(line) for line in journal_file(tmp_path, ctx).read_text().splitlines() if line]
        accepted_before = {r["to"] for r in recorded if r["state"] == "accepted"}

        # The retry: skips what was accepted, sends the rest, and does not touch the in-flight ones.
        retry = WhatsAppSendBulkOperator(
            task_id="bulk",
            recipients=recipients(),
            message=TEXT,
            max_rate=80,
            progress_path=str(tmp_path),
            # How many were in flight at the kill (and so are unknown now) depends on the machine's load:
            # the ratio is not what this test is about, so it does not fail the retry.
            max_failure_ratio=1.0,
        ).execute(ctx)

        unknown = [entry["to"] for entry in retry["unknown_recipients"]]
        assert retry["skipped"] == len(accepted_before)
        assert retry["skipped"] + retry["sent"] + retry["unknown"] == RECIPIENTS
        assert retry["failed"] == 0
        killed_mid_request = delivered_before_retry[KILL_AT - 1]
        assert killed_mid_request in unknown  # delivered, answer never seen: reported, not re-sent
        assert held in unknown and held not in inbox.counts()  # sent, never delivered: also unknown
        assert max(inbox.counts().values()) == 1  # no duplicate so far

        # The user checks the unknown recipients' chats and resends to those who did not get it.
        not_received = [to for to in unknown if to not in inbox.counts()]
        final = WhatsAppSendBulkOperator(
            task_id="bulk",
            recipients=recipients(),
            message=TEXT,
            max_rate=80,
            progress_path=str(tmp_path),
            resend_unknown=not_received,
            max_failure_ratio=1.0,
        ).execute(ctx)
        assert not_received and final["sent"] == len(not_received)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    counts = inbox.counts()
    assert len(inbox.delivered) == RECIPIENTS  # 200 messages
    assert set(counts) == {digits(n) for n in recipients()}  # to 200 distinct recipients
    assert set(counts.values()) == {1}  # none twice
    print(
        f"crash test: killed at delivery {KILL_AT}; accepted before kill {len(accepted_before)}, "
        f"unknown after kill {len(unknown)} ({len(unknown) - len(not_received)} had arrived, "
        f"{len(not_received)} had not); messages {len(inbox.delivered)}, distinct {len(counts)}"
    )
