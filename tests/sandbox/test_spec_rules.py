"""The sandbox answers as WhatsApp does where it used to refuse or ignore: contacts arrays, every
interactive type, authentication templates, template buttons, the template list's query, a missing token.

Every request goes through the sandbox's socket; errors are checked for Graph's status and code.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from airflow_provider_whatsapp.hooks.maton import MatonHook
from airflow_provider_whatsapp.messages.simple import ContactsMessage
from airflow_provider_whatsapp.sandbox import WhatsAppSandbox
from airflow_provider_whatsapp.sandbox.cli import build_parser
from airflow_provider_whatsapp.sandbox.state import SandboxState
from airflow_provider_whatsapp.spec import error_codes, limits, vocabulary
from tests.sandbox.conftest import RECIPIENT, assert_graph_error, messages_path

# --- contacts ------------------------------------------------------------------------------------

README_CONTACT = {
    "name": {"formatted_name": "On-call"},
    "phones": [{"phone": "+1 415 555 0199", "type": "WORK"}],
}


def _contacts(contacts: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": RECIPIENT, "type": "contacts", "contacts": contacts}


def test_the_readmes_contacts_message_goes_through_the_hook(whatsapp_sandbox: WhatsAppSandbox) -> None:
    payload = ContactsMessage.build(contacts=[README_CONTACT]).to_payload(RECIPIENT)
    MatonHook(max_attempts=1, rate_limit=0).send_message(payload)
    (message,) = whatsapp_sandbox.messages_to(RECIPIENT)
    assert message.payload["contacts"] == [README_CONTACT]


@pytest.mark.parametrize(
    ("contacts", "code", "named"),
    [
        ({"name": {"formatted_name": "One"}}, 100, "contacts"),  # an object, not an array
        ([README_CONTACT] * (limits.CONTACTS_MAX + 1), 131009, "contacts"),
        ([], 131009, "contacts"),
        ([{"phones": []}], 131008, "contacts[0]['name']"),
        ([{"name": {"formatted_name": " "}}], 131008, "formatted_name"),
        ([{**README_CONTACT, "phones": [{"phone": "1", "type": "PAGER"}]}], 100, "['phones'][0]['type']"),
        ([{**README_CONTACT, "emails": [{"type": "WORK"}]}], 131008, "['emails'][0]['email']"),
        ([{**README_CONTACT, "birthday": "18/08/2012"}], 131009, "birthday"),
    ],
)
def test_a_malformed_contacts_message_is_refused_naming_the_field(
    contacts: Any, code: int, named: str, whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    answer = client.post(messages_path(whatsapp_sandbox), json=_contacts(contacts))
    error = assert_graph_error(answer, 400, code)
    assert named in error["error_data"]["details"]
    assert whatsapp_sandbox.messages_to(RECIPIENT) == []


# --- interactive ---------------------------------------------------------------------------------

_BODY = {"body": {"text": "Hello"}}
INTERACTIVE: dict[str, dict[str, Any]] = {
    "button": {**_BODY, "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Yes"}}]}},
    "list": {
        **_BODY,
        "action": {"button": "Open", "sections": [{"rows": [{"id": "r", "title": "Row"}]}]},
    },
    "cta_url": {
        **_BODY,
        "action": {"name": "cta_url", "parameters": {"display_text": "Go", "url": "https://x.io"}},
    },
    "flow": {
        "action": {
            "name": "flow",
            "parameters": {"flow_message_version": "3", "flow_cta": "Open", "flow_id": "1", "mode": "draft"},
        }
    },
    "product": {"action": {"catalog_id": "1", "product_retailer_id": "sku"}},
    "product_list": {
        **_BODY,
        "header": {"type": "text", "text": "Picks"},
        "action": {
            "catalog_id": "1",
            "sections": [{"title": "New", "product_items": [{"product_retailer_id": "a"}]}],
        },
    },
    "catalog_message": {
        **_BODY,
        "action": {"name": "catalog_message", "parameters": {"thumbnail_product_retailer_id": "sku"}},
    },
    "call_permission_request": {**_BODY, "action": {"name": "call_permission_request"}},
    "location_request_message": {**_BODY, "action": {"name": "send_location"}},
    "address_message": {**_BODY, "action": {"name": "address_message", "parameters": {"country": "IN"}}},
    # Payments (India), as Meta's examples send them: order_details with an image header.
    "order_details": {
        **_BODY,
        "header": {"type": "image", "image": {"link": "https://x.io/bread.jpg"}},
        "action": {"name": "review_and_pay", "parameters": {"reference_id": "r-1", "type": "digital-goods"}},
    },
    "order_status": {
        **_BODY,
        "action": {
            "name": "review_order",
            "parameters": {"reference_id": "r-1", "order": {"status": "shipped"}},
        },
    },
}


def _interactive(kind: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": RECIPIENT,
        "type": "interactive",
        "interactive": {"type": kind, **content},
    }


def test_every_interactive_type_of_the_vocabulary_has_a_case() -> None:
    assert set(INTERACTIVE) == set(vocabulary.INTERACTIVE_TYPES)


@pytest.mark.parametrize("kind", vocabulary.INTERACTIVE_TYPES)
def test_every_interactive_type_is_accepted(
    kind: str, whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    answer = client.post(messages_path(whatsapp_sandbox), json=_interactive(kind, INTERACTIVE[kind]))
    assert answer.status_code == 200, answer.text
    (message,) = whatsapp_sandbox.messages_to(RECIPIENT)
    assert message.content["type"] == kind


@pytest.mark.parametrize(
    ("kind", "change", "code", "named"),
    [
        ("location_request_message", {"action": {"name": "send_address"}}, 131009, "send_location"),
        ("call_permission_request", {"action": {}}, 131008, "['action']['name']"),
        ("catalog_message", {"body": None}, 131008, "interactive['body']"),
        ("flow", {"action": {"name": "flow", "parameters": {"flow_message_version": "3", "flow_cta": "Go"}}},
         131009, "flow_id or flow_name"),
        ("flow", {"action": {"name": "flow", "parameters": {"flow_message_version": "2", "flow_cta": "Go",
                                                              "flow_id": "1"}}}, 100, "flow_message_version"),
        ("product", {"action": {"catalog_id": "1"}}, 131008, "product_retailer_id"),
        ("product_list", {"action": {"catalog_id": "1", "sections": []}}, 131009, "sections"),
        ("address_message", {"action": {"name": "address_message"}}, 131008, "parameters"),
        ("carousel", {}, 100, "interactive['type']"),
        ("order_status", {"header": {"type": "image", "image": {"link": "https://x.io/a.jpg"}}}, 131009,
         "interactive['header']['type']"),
        ("product_list", {"action": {"catalog_id": "1", "sections": [{"product_items": []}]}}, 131009,
         "interactive['action']['sections'][0]['product_items']: 0 products given"),
    ],
)  # fmt: skip
def test_an_interactive_message_missing_what_its_type_needs_is_refused(
    kind: str,
    change: dict[str, Any],
    code: int,
    named: str,
    whatsapp_sandbox: WhatsAppSandbox,
    client: httpx.Client,
) -> None:
    content = {k: v for k, v in {**INTERACTIVE.get(kind, _BODY), **change}.items() if v is not None}
    answer = client.post(messages_path(whatsapp_sandbox), json=_interactive(kind, content))
    error = assert_graph_error(answer, 400, code)
    assert named in error["error_data"]["details"]


# --- templates: buttons and authentication -------------------------------------------------------

TRACKING = {
    "name": "order_tracking",
    "language": "en_US",
    "category": "UTILITY",
    "components": [
        {"type": "BODY", "text": "Order {{1}} has shipped.", "example": {"body_text": [["A-1"]]}},
        {
            "type": "BUTTONS",
            "buttons": [
                {
                    "type": "URL",
                    "text": "Track",
                    "url": "https://x.io/t/{{1}}",
                    "example": ["https://x.io/t/A"],
                },
                {"type": "QUICK_REPLY", "text": "Stop"},
            ],
        },
    ],
}
AUTHENTICATION = {
    "name": "login_code",
    "language": "en_US",
    "category": "AUTHENTICATION",
    "components": [
        {"type": "BODY", "add_security_recommendation": True},
        {"type": "FOOTER", "code_expiration_minutes": 10},
        {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}]},
    ],
}


def _create(sandbox: WhatsAppSandbox, client: httpx.Client, template: dict[str, Any]) -> None:
    answer = client.post(f"/whatsapp-business/v21.0/{sandbox.waba_id}/message_templates", json=template)
    assert answer.status_code == 200, answer.text


def _send(name: str, *components: dict[str, Any]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": RECIPIENT,
        "type": "template",
        "template": {"name": name, "language": {"code": "en_US"}, "components": list(components)},
    }


def _button(index: Any, sub_type: str, parameter: dict[str, Any]) -> dict[str, Any]:
    return {"type": "button", "sub_type": sub_type, "index": index, "parameters": [parameter]}


_ORDER_BODY = {"type": "body", "parameters": [{"type": "text", "text": "A-1"}]}
_URL_PARAMETER = {"type": "text", "text": "A-1"}


@pytest.mark.parametrize(
    ("components", "code", "named"),
    [
        ((_ORDER_BODY,), 132000, "button at index 0 (URL)"),
        ((_ORDER_BODY, _button(0, "url", _URL_PARAMETER), _button(2, "quick_reply", {"type": "payload", "payload": "p"})),
         131009, "button index 2"),
        ((_ORDER_BODY, _button(0, "url", _URL_PARAMETER), _button(1, "quick_reply", {"type": "text", "text": "p"})),
         132012, "payload"),
        ((_ORDER_BODY, _button("0", "quick_reply", {"type": "payload", "payload": "p"})), 131009, "'url'"),
    ],
)  # fmt: skip
def test_template_buttons_are_checked_against_the_template(
    components: tuple[dict[str, Any], ...],
    code: int,
    named: str,
    whatsapp_sandbox: WhatsAppSandbox,
    client: httpx.Client,
) -> None:
    _create(whatsapp_sandbox, client, TRACKING)
    answer = client.post(messages_path(whatsapp_sandbox), json=_send("order_tracking", *components))
    error = assert_graph_error(answer, 400, code)
    assert named in error["error_data"]["details"]
    assert whatsapp_sandbox.messages_to(RECIPIENT) == []


def test_a_template_with_its_button_parameters_is_accepted(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    _create(whatsapp_sandbox, client, TRACKING)
    payload = _send(
        "order_tracking",
        _ORDER_BODY,
        _button("0", "url", _URL_PARAMETER),
        _button(1, "QUICK_REPLY", {"type": "payload", "payload": "stop"}),
    )
    assert client.post(messages_path(whatsapp_sandbox), json=payload).status_code == 200


def test_an_authentication_template_is_created_and_sent_with_its_code(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    _create(whatsapp_sandbox, client, AUTHENTICATION)
    code = {"type": "text", "text": "482913"}
    without_button = _send("login_code", {"type": "body", "parameters": [code]})
    error = assert_graph_error(client.post(messages_path(whatsapp_sandbox), json=without_button), 400, 132000)
    assert "button at index 0 (OTP)" in error["error_data"]["details"]

    with_button = _send("login_code", {"type": "body", "parameters": [code]}, _button("0", "url", code))
    assert client.post(messages_path(whatsapp_sandbox), json=with_button).status_code == 200
    assert len(whatsapp_sandbox.messages_to(RECIPIENT)) == 1
    assert "482913 is your verification code." in whatsapp_sandbox.transcript()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"otp_type": "SMS"}, "otp_type"),
        ({"otp_type": "ONE_TAP"}, "package_name"),
    ],
)
def test_an_authentication_template_with_a_bad_otp_button_is_refused(
    change: dict[str, Any], named: str, whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    button = {"type": "OTP", "otp_type": "COPY_CODE", **change}
    template = {
        **AUTHENTICATION,
        "components": [*AUTHENTICATION["components"][:2], {"type": "BUTTONS", "buttons": [button]}],
    }
    answer = client.post(
        f"/whatsapp-business/v21.0/{whatsapp_sandbox.waba_id}/message_templates", json=template
    )
    assert answer.status_code == 400
    assert named in answer.json()["error"]["error_data"]["details"]


# --- the template list ---------------------------------------------------------------------------


def test_the_template_list_honours_fields_limit_and_summary(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    path = f"/whatsapp-business/v21.0/{whatsapp_sandbox.waba_id}/message_templates"
    total = len(whatsapp_sandbox.state.list_templates())
    first = client.get(
        path, params={"fields": "name,parameter_format", "limit": 2, "summary": "total_count"}
    ).json()
    assert [set(t) for t in first["data"]] == [{"id", "name", "parameter_format"}] * 2
    assert {t["parameter_format"] for t in first["data"]} == {"POSITIONAL"}
    assert first["summary"] == {"total_count": total}
    assert first["paging"]["cursors"]["after"]
    second = httpx.get(first["paging"]["next"], headers=client.headers).json()
    names = [t["name"] for t in first["data"] + second["data"]]
    assert len(set(names)) == len(names) == min(4, total)


@pytest.mark.parametrize("raw", [b"pos:-3", b"pos:x", b"nothing"])
def test_a_forged_template_list_cursor_is_refused(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client, raw: bytes
) -> None:
    path = f"/whatsapp-business/v21.0/{whatsapp_sandbox.waba_id}/message_templates"
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert_graph_error(client.get(path, params={"after": cursor}), 400, error_codes.INVALID_PARAMETER)


def test_the_template_list_filters_by_several_statuses(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    whatsapp_sandbox.state.set_template_status("weekly_digest", "PAUSED")
    path = f"/whatsapp-business/v21.0/{whatsapp_sandbox.waba_id}/message_templates"
    paused = client.get(path, params={"status": "PAUSED,REJECTED", "fields": "name"}).json()["data"]
    assert [t["name"] for t in paused] == ["weekly_digest"]


# --- authentication ------------------------------------------------------------------------------


def test_graph_direct_without_a_token_gets_code_104(whatsapp_sandbox: WhatsAppSandbox) -> None:
    answer = httpx.post(whatsapp_sandbox.url + messages_path(whatsapp_sandbox, direct=True), json={})
    row = error_codes.lookup(104)
    assert row is not None
    error = assert_graph_error(answer, row.http_status, 104)
    assert error["message"] == f"(#104) {row.title}"
    assert whatsapp_sandbox.state.requests[-1].status == 401


# --- the default rate ----------------------------------------------------------------------------


def test_the_sandbox_limits_to_matons_rate_by_default() -> None:
    assert SandboxState(seed=False).rate_limit == limits.MATON_REQUESTS_PER_SECOND
    assert build_parser().parse_args([]).rate_limit == limits.MATON_REQUESTS_PER_SECOND
