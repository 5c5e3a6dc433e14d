"""Fixtures for the system tests: one Airflow 3 deployment per module, the sandbox and an echo server.

``deployment`` starts the sandbox (as its own process), a loopback server that echoes the API key back
(for the leak probes), then Airflow with the example DAGs and the probe DAGs. Airflow 2.11 has neither
the API server nor the task supervisor these tests are about: the module is skipped there.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.loopback import LoopbackServer, Recorded, Reply, graph_error
from tests.system.dags.whatsapp_leak_probes import ECHO_PHONE_NUMBER_IDS, PROBE_CONNECTION
from tests.system.harness import AirflowDeployment, SandboxProcess

EXAMPLES = REPO_ROOT / "example_dags"
PROBE_DAGS = Path(__file__).parent / "dags"

# Keys are random per session, so finding one in a file can only mean it leaked there.
SANDBOX_KEY = f"sbx-system-{secrets.token_hex(12)}"
ENV_KEY = f"mtn-env-probe-{secrets.token_hex(12)}"
CONNECTION_KEY = f"mtn-conn-probe-{secrets.token_hex(12)}"
# The webhook receiver's secrets: the token in the callback path (as through Maton) and the verify token.
PATH_TOKEN = secrets.token_urlsafe(32)
VERIFY_TOKEN = secrets.token_urlsafe(24)
# The connection the receiver in the API server reads: the store and its secrets, no API key.
RECEIVER_CONNECTION = "whatsapp_webhooks"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/system/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.system)


def _echo(recorded: Recorded) -> Reply:
    """Answer with the caller's own ``Authorization`` header where the phone number id says."""
    authorization = recorded.header("authorization") or ""
    phone_number_id = recorded.path.rstrip("/").split("/")[-2]
    place = {v: k for k, v in ECHO_PHONE_NUMBER_IDS.items()}.get(phone_number_id)
    if place == "error_message":
        return Reply(401, graph_error(190, f"Invalid OAuth access token - Cannot parse: {authorization}"))
    if place == "error_details":
        return Reply(400, graph_error(131009, "Parameter value is not valid", details=f"got {authorization}"))
    if place == "html_body":
        page = f"<html><body><h1>403 Forbidden</h1><p>Authorization: {authorization}</p></body></html>"
        return Reply(403, body=page.encode(), headers={"Content-Type": "text/html"})
    if place == "success_without_id":
        return Reply(200, {"messaging_product": "whatsapp", "debug": {"authorization": authorization}})
    if place == "bulk_reasons":
        return Reply(
            400, graph_error(131026, f"Message undeliverable for {authorization}", details=authorization)
        )
    return Reply(404, graph_error(803, f"unknown probe {phone_number_id}"))


@pytest.fixture(scope="module")
def airflow3_only() -> None:
    from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS

    if not AIRFLOW_V_3_PLUS:
        pytest.skip(
            "the system test runs on Airflow 3 only (API server, DAG processor, task supervisor); "
            "Airflow 2.11 is covered by the dag.test() integration tests"
        )


@pytest.fixture(scope="module")
def echo_server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        server.route("POST", r"/messages$", _echo)
        yield server


@pytest.fixture(scope="module")
def system_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("system")


@pytest.fixture(scope="module")
def sandbox(system_home: Path) -> Iterator[SandboxProcess]:
    # Templates stay PENDING until the test approves them, so the sensor really defers.
    with SandboxProcess(
        api_key=SANDBOX_KEY, output=system_home / "sandbox.log", args=["--approval-delay", "86400"]
    ) as running:
        yield running


@pytest.fixture(scope="module")
def deployment(
    airflow3_only: None, system_home: Path, sandbox: SandboxProcess, echo_server: LoopbackServer
) -> Iterator[AirflowDeployment]:
    dags = system_home / "dags"
    dags.mkdir()
    for source in [*EXAMPLES.glob("*.py"), *PROBE_DAGS.glob("*.py")]:
        shutil.copy(source, dags / source.name)
    probe_connection = {"conn_type": "maton", "host": echo_server.url, "password": CONNECTION_KEY}
    env = {
        # maton_default of the leak probe without a connection; the examples have a connection.
        "MATON_API_KEY": ENV_KEY,
        "MATON_BASE_URL": echo_server.url,
        f"AIRFLOW_CONN_{PROBE_CONNECTION.upper()}": json.dumps(probe_connection),
    }
    events = events_path(system_home)
    # maton_default (the sandbox) only where tasks and triggers run, not in the API server: a task
    # that drops it from its own environment then finds no such connection at all. Tasks and triggers
    # read the event store; only the receiver (in the API server) needs the webhook secrets.
    examples_connection = {"AIRFLOW_CONN_MATON_DEFAULT": sandbox.connection_json(events_path=str(events))}
    receiver_connection = {
        "conn_type": "maton",
        "extra": {
            "phone_number_id": sandbox_phone_number_id(),
            "events_path": str(events),
            "webhook_path_token": PATH_TOKEN,
            "webhook_verify_token": VERIFY_TOKEN,
        },
    }
    api_server = {
        "WHATSAPP_WEBHOOKS_CONN_ID": RECEIVER_CONNECTION,
        f"AIRFLOW_CONN_{RECEIVER_CONNECTION.upper()}": json.dumps(receiver_connection),
    }
    home = system_home / "airflow"
    install_plugin_if_not_registered(home)
    with AirflowDeployment(
        home=home,
        dags_folder=dags,
        env=env,
        component_env={
            "scheduler": examples_connection,
            "triggerer": examples_connection,
            "api-server": api_server,
        },
    ) as airflow:
        subscribe_sandbox(sandbox, callback_url(airflow))
        yield airflow


def events_path(system_home: Path) -> Path:
    return system_home / "whatsapp-events"


def callback_url(airflow: AirflowDeployment) -> str:
    """The receiver mounted in the API server, as WhatsApp calls it through Maton."""
    return f"{airflow.base_url}/whatsapp/webhook/{PATH_TOKEN}"


def sandbox_phone_number_id() -> str:
    from airflow_provider_whatsapp.sandbox.state import DEFAULT_PHONE_NUMBER_ID

    return DEFAULT_PHONE_NUMBER_ID


def subscribe_sandbox(sandbox: SandboxProcess, url: str) -> None:
    """What a user does once (the README's step 2): ``MatonHook.subscribe_webhooks``, through the
    gateway; the sandbox verifies the callback with Meta's GET handshake, answered by the API server."""
    import os
    from unittest import mock

    from airflow_provider_whatsapp.hooks.maton import MatonHook

    with mock.patch.dict(os.environ, {"AIRFLOW_CONN_SYSTEM_SANDBOX": sandbox.connection_json()}):
        MatonHook(maton_conn_id="system_sandbox").subscribe_webhooks(
            callback_url=url, verify_token=VERIFY_TOKEN
        )


def install_plugin_if_not_registered(home: Path) -> None:
    """The receiver's plugin comes through the ``airflow.plugins`` entry point of the installed package;
    a checkout run with ``PYTHONPATH`` over an older install lacks it, so a plugins-folder file names it."""
    from importlib.metadata import entry_points

    if any(ep.value.startswith("airflow_provider_whatsapp") for ep in entry_points(group="airflow.plugins")):
        return
    plugins = home / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    (plugins / "whatsapp_webhooks_plugin.py").write_text(
        "from airflow_provider_whatsapp.webhooks.plugin import WhatsAppWebhooksPlugin  # noqa: F401\n"
    )


def digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)
