"""Each send operator against a real HTTP server on loopback: one POST, a payload Meta's schema accepts,
the wamid returned; ``file_path`` uploads first."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.operators.messages import (
    WhatsAppMarkAsReadOperator,
    WhatsAppSendAudioOperator,
    WhatsAppSendButtonsOperator,
    WhatsAppSendContactsOperator,
    WhatsAppSendCtaUrlOperator,
    WhatsAppSendDocumentOperator,
    WhatsAppSendImageOperator,
    WhatsAppSendListOperator,
    WhatsAppSendLocationOperator,
    WhatsAppSendMessageOperator,
    WhatsAppSendReactionOperator,
    WhatsAppSendStickerOperator,
    WhatsAppSendTemplateOperator,
    WhatsAppSendTextOperator,
    WhatsAppSendVideoOperator,
)
from tests.conftest import MESSAGES, PHONE_NUMBER_ID
from tests.loopback import LoopbackServer, Reply, sent
from tests.messages.meta_schema import meta_schema
from tests.messages.samples import CONTACT, SECTIONS

MEDIA = rf"^/whatsapp-business/v21\.0/{PHONE_NUMBER_ID}/media$"
RECIPIENT = "+1 (415) 555-0100"
WAMID = "wamid.HBgLMTQxNTU1NTAxMDAVAgARGBI"

OPERATORS: dict[str, tuple[type, dict[str, Any]]] = {
    "message": (WhatsAppSendMessageOperator, {"message": {"type": "text", "text": {"body": "raw"}}}),
    "text": (WhatsAppSendTextOperator, {"body": "Load finished", "preview_url": True}),
    "template": (
        WhatsAppSendTemplateOperator,
        {"template_name": "daily_report", "language_code": "en_US", "body_parameters": ["2024-05-01", 12]},
    ),
    "template_components": (
        WhatsAppSendTemplateOperator,
        {
            "template_name": "order_update",
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "Ada"}]},
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": 0,
                    "parameters": [{"type": "text", "text": "o/1"}],
                },
            ],
        },
    ),
    "image": (WhatsAppSendImageOperator, {"link": "https://example.com/a.png", "caption": "chart"}),
    "video": (WhatsAppSendVideoOperator, {"media_id": "778899", "caption": "clip"}),
    "audio": (WhatsAppSendAudioOperator, {"link": "https://example.com/a.ogg"}),
    "document": (
        WhatsAppSendDocumentOperator,
        {"link": "https://example.com/r.pdf", "filename": "r.pdf", "caption": "Q3"},
    ),
    "sticker": (WhatsAppSendStickerOperator, {"media_id": "5566"}),
    "location": (WhatsAppSendLocationOperator, {"latitude": 37.48, "longitude": -122.14, "name": "HQ"}),
    "contacts": (WhatsAppSendContactsOperator, {"contacts": [CONTACT]}),
    "buttons": (
        WhatsAppSendButtonsOperator,
        {
            "body": "Approve?",
            "buttons": [{"id": "y", "title": "Yes"}, {"id": "n", "title": "No"}],
            "header": "Load",
            "footer": "bot",
        },
    ),
    "list": (
        WhatsAppSendListOperator,
        {"body": "Pick one", "button": "Options", "sections": SECTIONS, "footer": "bot"},
    ),
    "cta_url": (
        WhatsAppSendCtaUrlOperator,
        {"body": "Dashboard ready", "display_text": "Open", "url": "https://example.com/d"},
    ),
    "reaction": (WhatsAppSendReactionOperator, {"message_id": "wamid.PREVIOUS", "emoji": "\u2705"}),
}


def _run(operator: Any) -> Any:
    return operator.execute(context={})


@pytest.mark.parametrize("case", sorted(OPERATORS))
def test_operator_makes_one_schema_valid_post_and_returns_wamid(gateway: LoopbackServer, case: str) -> None:
    gateway.route("POST", MESSAGES, Reply(json=sent(WAMID)))
    cls, kwargs = OPERATORS[case]
    operator = cls(task_id=f"send_{case}", to=RECIPIENT, **kwargs)

    assert _run(operator) == WAMID

    (request,) = gateway.requests
    assert request.method == "POST"
    assert request.path == f"/whatsapp-business/v21.0/{PHONE_NUMBER_ID}/messages"
    body = request.json
    assert body["messaging_product"] == "whatsapp"
    assert body["to"] == "14155550100"
    assert "context" not in body
    meta_schema().check(body)


@pytest.mark.parametrize("case", sorted(OPERATORS))
def test_reply_to_and_connection_id_work_on_every_send_operator(gateway: LoopbackServer, case: str) -> None:
    gateway.route("POST", MESSAGES, Reply(json=sent(WAMID)))
    cls, kwargs = OPERATORS[case]
    operator = cls(task_id="send", to=RECIPIENT, reply_to="wamid.INBOUND", connection_id="conn-42", **kwargs)

    _run(operator)

    (request,) = gateway.requests
    assert request.json["context"] == {"message_id": "wamid.INBOUND"}
    assert request.header("Maton-Connection") == "conn-42"
    meta_schema().check(request.json)


def test_template_fields_cover_recipient_and_every_message_argument() -> None:
    for cls, kwargs in OPERATORS.values():
        fields = set(cls.template_fields)
        assert {"to", "reply_to", "phone_number_id", "connection_id"} <= fields, cls
        assert set(kwargs) - {"preview_url"} <= fields, (cls, set(kwargs) - fields)


def test_mark_as_read_posts_status_read(gateway: LoopbackServer) -> None:
    gateway.route("POST", MESSAGES, Reply(json={"success": True}))

    result = _run(WhatsAppMarkAsReadOperator(task_id="read", message_id="wamid.IN"))

    assert result == "wamid.IN"
    (request,) = gateway.requests
    assert request.json == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN"}
    meta_schema().check(request.json, "MarkMessageRequestPayload")


# --- file_path: upload, then send by id ----------------------------------------------------------


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.mark.parametrize(
    ("cls", "name", "content", "mime"),
    [
        (WhatsAppSendImageOperator, "chart.png", PNG, "image/png"),
        (WhatsAppSendVideoOperator, "clip.mp4", b"\x00" * 128, "video/mp4"),
        (WhatsAppSendAudioOperator, "note.ogg", b"OggS" + b"\x00" * 60, "audio/ogg"),
        (WhatsAppSendDocumentOperator, "report 2024-05-01.csv", b"day,rows\n2024-05-01,12\n", "text/csv"),
        (WhatsAppSendStickerOperator, "smile.webp", b"RIFF\x00\x00\x00\x00WEBP", "image/webp"),
    ],
)
def test_file_path_is_uploaded_then_sent_by_id(
    gateway: LoopbackServer, tmp_path: Path, cls: type, name: str, content: bytes, mime: str
) -> None:
    gateway.route("POST", MEDIA, Reply(json={"id": "media-321"}))
    gateway.route("POST", MESSAGES, Reply(json=sent(WAMID)))
    path = tmp_path / name
    path.write_bytes(content)

    assert _run(cls(task_id="send", to=RECIPIENT, file_path=str(path))) == WAMID

    upload, send = gateway.requests
    assert upload.path.endswith("/media") and send.path.endswith("/messages")
    assert content in upload.body
    assert f'filename="{name}"'.encode() in upload.body
    assert mime.encode() in upload.body
    kind = send.json["type"]
    assert send.json[kind]["id"] == "media-321"
    if kind == "document":
        assert send.json["document"]["filename"] == name  # a document keeps its file name
    meta_schema().check(send.json)


def test_file_path_accepts_an_object_storage_url(gateway: LoopbackServer, tmp_path: Path) -> None:
    gateway.route("POST", MEDIA, Reply(json={"id": "media-9"}))
    gateway.route("POST", MESSAGES, Reply(json=sent(WAMID)))
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4 tiny")

    _run(WhatsAppSendDocumentOperator(task_id="send", to=RECIPIENT, file_path=f"file://{path}"))

    upload, send = gateway.requests
    assert b"%PDF-1.4 tiny" in upload.body
    assert send.json["document"] == {"id": "media-9", "filename": "report.pdf"}


def test_template_with_document_header_from_file_is_one_operator(
    gateway: LoopbackServer, tmp_path: Path
) -> None:
    gateway.route("POST", MEDIA, Reply(json={"id": "media-pdf"}))
    gateway.route("POST", MESSAGES, Reply(json=sent(WAMID)))
    report = tmp_path / "daily_report_2024-05-01.pdf"
    report.write_bytes(b"%PDF-1.4 report")

    operator = WhatsAppSendTemplateOperator(
        task_id="send_report",
        to=RECIPIENT,
        template_name="daily_report",
        header={"type": "document", "file_path": str(report)},
        body_parameters=["2024-05-01", "1,204"],
    )

    assert _run(operator) == WAMID
    upload, send = gateway.requests
    assert b"application/pdf" in upload.body
    components = send.json["template"]["components"]
    assert components[0] == {
        "type": "header",
        "parameters": [
            {"type": "document", "document": {"id": "media-pdf", "filename": "daily_report_2024-05-01.pdf"}}
        ],
    }
    assert components[1]["parameters"] == [
        {"type": "text", "text": "2024-05-01"},
        {"type": "text", "text": "1,204"},
    ]
    meta_schema().check(send.json)


def test_template_header_by_link_and_media_id(gateway: LoopbackServer) -> None:
    gateway.route("POST", MESSAGES, Reply(json=sent(WAMID)))
    for header in (
        {"type": "document", "link": "https://example.com/r.pdf", "filename": "r.pdf"},
        {"type": "image", "media_id": "123"},
    ):
        _run(
            WhatsAppSendTemplateOperator(
                task_id="t", to=RECIPIENT, template_name="daily_report", header=header
            )
        )
    first, second = gateway.requests
    assert first.json["template"]["components"][0]["parameters"][0]["document"]["link"].startswith("https://")
    assert second.json["template"]["components"][0]["parameters"][0] == {
        "type": "image",
        "image": {"id": "123"},
    }


def test_missing_file_fails_before_any_request(gateway: LoopbackServer, tmp_path: Path) -> None:
    operator = WhatsAppSendDocumentOperator(
        task_id="send", to=RECIPIENT, file_path=str(tmp_path / "nope.pdf")
    )

    with pytest.raises(WhatsAppValidationError, match="does not exist"):
        _run(operator)
    assert gateway.requests == []


# --- parse time, rendering, mapping ---------------------------------------------------------------


def test_concrete_arguments_are_validated_when_the_dag_is_parsed() -> None:
    with pytest.raises(WhatsAppValidationError, match=r"body: 4097 characters; WhatsApp allows at most 4096"):
        WhatsAppSendTextOperator(task_id="t", to=RECIPIENT, body="x" * 4097)
    with pytest.raises(WhatsAppValidationError, match="to: '12' has 2 digits"):
        WhatsAppSendTextOperator(task_id="t", to="12", body="hi")


def test_templated_arguments_wait_for_rendering(gateway: LoopbackServer) -> None:
    operator = WhatsAppSendTextOperator(task_id="t", to="{{ params.to }}", body="{{ 'x' * 4097 }}")
    operator.to, operator.body = RECIPIENT, "x" * 4097  # what rendering would produce

    with pytest.raises(WhatsAppValidationError, match="4097 characters"):
        _run(operator)
    assert gateway.requests == []


def test_xcomarg_arguments_wait_for_rendering() -> None:
    from airflow_provider_whatsapp.operators.messages import is_concrete

    class Lazy:  # stands for an XComArg or any object Airflow resolves at run time
        pass

    assert not is_concrete(Lazy())
    assert not is_concrete(["ok", {"k": "{{ ds }}"}])
    assert is_concrete(["ok", {"k": 1}, Path("/tmp/x")])


def test_notifier_async_notify_sends_through_asend_message(gateway: LoopbackServer) -> None:
    from airflow_provider_whatsapp.notifications.whatsapp import WhatsAppNotifier

    gateway.route("POST", MESSAGES, Reply(json=sent(WAMID)))
    notifier = WhatsAppNotifier(to=[RECIPIENT, "+44 20 7946 0000"], body="async alert")

    asyncio.run(notifier.async_notify({}))

    assert [r.json["to"] for r in gateway.requests] == ["14155550100", "442079460000"]
    assert all(r.json["text"]["body"] == "async alert" for r in gateway.requests)


def test_notifier_template_and_validation(gateway: LoopbackServer) -> None:
    from airflow_provider_whatsapp.notifications.whatsapp import WhatsAppNotifier, send_whatsapp_notification

    assert send_whatsapp_notification is WhatsAppNotifier
    with pytest.raises(WhatsAppValidationError, match="needs body, template_name, or both"):
        WhatsAppNotifier(to=RECIPIENT)
    with pytest.raises(WhatsAppValidationError, match="body: 4097 characters"):
        WhatsAppNotifier(to=RECIPIENT, body="x" * 4097)
    gateway.route("POST", MESSAGES, Reply(json=sent(WAMID)))

    WhatsAppNotifier(to=RECIPIENT, template_name="etl_failed", body_parameters=["load", "boom"]).notify({})

    (request,) = gateway.requests
    assert request.json["template"]["name"] == "etl_failed"
    meta_schema().check(request.json)


def test_generic_operator_takes_a_model(gateway: LoopbackServer) -> None:
    from airflow_provider_whatsapp.messages import LocationMessage

    gateway.route("POST", MESSAGES, Reply(json=sent(WAMID)))
    model = LocationMessage.build(latitude=1.5, longitude=2.5)

    assert _run(WhatsAppSendMessageOperator(task_id="m", to=RECIPIENT, message=model)) == WAMID
    assert gateway.requests[0].json["location"] == {"latitude": 1.5, "longitude": 2.5}


def test_real_xcomargs_are_not_validated_at_parse_time() -> None:
    import datetime

    try:
        from airflow.sdk import DAG, task
    except ImportError:
        from airflow import DAG
        from airflow.decorators import task

    @task
    def numbers() -> str:
        return "+1 415 555 0100"

    with DAG("xcomarg_parse", schedule=None, start_date=datetime.datetime(2024, 1, 1)):
        recipient = numbers()
        operator = WhatsAppSendTextOperator(task_id="send", to=recipient, body="hi")

    assert operator.to is recipient
    assert "numbers" in operator.upstream_task_ids
