"""The webhook receiver: a FastAPI app that authenticates Meta's deliveries and stores them before it
answers.

Routes, relative to where the app is mounted (``/whatsapp`` in the API server and the console script):

- ``GET /webhook`` and ``GET /webhook/{path_token}``: Meta's verification handshake;
- ``POST /webhook`` (signed with the app secret) and ``POST /webhook/{path_token}`` (through Maton).

A delivery is refused with nothing stored when it is not authentic (403), too large (413) or malformed
(400); events for phone numbers the connection does not name are acknowledged and dropped; the rest are
written to the event store, in a worker thread, before the 200. A store failure answers 500, so Meta
delivers again. Settings are read from the connection on each request: a changed connection applies at
once. No secret is logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from airflow_provider_whatsapp.spec.limits import (
    EVENTS_EXPIRE_INTERVAL_SECONDS,
    HUB_CHALLENGE_MAX_CHARS,
    WEBHOOK_BODY_MAX_BYTES,
)
from airflow_provider_whatsapp.spec.vocabulary import (
    HUB_CHALLENGE,
    HUB_MODE,
    HUB_MODE_SUBSCRIBE,
    HUB_VERIFY_TOKEN,
    SIGNATURE_HEADER,
    SIGNATURE_PREFIX,
)
from airflow_provider_whatsapp.webhooks.events import Event, WebhookPayloadError, parse_delivery
from airflow_provider_whatsapp.webhooks.store import EventStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_whatsapp.webhooks.settings import WebhookSettings

log = logging.getLogger(__name__)

#: Where the app is mounted, in the API server and in the console script.
URL_PREFIX = "/whatsapp"
#: The callback path under the prefix (a path token follows it when one is configured).
WEBHOOK_PATH = "/webhook"


def _same(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; nothing configured never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def _signature_ok(body: bytes, header: str | None, app_secret: str) -> bool:
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return _same(header[len(SIGNATURE_PREFIX) :].strip().lower(), expected)


def _refuse(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


class _BodyTooLarge(Exception):
    pass


#: Where :class:`_HidePathToken` keeps the path token it took out of the request's path.
_PATH_TOKEN_SCOPE_KEY = "whatsapp.path_token"
_HIDDEN = "***"


class _HidePathToken:
    """Takes the path token out of the request's path before anything logs it.

    Access logs (the Airflow API server's, uvicorn's) write the request path, and the path token is the
    receiver's only credential through Maton. The ASGI scope is one dict from the server down to this
    app, so the path every access log reads says ``/webhook/***``; the routes read the token from here.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            head, marker, token = str(scope.get("path", "")).rpartition(WEBHOOK_PATH + "/")
            if marker and token:
                scope[_PATH_TOKEN_SCOPE_KEY] = token
                scope["path"] = head + marker + _HIDDEN
                raw = scope.get("raw_path")
                if isinstance(raw, bytes):
                    raw_head, raw_marker, _ = raw.rpartition((WEBHOOK_PATH + "/").encode())
                    scope["raw_path"] = raw_head + raw_marker + _HIDDEN.encode()
        await self.app(scope, receive, send)


def _path_token(request: Request) -> str | None:
    token = request.scope.get(_PATH_TOKEN_SCOPE_KEY)
    return token if isinstance(token, str) else None


async def _read_capped(request: Request) -> bytes:
    """The raw body, refused as soon as it passes the cap (Content-Length is not trusted alone)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > WEBHOOK_BODY_MAX_BYTES:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > WEBHOOK_BODY_MAX_BYTES:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class _Expiry:
    """Removes expired events now and then, in the background (never on a delivery's critical path)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0.0

    def maybe_run(self, store: EventStore) -> None:
        with self._lock:
            if time.monotonic() - self._last < EVENTS_EXPIRE_INTERVAL_SECONDS and self._last:
                return
            self._last = time.monotonic()
        threading.Thread(target=self._run, args=(store,), daemon=True, name="whatsapp-events-expiry").start()

    @staticmethod
    def _run(store: EventStore) -> None:
        try:
            removed = store.expire()
        except Exception:
            log.exception("Removing expired WhatsApp events failed")
        else:
            if removed:
                log.info("Removed %d expired WhatsApp events", removed)


def _store_all(settings: WebhookSettings, events: list[Event]) -> tuple[int, int, EventStore]:
    store = EventStore.from_description(settings.store_description)
    new = sum(1 for event in events if store.add(event))
    return new, len(events) - new, store


def create_app(
    *, conn_id: str | None = None, settings: Callable[[], WebhookSettings] | None = None
) -> FastAPI:
    """The receiver, to be mounted at :data:`URL_PREFIX`.

    :param conn_id: the connection to read (default ``$WHATSAPP_WEBHOOKS_CONN_ID``, else ``maton_default``).
    :param settings: how to get the settings (tests); default: read the connection on each request.
    """
    if settings is None:
        from airflow_provider_whatsapp.webhooks.settings import webhook_settings

        def settings() -> WebhookSettings:
            return webhook_settings(conn_id)

    load = settings
    expiry = _Expiry()
    app = FastAPI(title="WhatsApp webhooks", docs_url=None, redoc_url=None, openapi_url=None)

    async def current() -> WebhookSettings:
        return await run_in_threadpool(load)

    async def verify(request: Request, path_token: str | None) -> Response:
        config = await current()
        if config.path_token and not _same(path_token, config.path_token):
            return _refuse(403, "forbidden")
        if path_token is not None and not config.path_token:
            return _refuse(403, "forbidden")
        query = request.query_params
        challenge = query.get(HUB_CHALLENGE)
        if (
            query.get(HUB_MODE) != HUB_MODE_SUBSCRIBE
            or not _same(query.get(HUB_VERIFY_TOKEN), config.verify_token)
            or not challenge
            or len(challenge) > HUB_CHALLENGE_MAX_CHARS
            or not challenge.isascii()
            or not challenge.isprintable()
        ):
            if not config.verify_token:
                log.warning(
                    "A webhook verification was refused: the connection %r sets no webhook_verify_token",
                    config.conn_id,
                )
            return _refuse(403, "forbidden")
        return PlainTextResponse(challenge)

    async def receive(request: Request, path_token: str | None) -> Response:
        config = await current()
        if not config.authenticated:
            log.warning(
                "A webhook delivery was refused: the connection %r sets neither webhook_app_secret (Graph "
                "direct: Meta's app secret) nor webhook_path_token (through Maton: a long random token in "
                "the callback path)",
                config.conn_id,
            )
            return _refuse(403, "forbidden")
        if config.path_token and not _same(path_token, config.path_token):
            return _refuse(403, "forbidden")
        if path_token is not None and not config.path_token:
            return _refuse(403, "forbidden")
        try:
            body = await _read_capped(request)
        except _BodyTooLarge:
            return _refuse(413, f"the body is larger than {WEBHOOK_BODY_MAX_BYTES} bytes")
        if config.app_secret and not _signature_ok(
            body, request.headers.get(SIGNATURE_HEADER), config.app_secret
        ):
            return _refuse(403, "forbidden")
        try:
            events = parse_delivery(body)
        except WebhookPayloadError as error:
            return _refuse(400, str(error))
        wanted = [event for event in events if event.phone_number_id in config.phone_number_ids]
        ignored = len(events) - len(wanted)
        if ignored:
            log.info("Ignored %d webhook events for phone numbers the connection does not name", ignored)
        try:
            new, duplicates, store = await run_in_threadpool(_store_all, config, wanted)
        except Exception:
            log.exception("Storing a webhook delivery failed; Meta will deliver it again")
            return _refuse(500, "the events could not be stored")
        expiry.maybe_run(store)
        return JSONResponse({"stored": new, "duplicates": duplicates, "ignored": ignored})

    @app.get(WEBHOOK_PATH)
    async def verify_signed(request: Request) -> Response:
        return await verify(request, None)

    @app.get(WEBHOOK_PATH + "/{hidden}")
    async def verify_with_token(request: Request, hidden: str) -> Response:
        return await verify(request, _path_token(request))

    @app.post(WEBHOOK_PATH)
    async def receive_signed(request: Request) -> Response:
        return await receive(request, None)

    @app.post(WEBHOOK_PATH + "/{hidden}")
    async def receive_with_token(request: Request, hidden: str) -> Response:
        return await receive(request, _path_token(request))

    app.add_middleware(_HidePathToken)
    return app


def standalone_app(*, conn_id: str | None = None) -> FastAPI:
    """The receiver mounted at :data:`URL_PREFIX`, as the console script serves it (same URLs as in the
    API server)."""
    root = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    root.mount(URL_PREFIX, create_app(conn_id=conn_id))
    return root
