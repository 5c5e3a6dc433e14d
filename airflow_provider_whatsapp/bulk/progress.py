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

The journal of a task lives at ``{progress_path}/{dag_id}/{run_id}/{task_id}[@{map_index}]`` so every
try of the same task instance, on any worker that can reach the path, finds the same progress. Each
part is escaped (:func:`path_segment`): distinct task instances never share a journal, and no part
can climb out of ``progress_path``. One run at a time holds a journal (:mod:`.lease`).

``attempt`` records carry the fingerprint of the payload sent, so that a new try can tell a recipient
who got *this* message from one who got an earlier, different one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import string
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.bulk.lease import Holder, Lease, LeaseLostError, LocalLease, ObjectStoreLease
from airflow_provider_whatsapp.errors import WhatsAppError, WhatsAppValidationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from airflow_provider_whatsapp._compat import ObjectStoragePath

log = logging.getLogger(__name__)

ATTEMPT = "attempt"
ACCEPTED = "accepted"
FAILED = "failed"
UNKNOWN = "unknown"
RELEASED = "released"
STATES = frozenset({ATTEMPT, ACCEPTED, FAILED, UNKNOWN, RELEASED})

DEFAULT_DIRECTORY_NAME = "whatsapp_bulk_progress"
# Objects of an object-store journal read side by side, and read per batch.
_READERS = 16
_READ_BATCH = 256
# Path segments longer than this (in characters, all ASCII once escaped) are shortened with a digest,
# so that a long run id cannot exceed the 255-byte file name limit of common file systems.
MAX_SEGMENT_CHARS = 150
_SEGMENT_SAFE = frozenset(string.ascii_letters + string.digits + "-_.")
# Separates the task id from the map index; escaped inside every segment, so it cannot be forged.
MAP_INDEX_SEPARATOR = "@"
# A local journal's shards (one per worker process of a run): ``{journal}.{generation}-{worker}.shard``.
# No journal file ends so (they end in ``.jsonl``), so a shard never reads as another task's journal.
SHARD_SUFFIX = ".shard"
_SHARD_PATTERN = r"\.(\d{5,})-(\d{3,})" + re.escape(SHARD_SUFFIX)


class JournalError(WhatsAppError):
    """Progress could not be read or recorded, so no further message is sent.

    A new try is safe (the journal says what was sent), so Airflow may retry the task.
    """

    retryable = True


@dataclass(frozen=True, slots=True)
class Outcome:
    """The last thing the journal knows about one recipient; slotted, one small object per recipient
    (a resume over a million recipients keeps a million of them)."""

    state: str
    wamid: str | None = None
    code: int | None = None
    reason: str | None = None
    retryable: bool = False
    fingerprint: str | None = None  # of the payload of the last attempt; None in older journals


def record(to: str, state: str, **fields: Any) -> dict[str, Any]:
    """One journal record; ``None`` fields are left out."""
    entry: dict[str, Any] = {"to": to, "state": state, "at": round(time.time(), 3)}
    entry.update({k: v for k, v in fields.items() if v is not None})
    return entry


_STATE_OBJECTS = {state: state for state in STATES}


def replay(records: Iterable[dict[str, Any]]) -> dict[str, Outcome]:
    """Each recipient's last state, from records in the order they were written (read as a stream:
    one :class:`Outcome` per recipient is all that is kept).

    Fields of an unexpected type (a damaged or hand-edited journal) are read as absent.
    """
    outcomes: dict[str, Outcome] = {}
    # One object per distinct text: a message shared by every recipient has one fingerprint, and
    # the same reason repeats; a million copies of either would be most of the memory.
    shared: dict[str, str] = {}
    for entry in records:
        to, state = entry.get("to"), entry.get("state")
        if not isinstance(to, str) or state not in STATES:
            continue
        fingerprint = entry.get("fingerprint")
        if state == ATTEMPT and isinstance(fingerprint, str):
            fingerprint = shared.setdefault(fingerprint, fingerprint)
        else:
            earlier = outcomes.get(to)
            fingerprint = earlier.fingerprint if earlier is not None else None
        reason = _typed(entry.get("reason"), str)
        outcomes[to] = Outcome(
            state=_STATE_OBJECTS[state],
            wamid=_typed(entry.get("wamid"), str),
            code=_typed(entry.get("code"), int),
            reason=None if reason is None else shared.setdefault(reason, reason),
            retryable=entry.get("retryable") is True,
            fingerprint=fingerprint,
        )
    return outcomes


