"""What a bulk send costs per message: connections kept alive at any concurrency, and a journal written
from one thread that still makes each record durable before what depends on it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp.bulk.engine import BulkConfig, JournalWriter
from airflow_provider_whatsapp.bulk.progress import ACCEPTED, ATTEMPT, LocalJournal, record
from airflow_provider_whatsapp.hooks._client_pool import CONNECTIONS_PER_CLIENT
from tests.bulk.helpers import MESSAGES, Inbox, numbers, run_through_hook, text_items
from tests.loopback import LoopbackServer

WRITER_THREAD = "whatsapp-bulk-journal"


def send_all(journal: LocalJournal, config: BulkConfig, count: int, check: Any = None) -> Any:
    """``count`` sends through the hook's real async client; ``check(payload)`` runs before each."""
    return run_through_hook(text_items(numbers(count)), journal, config, check)


def test_a_bulk_send_above_twenty_in_flight_keeps_its_connections(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    # 0.1 s answers at 400/s: about 40 requests in flight, twice what one default httpx pool keeps.
    maton_conn.route("POST", MESSAGES, Inbox(delay=0.1))
    before = maton_conn.connections
    journal = LocalJournal(str(tmp_path / "journal.jsonl"))
    result = send_all(journal, BulkConfig(max_rate=400, max_concurrency=48), 240)
    assert result.sent == 240
    opened = maton_conn.connections - before
    # Bounded by the concurrency, not by the number of messages (one a message without reuse).
    assert opened <= 48 + CONNECTIONS_PER_CLIENT, opened


def test_each_attempt_is_in_the_journal_file_before_its_request_leaves(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    maton_conn.route("POST", MESSAGES, Inbox())
    path = tmp_path / "journal.jsonl"
    missing: list[str] = []

    def attempt_on_file(payload: dict[str, Any]) -> None:
        # Read through a file of its own: what any reader (a resumed run) would find.
        lines = [json.loads(line) for line in path.read_bytes().splitlines()]
        if not any(r["to"] == payload["to"] and r["state"] == ATTEMPT for r in lines):
            missing.append(payload["to"])

    result = send_all(
        LocalJournal(str(path)), BulkConfig(max_rate=200, max_concurrency=20), 60, attempt_on_file
    )
    assert result.sent == 60 and missing == []
    states = [json.loads(line)["state"] for line in path.read_bytes().splitlines()]
    assert states.count(ACCEPTED) == 60
    assert not [t for t in threading.enumerate() if t.name == WRITER_THREAD]  # the writer ended with the run


class GatedJournal(LocalJournal):
    """A journal whose appends wait for ``gate``: a slow disk, held still."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.started = threading.Event()
        self.batches: list[int] = []

    def append(self, records: list[dict[str, Any]]) -> None:
        self.started.set()
        self.gate.wait(5)
        super().append(records)
        self.batches.append(len(records))


def test_a_write_returns_only_once_its_append_returned_and_later_ones_go_together(tmp_path: Path) -> None:
    journal = GatedJournal(str(tmp_path / "j.jsonl"))

    async def main() -> None:
        writer = JournalWriter(journal)
        first = asyncio.create_task(writer.write(record("1", ATTEMPT)))
        await asyncio.to_thread(journal.started.wait, 5)
        later = [asyncio.create_task(writer.write(record(str(i), ATTEMPT))) for i in range(2, 6)]
        await asyncio.sleep(0.05)
        assert not first.done() and not any(t.done() for t in later)  # the append has not returned
        journal.gate.set()
        await asyncio.wait_for(asyncio.gather(first, *later), 5)
        await writer.aclose()

    asyncio.run(main())
    journal.close()
    # The four written during the first append went out in one append after it.
    assert journal.batches == [1, 4]
    assert len(journal.outcomes()) == 5


def test_a_failed_append_fails_every_write_waiting_on_it_and_the_next_ones_are_tried(tmp_path: Path) -> None:
    failures = [OSError("disk full")]

    class Failing(LocalJournal):
        def append(self, records: list[dict[str, Any]]) -> None:
            if failures:
                raise failures.pop()
            super().append(records)

    journal = Failing(str(tmp_path / "j.jsonl"))

    async def main() -> None:
        writer = JournalWriter(journal)
        with pytest.raises(OSError, match="disk full"):
            await writer.write(record("1", ATTEMPT))
        await asyncio.wait_for(writer.write(record("2", ATTEMPT)), 5)
        await writer.aclose()

    started = time.monotonic()
    asyncio.run(main())
    journal.close()
    assert time.monotonic() - started < 5
    assert list(journal.outcomes()) == ["2"]


def test_an_outcome_waits_for_the_next_attempt_to_share_its_sync(tmp_path: Path) -> None:
    appended: list[list[str]] = []

    class Counting(LocalJournal):
        def append(self, records: list[dict[str, Any]]) -> None:
            super().append(records)
            appended.append([r["state"] for r in records])

    journal = Counting(str(tmp_path / "j.jsonl"))

    async def main() -> None:
        writer = JournalWriter(journal)
        await asyncio.wait_for(writer.write(record("1", ACCEPTED, wamid="wamid.1")), 5)  # alone: synced
        await asyncio.wait_for(
            asyncio.gather(
                writer.write(record("1", ACCEPTED, wamid="wamid.1")), writer.write(record("2", ATTEMPT))
            ),
            5,
        )
        await writer.aclose()

    asyncio.run(main())
    journal.close()
    assert appended == [[ACCEPTED], [ACCEPTED, ATTEMPT]]
