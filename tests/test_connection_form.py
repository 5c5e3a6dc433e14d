"""What the connection form can write is what the hook understands: Graph direct written as ``none``
(a form cannot save an empty string), a control plane URL, a rate limit."""

from __future__ import annotations

import pytest

from airflow_provider_whatsapp.hooks import _paths
from airflow_provider_whatsapp.hooks._settings import GRAPH_DIRECT_APP, settings_from_connection
from tests.conftest import PHONE_NUMBER_ID, TEST_KEY, connection_json
from tests.loopback import LoopbackServer, Reply, sent


def _settings(**extra: object):  # type: ignore[no-untyped-def]
    return settings_from_connection(
        api_key=TEST_KEY, host="https://graph.facebook.com", port=None, schema=None, extra=extra, conn_id="c"
    )


@pytest.mark.parametrize("written", [GRAPH_DIRECT_APP, "None", " none ", ""])
def test_app_none_from_the_form_means_graph_direct(written: str) -> None:
    settings = _settings(app=written)

    assert not settings.via_maton
    assert (
        _paths.graph_url(settings.base_url, settings.app, settings.api_version, ("123", "messages"))
        == "https://graph.facebook.com/v21.0/123/messages"
    )


def test_form_values_as_airflow_2_stores_them() -> None:
    """Airflow 2 keeps a text field's value as a string, a number field's as a float."""
    settings = _settings(rate_limit=2.5, ctrl_url="ctrl.example.com", api_version="v22.0")

    assert settings.rate_limit == 2.5
    assert settings.ctrl_url == "https://ctrl.example.com"
    assert (
        _paths.graph_url(settings.base_url, settings.app, settings.api_version, ("1", "messages"))
        == "https://graph.facebook.com/whatsapp-business/v22.0/1/messages"
    )


def test_a_graph_direct_connection_from_the_form_sends_without_the_app_segment(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer
) -> None:
    from airflow_provider_whatsapp.hooks.maton import MatonHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_DEFAULT", connection_json(loopback.url, app=GRAPH_DIRECT_APP, connection_id="c-1")
    )
    loopback.route("POST", rf"^/v21\.0/{PHONE_NUMBER_ID}/messages$", Reply(json=sent("wamid.DIRECT")))

    with MatonHook() as hook:
        answer = hook.send_message({"to": "14155550100", "type": "text", "text": {"body": "hi"}})

    assert MatonHook.message_id(answer) == "wamid.DIRECT"
    (request,) = loopback.requests
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request.header("Maton-Connection") is None


@pytest.mark.parametrize(
    ("extra", "app"),
    [
        ({"extra__maton__app": "none"}, ""),  # Airflow 2's form, Graph direct
        ({"extra__maton__app": "other-app"}, "other-app"),
        ({"extra__maton__app": ""}, "whatsapp-business"),  # a blank form field keeps the default
        ({}, "whatsapp-business"),
        ({"app": ""}, ""),  # an empty app in the JSON extra still means Graph direct
        ({"app": "", "extra__maton__app": "other-app"}, ""),  # the plain key wins, as for every field
    ],
)
def test_app_is_read_from_airflow_2_form_fields_too(extra: dict[str, str], app: str) -> None:
    assert _settings(**extra).app == app


def test_the_webhook_secrets_are_password_fields_and_nothing_else_is() -> None:
    from airflow_provider_whatsapp.hooks._connection_form import CONNECTION_UI

    hidden = {
        name
        for name, field in CONNECTION_UI["conn-fields"].items()
        if field["schema"].get("format") == "password"
    }
    assert hidden == {"webhook_verify_token", "webhook_app_secret", "webhook_path_token"}
