"""The durable journal of a bulk send: what happened to each recipient, written as it happens.

Every send is bracketed by two records: ``attempt`` is made durable *before* the request leaves, and
an outcome after it: ``accepted`` (with the wamid), ``failed`` (code, reason), ``unknown`` (the
request may have reached WhatsApp) or ``released`` (it provably did not take effect, e.g. a 429, and
the recipient is pending again). A recipient whose last record is ``attempt`` was being sent when the
worker died: it may or may not have received the message, so a resumed run reports it as unknown
instead of sending again.

Two stores, chosen by ``progress_path``:

* a local or shared POSIX path (no scheme, or ``file://``): one append-only JSON-lines file per task,
  each batch of records written with one ``write`` and ``fsync``-ed before the call returns;
* any other ``ObjectStoragePath`` URL (``s3://``, ``gs://``, ``abfs://``...), where objects cannot be
  appended to: one small object per batch of records, named so that listing them gives their order.

The journal of a task lives at ``{progress_path}/{dag_id}/{run_id}/{task_id}[.{map_index}]`` so every
try of the same task instance, on any worker that can reach the path, finds the same progress.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from airflow_provider_whatsapp._compat import ObjectStoragePath

log = logging.getLogger(__name__)

ATTEMPT = "attempt"
ACCEPTED = "accepted"
FAILED = "failed"
UNKNOWN = "unknown"
RELEASED = "released"
STATES = frozenset({ATTEMPT, ACCEPTED, FAILED, UNKNOWN, RELEASED})

DEFAULT_DIRECTORY_NAME = "whatsapp_bulk_progress"


@dataclass(frozen=True)
class Outcome:
    """The last thing the journal knows about one recipient."""

    state: str
    wamid: str | None = None
    code: int | None = None
    reason: str | None = None
    retryable: bool = False


def record(to: str, state: str, **fields: Any) -> dict[str, Any]:
    """One journal record; ``None`` fields are left out."""
    entry: dict[str, Any] = {"to": to, "state": state, "at": round(time.time(), 3)}
    entry.update({k: v for k, v in fields.items() if v is not None})
    return entry


def replay(records: list[dict[str, Any]]) -> dict[str, Outcome]:
    """Each recipient's last state, from records in the order they were written."""
    outcomes: dict[str, Outcome] = {}
    for entry in records:
        to, state = entry.get("to"), entry.get("state")
        if not isinstance(to, str) or state not in STATES:
            continue
        outcomes[to] = Outcome(
            state=state,
            wamid=entry.get("wamid"),
            code=entry.get("code"),
            reason=entry.get("reason"),
            retryable=bool(entry.get("retryable", False)),
        )
    return outcomes


def _parse_lines(data: bytes) -> list[dict[str, Any]]:
    entries = []
    for line in data.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            # A line torn by a crash in the middle of a write: its send had not started yet.
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def _encode(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, separators=(",", ":"), sort_keys=True).encode() + b"\n" for r in records)


