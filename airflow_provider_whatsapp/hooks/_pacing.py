"""How fast requests leave: one window of departures, counted the way the server counts them.

Maton (per account) and Graph (per number) count a request when it *arrives* and refuse the one too
many in a window of one second. Both pacers of the provider keep to that with one design,
:class:`RequestWindow`:

* the hook's limiter (:func:`limiter_for`) is a :class:`RequestWindow` at the connection's fixed
  ``rate_limit``, shared by every thread and event loop of a process that uses the same account;
* the bulk engine's :class:`Pacer` is the same window at ``max_rate``, plus even spacing at a rate that
  halves on throttling and grows back, and pauses for ``Retry-After``.

Nothing else in the package keeps a window of departures (a test checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import heapq
import math
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

# The window is counted this much longer than the server's, so that jitter in arrival times (a sleep
# that ends late, a thread switch between the clock read and the socket write) never pushes the
# server's count over. It only holds a request back when jitter bunched requests up.
WINDOW_SAFETY = 1.015
# The bulk engine spaces sends this much wider than its rate: the even pace stays below the window's
# cap, so the cap only acts on bunching and the pace, not the cap, sets the throughput.
PACE_SAFETY = 1.02
# After a throttling answer the bulk pace halves, but never below this many sends a second (or the
# limit, if that is lower): slower would stretch a large send for little relief.
SLOWEST_PACE = 1.0
# ... and grows back by this fraction of the limit with each accepted send.
RECOVERY_STEP = 1 / 20
# How many pace slots a dispatcher that woke late may make up, instead of losing that time for good;
# the window still caps what reaches the server.
CATCH_UP_SLOTS = 2


class Departure:
    """One request in the window: when it left and, once answered, when its answer (or failure) came.

    ``left`` is first the moment the request was let go, then (once :func:`on_the_wire` says so) the
    moment its first byte was written: a new connection, a TLS handshake or a wait for a pooled
    connection before that is not part of its round trip.
    """

    __slots__ = ("answered", "left", "written")

    def __init__(self, left: float) -> None:
        self.left = left
        self.written = False
        self.answered: float | None = None


# The request the current thread or task is sending through a window, for the transport's trace hook.
_sending: contextvars.ContextVar[tuple[RequestWindow, Departure] | None] = contextvars.ContextVar(
    "whatsapp_sending", default=None
)


def through_a_window() -> bool:
    """Whether the request being sent here goes through a window (only then is it worth tracing)."""
    return _sending.get() is not None


def on_the_wire() -> None:
    """The request being sent here starts to be written now (called by the transport's trace hook;
    nothing happens outside :meth:`RequestWindow.sending`).
    """
    current = _sending.get()
    if current is not None:
        window, entry = current
        window.written(entry)


class RequestWindow:
    """At most ``floor(rate)`` requests in any ``floor(rate) / rate`` seconds as the server counts them.

    A request can reach the server well after it left (a new connection, a TLS handshake, a busy
    machine), and one that arrives late bunches up with the ones after it. So the window counts:

    * a request in flight as arriving *now*: it may still be on its way, so while ``burst`` of them are
      in flight nothing else leaves until one is answered;
    * an answered one as arriving at its answer minus the quickest round trip seen (a request slower
      than that was late on the way in), and never before it left.

    A request is counted when it leaves (:meth:`try_depart`, :meth:`depart`, :meth:`depart_blocking`),
    never booked ahead, so a caller that wakes late cannot overtake the count. Safe across threads and
    event loops: an answer wakes whoever waits for room.

    :param rate: requests per second, more than 0.
    :param clock: the monotonic clock (tests pass their own).
    """

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of requests per second, not {rate!r}")
        self.rate = rate
        self.burst = max(1, math.floor(rate))
        #: How long a request stays in the window after it arrived.
        self.span = self.burst / rate * WINDOW_SAFETY
        self._clock = clock
        # In flight: counted, each as arriving now, until answered.
        self._in_flight = 0
        # Answered and still in the window: a heap of (arrival, sequence, entry), so that each departure
        # and answer costs O(log n), not a look at every request of the last second.
        self._arrived: list[tuple[float, int, Departure]] = []
        self._sequence = 0
        self._quickest = math.inf
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def _arrival(self, entry: Departure) -> float:
        """Latest time the server may have counted the answered ``entry``."""
        assert entry.answered is not None
        return max(entry.left, entry.answered - self._quickest)

    def _room(self, now: float) -> float | None:
        """0.0 when one more request fits now, else how long until one may (``None``: not before an
        answer). Drops the entries that have left the window. Called with the lock held.
        """
        horizon = now - self.span
        arrived = self._arrived
        # Arrivals only move earlier (the quickest round trip only shrinks) and the horizon only later:
        # an entry once out of the window stays out.
        while arrived and arrived[0][0] <= horizon:
            heapq.heappop(arrived)
        if self._in_flight + len(arrived) < self.burst:
            return 0.0
        return max(0.0, arrived[0][0] + self.span - now) if arrived else None

    def room(self) -> tuple[bool, float | None]:
        """Whether one more request fits now, and else how long until one may (``None``: not before a
        request in flight is answered).
        """
        with self._lock:
            wait = self._room(self._clock())
        return wait == 0.0, wait

    def try_depart(self) -> tuple[Departure | None, float | None]:
        """Count one more request as leaving now if it fits: ``(departure, 0.0)``; else ``(None, wait)``
        with the wait as :meth:`room` gives it.
        """
        with self._lock:
            return self._try_depart()

    def _try_depart(self) -> tuple[Departure | None, float | None]:
        now = self._clock()
        wait = self._room(now)
        if wait != 0.0:
            return None, wait
        entry = Departure(now)
        self._in_flight += 1
        return entry, 0.0

    def depart_blocking(self) -> Departure:
        """Wait (sleeping this thread) until one more request fits, then count it as leaving now."""
        with self._answered:
            while True:
                # The look and the wait under one hold of the lock: no answer can slip in between.
                entry, wait = self._try_depart()
                if entry is not None:
                    return entry
                self._answered.wait(timeout=wait)

    async def depart(self) -> Departure:
        """Wait (without blocking the event loop) until one more request fits, then count it as leaving."""
        with self._lock:
            entry, _ = self._try_depart()
        if entry is not None:
            return entry  # the usual case: no waiting, nothing to register
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()
        waiter = (loop, changed)
        try:
            while True:
                with self._lock:
                    # Registered before the look, so an answer between the look and the wait wakes us.
                    self._async_waiters.add(waiter)
                    changed.clear()
                    entry, wait = self._try_depart()
                if entry is not None:
                    return entry
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), timeout=wait)
        finally:
            with self._lock:
                self._async_waiters.discard(waiter)

    @contextlib.contextmanager
    def sending(self) -> Iterator[Departure]:
        """Around one request (sync): waits for room, counts it as leaving, and records its answer."""
        entry = self.depart_blocking()
        token = _sending.set((self, entry))
        try:
            yield entry
        finally:
            _sending.reset(token)
            self.answered(entry)

    @contextlib.asynccontextmanager
    async def asending(self) -> AsyncIterator[Departure]:
        """Around one request (async): as :meth:`sending`, waiting without blocking the event loop."""
        entry = await self.depart()
        token = _sending.set((self, entry))
        try:
            yield entry
        finally:
            _sending.reset(token)
            self.answered(entry)

    def written(self, entry: Departure) -> None:
        """The request of ``entry`` starts to be written now: its round trip counts from here."""
        with self._lock:
            if not entry.written and entry.answered is None:
                entry.written = True
                entry.left = self._clock()

    def answered(self, entry: Departure) -> None:
        """The request of ``entry`` got an answer (or failed): it has reached the server, or never will."""
        with self._lock:
            if entry.answered is not None:
                return  # counted once
            now = self._clock()
            entry.answered = now
            self._in_flight -= 1
            if now - entry.left < self._quickest:
                # A quicker round trip moves every arrival earlier: recompute them (rare: only a new
                # quickest round trip does it).
                self._quickest = now - entry.left
                self._arrived = [(self._arrival(e), n, e) for _, n, e in self._arrived]
                heapq.heapify(self._arrived)
            self._sequence += 1
            heapq.heappush(self._arrived, (self._arrival(entry), self._sequence, entry))
            self._answered.notify_all()
            waiters = list(self._async_waiters) if self._async_waiters else ()
        for loop, changed in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits there any more
                loop.call_soon_threadsafe(changed.set)


_limiters: dict[tuple[str, str, float], RequestWindow] = {}
_limiters_lock = threading.Lock()


def limiter_for(base_url: str, api_key: str, rate: float) -> RequestWindow | None:
    """The process-wide window for one account (keyed by a digest of the key, never the key); ``None``
    when ``rate`` is 0 (no limit).
    """
    if rate <= 0:
        return None
    account = hashlib.sha256(api_key.encode()).hexdigest()[:16]
    key = (base_url, account, rate)
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = RequestWindow(rate)
        return limiter


class Pacer:
    """The bulk engine's pace: a :class:`RequestWindow` at ``max_rate``, plus even spacing at a rate
    that adapts to throttling.

    ``rate`` starts at ``max_rate``, halves on each throttling answer (with a pause for ``Retry-After``,
    or one window without it) and grows back by :data:`RECOVERY_STEP` of ``max_rate`` per success. The
    window caps what reaches the server whatever the spacing does.

    :param max_rate: most sends per second.
    :param clock: the monotonic clock (tests pass their own).
    """

    def __init__(self, max_rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not max_rate > 0:
            raise ValueError("max_rate must be positive")
        self.window = RequestWindow(max_rate, clock=clock)
        self.max_rate = max_rate
        self.rate = max_rate
        self._clock = clock
        self._next_slot = 0.0
        self._paused_until = 0.0

    def wait_time(self) -> float:
        """Seconds until the dispatcher may hand out the next send."""
        return max(0.0, max(self._next_slot, self._paused_until) - self._clock())

    def dispatched(self) -> None:
        """A send was handed out: the next one's slot is one interval later."""
        now = self._clock()
        interval = PACE_SAFETY / self.rate
        self._next_slot = max(now - CATCH_UP_SLOTS * interval, self._next_slot) + interval

    def room(self) -> tuple[bool, float | None]:
        """:meth:`RequestWindow.room` of the window."""
        return self.window.room()

    async def depart(self) -> Departure:
        """Wait until the window has room, then count the send as leaving now."""
        return await self.window.depart()

    def sending(self) -> contextlib.AbstractAsyncContextManager[Departure]:
        """:meth:`RequestWindow.asending` of the window: wrap each send in it."""
        return self.window.asending()

    def answered(self, entry: Departure) -> None:
        """The send of ``entry`` got an answer (or failed)."""
        self.window.answered(entry)

    def throttled(self, retry_after: float | None) -> None:
        """The server refused a send for the rate: halve the pace and pause everyone."""
        now = self._clock()
        self.rate = max(min(SLOWEST_PACE, self.max_rate), self.rate / 2)
        # Without Retry-After, one window: by then the server's count has emptied.
        pause = retry_after if retry_after is not None else self.window.span
        self._paused_until = max(self._paused_until, now + pause)

    def succeeded(self) -> None:
        """A send was accepted: the pace grows back towards ``max_rate``."""
        if self.rate < self.max_rate:
            self.rate = min(self.max_rate, self.rate + self.max_rate * RECOVERY_STEP)
