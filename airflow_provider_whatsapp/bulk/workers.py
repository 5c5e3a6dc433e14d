"""One bulk send in several worker processes, for rates one core cannot keep up with.

The task's process (the parent) keeps everything that needs Airflow or decides for the whole send:
it resolved the connection, holds the journal's lease and read what earlier tries did. The workers
come from one fresh interpreter (``python -m airflow_provider_whatsapp.bulk.workers``: nothing is
forked from the task's process, which runs threads) that imports the engine once and forks them,
like a fork server: Airflow's import, seconds of CPU, is paid once, not once per worker. Each
worker sends one share of the recipients with the single-process engine:

* a recipient belongs to one worker per run (:func:`~.items.share_of`, stable across processes).
  Recipients from a local file are read by each worker itself, its share only (bounded memory
  everywhere); others are handed out by the parent as it takes them from the plan;
* each worker paces ``max_rate / N`` and keeps ``max_concurrency / N`` in flight, so together they
  stay under ``max_rate`` as the server counts;
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
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.bulk.engine import BulkConfig, BulkItem, BulkResult, BulkSender
from airflow_provider_whatsapp.bulk.items import PlannedItems, share_of
from airflow_provider_whatsapp.bulk.lease import Holder, Lease, LeaseLostError
from airflow_provider_whatsapp.bulk.sources import RecipientSource
from airflow_provider_whatsapp.errors import WhatsAppError
from airflow_provider_whatsapp.redact import scrub
from airflow_provider_whatsapp.spec.limits import MAX_BULK_PROCESSES

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from airflow_provider_whatsapp.bulk.progress import Journal, Outcome
    from airflow_provider_whatsapp.hooks._settings import MatonSettings

log = logging.getLogger(__name__)

_MODULE = "airflow_provider_whatsapp.bulk.workers"

# How often the parent looks at its lease and its workers, and a worker at what the parent said.
POLL_SECONDS = 0.05
# Recipients sent to a worker per message while it starts.
_CHUNK = 2_000
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


def share_config(config: BulkConfig, count: int) -> BulkConfig:
    """``config`` for one of ``count`` workers: its share of the rate and of the requests in flight."""
    return dataclasses.replace(
        config,
        max_rate=config.max_rate / count,
        max_concurrency=max(1, math.ceil(config.max_concurrency / count)),
    )


class WorkerLease(Lease):
    """A worker's view of the lease its parent holds: lost once the parent says so, once its last
    renewal ran out (``valid_until``, wall-clock time), or once the parent is gone. Never taken or
    released by the worker."""

    def __init__(self) -> None:
        self.lost_reason: str | None = None
        self.until = math.inf

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
    started = time.monotonic()
    launcher, workers = _start_workers(journal, config, settings, processes, dict(hook_kwargs or {}))
    try:
        _hand_out(workers, items, prior)
        if _all_ready(launcher, workers):
            log.info(
                "%d bulk worker processes (pids %s) ready in %.1f s (%s recipients each), each at %g/s.",
                len(workers),
                ", ".join(str(w.pid) for w in workers),
                time.monotonic() - started,
                "/".join(str(w.size) for w in workers),
                workers[0].spec.config.max_rate,
            )
            for worker in workers:
                _send(worker, ("go", None))  # together: each paces its share from the same moment
        _supervise(launcher, workers, journal)
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
                journal=journal.shard(index, WorkerLease()),
                config=share_config(config, count),
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


def _hand_out(workers: list[_Worker], items: Iterable[BulkItem], prior: Mapping[str, Outcome]) -> None:
    """Give each worker its recipients and what earlier tries did to them, in chunks, then the end."""
    count = len(workers)
    if _rereadable(items):
        assert isinstance(items, PlannedItems)
        for index, worker in enumerate(workers):
            _send(worker, ("share", items.plan.items(share=(index, count))))
        _in_chunks(workers, "prior", ((to, (to, outcome)) for to, outcome in prior.items()))
    else:
        _in_chunks(workers, "items", ((item.to, (item, prior.get(item.to))) for item in items))
    for worker in workers:
        _send(worker, ("end", None))


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


def _send(worker: _Worker, message: Any) -> None:
    try:
        worker.conn.send(message)
    except OSError as error:
        raise BulkWorkerError(
            f"{worker.spec.name} ended while it was being started "
            f"({error!r}); see its lines in the task log. Nothing was sent by this try of it."
        ) from None


def _supervise(launcher: _Launcher, workers: list[_Worker], journal: Journal) -> None:
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
                _receive(launcher, worker)
                if worker.failure is not None or (
                    worker.result is not None
                    and worker.result.aborted is not None
                    and not isinstance(worker.result.aborted, WorkerStoppedError)
                ):
                    _stop_others(workers, worker)


def _receive(launcher: _Launcher, worker: _Worker) -> bool:
    """Read one message of ``worker``; ``False`` once it is done (reported, failed or died)."""
    try:
        kind, value = worker.conn.recv()
    except (EOFError, OSError):
        kind, value = "died", None
    if kind == "ready":
        worker.pid, worker.size = value
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
        merged.not_sent += result.not_sent
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
    items: list[BulkItem] = []
    share: PlannedItems | None = None
    prior: dict[str, Outcome] = {}
    while True:
        kind, value = conn.recv()
        if kind == "end":
            break
        if kind == "share":
            share = value
        elif kind == "prior":
            prior.update(value)
        elif kind == "items":
            for item, outcome in value:
                items.append(item)
                if outcome is not None:
                    prior[item.to] = outcome
        else:
            return  # stopped while it was being briefed: nothing sent
    mine: PlannedItems | list[BulkItem] = items if share is None else share
    lease = spec.journal.lease
    assert isinstance(lease, WorkerLease)
    conn.send(("ready", (os.getpid(), len(mine))))
    kind, reason = conn.recv()
    if kind != "go":  # another worker failed to start: nothing sent, everything pending
        stopped = BulkResult(total=len(mine), not_sent=len(mine), progress_path=spec.journal.location)
        stopped.aborted = WorkerStoppedError(str(reason))
        conn.send(("result", (stopped, None)))
        return
    stop = threading.Event()
    reasons: list[str] = []
    listener = threading.Thread(
        target=_listen, args=(conn, lease, stop, reasons), name="whatsapp-bulk-parent", daemon=True
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
    conn.send(("result", (result, (started, time.time()))))


def _listen(conn: Connection, lease: WorkerLease, stop: threading.Event, reasons: list[str]) -> None:
    """What the parent says: the lease's state, or stop. Its end closing means it is gone."""
    while True:
        try:
            kind, *values = conn.recv()
        except (EOFError, OSError):
            lease.lost_reason = "the task process that holds the journal's lease is gone"
            reasons.append(lease.lost_reason)
            stop.set()
            return
        if kind == "lease":
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
    items: PlannedItems | list[BulkItem],
    prior: dict[str, Outcome],
    stop: threading.Event,
    reasons: list[str],
) -> BulkResult:
    from airflow_provider_whatsapp.hooks.maton import MatonHook

    hook = MatonHook.from_settings(spec.settings, **spec.hook_kwargs)

    async def send(payload: dict[str, Any]) -> str:
        return MatonHook.message_id(await hook.asend_message(payload))

    sender = BulkSender(items, send, spec.journal, spec.config, prior)

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
        return await sender.run()
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
    while children:
        pid, status = os.wait()
        if pid in children:
            print(children.pop(pid), os.waitstatus_to_exitcode(status), flush=True)


def main(argv: list[str]) -> None:
    """The launcher's entry point: ``argv`` are the numbers of the sockets to the parent, nothing else."""
    _launch([int(fd) for fd in argv])


if __name__ == "__main__":
    # Through the module's own name: what the parent pickles refers to its classes, not __main__'s.
    from airflow_provider_whatsapp.bulk import workers

    workers.main(sys.argv[1:])
