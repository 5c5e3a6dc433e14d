"""How a request is sent: one request description, one response handler, one retry policy.

The sync and async paths of :class:`~airflow_provider_whatsapp.hooks.maton.MatonHook` differ only in
how they wait and which httpx client they call; everything that decides (what to retry, for how long,
what an answer means) lives here once.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_whatsapp._redact import scrub_value
from airflow_provider_whatsapp.errors import (
    MAY_HAVE_BEEN_DELIVERED,
    WhatsAppConfigurationError,
    WhatsAppConnectError,
    WhatsAppDeliveryUnknownError,
    WhatsAppError,
    WhatsAppRetryableError,
    WhatsAppTransientError,
    error_from_response,
)

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class ApiRequest:
    """One API call, described once and sent as many times as the retry policy allows.

    :param body: keyword arguments for ``httpx.Client.build_request`` that carry the body
        (``json``, ``files``, ``data``, ``content``). A callable is called again for every attempt,
        so a streamed upload reopens its file instead of resending a consumed stream.
    :param idempotent: whether repeating the request after an ambiguous failure is harmless.
    """

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    params: dict[str, Any] | None = None
    body: dict[str, Any] | Callable[[], dict[str, Any]] | None = None
    idempotent: bool = False

    @property
    def label(self) -> str:
        return f"{self.method} {httpx.URL(self.url).path}"

    def build(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        body = self.body() if callable(self.body) else (self.body or {})
        return client.build_request(self.method, self.url, headers=self.headers, params=self.params, **body)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in attempts and in total time.

    :param max_attempts: attempts in all, the first included.
    :param max_seconds: no retry starts after this many seconds since the first attempt.
    :param base_delay: the first backoff; it doubles with each retry, up to ``max_delay``.
    """

    max_attempts: int = 5
    max_seconds: float = 120.0
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay_before_retry(self, attempt: int, error: WhatsAppRetryableError, elapsed: float) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` when it is time to give up."""
        if attempt >= self.max_attempts:
            return None
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        delay = backoff / 2 + random.uniform(0, backoff / 2)
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        if elapsed + delay > self.max_seconds:
            return None
        return delay


class Booking:
    """One request's place in the limiter's window: booked at ``at``, answered at ``answered``."""

    __slots__ = ("answered", "at")

    def __init__(self, at: float) -> None:
        self.at = at
        self.answered: float | None = None

    def finish(self) -> None:
        self.answered = time.monotonic()


class RateLimiter:
    """At most ``rate`` requests in any window of one second, across the threads of a process.

    The server counts a request when it arrives, which may be long after it was booked on a busy
    machine. The answer, though, never comes before the arrival: so a request waits until one second
    after the *answer* of the one ``rate`` places before it, and the server can never count one too
    many, whatever the load. (A request still unanswered is counted from its booking, with a margin.)

    ``reserve()`` says how long to wait and returns the booking to ``finish()`` once answered; the sync
    path sleeps and the async path awaits the same delay.
    """

    # Only for a request still in flight when the one ``rate`` places later is booked.
    _IN_FLIGHT_MARGIN = 1.05

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._burst = max(1, math.floor(rate))
        self._period = self._burst / rate
        self._window: deque[Booking] = deque(maxlen=self._burst)
        self._lock = threading.Lock()

    def reserve(self) -> tuple[float, Booking]:
        with self._lock:
            now = time.monotonic()
            start = now
            if len(self._window) == self._burst:
                oldest = self._window[0]
                if oldest.answered is not None:
                    start = max(now, oldest.answered + self._period)
                else:
                    start = max(now, oldest.at + self._period * self._IN_FLIGHT_MARGIN)
            booking = Booking(start)
            self._window.append(booking)
            return start - now, booking


_limiters: dict[tuple[str, str, float], RateLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(base_url: str, api_key: str, rate: float) -> RateLimiter | None:
    """The process-wide limiter for one account (keyed by a digest of the key, never the key)."""
    if rate <= 0:
        return None
    account = hashlib.sha256(api_key.encode()).hexdigest()[:16]
    key = (base_url, account, rate)
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = RateLimiter(rate)
        return limiter


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds, from either of its two forms (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def decode_body(response: httpx.Response) -> Any:
    """The answer as JSON (or text), scrubbed of the key: nothing a server says can carry it further."""
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return scrub_value(body)


def handle_response(request: ApiRequest, response: httpx.Response) -> Any:
    """The decoded body of a success, or the matching :class:`WhatsAppError` raised."""
    if response.is_success:
        return decode_body(response)
    raise error_from_response(
        response.status_code,
        decode_body(response),
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        may_have_taken_effect=not request.idempotent,
    )


def error_from_transport(request: ApiRequest, exc: httpx.HTTPError) -> WhatsAppError:
    """Map an httpx failure: safe to retry only when the request never left this machine."""
    error = _transport_error(request, exc)
    error.__cause__ = exc
    return error


def _transport_error(request: ApiRequest, exc: httpx.HTTPError) -> WhatsAppError:
    where = request.label
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return WhatsAppConnectError(f"Could not connect for {where}: {type(exc).__name__}. Nothing was sent.")
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return WhatsAppConfigurationError(
            f"The URL for {where} is not usable: {exc}. Check the connection's host."
        )
    if request.idempotent:
        return WhatsAppTransientError(f"{where} failed with {type(exc).__name__}; it is safe to try again.")
    return WhatsAppDeliveryUnknownError(
        f"{where} failed with {type(exc).__name__}. {MAY_HAVE_BEEN_DELIVERED}"
    )


class Attempts:
    """Bookkeeping of one request's attempts: decides after each failure whether and when to retry."""

    def __init__(self, request: ApiRequest, policy: RetryPolicy) -> None:
        self.request = request
        self.policy = policy
        self.number = 0
        self._started = time.monotonic()

    def next_delay(self, error: WhatsAppError) -> float:
        """Seconds to wait before retrying, or raise ``error`` when it must not or cannot be retried."""
        if not isinstance(error, WhatsAppRetryableError):
            raise error
        delay = self.policy.delay_before_retry(self.number, error, time.monotonic() - self._started)
        if delay is None:
            error.message = f"{error.message} Gave up after {self.number} attempt(s)."
            raise error
        log.warning(
            "%s failed (attempt %d of %d), retrying in %.1f s: %s",
            self.request.label,
            self.number,
            self.policy.max_attempts,
            delay,
            error,
        )
        return delay


def send_sync(
    client: httpx.Client, request: ApiRequest, policy: RetryPolicy, limiter: RateLimiter | None
) -> Any:
    attempts = Attempts(request, policy)
    while True:
        attempts.number += 1
        booking = None
        if limiter is not None:
            delay, booking = limiter.reserve()
            time.sleep(delay)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s (attempt %d)", request.label, attempts.number)
        try:
            return handle_response(request, client.send(request.build(client)))
        except httpx.HTTPError as exc:
            error: WhatsAppError = error_from_transport(request, exc)
        except WhatsAppError as exc:
            error = exc
        finally:
            if booking is not None:
                booking.finish()
        time.sleep(attempts.next_delay(error))


async def send_async(
    client: httpx.AsyncClient, request: ApiRequest, policy: RetryPolicy, limiter: RateLimiter | None
) -> Any:
    attempts = Attempts(request, policy)
    while True:
        attempts.number += 1
        booking = None
        if limiter is not None:
            delay, booking = limiter.reserve()
            await asyncio.sleep(delay)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s (attempt %d)", request.label, attempts.number)
        try:
            return handle_response(request, await client.send(request.build(client)))
        except httpx.HTTPError as exc:
            error: WhatsAppError = error_from_transport(request, exc)
        except WhatsAppError as exc:
            error = exc
        finally:
            if booking is not None:
                booking.finish()
        await asyncio.sleep(attempts.next_delay(error))
