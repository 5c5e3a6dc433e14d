"""A loopback Maton gateway shared by a whole test module.

Starting and stopping a server per test costs 0.5 s each (``socketserver``'s shutdown poll), so test
modules keep one server and reset it between tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import connection_json
from tests.loopback import LoopbackServer


def module_server() -> Iterator[LoopbackServer]:
    """Body of a module-scoped fixture: one running loopback server."""
    with LoopbackServer() as server:
        yield server


def reset_gateway(monkeypatch: pytest.MonkeyPatch, server: LoopbackServer) -> LoopbackServer:
    """Forget routes and recorded requests, and point ``maton_default`` at ``server``."""
    server.requests.clear()
    server._routes.clear()
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(server.url))
    return server
