"""Helpers for the status, confirm and notifier tests: events written into a real event store, and a
stand-in receiver that reads the sandbox's webhook events over HTTP and stores them."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.webhooks.events import (
    InboundMessage,
    StatusEvent,
    WebhookError,
    parse_delivery,
)
from airflow_provider_whatsapp.webhooks.store import EventStore

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_provider_whatsapp.sandbox.controller import WhatsAppSandbox
    from airflow_provider_whatsapp.sandbox.state import Message

PHONE_NUMBER_ID = "106540352242922"
RECIPIENT = "14155550100"
WAMID = "wamid.HBgLMTQxNTU1NTAxMDAVAgARGBI2QjQ1"


def store_at(path: Path) -> EventStore:
    return EventStore(path, retention=timedelta(days=30))


def status(
    wamid: str = WAMID, state: str = "delivered", *, code: int | None = None, **fields: Any
) -> StatusEvent:
    """A status event as the receiver would store it; ``code`` makes it a ``failed`` one."""
    errors: tuple[WebhookError, ...] = ()
    if code is not None:
        errors = (WebhookError(code=code, title=fields.pop("title", "Re-engagement message"), **fields),)
    return StatusEvent(
        wamid=wamid,
        status=state,
        timestamp=int(time.time()),
        recipient_id=RECIPIENT,
        phone_number_id=PHONE_NUMBER_ID,
        errors=errors,
    )


def inbound(sender: str = RECIPIENT, *, ago: float = 60.0, wamid: str = "wamid.INBOUND1") -> InboundMessage:
    """A text the recipient wrote ``ago`` seconds ago (opens their 24-hour window when recent)."""
    return InboundMessage(
        wamid=wamid,
        sender=sender,
        type="text",
        timestamp=int(time.time() - ago),
        phone_number_id=PHONE_NUMBER_ID,
        text="hi",
    )


def wait_until(condition: Callable[[], Any], *, within: float = 20.0) -> Any:
    """Poll ``condition`` every 0.05 s; its first truthy value, or an AssertionError after ``within`` s."""
    ends = time.monotonic() + within
    while time.monotonic() < ends:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {within} s")


class Receiver:
    """Stands in for the webhook receiver: every 0.05 s it reads the sandbox's webhook events through
    its HTTP API (``GET /_sandbox/webhooks``), parses each delivery with ``parse_delivery`` and stores
    the events. ``react(sandbox, message)`` runs once for each message the business sent, as the
    recipient's phone would (e.g. ``sandbox.set_status(message.id, "failed", error_code=131047)``).
    """

    def __init__(
        self,
        sandbox: WhatsAppSandbox,
        store: EventStore,
        react: Callable[[WhatsAppSandbox, Message], None] | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.store = store
        self.react = react
        self.stored = 0
        self._delivered = 0
        self._reacted: set[str] = set()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-receiver", daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        if self.error is not None:
            raise AssertionError(f"the test receiver failed: {self.error!r}") from self.error

    def pump(self) -> None:
        if self.react is not None:
            for message in self.sandbox.messages:
                if message.id not in self._reacted:
                    self._reacted.add(message.id)
                    self.react(self.sandbox, message)
        with urllib.request.urlopen(f"{self.sandbox.url}/_sandbox/webhooks", timeout=10) as answer:
            deliveries = json.load(answer)["data"]
        for delivery in deliveries[self._delivered :]:
            for event in parse_delivery(json.dumps(delivery).encode()):
                self.stored += self.store.add(event)
        self._delivered = len(deliveries)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.pump()
            except BaseException as error:
                self.error = error
                return
