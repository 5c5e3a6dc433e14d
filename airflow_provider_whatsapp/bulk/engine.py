"""The bulk send engine: many recipients, concurrently, never faster than the rate limit.

One dispatcher hands recipients to concurrent send tasks at an even pace (``max_rate`` per second).
Each send is bracketed by journal records (see :mod:`.progress`): the ``attempt`` record is durable
before the request leaves, the outcome is written when the answer comes back.

What each answer does:

* accepted: recorded with its wamid;
* throttled (HTTP 429, codes 4, 80007, 130429): nothing was sent; the whole send slows down (the
  pace halves and pauses for ``Retry-After``, then recovers step by step) and that recipient is
  tried again first;
* a ``Retry-After`` longer than ``max_retry_after``: the send stops at once, that recipient and the
  rest pending for the next try, instead of sleeping;
* pair rate (131056): nothing was sent; only that recipient waits (Meta's pair interval, doubling), the rest
  go on;
* other retryable failures (connect errors, 503, transient codes): that recipient is tried again
  after an exponential backoff;
* ambiguous (a 5xx or a broken connection after the request left): the message may have been
  delivered, so the recipient is recorded as unknown and never sent again automatically;
* permanent (a Graph code that will not change on retry): recorded as failed;
* fatal for every recipient (bad key, no Maton connection, missing permission, unknown template,
  account locked): the send stops; recipients not yet tried stay pending for the next try.

The dispatcher is the only pacer: the hook is built with its own limiter off and one attempt per
call, so every retry decision is made here, per recipient.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sized
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.bulk.lease import LeaseLostError
from airflow_provider_whatsapp.bulk.progress import (
    ACCEPTED,
    ATTEMPT,
    FAILED,
    RELEASED,
    UNKNOWN,
    Journal,
    JournalError,
    Outcome,
    read_outcomes,
    record,
)
from airflow_provider_whatsapp.errors import (
    MatonNoConnectionError,
    WhatsAppAccountLockedError,
    WhatsAppAuthError,
    WhatsAppConfigurationError,
    WhatsAppDeliveryUnknownError,
    WhatsAppError,
    WhatsAppPairRateLimitError,
    WhatsAppPermanentError,
    WhatsAppPermissionError,
    WhatsAppPhoneNotRegisteredError,
    WhatsAppRateLimitError,
    WhatsAppRetryableError,
    WhatsAppTemplateNotFoundError,
    WhatsAppUnsupportedMessageError,
)
from airflow_provider_whatsapp.hooks._pacing import Pacer
from airflow_provider_whatsapp.hooks._retry import DEFAULT_MAX_RETRY_AFTER, RetryPolicy
from airflow_provider_whatsapp.redact import mask_phone_number
from airflow_provider_whatsapp.spec.limits import MAX_FAILURES_IN_XCOM

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator

log = logging.getLogger(__name__)

# Errors that would fail every remaining recipient the same way: stop instead of sending them all.
FATAL_ERRORS: tuple[type[WhatsAppError], ...] = (
    WhatsAppAuthError,
    WhatsAppConfigurationError,
    MatonNoConnectionError,
    WhatsAppPermissionError,
    WhatsAppAccountLockedError,
    WhatsAppPhoneNotRegisteredError,
    WhatsAppTemplateNotFoundError,
    WhatsAppUnsupportedMessageError,
)

# Consecutive ambiguous answers, with no success between, after which the send stops: something is
# wrong with the gateway and every further send would also end as "unknown".
MAX_CONSECUTIVE_UNKNOWN = 5
# How long outcome records may wait for an attempt record to be synced with (see JournalWriter).
OUTCOME_LINGER_SECONDS = 0.01
# The journal's writer thread ends after this long without records (a new one starts with the next).
WRITER_IDLE_SECONDS = 1.0
# A reason in the XCom result is cut to this many characters: it comes from a server's answer.
MAX_REASON_CHARS = 500
# Recipients named in the error that refuses a changed message.
_CHANGED_SHOWN = 5


@dataclass(frozen=True)
class BulkItem:
    """One recipient (normalised), the payload to send them, and the payload's fingerprint.

    The fingerprint is recorded with each attempt, so that a later try can tell whether the recipient
    was sent this message or a different one; ``None`` leaves that check out.
    """

    to: str
    payload: dict[str, Any]
    fingerprint: str | None = None


@dataclass
class BulkConfig:
    """How the engine paces and retries.

    :param max_rate: most sends per second.
    :param max_concurrency: most requests in flight at once.
    :param max_attempts: attempts per recipient, the first included, for failures that are safe to retry.
    :param max_retry_seconds: no retry of a recipient starts this long after its first attempt.
    :param pair_backoff: first wait after a pair-rate error (131056); doubles for each further one.
    :param transient_backoff: first wait after another retryable failure; doubles for each further one.
    :param max_retry_after: the longest ``Retry-After`` waited for; a longer one stops the send.
    :param resend_unknown: send again to recipients a previous try left unknown: ``True`` for all, or
        the recipients (normalised numbers) to send again.
    :param retry_failed: send again to recipients that failed in a previous try.
    :param resend_changed: send the new message to recipients a previous try sent (or may have sent)
        a different one; otherwise such a send is refused before anything goes out.
    :param keep_accepted: keep each accepted recipient's wamid in :attr:`BulkResult.accepted` (what
        ``confirm`` waits on); off, a send to a million recipients does not hold a million ids.
    :param changes_checked: the caller has already refused a message that changed for a recipient an
        earlier try sent (:func:`refuse_changed`), so the engine does not build every item again to
        look; only meaningful with ``resend_changed=False``.
    """

    max_rate: float
    max_concurrency: int
    max_attempts: int = 6
    max_retry_seconds: float = 300.0
    pair_backoff: float = RetryPolicy.pair_delay
    transient_backoff: float = RetryPolicy.base_delay
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    resend_unknown: bool | Collection[str] = False
    retry_failed: bool = True
    resend_changed: bool = False
    keep_accepted: bool = True
    changes_checked: bool = False

    @property
    def retry_policy(self) -> RetryPolicy:
        """The hook's retry rules with this send's bounds, so both back off and wait alike."""
        return RetryPolicy(
            max_attempts=self.max_attempts,
            max_seconds=self.max_retry_seconds,
            base_delay=self.transient_backoff,
            max_retry_after=self.max_retry_after,
            pair_delay=self.pair_backoff,
        )

    def resends(self, to: str) -> bool:
        if isinstance(self.resend_unknown, bool):
            return self.resend_unknown
        return to in self.resend_unknown


@dataclass
class BulkResult:
    """What a bulk send did; ``as_dict()`` is the operator's XCom value."""

    total: int = 0
    sent: int = 0
    skipped: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[dict[str, Any]] = field(default_factory=list)
    not_sent: int = 0
    throttled: int = 0
    elapsed_seconds: float = 0.0
    aborted: WhatsAppError | None = None
    progress_path: str = ""
    #: Recipient -> wamid of every message WhatsApp accepted, in this try or (skipped) an earlier one;
    #: ``None`` where a damaged journal lost the id. Not in :meth:`as_dict`: what ``confirm`` waits on.
    #: Empty unless :attr:`BulkConfig.keep_accepted`.
    accepted: dict[str, str | None] = field(default_factory=dict)

    @property
    def problem_ratio(self) -> float:
        """Recipients that failed or may not have got the message, over all recipients."""
        return (len(self.failed) + len(self.unknown)) / self.total if self.total else 0.0

    def as_dict(self, *, max_failures: int = MAX_FAILURES_IN_XCOM) -> dict[str, Any]:
        """The counts, and the first ``max_failures`` failed and unknown recipients; the journal
        (``progress_path``) has every one, ``failures_omitted``/``unknown_omitted`` say how many more.
        """
        rate = self.sent / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0
        return {
            "total": self.total,
            "sent": self.sent,
            "skipped": self.skipped,
            "failed": len(self.failed),
            "unknown": len(self.unknown),
            "not_sent": self.not_sent,
            "failures": [_shown(entry) for entry in self.failed[:max_failures]],
            "failures_omitted": max(0, len(self.failed) - max_failures),
            "unknown_recipients": [_shown(entry) for entry in self.unknown[:max_failures]],
            "unknown_omitted": max(0, len(self.unknown) - max_failures),
            "throttled": self.throttled,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "rate_per_second": round(rate, 2),
            "progress_path": self.progress_path,
        }


