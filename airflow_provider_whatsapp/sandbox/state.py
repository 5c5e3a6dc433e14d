"""The sandbox's memory: business account, Maton connections, templates, media and conversations.

Everything the server knows lives in one :class:`SandboxState` behind one lock, so request threads,
the inbox page and a test reading what was sent always see a consistent picture. Nothing here speaks
HTTP; :mod:`~airflow_provider_whatsapp.sandbox.server` does.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import itertools
import json
import random
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_whatsapp.spec import error_codes, vocabulary
from airflow_provider_whatsapp.spec.limits import (
    CUSTOMER_SERVICE_WINDOW_SECONDS,
    MATON_REQUESTS_PER_SECOND,
    sandbox_webhook_backoff,
)

DEFAULT_API_KEY = "sandbox-key"
DEFAULT_PHONE_NUMBER_ID = "109876543210001"
DEFAULT_WABA_ID = "209876543210001"
DEFAULT_DISPLAY_NUMBER = "+1 555-010-0199"
DEFAULT_VERIFIED_NAME = "Sandbox Business"
DEFAULT_CONNECTION_ID = "0f7c5a1e-5a4d-4b59-9d7e-5a9c1e0b5a01"
APP = "whatsapp-business"

# Outgoing message states, in the order WhatsApp reports them.
STATUS_ORDER = ("accepted", "sent", "delivered", "read")
STATUSES = (*STATUS_ORDER, "failed")

# Template names matching this are rejected by the sandbox's "review", so rejection paths can be tested.
REJECT_NAME = re.compile(r"(^|_)reject(ed)?(_|$)")
REJECT_REASON = "INVALID_FORMAT"

# What SandboxState.configure may change while the sandbox runs.
CONFIG_FIELDS = (
    "require_window",
    "approval_delay",
    "rate_limit",
    "auto_deliver",
    "label",
    "webhook_url",
    "app_secret",
    "sent_delay",
    "delivered_delay",
    "read_delay",
    "unreachable",
)

# Seconds between two steps of an accepted message (accepted -> sent -> delivered -> read); ``read`` only
# comes by itself when ``read_delay`` is set (or when the recipient answers). Short, so a DAG that
# waits for "delivered" waits a moment, as it would for WhatsApp.
DEFAULT_SENT_DELAY = 0.05
DEFAULT_DELIVERED_DELAY = 0.1

# Messages that need no open 24-hour window: templates, and reactions to a message in the chat.
FREE_FORM_EXEMPT = frozenset({"template", "reaction"})
# The pricing category of a free-form reply in the customer service window.
_SERVICE = "service"


class Clock:
    """Wall-clock time that tests can move forward (e.g. past the 24-hour window)."""

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds


@dataclass
class MatonConnection:
    connection_id: str
    status: str
    creation_time: str
    last_updated_time: str
    app: str = APP
    url: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "connection_id": self.connection_id,
            "status": self.status,
            "creation_time": self.creation_time,
            "last_updated_time": self.last_updated_time,
            "url": self.url,
            "app": self.app,
            "metadata": self.metadata,
        }


@dataclass
class Media:
    id: str
    mime_type: str
    data: bytes
    filename: str
    media_type: str
    phone_number_id: str
    created_at: float

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Template:
    id: str
    name: str
    language: str
    category: str
    components: list[dict[str, Any]]
    status: str
    created_at: float
    decide_at: float
    parameter_format: str = vocabulary.TEMPLATE_POSITIONAL
    rejected_reason: str | None = None
    outcome: str = vocabulary.TEMPLATE_APPROVED

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "components": self.components,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "parameter_format": self.parameter_format,
            "id": self.id,
        }
        if self.rejected_reason:
            out["rejected_reason"] = self.rejected_reason
        return out


@dataclass
class Message:
    """One message in a conversation, outgoing (``direction="out"``) or simulated inbound (``"in"``)."""

    id: str
    direction: str
    wa_id: str
    type: str
    payload: dict[str, Any]
    timestamp: float
    phone_number_id: str
    status: str = "accepted"
    statuses: list[dict[str, Any]] = field(default_factory=list)
    connection_id: str | None = None
    label: str | None = None
    reply_to: str | None = None
    contact_name: str | None = None
    error: dict[str, Any] | None = None
    # The error code this accepted message will fail with (window closed, number unreachable).
    doomed: int | None = None

    @property
    def content(self) -> Any:
        """The message's type object, e.g. ``{"body": "hi"}`` for a text."""
        return self.payload.get(self.type)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "direction": self.direction,
            "wa_id": self.wa_id,
            "type": self.type,
            "payload": self.payload,
            "timestamp": self.timestamp,
            "phone_number_id": self.phone_number_id,
            "status": self.status,
            "statuses": list(self.statuses),
            "connection_id": self.connection_id,
            "label": self.label,
            "reply_to": self.reply_to,
            "error": self.error,
        }


