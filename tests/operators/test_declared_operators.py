"""Send operators declare their model and message fields; the base class does the rest, each step once.

Counts are taken with spies around the real functions during one ``execute`` against a loopback gateway:
the recipient is normalised once, the payload built once, a template definition validated once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import pytest

from airflow_provider_whatsapp import messages, template_definitions
from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.hooks import maton
from airflow_provider_whatsapp.messages import _common
from airflow_provider_whatsapp.operators import templates
from airflow_provider_whatsapp.operators.messages import (
    WhatsAppSendDocumentOperator,
    WhatsAppSendMessageOperator,
    WhatsAppSendTemplateOperator,
    WhatsAppSendTextOperator,
)
from airflow_provider_whatsapp.operators.templates import WhatsAppCreateTemplateOperator
from tests.conftest import MESSAGES, PHONE_NUMBER_ID, WABA_ID
from tests.loopback import LoopbackServer, Reply, sent
from tests.messages.meta_schema import meta_schema

MEDIA = rf"^/whatsapp-business/v21\.0/{PHONE_NUMBER_ID}/media$"
TEMPLATES = rf"^/whatsapp-business/v21\.0/{WABA_ID}/message_templates$"
RECIPIENT = "+1 (415) 555-0100"
WAMID = "wamid.HBgLMTQxNTU1NTAxMDAVAgARGBI"


class SendPin(WhatsAppSendMessageOperator):
    """A send operator that declares its model and fields and nothing else: no constructor, no build."""

    model: ClassVar[str] = "LocationMessage"
    message_fields: ClassVar[tuple[str, ...]] = ("latitude", "longitude", "place")
    model_arguments: ClassVar[dict[str, str]] = {"place": "name"}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each step ran: spies wrap the real functions wherever they are looked up."""
    counted: Counter[str] = Counter()

    def spy(name: str, real: Any) -> Any:
        def counting(*args: Any, **kwargs: Any) -> Any:
            counted[name] += 1
            return real(*args, **kwargs)

        return counting

    normalize = spy("normalize_recipient", _common.normalize_recipient)
    monkeypatch.setattr(_common, "normalize_recipient", normalize)
    monkeypatch.setattr(messages, "normalize_recipient", normalize)
    monkeypatch.setattr(
        _common.OutgoingMessage, "to_payload", spy("to_payload", _common.OutgoingMessage.to_payload)
    )
    validate = spy("validate_template", template_definitions.validate_template)
    for module in (template_definitions, maton, templates):
        monkeypatch.setattr(module, "validate_template", validate)
    for model in ("LocationMessage", "TextMessage", "DocumentMessage", "TemplateMessage"):
        cls = getattr(messages, model)
        monkeypatch.setattr(cls, "build", spy(f"{model}.build", cls.build))
    return counted


# --- the declaration ------------------------------------------------------------------------------


def test_a_subclass_that_only_declares_builds_validates_and_sends(gateway: LoopbackServer) -> None:
    gateway.route("POST", MESSAGES, Reply(json=sent(WAMID)))

    operator = SendPin(task_id="pin", to=RECIPIENT, latitude=37.48, longitude=-122.14, place="HQ")

    assert operator.template_fields == (
        "phone_number_id",
        "connection_id",
        "to",
        "reply_to",
        "latitude",
        "longitude",
        "place",
    )
    assert operator.execute(context={}) == WAMID
    (request,) = gateway.requests
    assert request.json["to"] == "14155550100"
    assert request.json["location"] == {"latitude": 37.48, "longitude": -122.14, "name": "HQ"}
    meta_schema().check(request.json)


def test_a_declared_subclass_checks_concrete_values_when_the_dag_is_parsed() -> None:
    with pytest.raises(WhatsAppValidationError, match=r"latitude"):
        SendPin(task_id="pin", to=RECIPIENT, latitude=91, longitude=0)


def test_a_declared_subclass_renders_its_fields_with_real_airflow(gateway: LoopbackServer) -> None:
    import datetime

    try:
        from airflow.sdk import DAG
    except ImportError:
        from airflow import DAG

    gateway.route("POST", MESSAGES, Reply(json=sent(WAMID)))
    with DAG("declared_render", schedule=None, start_date=datetime.datetime(2024, 1, 1)):
        operator = SendPin(
            task_id="pin",
            to="{{ params.to }}",
            latitude="{{ params.lat }}",
            longitude=2.5,
            place="{{ params.place }}",
        )
    operator.render_template_fields({"params": {"to": RECIPIENT, "lat": "1.5", "place": "Dock 7"}})

    assert operator.execute(context={}) == WAMID
    assert gateway.requests[0].json["location"] == {"latitude": 1.5, "longitude": 2.5, "name": "Dock 7"}


def test_flags_are_not_templated_and_options_are_not_message_fields() -> None:
    assert "preview_url" not in WhatsAppSendTextOperator.template_fields
    assert "mime_type" not in WhatsAppSendDocumentOperator.template_fields
    assert (
        "mime_type"
        not in WhatsAppSendDocumentOperator(task_id="d", to=RECIPIENT, media_id="1").model_fields()
    )


def test_a_concrete_bad_value_fails_at_parse_time_exactly_once(calls: Counter[str]) -> None:
    class MyDocument(WhatsAppSendDocumentOperator):  # one level deeper than any provider operator
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)

    with pytest.raises(WhatsAppValidationError, match="caption: 1025 characters"):
        MyDocument(task_id="d", to=RECIPIENT, media_id="123", caption="x" * 1025)
    assert calls["DocumentMessage.build"] == 1


