"""One valid model of every message type (every template header kind too), shared by the tests."""

from __future__ import annotations

from typing import Any

from airflow_provider_whatsapp.messages import (
    AudioMessage,
    ButtonsMessage,
    ContactsMessage,
    CtaUrlMessage,
    DocumentMessage,
    ImageMessage,
    ListMessage,
    LocationMessage,
    OutgoingMessage,
    ReactionMessage,
    StickerMessage,
    TemplateMessage,
    TextMessage,
    VideoMessage,
)

CONTACT: dict[str, Any] = {
    "name": {"formatted_name": "Ada Lovelace", "first_name": "Ada", "last_name": "Lovelace"},
    "phones": [{"phone": "+1 415 555 0100", "type": "CELL", "wa_id": "14155550100"}],
    "emails": [{"email": "ada@example.com", "type": "WORK"}],
    "urls": [{"url": "https://example.com", "type": "WORK"}],
    "addresses": [{"street": "1 Main St", "city": "Springfield", "country_code": "us", "type": "HOME"}],
    "org": {"company": "Analytical Engines", "title": "Programmer"},
    "birthday": "1815-12-10",
}

SECTIONS: list[dict[str, Any]] = [
    {"title": "Reports", "rows": [{"id": "daily", "title": "Daily", "description": "Every morning"}]},
    {"title": "Alerts", "rows": [{"id": "fail", "title": "Failures"}, {"id": "sla", "title": "SLA misses"}]},
]


def samples() -> dict[str, OutgoingMessage]:
    """``{case name: model}`` covering every outgoing type and every template header kind."""
    return {
        "text": TextMessage.build(body="Nightly load finished: 1,204 rows", preview_url=True),
        "image_link": ImageMessage.build(link="https://example.com/chart.png", caption="Sales"),
        "image_id": ImageMessage.build(media_id="1234567890"),
        "video": VideoMessage.build(link="https://example.com/clip.mp4", caption="Demo"),
        "audio": AudioMessage.build(media_id="99887766"),
        "document": DocumentMessage.build(
            link="https://example.com/report.pdf", filename="report.pdf", caption="Q3"
        ),
        "sticker": StickerMessage.build(media_id="5566"),
        "location": LocationMessage.build(
            latitude=37.4847, longitude=-122.1486, name="HQ", address="1 Hacker Way"
        ),
        "contacts": ContactsMessage.build(contacts=[CONTACT]),
        "buttons": ButtonsMessage.build(
            body="Approve the load?",
            header="Nightly load",
            footer="Reply within 1 h",
            buttons=[{"id": "yes", "title": "Approve"}, {"id": "no", "title": "Reject"}],
        ),
        "buttons_image_header": ButtonsMessage.build(
            body="Look at this chart",
            header={"type": "image", "link": "https://example.com/chart.png"},
            buttons=[{"id": "ok", "title": "OK"}],
        ),
        "list": ListMessage.build(
            body="What do you want to receive?",
            button="Choose",
            sections=SECTIONS,
            header="Subscriptions",
            footer="Change any time",
        ),
        "cta_url": CtaUrlMessage.build(
            body="The dashboard is ready",
            display_text="Open dashboard",
            url="https://example.com/dash",
            header={"type": "document", "media_id": "4455"},
            footer="Internal",
        ),
        "reaction": ReactionMessage.build(message_id="wamid.HBgLMTQxNTU1NTAxMDA", emoji="\U0001f44d"),
        "template_plain": TemplateMessage.build(name="hello_world", language_code="en_US"),
        "template_text_header": TemplateMessage.build(
            name="daily_report",
            header={"type": "text", "text": "2024-05-01"},
            body_parameters=["Alice", 42, "3.5%"],
        ),
        "template_image_header": TemplateMessage.build(
            name="daily_chart", header={"type": "image", "link": "https://example.com/chart.png"}
        ),
        "template_video_header": TemplateMessage.build(
            name="weekly_video", header={"type": "video", "media_id": "7788"}
        ),
        "template_document_header": TemplateMessage.build(
            name="daily_report",
            header={"type": "document", "media_id": "3344", "filename": "report.pdf"},
            body_parameters=["2024-05-01"],
        ),
        "template_location_header": TemplateMessage.build(
            name="store_pickup",
            header={"type": "location", "latitude": 37.48, "longitude": -122.14, "name": "Store"},
        ),
        "template_components": TemplateMessage.build(
            name="order_update",
            language_code="en",
            components=[
                {
                    "type": "header",
                    "parameters": [{"type": "image", "image": {"link": "https://e.com/i.png"}}],
                },
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ada"},
                        {
                            "type": "currency",
                            "currency": {"fallback_value": "$100.99", "code": "USD", "amount_1000": 100990},
                        },
                        {"type": "date_time", "date_time": {"fallback_value": "May 1, 2024"}},
                    ],
                },
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": 0,
                    "parameters": [{"type": "text", "text": "order/123"}],
                },
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": "1",
                    "parameters": [{"type": "payload", "payload": "STOP_UPDATES"}],
                },
            ],
        ),
    }
