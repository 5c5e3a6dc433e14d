"""Test set-up: a private AIRFLOW_HOME with a migrated database, and a loopback Maton gateway."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports Airflow: tests never touch the user's ~/airflow.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="whatsapp-provider-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_AIRFLOW_HOME / "dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.pop("MATON_API_KEY", None)
os.environ.pop("MATON_BASE_URL", None)
(_AIRFLOW_HOME / "dags").mkdir(parents=True, exist_ok=True)

from tests.loopback import LoopbackServer

TEST_KEY = "mtn-test-key-7f3a9c1e-SECRET"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
# The path of a message send for the test connection (Graph version of the tests).
MESSAGES = rf"^/whatsapp-business/v21\.0/{PHONE_NUMBER_ID}/messages$"
REPO_ROOT = Path(__file__).resolve().parent.parent


# Modules whose subject (the models, the sandbox, the spec layer, the package's source text) is the same
# code on either Airflow line: they run once, on Airflow 3 (`make test-airflow2` deselects the marker).
AIRFLOW_INDEPENDENT = (
    "tests/fidelity/",
    "tests/bulk/test_plan_stream.py",
    "tests/sandbox/test_hardening.py",
    "tests/sandbox/test_endpoints.py",
    "tests/sandbox/test_spec_rules.py",
    "tests/sandbox/test_webhooks.py",
    "tests/sandbox/test_inbox_browser.py",
    "tests/spec/test_single_source.py",
    "tests/spec/test_readme_tables.py",
    "tests/webhooks/test_events.py",
    "tests/test_pacing_window.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        where = item.path.relative_to(root).as_posix()
        if where.startswith(AIRFLOW_INDEPENDENT):
            item.add_marker(pytest.mark.airflow_independent)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def airflow_db() -> Path:
    """``airflow db migrate`` once per session in the private AIRFLOW_HOME."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return _AIRFLOW_HOME


@pytest.fixture
def dags_folder() -> Path:
    """The configured dags folder (``dag.test()`` on Airflow 3 only runs DAGs from there)."""
    return _AIRFLOW_HOME / "dags"


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


def connection_json(host: str, **extra: object) -> str:
    """An ``AIRFLOW_CONN_*`` value for a Maton connection."""
    values = {"phone_number_id": PHONE_NUMBER_ID, "waba_id": WABA_ID, **extra}
    return json.dumps(
        {
            "conn_type": "maton",
            "host": host,
            "password": TEST_KEY,
            "extra": {k: v for k, v in values.items() if v is not None},
        }
    )


@pytest.fixture
def maton_conn(monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer) -> LoopbackServer:
    """``maton_default`` pointing at the loopback server; returns the server."""
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(loopback.url))
    return loopback


@pytest.fixture(scope="module")
def _gateway_server() -> Iterator[LoopbackServer]:
    # One server per test module: stopping a server costs 0.5 s of socketserver's shutdown poll.
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch, _gateway_server: LoopbackServer) -> LoopbackServer:
    """``maton_default`` pointing at the module's loopback server, with no routes and no recorded
    requests."""
    _gateway_server.requests.clear()
    _gateway_server._routes.clear()
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(_gateway_server.url))
    return _gateway_server
