"""One bulk send in several worker processes, for rates one core cannot keep up with.

The task's process (the parent) keeps everything that needs Airflow or decides for the whole send:
it resolved the connection, holds the journal's lease and read what earlier tries did. The workers
come from one fresh interpreter (``python -m airflow_provider_whatsapp.bulk.workers``: nothing is
forked from the task's process, which runs threads) that imports the engine once and forks them,
like a fork server: Airflow's import, seconds of CPU, is paid once, not once per worker. Each
worker sends one share of the recipients with the single-process engine:

* a recipient belongs to one worker per run (:func:`~.items.share_of`, stable across processes).
  Recipients from a local file are read by each worker itself, its share only (bounded memory
  everywhere); others are handed out by the parent while the workers send, in chunks each worker asks
  for as it takes the previous ones (:class:`_HandOut`: neither side holds the whole list);
* each worker paces ``max_rate / N`` and keeps its share of ``max_concurrency`` in flight (the shares
  sum to it), so together they stay under ``max_rate`` as the server counts;
* the journal must be a local or shared POSIX path: a worker cannot open an object store (that takes
  an Airflow connection), so such a send is refused before the journal is claimed;
* each worker writes its own journal shard (:meth:`~.progress.Journal.shard`), so a new try, with
  any number of processes, reads every worker's records and skips what any of them sent;
* the lease stays with the parent. A worker stops sending before its next request once the parent
  says the lease is lost, once the lease's last renewal ran out, or once the parent is gone (its
  end of the control socket closes: its ``flock`` went with it);
* a worker that fails (an exception, a kill) stops the others and fails the task, naming it; what
  it was sending is unknown to the next try, like after a crash of the single-process engine.

The parent sends each worker its settings (the API key included) and its share over a socket pair
of their own: never in the command line, the environment (variables holding the key are left out
of the workers' environment) or a file. Workers log to the task's stderr, with the key scrubbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.bulk.engine import (
    BulkConfig,
    BulkItem,
    BulkResult,
    BulkSender,
    changed_recipients,
)
from airflow_provider_whatsapp.bulk.items import PlannedItems, share_of
from airflow_provider_whatsapp.bulk.lease import Holder, Lease, LeaseLostError
from airflow_provider_whatsapp.bulk.progress import LocalJournal
from airflow_provider_whatsapp.bulk.sources import RecipientSource
from airflow_provider_whatsapp.errors import WhatsAppError, WhatsAppValidationError
from airflow_provider_whatsapp.redact import mask_phone_number, scrub
from airflow_provider_whatsapp.spec.limits import MAX_BULK_PROCESSES

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from airflow_provider_whatsapp.bulk.progress import Journal, Outcome
    from airflow_provider_whatsapp.hooks._settings import MatonSettings

log = logging.getLogger(__name__)

_MODULE = "airflow_provider_whatsapp.bulk.workers"

# How often the parent looks at its lease and its workers, and a worker at what the parent said.
POLL_SECONDS = 0.05
# Recipients handed to a worker per message, and the most chunks a worker has waiting (handed, not
# yet taken): together they bound what the parent and each worker hold of a list they cannot reread.
_CHUNK = 500
_CHUNKS_AHEAD = 4
# How long stopped workers get to finish their requests in flight before they are killed.
STOP_GRACE_SECONDS = 30.0


class BulkWorkerError(WhatsAppError):
    """A worker process of a bulk send failed or was killed; the other workers stopped.

    Retryable: the journal shows what every worker sent. Recipients the failed worker was sending are
    reported unknown by the next try and not sent again unless asked.
    """

    retryable = True


class WorkerStoppedError(WhatsAppError):
    """This worker stopped because another worker of the send stopped or failed."""

    retryable = True


def share_config(config: BulkConfig, count: int, index: int) -> BulkConfig:
    """``config`` for worker ``index`` of ``count``: an equal share of the rate, and its share of the
    requests in flight, the shares summing to ``max_concurrency`` (the first ones take the remainder).
    """
    if not 1 <= count <= config.max_concurrency:
        raise ValueError(
            f"processes={count} cannot share max_concurrency={config.max_concurrency}: each worker "
            "needs at least one request in flight."
        )
    share, rest = divmod(config.max_concurrency, count)
    return dataclasses.replace(
        config, max_rate=config.max_rate / count, max_concurrency=share + (1 if index < rest else 0)
    )


def refuse_unsupported(journal: Journal, config: BulkConfig, processes: int) -> None:
    """Raise :class:`~airflow_provider_whatsapp.errors.WhatsAppValidationError` when a send in
    ``processes`` worker processes cannot keep its promises; called before the journal is claimed.

    * an object-store journal: a worker would have to open the store itself, which takes an Airflow
      connection (its credentials) that a worker process cannot read;
    * fewer requests in flight than workers: each needs one, and together they keep to the limit.
    """
    if not isinstance(journal, LocalJournal):
        raise WhatsAppValidationError(
            f"progress_path: {journal.location} is an object store, and processes={processes} needs the "
            "journal on a local or shared POSIX path (its worker processes cannot open an object store: "
            "that takes an Airflow connection). Nothing was claimed or sent. Either give progress_path a "
            "path every worker of the task sees (file:///shared/...), or keep processes=1 and split the "
            "send over mapped tasks (.expand over chunks of recipients), each with its share of max_rate "
            "and its own journal."
        )
    if processes > config.max_concurrency:
        raise WhatsAppValidationError(
            f"processes={processes} is more than max_concurrency={config.max_concurrency}: each worker "
            "process needs at least one request in flight, and together they keep within "
            "max_concurrency. Raise max_concurrency or lower processes; nothing was sent."
        )


class WorkerLease(Lease):
    """A worker's view of the lease its parent holds: lost once the parent says so, once its last
    renewal ran out (``valid_until``, wall-clock time), or once the parent is gone. Never taken or
    released by the worker."""

    def __init__(self, until: float = math.inf) -> None:
        self.lost_reason: str | None = None
        self.until = until

    @property
    def lost(self) -> bool:
        return self.lost_reason is not None or time.time() >= self.until

    @property
    def valid_until(self) -> float:
        return self.until

    def acquire(self, holder: Holder, *, wait: float = 0.0) -> None:
        raise RuntimeError("A bulk worker process sends under its parent's lease; it takes none.")

    def release(self) -> None:
        """Nothing to release: the parent holds the lease."""


@dataclass
class WorkerSpec:
    """What a worker needs besides its recipients; sent over its socket, never on its command line."""

    index: int
    count: int
    journal: Journal
    config: BulkConfig
    settings: MatonSettings
    hook_kwargs: dict[str, Any]
    log_level: int

    @property
    def name(self) -> str:
        return f"bulk worker {self.index + 1} of {self.count}"


# --- parent side -----------------------------------------------------------------------------------


@dataclass
class _Worker:
    spec: WorkerSpec
    conn: Connection
    pid: int | None = None
    size: int = 0
    #: Wall-clock times (``time.time()``) the worker's send started and ended.
    sending: tuple[float, float] | None = None
    result: BulkResult | None = None
    failure: str | None = None
    done: bool = False


class _Launcher:
    """The interpreter the workers are forked from; it says on its stdout when each one ended, and how.

    :param fds: the workers' ends of their sockets, in worker order.
    """

    def __init__(self, fds: list[int], environment: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            # The sockets' numbers, nothing else: the rest goes over them.
            [sys.executable, "-m", _MODULE, *map(str, fds)],
            pass_fds=fds,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        self._codes: dict[int, int] = {}

    def exit_code(self, index: int) -> int | None:
        """How worker ``index`` ended (negative: the signal that killed it); ``None`` if not known."""
        assert self.process.stdout is not None
        while index not in self._codes:
            line = self.process.stdout.readline()
            if not line:
                return None
            with contextlib.suppress(ValueError):
                ended, code = map(int, line.split())
                self._codes[ended] = code
        return self._codes[index]


def run_in_processes(
    items: Iterable[BulkItem],
    journal: Journal,
    config: BulkConfig,
    *,
    prior: Mapping[str, Outcome],
    settings: MatonSettings,
    processes: int,
    hook_kwargs: Mapping[str, Any] | None = None,
) -> BulkResult:
    """Send ``items`` in ``processes`` worker processes under ``journal``, which this process has claimed
    (``prior`` is what it read); the merged result has the shape of :func:`~.engine.run_bulk`'s.

    :param settings: the connection as resolved here (workers read no connection).
    :param hook_kwargs: the other arguments of the workers' hooks (``max_attempts``, ``rate_limit``...).
    """
    if not 1 <= processes <= MAX_BULK_PROCESSES:
        raise ValueError(f"processes must be 1 to {MAX_BULK_PROCESSES}, got {processes!r}.")
    refuse_unsupported(journal, config, processes)
    started = time.monotonic()
    launcher, workers = _start_workers(journal, config, settings, processes, dict(hook_kwargs or {}))
    try:
        hand_out = _brief(workers, items, prior, resend_changed=config.resend_changed)
        if _all_ready(launcher, workers) and _go(workers, journal):
            log.info(
                "%d bulk worker processes (pids %s) ready in %.1f s (%s recipients each), each at %g/s.",
                len(workers),
                ", ".join(str(w.pid) for w in workers),
                time.monotonic() - started,
                "handed out as they send" if hand_out else "/".join(str(w.size) for w in workers),
                workers[0].spec.config.max_rate,
            )
            if hand_out is not None:
                hand_out.pump()
        _supervise(launcher, workers, journal, hand_out)
        if hand_out is not None:
            hand_out.count_rest()  # those never handed out (a worker failed, or none started)
    finally:
        _end_all(launcher, workers)
    return _merge(workers, journal)


def _start_workers(
    journal: Journal,
    config: BulkConfig,
    settings: MatonSettings,
    count: int,
    hook_kwargs: dict[str, Any],
) -> tuple[_Launcher, list[_Worker]]:
    level = logging.getLogger("airflow_provider_whatsapp").getEffectiveLevel()
    pairs = [socket.socketpair() for _ in range(count)]
    workers = [
        _Worker(
            spec=WorkerSpec(
                index=index,
                count=count,
                # The lease's state now: a worker never starts out believing more than the parent.
                journal=journal.shard(index, WorkerLease(journal.lease.valid_until)),
                config=share_config(config, count, index),
                settings=settings,
                hook_kwargs=hook_kwargs,
                log_level=level,
            ),
            conn=Connection(ours.detach()),
        )
        for index, (ours, _) in enumerate(pairs)
    ]
    try:
        launcher = _Launcher([theirs.fileno() for _, theirs in pairs], _environment_without_secrets())
    except BaseException:
        for worker in workers:
            worker.conn.close()
        raise
    finally:
        for _, theirs in pairs:
            theirs.close()
    try:
        for worker in workers:
            _send(worker, worker.spec)
    except BaseException:
        _end_all(launcher, workers)
        raise
    return launcher, workers


def _environment_without_secrets() -> dict[str, str]:
    """This process's environment less every variable holding the API key (``AIRFLOW_CONN_*``,
    ``MATON_API_KEY``): the workers get the key over their socket only."""
    return {name: value for name, value in os.environ.items() if scrub(value) == value}


def _brief(
    workers: list[_Worker], items: Iterable[BulkItem], prior: Mapping[str, Outcome], *, resend_changed: bool
) -> _HandOut | None:
    """Tell each worker where its recipients come from, then end its briefing. A plan of a local file:
    each worker reads its own share, and gets what earlier tries did to it now. Anything else: the
    parent hands the recipients out after "go" (the returned :class:`_HandOut`)."""
    count = len(workers)
    hand_out: _HandOut | None = None
    if _rereadable(items):
        assert isinstance(items, PlannedItems)
        for index, worker in enumerate(workers):
            _send(worker, ("share", items.plan.items(share=(index, count))))
        # A recipient that is not ASCII is no normalised number (a damaged journal's): no worker has it.
        _in_chunks(workers, "prior", ((to, (to, outcome)) for to, outcome in prior.items() if to.isascii()))
    else:
        hand_out = _HandOut(workers, items, prior, resend_changed=resend_changed)
        for worker in workers:
            _send(worker, ("stream", None))
    for worker in workers:
        _send(worker, ("end", None))
    return hand_out


def _rereadable(items: Iterable[BulkItem]) -> bool:
    """Whether each worker can read its own share of ``items``: a plan of a local file (an object
    store would need an Airflow connection, which a worker cannot read)."""
    if not isinstance(items, PlannedItems) or items.share is not None:
        return False
    source = items.plan.entries
    return isinstance(source, RecipientSource) and source.path is None


def _in_chunks(workers: list[_Worker], kind: str, entries: Iterable[tuple[str, Any]]) -> None:
    """Send each ``(recipient, entry)`` to the worker of its recipient, :data:`_CHUNK` at a time."""
    count = len(workers)
    chunks: list[list[Any]] = [[] for _ in workers]
    for to, entry in entries:
        index = share_of(to, count)
        chunk = chunks[index]
        chunk.append(entry)
        if len(chunk) >= _CHUNK:
            _send(workers[index], (kind, chunk))
            chunks[index] = []
    for worker, chunk in zip(workers, chunks, strict=True):
        if chunk:
            _send(worker, (kind, chunk))


class _HandOut:
    """Hands the workers their recipients while they send, taken from ``items`` as needed: each
    worker gets chunks of :data:`_CHUNK` ``(item, earlier outcome)`` and asks for one more as it takes
    one, so it has at most :data:`_CHUNKS_AHEAD` waiting, and this process holds at most a chunk per
    worker. A worker that ended (failed) gets nothing more; its recipients are counted as not sent.
    """

    def __init__(
        self,
        workers: list[_Worker],
        items: Iterable[BulkItem],
        prior: Mapping[str, Outcome],
        *,
        resend_changed: bool,
    ) -> None:
        self.workers = workers
        self._items = iter(items)
        self._prior = prior
        self._resend_changed = resend_changed
        self._credit = [_CHUNKS_AHEAD] * len(workers)
        self._chunks: list[list[tuple[BulkItem, Outcome | None]]] = [[] for _ in workers]
        self._ended = [False] * len(workers)
        self._exhausted = False

    def more(self, worker: _Worker) -> None:
        """``worker`` took a chunk: it may have one more."""
        self._credit[worker.spec.index] += 1
        self.pump()

    def pump(self) -> None:
        """Hand out until a worker's chunk is full but it has enough waiting, or every item is out."""
        while True:
            self._flush()
            if self._exhausted or any(
                len(chunk) >= _CHUNK
                for chunk, worker in zip(self._chunks, self.workers, strict=True)
                if not worker.done
            ):
                return
            self._take()

    def count_rest(self) -> None:
        """Count the items never handed out, each under its worker (as not sent)."""
        for item in self._items:
            self.workers[share_of(item.to, len(self.workers))].size += 1
        self._exhausted = True

    def _take(self) -> None:
        count = len(self.workers)
        for item in self._items:
            index = share_of(item.to, count)
            worker = self.workers[index]
            worker.size += 1
            if worker.done:
                continue
            chunk = self._chunks[index]
            chunk.append((item, self._outcome(item)))
            if len(chunk) >= _CHUNK:
                return
        self._exhausted = True

    def _outcome(self, item: BulkItem) -> Outcome | None:
        """What the worker needs of the journal for ``item``. With ``resend_changed``, a recipient sent
        another message before is sent this one as new (the worker does not see the whole list)."""
        outcome = self._prior.get(item.to)
        if outcome is None or not self._resend_changed:
            return outcome
        if changed_recipients(((item.to, item.fingerprint),), {item.to: outcome}):
            log.warning(
                "Sending the new message to %s, sent a different one before, as asked.",
                mask_phone_number(item.to),
            )
            return None
        return outcome

    def _flush(self) -> None:
        for index, worker in enumerate(self.workers):
            chunk = self._chunks[index]
            if worker.done:
                chunk.clear()
                continue
            if chunk and self._credit[index] > 0 and (len(chunk) >= _CHUNK or self._exhausted):
                _tell(worker, ("items", chunk))
                self._chunks[index] = []
                self._credit[index] -= 1
            if self._exhausted and not self._chunks[index] and not self._ended[index]:
                _tell(worker, ("end", None))
                self._ended[index] = True


