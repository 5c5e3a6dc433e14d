"""Every payload the provider builds matches Meta's OpenAPI schemas (patched as the reference README says)."""

from __future__ import annotations

import pytest

from airflow_provider_whatsapp.messages import MarkAsRead
from tests.messages.meta_schema import meta_schema
from tests.messages.samples import samples

CASES = samples()


def _wire(payload: dict) -> dict:
    # The hook adds messaging_product to every send.
    return {"messaging_product": "whatsapp", **payload}


@pytest.mark.parametrize("case", sorted(CASES))
def test_payload_matches_meta_schema(case: str) -> None:
    payload = CASES[case].to_payload("+1 (415) 555-0100")

    meta_schema().check(_wire(payload))


@pytest.mark.parametrize("case", ["text", "document", "list", "template_document_header"])
def test_reply_context_matches_meta_schema(case: str) -> None:
    payload = CASES[case].to_payload("14155550100", reply_to="wamid.HBgLMTQxNTU1NTAxMDA")

    assert payload["context"] == {"message_id": "wamid.HBgLMTQxNTU1NTAxMDA"}
    meta_schema().check(_wire(payload))


def test_mark_as_read_matches_meta_schema() -> None:
    payload = MarkAsRead.build(message_id="wamid.X").to_payload()

    meta_schema().check(_wire(payload), "MarkMessageRequestPayload")


def test_every_template_header_kind_is_covered() -> None:
    kinds = set()
    for model in CASES.values():
        for component in model.to_payload("14155550100").get("template", {}).get("components", []):
            if component["type"] == "header":
                kinds.add(component["parameters"][0]["type"])
    assert kinds == {"text", "image", "video", "document", "location"}


# The validator must be able to fail: payloads WhatsApp would refuse are caught by the patched schema.
@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"type": "text", "text": {"body": "x" * 4097}}, "text/body"),
        ({"type": "text", "text": {"body": "hi", "colour": "red"}}, "text"),
        ({"type": "image", "image": {"caption": "no source"}}, "image"),
        (
            {
                "type": "template",
                "template": {
                    "name": "t",
                    "language": {"code": "en"},
                    "components": [
                        {
                            "type": "button",
                            "sub_type": "url",
                            "index": "x",
                            "parameters": [{"type": "text", "text": "a"}],
                        }
                    ],
                },
            },
            "template/components/0/index",
        ),
        (
            {
                "type": "template",
                "template": {
                    "name": "t",
                    "language": {"code": "en"},
                    "components": [
                        {"type": "body", "parameters": [{"type": "currency", "currency": {"code": "USD"}}]}
                    ],
                },
            },
            "template/components/0/parameters/0/currency",
        ),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "body": {"text": "b"},
                    "action": {
                        "buttons": [
                            {"type": "reply", "reply": {"id": str(i), "title": "t"}} for i in range(4)
                        ]
                    },
                },
            },
            "interactive/action",
        ),
        ({"type": "location", "location": {"latitude": "37.4", "longitude": 1}}, "location/latitude"),
        ({"type": "shout", "shout": {}}, ""),
    ],
)
def test_schema_rejects_what_whatsapp_refuses(payload: dict, where: str) -> None:
    problems = meta_schema().errors(_wire({"recipient_type": "individual", "to": "14155550100", **payload}))

    assert problems
    assert any(p.startswith(where) for p in problems) or where == "", problems
