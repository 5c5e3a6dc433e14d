"""Fault injection (and how the hook copes with it), the inbox JSON, the CLI and the pytest plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from airflow_provider_whatsapp.errors import (
    WhatsAppConnectError,
    WhatsAppDeliveryUnknownError,
    WhatsAppTransientError,
)
from airflow_provider_whatsapp.hooks.maton import MatonHook
from airflow_provider_whatsapp.sandbox import WhatsAppSandbox
from tests.sandbox.conftest import (
    RECIPIENT,
    assert_graph_error,
    buttons,
    messages_path,
    reaction,
    template,
    text,
)

# --- faults --------------------------------------------------------------------------------------


def test_a_code_on_the_next_n_requests_then_normal(whatsapp_sandbox: WhatsAppSandbox) -> None:
    whatsapp_sandbox.inject_fault(code=131000, times=2, path="/messages$")

    answer = MatonHook(max_attempts=3).send_message(text("after two transient failures"))

    assert MatonHook.message_id(answer)
    assert [r.status for r in whatsapp_sandbox.requests("POST", "/messages$")] == [500, 500, 200]
    assert whatsapp_sandbox.state.faults == []


def test_an_injected_code_has_grafs_body(whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client) -> None:
    whatsapp_sandbox.inject_fault(code=131026, times=1)
    error = assert_graph_error(client.post(messages_path(whatsapp_sandbox), json=text("hi")), 400, 131026)
    assert error["error_data"]["details"]


def test_a_bare_status_is_matons(whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client) -> None:
    whatsapp_sandbox.inject_fault(status=503, times=1)
    response = client.get(f"/whatsapp-business/v21.0/{whatsapp_sandbox.phone_number_id}")
    assert response.status_code == 503 and "code" not in response.json()["error"]
    with pytest.raises(WhatsAppTransientError):
        whatsapp_sandbox.inject_fault(status=503, times=1)
        MatonHook(max_attempts=1).get_phone_number()


def test_latency(whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client) -> None:
    whatsapp_sandbox.inject_fault(latency=0.3, times=1)
    started = time.monotonic()
    assert client.get(f"/v21.0/{whatsapp_sandbox.phone_number_id}").status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    client.get(f"/v21.0/{whatsapp_sandbox.phone_number_id}")
    assert time.monotonic() - started < 0.3


@pytest.mark.whatsapp_sandbox(random_seed=7)
def test_an_error_rate(whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client) -> None:
    whatsapp_sandbox.inject_fault(code=131016, rate=0.5)
    statuses = [client.get(f"/v21.0/{whatsapp_sandbox.phone_number_id}").status_code for _ in range(40)]
    assert 5 < statuses.count(503) < 35 and statuses.count(200) == 40 - statuses.count(503)


def test_a_dropped_connection_before_the_send_is_retried(whatsapp_sandbox: WhatsAppSandbox) -> None:
    whatsapp_sandbox.inject_fault(drop=True, times=1, path="/messages$")
    # The connection dies before an answer: for a send that is ambiguous, so the hook does not repeat it.
    with pytest.raises((WhatsAppDeliveryUnknownError, WhatsAppConnectError)):
        MatonHook(max_attempts=3).send_message(text("maybe"))
    assert whatsapp_sandbox.messages_to(RECIPIENT) == []


def test_a_dropped_answer_after_the_send_took_effect(whatsapp_sandbox: WhatsAppSandbox) -> None:
    whatsapp_sandbox.inject_fault(drop=True, after=True, times=1, path="/messages$")
    with pytest.raises(WhatsAppDeliveryUnknownError):
        MatonHook(max_attempts=3).send_message(text("delivered, answer lost"))
    assert len(whatsapp_sandbox.messages_to(RECIPIENT)) == 1  # it arrived once, and only once


def test_faults_over_http(whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client) -> None:
    created = client.post("/_sandbox/faults", json={"code": 4, "times": 1}).json()
    assert created["code"] == 4
    assert client.get("/_sandbox/faults").json()["data"][0]["times"] == 1
    assert client.get(f"/v21.0/{whatsapp_sandbox.phone_number_id}").status_code == 429
    client.post("/_sandbox/faults", json={"code": 4})
    client.request("DELETE", "/_sandbox/faults", json={})
    assert client.get(f"/v21.0/{whatsapp_sandbox.phone_number_id}").status_code == 200


# --- inbox JSON, transcript ---------------------------------------------------------------------


def test_conversations_json_renders_what_a_phone_shows(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    path = messages_path(whatsapp_sandbox)
    first = client.post(path, json=text("*Load finished*")).json()["messages"][0]["id"]
    client.post(path, json=buttons(2))
    client.post(path, json=template("order_update", "Ana", "A-17", "shipped"))
    client.post(path, json=reaction(first, "👍"))
    whatsapp_sandbox.add_inbound(RECIPIENT, "Thanks!", name="Ana")

    data = client.get("/_sandbox/conversations").json()

    (conversation,) = data["conversations"]
    assert conversation["name"] == "Ana" and conversation["display"] == "+1 415 555 0100"
    views = conversation["messages"]
    assert [v["type"] for v in views] == ["text", "interactive", "template", "text"]  # reaction attached
    assert views[0]["reactions"] == [{"emoji": "👍", "direction": "out"}]
    assert views[0]["status"] == "read"
    assert [b["text"] for b in views[1]["interactive"]["buttons"]] == ["Option 0", "Option 1"]
    assert views[2]["template"]["body"] == "Hi Ana, your order A-17 is shipped."
    assert views[2]["template"]["footer"] == "Reply STOP to opt out"
    assert views[3]["direction"] == "in"
    transcript = whatsapp_sandbox.transcript()
    assert "+1 415 555 0100 (Ana): 4 message(s)" in transcript
    assert "[template order_update] Hi Ana, your order A-17 is shipped." in transcript


def test_the_inbox_page_and_its_assets_are_served(whatsapp_sandbox: WhatsAppSandbox) -> None:
    page = httpx.get(whatsapp_sandbox.url + "/")
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "/_sandbox/static/inbox.js" in page.text
    assert httpx.get(whatsapp_sandbox.url + "/_sandbox/static/inbox.js").status_code == 200
    assert httpx.get(whatsapp_sandbox.url + "/_sandbox/static/inbox.css").status_code == 200


# --- CLI and plugin ------------------------------------------------------------------------------


def test_the_console_script_serves_until_stopped() -> None:
    script = os.path.join(os.path.dirname(sys.executable), "whatsapp-sandbox")
    process = subprocess.Popen([script, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline() if process.stdout else ""
        url = first.split()[3]
        assert url.startswith("http://127.0.0.1:")
        exported = process.stdout.readline() if process.stdout else ""
        conn = json.loads(exported.split("=", 1)[1].strip().strip("'"))
        assert conn["host"] == url and conn["password"] == "sandbox-key"
        assert httpx.get(url + "/_sandbox/health").json() == {"ok": True}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_plugin_module_does_not_import_airflow() -> None:
    code = (
        "import sys, airflow_provider_whatsapp.sandbox.pytest_plugin, airflow_provider_whatsapp.sandbox;"
        "assert not [m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')], 'airflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_fixture_points_maton_default_at_the_sandbox(whatsapp_sandbox: WhatsAppSandbox) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_MATON_DEFAULT"])
    assert conn["host"] == whatsapp_sandbox.url
    assert MatonHook().get_phone_number()["id"] == whatsapp_sandbox.phone_number_id


def test_the_plugin_in_a_fresh_pytest_run(tmp_path: Path) -> None:
    """What a DAG author's project sees: the fixture is there without any conftest."""
    (tmp_path / "test_author.py").write_text(
        textwrap.dedent(
            """
            import httpx, pytest

            @pytest.mark.whatsapp_sandbox(require_window=True)
            def test_uses_the_fixture(whatsapp_sandbox):
                assert whatsapp_sandbox.state.require_window
                answer = httpx.post(
                    whatsapp_sandbox.url + f"/v21.0/{whatsapp_sandbox.phone_number_id}/messages",
                    headers={"Authorization": "Bearer sandbox-key"},
                    json={"messaging_product": "whatsapp", "to": "14155550100", "type": "template",
                          "template": {"name": "hello_world", "language": {"code": "en_US"}}},
                )
                assert answer.status_code == 200
                assert whatsapp_sandbox.messages_to("+1 415 555 0100")[0].type == "template"
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_author.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
