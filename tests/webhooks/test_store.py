"""The event store: once per event, the furthest status, replies, the window, the feed, expiry, and ids
that try to leave their folder; on a local directory and on an ``ObjectStoragePath``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS, ObjectStoragePath
from airflow_provider_whatsapp.spec.limits import (
    CUSTOMER_SERVICE_WINDOW_SECONDS,
    EVENTS_RETENTION_DAYS_DEFAULT,
)
from airflow_provider_whatsapp.webhooks.events import InboundMessage, StatusEvent, WebhookError
from airflow_provider_whatsapp.webhooks.store import EventStore

NOW = 1_750_000_000
USER = "16505551234"
OTHER = "447700900123"
PHONE = "106540352242922"
RETENTION = timedelta(days=7)


def status(wamid: str, value: str, ts: int = NOW, code: int | None = None) -> StatusEvent:
    errors = (WebhookError(code=code, title="failed"),) if code else ()
    return StatusEvent(
        wamid=wamid, status=value, timestamp=ts, recipient_id=USER, phone_number_id=PHONE, errors=errors
    )


def message(
    wamid: str, ts: int = NOW, sender: str = USER, context: str | None = None, text: str = "hi"
) -> InboundMessage:
    return InboundMessage(
        wamid=wamid,
        sender=sender,
        type="text",
        timestamp=ts,
        phone_number_id=PHONE,
        text=text,
        context_id=context,
    )


@pytest.fixture
def memory_fs(monkeypatch: pytest.MonkeyPatch) -> None:
    """``memory://`` for ObjectStoragePath (Airflow registers only file:// and providers' schemes)."""
    from fsspec.implementations.memory import MemoryFileSystem

    if AIRFLOW_V_3_PLUS:
        from airflow.sdk.io import fs as registry
    else:
        from airflow import io as registry  # type: ignore[no-redef]
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]
    monkeypatch.setitem(registry._register_filesystems(), "memory", lambda conn_id: MemoryFileSystem())


