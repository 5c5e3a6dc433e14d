"""The sandbox's HTTP server: Maton's gateway and control plane, Graph direct, and the sandbox's own API.

Requests are answered in this order, as the real services do: authentication (Maton's 401; for Graph
direct, Graph's 104 without a token and 190 for a token it does not know), Maton's per-key rate limit
(429 with ``Retry-After``), the ``Maton-Connection`` (Maton's 400), injected faults, then the Graph
endpoint itself. Only ``127.0.0.1`` is ever bound.

Before any of that, :mod:`~airflow_provider_whatsapp.sandbox.guard` refuses what a web page or a broken
client could send; whatever arrives, the answer is an HTTP response with a JSON body, never a traceback.
"""

from __future__ import annotations

import base64
import html
import json
import re
import socket
import sys
import threading
import time
from contextlib import suppress
from email import errors, policy
from email.parser import BytesParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from airflow_provider_whatsapp.sandbox import guard, inbox
from airflow_provider_whatsapp.sandbox.state import (
    APP,
    CONFIG_FIELDS,
    Fault,
    MatonConnection,
    Media,
    SandboxState,
    Template,
)
from airflow_provider_whatsapp.sandbox.validation import (
    GraphError,
    check_template_send,
    missing,
    recipient,
    validate_message,
    validate_profile_update,
    validate_read_receipt,
    validate_template_definition,
)
from airflow_provider_whatsapp.sandbox.webhooks import check_callback_url, verify_callback
from airflow_provider_whatsapp.spec import error_codes, vocabulary
from airflow_provider_whatsapp.spec.limits import (
    TEMPLATES_PER_ACCOUNT_MAX,
    WEBP_HEADER_BYTES,
    check_media,
    is_animated_webp,
    media_type_for_mime,
)

HOST = "127.0.0.1"
# The Graph edge of an account's webhook subscription, and the app the sandbox says is subscribed.
SUBSCRIBED_APPS = "subscribed_apps"
SANDBOX_APP_ID = "1000000000000001"
SANDBOX_APP_NAME = "WhatsApp sandbox"
_GATEWAY = re.compile(rf"^/{APP}/(v\d+\.\d+)/(.+)$")
_GRAPH = re.compile(r"^/(v\d+\.\d+)/(.+)$")
_STATIC = {
    "inbox.css": "text/css",
    "inbox.js": "application/javascript",
    "oauth.js": "application/javascript",
}


class HttpAnswer(Exception):
    """Stop handling and answer with this status and JSON body (Maton's errors, 404s...)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def maton_error(status: int, kind: str, message: str) -> HttpAnswer:
    """An error in the gateway's own shape: no Graph code, so clients can tell it from Graph's."""
    return HttpAnswer(status, {"error": {"type": kind, "message": message, "status": str(status)}})


def _unknown_object(object_id: str, method: str) -> GraphError:
    return GraphError(
        100,
        message=f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, cannot "
        "be loaded due to missing permissions, or does not support this operation",
        subcode=33,
    )


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, str, bytes]]:
    """``{field: (filename, content type, bytes)}`` of a ``multipart/form-data`` body."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    fields: dict[str, tuple[str | None, str, bytes]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        # The header as sent: email's get_content_type() turns a malformed one ("ogg") into text/plain.
        raw_type = str(part.get("Content-Type") or "").split(";", 1)[0].strip()
        fields[str(name)] = (part.get_filename(), raw_type, data)
    return fields


