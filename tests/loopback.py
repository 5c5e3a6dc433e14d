"""A real HTTP server on 127.0.0.1 for tests: answers from a script and records every request."""

from __future__ import annotations

import json
import re
import socket
import ssl
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    """One scripted answer.

    ``drop`` closes the connection without answering; ``raw`` is written as the whole answer (status
    line included, anything goes) before closing; ``reset`` makes either close with a TCP reset.
    ``trickle`` sends the answer (status line, headers, body) one byte every ``trickle`` seconds.
    ``chunks`` makes the body, sent chunked, from a fresh iterable (so a huge body is never held).
    """

    status: int = 200
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    body: bytes | None = None
    raw: bytes | None = None
    reset: bool = False
    trickle: float = 0.0
    chunks: Callable[[], Iterable[bytes]] | None = None


class _Server(ThreadingHTTPServer):
    # Tests open dozens of connections at once (a bulk send); socketserver's default backlog is 5.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that reset or dropped the connection (some tests make it) is not a server error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


Responder = Callable[[Recorded], Reply]


class LoopbackServer:
    """Routes are ``(method, path regex)``; each holds replies used in turn (the last one repeats)."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        """:param tls: a server-side TLS context: the server then speaks HTTPS."""
        self.requests: list[Recorded] = []
        #: TCP connections accepted so far (a client that keeps connections alive opens few).
        self.connections = 0
        self._routes: list[tuple[str, re.Pattern[str], deque[Reply | Responder]]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host}:{port}"

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def route(self, method: str, path: str, *replies: Reply | Responder) -> None:
        """Answer ``method`` on paths matching the regex ``path`` with ``replies`` in turn."""
        with self._lock:
            self._routes.insert(0, (method.upper(), re.compile(path), deque(replies)))

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        pattern = re.compile(path)
        return [r for r in self.requests if r.method == method.upper() and pattern.search(r.path)]

    def _reply_for(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            for method, pattern, replies in self._routes:
                if method == recorded.method and pattern.search(recorded.path):
                    reply = replies.popleft() if len(replies) > 1 else replies[0]
                    break
            else:
                return Reply(404, {"error": {"message": f"no route for {recorded.path}", "code": 803}})
        return reply(recorded) if callable(reply) else reply

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The head and the body go out in two writes: with Nagle's algorithm on, the body waits for
            # the client's delayed ACK (40 ms on Linux), which made every answer 40 ms late.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server.connections += 1

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                recorded = Recorded(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self._body(),
                    at=time.monotonic(),
                )
                reply = server._reply_for(recorded)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    if reply.raw is not None or reply.drop:
                        self.wfile.write(reply.raw or b"")
                        self.wfile.flush()
                        self._close(reset=reply.reset)
                    elif reply.trickle or reply.chunks is not None:
                        self._stream(reply)
                    else:
                        self._answer(reply)
                except OSError:
                    self.close_connection = True  # the client went away; nothing to tell it

            def _close(self, *, reset: bool) -> None:
                self.close_connection = True
                if reset:  # linger 0: the kernel answers with RST instead of FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()

            def _stream(self, reply: Reply) -> None:
                lines = [f"HTTP/1.1 {reply.status} {_reason(reply.status)}", "Content-Type: application/json"]
                lines += [f"{name}: {value}" for name, value in reply.headers.items()]
                if reply.chunks is not None:
                    lines.append("Transfer-Encoding: chunked")
                    payload = b""
                else:
                    payload = reply.body if reply.body is not None else json.dumps(reply.json or {}).encode()
                    lines.append(f"Content-Length: {len(payload)}")
                head = ("\r\n".join(lines) + "\r\n\r\n").encode()
                if reply.trickle:
                    for byte in head + payload:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(reply.trickle)
                    return
                self.wfile.write(head)
                for chunk in reply.chunks() if reply.chunks is not None else ():
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _answer(self, reply: Reply) -> None:
                payload = reply.body if reply.body is not None else json.dumps(reply.json or {}).encode()
                self.send_response(reply.status)
                if not any(name.lower() == "content-type" for name in reply.headers):
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PUT = _handle

        return Handler


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


def graph_error(
    code: int, message: str = "error", *, subcode: int | None = None, details: str = ""
) -> dict[str, Any]:
    """A Graph API error body as WhatsApp sends it."""
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "Atrace",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


def sent(wamid: str = "wamid.TEST", wa_id: str = "14155550100") -> dict[str, Any]:
    """A successful send answer."""
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": wa_id, "wa_id": wa_id}],
        "messages": [{"id": wamid}],
    }
