"""Template creation: every definition rule fails with an error naming the part, before any request."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import AirflowFailException
from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.hooks.maton import MatonHook
from airflow_provider_whatsapp.operators.templates import (
    WhatsAppCreateTemplateOperator,
    WhatsAppDeleteTemplateOperator,
)
from airflow_provider_whatsapp.template_definitions import validate_template
from tests.conftest import WABA_ID
from tests.loopback import LoopbackServer, Reply

TEMPLATES = rf"^/whatsapp-business/v21\.0/{WABA_ID}/message_templates$"


def good_components() -> list[dict[str, Any]]:
    return [
        {
            "type": "HEADER",
            "format": "TEXT",
            "text": "Report for {{1}}",
            "example": {"header_text": ["May"]},
        },
        {
            "type": "BODY",
            "text": "Hello {{1}}, the {{2}} report is ready.",
            "example": {"body_text": [["Ana", "daily"]]},
        },
        {"type": "FOOTER", "text": "Sent by Airflow"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "QUICK_REPLY", "text": "Thanks"},
                {
                    "type": "URL",
                    "text": "Open report",
                    "url": "https://example.com/r/{{1}}",
                    "example": ["https://example.com/r/2026-05"],
                },
            ],
        },
    ]


def create(**overrides: Any) -> WhatsAppCreateTemplateOperator:
    args: dict[str, Any] = {
        "task_id": "create",
        "name": "daily_report",
        "language": "en_US",
        "category": "UTILITY",
        "components": good_components(),
        **overrides,
    }
    return WhatsAppCreateTemplateOperator(**args)


def components_with(kind: str, **changes: Any) -> list[dict[str, Any]]:
    components = good_components()
    for component in components:
        if component["type"] == kind:
            component.update(changes)
    return components


BAD_DEFINITIONS = [
    pytest.param(
        {"components": components_with("BODY", text="Hi {{1}}, your {{3}} is ready.")},
        r"components\[BODY\]\.text: placeholder \{\{3\}\} found but \{\{2\}\} is missing",
        id="placeholder-gap",
    ),
    pytest.param({"name": "Daily-Report"}, r"^name: .*\[a-z0-9_\]", id="bad-name"),
    pytest.param({"name": "x" * 513}, r"^name: 513 characters; at most 512", id="long-name"),
    pytest.param({"category": "PROMOTION"}, r"^category: 'PROMOTION' is not one of", id="unknown-category"),
    pytest.param(
        {
            "components": components_with(
                "BUTTONS", buttons=[{"type": "QUICK_REPLY", "text": f"b{i}"} for i in range(11)]
            )
        },
        r"components\[BUTTONS\]\.buttons: 11 buttons; a template may have at most 10",
        id="eleven-buttons",
    ),
    pytest.param(
        {"components": components_with("FOOTER", text="x" * 61)},
        r"components\[FOOTER\]\.text: 61 characters; at most 60",
        id="long-footer",
    ),
    pytest.param(
        {"components": components_with("BUTTONS", buttons=[{"type": "QUICK_REPLY", "text": "x" * 26}])},
        r"components\[BUTTONS\]\.buttons\[0\]\.text: .*26 characters; at most 25",
        id="long-button-label",
    ),
    pytest.param(
        {"components": [c for c in good_components() if c["type"] != "BODY"]},
        r"components\[BODY\]: a template needs exactly one BODY",
        id="no-body",
    ),
    pytest.param(
        {"components": [*good_components(), {"type": "BODY", "text": "again"}]},
        r"components\[BODY\]: a template has at most one BODY",
        id="two-bodies",
    ),
    pytest.param(
        {"components": [*good_components(), {"type": "HEADER", "format": "TEXT", "text": "b"}]},
        r"components\[HEADER\]: a template has at most one HEADER",
        id="two-headers",
    ),
    pytest.param(
        {"components": components_with("BODY", text="{{1}} your {{2}} is ready.")},
        r"components\[BODY\]\.text: the body must not start with a placeholder",
        id="placeholder-at-start",
    ),
    pytest.param(
        {"components": components_with("BODY", text="Hello {{1}}, your report: {{2}}")},
        r"components\[BODY\]\.text: the body must not end with a placeholder",
        id="placeholder-at-end",
    ),
    pytest.param(
        {"components": components_with("BODY", example={"body_text": [["Ana"]]})},
        r"components\[BODY\]\.example\.body_text: 2 placeholder\(s\) need 2 example value\(s\)",
        id="missing-example",
    ),
    pytest.param(
        {"components": components_with("BODY", example=None)},
        r"components\[BODY\]\.example\.body_text: 2 placeholder\(s\) need 2 example",
        id="no-examples",
    ),
    pytest.param(
        {"components": components_with("HEADER", example={})},
        r"components\[HEADER\]\.example\.header_text: 1 placeholder\(s\) need 1 example",
        id="header-example",
    ),
    pytest.param(
        {"components": components_with("FOOTER", text="Reply {{1}} to stop")},
        r"components\[FOOTER\]\.text: a footer cannot contain placeholders",
        id="footer-placeholder",
    ),
    pytest.param(
        {"components": [*good_components(), {"type": "CAROUSEL"}]},
        r"components\[4\]\.type: 'CAROUSEL' is not one of HEADER, BODY, FOOTER, BUTTONS",
        id="unknown-component",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_DEFINITIONS)
def test_bad_definition_fails_at_parse_time(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(WhatsAppValidationError, match=message) as caught:
        create(**overrides)
    assert isinstance(caught.value, AirflowFailException)  # no Airflow retries for bad input


@pytest.mark.parametrize(("overrides", "message"), BAD_DEFINITIONS)
def test_bad_definition_fails_in_execute_with_zero_requests(
    maton_conn: LoopbackServer, overrides: dict[str, Any], message: str
) -> None:
    maton_conn.route("POST", TEMPLATES, Reply(json={"id": "1", "status": "PENDING", "category": "UTILITY"}))
    operator = create()
    for key, value in overrides.items():  # as a Jinja-rendered or XCom value would arrive at run time
        setattr(operator, key, value)

    with pytest.raises(WhatsAppValidationError, match=message):
        operator.execute({})

    assert maton_conn.requests == []


@pytest.mark.parametrize(("overrides", "message"), BAD_DEFINITIONS)
def test_the_hook_checks_the_definition_too(
    maton_conn: LoopbackServer, overrides: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {
        "name": "daily_report",
        "language": "en_US",
        "category": "UTILITY",
        "components": good_components(),
        **overrides,
    }
    with pytest.raises(WhatsAppValidationError, match=message):
        MatonHook().create_template(**args)
    assert maton_conn.requests == []


def test_jinja_arguments_are_checked_only_at_run_time() -> None:
    operator = create(name="{{ params.template_name }}", category="{{ params.category }}")
    assert operator.name == "{{ params.template_name }}"


def test_components_are_not_rendered_by_jinja() -> None:
    assert "components" not in WhatsAppCreateTemplateOperator.template_fields
    assert {"name", "language", "category", "waba_id"} <= set(WhatsAppCreateTemplateOperator.template_fields)


def test_create_posts_the_definition_and_returns_the_template_id(maton_conn: LoopbackServer) -> None:
    maton_conn.route(
        "POST", TEMPLATES, Reply(json={"id": "594425479261596", "status": "PENDING", "category": "UTILITY"})
    )

    assert create().execute({}) == "594425479261596"

    (request,) = maton_conn.requests
    assert request.json == {
        "name": "daily_report",
        "language": "en_US",
        "category": "UTILITY",
        "components": good_components(),
    }
    assert "{{1}}" in request.json["components"][1]["text"]  # WhatsApp's placeholders reach Meta intact


def test_authentication_template_needs_no_body_text() -> None:
    validate_template(
        name="login_code",
        language="en_US",
        category="AUTHENTICATION",
        components=[
            {"type": "BODY", "add_security_recommendation": True},
            {"type": "FOOTER", "code_expiration_minutes": 10},
            {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE"}]},
        ],
    )


def test_named_placeholders_need_named_examples() -> None:
    body = {"type": "BODY", "text": "Hi {{first_name}}, welcome."}
    with pytest.raises(WhatsAppValidationError, match=r"\{\{first_name\}\} has no example"):
        validate_template(name="welcome", language="en", category="MARKETING", components=[body])
    body["example"] = {"body_text_named_params": [{"param_name": "first_name", "example": "Ana"}]}
    validate_template(name="welcome", language="en", category="MARKETING", components=[body])
    mixed = {**body, "text": "Hi {{first_name}}, your {{1}} is here."}
    with pytest.raises(WhatsAppValidationError, match="cannot be mixed"):
        validate_template(name="welcome", language="en", category="MARKETING", components=[mixed])


def test_delete_by_name_and_by_id(maton_conn: LoopbackServer) -> None:
    maton_conn.route("DELETE", TEMPLATES, Reply(json={"success": True}))

    assert WhatsAppDeleteTemplateOperator(task_id="d1", name="daily_report").execute({}) is True
    assert (
        WhatsAppDeleteTemplateOperator(task_id="d2", name="daily_report", template_id="5944").execute({})
        is True
    )

    by_name, by_id = maton_conn.requests
    assert by_name.query == {"name": ["daily_report"]}
    assert by_id.query == {"name": ["daily_report"], "hsm_id": ["5944"]}


def test_copy_of_good_components_is_valid() -> None:
    validate_template(
        name="daily_report", language="en_US", category="UTILITY", components=copy.deepcopy(good_components())
    )


def test_components_wait_for_a_templated_category(maton_conn: LoopbackServer) -> None:
    auth_components = [
        {"type": "BODY", "add_security_recommendation": True},
        {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE"}]},
    ]
    operator = create(category="{{ params.category }}", components=auth_components)  # no parse-time error
    operator.category = "AUTHENTICATION"  # as rendered
    maton_conn.route("POST", TEMPLATES, Reply(json={"id": "77", "status": "PENDING"}))

    assert operator.execute({}) == "77"
