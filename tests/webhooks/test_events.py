"""Reading one webhook delivery: Meta's shapes in, typed events out, anything else refused whole.

Two independent oracles: Meta's OpenAPI description (each payload built here must validate against its
``WebhookPayload`` schema) and pywa, a third-party client, whose reading of the same update must agree.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_whatsapp.spec import error_codes, limits
from airflow_provider_whatsapp.webhooks.events import (
    InboundMessage,
    StatusEvent,
    WebhookPayloadError,
    parse_delivery,
)

PHONE_NUMBER_ID = "106540352242922"
USER = "16505551234"
SENT = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJGMzEyNzhENTZDMzNGODlDRDgA"
REPLY = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUJDQ0NDM0FEODY4ODkzOTc5RgA="
TS = "1749854575"
# Meta's business-scoped user id, which current deliveries add to each contact (pywa requires it)
BSUID = "US.13491208655302741918"


def delivery(value: dict[str, Any], field: str = "messages") -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": field,
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def inbound(message: dict[str, Any], name: str = "Sheena Nelson") -> dict[str, Any]:
    return delivery(
        {
            "contacts": [{"profile": {"name": name}, "wa_id": USER, "user_id": BSUID}],
            "messages": [{"from": USER, "id": REPLY, "timestamp": TS, **message}],
        }
    )


def status(status: str, **extra: Any) -> dict[str, Any]:
    return delivery(
        {
            "contacts": [{"wa_id": USER, "user_id": BSUID}],
            "statuses": [{"id": SENT, "status": status, "timestamp": TS, "recipient_id": USER, **extra}],
        }
    )


FAILED_131047 = status(
    "failed",
    errors=[
        {
            "code": error_codes.RE_ENGAGEMENT,
            "title": "Re-engagement message",
            "message": "Re-engagement message",
            "error_data": {"details": "Message failed to send because more than 24 hours have passed"},
        }
    ],
)
BUTTON_REPLY = inbound(
    {
        "type": "interactive",
        "context": {"from": "15550783881", "id": SENT},
        "interactive": {"type": "button_reply", "button_reply": {"id": "approve", "title": "Approve"}},
    }
)
LIST_REPLY = inbound(
    {
        "type": "interactive",
        "context": {"from": "15550783881", "id": SENT},
        "interactive": {
            "type": "list_reply",
            "list_reply": {
                "id": "priority_express",
                "title": "Priority Mail Express",
                "description": "Next Day",
            },
        },
    }
)
QUICK_REPLY = inbound(
    {
        "type": "button",
        "context": {"from": "15550783881", "id": SENT},
        "button": {"payload": "Unsubscribe", "text": "Unsubscribe"},
    }
)
TEXT_QUOTING = inbound(
    {"type": "text", "text": {"body": "yes, publish"}, "context": {"from": "1555", "id": SENT}}
)
IMAGE = inbound({"type": "image", "image": {"caption": "the chart", "mime_type": "image/jpeg", "id": "1234"}})


def parse(payload: dict[str, Any]) -> list[StatusEvent | InboundMessage]:
    return parse_delivery(json.dumps(payload).encode())


# --- what is read --------------------------------------------------------------------------------


def test_a_failed_status_carries_its_code() -> None:
    [event] = parse(FAILED_131047)
    assert isinstance(event, StatusEvent)
    assert (event.wamid, event.status, event.timestamp, event.recipient_id, event.phone_number_id) == (
        SENT,
        "failed",
        int(TS),
        USER,
        PHONE_NUMBER_ID,
    )
    assert event.errors[0].code == error_codes.RE_ENGAGEMENT
    assert event.errors[0].details.startswith("Message failed")
    assert StatusEvent.from_dict(json.loads(json.dumps(event.as_dict()))) == event


def test_a_button_tap_is_a_reply_to_the_message_it_answers() -> None:
    [message] = parse(BUTTON_REPLY)
    assert isinstance(message, InboundMessage)
    assert message.context_id == SENT
    assert message.contact_name == "Sheena Nelson"
    assert message.as_reply() == {
        "from": USER,
        "type": "interactive",
        "text": "Approve",
        "button_id": "approve",
        "button_title": "Approve",
        "row_id": None,
        "wamid": REPLY,
        "timestamp": "2025-06-13T22:42:55+00:00",
    }
    assert InboundMessage.from_dict(json.loads(json.dumps(message.as_dict()))) == message


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (LIST_REPLY, {"row_id": "priority_express", "text": "Priority Mail Express", "button_id": None}),
        (QUICK_REPLY, {"button_id": "Unsubscribe", "button_title": "Unsubscribe", "text": "Unsubscribe"}),
        (TEXT_QUOTING, {"text": "yes, publish", "context_id": SENT}),
        (IMAGE, {"text": "the chart", "context_id": None}),
    ],
    ids=["list", "quick-reply", "quoting-text", "caption"],
)
def test_each_kind_of_answer_is_normalised(payload: dict[str, Any], expected: dict[str, Any]) -> None:
    [message] = parse(payload)
    assert {key: getattr(message, key) for key in expected} == expected


def test_other_fields_are_ignored_not_refused() -> None:
    groups = delivery(
        {"groups": [{"timestamp": 1, "group_id": "g", "type": "group_create", "request_id": "r"}]}
    )
    groups["entry"][0]["changes"][0]["field"] = "group_lifecycle_update"
    assert parse(groups) == []


# --- independent oracles -------------------------------------------------------------------------

SPEC = Path(
    os.environ.get(
        "WHATSAPP_OPENAPI_SPEC",
        Path(__file__).resolve().parents[2].parent
        / "shared/reference/meta-openapi/business-messaging-api_v23.0.yaml",
    )
)


@pytest.fixture(scope="module")
def spec_document() -> Any:
    if not SPEC.is_file():
        pytest.skip(f"Meta's OpenAPI description not found at {SPEC}; set WHATSAPP_OPENAPI_SPEC")
    import yaml

    return yaml.safe_load(SPEC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def webhook_schema(spec_document: Any) -> Any:
    import copy

    import jsonschema

    schemas = copy.deepcopy(spec_document["components"]["schemas"])
    # Meta's IncomingMessage variants point at the *send* request's base properties (``to``,
    # ``recipient_type``); its inbound base is BaseMessageProperties_1, which is what is checked here.
    schemas["BaseMessageProperties"] = schemas["BaseMessageProperties_1"]
    root = {"components": {"schemas": schemas}, "$ref": "#/components/schemas/WebhookPayload"}
    return jsonschema.Draft202012Validator(root)


@pytest.mark.parametrize(
    "payload",
    [FAILED_131047, status("delivered"), BUTTON_REPLY, LIST_REPLY, QUICK_REPLY],
    ids=["failed", "delivered", "button", "list", "quick-reply"],
)
def test_the_payloads_read_here_are_meta_s_shape(webhook_schema: Any, payload: dict[str, Any]) -> None:
    errors = [error.message for error in webhook_schema.iter_errors(payload)]
    assert not errors, errors


def test_meta_s_own_examples_are_read(spec_document: Any) -> None:
    examples = spec_document["paths"]["/whatsapp/webhooks"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]
    read = 0
    for name, example in examples.items():
        events = parse(example["value"])
        if "Group" not in name:
            assert events, name
            read += 1
    assert read >= 10


def _pywa_client() -> Any:
    from pywa import WhatsApp

    return WhatsApp(phone_id=PHONE_NUMBER_ID, token="not-used", server=None, verify_token=None)


def test_pywa_reads_the_same_answer() -> None:
    from pywa.types import CallbackButton, CallbackSelection, Message, MessageStatus

    client = _pywa_client()
    [button] = parse(BUTTON_REPLY)
    theirs = CallbackButton.from_update(client, BUTTON_REPLY)
    assert (theirs.data, theirs.title, theirs.from_user.wa_id, theirs.id) == (
        button.button_id,
        button.button_title,
        button.sender,
        button.wamid,
    )
    assert theirs.reply_to_message.id == button.context_id
    [row] = parse(LIST_REPLY)
    selection = CallbackSelection.from_update(client, LIST_REPLY)
    assert (selection.data, selection.title) == (row.row_id, row.text)
    [text] = parse(TEXT_QUOTING)
    message = Message.from_update(client, TEXT_QUOTING)
    assert (message.text, message.from_user.wa_id, int(message.timestamp.timestamp())) == (
        text.text,
        text.sender,
        text.timestamp,
    )
    [failed] = parse(FAILED_131047)
    theirs_status = MessageStatus.from_update(client, FAILED_131047)
    assert (theirs_status.id, theirs_status.status.value, theirs_status.error.code) == (
        failed.wamid,
        failed.status,
        failed.errors[0].code,
    )


# --- hostile deliveries --------------------------------------------------------------------------


def _mutated(path: tuple[Any, ...], value: Any, base: dict[str, Any] = BUTTON_REPLY) -> dict[str, Any]:
    payload = json.loads(json.dumps(base))
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return payload


MESSAGE = ("entry", 0, "changes", 0, "value", "messages", 0)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (_mutated(("object",), "page"), "object"),
        (_mutated((*MESSAGE, "from"), "+1 650 555 1234"), "messages[0].from"),
        (_mutated((*MESSAGE, "id"), "wamid/../../x y"), "messages[0].id"),
        (_mutated((*MESSAGE, "id"), "w" * (limits.WAMID_MAX_CHARS + 1)), "messages[0].id"),
        (_mutated((*MESSAGE, "timestamp"), "-1"), "messages[0].timestamp"),
        (_mutated((*MESSAGE, "context", "id"), "bad\x00id"), "messages[0].context.id"),
        (_mutated((*MESSAGE, "interactive", "button_reply", "id"), 7), "button_reply.id"),
        (
            _mutated(("entry", 0, "changes", 0, "value", "metadata", "phone_number_id"), "../x"),
            "phone_number_id",
        ),
        (
            _mutated(("entry", 0, "changes", 0, "value", "statuses", 0, "status"), "deleted", FAILED_131047),
            "status",
        ),
        (
            _mutated(
                ("entry", 0, "changes", 0, "value", "statuses", 0, "errors", 0, "code"), "x", FAILED_131047
            ),
            "errors[0].code",
        ),
    ],
    ids=[
        "object",
        "from",
        "id-path",
        "id-long",
        "ts",
        "context-nul",
        "button-id",
        "phone-id",
        "status",
        "code",
    ],
)
def test_a_bad_field_refuses_the_whole_delivery_naming_it(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(WebhookPayloadError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse(payload)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b"\xff\xfe",
        b"NaN",
        b"[" * 100_000,
        b"1" * 5000,
        b" " * (limits.WEBHOOK_BODY_MAX_BYTES + 1),
    ],
    ids=["empty", "text", "array", "bytes", "nan", "deep", "huge-int", "oversized"],
)
def test_what_is_not_json_or_too_large_is_refused(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        parse_delivery(body)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200) | _json.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bodies_raise_only_the_payload_error(body: bytes) -> None:
    with contextlib.suppress(WebhookPayloadError):
        parse_delivery(body)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from([*list(MESSAGE[:-1]), "messages", "statuses", "interactive", "context"]), max_size=6
    ),
    _json,
)
def test_meta_s_shape_with_any_part_replaced_raises_only_the_payload_error(
    path: list[Any], value: Any
) -> None:
    payload = json.loads(json.dumps(BUTTON_REPLY))
    target: Any = payload
    for key in path[:-1]:
        try:
            target = target[key]
        except (KeyError, IndexError, TypeError):
            break
    if path and isinstance(target, (dict, list)):
        with contextlib.suppress(TypeError, IndexError):
            target[path[-1]] = value
    with contextlib.suppress(WebhookPayloadError):
        parse_delivery(json.dumps(payload).encode())
