"""The refusals the issue names, each with the status and body the real service gives, and what the
provider's hook makes of them."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_whatsapp.errors import (
    MatonNoConnectionError,
    WhatsAppAuthError,
    WhatsAppInvalidParameterError,
    WhatsAppRateLimitError,
    WhatsAppTemplateNotFoundError,
    WhatsAppTemplateParameterCountError,
)
from airflow_provider_whatsapp.hooks.maton import MatonHook
from airflow_provider_whatsapp.sandbox import WhatsAppSandbox
from airflow_provider_whatsapp.spec.limits import MATON_REQUESTS_PER_SECOND, TEXT_BODY_MAX
from tests.sandbox.conftest import (
    RECIPIENT,
    assert_graph_error,
    buttons,
    messages_path,
    template,
    text,
)


def hook() -> MatonHook:
    # One attempt and no client-side limiter: the sandbox's answer reaches the test unchanged.
    return MatonHook(max_attempts=1, rate_limit=0)


def test_a_text_is_accepted_and_stored_with_a_wamid(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    response = client.post(messages_path(whatsapp_sandbox), json=text("hello", to="+1 (415) 555-0100"))

    assert response.status_code == 200
    answer = response.json()
    assert answer["messaging_product"] == "whatsapp"
    assert answer["contacts"] == [{"input": "+1 (415) 555-0100", "wa_id": RECIPIENT}]
    wamid = answer["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    (stored,) = whatsapp_sandbox.messages_to(RECIPIENT)
    assert stored.id == wamid
    assert stored.content == {"body": "hello"}
    assert stored.connection_id == whatsapp_sandbox.connection_id


def test_four_reply_buttons_are_refused(whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client) -> None:
    assert client.post(messages_path(whatsapp_sandbox), json=buttons(3)).status_code == 200

    error = assert_graph_error(client.post(messages_path(whatsapp_sandbox), json=buttons(4)), 400, 131009)

    assert "4 buttons" in error["error_data"]["details"]
    with pytest.raises(WhatsAppInvalidParameterError) as caught:
        hook().send_message(buttons(4))
    assert caught.value.code == 131009


def test_a_4097_character_text_is_refused(whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client) -> None:
    path = messages_path(whatsapp_sandbox)
    assert client.post(path, json=text("x" * TEXT_BODY_MAX)).status_code == 200

    error = assert_graph_error(client.post(path, json=text("x" * (TEXT_BODY_MAX + 1))), 400, 100)

    assert "4096" in error["error_data"]["details"]
    with pytest.raises(WhatsAppInvalidParameterError):
        hook().send_message(text("x" * (TEXT_BODY_MAX + 1)))
    assert len(whatsapp_sandbox.messages_to(RECIPIENT)) == 1


def test_a_template_with_the_wrong_parameter_count_is_refused(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    path = messages_path(whatsapp_sandbox)
    assert client.post(path, json=template("order_update", "Ana", "A-17", "shipped")).status_code == 200

    error = assert_graph_error(client.post(path, json=template("order_update", "Ana", "A-17")), 400, 132000)

    assert "(2)" in error["error_data"]["details"] and "(3)" in error["error_data"]["details"]
    with pytest.raises(WhatsAppTemplateParameterCountError):
        hook().send_message(template("order_update", "Ana"))


def test_an_unknown_template_is_refused(whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client) -> None:
    error = assert_graph_error(
        client.post(messages_path(whatsapp_sandbox), json=template("no_such_template")), 400, 132001
    )

    assert "no_such_template" in error["error_data"]["details"]
    with pytest.raises(WhatsAppTemplateNotFoundError):
        hook().send_message(template("no_such_template"))


def test_a_bad_key_gets_mato_401(whatsapp_sandbox: WhatsAppSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = {"Authorization": "Bearer wrong-key"}
    response = httpx.post(
        whatsapp_sandbox.url + messages_path(whatsapp_sandbox), json=text("hi"), headers=bad
    )

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthorized"
    assert "code" not in response.json()["error"]  # Maton's own error, not Graph's
    assert httpx.get(whatsapp_sandbox.url + "/connections").status_code == 401
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_DEFAULT", whatsapp_sandbox.connection_json().replace("sandbox-key", "wrong-key")
    )
    with pytest.raises(WhatsAppAuthError):
        hook().send_message(text("hi"))
    assert whatsapp_sandbox.messages_to(RECIPIENT) == []


def test_a_bad_token_on_graph_direct_gets_graph_190(whatsapp_sandbox: WhatsAppSandbox) -> None:
    response = httpx.post(
        whatsapp_sandbox.url + messages_path(whatsapp_sandbox, direct=True),
        json=text("hi"),
        headers={"Authorization": "Bearer wrong"},
    )
    assert_graph_error(response, 401, 190)


def test_an_unknown_maton_connection_gets_mato_400(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = client.post(
        messages_path(whatsapp_sandbox), json=text("hi"), headers={"Maton-Connection": "no-such-connection"}
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "connection_not_found" and "no-such-connection" in error["message"]
    assert "code" not in error
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_DEFAULT", whatsapp_sandbox.connection_json(connection_id="no-such-connection")
    )
    with pytest.raises(MatonNoConnectionError):
        hook().send_message(text("hi"))


def test_a_named_maton_connection_is_used(
    whatsapp_sandbox: WhatsAppSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_DEFAULT",
        whatsapp_sandbox.connection_json(connection_id=whatsapp_sandbox.connection_id),
    )
    hook().send_message(text("hi"))
    assert whatsapp_sandbox.messages_to(RECIPIENT)[0].connection_id == whatsapp_sandbox.connection_id


def test_no_active_connection_gets_mato_400(whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client) -> None:
    assert client.delete(f"/connections/{whatsapp_sandbox.connection_id}").status_code == 200

    response = client.post(messages_path(whatsapp_sandbox), json=text("hi"))

    assert response.status_code == 400
    with pytest.raises(MatonNoConnectionError):
        hook().send_message(text("hi"))


def test_the_eleventh_request_in_one_second_gets_429(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    path = f"/whatsapp-business/v21.0/{whatsapp_sandbox.phone_number_id}"
    answers = [client.get(path) for _ in range(MATON_REQUESTS_PER_SECOND + 1)]

    assert [a.status_code for a in answers[:MATON_REQUESTS_PER_SECOND]] == [200] * MATON_REQUESTS_PER_SECOND
    limited = answers[-1]
    assert limited.status_code == 429, "the 11th request within a second must be refused"
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["type"] == "rate_limit_exceeded"
    with pytest.raises(WhatsAppRateLimitError) as caught:
        hook().get_phone_number()
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1


def test_the_hook_stays_under_the_rate_limit_on_its_own(whatsapp_sandbox: WhatsAppSandbox) -> None:
    with MatonHook() as steady:
        for _ in range(MATON_REQUESTS_PER_SECOND + 5):
            steady.get_phone_number()
    assert all(r.status == 200 for r in whatsapp_sandbox.requests())


def test_graph_direct_paths_are_not_under_matons_limit(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    path = f"/v21.0/{whatsapp_sandbox.phone_number_id}"
    assert {client.get(path).status_code for _ in range(MATON_REQUESTS_PER_SECOND + 3)} == {200}


def test_an_unknown_gateway_path_is_a_404(client: httpx.Client) -> None:
    response = client.get("/whatsapp-business/messages")
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"