class _Request:
    """What a handler needs from one HTTP request."""

    def __init__(self, handler: _Handler, body: bytes) -> None:
        parts = urlsplit(handler.path)
        self.method = handler.command
        self.path = parts.path
        self.query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.headers = handler.headers
        self.body = body
        # Links the sandbox hands out name the address it is bound to, never the Host the client sent.
        self.origin = handler.server.base_url
        self.connection: MatonConnection | None = None
        self.gateway = False

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            raise GraphError(100, "The request body is not valid JSON.") from None

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        if value.lower().startswith("bearer "):
            return value[7:].strip()
        return self.query.get("access_token")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # A burst of clients (a DAG's mapped tasks) queues rather than being refused while threads start.
    request_queue_size = guard.MAX_CONNECTIONS
    connection_timeout = guard.CONNECTION_TIMEOUT

    max_connections = guard.MAX_CONNECTIONS

    def __init__(self, port: int, state: SandboxState) -> None:
        self.state = state
        # One thread per connection, so a flood of (idle) connections would be a flood of threads.
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().__init__((HOST, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in its own thread when a slot is free (or frees up soon); else a 503."""
        if self._slots.acquire(timeout=guard.CONNECTION_SLOT_WAIT):
            try:
                super().process_request(request, client_address)
            except BaseException:
                self._slots.release()
                raise
        else:
            threading.Thread(target=self._refuse, args=(request,), daemon=True).start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: Any) -> None:
        """Answer a connection over the bound with Graph's "service unavailable" and close it."""
        error = GraphError(2, "Service temporarily unavailable: too many connections.", status=503)
        body = json.dumps(error.body()).encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        )
        with suppress(OSError):
            request.settimeout(guard.CONNECTION_SLOT_WAIT)
            request.sendall(head.encode() + body)
        self.shutdown_request(request)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.server_port}"

    def shutdown_request(self, request: Any) -> None:
        """Close after reading what the client still sends (for a moment): closing on unread bytes makes
        the kernel send a reset, which can destroy the error answer still on its way to the client."""
        with suppress(OSError):
            request.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + 2.0
            while (left := deadline - time.monotonic()) > 0:
                request.settimeout(left)
                if not request.recv(65536):
                    break
        self.close_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is not worth a traceback on the developer's terminal."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SandboxServer
    server_version = "whatsapp-sandbox"
    raw_requestline: bytes

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # --- plumbing -------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        # A client that stalls (idle, or mid-request) is cut off and its thread freed.
        self.connection.settimeout(self.server.connection_timeout)
        # An answer is written as headers then body: without this, Nagle's algorithm holds the body
        # until the client's delayed ACK (about 40 ms), which makes every keep-alive request that slow.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def parse_request(self) -> bool:
        if self.raw_requestline.strip(b"\r\n") and not self.raw_requestline.decode("latin-1").split():
            # http.server closes silently on a request line of only whitespace; it is malformed, say so.
            self.command, self.requestline, self.request_version = "", "", "HTTP/1.1"
            self.send_error(HTTPStatus.BAD_REQUEST, "The request line is empty.")
            return False
        if not super().parse_request():
            return False
        if len(self.requestline.split()) != 3:
            self.send_error(HTTPStatus.BAD_REQUEST, "The request line needs a method, a path and HTTP/1.x.")
            return False
        # A line without a colon ends email's header parsing early; a folded line keeps its line break.
        folded = any("\n" in value or "\r" in value for value in self.headers.values())
        if (
            folded
            or self.headers.get_payload()
            or any(
                isinstance(d, (errors.MissingHeaderBodySeparatorDefect, errors.InvalidHeaderDefect))
                for d in self.headers.defects
            )
        ):
            self.send_error(HTTPStatus.BAD_REQUEST, "The request has a malformed header line.")
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, headers, method) in Graph's shape, not HTML."""
        # 501 (unknown method) and 505 (HTTP/2 request line) are the client's doing, not the server's.
        status = {501: 405, 505: 400}.get(int(code), int(code))
        if self.request_version not in ("HTTP/1.0", "HTTP/1.1"):
            self.request_version = "HTTP/1.1"  # else http.server writes no status line or headers at all
        self.close_connection = True
        details = message or HTTPStatus(status).phrase
        self._answer(status, GraphError(100, details, status=status).body(), headers={"Connection": "close"})

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            return self._read_chunked()
        length = guard.content_length(self.headers)
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise GraphError(100, f"The body ended after {len(body)} of {length} bytes.", status=400)
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";")[0].strip()
            if not line.endswith(b"\n") or not re.fullmatch(rb"[0-9A-Fa-f]{1,8}", size_text):
                raise GraphError(100, "Malformed chunk size in a chunked body.", status=400)
            size = int(size_text, 16)
            if size == 0:
                break
            total = guard.check_size(total + size)
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise GraphError(100, "A chunk of a chunked body is shorter than its size.", status=400)
            chunks.append(chunk)
        for _ in range(100):  # trailer fields, ignored, up to the blank line
            if self.rfile.readline(8192).strip() == b"":
                return b"".join(chunks)
        raise GraphError(100, "Too many trailer fields after a chunked body.", status=400)

    def _answer(
        self,
        status: int,
        body: Any,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        extra = {"Content-Security-Policy": guard.INERT_CSP, **guard.SECURITY_HEADERS, **(headers or {})}
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _drop(self) -> None:
        self.close_connection = True
        with suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _handle(self) -> None:
        try:
            guard.check_request(self.command, self.path, self.headers)
            request = _Request(self, self._read_body())
        except GraphError as error:
            # The rest of the request, if any, cannot be trusted to be framed right: answer and close.
            self.close_connection = True
            self._answer(error.status, error.body(), headers={"Connection": "close"})
            return
        except TimeoutError:
            self.close_connection = True
            message = "The request body did not arrive in time."
            self._answer(408, GraphError(100, message, status=408).body(), headers={"Connection": "close"})
            return
        api = bool(request.path.startswith(("/connections", f"/{APP}/")) or _GRAPH.match(request.path))
        status, body, headers, content_type = self._outcome(request, api)
        if api:
            # Logged before answering: a client that holds its answer finds its request in the log.
            conn = request.connection.connection_id if request.connection else None
            self.server.state.record(request.method, request.path, status, conn)
        if body is _DROPPED:
            self._drop()
            return
        self._answer(status, body, content_type=content_type, headers=headers)

    def _outcome(self, request: _Request, api: bool) -> tuple[int, Any, dict[str, str] | None, str]:
        """Status, body, headers and content type of the answer, errors included."""
        try:
            if not api:
                return self._local(request)
            status, body, headers = self._api(request)
            return status, body, headers, "application/json"
        except HttpAnswer as answer:
            return answer.status, answer.body, answer.headers, "application/json"
        except GraphError as error:
            return error.status, error.body(), None, "application/json"
        except Exception as error:
            if request.body and isinstance(error, _SHAPE_ERRORS):
                # A body whose values have types or shapes no check above expected: the client's error.
                message = f"A body value has a type or shape the sandbox did not expect: {error!r}"[:300]
                return 400, GraphError(100, message).body(), None, "application/json"
            # A sandbox bug: answer like Graph's unknown error, keep serving.
            bug = GraphError(1, f"Sandbox error: {type(error).__name__}: {error}")
            return 500, bug.body(), None, "application/json"

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = do_HEAD = _handle

    # --- the APIs a client calls ----------------------------------------------------------------

    def _api(self, request: _Request) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        gateway = _GATEWAY.match(request.path)
        if not (gateway or _GRAPH.match(request.path) or request.path.startswith("/connections")):
            raise maton_error(404, "not_found", f"Unknown path {request.path}: expected /{APP}/vXX.X/...")
        if gateway or request.path.startswith("/connections"):
            request.gateway = True
            key = request.bearer()
            if not state.key_is_valid(key):
                raise maton_error(401, "unauthorized", "Invalid or missing API key.")
            wait = state.allow_request(str(key))
            if wait is not None:
                raise HttpAnswer(
                    429,
                    {
                        "error": {
                            "type": "rate_limit_exceeded",
                            "message": f"Rate limit exceeded: at most {state.rate_limit} requests per "
                            "second per account.",
                            "status": "429",
                        }
                    },
                    {"Retry-After": str(max(1, int(wait + 0.999)))},
                )
        else:
            token = request.bearer()
            if not token:
                raise GraphError(
                    error_codes.MISSING_ACCESS_TOKEN,
                    "The request has no Authorization header and no access_token.",
                )
            if not state.key_is_valid(token):
                raise GraphError(error_codes.INVALID_ACCESS_TOKEN, "The access token could not be decrypted.")
        if gateway:
            chosen = request.headers.get("Maton-Connection")
            request.connection = state.choose_connection(chosen)
            if request.connection is None:
                message = (
                    f"Connection {chosen} not found or not active for app {APP}."
                    if chosen
                    else f"No active connection found for app {APP}. Create one at maton.ai."
                )
                raise maton_error(400, "connection_not_found", message)
        latency, fault = state.faults_for(request.method, request.path)
        if latency:
            time.sleep(latency)
        if fault is not None and not (fault.drop and fault.after):
            if fault.drop:
                return 0, _DROPPED, {}
            if fault.code is not None:
                raise GraphError(fault.code, fault.message or "Injected by the sandbox.", status=fault.status)
            raise maton_error(
                int(fault.status or 500), "injected", fault.message or "Injected by the sandbox."
            )
        if request.path.startswith("/connections"):
            answer = self._control_plane(request)
        else:
            match = gateway or _GRAPH.match(request.path)
            assert match is not None
            answer = self._graph(request, match.group(2).strip("/").split("/"))
        if fault is not None:  # drop after the request took effect
            return 0, _DROPPED, {}
        return answer[0], answer[1], {}

    def _control_plane(self, request: _Request) -> tuple[int, Any]:
        state = self.server.state
        segments = [s for s in request.path.split("/") if s][1:]
        if not segments:
            if request.method == "GET":
                found = state.list_connections(request.query.get("app"), request.query.get("status"))
                return 200, {"connections": [c.as_json() for c in found]}
            if request.method == "POST":
                body = request.json() or {}
                app = body.get("app") if isinstance(body, dict) else None
                if not app or not isinstance(app, str):
                    raise maton_error(400, "invalid_request", "The field app is required.")
                conn = state.create_connection(str(app), f"{request.origin}/_sandbox/oauth")
                return 201, {"connection": conn.as_json()}
        elif len(segments) == 1:
            found_conn = state.connections.get(segments[0])
            if found_conn is None:
                raise maton_error(404, "not_found", f"Connection {segments[0]} not found.")
            if request.method == "GET":
                return 200, {"connection": found_conn.as_json()}
            if request.method == "DELETE":
                state.delete_connection(segments[0])
                return 200, {}
        raise maton_error(405, "method_not_allowed", f"{request.method} {request.path} is not supported.")

    def _graph(self, request: _Request, segments: list[str]) -> tuple[int, Any]:
        state = self.server.state
        method = request.method
        head = segments[0]
        if len(segments) == 1:
            return self._graph_object(request, head)
        edge = "/".join(segments[1:])
        if head in state.phone_numbers:
            if edge == "messages" and method == "POST":
                return 200, self._messages(request, head)
            if edge == "media" and method == "POST":
                return 200, self._upload(request, head)
            if edge == "whatsapp_business_profile":
                if method == "GET":
                    return 200, {"data": [dict(state.profiles[head])]}
                if method == "POST":
                    with state.lock:
                        state.profiles[head].update(validate_profile_update(request.json()))
                    return 200, {"success": True}
        elif head in state.wabas:
            if edge == "phone_numbers" and method == "GET":
                numbers = [
                    {k: v for k, v in n.items() if k != "waba_id"}
                    for n in state.phone_numbers.values()
                    if n["waba_id"] == head
                ]
                return 200, {"data": numbers, "paging": {"cursors": {"before": "QVFI", "after": "QVFI"}}}
            if edge == "message_templates":
                return self._templates(request, head)
            if edge == SUBSCRIBED_APPS:
                return self._subscribed_apps(request)
        else:
            raise _unknown_object(head, method)
        raise GraphError(100, message=f"Unknown path components: /{edge}", status=400)

    def _graph_object(self, request: _Request, object_id: str) -> tuple[int, Any]:
        state = self.server.state
        if object_id in state.media:
            media = state.media[object_id]
            if request.method == "DELETE":
                state.delete_media(object_id)
                return 200, {"success": True}
            if request.method == "GET":
                return 200, {
                    "messaging_product": vocabulary.MESSAGING_PRODUCT,
                    "url": f"{request.origin}/_media/{media.id}?mid={media.id}",
                    "mime_type": media.mime_type,
                    "sha256": media.sha256,
                    "file_size": len(media.data),
                    "id": media.id,
                }
        elif object_id in state.phone_numbers and request.method == "GET":
            return 200, {k: v for k, v in state.phone_numbers[object_id].items() if k != "waba_id"}
        elif object_id in state.wabas and request.method == "GET":
            return 200, dict(state.wabas[object_id])
        else:
            template = state.template_by_id(object_id)
            if template is not None and request.method == "GET":
                return 200, _template_fields(template.as_json(), request.query.get("fields"))
            if template is not None and request.method == "POST":
                return 200, self._edit_template(request, template)
        raise _unknown_object(object_id, request.method)

    def _edit_template(self, request: _Request, template: Template) -> dict[str, Any]:
        """``POST /{template-id}``: new components (and category) go through review again."""
        body = request.json()
        if not isinstance(body, dict):
            raise GraphError(100, "The request body must be a JSON object.")
        edited = validate_template_definition(
            {
                "name": template.name,
                "language": template.language,
                "category": body.get("category") or template.category,
                "components": body.get("components", template.components),
                "parameter_format": body.get("parameter_format") or template.parameter_format,
            }
        )
        self.server.state.edit_template(template.id, edited["category"], edited["components"])
        return {"success": True}

    # --- messages -------------------------------------------------------------------------------

    def _messages(self, request: _Request, phone_number_id: str) -> dict[str, Any]:
        state = self.server.state
        payload = request.json()
        if isinstance(payload, dict) and payload.get("status") == "read" and "to" not in payload:
            return self._mark_read(payload)
        wa_id = validate_message(payload, state.media.get)
        assert isinstance(payload, dict)
        kind = payload.get("type", "text")
        if kind == "template":
            content = payload["template"]
            template = state.find_template(content["name"], content["language"]["code"])
            if template is None or template.status != vocabulary.TEMPLATE_APPROVED:
                raise self._template_unavailable(template, content)
            check_template_send(template, content)
        # Outside the 24-hour window (or to an unreachable number) the send is still accepted, as
        # WhatsApp accepts it: the failure comes later, by a failed status (see SandboxState).
        conn = request.connection.connection_id if request.connection else None
        stored = state.add_outgoing({**payload, "type": kind}, wa_id, phone_number_id, conn)
        return {
            "messaging_product": vocabulary.MESSAGING_PRODUCT,
            "contacts": [{"input": str(payload.get("to")), "wa_id": wa_id}],
            "messages": [{"id": stored.id, **({"message_status": "accepted"} if kind == "template" else {})}],
        }

    @staticmethod
    def _template_unavailable(template: Template | None, content: dict[str, Any]) -> GraphError:
        name, language = content["name"], content["language"]["code"]
        if template is not None and template.status == vocabulary.TEMPLATE_PAUSED:
            return GraphError(
                error_codes.TEMPLATE_PAUSED, f"Template {name} is paused because of low quality."
            )
        state = "does not exist" if template is None else f"is {template.status}, not APPROVED"
        return GraphError(error_codes.TEMPLATE_NOT_FOUND, f"template name ({name}) {state} in {language}")

    def _mark_read(self, payload: dict[str, Any]) -> dict[str, Any]:
        message_id = validate_read_receipt(payload)
        if not self.server.state.mark_inbound_read(message_id):
            raise GraphError(100, f"Message {message_id} is not a message this number received.")
        return {"success": True}

    # --- webhook subscription -------------------------------------------------------------------

    def _subscribed_apps(self, request: _Request) -> tuple[int, Any]:
        """``/{waba_id}/subscribed_apps``: the app's subscription to the account's webhooks, with the
        callback override (``override_callback_uri``) verified as Meta verifies it."""
        state = self.server.state
        if request.method == "GET":
            with state.lock:
                return 200, {"data": [_subscribed_app(state.subscription)] if state.subscription else []}
        if request.method == "DELETE":
            with state.lock:
                state.subscription = None
            state.configure(webhook_url=None)
            return 200, {"success": True}
        if request.method != "POST":
            raise GraphError(100, f"Unsupported {request.method.lower()} request.")
        body = request.json() if request.body else {}
        if not isinstance(body, dict):
            raise GraphError(100, "The request body must be a JSON object.")
        fields = {**request.query, **body}
        callback = fields.get(vocabulary.SUBSCRIPTION_CALLBACK_FIELD)
        token = fields.get(vocabulary.SUBSCRIPTION_VERIFY_TOKEN_FIELD)
        if callback is None:
            with state.lock:
                state.subscription = state.subscription or {"callback": None}
            return 200, {"success": True}
        url = check_callback_url(callback, vocabulary.SUBSCRIPTION_CALLBACK_FIELD)
        if not isinstance(token, str) or not token:
            raise missing(vocabulary.SUBSCRIPTION_VERIFY_TOKEN_FIELD)
        verify_callback(url, token)
        with state.lock:
            state.subscription = {"callback": url}
        state.configure(webhook_url=url)
        return 200, {"success": True}

    # --- media ----------------------------------------------------------------------------------

    def _upload(self, request: _Request, phone_number_id: str) -> dict[str, Any]:
        content_type = request.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            raise GraphError(100, "Media must be uploaded as multipart/form-data.")
        fields = parse_multipart(content_type, request.body)
        product = fields.get("messaging_product")
        if product is None or product[2].decode(errors="replace") != vocabulary.MESSAGING_PRODUCT:
            raise GraphError(100, "The parameter messaging_product is required.")
        if "file" not in fields:
            raise missing("file")
        filename, part_type, data = fields["file"]
        mime = fields["type"][2].decode(errors="replace").strip() if "type" in fields else part_type
        if not mime:
            raise missing("type")
        if not guard.is_mime(mime):
            raise GraphError(100, f"Param type {mime[:100]!r} is not a MIME type (type/subtype).")
        kind = media_type_for_mime(mime)
        animated = kind == "sticker" and is_animated_webp(data[:WEBP_HEADER_BYTES])
        try:
            check_media(kind, mime, len(data), animated=animated)
        except ValueError as error:
            raise GraphError(error_codes.MEDIA_UPLOAD_ERROR, str(error)) from None
        media = self.server.state.add_media(data, mime, filename or "file", kind, phone_number_id)
        return {"id": media.id}

    # --- templates ------------------------------------------------------------------------------

    def _templates(self, request: _Request, waba_id: str) -> tuple[int, Any]:
        state = self.server.state
        if request.method == "GET":
            return 200, self._template_page(request)
        if request.method == "POST":
            spec = validate_template_definition(request.json())
            if state.find_template(spec["name"], spec["language"]) is not None:
                raise GraphError(
                    100,
                    f"There is already {spec['language']} content for this template ({spec['name']}).",
                    subcode=2388024,
                )
            template = state.add_template(**spec)
            return 200, {"id": template.id, "status": template.status, "category": template.category}
        if request.method == "DELETE":
            name = request.query.get("name")
            if not name:
                raise GraphError(100, "The parameter name is required.")
            if not state.delete_templates(name, request.query.get("hsm_id")):
                raise GraphError(100, f"Message template {name} was not found.", subcode=2593002)
            return 200, {"success": True}
        raise GraphError(100, f"Unsupported {request.method.lower()} request.")

    def _template_page(self, request: _Request) -> dict[str, Any]:
        """One page of the template list: filtered (name, content, status, language, category; a filter
        may list several values, comma-separated), ``limit`` per page with cursors, each template cut to
        ``fields``, and the ``summary`` fields asked for."""
        query = request.query
        every = self.server.state.list_templates()
        found = [t for t in every if _template_matches(t, query)]
        try:
            limit = max(1, min(int(query.get("limit") or 25), 1000))
        except ValueError:
            raise GraphError(100, "Param limit must be a number.") from None
        start = _cursor_position(query.get("after"), after=True)
        if query.get("before") and not query.get("after"):
            start = max(0, _cursor_position(query["before"], after=False) - limit)
        page = found[start : start + limit]
        body: dict[str, Any] = {"data": [_template_fields(t.as_json(), query.get("fields")) for t in page]}
        if page:
            paging: dict[str, Any] = {
                "cursors": {"before": _cursor(start), "after": _cursor(start + len(page) - 1)}
            }
            if start + len(page) < len(found):
                params = {k: v for k, v in query.items() if k not in ("after", "before")}
                params["after"] = paging["cursors"]["after"]
                paging["next"] = f"{request.origin}{request.path}?{urlencode(params)}"
            if start > 0:
                params = {k: v for k, v in query.items() if k not in ("after", "before")}
                params["before"] = paging["cursors"]["before"]
                paging["previous"] = f"{request.origin}{request.path}?{urlencode(params)}"
            body["paging"] = paging
        if query.get("summary"):
            body["summary"] = _template_summary(query["summary"], found, every)
        return body

    # --- local pages and the sandbox's own API ---------------------------------------------------

    def _local(self, request: _Request) -> tuple[int, Any, dict[str, str] | None, str]:
        state = self.server.state
        path = request.path
        page = {"Content-Security-Policy": guard.PAGE_CSP}
        if path in ("/", "/index.html"):
            return 200, _asset("inbox.html"), page, "text/html; charset=utf-8"
        if path.startswith("/_sandbox/static/"):
            name = path.rsplit("/", 1)[1]
            if name in _STATIC:
                return 200, _asset(name), None, _STATIC[name]
        if path.startswith("/_media/"):
            media = state.media.get(path.split("/")[2])
            if not state.key_is_valid(request.bearer()):
                return (
                    401,
                    {"error": {"type": "unauthorized", "message": "Invalid or missing API key."}},
                    None,
                    "application/json",
                )
            if media is not None:
                return _served(media)
            return 404, {"error": {"message": "Media not found"}}, None, "application/json"
        if path.startswith("/_sandbox/"):
            try:
                status, body = _sandbox_api(self.server, request, path[len("/_sandbox/") :])
            except (ValueError, TypeError, KeyError, re.error) as error:
                status, body = 400, GraphError(100, f"{type(error).__name__}: {error}").body()
            if isinstance(body, Media):
                return _served(body)
            if isinstance(body, str):
                return status, body.encode(), page, "text/html; charset=utf-8"
            return status, body, None, "application/json"
        return 404, {"error": {"message": f"Nothing at {path}"}}, None, "application/json"


def _subscribed_app(subscription: dict[str, Any]) -> dict[str, Any]:
    """The app's entry in ``GET /{waba_id}/subscribed_apps``."""
    entry: dict[str, Any] = {
        "whatsapp_business_api_data": {"id": SANDBOX_APP_ID, "name": SANDBOX_APP_NAME, "link": ""}
    }
    if subscription.get("callback"):
        entry[vocabulary.SUBSCRIPTION_CALLBACK_FIELD] = subscription["callback"]
    return entry


def _template_matches(template: Template, query: dict[str, str]) -> bool:
    def one_of(key: str, value: str) -> bool:
        wanted = {v.strip().upper() for v in query.get(key, "").split(",") if v.strip()}
        return not wanted or value.upper() in wanted

    body = next(
        (c.get("text") or "" for c in template.components if str(c.get("type")).upper() == "BODY"), ""
    )
    either = query.get("name_or_content", "")
    return (
        query.get("name", "") in template.name
        and query.get("content", "") in body
        and (either in template.name or either in body)
        and one_of("status", template.status)
        and one_of("language", template.language)
        and one_of("category", template.category)
    )


def _template_summary(asked: str, found: list[Template], every: list[Template]) -> dict[str, Any]:
    """The ``summary`` fields Graph computes for a template list (unknown ones are left out)."""
    languages: dict[str, set[str]] = {}
    for template in every:
        languages.setdefault(template.name, set()).add(template.language)
    values = {
        "total_count": len(found),
        "message_template_count": len(every),
        "message_template_limit": TEMPLATES_PER_ACCOUNT_MAX,
        "are_translations_complete": len({frozenset(v) for v in languages.values()}) <= 1,
    }
    return {name: values[name] for name in (s.strip() for s in asked.split(",")) if name in values}


def _template_fields(template: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """A template cut to the comma-separated ``fields`` asked for (``id`` always); all without ``fields``."""
    if not fields:
        return template
    wanted = {f.strip() for f in fields.split(",")} | {"id"}
    return {k: v for k, v in template.items() if k in wanted}


_DROPPED = object()
_SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError)


def _served(media: Media) -> tuple[int, bytes, dict[str, str], str]:
    """An upload as the answer to a download: inert whatever its bytes (see :mod:`guard`)."""
    return 200, media.data, guard.attachment_headers(media.filename), guard.safe_mime(media.mime_type)


def _asset(name: str) -> bytes:
    return resources.files("airflow_provider_whatsapp.sandbox").joinpath("static", name).read_bytes()


def _cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"pos:{position}".encode()).decode().rstrip("=")