@dataclass
class WebhookDelivery:
    """One webhook event on its way to the callback URL: the exact bytes, and how the tries went.

    :param index: the event's position in :attr:`SandboxState.webhook_events`.
    :param body: the JSON body, serialised once so that every try (and the signature) has the same bytes.
    """

    index: int
    body: bytes
    message_id: str
    attempts: int = 0
    delivered: bool = False
    next_attempt: float = 0.0
    last_error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "message_id": self.message_id,
            "state": "delivered" if self.delivered else "pending",
            "attempts": self.attempts,
            "last_error": self.last_error,
        }


@dataclass
class RequestRecord:
    """One API request the sandbox answered (for tests and the demo's summary)."""

    method: str
    path: str
    status: int
    at: float
    label: str | None
    connection_id: str | None


@dataclass
class Fault:
    """A failure to inject into API requests (the gateway, Graph direct and the control plane).

    :param status: HTTP status to answer with (default from ``code``: 400, or 500/503 for transient codes).
    :param code: Graph error code in the body; without it the body is Maton's.
    :param times: how many matching requests it hits; ``None`` for every one.
    :param rate: probability that a matching request is hit.
    :param latency: seconds to wait before answering (alone, or with an error).
    :param drop: close the connection without an answer.
    :param after: with ``drop``: handle the request first, then drop (the answer is lost, the effect stays).
    :param path: regular expression searched in the request path; ``None`` matches every path.
    :param method: only requests with this method.
    """

    status: int | None = None
    code: int | None = None
    times: int | None = None
    rate: float = 1.0
    latency: float = 0.0
    drop: bool = False
    after: bool = False
    path: str | None = None
    method: str | None = None
    message: str | None = None
    id: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not self.path or re.search(self.path, path) is not None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def _numeric_id(rng: random.Random) -> str:
    return str(rng.randrange(10**15, 10**16))


def new_wamid(wa_id: str) -> str:
    """An id shaped like WhatsApp's: ``wamid.`` and a base64 blob naming the recipient."""
    raw = (
        b"\x18" + bytes([len(wa_id)]) + wa_id.encode() + b"\x15\x02\x00\x11\x18\x12" + secrets.token_bytes(9)
    )
    return "wamid." + base64.b64encode(raw).decode().rstrip("=")


