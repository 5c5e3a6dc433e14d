"""WhatsAppNotifier through a loopback gateway: every recipient is tried, and the fallback alert never
carries a secret the failing task printed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_whatsapp.errors import WhatsAppError, WhatsAppPermanentError
from airflow_provider_whatsapp.notifications.whatsapp import WhatsAppNotifier
from airflow_provider_whatsapp.redact import mask_phone_number
from tests.conftest import MESSAGES, TEST_KEY
from tests.loopback import LoopbackServer, Recorded, Reply, graph_error, sent

FIRST = "14155550100"
SECOND = "442079460000"


def _first_refused(request: Recorded) -> Reply:
    # 131030: the recipient is not on the test number's allowed list, a permanent error.
    if request.json["to"] == FIRST:
        return Reply(status=400, json=graph_error(131030, "Recipient phone number not in allowed list"))
    return Reply(json=sent("wamid.SECOND", SECOND))


def test_a_failed_recipient_does_not_stop_the_others(gateway: LoopbackServer) -> None:
    gateway.route("POST", MESSAGES, _first_refused)
    notifier = WhatsAppNotifier(to=[f"+{FIRST}", f"+{SECOND}"], body="load failed")

    with pytest.raises(WhatsAppPermanentError) as raised:
        notifier.notify({})

    assert [r.json["to"] for r in gateway.requests] == [FIRST, SECOND]
    message = str(raised.value)
    assert "1 of 2" in message
    assert mask_phone_number(FIRST) in message
    assert FIRST not in message
    assert mask_phone_number(SECOND) not in message


def test_async_notify_tries_every_recipient_too(gateway: LoopbackServer) -> None:
    gateway.route("POST", MESSAGES, _first_refused)
    notifier = WhatsAppNotifier(to=[f"+{FIRST}", f"+{SECOND}"], body="load failed")

    with pytest.raises(WhatsAppError, match=r"1 of 2 recipient\(s\) were not alerted") as raised:
        asyncio.run(notifier.async_notify({}))

    assert [r.json["to"] for r in gateway.requests] == [FIRST, SECOND]
    assert mask_phone_number(FIRST) in str(raised.value)


def test_every_recipient_alerted_raises_nothing(gateway: LoopbackServer) -> None:
    gateway.route("POST", MESSAGES, Reply(json=sent()))

    WhatsAppNotifier(to=[f"+{FIRST}", f"+{SECOND}"], body="ok").notify({})

    assert len(gateway.requests) == 2


def _dag() -> Any:
    from airflow import DAG

    return DAG("notifier_fallback", schedule=None)


def _fallback_body(gateway: LoopbackServer, exception: Exception) -> str:
    gateway.route("POST", MESSAGES, Reply(json=sent()))
    notifier = WhatsAppNotifier(to=f"+{FIRST}", body="{{ missing.attribute }} failed")
    context: dict[str, Any] = {"dag": _dag(), "exception": exception, "run_id": "manual__1"}
    notifier.render_template_fields(context)  # type: ignore[arg-type]
    notifier.notify(context)  # type: ignore[arg-type]
    (request,) = gateway.requests
    body: str = request.json["text"]["body"]
    assert body.startswith("Airflow: notifier_fallback (run manual__1) failed: ")
    return body


def test_fallback_alert_hides_secrets_airflow_masks(gateway: LoopbackServer) -> None:
    from airflow_provider_whatsapp._compat import mask_secret

    secret = "db-password-9c1e77aa"
    mask_secret(secret)

    body = _fallback_body(gateway, RuntimeError(f"could not log in with {secret} as etl"))

    assert secret not in body
    assert "could not log in with *** as etl" in body


def test_fallback_alert_hides_the_api_key(gateway: LoopbackServer) -> None:
    body = _fallback_body(gateway, RuntimeError(f"request with key {TEST_KEY} refused"))

    assert TEST_KEY not in body
    assert "request with key *** refused" in body


def test_async_fallback_alert_hides_the_api_key(gateway: LoopbackServer) -> None:
    gateway.route("POST", MESSAGES, Reply(json=sent()))
    notifier = WhatsAppNotifier(to=f"+{FIRST}", body="{{ missing.attribute }} failed")
    context: dict[str, Any] = {"dag": _dag(), "exception": RuntimeError(f"key {TEST_KEY} refused")}
    notifier.render_template_fields(context)  # type: ignore[arg-type]

    asyncio.run(notifier.async_notify(context))  # type: ignore[arg-type]

    (request,) = gateway.requests
    assert TEST_KEY not in request.json["text"]["body"]
    assert "key *** refused" in request.json["text"]["body"]


def test_each_recipient_is_normalised_once_and_its_payload_built_once(
    gateway: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_whatsapp import messages
    from airflow_provider_whatsapp.messages import _common

    gateway.route("POST", MESSAGES, Reply(json=sent()))
    notifier = WhatsAppNotifier(to=[f"+{FIRST}", f"+{SECOND}"], body="load failed")
    normalised: list[Any] = []
    payloads: list[Any] = []
    real_normalize, real_to_payload = _common.normalize_recipient, _common.OutgoingMessage.to_payload

    def normalize(value: Any) -> Any:
        normalised.append(value)
        return real_normalize(value)

    def to_payload(self: Any, to: Any, **kwargs: Any) -> Any:
        payloads.append(to)
        return real_to_payload(self, to, **kwargs)

    for module in (_common, messages):
        monkeypatch.setattr(module, "normalize_recipient", normalize)
    monkeypatch.setattr(_common.OutgoingMessage, "to_payload", to_payload)

    notifier.notify({})

    assert normalised == [f"+{FIRST}", f"+{SECOND}"]
    assert payloads == [FIRST, SECOND]
    assert [r.json["to"] for r in gateway.requests] == [FIRST, SECOND]