def _all_ready(launcher: _Launcher, workers: list[_Worker]) -> bool:
    """Wait until every worker is ready to send; ``False`` (the others told to stop) if one failed."""
    waiting = list(workers)
    while waiting:
        ready = wait([worker.conn for worker in waiting])
        for worker in [worker for worker in waiting if worker.conn in ready]:
            waiting.remove(worker)
            if not _receive(launcher, worker):
                _stop_others(workers, worker)
                return False
    return True


def _go(workers: list[_Worker], journal: Journal) -> bool:
    """Start every worker's send, with the lease's state as of now; ``False`` (each told to stop,
    nothing sent) when the lease is lost already."""
    if journal.lease.lost:
        for worker in workers:
            _tell(worker, ("stop", "the task process lost the journal's lease before the send began"))
        return False
    until = journal.lease.valid_until
    for worker in workers:
        _send(worker, ("go", until))  # together: each paces its share from the same moment
    return True


def _send(worker: _Worker, message: Any) -> None:
    try:
        worker.conn.send(message)
    except OSError as error:
        raise BulkWorkerError(
            f"{worker.spec.name} ended while it was being started "
            f"({error!r}); see its lines in the task log. Nothing was sent by this try of it."
        ) from None


def _supervise(
    launcher: _Launcher, workers: list[_Worker], journal: Journal, hand_out: _HandOut | None = None
) -> None:
    """Wait for every worker's result, passing on the lease's state and stopping all on a failure."""
    told: tuple[float, bool] = (math.inf, False)
    while not all(worker.done for worker in workers):
        lease = (journal.lease.valid_until, journal.lease.lost)
        if lease != told:
            for worker in workers:
                if not worker.done:
                    _tell(worker, ("lease", *lease))
            told = lease
        ready = wait([worker.conn for worker in workers if not worker.done], timeout=POLL_SECONDS)
        for worker in workers:
            if worker.conn in ready:
                _receive(launcher, worker, hand_out)
                if worker.failure is not None or (
                    worker.result is not None
                    and worker.result.aborted is not None
                    and not isinstance(worker.result.aborted, WorkerStoppedError)
                ):
                    _stop_others(workers, worker)


