"""A total deadline per request, on top of httpx's per-operation timeouts.

httpx bounds each read, not the whole answer: a server that trickles a byte just under the read
timeout could hold a request forever. The send loop sets the deadline of the current attempt with
:func:`deadline`; the network streams of the hook's clients give every connect, read and write at
most the time left and fail with httpcore's own timeout error once it has passed, so httpx reports it
as the timeout it already knows. The deadline lives in a context variable, which follows the thread or
asyncio task that set it: concurrent requests (a bulk send) each keep their own, sync and async alike.
"""

from __future__ import annotations

import contextlib
import logging
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

log = logging.getLogger(__name__)

# ``time.monotonic()`` after which no network operation of the current request may start.
_DEADLINE: ContextVar[float | None] = ContextVar("whatsapp_request_deadline", default=None)


def current_deadline() -> float | None:
    """The deadline in force here (``time.monotonic()`` seconds), or ``None``."""
    return _DEADLINE.get()


@contextlib.contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Within the block, no request runs past ``at`` (``time.monotonic()``); an earlier one stays."""
    current = _DEADLINE.get()
    if at is None or (current is not None and current <= at):
        yield
        return
    token = _DEADLINE.set(at)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def bounded(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` shortened to the time left before the deadline; ``error`` once it has passed."""
    at = _DEADLINE.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("The request's total time ran out.")
    return left if timeout is None else min(timeout, left)


def with_deadlines(client: httpx.Client | httpx.AsyncClient) -> None:
    """Make every connection ``client`` opens honour :func:`deadline` (call before its first request).

    httpx 0.28 takes no network backend (encode/httpx#3180), so the one of each connection pool the
    client built (its transport and any proxy mounts, which keeps proxies from the environment) is
    wrapped in place. Should a later httpx lay out its pools differently, this says so in the log and the
    per-operation timeouts still apply.
    """
    # Imported here, like httpx imports httpcore: only once a client is made (importing it earlier, at
    # DAG parse time, would also let Airflow 2's later logging set-up disable httpcore's loggers).
    import httpcore

    from airflow_provider_whatsapp.hooks._deadline_streams import AsyncBackend, Backend

    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    for transport in transports:
        if transport is None:
            continue
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend):
            pool._network_backend = Backend(backend)  # type: ignore[union-attr]
        elif isinstance(backend, httpcore.AsyncNetworkBackend):
            pool._network_backend = AsyncBackend(backend)  # type: ignore[union-attr]
        else:
            log.warning(
                "Cannot bound the total time of requests through %s; only per-read timeouts apply.",
                type(transport).__name__,
            )
