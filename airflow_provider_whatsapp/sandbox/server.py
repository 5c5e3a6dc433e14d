"""The sandbox's HTTP server: Maton's gateway and control plane, Graph direct, and the sandbox's own API.

Requests are answered in this order, as the real services do: authentication (Maton's 401, or Graph's
190 for Graph direct), Maton's per-key rate limit (429 with ``Retry-After``), the ``Maton-Connection``
(Maton's 400), injected faults, then the Graph endpoint itself. Only ``127.0.0.1`` is ever bound.
"""

from __future__ import annotations

import json
import re
import socket
import time
from contextlib import suppress
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from airflow_provider_whatsapp.limits import check_media, media_type_for_mime
from airflow_provider_whatsapp.sandbox import inbox
from airflow_provider_whatsapp.sandbox.state import (
    APP,
    Fault,
    MatonConnection,
    SandboxState,
    Template,
)
from airflow_provider_whatsapp.sandbox.validation import (
    GraphError,
    check_template_send,
    missing,
    validate_message,
    validate_profile_update,
    validate_template_definition,
)

HOST = "127.0.0.1"
_GATEWAY = re.compile(rf"^/{APP}/(v\d+\.\d+)/(.+)$")
_GRAPH = re.compile(r"^/(v\d+\.\d+)/(.+)$")
_MAX_BODY = 110 * 1024 * 1024
_STATIC = {"inbox.css": "text/css", "inbox.js": "application/javascript"}
_FREE_FORM_EXEMPT = frozenset({"template", "reaction"})


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
        fields[str(name)] = (part.get_filename(), part.get_content_type(), data)
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
        self.origin = f"http://{handler.headers.get('Host') or f'{HOST}:{handler.server.server_port}'}"
        self.connection: MatonConnection | None = None
        self.gateway = False

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise GraphError(100, "The request body is not valid JSON.") from None

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        if value.lower().startswith("bearer "):
            return value[7:].strip()
        return self.query.get("access_token")


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, state: SandboxState) -> None:
        self.state = state
        super().__init__((HOST, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SandboxServer
    server_version = "whatsapp-sandbox"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # --- plumbing -------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                total += size
                if total > _MAX_BODY:
                    raise HttpAnswer(413, {"error": {"message": "Request body too large"}})
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise HttpAnswer(413, {"error": {"message": "Request body too large"}})
        return self.rfile.read(length) if length else b""

    def _answer(
        self,
        status: int,
        body: Any,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
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
            request = _Request(self, self._read_body())
        except HttpAnswer as answer:
            self._answer(answer.status, answer.body)
            self.close_connection = True
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
                status, body, content_type = self._local(request)
                return status, body, None, content_type
            status, body, headers = self._api(request)
            return status, body, headers, "application/json"
        except HttpAnswer as answer:
            return answer.status, answer.body, answer.headers, "application/json"
        except GraphError as error:
            return error.status, error.body(), None, "application/json"
        except Exception as error:  # a sandbox bug: answer like Graph's unknown error, keep serving
            return (
                500,
                GraphError(1, f"Sandbox error: {type(error).__name__}: {error}").body(),
                None,
                "application/json",
            )

    do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _handle

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
            if not state.key_is_valid(request.bearer()):
                raise GraphError(190, "The access token could not be decrypted.", status=401)
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
                if not app:
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
                    "messaging_product": "whatsapp",
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
                return 200, template.as_json()
        raise _unknown_object(object_id, request.method)

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
            if template is None or template.status != "APPROVED":
                raise self._template_unavailable(template, content)
            check_template_send(template, content)
        elif state.require_window and kind not in _FREE_FORM_EXEMPT and not state.window_open(wa_id):
            raise GraphError(
                131047,
                "Message failed to send because more than 24 hours have passed since the customer last "
                "replied to this number.",
            )
        conn = request.connection.connection_id if request.connection else None
        stored = state.add_outgoing({**payload, "type": kind}, wa_id, phone_number_id, conn)
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": str(payload.get("to")), "wa_id": wa_id}],
            "messages": [{"id": stored.id, **({"message_status": "accepted"} if kind == "template" else {})}],
        }

    @staticmethod
    def _template_unavailable(template: Template | None, content: dict[str, Any]) -> GraphError:
        name, language = content["name"], content["language"]["code"]
        if template is not None and template.status == "PAUSED":
            return GraphError(132015, f"Template {name} is paused because of low quality.")
        state = "does not exist" if template is None else f"is {template.status}, not APPROVED"
        return GraphError(132001, f"template name ({name}) {state} in {language}")

    def _mark_read(self, payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("messaging_product") != "whatsapp":
            raise GraphError(100, "The parameter messaging_product is required.")
        message_id = payload.get("message_id")
        if not message_id:
            raise missing("message_id")
        if not self.server.state.mark_inbound_read(str(message_id)):
            raise GraphError(100, f"Message {message_id} is not a message this number received.")
        return {"success": True}

    # --- media ----------------------------------------------------------------------------------

    def _upload(self, request: _Request, phone_number_id: str) -> dict[str, Any]:
        content_type = request.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            raise GraphError(100, "Media must be uploaded as multipart/form-data.")
        fields = parse_multipart(content_type, request.body)
        product = fields.get("messaging_product")
        if product is None or product[2].decode(errors="replace") != "whatsapp":
            raise GraphError(100, "The parameter messaging_product is required.")
        if "file" not in fields:
            raise missing("file")
        filename, part_type, data = fields["file"]
        mime = fields["type"][2].decode(errors="replace").strip() if "type" in fields else part_type
        if not mime:
            raise missing("type")
        kind = media_type_for_mime(mime)
        animated = kind == "sticker" and data[12:16] == b"VP8X" and len(data) > 20 and bool(data[20] & 0x02)
        try:
            check_media(kind, mime, len(data), animated=animated)
        except ValueError as error:
            raise GraphError(131053, str(error)) from None
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
        query = request.query
        found = [
            t
            for t in self.server.state.list_templates()
            if (not query.get("name") or query["name"] in t.name)
            and (not query.get("status") or t.status == query["status"].upper())
            and (not query.get("language") or t.language == query["language"])
            and (not query.get("category") or t.category == query["category"].upper())
        ]
        try:
            limit = max(1, min(int(query.get("limit") or 25), 1000))
        except ValueError:
            raise GraphError(100, "Param limit must be a number.") from None
        start = _cursor_position(query.get("after"), after=True)
        if query.get("before") and not query.get("after"):
            start = max(0, _cursor_position(query["before"], after=False) - limit)
        page = found[start : start + limit]
        body: dict[str, Any] = {"data": [t.as_json() for t in page]}
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
        return body

    # --- local pages and the sandbox's own API ---------------------------------------------------

    def _local(self, request: _Request) -> tuple[int, Any, str]:
        state = self.server.state
        path = request.path
        if path in ("/", "/index.html"):
            return 200, _asset("inbox.html"), "text/html; charset=utf-8"
        if path.startswith("/_sandbox/static/"):
            name = path.rsplit("/", 1)[1]
            if name in _STATIC:
                return 200, _asset(name), _STATIC[name]
        if path.startswith("/_media/"):
            media = state.media.get(path.split("/")[2])
            if not state.key_is_valid(request.bearer()):
                return (
                    401,
                    {"error": {"type": "unauthorized", "message": "Invalid or missing API key."}},
                    "application/json",
                )
            if media is not None:
                return 200, media.data, media.mime_type
            return 404, {"error": {"message": "Media not found"}}, "application/json"
        if path.startswith("/_sandbox/"):
            try:
                status, body = _sandbox_api(self.server, request, path[len("/_sandbox/") :])
            except (ValueError, TypeError, KeyError) as error:
                status, body = 400, {"error": {"message": f"{type(error).__name__}: {error}"}}
            if isinstance(body, tuple):
                return status, body[0], body[1]
            return status, body, "application/json"
        return 404, {"error": {"message": f"Nothing at {path}"}}, "application/json"


_DROPPED = object()


def _asset(name: str) -> bytes:
    return resources.files("airflow_provider_whatsapp.sandbox").joinpath("static", name).read_bytes()


def _cursor(position: int) -> str:
    import base64

    return base64.urlsafe_b64encode(f"pos:{position}".encode()).decode().rstrip("=")


def _cursor_position(cursor: str | None, *, after: bool) -> int:
    if not cursor:
        return 0
    import base64

    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        position = int(raw.split(":", 1)[1])
    except (ValueError, IndexError):
        raise GraphError(100, f"Param {'after' if after else 'before'} is not a valid cursor.") from None
    return position + 1 if after else position


def _sandbox_api(server: SandboxServer, request: _Request, route: str) -> tuple[int, Any]:
    """``/_sandbox/...``: what a test, the demo or the inbox page asks of the sandbox itself."""
    state = server.state
    method = request.method
    body = request.json() if request.body else {}
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
    if route == "webhooks" and method == "GET":
        with state.lock:
            return 200, {"data": list(state.webhook_events)}
    if route == "templates" and method == "GET":
        return 200, {"data": [t.as_json() for t in state.list_templates()]}
    if parts[0] == "templates" and len(parts) == 3 and parts[2] == "status" and method == "POST":
        changed = state.set_template_status(parts[1], str(body["status"]).upper(), reason=body.get("reason"))
        return (200 if changed else 404), {"changed": changed}
    if route == "inbound" and method == "POST":
        sender = str(body.get("from") or body.get("wa_id"))
        message = body.get("message")
        inbound = state.add_inbound(
            sender,
            text=body.get("text"),
            message=message,
            name=body.get("name"),
            reply_to=body.get("reply_to"),
            read_previous=bool(body.get("read_previous", True)),
        )
        return 200, {"id": inbound.id}
    if route == "status" and method == "POST":
        found = state.set_status(
            str(body["message_id"]), str(body["status"]), error_code=body.get("error_code")
        )
        return (200, {"success": True}) if found else (404, {"error": {"message": "No such message"}})
    if route == "faults":
        if method == "GET":
            with state.lock:
                return 200, {"data": [f.as_json() for f in state.faults]}
        if method == "POST":
            fields = {k: v for k, v in body.items() if k in Fault.__dataclass_fields__ and k != "id"}
            return 200, state.add_fault(Fault(**fields)).as_json()
        if method == "DELETE":
            state.clear_faults()
            return 200, {"success": True}
    if route == "config":
        if method == "POST":
            state.configure(**body)
        with state.lock:
            return 200, {
                "require_window": state.require_window,
                "approval_delay": state.approval_delay,
                "rate_limit": state.rate_limit,
                "auto_deliver": state.auto_deliver,
                "label": state.label,
            }
    if route == "clock" and method == "POST":
        state.clock.advance(float(body.get("advance", 0)))
        return 200, {"now": state.clock.now()}
    if route == "reset" and method == "POST":
        state.reset()
        return 200, {"success": True}
    if parts[0] == "media" and len(parts) == 2 and method == "GET":
        media = state.media.get(parts[1])
        if media is None:
            return 404, {"error": {"message": "Media not found"}}
        return 200, (media.data, media.mime_type)
    if parts[0] == "oauth" and len(parts) == 2 and method == "GET":
        conn = state.activate_connection(parts[1])
        if conn is None:
            return 404, {"error": {"message": "Unknown connection"}}
        page = (
            "<!doctype html><title>Connected</title><p>WhatsApp Business is connected to the sandbox "
            f"(connection {conn.connection_id}). You can close this page.</p>"
        )
        return 200, (page.encode(), "text/html; charset=utf-8")
    return 404, {"error": {"message": f"Unknown sandbox route {method} /_sandbox/{route}"}}
