"""How a request is sent: one request description, one answer handler, one retry policy.

The sync and async paths of :class:`~airflow_provider_whatsapp.hooks.maton.MatonHook` differ only in
how they wait and which httpx client they call; everything that decides (what to retry, for how long,
what an answer means) lives here once.

Every way an attempt can end becomes a provider error or a decoded JSON object: answers are read
streaming, at most :data:`API_ANSWER_MAX_BYTES` of them, within the request's total deadline (see
:mod:`._deadline`); bytes that are not a JSON object, a broken connection, a protocol error or a
timeout each get a class that says whether the request may have taken effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import httpx

from airflow_provider_whatsapp.errors import (
    MAY_HAVE_BEEN_DELIVERED,
    WhatsAppConfigurationError,
    WhatsAppConnectError,
    WhatsAppDeliveryUnknownError,
    WhatsAppError,
    WhatsAppPairRateLimitError,
    WhatsAppRetryableError,
    WhatsAppTimeoutError,
    WhatsAppTransientError,
    error_from_response,
)
from airflow_provider_whatsapp.hooks._deadline import current_deadline, deadline
from airflow_provider_whatsapp.hooks._pacing import RequestWindow, limiter_for, on_the_wire, through_a_window
from airflow_provider_whatsapp.hooks._retry import RetryPolicy, parse_retry_after
from airflow_provider_whatsapp.redact import scrub_value
from airflow_provider_whatsapp.spec.limits import MB

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_whatsapp.hooks._client_pool import AsyncClients

__all__ = ["ApiRequest", "RetryPolicy", "limiter_for", "parse_retry_after", "send_async", "send_sync"]

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

# The largest API answer read (Graph's and Maton's are a few KB; a template page stays far below).
API_ANSWER_MAX_BYTES = MB


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
        try:
            return f"{self.method} {httpx.URL(self.url).path}"
        except (httpx.InvalidURL, ValueError, UnicodeError):
            # A URL from a server's answer (a media download) may not parse: say so, never quote it.
            return f"{self.method} to an invalid URL"

    def build(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        body = self.body() if callable(self.body) else (self.body or {})
        extensions = {}
        if through_a_window():
            extensions["trace"] = _trace_async if isinstance(client, httpx.AsyncClient) else _trace_sync
        return client.build_request(
            self.method, self.url, headers=self.headers, params=self.params, extensions=extensions, **body
        )


# httpcore reports each step of a request to the ``trace`` extension. The rate window counts a request
# from its first written byte, so that connecting (TCP, TLS, a wait for a pooled connection) is not
# mistaken for time on the way to the server.
def _trace_sync(event: str, info: dict[str, Any]) -> None:
    if event.endswith(_FIRST_BYTE):
        on_the_wire()


async def _trace_async(event: str, info: dict[str, Any]) -> None:
    if event.endswith(_FIRST_BYTE):
        on_the_wire()


_FIRST_BYTE = "send_request_headers.started"


# --- reading an answer ---------------------------------------------------------------------------


class UnreadableAnswer(Exception):
    """The answer's body cannot be used; the message says why (never quoting it)."""


class BodyReader:
    """Takes an answer's raw chunks and gives back its bytes, never more than ``limit`` of them.

    Only identity, gzip and deflate are accepted, and decompression is bounded by the same limit, so a
    small compressed chunk cannot unfold into a large allocation.
    """

    def __init__(self, response: httpx.Response, limit: int) -> None:
        self.limit = limit
        self.size = 0
        declared = _declared_length(response)
        if declared is not None and declared > limit:
            raise UnreadableAnswer(f"it announces {declared} bytes, more than the {limit} read at most")
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        self._inflate: Any = None
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip header
        elif encoding not in ("", "identity"):
            raise UnreadableAnswer("it uses a content encoding that was not asked for")

    def feed(self, raw: bytes) -> bytes:
        data = raw
        if self._inflate is not None:
            try:
                data = self._inflate.decompress(raw, self.limit - self.size + 1)
            except zlib.error:
                raise UnreadableAnswer("its compressed body is corrupt") from None
        self.size += len(data)
        if self.size > self.limit:
            raise UnreadableAnswer(f"it is larger than the {self.limit} bytes read at most")
        return data