def _receive(launcher: _Launcher, worker: _Worker, hand_out: _HandOut | None = None) -> bool:
    """Read one message of ``worker``; ``False`` once it is done (reported, failed or died)."""
    try:
        kind, value = worker.conn.recv()
    except (EOFError, OSError):
        kind, value = "died", None
    if kind == "ready":
        worker.pid, size = value
        if size is not None:  # else counted as it is handed out
            worker.size = size
        return True
    if kind == "more":
        if hand_out is not None:
            hand_out.more(worker)
        return True
    worker.done = True
    if kind == "result":
        worker.result, worker.sending = value
        return False
    if kind == "error":
        worker.failure = f"failed: {value}"
        return False
    code = launcher.exit_code(worker.spec.index)
    if code is None:
        how = "ended"
    elif code < 0:
        how = f"was killed by signal {-code}"
    else:
        how = f"ended with exit code {code}"
    worker.failure = f"{how} before it reported"
    return False


def _tell(worker: _Worker, message: Any) -> None:
    with contextlib.suppress(OSError):  # it ended meanwhile: its result (or its death) says more
        worker.conn.send(message)


def _stop_others(workers: list[_Worker], stopped: _Worker) -> None:
    why = stopped.failure or str(stopped.result.aborted if stopped.result else "")
    for worker in workers:
        if not worker.done:
            _tell(worker, ("stop", f"{stopped.spec.name} stopped: {why}"[:500]))