def _cursor_position(cursor: str | None, *, after: bool) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        position = int(raw.split(":", 1)[1])
        if position < 0:
            raise ValueError(position)
    except (ValueError, IndexError):
        raise GraphError(100, f"Param {'after' if after else 'before'} is not a valid cursor.") from None
    return position + 1 if after else position


def _sandbox_api(server: SandboxServer, request: _Request, route: str) -> tuple[int, Any]:
    """``/_sandbox/...``: what a test, the demo or the inbox page asks of the sandbox itself."""
    state = server.state
    method = request.method
    body = request.json() if request.body else {}
    if not isinstance(body, dict):
        raise GraphError(100, "The request body must be a JSON object.")
    parts = route.strip("/").split("/")
    if route == "health":
        return 200, {"ok": True}
    if route == "conversations" and method == "GET":
        return 200, inbox.conversations(state)
    if route == "messages" and method == "GET":
        wa_id = request.query.get("wa_id") or request.query.get("to")
        direction = request.query.get("direction") or None
        return 200, {"data": [m.as_json() for m in state.messages_to(wa_id, direction=direction)]}
    if route == "requests" and method == "GET":
        with state.lock:
            return 200, {"data": [r.__dict__ for r in state.requests]}
    if route == "webhooks":
        if method == "POST":
            url = _field(body, "url", str)
            state.configure(
                webhook_url=None if url is None else check_callback_url(url, "url"),
                app_secret=_field(body, "app_secret", str),
            )
        with state.lock:
            return 200, {
                "data": list(state.webhook_events),
                "deliveries": [d.as_json() for d in state.deliveries],
                "url": state.webhook_url,
                "signed_with_app_secret": state.app_secret is not None,
            }
    if route == "reply" and method == "POST":
        index = _field(body, "button_index", int)
        inbound = state.reply(
            _field(body, "message_id", str, required=True),
            button_id=_field(body, "button_id", str),
            row_id=_field(body, "row_id", str),
            button_index=index,
            text=_field(body, "text", str),
        )
        return 200, {"id": inbound.id}
    if route == "templates" and method == "GET":
        return 200, {"data": [t.as_json() for t in state.list_templates()]}
    if parts[0] == "templates" and len(parts) == 3 and parts[2] == "status" and method == "POST":
        status = _field(body, "status", str, required=True).upper()
        changed = state.set_template_status(parts[1], status, reason=_field(body, "reason", str))
        return (200 if changed else 404), {"changed": changed}
    if route == "inbound" and method == "POST":
        sender = _field(body, "from", str) or _field(body, "wa_id", str)
        if not sender:
            raise missing("from")
        try:
            wa_id = recipient(sender)
        except GraphError:
            raise GraphError(100, f"Param from ({sender[:40]!r}) is not a phone number.") from None
        message = _field(body, "message", dict)
        if message is not None:
            _field(message, "type", str, required=True)
            _field(message, "context", dict)
        inbound = state.add_inbound(
            wa_id,
            text=_field(body, "text", str),
            message=message,
            name=_field(body, "name", str),
            reply_to=_field(body, "reply_to", str),
            read_previous=_field(body, "read_previous", bool) is not False,
        )
        return 200, {"id": inbound.id}
    if route == "status" and method == "POST":
        found = state.set_status(
            _field(body, "message_id", str, required=True),
            _field(body, "status", str, required=True),
            error_code=_field(body, "error_code", int),
        )
        return (200, {"success": True}) if found else (404, {"error": {"message": "No such message"}})
    if route == "faults":
        if method == "GET":
            with state.lock:
                return 200, {"data": [f.as_json() for f in state.faults]}
        if method == "POST":
            return 200, state.add_fault(_fault(body)).as_json()
        if method == "DELETE":
            state.clear_faults()
            return 200, {"success": True}
    if route == "config":
        if method == "POST":
            state.configure(**_settings(body))
        with state.lock:
            return 200, {
                "require_window": state.require_window,
                "approval_delay": state.approval_delay,
                "rate_limit": state.rate_limit,
                "auto_deliver": state.auto_deliver,
                "label": state.label,
                "webhook_url": state.webhook_url,
                "sent_delay": state.sent_delay,
                "delivered_delay": state.delivered_delay,
                "read_delay": state.read_delay,
                "unreachable": sorted(state.unreachable),
            }
    if route == "clock" and method == "POST":
        advance = _number(body, "advance", required=True)
        assert advance is not None
        state.clock.advance(advance)
        return 200, {"now": state.clock.now()}
    if route == "reset" and method == "POST":
        state.reset()
        return 200, {"success": True}
    if parts[0] == "media" and len(parts) == 2 and method == "GET":
        media = state.media.get(parts[1])
        if media is None:
            return 404, {"error": {"message": "Media not found"}}
        return 200, media
    if parts[0] == "oauth" and len(parts) == 2 and method == "GET":
        # Only shows the consent page: a GET changes nothing, so an <img> or link on another site
        # cannot activate a pending connection. The page's button POSTs JSON, which such a site cannot.
        with state.lock:
            conn = state.connections.get(parts[1])
            shown = None if conn is None else (conn.connection_id, conn.status)
        if shown is None:
            return 404, {"error": {"message": "Unknown connection"}}
        return 200, _oauth_page(*shown)
    if parts[0] == "oauth" and len(parts) == 2 and method == "POST":
        conn = state.activate_connection(parts[1])
        if conn is None:
            return 404, {"error": {"message": "Unknown connection"}}
        return 200, {"connection": conn.as_json()}
    return 404, {"error": {"message": f"Unknown sandbox route {method} /_sandbox/{route}"}}


