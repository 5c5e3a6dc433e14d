"""The message models on their own: recipients, payload shapes, raw payload parsing, error wording."""

from __future__ import annotations

import pytest

from airflow_provider_whatsapp._compat import AirflowFailException
from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.messages import (
    ButtonsMessage,
    DocumentMessage,
    ListMessage,
    RawInteractiveMessage,
    TemplateMessage,
    TextMessage,
    normalize_recipient,
    parse_message,
)
from airflow_provider_whatsapp.spec import vocabulary
from tests.messages.samples import samples


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("+1 (415) 555-0100", "14155550100"),
        ("14155550100", "14155550100"),
        (" +44 20 7946 0000 ", "442079460000"),
        (4915123456789, "4915123456789"),
        ("+55-11-91234-5678", "5511912345678"),
    ],
)
def test_recipients_are_normalised_to_digits(given: object, expected: str) -> None:
    assert normalize_recipient(given) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "given", ["", "call me", "+1 415 555 0100 ext 2", "1415.555.0100", None, True, "١٤١٥٥٥٥٠١٠٠"]
)
def test_values_that_cannot_be_phone_numbers_are_refused(given: object) -> None:
    with pytest.raises(WhatsAppValidationError, match=r"^to: "):
        normalize_recipient(given)  # type: ignore[arg-type]


def test_validation_error_fails_the_task_without_retries_and_is_a_value_error() -> None:
    with pytest.raises(WhatsAppValidationError) as caught:
        TextMessage.build(body="")
    assert isinstance(caught.value, AirflowFailException)
    assert isinstance(caught.value, ValueError)


def test_payload_has_no_messaging_product_and_carries_reply_context() -> None:
    payload = TextMessage.build(body="hi").to_payload("+1 415 555 0100", reply_to="wamid.IN")

    assert payload == {
        "recipient_type": "individual",
        "to": "14155550100",
        "type": "text",
        "context": {"message_id": "wamid.IN"},
        "text": {"body": "hi", "preview_url": False},
    }


def test_document_sent_from_a_file_keeps_its_name_unless_renamed() -> None:
    kept = DocumentMessage.build(file_path="s3://bucket/reports/q3.xlsx").with_media_id("m1")
    renamed = DocumentMessage.build(file_path="/tmp/x.pdf", filename="Report.pdf").with_media_id("m2")

    assert kept.content() == {"id": "m1", "filename": "q3.xlsx"}
    assert renamed.content() == {"id": "m2", "filename": "Report.pdf"}


def test_payload_cannot_be_built_before_the_upload() -> None:
    with pytest.raises(ValueError, match="must be uploaded"):
        DocumentMessage.build(file_path="/tmp/x.pdf").to_payload("14155550100")


@pytest.mark.parametrize("case", sorted(samples()))
def test_every_payload_parses_back_to_the_same_payload(case: str) -> None:
    model = samples()[case]
    payload = model.to_payload("14155550100")

    assert parse_message(payload).to_payload("14155550100") == payload


def test_parse_message_accepts_a_model_as_is() -> None:
    model = TextMessage.build(body="hi")
    assert parse_message(model) is model