def _declared_length(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() and len(value) < 20 else None


_HOST = re.compile(r"^[A-Za-z0-9.\-]{1,253}$")


def _redirect_host(response: httpx.Response) -> str | None:
    """The host a redirect points to, if it is a plain host name; nothing else of ``Location``."""
    try:
        host = httpx.URL(response.headers.get("Location", "")).host
    except (httpx.InvalidURL, ValueError, UnicodeError):
        return None
    return host if _HOST.match(host) else None


def _decode_json(body: bytes) -> Any:
    """The JSON in ``body``, scrubbed of the key: nothing a server says can carry it further."""
    try:
        return scrub_value(json.loads(body))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: a JSON nested deep enough to exhaust the parser's stack.
        raise UnreadableAnswer(f"it is not JSON ({type(exc).__name__})") from None


def unusable_answer(request: ApiRequest, status: int | None, why: str) -> WhatsAppError:
    """A request answered in a way the provider cannot use: may it have taken effect?"""
    answered = f"was answered HTTP {status}" if status is not None else "got an answer"
    if request.idempotent:
        return WhatsAppTransientError(
            f"{request.label} {answered}, but {why}; it is safe to try again.", http_status=status
        )
    return WhatsAppDeliveryUnknownError(
        f"{request.label} {answered}, but {why}. {MAY_HAVE_BEEN_DELIVERED}", http_status=status
    )


def interpret(request: ApiRequest, response: httpx.Response, body: bytes) -> Any:
    """The JSON object of a success, or the matching :class:`WhatsAppError` raised."""
    status = response.status_code
    if response.is_success:
        if not body.strip():
            return {}
        try:
            answer = _decode_json(body)
        except UnreadableAnswer as exc:
            raise unusable_answer(request, status, str(exc)) from None
        if not isinstance(answer, dict):
            raise unusable_answer(request, status, f"it is a JSON {type(answer).__name__}, not an object")
        return answer
    try:
        details: Any = _decode_json(body) if body.strip() else {}
    except UnreadableAnswer:
        # Scrubbed before it is cut, so no part of a key survives at the cut.
        details = scrub_value(body.decode("utf-8", "replace"))[:300]
    raise error_from_response(
        status,
        details,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        may_have_taken_effect=not request.idempotent,
        redirect_host=_redirect_host(response) if response.is_redirect else None,
    )


def failure(request: ApiRequest, response: httpx.Response | None, exc: Exception) -> WhatsAppError:
    """Map whatever went wrong in one attempt (before or while reading the answer) to a provider error.

    Nothing below the provider (httpx, httpcore, h11, zlib, json) escapes as itself.
    """
    if isinstance(exc, WhatsAppError):
        return exc
    if response is None or isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        error = _before_answer(request, exc)
    elif response.is_success:
        error = _timed_out(request, exc) or unusable_answer(request, response.status_code, _why(exc))
    else:
        # The status line came: it decides, whatever happened to the body that followed.
        error = error_from_response(
            response.status_code,
            f"the answer's body was not read: {_why(exc)}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            may_have_taken_effect=not request.idempotent,
            redirect_host=_redirect_host(response) if response.is_redirect else None,
        )
    return error


def _why(exc: Exception) -> str:
    if isinstance(exc, UnreadableAnswer):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException):
        return f"it did not come in full within the timeout ({type(exc).__name__})"
    return f"reading it failed with {type(exc).__name__}"


def _timed_out(request: ApiRequest, exc: Exception) -> WhatsAppError | None:
    if request.idempotent and isinstance(exc, httpx.TimeoutException):
        return WhatsAppTimeoutError(
            f"{request.label} got no complete answer within the timeout ({type(exc).__name__}); "
            "it is safe to try again."
        )
    return None


def _before_answer(request: ApiRequest, exc: Exception) -> WhatsAppError:
    """A failure before any answer: safe to retry only when the request never left this machine."""
    where = request.label
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)):
        return WhatsAppConnectError(f"Could not connect for {where}: {type(exc).__name__}. Nothing was sent.")
    # The messages of the errors below quote the URL or a header (the key's among them): never shown.
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return WhatsAppConfigurationError(
            f"The URL for {where} is not usable ({type(exc).__name__}). Check the connection's host."
        )
    if quotes_request(exc):
        # httpx or h11 refuses to write an invalid request before any of it goes out.
        return WhatsAppConfigurationError(
            f"{where} could not be sent as valid HTTP ({type(exc).__name__}): a URL or header value is "
            "not allowed there. Nothing was sent."
        )
    timed_out = _timed_out(request, exc)
    if timed_out is not None:
        return timed_out
    if request.idempotent:
        return WhatsAppTransientError(f"{where} failed with {type(exc).__name__}; it is safe to try again.")
    return WhatsAppDeliveryUnknownError(
        f"{where} failed with {type(exc).__name__}. {MAY_HAVE_BEEN_DELIVERED}"
    )


# Errors raised while a request is written: their messages quote the URL or a header value (the key's
# among them), so they never travel with the provider's error, not even as its cause or context.
_QUOTES_REQUEST = (httpx.LocalProtocolError, httpx.InvalidURL, httpx.UnsupportedProtocol, UnicodeError)


