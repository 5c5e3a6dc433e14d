"""Everything a bulk send is given is validated before the first request."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_whatsapp.bulk.items import build_plan, parse_recipients
from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from tests.bulk.helpers import MESSAGES, Inbox, context, numbers
from tests.loopback import LoopbackServer

TEXT = {"type": "text", "text": {"body": "Your report is ready"}}


def test_one_bad_recipient_among_100_sends_nothing(maton_conn: LoopbackServer, tmp_path: Path) -> None:
    maton_conn.route("POST", MESSAGES, Inbox())
    recipients = numbers(100)
    recipients[57] = "+1 415 CALL-ME"
    op = WhatsAppSendBulkOperator(
        task_id="bulk", recipients=recipients, message=TEXT, progress_path=str(tmp_path)
    )

    with pytest.raises(WhatsAppValidationError) as raised:
        op.execute(context())

    assert "recipients[57]" in str(raised.value)
    assert "nothing was sent" in str(raised.value)
    assert maton_conn.requests == []
    assert not any(tmp_path.rglob("*.jsonl"))  # not even a progress record


def test_bad_per_recipient_template_parameter_is_named() -> None:
    too_long = "x" * 1025
    with pytest.raises(WhatsAppValidationError) as raised:
        build_plan(
            [
                {"to": "+14155550100", "body_parameters": ["Ada"]},
                {"to": "+14155550101", "body_parameters": [too_long]},
            ],
            template_name="weekly_report",
        )
    assert "recipients[1]" in str(raised.value)
    assert "1024" in str(raised.value)


def test_every_problem_is_listed_once() -> None:
    with pytest.raises(WhatsAppValidationError) as raised:
        build_plan(
            ["123", {"name": "no to"}, "+14155550100", {"to": "+14155550101", "body_parameters": ["x"]}],
            message=TEXT,
        )
    text = str(raised.value)
    assert text.startswith("3 of 4 recipient(s) are invalid")
    assert "recipients[0]" in text and "recipients[1]" in text and "recipients[3]" in text


def test_template_payloads_carry_each_recipients_parameters() -> None:
    plan = build_plan(
        [
            {"to": "+1 (415) 555-0100", "body_parameters": ["Ada"]},
            {"to": "14155550101", "body_parameters": ["Alan"]},
        ],
        template_name="weekly_report",
        language_code="en_GB",
    )
    first, second = plan.items()
    assert first.to == "14155550100"
    assert first.payload["type"] == "template"
    assert first.payload["template"]["language"] == {"code": "en_GB"}
    assert first.payload["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}
    ]
    assert second.payload["template"]["components"][0]["parameters"][0]["text"] == "Alan"


def test_same_recipient_twice_is_sent_once_but_conflicting_entries_are_refused() -> None:
    plan = build_plan(["+14155550100", "14155550100", "+14155550101"], message=TEXT)
    assert [item.to for item in plan.items()] == ["14155550100", "14155550101"]

    with pytest.raises(WhatsAppValidationError, match="already recipients"):
        build_plan(
            [
                {"to": "+14155550100", "body_parameters": ["a"]},
                {"to": "14155550100", "body_parameters": ["b"]},
            ],
            template_name="weekly_report",
        )


def test_message_and_template_are_exclusive() -> None:
    with pytest.raises(ValueError, match="not both"):
        WhatsAppSendBulkOperator(task_id="t", recipients=[], message=TEXT, template_name="x")
    with pytest.raises(ValueError, match="needs message or template_name"):
        WhatsAppSendBulkOperator(task_id="t", recipients=[])


def test_bad_message_is_refused_before_any_send() -> None:
    with pytest.raises(WhatsAppValidationError, match=r"message:.*4096"):
        build_plan(["+14155550100"], message={"type": "text", "text": {"body": "x" * 5000}})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["+14155550100", "+14155550101"], ["+14155550100", "+14155550101"]),
        ('["+14155550100", "+14155550101"]', ["+14155550100", "+14155550101"]),
        ("['+14155550100', {'to': '+14155550101'}]", ["+14155550100", {"to": "+14155550101"}]),
        ("+14155550100, +14155550101\n+14155550102", ["+14155550100", "+14155550101", "+14155550102"]),
        ("", []),
    ],
)
def test_recipients_rendered_as_text_are_parsed(value: object, expected: list[object]) -> None:
    assert parse_recipients(value) == expected
