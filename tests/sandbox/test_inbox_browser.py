"""The inbox page in headless Chromium: what is drawn for each kind of message, and that it refreshes."""

from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

import httpx
import pytest

from airflow_provider_whatsapp.sandbox import WhatsAppSandbox
from airflow_provider_whatsapp.sandbox.browser import chromium_page, find_chromium
from tests.sandbox.conftest import RECIPIENT, buttons, messages_path, reaction, template, text

pytestmark = pytest.mark.browser

OTHER = "447700900123"


def bar_chart_png(width: int = 240, height: int = 140) -> bytes:
    """A small, valid PNG (a bar chart) made without any imaging library."""
    bars = [0.35, 0.6, 0.45, 0.8, 0.95]
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            slot = x * len(bars) // width
            inside = (x % (width // len(bars))) > 8 and y > height * (1 - bars[slot])
            row += bytes((37, 211, 102) if inside else (250, 250, 250))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def chromium() -> str:
    path = find_chromium()
    if path is None:
        reason = "Chromium is not installed: run `make browser-deps` (Debian's chromium package)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the browser test, not skip it")
        pytest.skip(reason)
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    return path


def fill_conversations(sandbox: WhatsAppSandbox) -> None:
    with httpx.Client(base_url=sandbox.url, headers={"Authorization": f"Bearer {sandbox.api_key}"}) as client:
        path = messages_path(sandbox)
        upload = f"/whatsapp-business/v21.0/{sandbox.phone_number_id}/media"
        image_id = client.post(
            upload,
            files={"file": ("chart.png", bar_chart_png(), "image/png")},
            data={"messaging_product": "whatsapp", "type": "image/png"},
        ).json()["id"]
        doc_id = client.post(
            upload,
            files={"file": ("report.pdf", b"%PDF-1.4 sandbox", "application/pdf")},
            data={"messaging_product": "whatsapp", "type": "application/pdf"},
        ).json()["id"]
        first = client.post(path, json=text("*Load finished*: 1,204 rows")).json()["messages"][0]["id"]
        client.post(
            path,
            json={
                "messaging_product": "whatsapp",
                "to": RECIPIENT,
                "type": "image",
                "image": {"id": image_id, "caption": "Rows per day"},
            },
        )
        client.post(
            path,
            json={
                "messaging_product": "whatsapp",
                "to": RECIPIENT,
                "type": "document",
                "document": {"id": doc_id, "filename": "report.pdf", "caption": "Full report"},
            },
        )
        client.post(path, json=template("order_update", "Ana", "A-17", "shipped"))
        client.post(path, json=buttons(2))
        client.post(
            path,
            json={
                "messaging_product": "whatsapp",
                "to": RECIPIENT,
                "type": "interactive",
                "interactive": {
                    "type": "list",
                    "body": {"text": "Which report?"},
                    "action": {
                        "button": "Choose",
                        "sections": [
                            {
                                "title": "Daily",
                                "rows": [{"id": "s", "title": "Sales", "description": "By region"}],
                            }
                        ],
                    },
                },
            },
        )
        client.post(path, json=reaction(first, "👍"))
        client.post(path, json=text("Nightly load started", to=OTHER))
    sandbox.add_inbound(RECIPIENT, "Thanks, looks good", name="Ana")


def test_the_inbox_draws_each_conversation_like_a_phone(
    chromium: str, whatsapp_sandbox: WhatsAppSandbox, tmp_path: Path
) -> None:
    fill_conversations(whatsapp_sandbox)

    with chromium_page() as page:
        page.goto(f"{whatsapp_sandbox.url}/#{RECIPIENT}")
        page.wait_for_selector(".msg.in")

        assert page.locator(".chat-item").count() == 2
        assert "Ana" in page.inner_text("#chat-title")
        bold = page.locator(".msg.out .text b").first
        assert bold.inner_text() == "Load finished"
        assert page.locator(".msg.out").first.locator(".reactions").inner_text() == "👍"
        assert page.locator(".ticks.read").count() >= 5  # Ana answered, so she read them
        image = page.locator(".media-img").first
        image.wait_for()
        page.wait_for_function("document.querySelector('.media-img').naturalWidth > 0")
        assert "Rows per day" in page.locator(".msg.type-image").inner_text()
        assert "report.pdf" in page.locator(".doc-name").inner_text()
        template_text = page.locator(".msg.type-template").inner_text()
        assert "Hi Ana, your order A-17 is shipped." in template_text
        assert "Reply STOP to opt out" in template_text
        assert page.locator(".msg.type-interactive .choice").all_inner_texts() == ["↩ Option 0", "↩ Option 1"]
        assert "Sales" in page.locator(".list-row").inner_text()
        assert re.fullmatch(r"\d{1,2}:\d{2}.*", page.locator(".stamp").first.inner_text())
        assert "Thanks, looks good" in page.locator(".msg.in").inner_text()

        # New messages appear without reloading the page.
        httpx.post(
            whatsapp_sandbox.url + "/_sandbox/inbound", json={"from": RECIPIENT, "text": "One more question"}
        )
        page.wait_for_selector("text=One more question", timeout=5000)

        page.locator(".chat-item", has_text="+44").click()
        page.wait_for_selector("text=Nightly load started")

        page.goto(f"{whatsapp_sandbox.url}/#{RECIPIENT}")
        page.wait_for_selector(".msg.in")
        page.wait_for_function(
            "document.querySelector('.media-img') && document.querySelector('.media-img').naturalWidth > 0"
        )
        shot = tmp_path / "inbox.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        keep = os.environ.get("SANDBOX_SCREENSHOT")
        if keep:
            page.screenshot(path=keep)


def test_a_person_taps_a_button_and_types_a_reply_in_the_inbox(
    whatsapp_sandbox: WhatsAppSandbox, chromium: str
) -> None:
    with httpx.Client(
        base_url=whatsapp_sandbox.url, headers={"Authorization": f"Bearer {whatsapp_sandbox.api_key}"}
    ) as client:
        question = client.post(messages_path(whatsapp_sandbox), json=buttons(2)).json()["messages"][0]["id"]

    with chromium_page() as page:
        page.goto(f"{whatsapp_sandbox.url}/#{RECIPIENT}")
        page.click("button.choice[data-button-id='b1']")
        page.wait_for_selector(".msg.in")
        page.click(f".msg[data-id='{question}'] .quote-this")
        page.fill("#composer-text", "and tomorrow?")
        page.click("#composer button[type=submit]")
        page.wait_for_selector("text=and tomorrow?")

    tap, typed = whatsapp_sandbox.state.messages_to(RECIPIENT, direction="in")
    assert tap.payload["interactive"]["button_reply"] == {"id": "b1", "title": "Option 1"}
    assert tap.reply_to == typed.reply_to == question
    assert typed.payload["text"]["body"] == "and tomorrow?"
    replies = [e["entry"][0]["changes"][0]["value"] for e in whatsapp_sandbox.state.webhook_events]
    assert [v["messages"][0]["context"]["id"] for v in replies if "messages" in v] == [question, question]
