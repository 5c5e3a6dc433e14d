"""Alerts that arrive: the notifier picks text or template from the recipient's window, confirms a status,
and follows a text refused with 131047 by the template, through the sandbox over a real socket."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp.errors import WhatsAppError, WhatsAppPermanentError, WhatsAppValidationError
from airflow_provider_whatsapp.notifications.whatsapp import WhatsAppNotifier
from airflow_provider_whatsapp.sandbox.controller import WhatsAppSandbox
from airflow_provider_whatsapp.spec.error_codes import RE_ENGAGEMENT, UNDELIVERABLE
from airflow_provider_whatsapp.webhooks.store import EventStore
from tests.conversations.statuses import RECIPIENT, Receiver, inbound, store_at

pytestmark = pytest.mark.whatsapp_sandbox(auto_deliver=False)

OTHER = "442079460000"


@pytest.fixture
def store(whatsapp_sandbox: WhatsAppSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EventStore:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_DEFAULT", whatsapp_sandbox.connection_json(events_path=str(tmp_path))
    )
    return store_at(tmp_path)


def notifier(**kwargs: Any) -> WhatsAppNotifier:
    args: dict[str, Any] = {
        "to": f"+{RECIPIENT}",
        "body": "load failed: disk full",
        "template_name": "etl_failure",
        "body_parameters": ["load", "02:00", "disk full"],
        "confirm_poke_interval": 0.05,
        "confirm_timeout": 20,
    }
    return WhatsAppNotifier(**{**args, **kwargs})


def kinds(sandbox: WhatsAppSandbox, wa_id: str = RECIPIENT) -> list[str]:
    return [message.type for message in sandbox.messages_to(wa_id)]


def text_fails_with(code: int) -> Any:
    """The phone's side: a free-form text fails with ``code``, a template is delivered."""

    def react(sandbox: WhatsAppSandbox, message: Any) -> None:
        if message.type == "template":
            sandbox.set_status(message.id, "delivered")
        else:
            sandbox.set_status(message.id, "failed", error_code=code)

    return react


# --- parse time ----------------------------------------------------------------------------------


def test_it_needs_a_body_or_a_template_and_a_known_confirm() -> None:
    with pytest.raises(WhatsAppValidationError, match="needs body, template_name, or both"):
        WhatsAppNotifier(to=RECIPIENT)
    with pytest.raises(WhatsAppValidationError, match="confirm: must be None or one of"):
        notifier(confirm="delivered!")
    with pytest.raises(WhatsAppValidationError, match="confirm_timeout"):
        notifier(confirm_timeout=-5)
    with pytest.raises(WhatsAppValidationError, match="body: 4097 characters"):
        notifier(body="x" * 4097)  # both messages are still checked at parse time


# --- text or template ----------------------------------------------------------------------------


def test_the_text_goes_to_a_recipient_whose_window_is_open_the_template_to_the_others(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    store.add(inbound(RECIPIENT, ago=3600))  # wrote an hour ago
    store.add(inbound(OTHER, ago=25 * 3600, wamid="wamid.OLD"))  # wrote yesterday: window closed

    notifier(to=[RECIPIENT, OTHER]).notify({})  # type: ignore[arg-type]

    assert kinds(whatsapp_sandbox) == ["text"]
    assert kinds(whatsapp_sandbox, OTHER) == ["template"]


def test_with_nothing_known_of_the_window_the_template_goes(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    notifier().notify({})  # type: ignore[arg-type]

    (message,) = whatsapp_sandbox.messages_to(RECIPIENT)
    assert message.type == "template"


def test_a_body_that_fails_to_render_leaves_the_template(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    from airflow import DAG

    store.add(inbound(RECIPIENT))
    alert = notifier(body="{{ missing.attribute }} failed")
    context: dict[str, Any] = {"dag": DAG("notifier_render", schedule=None), "run_id": "manual__1"}
    alert.render_template_fields(context)  # type: ignore[arg-type]

    alert.notify(context)  # type: ignore[arg-type]

    assert kinds(whatsapp_sandbox) == ["template"]  # not the "failed to render" fallback text


# --- confirm -------------------------------------------------------------------------------------


def test_a_text_refused_for_the_closed_window_is_followed_by_the_template(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    store.add(inbound(RECIPIENT, ago=24 * 3600 - 30))  # the store still says open; WhatsApp disagrees

    with Receiver(whatsapp_sandbox, store, react=text_fails_with(RE_ENGAGEMENT)):
        notifier(confirm="sent").notify({})  # type: ignore[arg-type]

    text, template = whatsapp_sandbox.messages_to(RECIPIENT)
    assert (text.type, text.status) == ("text", "failed")
    assert (template.type, template.status) == ("template", "delivered")
    assert template.content["name"] == "etl_failure"


def test_async_notify_follows_a_refused_text_by_the_template_too(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    store.add(inbound(RECIPIENT))

    with Receiver(whatsapp_sandbox, store, react=text_fails_with(RE_ENGAGEMENT)):
        asyncio.run(asyncio.wait_for(notifier(confirm="delivered").async_notify({}), 30))  # type: ignore[arg-type]

    assert kinds(whatsapp_sandbox) == ["text", "template"]


def test_only_131047_brings_the_template(whatsapp_sandbox: WhatsAppSandbox, store: EventStore) -> None:
    store.add(inbound(RECIPIENT))

    with (
        Receiver(whatsapp_sandbox, store, react=text_fails_with(UNDELIVERABLE)),
        pytest.raises(WhatsAppPermanentError, match="1 of 1 recipient") as raised,
    ):
        notifier(confirm="sent").notify({})  # type: ignore[arg-type]

    assert kinds(whatsapp_sandbox) == ["text"]  # an undeliverable number gets no second message
    assert "WhatsAppUndeliverableError" in str(raised.value)
    assert RECIPIENT not in str(raised.value)


def test_a_template_that_fails_is_not_sent_again(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    def everything_fails(sandbox: WhatsAppSandbox, message: Any) -> None:
        sandbox.set_status(message.id, "failed", error_code=RE_ENGAGEMENT)

    with Receiver(whatsapp_sandbox, store, react=everything_fails), pytest.raises(WhatsAppPermanentError):
        notifier(confirm="sent").notify({})  # type: ignore[arg-type]

    assert kinds(whatsapp_sandbox) == ["template"]


def test_a_status_not_reached_in_time_is_reported_not_resent(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    with pytest.raises(WhatsAppError, match="1 of 1 recipient") as raised:
        notifier(body=None, confirm="delivered", confirm_timeout=0.3).notify({})  # type: ignore[arg-type]

    assert "WhatsAppNotConfirmedError" in str(raised.value)
    assert "no status seen" in str(raised.value)
    assert kinds(whatsapp_sandbox) == ["template"]


def test_every_recipient_confirmed_raises_nothing(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore
) -> None:
    with Receiver(whatsapp_sandbox, store, react=lambda sb, m: sb.set_status(m.id, "read")):
        notifier(to=[RECIPIENT, OTHER], body=None, confirm="read").notify({})  # type: ignore[arg-type]

    assert kinds(whatsapp_sandbox) == kinds(whatsapp_sandbox, OTHER) == ["template"]