def _end_all(launcher: _Launcher, workers: list[_Worker]) -> None:
    """Make sure no worker outlives the call: the lease is released after it, and a worker sending
    without the lease could send what a new try sends too. A worker has ended once its socket closed."""
    for worker in workers:
        if not worker.done:
            _tell(worker, ("stop", "the task stopped"))
            _tell(worker, ("end", None))  # no more recipients: it counts those it has and reports
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for worker in workers:
        # Its socket's end (EOFError) is the worker's end; what it says meanwhile changes nothing.
        with contextlib.suppress(EOFError, OSError):
            while worker.conn.poll(max(0.0, deadline - time.monotonic())):
                worker.conn.recv()
            log.error("%s (pid %s) did not stop in time: killed.", worker.spec.name, worker.pid)
            if worker.pid is not None:
                os.kill(worker.pid, signal.SIGKILL)
        worker.conn.close()
    try:
        launcher.process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        launcher.process.kill()
        launcher.process.wait()
    if launcher.process.stdout is not None:
        launcher.process.stdout.close()


def _merge(workers: list[_Worker], journal: Journal) -> BulkResult:
    """One result for the whole send; its time is from the first worker's first send to the last
    worker's end (the workers' start-up, logged apart, is not part of the send's rate)."""
    merged = BulkResult(progress_path=journal.location)
    times = [worker.sending for worker in workers if worker.sending is not None]
    if times:
        merged.elapsed_seconds = max(end for _, end in times) - min(start for start, _ in times)
    failures: list[str] = []
    aborts: list[WhatsAppError] = []
    for worker in workers:
        merged.total += worker.size
        result = worker.result
        if result is None:
            merged.not_sent += worker.size
            failures.append(f"{worker.spec.name} (pid {worker.pid}) {worker.failure or 'did not report'}")
            continue
        merged.sent += result.sent
        merged.skipped += result.skipped
        merged.failed.extend(result.failed)
        merged.unknown.extend(result.unknown)
        # Never handed to it (the send stopped before): pending too.
        merged.not_sent += result.not_sent + max(0, worker.size - result.total)
        merged.throttled += result.throttled
        merged.accepted.update(result.accepted)
        if result.aborted is not None:
            aborts.append(result.aborted)
    if failures:
        merged.aborted = BulkWorkerError(
            "; ".join(failures) + ". The other workers were stopped. The journal has what each worker "
            "sent; the recipients the failed worker was sending are unknown to the next try (their "
            "counts here are under 'not sent')."
        )
    elif aborts:
        merged.aborted = next((a for a in aborts if not isinstance(a, WorkerStoppedError)), aborts[0])
    return merged