def _oauth_page(connection_id: str, status: str) -> str:
    """The sandbox's stand-in for Meta's consent screen; ``oauth.js`` sends the activation."""
    cid = html.escape(connection_id, quote=True)
    return (
        '<!doctype html><meta charset="utf-8"><title>Connect WhatsApp Business</title>'
        '<script src="/_sandbox/static/oauth.js" defer></script>'
        f"<p>Connect WhatsApp Business to the sandbox (connection <code>{cid}</code>, now "
        f'<span id="status">{html.escape(status)}</span>)?</p>'
        '<button id="connect" type="button">Connect</button>'
    )


def _field(body: dict[str, Any], name: str, kind: type, *, required: bool = False) -> Any:
    """``body[name]`` if it is a ``kind`` (``None`` when absent); a bool is not taken for a number."""
    value = body.get(name)
    if value is None:
        if required:
            raise missing(name)
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise GraphError(100, f"Param {name} must be of type {_TYPE_NAMES.get(kind, kind.__name__)}.")
    return value


def _number(body: dict[str, Any], name: str, *, low: float = -1e9, required: bool = False) -> float | None:
    """``body[name]`` as a number between ``low`` and a billion (``None`` when absent)."""
    value = body.get(name)
    if value is None:
        if required:
            raise missing(name)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= 1e9:
        raise GraphError(100, f"Param {name} must be a number between {low:g} and 1e9.")
    return float(value)


