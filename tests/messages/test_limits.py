"""Every limit in DESIGN.md, exceeded by one: a clear error naming field and limit, and no request made.

Each case builds a valid operator, then gives one argument the value a template might render to, and
runs ``execute`` against the loopback gateway.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.operators.messages import (
    WhatsAppSendAudioOperator,
    WhatsAppSendButtonsOperator,
    WhatsAppSendContactsOperator,
    WhatsAppSendDocumentOperator,
    WhatsAppSendImageOperator,
    WhatsAppSendListOperator,
    WhatsAppSendLocationOperator,
    WhatsAppSendMessageOperator,
    WhatsAppSendStickerOperator,
    WhatsAppSendTemplateOperator,
    WhatsAppSendTextOperator,
    WhatsAppSendVideoOperator,
)
from airflow_provider_whatsapp.spec import limits
from tests.loopback import LoopbackServer

TO = "+1 415 555 0100"
MB = 1024 * 1024


def _buttons(n: int, title: str = "B{}", id_: str = "b{}") -> list[dict[str, str]]:
    return [{"id": id_.format(i), "title": title.format(i)} for i in range(n)]


def _rows(n: int, start: int = 0) -> list[dict[str, str]]:
    return [{"id": f"r{i}", "title": f"Row {i}"} for i in range(start, start + n)]


BUTTONS = (WhatsAppSendButtonsOperator, {"body": "Pick", "buttons": _buttons(2)})
LIST = (WhatsAppSendListOperator, {"body": "Pick", "button": "Open", "sections": [{"rows": _rows(2)}]})
TEXT = (WhatsAppSendTextOperator, {"body": "hi"})
TEMPLATE = (WhatsAppSendTemplateOperator, {"template_name": "daily_report"})
CONTACT = {"name": {"formatted_name": "Ada"}}

# (operator, valid arguments, the rendered values that break one limit, expected error text)
CASES: dict[str, tuple[tuple[type, dict[str, Any]], dict[str, Any], str]] = {
    "text body > 4096": (TEXT, {"body": "x" * 4097}, "body: 4097 characters; WhatsApp allows at most 4096"),
    "text body empty": (TEXT, {"body": "  "}, "body: is empty"),
    "caption > 1024": (
        (WhatsAppSendImageOperator, {"link": "https://e.com/a.png"}),
        {"caption": "c" * 1025},
        "caption: 1025 characters; WhatsApp allows at most 1024",
    ),
    "interactive header > 60": (
        BUTTONS,
        {"header": "h" * 61},
        "header.text: 61 characters; WhatsApp allows at most 60",
    ),
    "interactive body > 1024": (
        BUTTONS,
        {"body": "b" * 1025},
        "body: 1025 characters; WhatsApp allows at most 1024",
    ),
    "interactive body empty": (LIST, {"body": ""}, "body: is empty"),
    "interactive footer > 60": (
        BUTTONS,
        {"footer": "f" * 61},
        "footer: 61 characters; WhatsApp allows at most 60",
    ),
    "reply buttons > 3": (BUTTONS, {"buttons": _buttons(4)}, "buttons: 4 items; WhatsApp allows at most 3"),
    "reply buttons < 1": (BUTTONS, {"buttons": []}, "buttons: 0 items; WhatsApp needs at least 1"),
    "reply button titles unique": (
        BUTTONS,
        {"buttons": _buttons(2, title="Same")},
        "buttons[1].title: 'Same' repeats buttons[0].title; WhatsApp needs unique button titles",
    ),
    "reply button title > 20": (
        BUTTONS,
        {"buttons": [{"id": "a", "title": "t" * 21}]},
        "buttons[0].title: 21 characters; WhatsApp allows at most 20",
    ),
    "reply button id > 256": (
        BUTTONS,
        {"buttons": [{"id": "i" * 257, "title": "ok"}]},
        "buttons[0].id: 257 characters; WhatsApp allows at most 256",
    ),
    "list button text > 20": (
        LIST,
        {"button": "o" * 21},
        "button: 21 characters; WhatsApp allows at most 20",
    ),
    "list sections > 10": (
        LIST,
        {"sections": [{"title": f"S{i}", "rows": _rows(1, i)} for i in range(11)]},
        "sections: 11 items; WhatsApp allows at most 10",
    ),
    "list sections < 1": (LIST, {"sections": []}, "sections: 0 items; WhatsApp needs at least 1"),
    "list section title > 24": (
        LIST,
        {"sections": [{"title": "s" * 25, "rows": _rows(1)}]},
        "sections[0].title: 25 characters; WhatsApp allows at most 24",
    ),
    "list section title required when > 1 section": (
        LIST,
        {"sections": [{"title": "A", "rows": _rows(1)}, {"rows": _rows(1, 1)}]},
        "sections[1].title: is required when a list has more than one section",
    ),
    "list rows > 10 in all": (
        LIST,
        {"sections": [{"title": "A", "rows": _rows(6)}, {"title": "B", "rows": _rows(5, 6)}]},
        "sections: 11 rows in all; WhatsApp allows at most 10",
    ),
    "list row id > 200": (
        LIST,
        {"sections": [{"rows": [{"id": "i" * 201, "title": "t"}]}]},
        "sections[0].rows[0].id: 201 characters; WhatsApp allows at most 200",
    ),
    "list row title > 24": (
        LIST,
        {"sections": [{"rows": [{"id": "i", "title": "t" * 25}]}]},
        "sections[0].rows[0].title: 25 characters; WhatsApp allows at most 24",
    ),
    "list row description > 72": (
        LIST,
        {"sections": [{"rows": [{"id": "i", "title": "t", "description": "d" * 73}]}]},
        "sections[0].rows[0].description: 73 characters; WhatsApp allows at most 72",
    ),
    "contacts > 5": (
        (WhatsAppSendContactsOperator, {"contacts": [CONTACT]}),
        {"contacts": [CONTACT] * 6},
        "contacts: 6 items; WhatsApp allows at most 5",
    ),
    "contacts < 1": (
        (WhatsAppSendContactsOperator, {"contacts": [CONTACT]}),
        {"contacts": []},
        "contacts: 0 items; WhatsApp needs at least 1",
    ),
    "template name > 512": (
        TEMPLATE,
        {"template_name": "n" * 513},
        "name: 513 characters; WhatsApp allows at most 512",
    ),
    "template name pattern": (
        TEMPLATE,
        {"template_name": "Daily-Report"},
        "name: 'Daily-Report' may use only lowercase letters, digits and underscores",
    ),
    "template header parameter > 60": (
        TEMPLATE,
        {"header": {"type": "text", "text": "h" * 61}},
        "header.text: 61 characters; WhatsApp allows at most 60",
    ),
    "template body parameter > 1024": (
        TEMPLATE,
        {"body_parameters": ["ok", "p" * 1025]},
        "body_parameters[1].text: 1025 characters; WhatsApp allows at most 1024",
    ),
    "template component header parameter > 60": (
        TEMPLATE,
        {"components": [{"type": "header", "parameters": [{"type": "text", "text": "h" * 61}]}]},
        "components[0]: parameters[0].text: 61 characters; WhatsApp allows at most 60",
    ),
    "recipient < 8 digits": (
        TEXT,
        {"to": "+1 555 010"},
        "to: '+1 555 010' has 7 digits; a WhatsApp recipient has 8 to 15",
    ),
    "recipient > 15 digits": (
        TEXT,
        {"to": "+1234 5678 9012 3456"},
        "has 16 digits; a WhatsApp recipient has 8 to 15",
    ),
    "recipient not a phone number": (TEXT, {"to": "ops-team@example.com"}, "is not a phone number"),
    "media link not http(s)": (
        (WhatsAppSendVideoOperator, {"link": "https://e.com/a.mp4"}),
        {"link": "ftp://e.com/a.mp4"},
        "link: 'ftp://e.com/a.mp4' is not an absolute http(s):// URL",
    ),
    "media link relative": (
        (WhatsAppSendDocumentOperator, {"link": "https://e.com/a.pdf"}),
        {"link": "/reports/a.pdf"},
        "is not an absolute http(s):// URL",
    ),
    "media needs exactly one source": (
        (WhatsAppSendAudioOperator, {"media_id": "1"}),
        {"link": "https://e.com/a.ogg"},
        "needs exactly one of link, media_id or file_path (given: link, media_id)",
    ),
    "latitude > 90": (
        (WhatsAppSendLocationOperator, {"latitude": 0, "longitude": 0}),
        {"latitude": 91},
        "latitude: 91.0 is outside -90..90",
    ),
    "latitude < -90": (
        (WhatsAppSendLocationOperator, {"latitude": 0, "longitude": 0}),
        {"latitude": "-91"},
        "latitude: -91.0 is outside -90..90",
    ),
    "longitude > 180": (
        (WhatsAppSendLocationOperator, {"latitude": 0, "longitude": 0}),
        {"longitude": 181},
        "longitude: 181.0 is outside -180..180",
    ),
    "latitude True is not a number": (
        (WhatsAppSendLocationOperator, {"latitude": 0, "longitude": 0}),
        {"latitude": True},
        "latitude: True is not a number",
    ),
    "longitude False is not a number": (
        (WhatsAppSendLocationOperator, {"latitude": 0, "longitude": 0}),
        {"longitude": False},
        "longitude: False is not a number",
    ),
    "text body only zero-width characters": (
        TEXT,
        {"body": "\u200b\u200c\u200d\u2060\ufeff"},
        "body: is empty",
    ),
    "text body only controls and odd spaces": (
        TEXT,
        {"body": "\x00\x07\u00a0\u2028\u3000"},
        "body: is empty",
    ),
    "interactive body only a Hangul filler": (LIST, {"body": "\u3164 \u2800"}, "body: is empty"),
    "reply button title only invisible": (
        BUTTONS,
        {"buttons": [{"id": "a", "title": "\u200b"}]},
        "buttons[0].title: is empty",
    ),
    "raw message type unknown": (
        (WhatsAppSendMessageOperator, {"message": {"type": "text", "text": {"body": "x"}}}),
        {"message": {"type": "txt", "txt": {"body": "x"}}},
        "type: 'txt' is not a message type WhatsApp knows",
    ),
    "raw message object missing": (
        (WhatsAppSendMessageOperator, {"message": {"type": "text", "text": {"body": "x"}}}),
        {"message": {"type": "image", "text": {"body": "x"}}},
        "image: is required for a message of type 'image'",
    ),
    "raw message limit": (
        (WhatsAppSendMessageOperator, {"message": {"type": "text", "text": {"body": "x"}}}),
        {
            "message": {
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "body": {"text": "b"},
                    "action": {"buttons": [{"type": "reply", "reply": b} for b in _buttons(4)]},
                },
            }
        },
        "interactive.action.buttons: 4 items; WhatsApp allows at most 3",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_limit_exceeded_by_one_fails_before_any_request(gateway: LoopbackServer, case: str) -> None:
    (cls, valid), rendered, expected = CASES[case]
    operator = cls(task_id="send", to=TO, **valid)
    for name, value in rendered.items():
        setattr(operator, name, value)  # what rendering the templated field would produce

    with pytest.raises(WhatsAppValidationError, match=re.escape(expected)):
        operator.execute(context={})
    assert gateway.requests == []


@pytest.mark.parametrize(
    "case",
    [
        "text body > 4096",
        "reply buttons > 3",
        "list rows > 10 in all",
        "latitude > 90",
        "latitude True is not a number",
        "text body only zero-width characters",
    ],
)
def test_concrete_limit_breaks_fail_at_parse_time(case: str) -> None:
    (cls, valid), rendered, expected = CASES[case]

    with pytest.raises(WhatsAppValidationError, match=re.escape(expected)):
        cls(task_id="send", **{"to": TO, **valid, **rendered})


# --- media files: type and size checked before uploading (limits from limits.MEDIA_RULES) ---------

MEDIA_FILES = [
    (
        WhatsAppSendImageOperator,
        "big.png",
        5 * MB + 1,
        "image file is 5242881 bytes; WhatsApp accepts at most 5242880",
    ),
    (
        WhatsAppSendVideoOperator,
        "big.mp4",
        16 * MB + 1,
        "video file is 16777217 bytes; WhatsApp accepts at most 16777216",
    ),
    (
        WhatsAppSendAudioOperator,
        "big.mp3",
        16 * MB + 1,
        "audio file is 16777217 bytes; WhatsApp accepts at most 16777216",
    ),
    (
        WhatsAppSendDocumentOperator,
        "big.pdf",
        100 * MB + 1,
        "document file is 104857601 bytes; WhatsApp accepts at most 104857600",
    ),
    (
        WhatsAppSendStickerOperator,
        "big.webp",
        100 * 1024 + 1,
        "sticker file is 102401 bytes; WhatsApp accepts at most 102400",
    ),
    (WhatsAppSendImageOperator, "anim.gif", 10, "image MIME type 'image/gif' is not accepted by WhatsApp"),
    (WhatsAppSendVideoOperator, "clip.mov", 10, "video MIME type 'video/quicktime' is not accepted"),
    (WhatsAppSendAudioOperator, "tone.wav", 10, "audio MIME type 'audio/x-wav' is not accepted"),
    (WhatsAppSendStickerOperator, "smile.png", 10, "sticker MIME type 'image/png' is not accepted"),
]


@pytest.mark.parametrize(("cls", "name", "size", "expected"), MEDIA_FILES, ids=[m[1] for m in MEDIA_FILES])
def test_media_file_over_its_limit_is_refused_before_uploading(
    gateway: LoopbackServer, tmp_path: Path, cls: type, name: str, size: int, expected: str
) -> None:
    path = tmp_path / name
    with open(path, "wb") as handle:  # sparse: no 100 MB written to disk
        handle.truncate(size)

    with pytest.raises(WhatsAppValidationError, match=re.escape(expected)):
        cls(task_id="send", to=TO, file_path=str(path)).execute(context={})
    assert gateway.requests == []


def test_limits_come_from_the_limits_module() -> None:
    # The numbers asserted above are WhatsApp's; they must be the ones the provider enforces.
    assert limits.TEXT_BODY_MAX == 4096
    assert limits.MEDIA_CAPTION_MAX == 1024
    assert (limits.REPLY_BUTTONS_MAX, limits.LIST_ROWS_TOTAL_MAX, limits.CONTACTS_MAX) == (3, 10, 5)
    assert limits.MEDIA_RULES["sticker"].max_bytes == 100 * 1024