def quotes_request(exc: BaseException) -> bool:
    """Whether ``exc`` may quote the request it failed to write (URL, headers, the key)."""
    return isinstance(exc, _QUOTES_REQUEST)


def raise_without_cause(error: WhatsAppError) -> NoReturn:
    """Raise ``error`` with no cause and no context (call it outside any ``except`` block)."""
    error.__cause__ = error.__context__ = None
    raise error


def _exchange_sync(client: httpx.Client, request: ApiRequest) -> Any:
    response = None
    try:
        built = request.build(client)
        response = client.send(built, stream=True)
        try:
            reader = BodyReader(response, API_ANSWER_MAX_BYTES)
            body = bytearray()
            for raw in response.iter_raw():
                body += reader.feed(raw)
        finally:
            response.close()
        return interpret(request, response, bytes(body))
    except Exception as exc:
        error = failure(request, response, exc)
        if error is exc:
            raise
        if not quotes_request(exc):
            raise error from exc
    raise_without_cause(error)


async def _exchange_async(clients: AsyncClients, request: ApiRequest) -> Any:
    response = None
    lent = clients.borrow()
    try:
        client = lent.client
        built = request.build(client)
        response = await client.send(built, stream=True)
        try:
            reader = BodyReader(response, API_ANSWER_MAX_BYTES)
            body = bytearray()
            async for raw in response.aiter_raw():
                body += reader.feed(raw)
        finally:
            await response.aclose()
        return interpret(request, response, bytes(body))
    except Exception as exc:
        error = failure(request, response, exc)
        if error is exc:
            raise
        if not quotes_request(exc):
            raise error from exc
    finally:
        clients.give_back(lent)
    raise_without_cause(error)


# --- the retry loop ------------------------------------------------------------------------------


class Attempts:
    """Bookkeeping of one request's attempts: decides after each failure whether and when to retry.

    A timeout ends the call: ``timeout`` bounds how long a slow server may hold it. A deadline set
    around the call (:func:`~._deadline.deadline`, e.g. by a sensor) is never waited past either.
    """

    def __init__(self, request: ApiRequest, policy: RetryPolicy) -> None:
        self.request = request
        self.policy = policy
        self.number = 0
        self.pair_refusals = 0
        self._started = time.monotonic()
        self._outer_deadline = current_deadline()

    def next_delay(self, error: WhatsAppError) -> float:
        """Seconds to wait before retrying, or raise ``error`` when it must not or cannot be retried."""
        if not isinstance(error, WhatsAppRetryableError) or isinstance(error, WhatsAppTimeoutError):
            raise error
        if isinstance(error, WhatsAppPairRateLimitError):
            self.pair_refusals += 1
        delay = self.policy.delay_before_retry(
            self.number, error, time.monotonic() - self._started, pair_refusals=self.pair_refusals
        )
        if delay is None:
            error.message = f"{error.message} {self.policy.gave_up_because(error, self.number)}"
            raise error
        if self._outer_deadline is not None and time.monotonic() + delay >= self._outer_deadline:
            error.message = f"{error.message} No time was left to try again."
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
    client: httpx.Client,
    request: ApiRequest,
    policy: RetryPolicy,
    limiter: RequestWindow | None,
    *,
    timeout: float,
) -> Any:
    """Send ``request`` until it succeeds or must not be tried again; each attempt within ``timeout``.

    :param limiter: the account's window (:func:`~._pacing.limiter_for`); every attempt leaves through it.
    """
    attempts = Attempts(request, policy)
    while True:
        attempts.number += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s (attempt %d)", request.label, attempts.number)
        try:
            with (
                limiter.sending() if limiter is not None else contextlib.nullcontext(),
                deadline(time.monotonic() + timeout),
            ):
                return _exchange_sync(client, request)
        except WhatsAppError as exc:
            error = exc
        time.sleep(attempts.next_delay(error))


async def send_async(
    clients: AsyncClients,
    request: ApiRequest,
    policy: RetryPolicy,
    limiter: RequestWindow | None,
    *,
    timeout: float,
) -> Any:
    """Async :func:`send_sync`, each attempt on a client of ``clients`` with a connection to spare."""
    attempts = Attempts(request, policy)
    while True:
        attempts.number += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s (attempt %d)", request.label, attempts.number)
        try:
            async with limiter.asending() if limiter is not None else contextlib.nullcontext():
                with deadline(time.monotonic() + timeout):
                    return await _exchange_async(clients, request)
        except WhatsAppError as exc:
            error = exc
        await asyncio.sleep(attempts.next_delay(error))
