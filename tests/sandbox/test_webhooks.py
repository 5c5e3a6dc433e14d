"""The sandbox speaks webhooks like WhatsApp: subscription handshake, signed deliveries in Meta's shape,
re-delivery while the receiver is down, failures by status, and replies from the inbox.

Every event goes through a real socket to a stand-in receiver (:mod:`tests.sandbox.receiver`); the
test checks the signature itself with ``hmac``, the shape against Meta's ``WebhookPayload`` schema,
and reads the event with pywa, a third-party WhatsApp library that never saw this sandbox.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_whatsapp.errors import WhatsAppError, WhatsAppValidationError
from airflow_provider_whatsapp.hooks.maton import MatonHook
from airflow_provider_whatsapp.sandbox import WhatsAppSandbox
from airflow_provider_whatsapp.sandbox.cli import main as sandbox_cli
from airflow_provider_whatsapp.spec import error_codes
from tests.sandbox.conftest import RECIPIENT, buttons, eventually, template, text
from tests.sandbox.receiver import Delivery, Receiver, webhook_schema_errors

pywa = pytest.importorskip("pywa", reason="pywa (a test dependency in the dev extra) is not installed")
from pywa import WhatsApp, types

APP_SECRET = "sandbox-app-secret-0123456789"
LIST = {
    "messaging_product": "whatsapp",
    "to": RECIPIENT,
    "type": "interactive",
    "interactive": {
        "type": "list",
        "body": {"text": "Which report?"},
        "action": {
            "button": "Choose",
            "sections": [
                {
                    "title": "Reports",
                    "rows": [
                        {"id": "daily", "title": "Daily", "description": "Yesterday's numbers"},
                        {"id": "weekly", "title": "Weekly", "description": "Last week"},
                    ],
                }
            ],
        },
    },
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def wa(whatsapp_sandbox: WhatsAppSandbox) -> WhatsApp:
    return WhatsApp(phone_id=whatsapp_sandbox.phone_number_id, token=whatsapp_sandbox.api_key)


def _value(delivery: Delivery) -> dict[str, Any]:
    return delivery.json["entry"][0]["changes"][0]["value"]


def _check(delivery: Delivery) -> None:
    """Signed with the app secret (checked here with hmac) and in Meta's documented shape."""
    expected = "sha256=" + hmac.new(APP_SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert delivery.signature is not None and hmac.compare_digest(delivery.signature, expected)
    assert webhook_schema_errors(delivery.json) == []


def _arrived(receiver: Receiver, kind: str, count: int) -> list[Delivery]:
    """The first ``count`` deliveries of ``statuses`` or ``messages`` the receiver took (waiting for them)."""

    def enough() -> list[Delivery] | None:
        found = [d for d in receiver.taken() if kind in _value(d)]
        return found[:count] if len(found) >= count else None

    return eventually(enough)


def _order(deliveries: list[Delivery]) -> list[tuple[str, str]]:
    return [(s["id"], s["status"]) for d in deliveries for s in _value(d)["statuses"]]


def _send(payload: dict[str, Any]) -> str:
    return MatonHook.message_id(MatonHook().send_message(payload))


# --- deliveries ----------------------------------------------------------------------------------


@pytest.mark.whatsapp_sandbox(app_secret=APP_SECRET, read_delay=0.05)
def test_statuses_advance_on_their_own_and_arrive_signed_in_meta_shape(
    whatsapp_sandbox: WhatsAppSandbox, receiver: Receiver, wa: WhatsApp
) -> None:
    whatsapp_sandbox.set_webhook(receiver.url, app_secret=APP_SECRET)
    free_form = _send(text("load finished"))
    templated = _send(template("hello_world"))

    arrived = _arrived(receiver, "statuses", 6)

    seen = []
    for delivery in arrived:
        _check(delivery)
        status = types.MessageStatus.from_update(wa, delivery.json)
        seen.append((status.id, str(status.status)))
        assert status.from_user.wa_id == RECIPIENT
        assert status.metadata.phone_number_id == whatsapp_sandbox.phone_number_id
        assert status.pricing is not None and status.pricing.billable == (status.id == templated)
    for wamid in (free_form, templated):
        assert [s for i, s in seen if i == wamid] == ["sent", "delivered", "read"]


@pytest.mark.whatsapp_sandbox(app_secret=APP_SECRET)
def test_taps_and_typed_replies_in_the_inbox_arrive_as_inbound_webhooks(
    whatsapp_sandbox: WhatsAppSandbox, receiver: Receiver, wa: WhatsApp, client: httpx.Client
) -> None:
    # Configured as a script would, over the control endpoint.
    configured = client.post("/_sandbox/webhooks", json={"url": receiver.url, "app_secret": APP_SECRET})
    assert configured.json()["url"] == receiver.url
    question = _send(buttons(2))
    menu = _send(LIST)

    assert client.post("/_sandbox/reply", json={"message_id": question, "button_id": "b1"}).status_code == 200
    assert client.post("/_sandbox/reply", json={"message_id": menu, "row_id": "weekly"}).status_code == 200
    assert (
        client.post("/_sandbox/reply", json={"message_id": menu, "text": "and monthly?"}).status_code == 200
    )
    refused = client.post("/_sandbox/reply", json={"message_id": question, "button_id": "nope"})
    assert refused.status_code == 400 and "button_id" in refused.text

    inbound = _arrived(receiver, "messages", 3)
    for delivery in inbound:
        _check(delivery)
    tap = types.CallbackButton.from_update(wa, inbound[0].json)
    assert (tap.data, tap.title, tap.reply_to_message.id) == ("b1", "Option 1", question)
    choice = types.CallbackSelection.from_update(wa, inbound[1].json)
    assert (choice.data, choice.title, choice.description) == ("weekly", "Weekly", "Last week")
    assert choice.reply_to_message.id == menu
    typed = types.Message.from_update(wa, inbound[2].json)
    assert (typed.text, typed.reply_to_message.id, typed.from_user.wa_id) == (
        "and monthly?",
        menu,
        RECIPIENT,
    )
    deliveries = client.get("/_sandbox/webhooks").json()["deliveries"]
    assert deliveries and all(d["state"] == "delivered" and d["attempts"] >= 1 for d in deliveries)


# --- failures by status ---------------------------------------------------------------------------


@pytest.mark.whatsapp_sandbox(require_window=True, unreachable=["+44 20 7946 0000"])
def test_outside_the_window_and_to_unreachable_numbers_sends_are_accepted_then_fail_by_status(
    whatsapp_sandbox: WhatsAppSandbox, receiver: Receiver, wa: WhatsApp
) -> None:
    whatsapp_sandbox.set_webhook(receiver.url, app_secret=APP_SECRET)
    late = _send(text("ETL failed"))  # 200 and a wamid, as WhatsApp answers
    gone = _send(template("hello_world", to="442079460000"))

    failures = _arrived(receiver, "statuses", 2)

    codes = {}
    for delivery in failures:
        _check(delivery)
        status = types.MessageStatus.from_update(wa, delivery.json)
        assert str(status.status) == "failed" and status.error is not None
        codes[status.id] = (status.error.code, _value(delivery)["statuses"][0]["errors"][0]["title"])
    assert codes == {
        late: (error_codes.RE_ENGAGEMENT, error_codes.lookup(error_codes.RE_ENGAGEMENT).title),
        gone: (error_codes.UNDELIVERABLE, error_codes.lookup(error_codes.UNDELIVERABLE).title),
    }


# --- subscription --------------------------------------------------------------------------------


def test_subscribing_through_the_hook_verifies_the_callback_then_delivers_there(
    whatsapp_sandbox: WhatsAppSandbox, receiver: Receiver
) -> None:
    hook = MatonHook()
    assert hook.get_webhook_subscription() == {"subscribed": False, "callback_url": None, "apps": []}

    with pytest.raises(WhatsAppError, match="Callback verification failed"):
        hook.subscribe_webhooks(receiver.url, "not-the-receivers-token")
    assert hook.get_webhook_subscription()["subscribed"] is False
    assert whatsapp_sandbox.state.webhook_url is None

    assert hook.subscribe_webhooks(receiver.url, receiver.verify_token) == {"success": True}

    (_, handshake) = receiver.verifications
    assert handshake["hub.mode"] == "subscribe" and handshake["hub.verify_token"] == receiver.verify_token
    assert handshake["hub.challenge"]
    subscription = hook.get_webhook_subscription()
    assert subscription["subscribed"] is True and subscription["callback_url"] == receiver.url
    wamid = _send(text("subscribed"))
    assert [s["id"] for d in _arrived(receiver, "statuses", 1) for s in _value(d)["statuses"]] == [wamid]
    # Without an app secret (through Maton) the events are signed with one the user never sees.
    assert receiver.taken()[0].signature.startswith("sha256=")


def test_a_callback_the_sandbox_cannot_reach_is_refused(whatsapp_sandbox: WhatsAppSandbox) -> None:
    with pytest.raises(WhatsAppError, match="Callback verification failed"):
        MatonHook().subscribe_webhooks(Receiver().url, "token-123")  # nothing listens there
    with pytest.raises(WhatsAppValidationError, match=r"^callback_url: "):
        MatonHook().subscribe_webhooks("http://example.com/hook", "token-123")


def test_the_cli_takes_the_webhook_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert sandbox_cli(["--port", "0", "--webhook-url", "https://example.com/hook"]) == 2
    assert "only calls this machine" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sandbox_cli(["--status-delays", "1,x"])
    assert "SENT,DELIVERED" in capsys.readouterr().err


# --- re-delivery ---------------------------------------------------------------------------------


@pytest.mark.whatsapp_sandbox(app_secret=APP_SECRET)
def test_a_receiver_that_is_down_gets_every_event_later_in_order_and_once(
    whatsapp_sandbox: WhatsAppSandbox,
) -> None:
    down = Receiver()  # its port is free: nothing listens yet
    whatsapp_sandbox.set_webhook(down.url, app_secret=APP_SECRET)
    first = _send(text("one"))
    second = _send(text("two"))
    eventually(lambda: any(d["attempts"] >= 2 for d in whatsapp_sandbox.webhook_deliveries()))
    # The sends were answered at once, while nothing could be delivered.
    assert all(d["state"] == "pending" for d in whatsapp_sandbox.webhook_deliveries())

    down.fail_next = 1  # back up, but the first answer is a 500
    down.start()
    try:
        taken = _arrived(down, "statuses", 4)
        # In the order the events happened, each message's sent before its delivered.
        happened = [
            (s["id"], s["status"])
            for e in whatsapp_sandbox.state.webhook_events
            for s in e["entry"][0]["changes"][0]["value"]["statuses"]
        ]
        assert _order(taken) == happened[:4]
        for wamid in (first, second):
            assert [status for i, status in _order(taken) if i == wamid] == ["sent", "delivered"]
        assert down.deliveries[0].answered == 500 and down.deliveries[1].body == down.deliveries[0].body
        # A later event comes after them; none of the taken ones is sent again.
        third = _send(text("three"))
        _arrived(down, "statuses", 6)
        assert _order(down.taken())[4:] == [(third, "sent"), (third, "delivered")]
        bodies = [d.body for d in down.taken()]
        assert len(set(bodies)) == len(bodies) == 6
    finally:
        down.stop()