def _shown(entry: dict[str, Any]) -> dict[str, Any]:
    reason = entry.get("reason")
    if isinstance(reason, str) and len(reason) > MAX_REASON_CHARS:
        return {**entry, "reason": reason[: MAX_REASON_CHARS - 1] + "\u2026"}
    return entry


class JournalWriter:
    """Group commit on one long-lived thread: records written while an append is in progress go
    together in the next one, and each :meth:`write` returns once its record is durable.

    One thread fed under a lock, rather than a thread-pool hop per batch: at a few hundred sends a
    second the hop, not the write, was most of the journal's cost. Attempt records are written at
    once; outcomes alone wait up to :data:`OUTCOME_LINGER_SECONDS` to share an attempt's sync. The
    thread ends after :data:`WRITER_IDLE_SECONDS` without records, or at :meth:`aclose`.
    """

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._lock = threading.Lock()
        self._more = threading.Condition(self._lock)
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._thread: threading.Thread | None = None
        self._closing = False
        self._urgent = False  # an attempt record is pending: its request waits for it

    async def write(self, entry: dict[str, Any]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._pending.append((entry, future))
            if entry.get("state") == ATTEMPT:
                self._urgent = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="whatsapp-bulk-journal", daemon=True)
                self._thread.start()
            else:
                self._more.notify()
        await future

    async def aclose(self) -> None:
        """Write what is pending, then end the thread (waiting for it without blocking the loop)."""
        with self._lock:
            self._closing = True
            self._more.notify()
            thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending:
                    woken = not self._closing and self._more.wait(timeout=WRITER_IDLE_SECONDS)
                    if not woken and not self._pending:
                        self._thread = None
                        return
                # Outcomes alone wait a little for company: only the count waits on them, while each
                # attempt holds its request back. Most then share the sync of the next attempt.
                until = time.monotonic() + OUTCOME_LINGER_SECONDS
                while not self._urgent and not self._closing:
                    left = until - time.monotonic()
                    if left <= 0:
                        break
                    self._more.wait(timeout=left)
                batch, self._pending, self._urgent = self._pending, [], False
            error: BaseException | None = None
            try:
                self.journal.append([entry for entry, _ in batch])
            except BaseException as exc:  # handed to every waiting writer, which decides
                error = exc
            loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for _, future in batch:
                loops.setdefault(future.get_loop(), []).append(future)
            for loop, futures in loops.items():
                with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits any more
                    loop.call_soon_threadsafe(_settle, futures, error)


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue  # its writer was cancelled meanwhile
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


