"""A whole conversation on loopback sockets: the sandbox (Graph + gateway) POSTs its webhooks to the real
receiver, served by uvicorn on 127.0.0.1, which stores them in an event store under ``tmp_path``; the
``maton_default`` connection carries the extras that tie the three together, so tasks under
``dag.test()`` send through the sandbox and wait on the store."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp.sandbox import WhatsAppSandbox
from tests.system.harness import free_port, wait_until

POLL = 0.05


class UvicornThread:
    """An ASGI app served by uvicorn on ``127.0.0.1`` from a daemon thread.

    :param app: the ASGI application.
    """

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="whatsapp-webhooks", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> UvicornThread:
        self._thread.start()
        wait_until(lambda: self.server.started, timeout=30, what="the receiver to listen", interval=POLL)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)


@dataclass
class Conversation:
    """The three parts of one conversation, and the secrets that tie them together."""

    sandbox: WhatsAppSandbox
    receiver: UvicornThread
    events_path: Path
    path_token: str
    app_secret: str
    verify_token: str

    @property
    def callback_url(self) -> str:
        return f"{self.receiver.url}/whatsapp/webhook/{self.path_token}"

    def store(self) -> Any:
        from airflow_provider_whatsapp.webhooks.store import EventStore

        return EventStore.for_connection("maton_default")

    def stored_files(self) -> list[str]:
        """Every file of the event store, relative: what a refused delivery must leave unchanged."""
        return sorted(
            str(p.relative_to(self.events_path)) for p in self.events_path.rglob("*") if p.is_file()
        )


def connection_extras(
    events_path: Path, path_token: str, app_secret: str, verify_token: str
) -> dict[str, str]:
    return {
        "events_path": str(events_path),
        "webhook_path_token": path_token,
        "webhook_app_secret": app_secret,
        "webhook_verify_token": verify_token,
    }


@pytest.fixture
def conversation(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Conversation]:
    """The sandbox delivering its webhooks to the receiver; ``maton_default`` points at both.

    Mark a test ``@pytest.mark.whatsapp_sandbox(require_window=True, ...)`` to change the sandbox.
    """
    from airflow_provider_whatsapp.webhooks.app import standalone_app

    settings: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("whatsapp_sandbox"))):
        settings.update(marker.kwargs)
    events_path = tmp_path / "events"
    path_token, app_secret, verify_token = (secrets.token_urlsafe(32) for _ in range(3))
    extras = connection_extras(events_path, path_token, app_secret, verify_token)
    with WhatsAppSandbox(port=0, **settings) as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", sandbox.connection_json(**extras))
        with UvicornThread(standalone_app()) as receiver:
            talk = Conversation(sandbox, receiver, events_path, path_token, app_secret, verify_token)
            sandbox.set_webhook(talk.callback_url, app_secret=app_secret)
            yield talk


@pytest.fixture
def chromium() -> str:
    """Headless Chromium for the browser tests (skipped where it is missing, but never on CI)."""
    import os

    from airflow_provider_whatsapp.sandbox.browser import find_chromium

    path = find_chromium()
    if path is None:
        reason = "Chromium is not installed: run `make browser-deps` (Debian's chromium package)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the browser test, not skip it")
        pytest.skip(reason)
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    return path
