"""The models and the template checks take their lists from the spec's vocabulary: the registries
cover it exactly, every type it lists is accepted, and a value outside it is refused naming the field
and the allowed values."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.messages import _parse, parse_message
from airflow_provider_whatsapp.messages.template import TemplateComponent, TemplateParameter
from airflow_provider_whatsapp.spec import vocabulary
from airflow_provider_whatsapp.template_definitions import validate_template
from tests.fidelity.strategies import PASSTHROUGH_ACTIONS


def test_the_message_registries_cover_the_vocabulary_exactly() -> None:
    assert tuple(_parse.MESSAGE_TYPES) == vocabulary.MESSAGE_TYPES
    assert tuple(_parse.INTERACTIVE_TYPES) == vocabulary.MODELLED_INTERACTIVE_TYPES
    assert (*_parse.INTERACTIVE_TYPES, *_parse.PASSTHROUGH_INTERACTIVE) == vocabulary.INTERACTIVE_TYPES
    for kind, model in _parse.MESSAGE_TYPES.items():
        assert model.message_type == kind
    for kind, model in _parse.INTERACTIVE_TYPES.items():
        assert model.interactive_type == kind  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", vocabulary.PASSTHROUGH_INTERACTIVE_TYPES)
def test_every_unmodelled_interactive_type_passes_through(kind: str) -> None:
    action = PASSTHROUGH_ACTIONS[kind]
    interactive = {"type": kind, "body": {"text": "Where should we deliver?"}, "action": action}
    message = parse_message({"type": "interactive", "interactive": interactive})
    assert message.to_payload("+1 415 555 0100")["interactive"] == interactive


def test_template_parameters_have_a_field_for_every_type() -> None:
    assert set(vocabulary.TEMPLATE_PARAMETER_TYPES) <= set(TemplateParameter.model_fields)


@pytest.mark.parametrize(
    "sub_type", [s for s, p in vocabulary.TEMPLATE_BUTTON_PARAMETER.items() if p == "action"]
)
def test_action_buttons_pass_their_action_through(sub_type: str) -> None:
    action = {"thumbnail_product_retailer_id": "2lc20305pt"}
    component = {
        "type": "button",
        "sub_type": sub_type.upper(),  # Meta's example writes CATALOG
        "index": 0,
        "parameters": [{"type": "action", "action": action}],
    }
    built = TemplateComponent.build(**component).content()
    assert built == {
        "type": "button",
        "sub_type": sub_type,
        "index": "0",
        "parameters": [{"type": "action", "action": action}],
    }


@pytest.mark.parametrize(
    "payload,expected",
    [
        (
            {"type": "contacts", "contacts": [{"name": {"formatted_name": "A"}, "phones": [{"phone": "1", "type": "FAX"}]}]},
            "contacts[0].phones[0].type: 'FAX' is not one of " + ", ".join(vocabulary.CONTACT_PHONE_TYPES),
        ),
        (
            {"type": "contacts", "contacts": [{"name": {"formatted_name": "A"}, "emails": [{"email": "a@b", "type": "X"}]}]},
            "contacts[0].emails[0].type: 'X' is not one of " + ", ".join(vocabulary.CONTACT_ENTRY_TYPES),
        ),
        (
            {"type": "template", "template": {"name": "t", "language": {"code": "en"}, "components": [{"type": "footer"}]}},
            "template.components[0].type: 'footer' is not one of "
            + ", ".join(vocabulary.TEMPLATE_SEND_COMPONENT_TYPES),
        ),
        (
            {"type": "interactive", "interactive": {"type": "button", "header": {"type": "audio"}, "body": {"text": "b"},
             "action": {"buttons": [{"type": "reply", "reply": {"id": "1", "title": "t"}}]}}},
            "interactive.header.type: 'audio' is not one of " + ", ".join(vocabulary.INTERACTIVE_HEADER_TYPES),
        ),
    ],
)  # fmt: skip
def test_a_value_outside_the_vocabulary_names_the_field_and_the_allowed_values(
    payload: dict[str, Any], expected: str
) -> None:
    with pytest.raises(WhatsAppValidationError) as caught:
        parse_message(payload)
    assert expected in str(caught.value)


# --- authentication templates, in the shapes of Meta's own examples ---------------------------------

BODY = {"type": "BODY", "add_security_recommendation": True}
FOOTER = {"type": "FOOTER", "code_expiration_minutes": 10}
COPY_CODE = {"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy Code"}
ONE_TAP = {
    "type": "OTP",
    "otp_type": "ONE_TAP",
    "text": "Copy Code",
    "autofill_text": "Autofill",
    "package_name": "com.example.luckyshrub",
    "signature_hash": "K8a%2FAINcGX7",
}
ZERO_TAP = {
    **ONE_TAP,
    "otp_type": "ZERO_TAP",
    "zero_tap_terms_accepted": True,
}
SUPPORTED_APPS = {
    "type": "OTP",
    "otp_type": "ONE_TAP",
    "supported_apps": [{"package_name": "com.example.app", "signature_hash": "K8a%2FAINcGX7"}],
}


def auth(*components: dict[str, Any]) -> None:
    validate_template(
        name="authentication_code", language="en_US", category="AUTHENTICATION", components=list(components)
    )


@pytest.mark.parametrize(
    "button", [COPY_CODE, ONE_TAP, ZERO_TAP, SUPPORTED_APPS], ids=lambda b: b["otp_type"]
)
def test_authentication_templates_in_metas_shapes_are_accepted(button: dict[str, Any]) -> None:
    auth(BODY, FOOTER, {"type": "BUTTONS", "buttons": [button]})
    auth({"type": "BODY"}, {"type": "BUTTONS", "buttons": [button]})  # footer and warning are optional


@pytest.mark.parametrize(
    "components,expected",
    [
        ([{**BODY, "text": "Your code is {{1}}"}, {"type": "BUTTONS", "buttons": [COPY_CODE]}],
         r"components\[BODY\]\.text: an authentication template's body text is written by Meta"),
        ([BODY, {**FOOTER, "code_expiration_minutes": 91}, {"type": "BUTTONS", "buttons": [COPY_CODE]}],
         r"code_expiration_minutes: 91 is not a whole number of minutes from 1 to 90"),
        ([BODY, FOOTER], r"components\[BUTTONS\]: an AUTHENTICATION template needs a BUTTONS component"),
        ([BODY, {"type": "BUTTONS", "buttons": [{**COPY_CODE, "otp_type": "SMS"}]}],
         r"buttons\[0\]\.otp_type: 'SMS' is not one of COPY_CODE, ONE_TAP, ZERO_TAP"),
        ([BODY, {"type": "BUTTONS", "buttons": [{k: v for k, v in ONE_TAP.items() if k != "package_name"}]}],
         r"buttons\[0\]\.package_name: a ONE_TAP button needs the package_name"),
        ([BODY, {"type": "BUTTONS", "buttons": [{**ZERO_TAP, "zero_tap_terms_accepted": False}]}],
         r"zero_tap_terms_accepted: true"),
        ([BODY, {"type": "BUTTONS", "buttons": [COPY_CODE, COPY_CODE]}], r"2 buttons; an AUTHENTICATION"),
        ([BODY, {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Hi"}]}],
         r"buttons\[0\]\.type: an AUTHENTICATION template has one OTP button"),
        ([{"type": "HEADER", "format": "TEXT", "text": "Code"}, BODY, {"type": "BUTTONS", "buttons": [COPY_CODE]}],
         r"components\[HEADER\]: an AUTHENTICATION template has no HEADER"),
    ],
)  # fmt: skip
def test_authentication_templates_meta_would_refuse_are_refused_first(
    components: list[dict[str, Any]], expected: str
) -> None:
    with pytest.raises(WhatsAppValidationError, match=expected):
        auth(*copy.deepcopy(components))


def test_an_otp_button_belongs_to_authentication_templates_only() -> None:
    body = {"type": "BODY", "text": "Hello there"}
    with pytest.raises(WhatsAppValidationError, match=r"OTP buttons belong to AUTHENTICATION templates only"):
        validate_template(
            name="t",
            language="en",
            category="UTILITY",
            components=[body, {"type": "BUTTONS", "buttons": [COPY_CODE]}],
        )


# --- Meta's own template definitions ------------------------------------------------------------

# Examples whose name is a placeholder of the documentation, not a template name: checked with one.
_PLACEHOLDER_NAMES = {"<TEMPLATE_NAME>": "template_name_placeholder"}


def _template_examples() -> list[tuple[str, dict[str, Any]]]:
    from tests.messages.meta_schema import _load, spec_path

    path = spec_path()
    if not path.is_file():
        pytest.skip(f"Meta's OpenAPI description not found at {path}; set WHATSAPP_OPENAPI_SPEC")
    document = _load(str(path))
    post = document["paths"]["/{Version}/{WABA-ID}/message_templates"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    return [(title, example["value"]) for title, example in examples.items()]


def test_every_template_definition_in_metas_examples_is_accepted() -> None:
    examples = _template_examples()
    assert len(examples) >= 10
    assert any(value.get("category") == "AUTHENTICATION" for _, value in examples)
    for title, value in examples:
        name = _PLACEHOLDER_NAMES.get(value["name"], value["name"])
        try:
            validate_template(
                name=name,
                language=value["language"],
                category=value["category"],
                components=value["components"],
            )
        except WhatsAppValidationError as error:
            pytest.fail(f"{title}: {error}")
