"""A stand-in webhook receiver for the sandbox tests, and Meta's webhook schema to check what it gets.

The receiver is a few lines of ``http.server``, not the provider's receiver: the tests check the
sandbox against what Meta documents, not against the provider's own reading of it.
"""

from __future__ import annotations

import copy
import functools
import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.messages.meta_schema import _load, spec_path

_SCHEMAS = "#/components/schemas/"


@dataclass
class Delivery:
    body: bytes
    signature: str | None
    answered: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records each POST; answers ``fail_next`` of them 500; echoes the challenge for ``verify_token``.

    :param port: the port to listen on (0: any); :meth:`start` may be called late, to play "down".
    """

    def __init__(self, *, verify_token: str = "sandbox-verify-token", port: int = 0) -> None:
        self.verify_token = verify_token
        self.fail_next = 0
        self.deliveries: list[Delivery] = []
        self.verifications: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self._port = port or _free_port()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/whatsapp/webhook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
                with receiver.lock:
                    receiver.verifications.append(query)
                ok = (
                    query.get("hub.mode") == "subscribe"
                    and query.get("hub.verify_token") == receiver.verify_token
                )
                self._reply(200 if ok else 403, query.get("hub.challenge", "").encode() if ok else b"no")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    status = 500 if receiver.fail_next > 0 else 200
                    receiver.fail_next -= status == 500
                    receiver.deliveries.append(
                        Delivery(body, self.headers.get("X-Hub-Signature-256"), status)
                    )
                self._reply(status, b"")

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def taken(self) -> list[Delivery]:
        """The deliveries answered 200, in arrival order."""
        with self.lock:
            return [d for d in self.deliveries if d.answered == 200]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- Meta's WebhookPayload schema ------------------------------------------------------------------

# The inbound message types the sandbox produces, and the schema of each in Meta's file (the names with a
# suffix are the webhook variants; the file's IncomingMessage maps some types to the outgoing schemas).
_INCOMING = {
    "text": "TextMessage_2",
    "interactive": "InteractiveMessageReply",
    "button": "ButtonMessage",
    "reaction": "ReactionMessage_1",
    "image": "ImageMessage_1",
}


def _patched(schemas: dict[str, Any]) -> dict[str, Any]:
    """Meta's schemas with the webhook part's defects fixed:

    * the incoming variants extend ``BaseMessageProperties`` (the outgoing envelope: to, recipient_type)
      instead of ``BaseMessageProperties_1`` (from, id, timestamp);
    * ``IncomingMessage`` dispatches on ``type`` (a discriminator jsonschema ignores; its oneOf lists
      outgoing schemas);
    * ``ContextObject`` requires ``referred_product``, which only a product enquiry has;
    * an interactive reply's content is checked against its button or list schema.
    """
    s = copy.deepcopy(schemas)
    for name in _INCOMING.values():
        for part in s[name]["allOf"]:
            if part.get("$ref") == _SCHEMAS + "BaseMessageProperties":
                part["$ref"] = _SCHEMAS + "BaseMessageProperties_1"
    s["IncomingMessage"] = {
        "type": "object",
        "properties": {"type": {"enum": list(_INCOMING)}},
        "required": ["type"],
        "allOf": [
            {"if": {"properties": {"type": {"const": kind}}}, "then": {"$ref": _SCHEMAS + name}}
            for kind, name in _INCOMING.items()
        ],
    }
    s["ContextObject"]["required"] = ["from", "id"]
    interactive = s["InteractiveMessageReply"]["allOf"][1]["properties"]["interactive"]
    interactive.pop("discriminator")
    interactive["allOf"] = [
        {"if": {"properties": {"type": {"const": kind}}}, "then": {"$ref": _SCHEMAS + name}}
        for kind, name in (
            ("button_reply", "InteractiveButtonReplyContent"),
            ("list_reply", "InteractiveListReplyContent"),
        )
    ]
    return s


@functools.lru_cache(maxsize=1)
def _schemas(path: str) -> dict[str, Any]:
    return _patched(_load(path)["components"]["schemas"])


def webhook_schema_errors(payload: Any) -> list[str]:
    """Where ``payload`` departs from Meta's ``WebhookPayload``; nothing to say without Meta's file (the
    other checks of a test still run: see ``WHATSAPP_OPENAPI_SPEC``)."""
    from jsonschema import Draft202012Validator

    path = spec_path()
    if not path.is_file():
        return []
    root = {"components": {"schemas": _schemas(str(path))}, "$ref": _SCHEMAS + "WebhookPayload"}
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in Draft202012Validator(root).iter_errors(payload)
    ]