@pytest.fixture(params=["local", "file-url", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "local":
        yield EventStore(tmp_path / "events", retention=RETENTION)
    elif request.param == "file-url":
        yield EventStore(f"file://{tmp_path}/events", retention=RETENTION)
    else:
        request.getfixturevalue("memory_fs")
        yield EventStore(ObjectStoragePath("memory://bucket/events"), retention=RETENTION)


def test_each_event_is_stored_once(store: EventStore) -> None:
    events = [
        status("wamid.A", "sent"),
        status("wamid.A", "delivered"),
        message("wamid.B", context="wamid.A"),
    ]
    assert [store.add(event, now=NOW) for event in events] == [True, True, True]
    assert [store.add(event, now=NOW) for event in events] == [False, False, False]
    assert store.replies("wamid.A") == [events[2]]
    assert store.messages_from(USER, since=0) == [events[2]]
    assert store.message("wamid.B") == events[2]


def test_the_furthest_status_wins_and_failed_wins_over_all(store: EventStore) -> None:
    assert store.status("wamid.A") is None
    for value in ("read", "sent", "delivered"):  # out of order, as webhooks may arrive
        store.add(status("wamid.A", value), now=NOW)
    assert store.status("wamid.A").status == "read"
    store.add(status("wamid.X", "sent"), now=NOW)
    store.add(status("wamid.X", "failed", code=131047), now=NOW)
    failed = store.status("wamid.X")
    assert failed.status == "failed"
    assert failed.errors[0].code == 131047


def test_replies_are_oldest_first_and_only_to_their_message(store: EventStore) -> None:
    later = message("wamid.R2", ts=NOW + 5, context="wamid.Q")
    earlier = message("wamid.R1", ts=NOW, context="wamid.Q", sender=OTHER)
    store.add(later, now=NOW)
    store.add(earlier, now=NOW)
    store.add(message("wamid.R3", context="wamid.elsewhere"), now=NOW)
    store.add(message("wamid.R4"), now=NOW)
    assert store.replies("wamid.Q") == [earlier, later]


def test_messages_from_a_number_since_a_time_and_its_window(store: EventStore) -> None:
    old = message("wamid.old", ts=NOW - CUSTOMER_SERVICE_WINDOW_SECONDS - 10)
    new = message("wamid.new", ts=NOW - 60)
    store.add(old, now=NOW)
    assert not store.window_open(USER, now=NOW)
    store.add(new, now=NOW)
    assert store.window_open(USER, now=NOW)
    assert not store.window_open(OTHER, now=NOW)
    assert store.messages_from(USER, since=NOW - 3600) == [new]
    assert store.messages_from(USER, since=0) == [old, new]
    assert store.messages_from(OTHER, since=0) == []


def test_the_feed_pages_in_arrival_order_and_never_repeats(store: EventStore) -> None:
    # Arrival order, not the messages' own timestamps: a late re-delivery of an old message is still read.
    arrivals = [message(f"wamid.{i}", ts=NOW - i) for i in range(5)]
    for event in arrivals[:3]:
        store.add(event, now=NOW)
    page, cursor = store.inbound_after(None, limit=2)
    assert page == arrivals[:2]
    page, cursor = store.inbound_after(cursor, limit=2)
    assert page == arrivals[2:3]
    assert store.inbound_after(cursor)[0] == []
    for event in arrivals[3:]:
        store.add(event, now=NOW)
    page, cursor = store.inbound_after(cursor)
    assert page == arrivals[3:]
    assert store.inbound_after(cursor)[0] == []
    # a cursor that starts now skips what came before
    start = store.start_cursor()
    assert store.inbound_after(start)[0] == []


def test_a_forged_cursor_is_refused(store: EventStore) -> None:
    for cursor in ("nonsense", '{"after": "x", "seen": []}', "[]"):
        with pytest.raises(ValueError, match="cursor"):
            store.inbound_after(cursor)


def test_old_events_expire_and_are_not_stored_again(store: EventStore) -> None:
    old_ts = NOW - int(RETENTION.total_seconds()) - 1
    store.add(status("wamid.old", "sent", ts=NOW - 100), now=NOW - 100)
    store.add(message("wamid.oldm", ts=NOW - 100, context="wamid.old"), now=NOW - 100)
    store.add(status("wamid.new", "sent"), now=NOW)
    later = NOW - 100 + int(RETENTION.total_seconds()) + 1
    assert store.expire(now=later) == 2
    assert store.status("wamid.old") is None
    assert store.replies("wamid.old") == []
    assert store.messages_from(USER, since=0) == []
    assert store.status("wamid.new") is not None
    # a replay of a delivery older than the retention cannot bring it back
    assert store.add(status("wamid.old", "sent", ts=old_ts), now=NOW) is False
    assert store.status("wamid.old") is None
    # nor can an event dated far in the future hold a window open
    assert store.add(message("wamid.future", ts=NOW + 86_400), now=NOW) is False


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "hostile", ["..", "../../escape", "/etc/passwd", "a\x00b", "x" * 5000, "%2e%2e", "."]
)
def test_hostile_ids_stay_inside_the_store(tmp_path: Path, hostile: str) -> None:
    root = tmp_path / "events"
    store = EventStore(root, retention=RETENTION)
    store.add(status(hostile, "sent"), now=NOW)
    store.add(message(hostile, context=hostile, sender=hostile), now=NOW)
    assert store.status(hostile).wamid == hostile
    assert store.replies(hostile)[0].wamid == hostile
    assert store.window_open(hostile, now=NOW)
    outside = {p for p in tmp_path.rglob("*") if root not in p.parents and p != root}
    assert outside == set()
    assert all(len(part) <= 80 for name in _tree(root) for part in Path(name).parts)


def test_a_file_that_exists_is_never_rewritten(tmp_path: Path) -> None:
    store = EventStore(tmp_path, retention=RETENTION)
    store.add(status("wamid.A", "sent"), now=NOW)
    before = _tree(tmp_path)
    [path] = [tmp_path / name for name in before]
    os.utime(path, (0, 0))
    store.add(status("wamid.A", "sent", ts=NOW + 1), now=NOW)  # same key, other content
    assert _tree(tmp_path) == before
    assert path.stat().st_mtime == 0
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_the_description_rebuilds_the_store_and_holds_no_secret(tmp_path: Path, memory_fs: None) -> None:
    local = EventStore(tmp_path, retention=RETENTION)
    assert (
        EventStore.from_description(json.loads(json.dumps(local.describe()))).describe() == local.describe()
    )
    remote = EventStore(ObjectStoragePath("memory://bucket/x", conn_id="aws_events"), retention=RETENTION)
    described = remote.describe()
    assert described == {"root": "memory:///bucket/x", "conn_id": "aws_events", "retention_seconds": 604800}
    assert EventStore.from_description(described).describe() == described


def test_for_connection_reads_the_extras(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    extra: dict[str, Any] = {"events_path": str(tmp_path / "ev"), "events_retention_days": "2"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_EVENTS", json.dumps({"conn_type": "maton", "password": "k", "extra": extra})
    )
    store = EventStore.for_connection("maton_events")
    assert store.describe() == {"root": str(tmp_path / "ev"), "conn_id": None, "retention_seconds": 2 * 86400}
    monkeypatch.setenv("AIRFLOW_CONN_MATON_BARE", json.dumps({"conn_type": "maton", "password": "k"}))
    bare = EventStore.for_connection("maton_bare").describe()
    assert bare["root"] == os.path.join(os.environ["AIRFLOW_HOME"], "whatsapp-events")
    assert bare["retention_seconds"] == EVENTS_RETENTION_DAYS_DEFAULT * 86400
    extra["events_retention_days"] = "-3"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_EVENTS", json.dumps({"conn_type": "maton", "password": "k", "extra": extra})
    )
    with pytest.raises(ValueError, match="events_retention_days"):
        EventStore.for_connection("maton_events")


def test_a_question_reads_one_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = EventStore(tmp_path, retention=RETENTION)
    for i in range(30):
        store.add(message(f"wamid.{i}", sender=f"1650555{i:04d}", context=f"wamid.q{i}"), now=NOW)
        store.add(status(f"wamid.s{i}", "delivered"), now=NOW)
    listed: list[str] = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: listed.append(str(path)) or real(path))
    started = time.monotonic()
    store.status("wamid.s3")
    store.replies("wamid.q3")
    store.window_open("16505550003", now=NOW)
    store.messages_from("16505550003", since=0)
    assert len(listed) == 4, listed
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("where", ["file-url", "memory"])
def test_an_object_store_reader_never_sees_half_an_event(
    where: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if where == "memory":
        request.getfixturevalue("memory_fs")
        store = EventStore(ObjectStoragePath("memory://bucket/events"), retention=RETENTION)
    else:
        store = EventStore(f"file://{tmp_path}/events", retention=RETENTION)
    seen: list[Any] = []
    fs_class = type(store.root.fs)
    real_open = fs_class.open

    def open_slowly(self: Any, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        handle = real_open(self, path, mode, **kwargs)
        if "w" not in mode:
            return handle
        write = handle.write

        def write_in_two(data: bytes) -> int:
            # Half the bytes, then another reader looks, then the rest: as a concurrent reader may.
            write(data[: len(data) // 2])
            handle.flush()
            seen.append(store.status("wamid.A"))
            return write(data[len(data) // 2 :])

        handle.write = write_in_two
        return handle

    monkeypatch.setattr(fs_class, "open", open_slowly)
    assert store.add(status("wamid.A", "sent"), now=NOW)  # the reader raised on half a JSON document before

    monkeypatch.setattr(fs_class, "open", real_open)
    assert seen == [None]
    assert store.status("wamid.A") == status("wamid.A", "sent")
    folder = store.root.joinpath("statuses")
    assert not [p for p in folder.rglob("*") if p.name.startswith(".tmp-")]


def test_expiry_keeps_a_file_that_is_not_an_event_until_it_is_old(store: EventStore) -> None:
    # Half of an event another process is still writing (or a foreign file): never deleted while new.
    assert store.add(status("wamid.A", "sent", ts=int(time.time())))
    (name,) = store._folder.names(("statuses",))
    torn = ("statuses", name, "delivered.json")
    store.root.joinpath(*torn).write_bytes(b'{"wamid":"wamid.A","sta')

    assert store.expire() == 0
    assert store._folder.read(torn) is not None
    far = time.time() + RETENTION.total_seconds() + 2 * 3600
    assert store.expire(now=far) == 2  # the event by its timestamp, the torn file by its age
    assert store._folder.read(torn) is None