@dataclass
class _Job:
    item: BulkItem
    attempts: int = 0
    first_attempt: float | None = None
    pair_waits: int = 0


class MessageChangedError(WhatsAppPermanentError):
    """Recipients an earlier try sent (or may have sent) one message would now get another.

    Not retryable: every new try would meet the same journal. Raised before anything is sent.
    """


def changed_recipients(
    fingerprints: Mapping[str, str | None] | Iterable[tuple[str, str | None]], prior: Mapping[str, Outcome]
) -> list[tuple[str, str]]:
    """``(recipient, earlier state)`` of each recipient that an earlier try sent, or may have sent, a
    payload with another fingerprint than now. Journals without fingerprints compare as unchanged.

    :param fingerprints: recipient -> fingerprint, or ``(recipient, fingerprint)`` pairs (a stream:
        not read at all when there is no earlier try).
    """
    changed: list[tuple[str, str]] = []
    if not prior:
        return changed
    pairs = fingerprints.items() if isinstance(fingerprints, Mapping) else fingerprints
    for to, fingerprint in pairs:
        outcome = prior.get(to)
        if (
            outcome is not None
            and outcome.state in (ACCEPTED, ATTEMPT, UNKNOWN)
            and outcome.fingerprint is not None
            and fingerprint is not None
            and outcome.fingerprint != fingerprint
        ):
            changed.append((to, outcome.state))
    return changed


