"""The receiver through a real socket (uvicorn on 127.0.0.1): the handshake, authentic deliveries stored,
and every refusal leaving the store byte for byte as it was."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS
from airflow_provider_whatsapp.spec.limits import WEBHOOK_BODY_MAX_BYTES
from airflow_provider_whatsapp.webhooks.app import standalone_app
from airflow_provider_whatsapp.webhooks.store import EventStore
from tests.conftest import PHONE_NUMBER_ID, TEST_KEY

APP_SECRET = "meta-app-secret-5b1f"
PATH_TOKEN = "p" * 48
VERIFY = "verify-me-7c2e"
USER = "16505551234"
SENT = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJGMzEyNzhENTZDMzNGODlDRDgA"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    import uvicorn

    config = uvicorn.Config(
        standalone_app(conn_id="maton_hooks"), host="127.0.0.1", port=0, log_level="warning"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = uv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/whatsapp/webhook"
    uv.should_exit = True
    thread.join(10)


@pytest.fixture
def events_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    configure(monkeypatch, tmp_path, webhook_app_secret=APP_SECRET)
    return tmp_path / "events"


def configure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **extra: Any) -> None:
    values = {"phone_number_id": PHONE_NUMBER_ID, "events_path": str(tmp_path / "events"),
              "webhook_verify_token": VERIFY, **extra}  # fmt: skip
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_HOOKS", json.dumps({"conn_type": "maton", "password": TEST_KEY, "extra": values})
    )


def delivery(*, ts: int | None = None, phone: str = PHONE_NUMBER_ID, reply: bool = False) -> bytes:
    ts = int(time.time()) if ts is None else ts
    if reply:
        value: dict[str, Any] = {
            "contacts": [{"profile": {"name": "Ada"}, "wa_id": USER}],
            "messages": [{"from": USER, "id": "wamid.reply1", "timestamp": str(ts), "type": "interactive",
                          "context": {"from": "15550783881", "id": SENT},
                          "interactive": {"type": "button_reply", "button_reply": {"id": "approve", "title": "Approve"}}}],
        }  # fmt: skip
    else:
        value = {
            "statuses": [{"id": SENT, "status": "delivered", "timestamp": str(ts), "recipient_id": USER}]
        }
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
               "value": {"messaging_product": "whatsapp",
                         "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone}, **value}}]}]}  # fmt: skip
    return json.dumps(payload).encode()


def sign(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json"}  # fmt: skip


def snapshot(root: Path) -> dict[str, bytes]:
    return (
        {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        if root.exists()
        else {}
    )


# --- the handshake -------------------------------------------------------------------------------


def test_meta_s_verification_echoes_the_challenge(server: str, events_root: Path) -> None:
    ok = httpx.get(
        server, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}
    )
    assert (ok.status_code, ok.text, ok.headers["content-type"].split(";")[0]) == (
        200,
        "1158201444",
        "text/plain",
    )
    for params in (
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
    ):
        refused = httpx.get(server, params=params)
        assert refused.status_code == 403
        assert VERIFY not in refused.text


# --- authentic deliveries ------------------------------------------------------------------------


def test_a_signed_status_and_a_signed_reply_are_stored(server: str, events_root: Path) -> None:
    for body in (delivery(), delivery(reply=True)):
        answer = httpx.post(server, content=body, headers=sign(body))
        assert answer.status_code == 200, answer.text
        assert answer.json()["stored"] == 1
    store = EventStore(events_root, retention=__import__("datetime").timedelta(days=30))
    assert store.status(SENT).status == "delivered"
    [reply] = store.replies(SENT)
    assert (reply.button_id, reply.sender) == ("approve", USER)


def test_through_maton_the_path_token_authenticates(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, tmp_path, webhook_path_token=PATH_TOKEN)
    body = delivery()
    assert httpx.post(f"{server}/{PATH_TOKEN}", content=body).json()["stored"] == 1
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "42"}
    assert httpx.get(f"{server}/{PATH_TOKEN}", params=params).text == "42"
    assert httpx.get(server, params=params).status_code == 403


# --- refusals: the store is left as it was -------------------------------------------------------

REFUSALS = [
    "bad-signature",
    "missing-signature",
    "wrong-path-token",
    "no-auth-configured",
    "replayed-old",
    "duplicate",
    "unknown-phone-number",
    "oversized",
    "malformed-json",
]


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refused_or_repeated_delivery_leaves_the_store_unchanged(
    case: str, server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "events"
    configure(monkeypatch, tmp_path, webhook_app_secret=APP_SECRET)
    first = delivery()
    assert httpx.post(server, content=first, headers=sign(first)).status_code == 200
    before = snapshot(root)
    assert before
    body, headers, url, expected = delivery(reply=True), None, server, 403
    if case == "bad-signature":
        headers = sign(body, secret="not-the-secret")
    elif case == "missing-signature":
        headers = {}
    elif case == "wrong-path-token":
        configure(monkeypatch, tmp_path, webhook_path_token=PATH_TOKEN)
        url = f"{server}/{'q' * 48}"
    elif case == "no-auth-configured":
        configure(monkeypatch, tmp_path)
        headers = sign(body)
    elif case == "replayed-old":  # validly signed, but older than the retention
        body, expected = delivery(reply=True, ts=int(time.time()) - 40 * 86400), 200
    elif case == "duplicate":
        body, expected = first, 200
    elif case == "unknown-phone-number":
        body, expected = delivery(reply=True, phone="999999999"), 200
    elif case == "oversized":
        body, expected = b"{" + b" " * WEBHOOK_BODY_MAX_BYTES + b"}", 413
    elif case == "malformed-json":
        body, expected = b'{"object": "whatsapp_business_account", "entry": [', 400
    answer = httpx.post(url, content=body, headers=sign(body) if headers is None else headers, timeout=30)
    assert answer.status_code == expected, answer.text
    if expected == 200:
        assert answer.json()["stored"] == 0
    assert snapshot(root) == before
    assert APP_SECRET not in answer.text and PATH_TOKEN not in answer.text


def test_a_store_that_fails_answers_500_so_meta_delivers_again(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    configure(monkeypatch, tmp_path, webhook_app_secret=APP_SECRET, events_path=str(blocker / "events"))
    body = delivery()
    assert httpx.post(server, content=body, headers=sign(body)).status_code == 500


# --- the Airflow 3 plugin ------------------------------------------------------------------------


def test_the_pyproject_registers_the_plugin_and_the_script() -> None:
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    plugin = pyproject["project"]["entry-points"]["airflow.plugins"]["whatsapp_webhooks"]
    assert plugin == "airflow_provider_whatsapp.webhooks.plugin:WhatsAppWebhooksPlugin"
    assert (
        pyproject["project"]["scripts"]["whatsapp-webhooks"] == "airflow_provider_whatsapp.webhooks.cli:main"
    )


@pytest.mark.skipif(not AIRFLOW_V_3_PLUS, reason="the API server serves FastAPI plugins from Airflow 3")
def test_airflow_s_plugins_manager_mounts_the_receiver_under_whatsapp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    # The editable install's entry points are main's, so the plugin is loaded from a plugins folder here.
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "whatsapp.py").write_text(
        "from airflow_provider_whatsapp.webhooks.plugin import WhatsAppWebhooksPlugin\n"
    )
    configure(monkeypatch, tmp_path, webhook_app_secret=APP_SECRET)
    script = (
        "from airflow import plugins_manager\n"
        "from airflow.api_fastapi.app import init_plugins\n"
        "from fastapi import FastAPI\n"
        "from fastapi.testclient import TestClient\n"
        "apps, _ = plugins_manager.get_fastapi_plugins()\n"
        "print([(a['name'], a['url_prefix']) for a in apps])\n"
        "app = FastAPI(); init_plugins(app)\n"
        "r = TestClient(app).get('/whatsapp/webhook', params={'hub.mode': 'subscribe', "
        f"'hub.verify_token': '{VERIFY}', 'hub.challenge': '77'}})\n"
        "print(r.status_code, r.text)\n"
    )
    env = {**__import__("os").environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
           "WHATSAPP_WEBHOOKS_CONN_ID": "maton_hooks"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "('WhatsApp webhooks', '/whatsapp')" in done.stdout
    assert done.stdout.strip().endswith("200 77")


@pytest.mark.parametrize("token", ["short-token", "x" * 31, "p" * 40 + "/../", "p" * 40 + " "])
def test_a_short_or_unsafe_path_token_is_a_configuration_error(
    token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_whatsapp.webhooks.settings import webhook_settings

    configure(monkeypatch, tmp_path, webhook_path_token=token)
    with pytest.raises(
        ValueError, match="webhook_path_token in the connection's extra must be 32 to"
    ) as error:
        webhook_settings("maton_hooks")
    assert token not in str(error.value)


@pytest.mark.skipif(not AIRFLOW_V_3_PLUS, reason="the API server's access log is Airflow 3's")
def test_the_api_servers_access_log_shows_no_path_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow's own access-log middleware, wrapped around the app as the API server mounts plugins,
    logs the path after the receiver took the token out of it; the delivery is still authenticated."""
    import structlog
    from airflow.api_fastapi.common.http_access_log import HttpAccessLogMiddleware
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from airflow_provider_whatsapp.webhooks.app import URL_PREFIX, create_app

    configure(monkeypatch, tmp_path, webhook_path_token=PATH_TOKEN)
    root = FastAPI()
    root.mount(URL_PREFIX, create_app(conn_id="maton_hooks"))
    root.add_middleware(HttpAccessLogMiddleware)
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "42"}

    with structlog.testing.capture_logs() as logged, TestClient(root) as client:
        stored = client.post(f"{URL_PREFIX}/webhook/{PATH_TOKEN}", content=delivery()).json()["stored"]
        challenge = client.get(f"{URL_PREFIX}/webhook/{PATH_TOKEN}", params=params).text
        refused = client.post(f"{URL_PREFIX}/webhook/{'q' * 48}", content=delivery()).status_code

    assert (stored, challenge, refused) == (1, "42", 403)
    access = [entry for entry in logged if entry.get("event") == "request finished"]
    assert [entry["path"] for entry in access] == [f"{URL_PREFIX}/webhook/***"] * 3
    assert PATH_TOKEN not in repr(logged) and VERIFY not in repr(logged)