# --- worker side -----------------------------------------------------------------------------------


def _worker(conn: Connection) -> None:
    spec = conn.recv()
    if not isinstance(spec, WorkerSpec):
        return  # told to stop before it was briefed: another worker could not be started
    _log_to_stderr(spec)
    share: PlannedItems | None = None
    streamed = False
    prior: dict[str, Outcome] = {}
    while True:
        kind, value = conn.recv()
        if kind == "end":
            break
        if kind == "share":
            share = value
        elif kind == "prior":
            prior.update(value)
        elif kind == "stream":
            streamed = True
        else:
            return  # stopped while it was being briefed: nothing sent
    mine: PlannedItems | _Stream = share if share is not None and not streamed else _Stream(conn, prior)
    size = len(mine) if isinstance(mine, PlannedItems) else None
    lease = spec.journal.lease
    assert isinstance(lease, WorkerLease)
    try:
        conn.send(("ready", (os.getpid(), size)))
        kind, value = conn.recv()
    except (EOFError, OSError):
        return  # the parent is gone before the send began: nothing sent, nobody to tell
    if kind != "go":  # another worker failed to start: nothing sent, everything pending
        stopped = BulkResult(total=size or 0, not_sent=size or 0, progress_path=spec.journal.location)
        stopped.aborted = WorkerStoppedError(str(value))
        with contextlib.suppress(OSError):
            conn.send(("result", (stopped, None)))
        return
    lease.until = value
    stop = threading.Event()
    reasons: list[str] = []
    stream = mine if isinstance(mine, _Stream) else None
    listener = threading.Thread(
        target=_listen, args=(conn, lease, stop, reasons, stream), name="whatsapp-bulk-parent", daemon=True
    )
    listener.start()
    started = time.time()
    try:
        result = asyncio.run(_send_share(spec, lease, mine, prior, stop, reasons))
    except BaseException as error:
        log.exception("%s failed.", spec.name)
        with contextlib.suppress(OSError):
            conn.send(("error", scrub(f"{type(error).__name__}: {error}")[:2000]))
        raise SystemExit(1) from None
    with contextlib.suppress(OSError):  # the parent is gone: its next try reads the journal
        conn.send(("result", (result, (started, time.time()))))