def refuse_changed(changed: list[tuple[str, str]], location: str) -> None:
    """Raise :class:`MessageChangedError` when ``changed`` (from :func:`changed_recipients`) is not empty."""
    if not changed:
        return
    accepted = sum(1 for _, state in changed if state == ACCEPTED)
    shown = ", ".join(mask_phone_number(to) for to, _ in changed[:_CHANGED_SHOWN])
    more = f" and {len(changed) - _CHANGED_SHOWN} more" if len(changed) > _CHANGED_SHOWN else ""
    raise MessageChangedError(
        f"{len(changed)} recipient(s) were already sent a different message by an earlier try of this task "
        f"({accepted} accepted, {len(changed) - accepted} possibly delivered): {shown}{more}. The message or "
        "their parameters changed since, so nothing was sent. To send them the new message as well, set "
        "resend_changed=True; to finish the earlier send, restore the earlier message. Progress: "
        f"{location}"
    )


class _Feed:
    """The recipients ready to send: a deque that retries go back into (first), topped up from the
    planned items one at a time whenever it runs empty, so a million recipients are never all queued.

    ``len()`` counts the queue and the items not yet taken (some of which an earlier try may have
    done already): an upper bound until :meth:`drain`.
    """

    def __init__(self, jobs: Iterator[_Job], total: int) -> None:
        self._queue: deque[_Job] = deque()
        self._jobs: Iterator[_Job] | None = jobs
        self._total = total
        self.taken = 0  # planned items taken so far, by the job generator

    def _fill(self) -> bool:
        if self._jobs is not None:
            job = next(self._jobs, None)
            if job is None:
                self._jobs = None
            else:
                self._queue.append(job)
                return True
        return False

    def __bool__(self) -> bool:
        return bool(self._queue) or self._fill()

    def __len__(self) -> int:
        return len(self._queue) + (max(0, self._total - self.taken) if self._jobs is not None else 0)

    def popleft(self) -> _Job:
        if not self._queue:
            self._fill()
        return self._queue.popleft()

    def appendleft(self, job: _Job) -> None:
        self._queue.appendleft(job)

    def append(self, job: _Job) -> None:
        self._queue.append(job)

    def drain(self) -> None:
        """Take the rest of the planned items without sending them: the queue then holds exactly the
        recipients still to send (and those an earlier try finished are counted as such)."""
        while self._fill():
            pass


