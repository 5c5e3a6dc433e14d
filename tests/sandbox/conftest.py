"""Helpers for the sandbox tests: a raw HTTP client on the sandbox (to see exact statuses and bodies)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import httpx
import pytest

from airflow_provider_whatsapp.sandbox import WhatsAppSandbox

RECIPIENT = "14155550100"
T = TypeVar("T")


@pytest.fixture
def client(whatsapp_sandbox: WhatsAppSandbox) -> Iterator[httpx.Client]:
    """httpx on the sandbox with the sandbox's key."""
    with httpx.Client(
        base_url=whatsapp_sandbox.url, headers={"Authorization": f"Bearer {whatsapp_sandbox.api_key}"}
    ) as http:
        yield http


def messages_path(sandbox: WhatsAppSandbox, *, direct: bool = False) -> str:
    prefix = "" if direct else "/whatsapp-business"
    return f"{prefix}/v21.0/{sandbox.phone_number_id}/messages"


def text(body: str, to: str = RECIPIENT) -> dict:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}}


def reaction(message_id: str, emoji: str, to: str = RECIPIENT) -> dict:
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "reaction",
        "reaction": {"message_id": message_id, "emoji": emoji},
    }


def buttons(count: int, to: str = RECIPIENT) -> dict:
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Pick one"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": f"b{i}", "title": f"Option {i}"}} for i in range(count)
                ]
            },
        },
    }


def template(name: str, *body_params: str, header: dict | None = None, to: str = RECIPIENT) -> dict:
    components: list[dict] = []
    if header is not None:
        components.append({"type": "header", "parameters": [header]})
    if body_params:
        components.append({"type": "body", "parameters": [{"type": "text", "text": p} for p in body_params]})
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": {"name": name, "language": {"code": "en_US"}, "components": components},
    }


def assert_graph_error(response: httpx.Response, status: int, code: int) -> dict:
    """The response is Graph's error body with this status and code; returns the error object."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["type"] == "OAuthException"
    assert error["message"].startswith(f"(#{code}) ")
    assert error["fbtrace_id"]
    if "error_data" in error:
        assert error["error_data"]["messaging_product"] == "whatsapp"
        assert error["error_data"]["details"]
    return error


def eventually(probe: Callable[[], T | None], *, within: float = 10.0) -> T:
    """``probe()``'s first truthy value, polled every 50 ms; fails after ``within`` seconds (a bound for
    "does not hang" only: the sandbox's timers fire within a fraction of a second)."""
    deadline = time.monotonic() + within
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"nothing came within {within} s"
        time.sleep(0.05)


def final_status(sandbox: WhatsAppSandbox, wamid: str, wanted: str) -> dict:
    """The message once its status is ``wanted`` (waiting for the sandbox's timers), as JSON."""

    def reached() -> dict | None:
        message = sandbox.state.by_id[wamid].as_json()
        return message if message["status"] == wanted else None

    return eventually(reached)
