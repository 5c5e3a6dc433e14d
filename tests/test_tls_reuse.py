"""Hooks share one TLS trust context per process, and never a stale one.

Every send task builds a hook and its client; loading the CA bundle for each was most of a short task's
CPU. These tests talk HTTPS over loopback to a server whose certificate comes from a throwaway CA
(``trustme``), trusted through ``SSL_CERT_FILE`` as httpx reads it.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from airflow_provider_whatsapp.errors import WhatsAppConnectError
from airflow_provider_whatsapp.hooks._tls import trust_context
from airflow_provider_whatsapp.hooks.maton import MatonHook
from tests.conftest import MESSAGES, connection_json
from tests.loopback import LoopbackServer, Reply, sent

TEXT = {"to": "14155550100", "type": "text", "text": {"body": "hi"}}


def _server_for(ca: trustme.CA) -> LoopbackServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = LoopbackServer(tls=context)
    server.route("POST", MESSAGES, Reply(json=sent()))
    return server


@pytest.fixture
def https_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[LoopbackServer, Path]]:
    """An HTTPS server, its CA in a bundle file named by ``SSL_CERT_FILE``, and the connection to it."""
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    with _server_for(ca) as server:
        monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(server.url))
        yield server, bundle


def test_hooks_share_one_context_and_send_over_tls(https_server: tuple[LoopbackServer, Path]) -> None:
    server, _ = https_server
    first, second = MatonHook(), MatonHook()
    try:
        assert MatonHook.message_id(first.send_message(TEXT)) == "wamid.TEST"
        assert MatonHook.message_id(second.send_message(TEXT)) == "wamid.TEST"
        # Two hooks, two clients (each reads its connection), one trust store loaded once.
        assert first.get_conn() is not second.get_conn()
        assert first.get_conn()._transport._pool._ssl_context is trust_context()  # type: ignore[attr-defined]
        assert second.get_conn()._transport._pool._ssl_context is trust_context()  # type: ignore[attr-defined]
    finally:
        first.close()
        second.close()
    assert len(server.requests) == 2


async def test_async_client_uses_the_shared_context(https_server: tuple[LoopbackServer, Path]) -> None:
    hook = MatonHook()
    try:
        assert MatonHook.message_id(await hook.asend_message(TEXT)) == "wamid.TEST"
        assert hook.get_async_conn()._transport._pool._ssl_context is trust_context()  # type: ignore[attr-defined]
    finally:
        await hook.aclose()


def test_a_replaced_ca_bundle_is_read_again(
    monkeypatch: pytest.MonkeyPatch, https_server: tuple[LoopbackServer, Path]
) -> None:
    """Trusting another CA (the bundle rewritten in place) takes effect for the next hook."""
    server, bundle = https_server
    before = trust_context()
    other = trustme.CA()
    other.cert_pem.write_to_path(str(bundle))
    stat = bundle.stat()
    os.utime(bundle, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a coarse clock
    assert trust_context() is not before
    hook = MatonHook(max_attempts=1)
    try:
        with pytest.raises(WhatsAppConnectError):
            hook.send_message(TEXT)  # the server's CA is no longer trusted
    finally:
        hook.close()
    with _server_for(other) as trusted:
        monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(trusted.url))
        hook = MatonHook()
        try:
            assert MatonHook.message_id(hook.send_message(TEXT)) == "wamid.TEST"
        finally:
            hook.close()
    assert server.requests == []


def test_another_certificate_variable_is_read_again(
    monkeypatch: pytest.MonkeyPatch, https_server: tuple[LoopbackServer, Path], tmp_path: Path
) -> None:
    _, bundle = https_server
    shared = trust_context()
    assert trust_context() is shared
    copy = tmp_path / "copy.pem"
    copy.write_bytes(bundle.read_bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(copy))
    assert trust_context() is not shared
