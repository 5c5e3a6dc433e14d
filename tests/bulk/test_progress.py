"""The progress journal: durable records, torn lines, object stores, one journal per task instance."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from airflow_provider_whatsapp._compat import ObjectStoragePath
from airflow_provider_whatsapp.bulk.engine import JournalWriter
from airflow_provider_whatsapp.bulk.progress import (
    LocalJournal,
    ObjectStoreJournal,
    open_journal,
    record,
)
from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from tests.bulk.helpers import MESSAGES, Inbox, context, digits, numbers
from tests.loopback import LoopbackServer

TEXT = {"type": "text", "text": {"body": "hello"}}


def test_last_record_wins_and_attempt_without_outcome_stays_attempt(tmp_path: Path) -> None:
    journal = LocalJournal(str(tmp_path / "j.jsonl"))
    journal.append([record("1", "attempt"), record("2", "attempt")])
    journal.append(
        [
            record("1", "accepted", wamid="wamid.1"),
            record("3", "attempt"),
            record("3", "released", code=131056),
        ]
    )
    journal.close()

    outcomes = LocalJournal(str(tmp_path / "j.jsonl")).outcomes()

    assert outcomes["1"].state == "accepted" and outcomes["1"].wamid == "wamid.1"
    assert outcomes["2"].state == "attempt"
    assert outcomes["3"].state == "released" and outcomes["3"].code == 131056


def test_a_line_torn_by_a_crash_is_ignored_and_does_not_swallow_the_next(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = LocalJournal(str(path))
    journal.append([record("1", "accepted", wamid="w1")])
    journal.close()
    with open(path, "ab") as handle:
        handle.write(b'{"to":"2","state":"att')  # the process died in the middle of this write

    again = LocalJournal(str(path))
    again.append([record("3", "accepted", wamid="w3")])
    again.close()

    assert set(LocalJournal(str(path)).outcomes()) == {"1", "3"}


def test_object_store_journal_keeps_order_across_tries(tmp_path: Path) -> None:
    directory = ObjectStoragePath(f"file://{tmp_path}/journal")
    first = ObjectStoreJournal(directory)
    first.append([record("1", "attempt")])
    first.append([record("1", "accepted", wamid="w1"), record("2", "attempt")])
    second = ObjectStoreJournal(directory)  # the next try, maybe on another worker
    assert second.outcomes()["2"].state == "attempt"
    second.append([record("2", "accepted", wamid="w2")])

    outcomes = ObjectStoreJournal(directory).outcomes()

    assert {k: v.state for k, v in outcomes.items()} == {"1": "accepted", "2": "accepted"}
    names = sorted(p.name for p in directory.iterdir())
    assert names[0].startswith("00001-") and names[-1].startswith("00002-")


def test_paths_are_per_task_instance_and_safe(tmp_path: Path) -> None:
    journal = open_journal(
        str(tmp_path), dag_id="d", run_id="scheduled__2026-01-01T00:00:00+00:00", task_id="t", map_index=3
    )
    assert journal.location == str(
        tmp_path / "d" / "scheduled__2026-01-01T00%3A00%3A00%2B00%3A00" / "t@3.jsonl"
    )
    assert isinstance(open_journal(f"file://{tmp_path}", dag_id="d", run_id="r", task_id="t"), LocalJournal)
    remote = open_journal("s3://bucket/prefix", dag_id="d", run_id="r", task_id="t")
    assert isinstance(remote, ObjectStoreJournal)
    assert remote.location.endswith("bucket/prefix/d/r/t")


def test_default_location_is_airflow_home_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    journal = open_journal(None, dag_id="d", run_id="r", task_id="t")
    assert journal.location == os.path.join(
        os.environ["AIRFLOW_HOME"], "whatsapp_bulk_progress", "d", "r", "t.jsonl"
    )
    assert "shared" in caplog.text


def test_records_written_together_are_committed_in_one_append(tmp_path: Path) -> None:
    appended: list[int] = []

    class Counting(LocalJournal):
        def append(self, records: list[dict]) -> None:
            appended.append(len(records))
            super().append(records)

    journal = Counting(str(tmp_path / "j.jsonl"))

    async def main() -> None:
        writer = JournalWriter(journal)
        await asyncio.gather(*(writer.write(record(str(i), "attempt")) for i in range(50)))

    asyncio.run(main())
    journal.close()
    assert sum(appended) == 50 and len(appended) < 50
    assert len(journal.outcomes()) == 50


def test_a_journal_that_cannot_be_written_stops_before_sending(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    inbox = Inbox()
    maton_conn.route("POST", MESSAGES, inbox)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")

    op = WhatsAppSendBulkOperator(
        task_id="bulk", recipients=numbers(3), message=TEXT, progress_path=str(blocker)
    )
    with pytest.raises(
        WhatsAppValidationError, match=r"^progress_path: could not lock the bulk send journal"
    ):
        op.execute(context())

    assert inbox.attempts == []


def test_resume_through_an_object_store(
    maton_conn: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An object store (s3://, gs://) is written one object per batch; a local fsspec store stands in.
    import airflow_provider_whatsapp.bulk.progress as progress

    store = ObjectStoragePath(f"file://{tmp_path}/store")
    monkeypatch.setattr(progress, "open_journal", lambda *a, **k: ObjectStoreJournal(store / "run" / "bulk"))
    inbox = Inbox()
    inbox.rules["14155550001"] = ["deliver-500"]
    maton_conn.route("POST", MESSAGES, inbox)

    def run() -> dict:
        return WhatsAppSendBulkOperator(
            task_id="bulk", recipients=numbers(4), message=TEXT, max_failure_ratio=0.5
        ).execute(context())

    first, second = run(), run()

    assert (first["sent"], first["unknown"]) == (3, 1)
    assert (second["sent"], second["skipped"], second["unknown"]) == (0, 3, 1)
    assert inbox.counts() == {digits(n): 1 for n in numbers(4)}