class _Stream:
    """A worker's recipients as its parent hands them out while it sends (see :class:`_HandOut`);
    iterated once, by the engine, which takes them as it needs them. Each chunk taken asks the parent
    for the next. What earlier tries did to each recipient comes with it, into ``prior``."""

    def __init__(self, conn: Connection, prior: dict[str, Outcome]) -> None:
        self._conn = conn
        self._prior = prior
        self.chunks: queue.SimpleQueue[list[tuple[BulkItem, Outcome | None]] | None] = queue.SimpleQueue()
        self.received = 0

    def __iter__(self) -> Iterator[BulkItem]:
        while True:
            chunk = self.chunks.get()
            if chunk is None:  # the end, or the parent is gone
                self.chunks.put(None)
                return
            with contextlib.suppress(OSError):
                self._conn.send(("more", None))
            for item, outcome in chunk:
                self.received += 1
                if outcome is not None:
                    self._prior[item.to] = outcome
                yield item


def _listen(
    conn: Connection,
    lease: WorkerLease,
    stop: threading.Event,
    reasons: list[str],
    stream: _Stream | None = None,
) -> None:
    """What the parent says: recipients, the lease's state, or stop. Its end closing means it is gone."""
    while True:
        try:
            kind, *values = conn.recv()
        except (EOFError, OSError):
            lease.lost_reason = "the task process that holds the journal's lease is gone"
            reasons.append(lease.lost_reason)
            stop.set()
            if stream is not None:
                stream.chunks.put(None)
            return
        if kind == "items" and stream is not None:
            stream.chunks.put(values[0])
        elif kind == "end" and stream is not None:
            stream.chunks.put(None)
        elif kind == "lease":
            until, lost = values
            lease.until = until
            if lost:
                lease.lost_reason = "the task process lost the journal's lease"
        elif kind == "stop":
            reasons.append(values[0])
            stop.set()