class BulkSender:
    """Runs one bulk send. Use :func:`run_bulk`.

    :param items: the recipients with their payloads; any iterable, taken one at a time as the send
        needs them (iterated once more first when resuming over a journal, to find changed messages).
    :param total: how many items there are, when ``items`` has no ``len()``.
    """

    def __init__(
        self,
        items: Iterable[BulkItem],
        send: Callable[[dict[str, Any]], Awaitable[str]],
        journal: Journal,
        config: BulkConfig,
        prior: Mapping[str, Outcome] | None = None,
        *,
        total: int | None = None,
    ) -> None:
        if total is None:
            if not isinstance(items, Sized):
                raise TypeError("BulkSender needs total= when items has no len()")
            total = len(items)
        self.items = items
        self.prior = prior
        self.send = send
        self.journal = journal
        self.config = config
        self.pacer = Pacer(config.max_rate)
        self.writer = JournalWriter(journal)
        self.result = BulkResult(total=total, progress_path=journal.location)
        self._ready = _Feed(iter(()), 0)
        self._delayed: list[tuple[float, int, _Job]] = []
        self._sequence = 0
        self._inflight: set[asyncio.Task[None]] = set()
        self._waker: asyncio.Future[None] | None = None  # set while the dispatcher sleeps
        self._paced = False
        self._consecutive_unknown = 0
        self._last_report = 0.0

    # --- resume ---------------------------------------------------------------------------------

    def _plan(self, prior: Mapping[str, Outcome]) -> None:
        changed: set[str] = set()
        if prior and not (self.config.changes_checked and not self.config.resend_changed):
            # One pass before anything is sent: a changed message is refused whole, not half-way.
            differing = changed_recipients(
                ((item.to, item.fingerprint) for item in self.items if item.to in prior), prior
            )
            if not self.config.resend_changed:
                refuse_changed(differing, self.journal.location)
            changed = {to for to, _ in differing}
        self._ready = _Feed(self._jobs(prior, changed), self.result.total)

    def _jobs(self, prior: Mapping[str, Outcome], changed: Collection[str]) -> Iterator[_Job]:
        """The items to send, in order, each as it is needed; those an earlier try finished are
        counted in the result as they pass."""
        for item in self.items:
            self._ready.taken += 1
            outcome = prior.get(item.to)
            if outcome is None or self._resumed(item, outcome, item.to in changed):
                yield _Job(item)

    def _resumed(self, item: BulkItem, outcome: Outcome, changed: bool) -> bool:
        """Whether to send ``item`` again given what an earlier try did; if not, it is counted."""
        state = outcome.state
        if state == RELEASED:
            return True
        if changed:
            log.warning(
                "Sending the new message to %s, sent a different one before, as asked.",
                mask_phone_number(item.to),
            )
            return True
        if state == ACCEPTED:
            self.result.skipped += 1
            if self.config.keep_accepted:
                self.result.accepted[item.to] = outcome.wamid
            return False
        if state in (ATTEMPT, UNKNOWN):
            if self.config.resends(item.to):
                log.warning(
                    "Sending again to %s, left unknown by a previous try, as asked.",
                    mask_phone_number(item.to),
                )
                return True
            reason = outcome.reason or (
                "A previous try stopped while this message was being sent: it may have been "
                "delivered. Check the recipient's chat; list the recipient in resend_unknown "
                "to send it again."
            )
            self.result.unknown.append(_entry(item.to, outcome.code, reason, previous=True))
            return False
        if state == FAILED and not self.config.retry_failed:
            self.result.failed.append(
                _entry(item.to, outcome.code, outcome.reason or "", previous=True)
                | {"retryable": outcome.retryable}
            )
            return False
        return True

    # --- run ------------------------------------------------------------------------------------

    async def run(self) -> BulkResult:
        prior = self.prior if self.prior is not None else await asyncio.to_thread(read_outcomes, self.journal)
        self._plan(prior)
        if prior:
            log.info(
                "Resuming: the journal knows %d recipient(s) from earlier tries; those accepted are "
                "skipped, those left unknown are not sent again.",
                len(prior),
            )
        started = time.monotonic()
        self._last_report = started
        try:
            await self._dispatch()
        finally:
            if self._inflight:
                for task in self._inflight:
                    task.cancel()
                await asyncio.gather(*self._inflight, return_exceptions=True)
            self.result.elapsed_seconds = time.monotonic() - started
            await self.writer.aclose()
        self._ready.drain()
        self.result.not_sent = len(self._ready) + len(self._delayed)
        return self.result

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while self._ready or self._delayed or self._inflight:
            if self.result.aborted is not None and not self._inflight:
                return
            now = time.monotonic()
            while self._delayed and self._delayed[0][0] <= now:
                self._ready.appendleft(heapq.heappop(self._delayed)[2])
            timeout: float | None = None
            can_start = self.result.aborted is None and len(self._inflight) < self.config.max_concurrency
            paced = bool(self._ready) and can_start
            if paced:
                timeout = self.pacer.wait_time()
                if timeout <= 0:
                    self._start(self._ready.popleft())
                    continue
            if self._delayed and self.result.aborted is None:
                until_due = max(0.0, self._delayed[0][0] - now)
                timeout = until_due if timeout is None else min(timeout, until_due)
            self._report()
            await self._sleep(loop, timeout, paced=paced)

    async def _sleep(self, loop: asyncio.AbstractEventLoop, timeout: float | None, *, paced: bool) -> None:
        """Until ``timeout`` s have passed (``None``: no limit) or :meth:`_finished` wakes the dispatcher.

        One future and one timer of the loop, not a ``wait_for`` task per wake. While the dispatcher
        only waits for the pace (``paced``), a send that ends changes nothing it waits for, so it is
        not woken for it (unless the send stopped everything).
        """
        waker: asyncio.Future[None] = loop.create_future()
        self._waker, self._paced = waker, paced
        timer = None if timeout is None else loop.call_at(loop.time() + timeout, _wake_up, waker)
        try:
            await waker
        finally:
            self._waker = None
            if timer is not None:
                timer.cancel()

    def stop(self, reason: WhatsAppError) -> None:
        """Start no further send (those in flight finish); ``reason`` is why, unless the send had
        already stopped for one of its own. Recipients not started stay pending for a new try."""
        if self.result.aborted is None:
            self.result.aborted = reason
        if self._waker is not None:
            _wake_up(self._waker)

    def _start(self, job: _Job) -> None:
        self.pacer.dispatched()
        task = asyncio.create_task(self._attempt(job))
        self._inflight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None and self.result.aborted is None:
            error = task.exception()
            self.result.aborted = (
                error if isinstance(error, WhatsAppError) else JournalError(f"Bulk send stopped: {error!r}")
            )
        if self._waker is not None and (not self._paced or self.result.aborted is not None):
            _wake_up(self._waker)

    def _report(self) -> None:
        now = time.monotonic()
        if now - self._last_report < 5:
            return
        self._last_report = now
        r = self.result
        log.info(
            "Bulk send: %d sent, %d skipped, %d failed, %d unknown, %d to go (pace %.1f/s).",
            r.sent,
            r.skipped,
            len(r.failed),
            len(r.unknown),
            len(self._ready) + len(self._delayed) + len(self._inflight),
            self.pacer.rate,
        )

    async def _journal(self, entry: dict[str, Any]) -> None:
        try:
            await self.writer.write(entry)
        except WhatsAppError:
            raise  # already says what happened, e.g. the lease on the journal was lost
        except Exception as error:
            raise JournalError(
                f"Could not record bulk send progress in {self.journal.location}: {error!r}. Stopped so "
                "that no message is sent without a record of it."
            ) from error

    async def _attempt(self, job: _Job) -> None:
        to = job.item.to
        job.attempts += 1
        if job.first_attempt is None:
            job.first_attempt = time.monotonic()
        try:
            await self._journal(record(to, ATTEMPT, attempt=job.attempts, fingerprint=job.item.fingerprint))
        except Exception:
            self._ready.appendleft(job)  # no durable attempt, nothing sent: pending, and counted so
            raise
        try:
            async with self.pacer.sending():
                # The attempt record may have become durable only after the lease ran out, unseen by a
                # run that took the journal over meanwhile: that run may send to this recipient, so
                # this one must not. Raised past every handler below: nothing was sent.
                self.journal.check_lease()
                wamid = await self.send(job.item.payload)
        except LeaseLostError:
            raise  # before the send: stop, with the attempt record as the last word on this recipient
        except WhatsAppDeliveryUnknownError as error:
            await self._unknown(to, error.code, error.message)
        except WhatsAppRetryableError as error:
            await self._retry_later(job, error)
        except FATAL_ERRORS as error:
            # Counted before the outcome is recorded, here and below: a record that fails to be
            # written stops the send, but the count still says what happened to the recipient.
            self.result.failed.append(_entry(to, error.code, error.message) | {"retryable": False})
            if self.result.aborted is None:
                self.result.aborted = error
            await self._journal(record(to, FAILED, code=error.code, reason=error.message))
        except WhatsAppPermanentError as error:
            self.result.failed.append(_entry(to, error.code, error.message) | {"retryable": False})
            self._consecutive_unknown = 0
            await self._journal(record(to, FAILED, code=error.code, reason=error.message))
        except WhatsAppError as error:
            # Answered, but not as a send should be (e.g. no message id): it may have gone through.
            await self._unknown(to, error.code, error.message)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await self._unknown(to, None, f"The send failed unexpectedly after it started: {error!r}")
        else:
            self.result.sent += 1
            if self.config.keep_accepted:
                self.result.accepted[to] = wamid
            self._consecutive_unknown = 0
            self.pacer.succeeded()
            await self._journal(record(to, ACCEPTED, wamid=wamid))

    async def _unknown(self, to: str, code: int | None, reason: str) -> None:
        self.result.unknown.append(_entry(to, code, reason))
        self._consecutive_unknown += 1
        if self._consecutive_unknown >= MAX_CONSECUTIVE_UNKNOWN and self.result.aborted is None:
            self.result.aborted = WhatsAppDeliveryUnknownError(
                f"{self._consecutive_unknown} sends in a row ended without a clear answer (last: {reason}). "
                "Stopped so that more recipients are not left in doubt; check the gateway.",
                code=code,
            )
        await self._journal(record(to, UNKNOWN, code=code, reason=reason))

    async def _retry_later(self, job: _Job, error: WhatsAppRetryableError) -> None:
        to = job.item.to
        throttled = isinstance(error, WhatsAppRateLimitError)
        policy = self.config.retry_policy
        if throttled:
            self.result.throttled += 1
        # Hold everyone back at once, not after the journal write below: no send may leave meanwhile.
        if policy.waits_too_long(error):
            # Sleeping that long would hold a worker for nothing: stop, this recipient and the rest
            # pending (released) for the task's next try.
            reason = policy.gave_up_because(error, job.attempts)
            if reason not in error.message:
                error.message = f"{error.message} {reason}"
            if self.result.aborted is None:
                self.result.aborted = error
            self._ready.appendleft(job)
            await self._journal(record(to, RELEASED, code=error.code, reason=error.message))
            return
        if throttled:
            self.pacer.throttled(error.retry_after)
        try:
            await self._journal(record(to, RELEASED, code=error.code, reason=error.message))
        except Exception:
            self._ready.appendleft(job)  # nothing was sent: pending, for the next try
            raise
        assert job.first_attempt is not None
        if isinstance(error, WhatsAppPairRateLimitError):
            job.pair_waits += 1
        # The hook's own rule: backoff, or the pair-rate wait, never less than Retry-After, within the
        # attempts and time allowed. A throttled recipient waits behind the pacer's pause in any case.
        delay = policy.delay_before_retry(
            job.attempts, error, time.monotonic() - job.first_attempt, pair_refusals=job.pair_waits
        )
        if delay is None:
            reason = f"{error.message} Gave up after {job.attempts} attempt(s); nothing was delivered."
            self.result.failed.append(_entry(to, error.code, reason) | {"retryable": True})
            await self._journal(record(to, FAILED, code=error.code, reason=reason, retryable=True))
            return
        log.info(
            "Send to %s refused for now (%s); trying again in %.1f s.",
            mask_phone_number(to),
            error.code,
            delay,
        )
        if delay <= 0:
            self._ready.appendleft(job)
        else:
            self._sequence += 1
            heapq.heappush(self._delayed, (time.monotonic() + delay, self._sequence, job))


def _wake_up(waker: asyncio.Future[None]) -> None:
    if not waker.done():
        waker.set_result(None)


def _entry(to: str, code: int | None, reason: str, *, previous: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"to": to, "code": code, "reason": reason}
    if previous:
        entry["previous_try"] = True
    return entry


async def run_bulk(
    items: Iterable[BulkItem],
    send: Callable[[dict[str, Any]], Awaitable[str]],
    journal: Journal,
    config: BulkConfig,
    *,
    prior: Mapping[str, Outcome] | None = None,
    total: int | None = None,
) -> BulkResult:
    """Send ``items`` with ``send`` (which returns the wamid), recording progress in ``journal``.

    :param items: taken one at a time as the send needs them (see :class:`BulkSender`).
    :param prior: the journal's outcomes, when the caller has read them already (see
        :func:`~airflow_provider_whatsapp.bulk.progress.claim`); else they are read here.
    :param total: how many items there are, when ``items`` has no ``len()``.
    """
    return await BulkSender(items, send, journal, config, prior, total=total).run()
