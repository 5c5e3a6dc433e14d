"""When to try a refused request again: one backoff formula, one pair-rate wait, one ``Retry-After`` rule.

The hook's retry loop and the bulk engine both decide with :meth:`RetryPolicy.delay_before_retry`, so a
request is retried the same way whichever of them sends it. Nothing else computes a wait.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_whatsapp.errors import WhatsAppPairRateLimitError
from airflow_provider_whatsapp.spec.limits import PAIR_RATE_INTERVAL_SECONDS, PAIR_RATE_MAX_WAIT_SECONDS

if TYPE_CHECKING:
    from airflow_provider_whatsapp.errors import WhatsAppRetryableError

DEFAULT_MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in attempts, in total time and in how long to wait.

    :param max_attempts: attempts in all, the first included.
    :param max_seconds: no retry starts after this many seconds since the first attempt.
    :param base_delay: the first backoff; it doubles with each retry, up to ``max_delay``.
    :param max_retry_after: the longest ``Retry-After`` honoured; a server asking for more is not
        waited for (the caller gives up at once with a retryable error).
    :param pair_delay: the first wait after a pair-rate error (131056, the same recipient too often);
        it doubles with each further one, up to ``max_pair_delay``.
    """

    max_attempts: int = 5
    max_seconds: float = 120.0
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    pair_delay: float = PAIR_RATE_INTERVAL_SECONDS
    max_pair_delay: float = PAIR_RATE_MAX_WAIT_SECONDS

    def backoff(self, attempt: int) -> float:
        """The jittered wait after failed attempt number ``attempt`` (1 for the first)."""
        ceiling = doubling_wait(self.base_delay, attempt, cap=self.max_delay)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def pair_rate_wait(self, refusals: int) -> float:
        """The wait after the ``refusals``-th pair-rate error (1 for the first) to the same recipient.

        Not jittered: the recipient's own pace is what the service limits, not a crowd's.
        """
        return doubling_wait(self.pair_delay, refusals, cap=self.max_pair_delay)

    def wait_after(self, attempt: int, error: WhatsAppRetryableError, *, pair_refusals: int = 0) -> float:
        """The wait ``error`` asks for after attempt ``attempt``, before any bound applies: the pair-rate
        wait or the backoff, and never less than the server's ``Retry-After``.

        :param pair_refusals: pair-rate errors so far for this recipient, this one included.
        """
        if isinstance(error, WhatsAppPairRateLimitError):
            delay = self.pair_rate_wait(max(1, pair_refusals))
        else:
            delay = self.backoff(attempt)
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay

    def waits_too_long(self, error: WhatsAppRetryableError) -> bool:
        """Whether the server asked to wait longer than :attr:`max_retry_after`."""
        return error.retry_after is not None and error.retry_after > self.max_retry_after

    def delay_before_retry(
        self, attempt: int, error: WhatsAppRetryableError, elapsed: float, *, pair_refusals: int = 0
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` when it is time to give up.

        :param elapsed: seconds since the first attempt.
        :param pair_refusals: as for :meth:`wait_after`.
        """
        if attempt >= self.max_attempts or self.waits_too_long(error):
            return None
        delay = self.wait_after(attempt, error, pair_refusals=pair_refusals)
        if elapsed + delay > self.max_seconds:
            return None
        return delay

    def gave_up_because(self, error: WhatsAppRetryableError, attempts: int) -> str:
        """Why no retry follows ``error``, for its message."""
        if self.waits_too_long(error):
            assert error.retry_after is not None
            return (
                f"The server asked to wait {error.retry_after:.0f} s before trying again (Retry-After), more "
                f"than max_retry_after={self.max_retry_after:g} s: gave up at once instead of waiting; a "
                "later try of the task may succeed."
            )
        return f"Gave up after {attempts} attempt(s)."


def doubling_wait(first: float, attempt: int, *, cap: float) -> float:
    """``first`` doubled for each attempt after the first, never more than ``cap``: every backoff's
    ceiling.

    :param first: the wait after attempt 1.
    :param attempt: the failed attempt's number, 1 for the first.
    :param cap: the longest wait.
    """
    return min(cap, first * 2 ** max(0, attempt - 1))


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds, from either of its two forms (seconds or an HTTP date).

    Anything else (garbage, NaN) is ignored; an infinite or far-future value stays huge, so that the
    caller gives up instead of waiting.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return None if math.isnan(seconds) else max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        return max(0.0, when.timestamp() - time.time())
    except (OverflowError, ValueError, OSError):
        return None
