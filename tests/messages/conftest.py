from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.loopback import LoopbackServer
from tests.messages.gateway import module_server, reset_gateway


@pytest.fixture(scope="module")
def _gateway_server() -> Iterator[LoopbackServer]:
    yield from module_server()


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch, _gateway_server: LoopbackServer) -> LoopbackServer:
    """``maton_default`` pointing at a loopback server with no routes and no recorded requests."""
    return reset_gateway(monkeypatch, _gateway_server)