def _typed(value: Any, kind: type) -> Any:
    return value if isinstance(value, kind) and not isinstance(value, bool) else None


def _parse_lines(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            # A line torn by a crash in the middle of a write: its send had not started yet.
            continue
        if isinstance(entry, dict):
            yield entry


def _encode(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, separators=(",", ":"), sort_keys=True).encode() + b"\n" for r in records)


class Journal:
    """Where a bulk send's progress is kept. ``append`` returns only once the records are durable.

    :meth:`acquire` takes the journal for this run (see :mod:`.lease`) before anything is read;
    :meth:`close` releases it.
    """

    location: str
    lease: Lease

    def acquire(self, holder: Holder, *, wait: float = 0.0) -> None:
        """Take the journal for this run, waiting up to ``wait`` s for another run holding it."""
        self.lease.acquire(holder, wait=wait)

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record, in the order written, read as a stream."""
        raise NotImplementedError

    def load(self) -> list[dict[str, Any]]:
        """Every record, in a list (:meth:`records` reads them without holding them all)."""
        return list(self.records())

    def append(self, records: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the journal's resources and its lease."""
        self.lease.release()

    def outcomes(self) -> dict[str, Outcome]:
        return replay(self.records())

    def shard(self, index: int, lease: Lease) -> Journal:
        """The journal worker process ``index`` of this run writes, watching ``lease`` (its view of the
        lease this run holds). Its records are read back with every other record of the journal, after
        those of earlier runs; the workers of one run send to distinct recipients, so the order of
        their shards among themselves does not matter. Call after the journal was read (claimed).
        """
        raise NotImplementedError

    def check_lease(self) -> None:
        """Raise :class:`LeaseLostError` when this run no longer holds the journal.

        Checked before each write, and again once an attempt record is durable, before its request
        leaves: a write that landed after the lease ran out may have been missed by a run that took
        the journal over meanwhile, and that run may send to the same recipient.
        """
        if self.lease.lost:
            raise LeaseLostError(
                f"This run no longer holds the bulk send journal {self.location} (its lease ran out or "
                "another run took it over); it stops sending so that no recipient gets the message twice."
            )


class LocalJournal(Journal):
    """An append-only JSON-lines file; every append is one ``write`` followed by ``fdatasync`` (``fsync``
    where there is none).

    On a shared POSIX file system (NFS, EFS, a mounted volume) every worker sees the same file.

    A run in several processes writes one shard per process beside it,
    ``{journal}.{generation:05d}-{worker:03d}.shard``, read after the journal itself in generation
    order. A run takes the generation after the newest shard when it reads the journal; once a journal
    has shards, every later run (one process too) writes shards, so a later run's records are always
    read after an earlier run's.

    :param path: the journal file.
    :param lease: the lease this journal is written under (default: ``flock`` on ``{path}.lock``).
    :param target: the file appended to (default: decided when the journal is read, see above).
    """

    def __init__(self, path: str, *, lease: Lease | None = None, target: str | None = None) -> None:
        self.location = path
        self.lease = lease if lease is not None else LocalLease(path + ".lock", location=path)
        self._target = target
        self._generation: int | None = None
        self._fd: int | None = None

    def _shards(self) -> list[str]:
        """The shard files of this journal, oldest generation first."""
        directory, base = os.path.split(self.location)
        pattern = re.compile(re.escape(base) + _SHARD_PATTERN)
        try:
            names = os.listdir(directory or ".")
        except FileNotFoundError:
            names = []
        found = sorted(
            (int(match[1]), int(match[2]), name) for name in names if (match := pattern.fullmatch(name))
        )
        if self._generation is None:
            self._generation = found[-1][0] + 1 if found else 1
            if self._target is None and found:
                self._target = self._shard_path(self._generation, 0)
        return [os.path.join(directory, name) for _, _, name in found]

    def _shard_path(self, generation: int, index: int) -> str:
        return f"{self.location}.{generation:05d}-{index:03d}{SHARD_SUFFIX}"

    def _files(self) -> list[str]:
        """The files holding the journal's records, in the order they must be replayed."""
        return [self.location, *self._shards()]

    def records(self) -> Iterator[dict[str, Any]]:
        for name in self._files():
            try:
                handle = open(name, "rb")  # noqa: SIM115 (closed below, after the last line is read)
            except FileNotFoundError:
                continue
            with handle:
                yield from _parse_lines(handle)

    def shard(self, index: int, lease: Lease) -> LocalJournal:
        if self._generation is None:
            self._shards()
        assert self._generation is not None
        return LocalJournal(self.location, lease=lease, target=self._shard_path(self._generation, index))

    def _open(self) -> int:
        if self._fd is None:
            target = self._target or self.location
            directory = os.path.dirname(target) or "."
            os.makedirs(directory, exist_ok=True)
            created = not os.path.exists(target)
            fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
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
        _sync_data(fd)

    def close(self) -> None:
        try:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        finally:
            super().close()


