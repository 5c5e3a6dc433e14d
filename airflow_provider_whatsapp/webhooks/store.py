"""The event store: webhook events kept durably at a local path or an ``ObjectStoragePath``.

The layout answers each question a task asks with one read of one small folder, never a scan::

    statuses/<k(wamid)>/<status>.json           the statuses of one sent message
    replies/<k(context wamid)>/<ts>-<k(wamid)>.json   the messages answering one sent message
    senders/<k(wa_id)>/<ts>-<k(wamid)>.json     the messages from one number
    inbound/<hour>/<arrival ns>-<k(wamid)>.json the global feed, in arrival order (event triggers)
    messages/<k(wamid)>.json                    one message, written last: the commit marker and the
                                                duplicate check

``k(...)`` is a hash of the untrusted id, so no id can reach outside its folder (``..``, ``/``, NUL) or
exceed a file name's length; the file holds the id itself. ``<ts>`` is the event's unix time, zero-padded
so names sort by time. A file that exists is never written again.

No Airflow import at module level: an ``ObjectStoragePath`` is imported through ``_compat`` only when the
root is a URL, so the receiver and the sandbox's tests can use a plain directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.spec.limits import (
    CUSTOMER_SERVICE_WINDOW_SECONDS,
    EVENTS_FEED_OVERLAP_SECONDS,
    WEBHOOK_FUTURE_SKEW_SECONDS,
    WEBHOOK_TIMESTAMP_MAX_DIGITS,
)
from airflow_provider_whatsapp.webhooks.events import (
    Event,
    InboundMessage,
    StatusEvent,
    status_rank,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

_SUFFIX = ".json"
_TMP_PREFIX = ".tmp-"
_NS_DIGITS = 20  # unix nanoseconds, zero-padded
_HASH_CHARS = 40  # of sha256's hex: 160 bits, no collision in any store
_NS = 1_000_000_000
#: A file that is not an event is removed by expiry only once it is this much older than the retention
#: cutoff, judged by its modification time (never when the store gives none): it may be an event still
#: being written, and a foreign file is no hurry.
_UNPARSEABLE_GRACE = timedelta(hours=1)
#: Where fsspec file systems put a file's modification time in ``info()`` (local, S3, GCS, memory...).
_MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modified", "created")


def _timestamp(value: Any) -> float | None:
    """Unix seconds from an ``info()`` time: a number, a ``datetime`` or an ISO-8601 string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return value.timestamp() if isinstance(value, datetime) else None


