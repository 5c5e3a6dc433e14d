"""An object-store lease fences every send, ends its renewer in bounded time, and cannot block forever."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import ObjectStoragePath
from airflow_provider_whatsapp.bulk.engine import BulkConfig, BulkItem, run_bulk
from airflow_provider_whatsapp.bulk.lease import Holder, LeaseLostError, ObjectStoreLease
from airflow_provider_whatsapp.bulk.progress import ATTEMPT, ObjectStoreJournal
from airflow_provider_whatsapp.hooks.maton import MatonHook
from tests.bulk.helpers import MESSAGES, Inbox, digits, numbers
from tests.loopback import LoopbackServer

LEASE = 60.0


class Clock:
    """Wall-clock time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class LateJournal(ObjectStoreJournal):
    """A store whose PUT of one recipient's attempt record completes only after the lease ran out."""

    def __init__(self, directory: ObjectStoragePath, clock: Clock, late_for: str) -> None:
        super().__init__(directory)
        self.lease = ObjectStoreLease(directory, seconds=LEASE, clock=clock, settle=0)
        self.clock = clock
        self.late_for = late_for

    def append(self, records: list[dict[str, Any]]) -> None:
        super().append(records)
        if any(r["to"] == self.late_for and r["state"] == ATTEMPT for r in records):
            self.clock.now += LEASE + 1


def test_a_lease_lost_while_the_attempt_was_written_stops_before_the_send(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    inbox = Inbox()
    maton_conn.route("POST", MESSAGES, inbox)
    recipients = [digits(n) for n in numbers(3)]
    journal = LateJournal(ObjectStoragePath(f"file://{tmp_path}/journal"), Clock(), late_for=recipients[1])
    journal.acquire(Holder.this_process())
    hook = MatonHook(max_attempts=1, rate_limit=0)
    items = [BulkItem(to=r, payload={"to": r, "type": "text", "text": {"body": "hi"}}) for r in recipients]

    async def send(payload: dict[str, Any]) -> str:
        return MatonHook.message_id(await hook.asend_message(payload))

    async def main() -> Any:
        try:
            return await run_bulk(items, send, journal, BulkConfig(max_rate=20, max_concurrency=1))
        finally:
            await hook.aclose()

    try:
        result = asyncio.run(main())
    finally:
        journal.close()

    assert [to for to, _ in inbox.attempts] == [recipients[0]]  # the second never left, nor the third
    assert isinstance(result.aborted, LeaseLostError)
    assert result.sent == 1 and result.not_sent == 1
    # Its attempt record is the last word: a later try reports it as unknown rather than guessing.
    assert ObjectStoreJournal(journal.directory).outcomes()[recipients[1]].state == ATTEMPT


def test_release_does_not_wait_forever_for_a_hung_renewal(tmp_path: Path) -> None:
    lease = ObjectStoreLease(ObjectStoragePath(f"file://{tmp_path}/journal"), seconds=0.6, settle=0)
    lease.acquire(Holder.this_process())
    hung, renewing = threading.Event(), threading.Event()

    def stuck_listing() -> int:
        renewing.set()
        hung.wait(30)  # a store call that does not come back
        return 0

    lease._newest = stuck_listing  # type: ignore[method-assign]
    assert renewing.wait(5)
    released = threading.Thread(target=lease.release, daemon=True)
    try:
        released.start()
        released.join(timeout=10)
        assert not released.is_alive()  # ends within the lease period, not when the store answers
    finally:
        hung.set()


class UnreadableLease:
    """A lease object whose content is not a lease record, with the metadata a store gives."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info

    def read_bytes(self) -> bytes:
        return b"\x00not json"

    def stat(self) -> dict[str, Any]:
        return self.info


def lease_seeing(monkeypatch: pytest.MonkeyPatch, info: dict[str, Any], clock: Clock) -> ObjectStoreLease:
    lease = ObjectStoreLease(ObjectStoragePath("file:///nowhere/journal"), seconds=LEASE, clock=clock)
    monkeypatch.setattr(lease, "_object", lambda generation: UnreadableLease(info))
    return lease


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def test_an_unreadable_lease_with_an_iso_time_expires_after_a_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    old = lease_seeing(monkeypatch, {"updated": iso(clock.now - LEASE - 5)}, clock)  # gcsfs's form
    assert old._state(1)[1] is False
    fresh = lease_seeing(monkeypatch, {"updated": iso(clock.now - 5)}, clock)
    assert fresh._state(1)[1] is True
    naive = datetime.fromtimestamp(clock.now - LEASE - 5, tz=timezone.utc).replace(tzinfo=None)
    assert lease_seeing(monkeypatch, {"LastModified": naive.isoformat()}, clock)._state(1)[1] is False
    later = datetime.fromtimestamp(clock.now, tz=timezone.utc) - timedelta(seconds=LEASE + 5)
    assert lease_seeing(monkeypatch, {"mtime": later}, clock)._state(1)[1] is False


@pytest.mark.parametrize("info", [{}, {"mtime": "yesterday"}, {"mtime": float("nan")}, {"updated": object()}])
def test_an_unreadable_lease_with_no_usable_time_expires_a_lease_after_first_seen(
    monkeypatch: pytest.MonkeyPatch, info: dict[str, Any]
) -> None:
    clock = Clock()
    lease = lease_seeing(monkeypatch, info, clock)
    assert lease._state(1)[1] is True  # maybe a lease being written right now
    clock.now += LEASE / 2
    assert lease._state(1)[1] is True
    assert lease._state(2)[1] is True  # a newer generation counts from when it was first seen
    clock.now += LEASE / 2 + 1
    assert lease._state(1)[1] is False  # nobody finished writing it within a lease: it blocks no more
    assert lease._state(2)[1] is True