# The records' bytes and the file's new size reach the disk; the modification time need not.
_sync_data = getattr(os, "fdatasync", os.fsync)


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

    def __init__(
        self,
        directory: ObjectStoragePath,
        *,
        lease_seconds: float | None = None,
        lease: Lease | None = None,
        generation: int | None = None,
        writer: str = "",
    ) -> None:
        self.directory = directory
        self.location = str(directory)
        if lease is not None:
            self.lease = lease
        elif lease_seconds is None:
            self.lease = ObjectStoreLease(directory)
        else:
            self.lease = ObjectStoreLease(directory, seconds=lease_seconds)
        self._generation: int | None = generation
        self._sequence = 0
        # Names the writer's objects: the workers of one run share its generation, and each counts its
        # own sequence, so this part (a worker's number and a random part) keeps their names apart.
        self._token = writer + uuid.uuid4().hex[:8]

    def _objects(self) -> list[ObjectStoragePath]:
        try:
            if not self.directory.exists():
                return []
            children = list(self.directory.iterdir())
        except FileNotFoundError:
            return []
        return sorted((c for c in children if c.name.endswith(".jsonl")), key=lambda c: c.name)

    def _listed(self) -> list[ObjectStoragePath]:
        """The objects, in order; the first listing also picks this journal's generation."""
        objects = self._objects()
        if self._generation is None:
            generation = 0
            for obj in objects:
                with contextlib.suppress(ValueError):
                    generation = max(generation, int(obj.name.split("-", 1)[0]))
            self._generation = generation + 1
        return objects

    def records(self) -> Iterator[dict[str, Any]]:
        from concurrent.futures import ThreadPoolExecutor

        objects = self._listed()
        # One round trip per object: read a batch side by side, then replay it in name order; a batch
        # at a time, so a long journal is never all in memory.
        with ThreadPoolExecutor(max_workers=_READERS) as pool:
            for start in range(0, len(objects), _READ_BATCH):
                batch = objects[start : start + _READ_BATCH]
                for data in pool.map(lambda obj: obj.read_bytes(), batch):
                    yield from _parse_lines(data.splitlines())

    def shard(self, index: int, lease: Lease) -> ObjectStoreJournal:
        if self._generation is None:
            self._listed()
        return ObjectStoreJournal(
            self.directory, lease=lease, generation=self._generation, writer=f"w{index:03d}"
        )

    def append(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        self.check_lease()
        if self._generation is None:
            self._listed()
        if self._sequence == 0 and self.directory.protocol in ("file", "local"):
            self.directory.mkdir(parents=True, exist_ok=True)  # object stores have no directories
        self._sequence += 1
        name = f"{self._generation:05d}-{self._sequence:08d}-{self._token}.jsonl"
        target = self.directory / name
        with target.open("wb") as handle:
            handle.write(_encode(records))


def path_segment(value: str) -> str:
    """``value`` as one path segment or object-key part, the same way on every store.

    Letters, digits, ``-``, ``_`` and ``.`` are kept; every other character is percent-encoded from
    its UTF-8 bytes (``%`` and ``/`` included), and a value made only of dots (``.``, ``..``) has its
    dots encoded too, so no segment can name a directory above it. The mapping is one to one: two
    different values never give the same segment. A value longer than :data:`MAX_SEGMENT_CHARS`
    once escaped keeps a readable prefix followed by ``~`` and its SHA-256 (``~`` is always
    escaped otherwise, so a shortened segment cannot equal a plain one).
    """
    encoded = "".join(
        char
        if char in _SEGMENT_SAFE
        else "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        for char in value
    )
    if not encoded.strip("."):
        encoded = encoded.replace(".", "%2E")
    if len(encoded) > MAX_SEGMENT_CHARS:
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        encoded = f"{encoded[: MAX_SEGMENT_CHARS - len(digest) - 1]}~{digest}"
    return encoded


def journal_parts(*, dag_id: str, run_id: str, task_id: str, map_index: int | None) -> tuple[str, str, str]:
    """The escaped ``(dag, run, task[@map_index])`` parts of a task instance's journal path."""
    for name, value in (("dag_id", dag_id), ("run_id", run_id), ("task_id", task_id)):
        if not isinstance(value, str) or not value:
            raise WhatsAppValidationError(f"{name}: a bulk send needs a non-empty text, got {value!r:.80}.")
    if map_index is not None and (not isinstance(map_index, int) or isinstance(map_index, bool)):
        raise WhatsAppValidationError(f"map_index: expected a whole number, got {map_index!r:.80}.")
    task = path_segment(task_id)
    if map_index is not None and map_index >= 0:
        task = f"{task}{MAP_INDEX_SEPARATOR}{map_index}"
    return path_segment(dag_id), path_segment(run_id), task


def default_progress_root() -> str:
    """``$AIRFLOW_HOME/whatsapp_bulk_progress``: local to the worker, so only right for one machine."""
    from airflow_provider_whatsapp._compat import airflow_home

    return os.path.join(airflow_home(), DEFAULT_DIRECTORY_NAME)


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
    parts = journal_parts(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index)
    text: str | None
    if hasattr(root, "protocol"):  # an ObjectStoragePath
        text = str(root.path) if root.protocol in ("file", "local") else None
    elif isinstance(root, (str, os.PathLike)):
        text = os.fspath(root)
        if not isinstance(text, str):
            raise WhatsAppValidationError("progress_path: give the path as text, not bytes.")
    else:
        raise WhatsAppValidationError(
            f"progress_path: expected a path or an ObjectStoragePath URL, got {type(root).__name__}."
        )
    if text is not None and "\x00" in text:
        raise WhatsAppValidationError("progress_path: contains a NUL character.")
    if text is not None and ("://" not in text or text.startswith("file://")):
        base = text[len("file://") :] if text.startswith("file://") else text
        *directories, task = parts
        return LocalJournal(os.path.join(os.path.expanduser(base), *directories, f"{task}.jsonl"))
    from airflow_provider_whatsapp._compat import ObjectStoragePath

    try:
        directory = root if text is None else ObjectStoragePath(text)
        for part in parts:
            directory = directory / part
    except (ValueError, TypeError) as error:
        raise WhatsAppValidationError(
            f"progress_path: {text or root} is not a usable location: {error}"
        ) from None
    return ObjectStoreJournal(directory)


# Errors that say progress_path itself is wrong: a new try would meet them again.
_BAD_LOCATION_ERRORS = (NotADirectoryError, IsADirectoryError, FileExistsError, PermissionError, ValueError)


def _journal_error(action: str, journal: Journal, error: Exception) -> WhatsAppError:
    """``error`` from locking or reading ``journal`` as the provider's error; ``action`` is a verb."""
    if isinstance(error, WhatsAppError):
        return error
    if isinstance(error, _BAD_LOCATION_ERRORS):
        detail = getattr(error, "strerror", None) or str(error)
        return WhatsAppValidationError(
            f"progress_path: could not {action} the bulk send journal {journal.location} "
            f"({type(error).__name__}: {detail}). Give progress_path a directory (or object-store URL) "
            "this worker can write; nothing was sent."
        )
    return JournalError(
        f"Could not {action} bulk send progress in {journal.location}: {error!r}. Nothing was sent: "
        "without it, recipients already sent to could get the message again."
    )


def claim(journal: Journal, holder: Holder, *, wait: float = 0.0) -> dict[str, Outcome]:
    """Take ``journal`` for this run and read what earlier tries did, before anything is sent.

    Raises :class:`~airflow_provider_whatsapp.bulk.lease.JournalBusyError` when another run holds it,
    :class:`WhatsAppValidationError` naming ``progress_path`` when the location cannot hold a journal,
    and :class:`JournalError` (retryable) for other storage failures.
    """
    try:
        journal.acquire(holder, wait=wait)
    except Exception as error:
        raise _journal_error("lock", journal, error) from error
    return read_outcomes(journal)


def read_outcomes(journal: Journal) -> dict[str, Outcome]:
    """What earlier tries did, with storage failures turned into the provider's errors."""
    try:
        return journal.outcomes()
    except Exception as error:
        raise _journal_error("read", journal, error) from error
