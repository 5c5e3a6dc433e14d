"""The one check of the passthrough interactive actions, read by the models and by the sandbox.

Each case is refused by the spec's check with a field and a Graph code, by the models with a
``WhatsAppValidationError`` naming that field and the limit, and by the sandbox, through a socket,
with that code and the field in Graph's spelling.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.messages import RawInteractiveMessage, parse_message
from airflow_provider_whatsapp.sandbox import WhatsAppSandbox
from airflow_provider_whatsapp.spec import error_codes, interactive_actions, limits, vocabulary
from tests.fidelity.strategies import PASSTHROUGH_ACTIONS

TO = "14155550100"
_FLOW = PASSTHROUGH_ACTIONS["flow"]["parameters"]


def _items(count: int) -> list[dict[str, str]]:
    return [{"product_retailer_id": f"sku-{i}"} for i in range(count)]


# kind, the action, the field (dotted, from the interactive object), the Graph code, text the models' error has
REFUSED: list[tuple[str, Any, str, int, str]] = [
    ("flow", {"name": "flow", "parameters": {**_FLOW, "flow_cta": "c" * (limits.FLOW_CTA_MAX + 1)}},
     "interactive.action.parameters.flow_cta", error_codes.INVALID_PARAMETER, f"at most {limits.FLOW_CTA_MAX}"),
    ("flow", {"parameters": _FLOW}, "interactive.action.name", error_codes.MISSING_PARAMETER, "is required"),
    ("flow", {"name": "navigate", "parameters": _FLOW}, "interactive.action.name",
     error_codes.INVALID_PARAMETER_VALUE, "'flow'"),
    ("flow", {"name": "flow", "parameters": {**_FLOW, "flow_name": "signup"}}, "interactive.action.parameters",
     error_codes.INVALID_PARAMETER_VALUE, "flow_id or flow_name"),
    ("flow", {"name": "flow", "parameters": {**_FLOW, "flow_message_version": ["3"]}},
     "interactive.action.parameters.flow_message_version", error_codes.INVALID_PARAMETER, "one of"),
    ("product", {"product_retailer_id": "sku-1"}, "interactive.action.catalog_id",
     error_codes.MISSING_PARAMETER, "is required"),
    ("product", {"catalog_id": "\u200b", "product_retailer_id": "sku-1"}, "interactive.action.catalog_id",
     error_codes.MISSING_PARAMETER, "is required"),
    ("product_list", {"catalog_id": "1", "sections": [{"title": "A", "product_items": _items(1)}] *
                      (limits.PRODUCT_LIST_SECTIONS_MAX + 1)},
     "interactive.action.sections", error_codes.INVALID_PARAMETER_VALUE, str(limits.PRODUCT_LIST_SECTIONS_MAX)),
    ("product_list", {"catalog_id": "1", "sections": [{"product_items": _items(limits.PRODUCT_ITEMS_MAX + 1)}]},
     "interactive.action.sections[0].product_items", error_codes.INVALID_PARAMETER_VALUE,
     str(limits.PRODUCT_ITEMS_MAX)),
    ("product_list", {"catalog_id": "1", "sections": [{"product_items": _items(1)}] * 2},
     "interactive.action.sections[0].title", error_codes.MISSING_PARAMETER, "is required"),
    ("catalog_message", {"name": "catalog_message", "parameters": {"thumbnail_product_retailer_id": 7}},
     "interactive.action.parameters.thumbnail_product_retailer_id", error_codes.INVALID_PARAMETER, "a string"),
    ("address_message", {"name": "address_message"}, "interactive.action.parameters",
     error_codes.MISSING_PARAMETER, "is required"),
    ("location_request_message", {"name": "location_request_message"}, "interactive.action.name",
     error_codes.INVALID_PARAMETER_VALUE, "'send_location'"),
    ("call_permission_request", {}, "interactive.action.name", error_codes.MISSING_PARAMETER, "is required"),
    ("order_status", "review_order", "interactive.action", error_codes.INVALID_PARAMETER, "JSON object"),
]  # fmt: skip


def _message(kind: str, action: Any, **parts: Any) -> dict[str, Any]:
    interactive = {"type": kind, "body": {"text": "Pick"}, **parts, "action": action}
    return {"type": "interactive", "interactive": interactive}


@pytest.fixture(scope="module")
def graph() -> Any:
    with WhatsAppSandbox(port=0, rate_limit=0) as sandbox:
        headers = {"Authorization": f"Bearer {sandbox.api_key}"}
        with httpx.Client(base_url=sandbox.url, headers=headers, timeout=30) as http:
            path = f"/whatsapp-business/v21.0/{sandbox.phone_number_id}/messages"
            yield lambda body: http.post(path, json={"messaging_product": "whatsapp", "to": TO, **body})


def test_every_passthrough_kind_has_a_valid_sample() -> None:
    assert set(PASSTHROUGH_ACTIONS) == set(vocabulary.PASSTHROUGH_INTERACTIVE_TYPES)
    for kind, action in PASSTHROUGH_ACTIONS.items():
        assert interactive_actions.check_action(kind, copy.deepcopy(action)) is None, kind


@pytest.mark.parametrize(("kind", "action", "field", "code", "says"), REFUSED, ids=lambda v: str(v)[:40])
def test_the_spec_the_models_and_the_sandbox_refuse_the_same_action(
    kind: str, action: Any, field: str, code: int, says: str, graph: Any
) -> None:
    problem = interactive_actions.check_action(kind, action)
    assert problem is not None
    assert (interactive_actions.dotted(problem.path), problem.code) == (field, code)

    with pytest.raises(WhatsAppValidationError) as refused:
        parse_message(_message(kind, action))
    assert f"{field}: " in str(refused.value) and says in str(refused.value)

    answer = graph(_message(kind, action))
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    assert interactive_actions.bracketed(problem.path) in error["error_data"]["details"]


def test_field_paths_in_both_spellings() -> None:
    path = ("action", "sections", 0, "product_items")
    assert interactive_actions.dotted(path) == "interactive.action.sections[0].product_items"
    assert interactive_actions.bracketed(path) == "interactive['action']['sections'][0]['product_items']"


def test_order_details_takes_an_image_header_as_meta_sends_it(graph: Any) -> None:
    header = {"type": "image", "image": {"link": "https://example.com/bread.jpg"}}
    message = _message("order_details", PASSTHROUGH_ACTIONS["order_details"], header=header)

    parsed = parse_message(message)

    assert isinstance(parsed, RawInteractiveMessage)
    assert parsed.to_payload(TO)["interactive"]["header"] == header
    answer = graph(message)
    assert answer.status_code == 200, answer.text


def test_a_media_header_on_a_kind_that_takes_text_only_is_refused_by_both(graph: Any) -> None:
    header = {"type": "image", "image": {"link": "https://example.com/bread.jpg"}}
    message = _message("order_status", PASSTHROUGH_ACTIONS["order_status"], header=header)

    with pytest.raises(WhatsAppValidationError, match=r"interactive\.header\.type: .*only a text header"):
        parse_message(message)
    assert graph(message).status_code == 400


def test_a_list_section_title_of_invisible_characters_is_blank_to_both(graph: Any) -> None:
    rows = [[{"id": "a", "title": "A"}], [{"id": "b", "title": "B"}]]
    sections = [{"title": "One", "rows": rows[0]}, {"title": "\x1b\u200b", "rows": rows[1]}]
    message = _message("list", {"button": "Open", "sections": sections})

    with pytest.raises(WhatsAppValidationError, match=r"sections\[1\]\.title: is required"):
        parse_message(message)
    assert graph(message).json()["error"]["code"] == error_codes.MISSING_PARAMETER