@pytest.mark.parametrize(
    ("cls", "kwargs", "model"),
    [
        (WhatsAppSendTextOperator, {"body": "hi"}, "TextMessage"),
        (
            WhatsAppSendDocumentOperator,
            {"link": "https://example.com/r.pdf", "caption": "Q3"},
            "DocumentMessage",
        ),
        (SendPin, {"latitude": 1, "longitude": 2}, "LocationMessage"),
    ],
)
def test_a_concrete_operator_is_validated_once_when_parsed(
    calls: Counter[str], cls: type, kwargs: dict[str, Any], model: str
) -> None:
    cls(task_id="t", to=RECIPIENT, **kwargs)

    assert calls[model + ".build"] == 1
    assert calls["normalize_recipient"] == 1


# --- one execute: each step once ---------------------------------------------------------------------


def test_one_send_normalises_builds_and_posts_once(gateway: LoopbackServer, calls: Counter[str]) -> None:
    gateway.route("POST", MESSAGES, Reply(json=sent(WAMID)))
    operator = WhatsAppSendTextOperator(task_id="t", to="{{ params.to }}", body="{{ params.body }}")
    operator.to, operator.body = RECIPIENT, "Load finished"  # what rendering produces
    calls.clear()

    operator.execute(context={})

    assert calls["normalize_recipient"] == 1
    assert calls["to_payload"] == 1
    assert calls["TextMessage.build"] == 1
    (request,) = gateway.requests
    assert request.json["to"] == "14155550100"
    assert request.json["messaging_product"] == "whatsapp"


def test_a_send_with_an_upload_checks_the_recipient_once_and_before_the_upload(
    gateway: LoopbackServer, tmp_path: Path, calls: Counter[str]
) -> None:
    gateway.route("POST", MEDIA, Reply(json={"id": "media-1"}))
    gateway.route("POST", MESSAGES, Reply(json=sent(WAMID)))
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 tiny")
    operator = WhatsAppSendDocumentOperator(task_id="d", to="{{ params.to }}", file_path=str(report))
    operator.to = RECIPIENT
    calls.clear()

    operator.execute(context={})

    assert (calls["normalize_recipient"], calls["to_payload"], calls["DocumentMessage.build"]) == (1, 1, 1)
    assert [r.path.rsplit("/", 1)[-1] for r in gateway.requests] == ["media", "messages"]

    gateway.requests.clear()
    operator.to = "12"  # rendered into something that is not a phone number
    with pytest.raises(WhatsAppValidationError, match="to: '12' has 2 digits"):
        operator.execute(context={})
    assert gateway.requests == []  # not even the upload


def test_a_template_send_with_a_header_file_builds_its_payload_once(
    gateway: LoopbackServer, tmp_path: Path, calls: Counter[str]
) -> None:
    gateway.route("POST", MEDIA, Reply(json={"id": "media-2"}))
    gateway.route("POST", MESSAGES, Reply(json=sent(WAMID)))
    report = tmp_path / "daily.pdf"
    report.write_bytes(b"%PDF-1.4 daily")
    operator = WhatsAppSendTemplateOperator(
        task_id="t",
        to=RECIPIENT,
        template_name="daily_report",
        header={"type": "document", "file_path": str(report)},
    )
    calls.clear()

    operator.execute(context={})

    assert (calls["normalize_recipient"], calls["to_payload"], calls["TemplateMessage.build"]) == (1, 1, 1)
    send = gateway.requests[-1].json
    assert send["template"]["components"][0]["parameters"][0]["document"]["id"] == "media-2"


def test_creating_a_template_validates_it_once_at_run_time(
    gateway: LoopbackServer, calls: Counter[str]
) -> None:
    gateway.route("POST", TEMPLATES, Reply(json={"id": "9001", "status": "PENDING", "category": "UTILITY"}))
    operator = WhatsAppCreateTemplateOperator(
        task_id="create",
        name="{{ params.name }}",
        language="en_US",
        category="UTILITY",
        components=[{"type": "BODY", "text": "Load {{1}} done", "example": {"body_text": [["daily"]]}}],
    )
    assert calls["validate_template"] == 1  # parse time: what is concrete
    operator.name = "load_done"
    calls.clear()

    assert operator.execute(context={}) == "9001"

    assert calls["validate_template"] == 1
    (request,) = gateway.requests
    assert request.json["name"] == "load_done"


def test_a_rendered_template_definition_is_still_refused_before_any_request(gateway: LoopbackServer) -> None:
    operator = WhatsAppCreateTemplateOperator(
        task_id="create",
        name="{{ params.name }}",
        language="en_US",
        category="UTILITY",
        components=[{"type": "BODY", "text": "hello"}],
    )
    operator.name = "Not A Valid Name"

    with pytest.raises(WhatsAppValidationError, match="name"):
        operator.execute(context={})
    assert gateway.requests == []


def test_every_typed_send_operator_is_a_send_message_operator() -> None:
    # One base send operator and a thin subclass per message type: code that checks for the base keeps
    # working for every typed operator.
    from airflow_provider_whatsapp.operators import messages as operators

    typed = [
        cls
        for cls in vars(operators).values()
        if isinstance(cls, type)
        and cls.__name__.startswith("WhatsAppSend")
        and cls.__name__.endswith("Operator")
    ]
    assert len(typed) >= 14
    assert all(issubclass(cls, WhatsAppSendMessageOperator) for cls in typed)
    assert "message" in WhatsAppSendMessageOperator.template_fields
    assert "message" not in WhatsAppSendTextOperator.template_fields
    with pytest.raises(TypeError, match="'message'"):
        WhatsAppSendMessageOperator(task_id="t", to=RECIPIENT)  # type: ignore[call-arg]