def _seed_templates() -> list[dict[str, Any]]:
    """Approved templates the example DAGs (and a first try) can send without creating one."""
    return [
        {
            "name": "hello_world",
            "language": "en_US",
            "category": "UTILITY",
            "components": [
                {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
                {
                    "type": "BODY",
                    "text": "Welcome and congratulations!! This message demonstrates your ability to send "
                    "a WhatsApp message notification from the Cloud API, hosted by Meta. Thank you for "
                    "taking the time to test with us.",
                },
                {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"},
            ],
        },
        {
            "name": "daily_report",
            "language": "en_US",
            "category": "UTILITY",
            "components": [
                {
                    "type": "HEADER",
                    "format": "DOCUMENT",
                    "example": {"header_handle": ["4::YXBwbGljYXRpb24vcGRm"]},
                },
                {
                    "type": "BODY",
                    "text": "Sales report for {{1}}: {{2}} orders.",
                    "example": {"body_text": [["2026-11-20", "1284"]]},
                },
                {"type": "FOOTER", "text": "Sent by Airflow"},
            ],
        },
        {
            "name": "etl_failure",
            "language": "en_US",
            "category": "UTILITY",
            "components": [
                {"type": "HEADER", "format": "TEXT", "text": "Pipeline alert"},
                {
                    "type": "BODY",
                    "text": "Task {{1}} failed at {{2}}: {{3}}.",
                    "example": {"body_text": [["load_orders", "02:00", "connection refused"]]},
                },
                {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Acknowledge"}]},
            ],
        },
        {
            "name": "order_update",
            "language": "en_US",
            "category": "UTILITY",
            "components": [
                {
                    "type": "BODY",
                    "text": "Hi {{1}}, your order {{2}} is {{3}}.",
                    "example": {"body_text": [["Ana", "A-1042", "on its way"]]},
                },
                {"type": "FOOTER", "text": "Reply STOP to opt out"},
            ],
        },
        {
            "name": "weekly_digest",
            "language": "en_US",
            "category": "MARKETING",
            "components": [
                {
                    "type": "BODY",
                    "text": "Hi {{1}}, your weekly digest for {{2}} is ready.",
                    "example": {"body_text": [["Ana", "week 47"]]},
                },
                {"type": "FOOTER", "text": "Reply STOP to unsubscribe"},
            ],
        },
    ]


class SandboxState:
    """Everything the sandbox holds. Every public method takes the lock; callers never need to.

    :param api_keys: Maton API keys (and Graph access tokens) the sandbox accepts.
    :param approval_delay: seconds a newly created template stays PENDING before its review ends. The
        creation is always answered PENDING; with 0 the next read already finds it APPROVED (or
        REJECTED), so a sensor's first look succeeds.
    :param require_window: refuse free-form messages (code 131047) to a recipient who has not written
        in the last 24 hours, as WhatsApp does. Off by default so a first demo can send text.
    :param rate_limit: requests per second per key through the gateway (Maton's limit); 0 turns it off.
    :param auto_deliver: move every accepted outgoing message on to sent and delivered by itself, on
        timers (``sent_delay``, ``delivered_delay``, then ``read_delay`` if set).
    :param seed: whether to create the default connection, phone number and approved templates.
    :param webhook_url: where to POST each webhook event (WhatsApp's callback URL); ``None``: nowhere.
    :param app_secret: the key of the ``X-Hub-Signature-256`` signature; without it the events are
        signed with a random secret nobody is told, as Maton's Meta app signs them.
    :param sent_delay: seconds from acceptance to ``sent`` (or to ``failed`` for a message that fails).
    :param delivered_delay: seconds from ``sent`` to ``delivered``.
    :param read_delay: seconds from ``delivered`` to ``read``; ``None``: read only when the recipient answers.
    :param unreachable: numbers (digits) whose messages are accepted, then fail by status with 131026.
    """

    def __init__(
        self,
        *,
        api_keys: tuple[str, ...] = (DEFAULT_API_KEY,),
        approval_delay: float = 0.0,
        require_window: bool = False,
        rate_limit: int = MATON_REQUESTS_PER_SECOND,
        auto_deliver: bool = True,
        seed: bool = True,
        random_seed: int | None = None,
        webhook_url: str | None = None,
        app_secret: str | None = None,
        sent_delay: float = DEFAULT_SENT_DELAY,
        delivered_delay: float = DEFAULT_DELIVERED_DELAY,
        read_delay: float | None = None,
        unreachable: tuple[str, ...] | list[str] | frozenset[str] = (),
    ) -> None:
        self.lock = threading.RLock()
        # Wakes the status timer and the webhook sender when there is something new for them.
        self.wakeup = threading.Condition(self.lock)
        self.clock = Clock()
        self.rng = random.Random(random_seed)
        self.api_keys: set[str] = set(api_keys)
        self.approval_delay = approval_delay
        self.require_window = require_window
        self.rate_limit = rate_limit
        self.auto_deliver = auto_deliver
        self.webhook_url = webhook_url
        self.app_secret = app_secret
        self.sent_delay = sent_delay
        self.delivered_delay = delivered_delay
        self.read_delay = read_delay
        self.unreachable: frozenset[str] = _digits_of(unreachable)
        # What signs the events when no app secret is configured (Maton's app secret, never shown).
        self.hidden_app_secret = secrets.token_hex(16)
        # The callback registered through POST /{waba_id}/subscribed_apps (None: not subscribed).
        self.subscription: dict[str, Any] | None = None
        self.deliveries: list[WebhookDelivery] = []
        self._due: list[tuple[float, int, str, str]] = []
        self._due_order = itertools.count()
        self.label: str | None = None
        self.version = 0
        self.connections: dict[str, MatonConnection] = {}
        self.phone_numbers: dict[str, dict[str, Any]] = {}
        self.wabas: dict[str, dict[str, Any]] = {}
        self.profiles: dict[str, dict[str, Any]] = {}
        self.templates: list[Template] = []
        self.media: dict[str, Media] = {}
        self.messages: list[Message] = []
        self.by_id: dict[str, Message] = {}
        self.contact_names: dict[str, str] = {}
        self.last_inbound: dict[str, float] = {}
        self.requests: list[RequestRecord] = []
        self.webhook_events: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self._fault_ids = itertools.count(1)
        self._hits: dict[str, deque[float]] = {}
        if seed:
            self.seed()

    # --- seed -----------------------------------------------------------------------------------

    def configure(self, **settings: Any) -> None:
        """Change the sandbox's behaviour: ``require_window``, ``approval_delay``, ``rate_limit``,
        ``auto_deliver``, ``label`` (tags the messages that follow, e.g. with a DAG id)."""
        unknown = set(settings) - set(CONFIG_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(CONFIG_FIELDS)}"
            )
        if "unreachable" in settings:
            settings["unreachable"] = _digits_of(settings["unreachable"] or ())
        with self.lock:
            for key, value in settings.items():
                setattr(self, key, value)
            self.version += 1
            self.wakeup.notify_all()

    def signing_secret(self) -> str:
        """The key of the webhooks' signature: the configured app secret, else the hidden one."""
        with self.lock:
            return self.app_secret or self.hidden_app_secret

    def seed(self) -> None:
        with self.lock:
            now = self.clock.now()
            self.connections[DEFAULT_CONNECTION_ID] = MatonConnection(
                connection_id=DEFAULT_CONNECTION_ID,
                status="ACTIVE",
                creation_time=_iso(now - 86400),
                last_updated_time=_iso(now - 86400),
                metadata={"waba_id": DEFAULT_WABA_ID, "phone_number_id": DEFAULT_PHONE_NUMBER_ID},
            )
            self.add_phone_number(DEFAULT_PHONE_NUMBER_ID, DEFAULT_WABA_ID)
            for spec in _seed_templates():
                self.add_template(**spec, status=vocabulary.TEMPLATE_APPROVED)

    def add_phone_number(
        self,
        phone_number_id: str,
        waba_id: str,
        *,
        display_phone_number: str = DEFAULT_DISPLAY_NUMBER,
        verified_name: str = DEFAULT_VERIFIED_NAME,
    ) -> None:
        with self.lock:
            self.wabas.setdefault(
                waba_id,
                {
                    "id": waba_id,
                    "name": f"{verified_name} WABA",
                    "currency": "USD",
                    "timezone_id": "1",
                    "message_template_namespace": hashlib.md5(waba_id.encode()).hexdigest(),
                },
            )
            self.phone_numbers[phone_number_id] = {
                "verified_name": verified_name,
                "code_verification_status": "VERIFIED",
                "display_phone_number": display_phone_number,
                "quality_rating": "GREEN",
                "platform_type": "CLOUD_API",
                "throughput": {"level": "STANDARD"},
                "id": phone_number_id,
                "waba_id": waba_id,
            }
            self.profiles[phone_number_id] = {
                "about": "Automated messages from Airflow.",
                "address": "1 Sandbox Way, Localhost",
                "description": "A local emulator of the WhatsApp Business Platform.",
                "email": "sandbox@example.com",
                "profile_picture_url": "",
                "websites": ["https://airflow.apache.org"],
                "vertical": "PROF_SERVICES",
                "messaging_product": vocabulary.MESSAGING_PRODUCT,
            }

    def _touch(self) -> None:
        self.version += 1

    # --- keys and connections -------------------------------------------------------------------

    def key_is_valid(self, key: str | None) -> bool:
        with self.lock:
            return bool(key) and key in self.api_keys

    def allow_request(self, key: str) -> float | None:
        """Count a request against the key's one-second window; seconds to wait when over the limit."""
        with self.lock:
            if self.rate_limit <= 0:
                return None
            now = time.monotonic()
            hits = self._hits.setdefault(hashlib.sha256(key.encode()).hexdigest(), deque())
            while hits and now - hits[0] >= 1.0:
                hits.popleft()
            if len(hits) >= self.rate_limit:
                return max(0.0, hits[0] + 1.0 - now)
            hits.append(now)
            return None

    def choose_connection(self, header: str | None) -> MatonConnection | None:
        """The connection a gateway request uses: the one named, else the oldest ACTIVE one."""
        with self.lock:
            if header:
                found = self.connections.get(header)
                return found if found and found.app == APP and found.status == "ACTIVE" else None
            active = [c for c in self.connections.values() if c.status == "ACTIVE" and c.app == APP]
            return min(active, key=lambda c: c.creation_time) if active else None

    def list_connections(self, app: str | None, status: str | None) -> list[MatonConnection]:
        with self.lock:
            return [
                c
                for c in self.connections.values()
                if (not app or c.app == app) and (not status or c.status == status)
            ]

    def create_connection(self, app: str, oauth_base: str) -> MatonConnection:
        with self.lock:
            now = _iso(self.clock.now())
            cid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            conn = MatonConnection(cid, "PENDING", now, now, app=app, url=f"{oauth_base}/{cid}")
            self.connections[cid] = conn
            self._touch()
            return conn

    def activate_connection(self, connection_id: str) -> MatonConnection | None:
        with self.lock:
            conn = self.connections.get(connection_id)
            if conn is not None:
                conn.status = "ACTIVE"
                conn.last_updated_time = _iso(self.clock.now())
                conn.metadata.setdefault("waba_id", DEFAULT_WABA_ID)
                conn.metadata.setdefault("phone_number_id", DEFAULT_PHONE_NUMBER_ID)
                self._touch()
            return conn

    def delete_connection(self, connection_id: str) -> bool:
        with self.lock:
            self._touch()
            return self.connections.pop(connection_id, None) is not None

    # --- templates ------------------------------------------------------------------------------

    def add_template(
        self,
        *,
        name: str,
        language: str,
        category: str,
        components: list[dict[str, Any]],
        status: str | None = None,
        parameter_format: str | None = None,
    ) -> Template:
        """Add a template; without ``status`` it goes through the sandbox's review (PENDING first)."""
        with self.lock:
            now = self.clock.now()
            outcome = (
                vocabulary.TEMPLATE_REJECTED if REJECT_NAME.search(name) else vocabulary.TEMPLATE_APPROVED
            )
            template = Template(
                id=_numeric_id(self.rng),
                name=name,
                language=language,
                category=category,
                components=components,
                status=status or vocabulary.TEMPLATE_PENDING,
                created_at=now,
                decide_at=now + (0 if status else self.approval_delay),
                parameter_format=parameter_format or vocabulary.TEMPLATE_POSITIONAL,
                outcome=outcome,
            )
            self.templates.append(template)
            self._touch()
            return template

    def _review(self) -> None:
        now = self.clock.now()
        for template in self.templates:
            if template.status == vocabulary.TEMPLATE_PENDING and now >= template.decide_at:
                template.status = template.outcome
                if template.outcome == vocabulary.TEMPLATE_REJECTED:
                    template.rejected_reason = REJECT_REASON
                self._touch()

    def list_templates(self) -> list[Template]:
        with self.lock:
            self._review()
            return list(self.templates)

    def find_template(self, name: str, language: str) -> Template | None:
        with self.lock:
            self._review()
            return next((t for t in self.templates if t.name == name and t.language == language), None)

    def template_by_id(self, template_id: str) -> Template | None:
        with self.lock:
            self._review()
            return next((t for t in self.templates if t.id == template_id), None)

    def edit_template(self, template_id: str, category: str, components: list[dict[str, Any]]) -> None:
        """New category and components for a template, which goes through review again."""
        with self.lock:
            for template in self.templates:
                if template.id == template_id:
                    now = self.clock.now()
                    template.category, template.components = category, components
                    template.status, template.rejected_reason = vocabulary.TEMPLATE_PENDING, None
                    template.decide_at = now + self.approval_delay
            self._touch()

    def set_template_status(self, name: str, status: str, *, reason: str | None = None) -> int:
        """Force the status of every language of a template (e.g. PAUSED); returns how many changed."""
        with self.lock:
            changed = 0
            for template in self.templates:
                if template.name == name:
                    template.status = status
                    template.rejected_reason = reason if status == vocabulary.TEMPLATE_REJECTED else None
                    changed += 1
            self._touch()
            return changed

    def delete_templates(self, name: str, template_id: str | None = None) -> int:
        with self.lock:
            keep = [t for t in self.templates if not (t.name == name and template_id in (None, t.id))]
            removed = len(self.templates) - len(keep)
            self.templates = keep
            self._touch()
            return removed

    # --- media ----------------------------------------------------------------------------------

    def add_media(
        self, data: bytes, mime_type: str, filename: str, media_type: str, phone_number_id: str
    ) -> Media:
        with self.lock:
            media = Media(
                id=_numeric_id(self.rng),
                mime_type=mime_type,
                data=data,
                filename=filename,
                media_type=media_type,
                phone_number_id=phone_number_id,
                created_at=self.clock.now(),
            )
            self.media[media.id] = media
            self._touch()
            return media

    def delete_media(self, media_id: str) -> bool:
        with self.lock:
            self._touch()
            return self.media.pop(media_id, None) is not None

    # --- messages -------------------------------------------------------------------------------

    def window_open(self, wa_id: str) -> bool:
        """Whether the recipient wrote within the last 24 hours (the customer service window)."""
        with self.lock:
            last = self.last_inbound.get(wa_id)
            return last is not None and self.clock.now() - last < CUSTOMER_SERVICE_WINDOW_SECONDS

    def add_outgoing(
        self,
        payload: dict[str, Any],
        wa_id: str,
        phone_number_id: str,
        connection_id: str | None,
    ) -> Message:
        with self.lock:
            kind = str(payload.get("type") or "text")
            context = payload.get("context") or {}
            message = Message(
                id=new_wamid(wa_id),
                direction="out",
                wa_id=wa_id,
                type=kind,
                payload=payload,
                timestamp=self.clock.now(),
                phone_number_id=phone_number_id,
                connection_id=connection_id,
                label=self.label,
                reply_to=context.get("message_id") if isinstance(context, dict) else None,
            )
            self._store(message)
            self._set_status(message, "accepted", event=False)
            # WhatsApp accepts these and reports the failure later, by a failed status.
            if wa_id in self.unreachable:
                message.doomed = error_codes.UNDELIVERABLE
            elif self.require_window and kind not in FREE_FORM_EXEMPT and not self.window_open(wa_id):
                message.doomed = error_codes.RE_ENGAGEMENT
            if message.doomed is not None:
                self._schedule(message.id, vocabulary.MESSAGE_FAILED_STATUS, self.sent_delay)
            elif self.auto_deliver:
                self._schedule(message.id, "sent", self.sent_delay)
            return message

    def add_inbound(
        self,
        wa_id: str,
        *,
        text: str | None = None,
        message: dict[str, Any] | None = None,
        name: str | None = None,
        reply_to: str | None = None,
        phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
        read_previous: bool = True,
    ) -> Message:
        """A message the recipient ``wa_id`` sends to the business (opens the 24-hour window).

        :param message: the message object as a webhook carries it (``type`` and the type's object);
            ``text`` is a shortcut for a text message.
        :param read_previous: mark the business's earlier messages to this recipient as read, as
            the recipient's phone does when they open the chat to answer.
        """
        payload = dict(message or {"type": "text", "text": {"body": text or ""}})
        with self.lock:
            if name:
                self.contact_names[wa_id] = name
            if read_previous:
                for earlier in self.messages:
                    answered = earlier.wa_id == wa_id and earlier.direction == "out"
                    if answered and earlier.status != "failed" and earlier.doomed is None:
                        self._advance_to(earlier, "read")
            inbound = Message(
                id=new_wamid(wa_id),
                direction="in",
                wa_id=wa_id,
                type=str(payload.get("type") or "text"),
                payload=payload,
                timestamp=self.clock.now(),
                phone_number_id=phone_number_id,
                status="received",
                reply_to=reply_to or (payload.get("context") or {}).get("id"),
                contact_name=name or self.contact_names.get(wa_id),
                label=self.label,
            )
            self._store(inbound)
            self.last_inbound[wa_id] = inbound.timestamp
            event_message = {
                "from": wa_id,
                "id": inbound.id,
                "timestamp": str(int(inbound.timestamp)),
                **payload,
            }
            if inbound.reply_to:
                event_message["context"] = {
                    "from": self._business_digits(phone_number_id),
                    "id": inbound.reply_to,
                }
            contact = {
                "profile": {"name": inbound.contact_name or wa_id},
                "wa_id": wa_id,
                "user_id": user_id(wa_id),
            }
            self._event(phone_number_id, {"contacts": [contact], "messages": [event_message]}, inbound.id)
            return inbound

    def reply(
        self,
        message_id: str,
        *,
        button_id: str | None = None,
        row_id: str | None = None,
        button_index: int | None = None,
        text: str | None = None,
    ) -> Message:
        """The recipient answers one of the business's messages: taps a reply button (``button_id``), a
        template's quick-reply button (``button_index``), chooses a list row (``row_id``), or writes
        ``text`` quoting it. Arrives as an inbound message (and webhook) whose context is ``message_id``.
        """
        with self.lock:
            sent = self.by_id.get(message_id)
            if sent is None or sent.direction != "out":
                raise ValueError(f"message_id {message_id[:60]!r} is not a message the business sent")
            if sum(x is not None for x in (button_id, row_id, button_index, text)) != 1:
                raise ValueError("give exactly one of button_id, row_id, button_index, text")
            if text is not None:
                message: dict[str, Any] = {"type": "text", "text": {"body": text}}
            elif button_index is not None:
                message = _quick_reply(sent, button_index, self)
            else:
                message = _interactive_reply(sent, button_id, row_id)
            return self.add_inbound(
                sent.wa_id, message=message, reply_to=sent.id, phone_number_id=sent.phone_number_id
            )

    def _store(self, message: Message) -> None:
        self.messages.append(message)
        self.by_id[message.id] = message
        self._touch()

    def set_status(self, message_id: str, status: str, *, error_code: int | None = None) -> Message | None:
        """Move an outgoing message to ``status`` (sent, delivered, read or failed); reports each step."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        with self.lock:
            message = self.by_id.get(message_id)
            if message is None:
                return None
            if status == vocabulary.MESSAGE_FAILED_STATUS:
                self._fail(message, error_code or error_codes.UNDELIVERABLE)
            else:
                self._advance_to(message, status)
            return message

    def _advance_to(self, message: Message, status: str) -> None:
        # Reaching a later state passes through the earlier ones, as the webhooks would say.
        for step in STATUS_ORDER[1 : STATUS_ORDER.index(status) + 1]:
            self._set_status(message, step)

    def _fail(self, message: Message, code: int) -> None:
        message.error = status_error(code)
        self._set_status(message, vocabulary.MESSAGE_FAILED_STATUS)

    # --- statuses on timers ---------------------------------------------------------------------

    def _schedule(self, message_id: str, status: str, delay: float | None) -> None:
        if delay is None:
            return
        heapq.heappush(self._due, (time.monotonic() + delay, next(self._due_order), message_id, status))
        self.wakeup.notify_all()

    def run_due(self) -> float | None:
        """Apply the status steps whose time has come; seconds until the next one (``None``: none)."""
        with self.lock:
            now = time.monotonic()
            while self._due and self._due[0][0] <= now:
                _, _, message_id, status = heapq.heappop(self._due)
                message = self.by_id.get(message_id)
                if message is None or message.status == vocabulary.MESSAGE_FAILED_STATUS:
                    continue
                if status == vocabulary.MESSAGE_FAILED_STATUS:
                    self._fail(message, message.doomed or error_codes.UNDELIVERABLE)
                    continue
                if _rank(message.status) >= _rank(status) or not self.auto_deliver:
                    continue
                self._set_status(message, status)
                following = {
                    "sent": ("delivered", self.delivered_delay),
                    "delivered": ("read", self.read_delay),
                }
                if status in following:
                    self._schedule(message_id, *following[status])
            return self._due[0][0] - now if self._due else None

    def _set_status(self, message: Message, status: str, *, event: bool = True) -> None:
        if any(s["status"] == status for s in message.statuses):
            return
        now = self.clock.now()
        message.statuses.append({"status": status, "timestamp": now})
        if status == "failed" or STATUS_ORDER.index(status) > _rank(message.status):
            message.status = status
        self._touch()
        if event and message.direction == "out":
            body: dict[str, Any] = {
                "id": message.id,
                "status": status,
                "timestamp": str(int(now)),
                "recipient_id": message.wa_id,
            }
            if status == vocabulary.MESSAGE_FAILED_STATUS and message.error:
                body["errors"] = [message.error]
            else:
                body["pricing"] = self._pricing(message)
            contact = {"wa_id": message.wa_id, "user_id": user_id(message.wa_id)}
            self._event(message.phone_number_id, {"contacts": [contact], "statuses": [body]}, message.id)

    def _pricing(self, message: Message) -> dict[str, Any]:
        """A status's ``pricing`` (per-message pricing): templates by their category, replies free."""
        if message.type == "template":
            content = message.content if isinstance(message.content, dict) else {}
            found = next((t for t in self.templates if t.name == content.get("name")), None)
            category = found.category.lower() if found else _SERVICE
            return {
                "billable": True,
                "pricing_model": vocabulary.PRICING_MODEL_PER_MESSAGE,
                "category": category,
                "type": vocabulary.PRICING_TYPE_REGULAR,
            }
        return {
            "billable": False,
            "pricing_model": vocabulary.PRICING_MODEL_PER_MESSAGE,
            "category": _SERVICE,
            "type": vocabulary.PRICING_TYPE_FREE_SERVICE,
        }

    def _business_digits(self, phone_number_id: str) -> str:
        return re.sub(r"\D", "", self.phone_numbers.get(phone_number_id, {}).get("display_phone_number", ""))

    def mark_inbound_read(self, message_id: str) -> bool:
        with self.lock:
            message = self.by_id.get(message_id)
            if message is None or message.direction != "in":
                return False
            message.status = "read"
            self._touch()
            return True

    def _event(self, phone_number_id: str, value: dict[str, Any], message_id: str) -> None:
        """Record a webhook event in Meta's shape; queue it for the callback URL when there is one."""
        number = self.phone_numbers.get(phone_number_id, {})
        payload = {
            "object": vocabulary.WEBHOOK_OBJECT,
            "entry": [
                {
                    "id": number.get("waba_id", DEFAULT_WABA_ID),
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": vocabulary.MESSAGING_PRODUCT,
                                "metadata": {
                                    "display_phone_number": self._business_digits(phone_number_id),
                                    "phone_number_id": phone_number_id,
                                },
                                **value,
                            },
                        }
                    ],
                }
            ],
        }
        self.webhook_events.append(payload)
        if self.webhook_url:
            body = json.dumps(payload, separators=(",", ":")).encode()
            self.deliveries.append(WebhookDelivery(len(self.webhook_events) - 1, body, message_id))
            self.wakeup.notify_all()

    # --- webhook deliveries ---------------------------------------------------------------------

    def next_delivery(self) -> tuple[WebhookDelivery | None, float | None]:
        """The oldest event not yet delivered, if it is due, else the seconds to wait (``None``: idle).

        Strictly oldest first: a later event waits while an earlier one is retried, so each message's
        statuses (and the answers to it) arrive in the order they happened.
        """
        with self.lock:
            pending = next((d for d in self.deliveries if not d.delivered), None)
            if pending is None or not self.webhook_url:
                return None, None
            wait = pending.next_attempt - time.monotonic()
            return (pending, None) if wait <= 0 else (None, wait)

    def delivery_result(self, delivery: WebhookDelivery, error: str | None) -> None:
        """Record one try: delivered (``error`` is ``None``), or retried after the backoff."""
        with self.lock:
            delivery.attempts += 1
            delivery.last_error = error
            if error is None:
                delivery.delivered = True
            else:
                delivery.next_attempt = time.monotonic() + sandbox_webhook_backoff(delivery.attempts)
            self._touch()

    def messages_to(self, wa_id: str | None = None, *, direction: str | None = "out") -> list[Message]:
        with self.lock:
            return [
                m
                for m in self.messages
                if (wa_id is None or m.wa_id == wa_id) and (direction is None or m.direction == direction)
            ]

    # --- requests and faults --------------------------------------------------------------------

    def record(self, method: str, path: str, status: int, connection_id: str | None) -> None:
        with self.lock:
            self.requests.append(
                RequestRecord(method, path, status, self.clock.now(), self.label, connection_id)
            )

    def add_fault(self, fault: Fault) -> Fault:
        with self.lock:
            fault.id = next(self._fault_ids)
            self.faults.append(fault)
            return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def faults_for(self, method: str, path: str) -> tuple[float, Fault | None]:
        """The latency to add and the failing fault (if any) for one request; uses up ``times``."""
        with self.lock:
            latency = 0.0
            failing: Fault | None = None
            for fault in list(self.faults):
                if not fault.matches(method, path) or self.rng.random() >= fault.rate:
                    continue
                is_failure = fault.drop or fault.status is not None or fault.code is not None
                if is_failure and failing is not None:
                    continue
                latency += fault.latency
                if is_failure:
                    failing = fault
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
            return latency, failing

    def reset(self) -> None:
        """Forget conversations, media, requests, faults and created templates; keep the seed."""
        with self.lock:
            for store in (self.connections, self.phone_numbers, self.wabas, self.profiles, self.media):
                store.clear()
            for log in (self.templates, self.messages, self.requests, self.webhook_events, self.faults):
                log.clear()
            self.by_id.clear()
            self.deliveries.clear()
            self._due.clear()
            self.contact_names.clear()
            self.last_inbound.clear()
            self._hits.clear()
            self.label = None
            self.seed()