def _k(value: str) -> str:
    """A safe, fixed-length file name for an untrusted id."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]


def _encode(event: Event) -> bytes:
    return json.dumps(event.as_dict(), sort_keys=True, separators=(",", ":")).encode()


def _name_time(name: str) -> int | None:
    """The zero-padded number a file name starts with (``<ts>-...``), ``None`` if it has none."""
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _hour(arrival_ns: int) -> str:
    return time.strftime("%Y%m%d%H", time.gmtime(arrival_ns // _NS))


class _LocalFolder:
    """A directory tree on this machine: write to a temporary file, fsync, then link it into place
    (a link fails if the name exists, so a file is never replaced)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write_new(self, parts: tuple[str, ...], data: bytes) -> bool:
        path = self.root.joinpath(*parts)
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            except OSError:  # a file system without hard links: rename (checked for existence above)
                os.rename(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._sync_dirs(path.parent)
        return True

    def _sync_dirs(self, folder: Path) -> None:
        # The new name (and any folder created for it) survives a crash only once its directory is synced.
        while True:
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            if folder == self.root or self.root not in folder.parents:
                return
            folder = folder.parent

    def read(self, parts: tuple[str, ...]) -> bytes | None:
        try:
            return self.root.joinpath(*parts).read_bytes()
        except FileNotFoundError:
            return None

    def mtime(self, parts: tuple[str, ...]) -> float | None:
        try:
            return self.root.joinpath(*parts).stat().st_mtime
        except FileNotFoundError:
            return None

    def exists(self, parts: tuple[str, ...]) -> bool:
        return self.root.joinpath(*parts).exists()

    def names(self, parts: tuple[str, ...]) -> list[str]:
        try:
            found = os.listdir(self.root.joinpath(*parts))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(name for name in found if not name.startswith(_TMP_PREFIX))

    def delete(self, parts: tuple[str, ...]) -> None:
        path = self.root.joinpath(*parts)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with contextlib.suppress(OSError):  # an emptied folder goes too (not the top-level ones)
            if len(parts) > 2:
                path.parent.rmdir()


class _ObjectFolder:
    """An ``ObjectStoragePath`` (s3://, gs://, memory://...): an object is written whole or not at all."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def write_new(self, parts: tuple[str, ...], data: bytes) -> bool:
        path = self.root.joinpath(*parts)
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written under a temporary name (which readers skip), then moved into place: a reader never sees
        # half a file on a file system that moves by renaming (file://, memory://, a mounted share), and
        # an object store's move (copy, delete) publishes the object whole.
        tmp = path.parent.joinpath(f"{_TMP_PREFIX}{uuid.uuid4().hex}")
        try:
            with tmp.open("wb") as handle:
                handle.write(data)
            path.fs.mv(tmp.path, path.path)
        except BaseException:
            with contextlib.suppress(Exception):  # the first error is the one to report
                tmp.unlink()
            raise
        return True

    def mtime(self, parts: tuple[str, ...]) -> float | None:
        path = self.root.joinpath(*parts)
        try:
            info = path.fs.info(path.path)
        except FileNotFoundError:
            return None
        for key in _MTIME_KEYS:
            when = _timestamp(info.get(key))
            if when is not None:
                return when
        return None

    def read(self, parts: tuple[str, ...]) -> bytes | None:
        try:
            return bytes(self.root.joinpath(*parts).read_bytes())
        except FileNotFoundError:
            return None

    def exists(self, parts: tuple[str, ...]) -> bool:
        return bool(self.root.joinpath(*parts).exists())

    def names(self, parts: tuple[str, ...]) -> list[str]:
        try:
            found = [child.name for child in self.root.joinpath(*parts).iterdir()]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(name for name in found if name and not name.startswith(_TMP_PREFIX))

    def delete(self, parts: tuple[str, ...]) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.root.joinpath(*parts).unlink()


class EventStore:
    """Webhook events, stored once each, answered one small folder at a time.

    :param root: a local directory, a URL (``s3://bucket/whatsapp-events``: an ``ObjectStoragePath``), or an
        ``ObjectStoragePath``.
    :param retention: how long events are kept; older ones are removed by :meth:`expire` and not stored.
    """

    def __init__(self, root: str | os.PathLike[str] | Any, *, retention: timedelta) -> None:
        if not isinstance(retention, timedelta) or retention.total_seconds() <= 0:
            raise ValueError("retention must be a positive timedelta")
        self.retention = retention
        self.conn_id: str | None = None
        if isinstance(root, str) and "://" in root:
            from airflow_provider_whatsapp._compat import ObjectStoragePath

            root = ObjectStoragePath(root)
        # An ObjectStoragePath is an os.PathLike on Airflow 2.11 too: its protocol tells it apart.
        if isinstance(root, str) or (isinstance(root, os.PathLike) and not hasattr(root, "protocol")):
            self.root: Any = Path(root)
            self._url = str(self.root)
            self._folder: _LocalFolder | _ObjectFolder = _LocalFolder(self.root)
        else:
            from airflow_provider_whatsapp._compat import object_storage_conn_id

            self.root = root
            self.conn_id = object_storage_conn_id(root)
            # str() of a path made with a connection holds it as user info (``s3://conn@bucket``)
            self._url = f"{self.root.protocol}://{self.root.path}"
            self._folder = _ObjectFolder(root)

    def __repr__(self) -> str:
        return f"EventStore({self._url!r}, retention={self.retention!r})"

    # --- building --------------------------------------------------------------------------------

    @classmethod
    def for_connection(cls, conn_id: str = "maton_default") -> EventStore:
        """The store a connection's extras name (``events_path``, ``events_retention_days``)."""
        from airflow_provider_whatsapp.webhooks.settings import store_location

        root, conn, retention = store_location(conn_id)
        return cls.from_description({"root": root, "conn_id": conn, "retention_seconds": retention})

    def describe(self) -> dict[str, Any]:
        """Where the store is and how long it keeps events: JSON-safe, no secret (for a trigger)."""
        return {
            "root": self._url,
            "conn_id": self.conn_id,
            "retention_seconds": int(self.retention.total_seconds()),
        }

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> EventStore:
        """The store :meth:`describe` described (in the triggerer, say)."""
        root = description["root"]
        retention = timedelta(seconds=float(description["retention_seconds"]))
        conn_id = description.get("conn_id")
        if "://" in root:
            from airflow_provider_whatsapp._compat import ObjectStoragePath

            return cls(ObjectStoragePath(root, conn_id=conn_id), retention=retention)
        return cls(root, retention=retention)

    # --- writing ---------------------------------------------------------------------------------

    def add(self, event: Event, *, now: float | None = None) -> bool:
        """Store ``event`` durably. True if it is new; False if it was already stored, or is dated
        outside what the store keeps (older than the retention, or too far in the future).
        """
        now = time.time() if now is None else now
        if not now - self.retention.total_seconds() <= event.timestamp <= now + WEBHOOK_FUTURE_SKEW_SECONDS:
            return False
        if isinstance(event, StatusEvent):
            return self._folder.write_new(
                ("statuses", _k(event.wamid), event.status + _SUFFIX), _encode(event)
            )
        if not isinstance(event, InboundMessage):
            raise TypeError(f"not a webhook event: {type(event).__name__}")
        marker = ("messages", _k(event.wamid) + _SUFFIX)
        if self._folder.exists(marker):
            return False
        data = _encode(event)
        entry = f"{event.timestamp:0{WEBHOOK_TIMESTAMP_MAX_DIGITS}d}-{_k(event.wamid)}{_SUFFIX}"
        self._folder.write_new(("senders", _k(event.sender), entry), data)
        if event.context_id:
            self._folder.write_new(("replies", _k(event.context_id), entry), data)
        arrival = time.time_ns()
        self._folder.write_new(
            ("inbound", _hour(arrival), f"{arrival:0{_NS_DIGITS}d}-{_k(event.wamid)}{_SUFFIX}"), data
        )
        # Last: until the marker exists the message counts as not stored, so a re-delivery completes it.
        return self._folder.write_new(marker, data)

    # --- reading ---------------------------------------------------------------------------------

    def status(self, wamid: str) -> StatusEvent | None:
        """The furthest status the message reached (``failed`` wins over all), or ``None``."""
        folder = ("statuses", _k(wamid))
        names = [name for name in self._folder.names(folder) if name.endswith(_SUFFIX)]
        if not names:
            return None
        best = max(names, key=lambda name: status_rank(name[: -len(_SUFFIX)]))
        data = self._folder.read((*folder, best))
        return None if data is None else StatusEvent.from_dict(json.loads(data))

    def message(self, wamid: str) -> InboundMessage | None:
        """One stored inbound message, by its id."""
        data = self._folder.read(("messages", _k(wamid) + _SUFFIX))
        return None if data is None else InboundMessage.from_dict(json.loads(data))

    def replies(self, wamid: str) -> list[InboundMessage]:
        """Inbound messages that answer (or quote) the message ``wamid``, oldest first."""
        folder = ("replies", _k(wamid))
        return self._read_messages(folder, self._folder.names(folder))

    def messages_from(self, wa_id: str, since: float) -> list[InboundMessage]:
        """Inbound messages from ``wa_id`` dated ``since`` (unix seconds) or later, oldest first."""
        folder = ("senders", _k(wa_id))
        names = [name for name in self._folder.names(folder) if (_name_time(name) or 0) >= since]
        return self._read_messages(folder, names)

    def window_open(self, wa_id: str, now: float | None = None) -> bool:
        """Whether ``wa_id`` wrote within the customer-service window, so a free-form message may go."""
        now = time.time() if now is None else now
        times = (_name_time(name) for name in self._folder.names(("senders", _k(wa_id))))
        return any(t is not None and t >= now - CUSTOMER_SERVICE_WINDOW_SECONDS for t in times)

    def start_cursor(self, since: float | None = None) -> str:
        """A feed cursor from which :meth:`inbound_after` returns messages that arrive from ``since``
        (unix seconds; default now) on."""
        since = time.time() if since is None else since
        return _cursor(int(since * _NS) - 1, set())

    def inbound_after(self, cursor: str | None, limit: int = 100) -> tuple[list[InboundMessage], str | None]:
        """The next inbound messages in arrival order after ``cursor`` (``None``: from the oldest kept),
        at most ``limit``, and the cursor to continue from.

        Concurrent receivers may finish writing out of order, so the feed is re-read with an overlap of
        ``EVENTS_FEED_OVERLAP_SECONDS`` and the cursor remembers what it returned within it. A message
        may still come twice (a re-delivery racing the first one): dedupe on its ``wamid``.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        after, seen = _parse_cursor(cursor)
        first_hour = _hour(max(after, 0))
        found: list[tuple[str, str]] = []
        for hour in self._folder.names(("inbound",)):
            if hour < first_hour:
                continue
            for name in self._folder.names(("inbound", hour)):
                key = _name_time(name)
                if key is not None and key > after and name not in seen:
                    found.append((name, hour))
            if len(found) >= limit:
                break
        page = sorted(found)[:limit]
        messages = self._read_messages(("inbound",), [f"{hour}/{name}" for name, hour in page])
        last = max([after, *(_name_time(name) or 0 for name, _ in page)])
        boundary = max(last - EVENTS_FEED_OVERLAP_SECONDS * _NS, after)
        kept = {name for name in seen | {name for name, _ in page} if (_name_time(name) or 0) > boundary}
        return messages, _cursor(boundary, kept)

    def _read_messages(self, folder: tuple[str, ...], names: Iterable[str]) -> list[InboundMessage]:
        found = []
        for name in names:
            data = self._folder.read((*folder, *name.split("/")))
            if data is not None:
                found.append(InboundMessage.from_dict(json.loads(data)))
        return found

    # --- expiry ----------------------------------------------------------------------------------

    def expire(self, now: float | None = None) -> int:
        """Remove the events older than the retention; returns how many events (statuses and messages)
        went. This one walks the whole store: it is maintenance, not a question a task asks."""
        now = time.time() if now is None else now
        cutoff = now - self.retention.total_seconds()
        removed = 0
        for folder_name in ("senders", "replies"):
            for key in self._folder.names((folder_name,)):
                for name in self._folder.names((folder_name, key)):
                    if (_name_time(name) or 0) < cutoff:
                        self._folder.delete((folder_name, key, name))
        for hour in self._folder.names(("inbound",)):
            for name in self._folder.names(("inbound", hour)):
                if (_name_time(name) or 0) < cutoff * _NS:
                    self._folder.delete(("inbound", hour, name))
        for key in self._folder.names(("statuses",)):
            for name in self._folder.names(("statuses", key)):
                if self._older(("statuses", key, name), cutoff):
                    self._folder.delete(("statuses", key, name))
                    removed += 1
        for name in self._folder.names(("messages",)):
            if self._older(("messages", name), cutoff):
                self._folder.delete(("messages", name))
                removed += 1
        return removed

    def _older(self, parts: tuple[str, ...], cutoff: float) -> bool:
        data = self._folder.read(parts)
        if data is None:
            return False
        try:
            return float(json.loads(data)["timestamp"]) < cutoff
        except (ValueError, KeyError, TypeError):
            pass
        # Not an event (yet): it may be one another process is still writing, so it goes only once it is
        # old by its modification time; a store that gives none keeps it.
        modified = self._folder.mtime(parts)
        return modified is not None and modified < cutoff - _UNPARSEABLE_GRACE.total_seconds()


def _cursor(after: int, seen: set[str]) -> str:
    return json.dumps({"after": after, "seen": sorted(seen)}, separators=(",", ":"))


def _parse_cursor(cursor: str | None) -> tuple[int, set[str]]:
    if cursor is None:
        return -1, set()
    try:
        data = json.loads(cursor)
        after, seen = data["after"], data["seen"]
        if isinstance(after, bool) or not isinstance(after, int) or not isinstance(seen, list):
            raise TypeError
        return after, {str(name) for name in seen}
    except (ValueError, KeyError, TypeError):
        raise ValueError("not a cursor of EventStore.inbound_after") from None