def test_parse_message_passes_interactive_kinds_it_does_not_model() -> None:
    parameters = {"flow_message_version": "3", "flow_cta": "Sign up", "flow_id": "1234"}
    flow = {"type": "flow", "body": {"text": "Sign up"}, "action": {"name": "flow", "parameters": parameters}}

    message = parse_message({"type": "interactive", "interactive": flow})

    assert isinstance(message, RawInteractiveMessage)
    assert message.to_payload("14155550100")["interactive"] == flow


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"text": {"body": "x"}}, "type: is required"),
        ({"type": "interactive", "interactive": {"type": "carousel"}}, "interactive.type: 'carousel'"),
        ({"type": "text", "text": {"body": "x", "previewurl": True}}, "text.previewurl: is not a field"),
        ({"type": "text", "text": {"body": "x"}, "foo": 1}, "foo: is not a field of a text message"),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "list",
                    "body": {"text": "b"},
                    "action": {"button": "b", "sections": [{"rows": [{"id": "1", "title": "t"}] * 1}] * 2},
                },
            },
            "interactive.action.sections[0].title: is required",
        ),
        (
            {
                "type": "template",
                "template": {"name": "x", "language": {"code": "en"}, "components": [{"type": "footer"}]},
            },
            "template.components[0].type",
        ),
        (
            {"type": "image", "image": {"id": "1", "link": "https://e.com/i.png"}},
            "exactly one of link, media_id",
        ),
        ("not a dict", "expected a payload dict"),
    ],
)
def test_raw_payload_errors_name_the_path(payload: object, expected: str) -> None:
    with pytest.raises(WhatsAppValidationError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        parse_message(payload)  # type: ignore[arg-type]


def test_error_lists_every_problem_with_its_path() -> None:
    with pytest.raises(WhatsAppValidationError) as caught:
        ListMessage.build(
            body="",
            button="b" * 21,
            sections=[{"rows": [{"id": "1", "title": "t" * 25}]}],
        )
    text = str(caught.value)
    assert text.startswith("Invalid WhatsApp list message: ")
    assert "body: is empty" in text
    assert "button: 21 characters; WhatsApp allows at most 20" in text
    assert "sections[0].rows[0].title: 25 characters; WhatsApp allows at most 24" in text


def test_button_ids_must_be_unique_and_wire_form_is_accepted() -> None:
    wire = [
        {"type": "reply", "reply": {"id": "same", "title": "A"}},
        {"type": "reply", "reply": {"id": "same", "title": "B"}},
    ]
    with pytest.raises(WhatsAppValidationError, match=r"buttons\[1\].id: 'same' repeats"):
        ButtonsMessage.build(body="b", buttons=wire)


def test_list_accepts_only_a_text_header() -> None:
    with pytest.raises(WhatsAppValidationError, match="only a text header"):
        ListMessage.build(
            body="b",
            button="go",
            sections=[{"rows": [{"id": "1", "title": "t"}]}],
            header={"type": "image", "link": "https://e.com/a.png"},
        )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"body_parameters": ["a"], "components": [{"type": "body", "parameters": ["b"]}]},
            "in body_parameters or in components, not both",
        ),
        (
            {"header": {"type": "document"}},
            "a document header needs exactly one of link, media_id or file_path",
        ),
        (
            {"header": {"type": "text", "text": "t", "link": "https://e.com"}},
            "a text header cannot have link",
        ),
        ({"header": {"type": "location", "latitude": 1}}, "needs latitude and longitude"),
        (
            {
                "components": [
                    {"type": "button", "sub_type": "url", "parameters": [{"type": "text", "text": "x"}]}
                ]
            },
            f"needs sub_type ({', '.join(vocabulary.TEMPLATE_BUTTON_PARAMETER)}) and index",
        ),
        (
            {"components": [{"type": "button", "sub_type": "quick_reply", "index": 0, "parameters": ["x"]}]},
            "a quick_reply button takes payload parameters, not text",
        ),
        (
            {"components": [{"type": "body", "parameters": [{"type": "image", "image": {"id": "1"}}]}]},
            "not image",
        ),
        ({"language_code": ""}, "language_code: is empty"),
    ],
)
def test_template_errors(fields: dict, expected: str) -> None:
    with pytest.raises(WhatsAppValidationError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        TemplateMessage.build(name="daily_report", **fields)


def test_template_shortcuts_produce_graph_components_in_order() -> None:
    message = TemplateMessage.build(
        name="daily_report",
        language_code="de",
        components=[
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": 1,
                "parameters": [{"type": "payload", "payload": "P"}],
            }
        ],
        body_parameters=["Ada", 3],
        header={"type": "text", "text": "Mai"},
    )

    assert message.content() == {
        "name": "daily_report",
        "language": {"code": "de"},
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "Mai"}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "3"}]},
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": "1",
                "parameters": [{"type": "payload", "payload": "P"}],
            },
        ],
    }


@pytest.mark.parametrize("text", ["ok\u200b", "\u200b\u00e9", " . ", "\U0001f44d"])
def test_text_with_something_visible_is_not_empty(text: str) -> None:
    assert TextMessage.build(body=text).body == text


@pytest.mark.parametrize("value", [True, False])
def test_a_template_location_header_refuses_booleans(value: bool) -> None:
    with pytest.raises(WhatsAppValidationError, match=rf"latitude: {value} is not a number"):
        TemplateMessage.build(
            name="store_visit", header={"type": "location", "latitude": value, "longitude": 2.5}
        )