def _rank(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else -1


def _digits_of(numbers: Any) -> frozenset[str]:
    return frozenset(re.sub(r"\D", "", str(n)) for n in numbers)


def user_id(wa_id: str) -> str:
    """The recipient's business-scoped user id (``user_id`` in webhooks): stable for a number."""
    digest = int.from_bytes(hashlib.sha256(wa_id.encode()).digest()[:8], "big")
    return f"US.{digest}"


def status_error(code: int) -> dict[str, Any]:
    """A failed status's ``errors[]`` entry, titled and detailed from the spec's error table."""
    row = error_codes.lookup(code)
    title = row.title if row is not None else "Unknown error"
    error: dict[str, Any] = {
        "code": code,
        "title": title,
        "message": title,
        "href": error_codes.ERROR_CODES_HREF,
    }
    details = error_codes.STATUS_ERROR_DETAILS.get(code)
    if details:
        error["error_data"] = {"details": details}
    return error


def _interactive_reply(sent: Message, button_id: str | None, row_id: str | None) -> dict[str, Any]:
    """The inbound ``interactive`` message of a tap on ``sent``'s reply button or list row."""
    content = sent.content if sent.type == "interactive" and isinstance(sent.content, dict) else {}
    action = content.get("action") or {}
    if button_id is not None:
        for button in action.get("buttons") or []:
            reply = button.get("reply") or {}
            if reply.get("id") == button_id:
                chosen = {"id": button_id, "title": reply.get("title", "")}
                kind = vocabulary.INTERACTIVE_BUTTON_REPLY
                return {"type": "interactive", "interactive": {"type": kind, kind: chosen}}
        raise ValueError(f"button_id {button_id[:60]!r} is not a reply button of message {sent.id}")
    for section in action.get("sections") or []:
        for row in section.get("rows") or []:
            if row.get("id") == row_id:
                chosen = {"id": row["id"], "title": row.get("title", "")}
                if row.get("description"):
                    chosen["description"] = row["description"]
                kind = vocabulary.INTERACTIVE_LIST_REPLY
                return {"type": "interactive", "interactive": {"type": kind, kind: chosen}}
    raise ValueError(f"row_id {str(row_id)[:60]!r} is not a list row of message {sent.id}")


def _quick_reply(sent: Message, index: int, state: SandboxState) -> dict[str, Any]:
    """The inbound ``button`` message of a tap on a template's quick-reply button (by its index)."""
    content = sent.content if sent.type == "template" and isinstance(sent.content, dict) else {}
    template = state.find_template(str(content.get("name")), str((content.get("language") or {}).get("code")))
    buttons = [
        b
        for c in (template.components if template else [])
        if str(c.get("type", "")).upper() == "BUTTONS"
        for b in c.get("buttons") or []
    ]
    if (
        not 0 <= index < len(buttons)
        or str(buttons[index].get("type", "")).upper() != vocabulary.TEMPLATE_BUTTON_QUICK_REPLY
    ):
        raise ValueError(f"button_index {index} is not a quick-reply button of message {sent.id}")
    text = str(buttons[index].get("text", ""))
    payload = text
    for component in content.get("components") or []:
        if component.get("type") == "button" and str(component.get("index")) == str(index):
            for param in component.get("parameters") or []:
                if param.get("type") == "payload":
                    payload = str(param.get("payload", text))
    return {"type": "button", "button": {"payload": payload, "text": text}}
