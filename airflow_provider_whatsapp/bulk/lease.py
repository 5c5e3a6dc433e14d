"""One run at a time per journal: an exclusive lease, held for the whole bulk send.

Two runs of one task instance at once (a zombie and its retry, a manual re-run while the first still
runs) would both read "not sent yet" from the journal and both send. The run holding the journal's
lease sends; another waits up to ``wait`` seconds, then fails with :class:`JournalBusyError`, which
names the holder (host, process id, try number) and is retryable: Airflow's next try resumes once
the holder is gone.

* A local or shared POSIX journal: ``flock`` on ``{journal}.lock``, held by an open descriptor for
  the whole run. The kernel drops it when the process ends or dies (SIGKILL included), so a dead
  holder never blocks the next try. On NFS, Linux implements ``flock`` with NFS byte-range locks.
* An object store (no locks): lease objects ``lease-{generation:08d}.json`` in the journal's
  directory. A lease is taken by creating the next generation exclusively (``open(mode="xb")``:
  ``O_EXCL`` on a local file system, a conditional put where the store supports one), so of two
  runs racing for it only one succeeds, and the object is read back to check it carries this run's
  token. The holder rewrites its object with a later expiry every third of the lease; a lease whose
  expiry has passed (its holder died or hung) may be taken over by the next generation. A holder
  that sees a newer generation, or could not renew in time, has lost the lease and sends no more.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from airflow_provider_whatsapp.errors import WhatsAppError

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_whatsapp._compat import ObjectStoragePath

log = logging.getLogger(__name__)

# How long an object-store lease lasts without renewal: a dead holder blocks the journal this long.
LEASE_SECONDS = 60.0
# Between the two read-backs of a new lease object (see ObjectStoreLease._create).
LEASE_SETTLE_SECONDS = 1.0
# How often a run waiting for the journal looks again.
POLL_SECONDS = 0.2
# How long a run that found the journal busy waits for the holder's name to be readable.
NAMING_WAIT_SECONDS = 2.0
_LEASE_NAME = re.compile(r"^lease-(\d{8})\.json$")


class JournalBusyError(WhatsAppError):
    """Another run of the same task instance holds the journal; this run sent nothing.

    Retryable: once that run has ended, a new try resumes from the journal.
    """

    retryable = True


class LeaseLostError(WhatsAppError):
    """This run's lease on an object-store journal expired or was taken over: it must stop sending."""

    retryable = True


@dataclass(frozen=True)
class Holder:
    """Who holds a journal: enough to find the process, nothing secret."""

    host: str
    pid: int
    try_number: int | None = None
    started_at: float = field(default_factory=time.time)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def this_process(cls, *, try_number: int | None = None) -> Holder:
        return cls(host=socket.gethostname(), pid=os.getpid(), try_number=try_number)

    @classmethod
    def parse(cls, data: bytes) -> tuple[Holder, float] | None:
        """A holder and its lease's expiry from a lease record, or ``None`` if it is not one."""
        try:
            entry = json.loads(data)
            holder = cls(
                host=str(entry["host"]),
                pid=int(entry["pid"]),
                try_number=None if entry.get("try_number") is None else int(entry["try_number"]),
                started_at=float(entry["started_at"]),
                token=str(entry["token"]),
            )
            return holder, float(entry.get("expires_at", 0.0))
        except (ValueError, TypeError, KeyError, RecursionError):
            return None

    def encode(self, *, expires_at: float = 0.0) -> bytes:
        return json.dumps({**asdict(self), "expires_at": round(expires_at, 3)}, sort_keys=True).encode()

    def describe(self) -> str:
        attempt = f", try {self.try_number}" if self.try_number is not None else ""
        return f"host {self.host}, pid {self.pid}{attempt}, since {_utc(self.started_at)}"


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _timestamp(value: object) -> float | None:
    """A modification time as seconds since the epoch: a number, a datetime, or an ISO 8601 text
    (gcsfs gives ``updated`` so); a time without a zone is UTC. ``None`` for anything else.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    return None


def _busy(location: str, holder: str, wait: float, extra: str = "") -> JournalBusyError:
    waited = f" after waiting {wait:g} s" if wait > 0 else ""
    return JournalBusyError(
        f"Another run of this task instance is using its bulk send journal {location} ({holder}){extra}; "
        f"this run sent nothing{waited}, so that no recipient gets the message twice. If that run is still "
        "sending, let it finish; a later try of this task resumes where it stopped."
    )


class Lease:
    """Exclusive use of one journal by one run."""

    @property
    def lost(self) -> bool:
        """Whether the lease stopped being this run's before it was released."""
        return False

    @property
    def valid_until(self) -> float:
        """Wall-clock time (``time.time()``) from which the lease may be another run's unless renewed:
        worker processes of this run stop sending then, even before they hear it was lost."""
        return math.inf

    def acquire(self, holder: Holder, *, wait: float = 0.0) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError


class LocalLease(Lease):
    """``flock`` on a lock file beside the journal; the file names the holder while it is held.

    The lock file is never deleted: removing it while another run has it open would let two runs
    lock two different files.
    """

    def __init__(self, path: str, *, location: str | None = None) -> None:
        self.path = path
        self.location = location or path
        self._fd: int | None = None

    def acquire(self, holder: Holder, *, wait: float = 0.0) -> None:
        import fcntl

        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(0.0, wait)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise _busy(self.location, self._holder_of(fd), wait) from None
                    time.sleep(min(POLL_SECONDS, left))
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode(), 0)
        except BaseException:
            os.close(fd)  # also drops the lock if it was taken
            raise
        self._fd = fd

    @staticmethod
    def _holder_of(fd: int) -> str:
        parsed = Holder.parse(os.pread(fd, 4096, 0))
        # Empty while the holder is between taking the lock and writing its name.
        return parsed[0].describe() if parsed else "holder not known yet"

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # still locked: nobody reads a stale name after this
        finally:
            os.close(fd)


class ObjectStoreLease(Lease):
    """Generation-numbered lease objects, created exclusively and renewed by a background thread.

    :param directory: the journal's directory.
    :param seconds: how long the lease lasts without renewal.
    :param clock: wall-clock time (leases are compared across machines).
    :param settle: seconds between the two reads that confirm a newly created lease object is ours.
    """

    def __init__(
        self,
        directory: ObjectStoragePath,
        *,
        seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
        settle: float = LEASE_SETTLE_SECONDS,
    ) -> None:
        self.directory = directory
        self.settle = settle
        self.location = str(directory)
        self.seconds = seconds
        self._clock = clock
        self._holder: Holder | None = None
        self._generation = 0
        self._expires_at = 0.0
        self._lost = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        # Local clock time each unreadable lease generation was first seen, when the store gives no age.
        self._first_seen: dict[int, float] = {}

    @property
    def lost(self) -> bool:
        if not self._lost and self._holder is not None and self._clock() >= self._expires_at:
            self._lost = True  # not renewed in time: another run may already have taken over
        return self._lost

    @property
    def valid_until(self) -> float:
        return self._expires_at

    def _object(self, generation: int) -> ObjectStoragePath:
        return self.directory / f"lease-{generation:08d}.json"

    def _newest(self) -> int:
        """The highest lease generation in the directory, 0 when there is none."""
        try:
            if not self.directory.exists():
                return 0
            names = [child.name for child in self.directory.iterdir()]
        except FileNotFoundError:
            return 0
        generations = [int(m.group(1)) for m in map(_LEASE_NAME.match, names) if m]
        return max(generations, default=0)

    def _state(self, generation: int) -> tuple[str, bool]:
        """``(who holds generation, whether it is still live)``."""
        target = self._object(generation)
        try:
            parsed = Holder.parse(target.read_bytes())
        except FileNotFoundError:
            return "a run that just released it", False
        if parsed is not None:
            holder, expires_at = parsed
            return holder.describe(), self._clock() < expires_at
        # Created but not written yet (a local file between its exclusive create and its write), or
        # left so by a crash: live while younger than a lease, so a crashed creator cannot block forever.
        age = self._age(target)
        if age is None:
            # A store whose metadata gives no usable time: count from when this run first saw it.
            first_seen = self._first_seen.setdefault(generation, self._clock())
            age = self._clock() - first_seen
        return "a run whose lease is being written", age < self.seconds

    def _age(self, target: ObjectStoragePath) -> float | None:
        """Seconds since ``target`` was last written, from the store's metadata; ``None`` if unknown."""
        with contextlib.suppress(Exception):
            info = target.stat()
            modified = getattr(info, "st_mtime", None)
            if modified is None and hasattr(info, "get"):
                modified = info.get("mtime") or info.get("LastModified") or info.get("updated")
            when = _timestamp(modified)
            if when is not None:
                return self._clock() - when
        return None

    def acquire(self, holder: Holder, *, wait: float = 0.0) -> None:
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            newest = self._newest()
            who, live = self._state(newest) if newest else ("", False)
            if not live:
                if self._create(newest + 1, holder):
                    break
                who = "a run that took it at the same moment"
            if time.monotonic() >= deadline:
                raise _busy(self.location, self._named(who), wait, f", lease generation {newest}")
            time.sleep(min(POLL_SECONDS, max(0.01, deadline - time.monotonic())))
        self._holder = holder
        self._generation = newest + 1
        self._renewer = threading.Thread(target=self._renew_loop, name="whatsapp-bulk-lease", daemon=True)
        self._renewer.start()

    def _named(self, who: str) -> str:
        """``who``, or the holder's name once its lease is written: a run that lost the race to one that
        is still writing its lease waits a moment (up to two seconds: on a busy machine the writer may
        not run at once), so its error can say which run holds the journal."""
        give_up = time.monotonic() + NAMING_WAIT_SECONDS
        while True:
            newest = self._newest()
            if newest:
                target = self._object(newest)
                with contextlib.suppress(FileNotFoundError):
                    parsed = Holder.parse(target.read_bytes())
                    if parsed is not None:
                        return parsed[0].describe()
            if time.monotonic() >= give_up:
                return who
            time.sleep(min(self.settle, POLL_SECONDS))

    def _create(self, generation: int, holder: Holder) -> bool:
        """Create lease object ``generation`` for ``holder``; ``False`` if another run has it."""
        target = self._object(generation)
        expires_at = self._clock() + self.seconds
        data = holder.encode(expires_at=expires_at)
        if self.directory.protocol in ("file", "local"):
            self.directory.mkdir(parents=True, exist_ok=True)  # object stores have no directories
        try:
            with target.open("xb") as handle:
                handle.write(data)
        except FileExistsError:
            return False
        except (ValueError, NotImplementedError):
            # A store without exclusive create: best effort, write unless present, then read back.
            if target.exists():
                return False
            target.write_bytes(data)
        if not self._still_mine(target, holder):
            return False
        # A store whose "xb" is not atomic (older s3fs, for small objects) lets a run that wrote
        # just after us overwrite the object: look once more after it had time to land.
        time.sleep(min(self.settle, self.seconds / 4))  # well inside the lease just written
        if not self._still_mine(target, holder):
            return False
        self._expires_at = expires_at
        return True

    @staticmethod
    def _still_mine(target: ObjectStoragePath, holder: Holder) -> bool:
        parsed = Holder.parse(target.read_bytes())
        return parsed is not None and parsed[0].token == holder.token

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if self._newest() > self._generation:
                    log.error("The bulk send journal %s was taken over by another run.", self.location)
                    self._lost = True
                    return
                expires_at = self._clock() + self.seconds
                assert self._holder is not None
                self._object(self._generation).write_bytes(self._holder.encode(expires_at=expires_at))
                self._expires_at = expires_at
            except Exception as error:  # try again next time; lost once the lease runs out
                log.warning("Could not renew the lease on %s: %r", self.location, error)
            if self.lost:
                return

    def release(self) -> None:
        if self._holder is None:
            return
        self._stop.set()
        if self._renewer is not None:
            # A renewal stuck in a hung store call must not hold the task: the lease expires by itself.
            self._renewer.join(timeout=self.seconds)
        holder, self._holder = self._holder, None
        if self._lost:
            return
        try:
            # Expired at once: the next run takes the next generation without waiting.
            self._object(self._generation).write_bytes(holder.encode(expires_at=0.0))
        except Exception as error:
            log.warning(
                "Could not release the lease on %s (%r); it expires by itself within %g s.",
                self.location,
                error,
                self.seconds,
            )