async def _send_share(
    spec: WorkerSpec,
    lease: WorkerLease,
    items: PlannedItems | _Stream | list[BulkItem],
    prior: dict[str, Outcome],
    stop: threading.Event,
    reasons: list[str],
) -> BulkResult:
    from airflow_provider_whatsapp.hooks.maton import MatonHook

    hook = MatonHook.from_settings(spec.settings, **spec.hook_kwargs)

    async def send(payload: dict[str, Any]) -> str:
        return MatonHook.message_id(await hook.asend_message(payload))

    # A stream's length is known once it ended; its prior fills as it is read (so the engine's
    # pass over the items for changed messages is left out: the parent did that).
    streamed = isinstance(items, _Stream)
    sender = BulkSender(items, send, spec.journal, spec.config, prior, total=0 if streamed else None)

    async def watch() -> None:
        while not stop.is_set() and not lease.lost:
            await asyncio.sleep(POLL_SECONDS)
        if lease.lost:
            sender.stop(LeaseLostError(f"{spec.name} stopped: {lease.lost_reason or 'the lease ran out'}."))
        else:
            sender.stop(WorkerStoppedError(reasons[0] if reasons else f"{spec.name} was stopped."))

    watcher = asyncio.create_task(watch())
    try:
        hook.get_async_conn()  # before the pacer's clock starts (see the operator)
        result = await sender.run()
        if isinstance(items, _Stream):
            result.total = items.received
        return result
    finally:
        watcher.cancel()
        await hook.aclose()
        spec.journal.close()


class _Scrubbed(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def _log_to_stderr(spec: WorkerSpec) -> None:
    """The worker's log lines on stderr (the task log), named after the worker, the key scrubbed."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Scrubbed(f"[{spec.name}] %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("airflow_provider_whatsapp").setLevel(spec.log_level)


def _launch(fds: list[int]) -> None:
    """Fork one worker per socket in ``fds`` from this interpreter (everything imported, no thread
    running), then say on stdout ``{worker} {exit code}`` as each one ends (negative: a signal)."""
    from airflow_provider_whatsapp.hooks import maton  # noqa: F401  (imported once, for every worker)

    children: dict[int, int] = {}
    for index, fd in enumerate(fds):
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                for other in fds:
                    if other != fd:
                        os.close(other)
                os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stdout is the launcher's channel
                _worker(Connection(fd))
                code = 0
            except SystemExit as error:
                code = error.code if isinstance(error.code, int) else 1
            except BaseException:
                log.exception("Bulk worker %d failed.", index + 1)
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = index
    for fd in fds:
        os.close(fd)
    reporting = True
    while children:
        pid, status = os.wait()
        if pid in children:
            index = children.pop(pid)
            if reporting:
                try:
                    print(index, os.waitstatus_to_exitcode(status), flush=True)
                except BrokenPipeError:
                    # The task process is gone: nobody reads; the children are still reaped.
                    reporting = False
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str]) -> None:
    """The launcher's entry point: ``argv`` are the numbers of the sockets to the parent, nothing else."""
    _launch([int(fd) for fd in argv])


if __name__ == "__main__":
    # Through the module's own name: what the parent pickles refers to its classes, not __main__'s.
    from airflow_provider_whatsapp.bulk import workers

    workers.main(sys.argv[1:])