_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object"}


def _fault(body: dict[str, Any]) -> Fault:
    """A fault from ``POST /_sandbox/faults``, checked now so that no later request trips on it."""
    status = _field(body, "status", int)
    if status is not None and not 200 <= status <= 599:
        raise GraphError(100, "Param status must be an HTTP status between 200 and 599.")
    code = _field(body, "code", int)
    times = _field(body, "times", int)
    if (code is not None and code < 0) or (times is not None and times < 1):
        raise GraphError(100, "Params code and times must be positive integers.")
    rate = _number(body, "rate", low=0.0)
    if rate is not None and rate > 1:
        raise GraphError(100, "Param rate is a probability, between 0 and 1.")
    path = _field(body, "path", str)
    if path is not None:
        re.compile(path)
    fields = {
        "status": status,
        "code": code,
        "times": times,
        "rate": rate,
        "latency": _number(body, "latency", low=0.0),
        "drop": _field(body, "drop", bool),
        "after": _field(body, "after", bool),
        "path": path,
        "method": _field(body, "method", str),
        "message": _field(body, "message", str),
    }
    return Fault(**{k: v for k, v in fields.items() if v is not None})


def _settings(body: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``POST /_sandbox/config``, each of the type the sandbox uses it as."""
    settings: dict[str, Any] = {k: v for k, v in body.items() if k not in CONFIG_FIELDS}  # refused by name
    for name in ("require_window", "auto_deliver"):
        if name in body:
            settings[name] = _field(body, name, bool, required=True)
    if "approval_delay" in body:
        settings["approval_delay"] = _number(body, "approval_delay", low=0.0, required=True)
    if "rate_limit" in body:
        settings["rate_limit"] = _field(body, "rate_limit", int, required=True)
        if settings["rate_limit"] < 0:
            raise GraphError(100, "Param rate_limit must be 0 (off) or more requests per second.")
    if "label" in body:
        settings["label"] = _field(body, "label", str)
    for name in ("sent_delay", "delivered_delay", "read_delay"):
        if name in body:
            settings[name] = _number(body, name, low=0.0, required=name != "read_delay")
    if "webhook_url" in body:
        url = _field(body, "webhook_url", str)
        settings["webhook_url"] = None if url is None else check_callback_url(url)
    if "app_secret" in body:
        settings["app_secret"] = _field(body, "app_secret", str)
    if "unreachable" in body:
        numbers = body["unreachable"]
        if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
            raise GraphError(100, "Param unreachable must be a list of phone numbers.")
        settings["unreachable"] = [recipient(n) for n in numbers]
    return settings