class Journal:
    """Where a bulk send's progress is kept. ``append`` returns only once the records are durable."""

    location: str

    def load(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def append(self, records: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the journal's resources."""

    def outcomes(self) -> dict[str, Outcome]:
        return replay(self.load())


class LocalJournal(Journal):
    """An append-only JSON-lines file; every append is one ``write`` followed by ``fsync``.

    On a shared POSIX file system (NFS, EFS, a mounted volume) every worker sees the same file.
    """

    def __init__(self, path: str) -> None:
        self.location = path
        self._fd: int | None = None

    def load(self) -> list[dict[str, Any]]:
        try:
            with open(self.location, "rb") as handle:
                return _parse_lines(handle.read())
        except FileNotFoundError:
            return []

    def _open(self) -> int:
        if self._fd is None:
            directory = os.path.dirname(self.location) or "."
            os.makedirs(directory, exist_ok=True)
            created = not os.path.exists(self.location)
            fd = os.open(self.location, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # Close a line torn by a crash so the next record starts on a line of its own.
                os.write(fd, b"\n")
            if created:
                _fsync_directory(directory)
            self._fd = fd
        return self._fd

    def append(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        fd = self._open()
        data = _encode(records)
        written = os.write(fd, data)
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class ObjectStoreJournal(Journal):
    """A directory of small JSON-lines objects, one per append, for stores that cannot append.

    Objects are named ``{generation:05d}-{sequence:08d}-{token}.jsonl``: a journal opened later takes
    the next generation, so sorting the names replays the records in the order they were written.
    """

    def __init__(self, directory: ObjectStoragePath) -> None:
        self.directory = directory
        self.location = str(directory)
        self._generation: int | None = None
        self._sequence = 0
        self._token = uuid.uuid4().hex[:8]

    def _objects(self) -> list[ObjectStoragePath]:
        try:
            if not self.directory.exists():
                return []
            children = list(self.directory.iterdir())
        except FileNotFoundError:
            return []
        return sorted((c for c in children if c.name.endswith(".jsonl")), key=lambda c: c.name)

    def load(self) -> list[dict[str, Any]]:
        from concurrent.futures import ThreadPoolExecutor

        objects = self._objects()
        generation = 0
        for obj in objects:
            with contextlib.suppress(ValueError):
                generation = max(generation, int(obj.name.split("-", 1)[0]))
        # One round trip per object: read them side by side, then replay in name order.
        with ThreadPoolExecutor(max_workers=16) as pool:
            contents = list(pool.map(lambda obj: obj.read_bytes(), objects))
        entries = [entry for data in contents for entry in _parse_lines(data)]
        if self._generation is None:
            self._generation = generation + 1
        return entries

    def append(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        if self._generation is None:
            self.load()
        if self._sequence == 0 and self.directory.protocol in ("file", "local"):
            self.directory.mkdir(parents=True, exist_ok=True)  # object stores have no directories
        self._sequence += 1
        name = f"{self._generation:05d}-{self._sequence:08d}-{self._token}.jsonl"
        target = self.directory / name
        with target.open("wb") as handle:
            handle.write(_encode(records))


def _segment(value: str) -> str:
    # Run ids carry ':' and '+'; keep every character a path or an object key accepts.
    return quote(value, safe="-_.=@")


def default_progress_root() -> str:
    """``$AIRFLOW_HOME/whatsapp_bulk_progress``: local to the worker, so only right for one machine."""
    from airflow.configuration import AIRFLOW_HOME

    return os.path.join(AIRFLOW_HOME, DEFAULT_DIRECTORY_NAME)


def open_journal(
    progress_path: str | os.PathLike[str] | ObjectStoragePath | None,
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int | None = None,
) -> Journal:
    """The journal of one task instance under ``progress_path`` (default: local, with a warning)."""
    if progress_path in (None, ""):
        root: Any = default_progress_root()
        log.warning(
            "Bulk send progress is kept in %s, on this machine only. With several workers, set "
            "progress_path to storage every worker sees (s3://..., gs://..., or file:///shared/...), "
            "or a retry on another worker will not know what was already sent.",
            root,
        )
    else:
        root = progress_path
    task = _segment(task_id) + (f".{map_index}" if map_index is not None and map_index >= 0 else "")
    parts = (_segment(dag_id), _segment(run_id))
    text: str | None
    if hasattr(root, "protocol"):  # an ObjectStoragePath
        text = str(root.path) if root.protocol in ("file", "local") else None
    else:
        text = os.fspath(root)
    if text is not None and ("://" not in text or text.startswith("file://")):
        base = text[len("file://") :] if text.startswith("file://") else text
        return LocalJournal(os.path.join(os.path.expanduser(base), *parts, f"{task}.jsonl"))
    from airflow_provider_whatsapp._compat import ObjectStoragePath

    directory = root if text is None else ObjectStoragePath(text)
    for part in (*parts, task):
        directory = directory / part
    return ObjectStoreJournal(directory)
