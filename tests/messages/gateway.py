"""A loopback Maton gateway shared by a whole test module (starting and stopping one per test costs
0.5 s each in ``socketserver``'s shutdown poll). Import ``gateway`` into a test module to use it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import connection_json
from tests.loopback import LoopbackServer


@pytest.fixture(scope="module")
def _module_gateway() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch, _module_gateway: LoopbackServer) -> LoopbackServer:
    """``maton_default`` pointing at a loopback server with no routes and no recorded requests."""
    _module_gateway.requests.clear()
    _module_gateway._routes.clear()
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(_module_gateway.url))
    return _module_gateway
