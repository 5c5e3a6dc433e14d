"""Every request example in Meta's OpenAPI description, replayed against the sandbox through a socket.

The examples are Meta's, not ours: each one of an operation the sandbox serves is POSTed to a running
sandbox (Graph direct) after its placeholders (``{{Recipient-Phone-Number}}``, ``<IMAGE_OBJECT_ID>``,
``http(s)://image-url``...) are replaced by real values: a recipient, media uploaded first, a URL. A
template send first gets the approved template it names. Each example must be accepted, except the
ones listed in :data:`MALFORMED` (the example itself is wrong, reason given) and :data:`NOT_EMULATED`
(a feature the sandbox's business does not have); the test fails if a listed one starts being accepted
or an unlisted one is refused.

Skips with a reason when the OpenAPI file is absent (see ``tests/messages/meta_schema.py``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_whatsapp.sandbox import WhatsAppSandbox
from airflow_provider_whatsapp.spec import grammar, vocabulary
from tests.messages.meta_schema import openapi_document, spec_path

RECIPIENT = "16505551234"
VERSION = "v23.0"
TEMPLATE_NAME = "example_template"

#: The operations the sandbox serves (method, OpenAPI path) and the sandbox path each is sent to.
SERVED = {
    ("post", "/{Version}/{Phone-Number-ID}/messages"): "/{version}/{phone}/messages",
    ("post", "/{Version}/{Phone-Number-ID}/media"): "/{version}/{phone}/media",
    ("post", "/{Version}/{Phone-Number-ID}/whatsapp_business_profile"): (
        "/{version}/{phone}/whatsapp_business_profile"
    ),
    ("post", "/{Version}/{WABA-ID}/message_templates"): "/{version}/{waba}/message_templates",
    ("post", "/{Version}/{TEMPLATE_ID}"): "/{version}/{template}",
}

#: Examples that are themselves malformed: WhatsApp refuses them as they stand.
MALFORMED = {
    "Send Reply to List Message": "has no `type: interactive`, so it is read as a text message, which "
    "has no `text`",
    "Send Sample Issue Resolution Template": "its quick-reply buttons carry `{type: text, text: true}`; a "
    "quick-reply button takes one `payload` parameter (a string)",
    "Upload Audio": "the file's type is `ogg`, not a MIME type (`audio/ogg`)",
    "Upload Sticker": "the file's type is `webp`, not a MIME type (`image/webp`)",
}

#: Valid examples of features the sandbox's (US) business does not have, so WhatsApp would refuse them too.
#: Examples of features the sandbox's business does not have (none today: WhatsApp Pay's order_details
#: and order_status pass through like the other unmodelled interactive types).
NOT_EMULATED: dict[str, str] = {}

#: Placeholders of Meta's examples that stand for a value of a closed list.
SUBSTITUTIONS = {"<HEADER_TYPE>": "text", "language-and-locale-code": "en_US"}

_BODY_THREE = {
    "type": "BODY",
    "text": "Your {{1}} costs {{2}}, delivered {{3}}.",
    "example": {"body_text": [["order", "$1", "today"]]},
}
_IMAGE_HEADER = {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2UvanBn"]}}
_TWO_QUICK_REPLIES = {
    "type": "BUTTONS",
    "buttons": [{"type": "QUICK_REPLY", "text": "Yes"}, {"type": "QUICK_REPLY", "text": "No"}],
}

#: The approved template each template-send example names, as the business would have created it.
TEMPLATES_FOR_SENDS: dict[str, tuple[str, str, list[dict[str, Any]]]] = {
    "Send Catalog Template Message": (
        "intro_catalog_offer",
        "MARKETING",
        [
            {
                "type": "BODY",
                "text": "Get {{1}} off on orders above {{2}} for your first {{3}} orders!",
                "example": {"body_text": [["100", "400", "3"]]},
            },
            {"type": "BUTTONS", "buttons": [{"type": "CATALOG", "text": "View catalog"}]},
        ],
    ),
    "Send Flow Template Message": (
        TEMPLATE_NAME,
        "MARKETING",
        [
            {"type": "BODY", "text": "Check out this new offer"},
            {"type": "BUTTONS", "buttons": [{"type": "FLOW", "text": "Open", "flow_id": "1"}]},
        ],
    ),
    "Send Message Template Interactive": (
        TEMPLATE_NAME,
        "MARKETING",
        [_IMAGE_HEADER, _BODY_THREE, _TWO_QUICK_REPLIES],
    ),
    "Send Message Template Media": (TEMPLATE_NAME, "MARKETING", [_IMAGE_HEADER, _BODY_THREE]),
    "Send Message Template Text": (TEMPLATE_NAME, "UTILITY", [_BODY_THREE]),
    "Send Sample Shipping Confirmation Template": (TEMPLATE_NAME, "UTILITY", [_BODY_THREE]),
    "Send Sample Text Message": (TEMPLATE_NAME, "UTILITY", [_BODY_THREE]),
    "Send Sample Issue Resolution Template": (
        "sample_issue_resolution",
        "UTILITY",
        [
            {
                "type": "BODY",
                "text": "Hi {{1}}, were we able to solve the issue that you were facing?",
                "example": {"body_text": [["Ana"]]},
            },
            _TWO_QUICK_REPLIES,
        ],
    ),
    "Edit template": (
        "2023_april_promo",
        "MARKETING",
        [{"type": "BODY", "text": "Our spring sale is on!"}],
    ),
}

#: Example kinds the replay must have accepted (the refusals this issue fixed).
MUST_BE_ACCEPTED = (
    "Send Contact Message",
    "Send Reply to Contact Message",
    "Send Catalog Message",
    "Send Draft Flow by ID",
    "Send Published Flow by Name",
    "Send Single Product Message",
    "Send Multi-Product Message",
    "Create authentication template w/ OTP copy code button",
    "Create authentication template w/ OTP one-tap autofill button",
    "Send Catalog Template Message",
)


def _examples() -> list[tuple[str, str, str, Any]]:
    """``(name, operation path, content type, body)`` of every request example of a served operation."""
    document = openapi_document()
    if document is None:
        return []
    found = []
    for (method, path), _ in SERVED.items():
        operation = document["paths"][path][method]
        for content_type, content in operation["requestBody"]["content"].items():
            for name, example in (content.get("examples") or {}).items():
                found.append((name, path, content_type, example["value"]))
            if "example" in content:
                found.append((f"{path} example", path, content_type, content["example"]))
    return found


EXAMPLES = _examples()
_SKIP = f"Meta's OpenAPI file not found at {spec_path()} (set WHATSAPP_OPENAPI_SPEC to its path)"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[WhatsAppSandbox]:
    with WhatsAppSandbox(port=0, rate_limit=0) as running:
        yield running


@pytest.fixture
def http(sandbox: WhatsAppSandbox) -> Iterator[httpx.Client]:
    sandbox.state.reset()
    headers = {"Authorization": f"Bearer {sandbox.api_key}"}
    with httpx.Client(base_url=sandbox.url, headers=headers, timeout=30) as client:
        yield client


class _Replay:
    """Turns one of Meta's examples into a request the sandbox can answer: real ids, URLs, templates."""

    def __init__(self, sandbox: WhatsAppSandbox, http: httpx.Client) -> None:
        self.sandbox = sandbox
        self.http = http

    def path(self, operation: str, example: str) -> str:
        template = None
        if "{template}" in SERVED[("post", operation)]:
            template = self.install_template(example).id
        return SERVED[("post", operation)].format(
            version=VERSION, phone=self.sandbox.phone_number_id, waba=self.sandbox.waba_id, template=template
        )

    def install_template(self, example: str) -> Any:
        name, category, components = TEMPLATES_FOR_SENDS[example]
        return self.sandbox.state.add_template(
            name=name, language="en_US", category=category, components=components, status="APPROVED"
        )

    def upload(self, media_type: str) -> str:
        mime = sorted(vocabulary_mime(media_type))[0]
        files = {"file": ("example", b"\x00" * 64, mime)}
        answer = self.http.post(
            f"/{VERSION}/{self.sandbox.phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": mime},
            files=files,
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["id"])

    def earlier_message(self) -> str:
        answer = self.http.post(
            f"/{VERSION}/{self.sandbox.phone_number_id}/messages",
            json={"messaging_product": "whatsapp", "to": RECIPIENT, "text": {"body": "earlier"}},
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["messages"][0]["id"])

    def message(self, example: str, body: dict[str, Any]) -> dict[str, Any]:
        body = _substitute(copy.deepcopy(body))
        kind = body.get("type")
        if kind in vocabulary.MEDIA_TYPES and str(body[kind].get("id", "")).startswith("<"):
            body[kind]["id"] = self.upload(kind)
        context = body.get("context")
        if isinstance(context, dict) and str(context.get("message_id", "")).startswith("<"):
            context["message_id"] = self.earlier_message()
        if body.get("status") == "read":
            body["message_id"] = self.sandbox.state.add_inbound(RECIPIENT, text="hi").id
        if kind == "template":
            if example in TEMPLATES_FOR_SENDS:
                self.install_template(example)
            if not grammar.is_template_name(body["template"]["name"]):
                body["template"]["name"] = TEMPLATE_NAME
        return body

    def send(self, example: str, operation: str, content_type: str, body: Any) -> httpx.Response:
        path = self.path(operation, example)
        if operation.endswith("/media"):
            return self.upload_like_curl(path, body)
        if operation.endswith("/messages"):
            body = self.message(example, body)
        else:
            body = _substitute(copy.deepcopy(body))
            if isinstance(body, dict) and not grammar.is_template_name(str(body.get("name", "x"))):
                body["name"] = TEMPLATE_NAME
        return self.http.post(path, json=body)

    def upload_like_curl(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """Meta writes uploads as curl's ``-F file=@path;type=...``: the part's content type is after ``type=``."""
        match = re.fullmatch(r"@(?P<path>[^;]+);type=(?P<type>.+)", body["file"])
        assert match, body
        filename = match["path"].rsplit("/", 1)[-1]
        files = {"file": (filename, b"\x00" * 64, match["type"])}
        return self.http.post(path, data={"messaging_product": body["messaging_product"]}, files=files)


def vocabulary_mime(media_type: str) -> frozenset[str]:
    from airflow_provider_whatsapp.spec.limits import MEDIA_RULES

    return MEDIA_RULES[media_type].mime_types or frozenset({"application/pdf"})


_URL_PLACEHOLDER = re.compile(r"^<?http\(s\)://(?P<rest>[^>]*)>?$")


def _substitute(value: Any) -> Any:
    """Recipients, placeholder URLs and closed-list placeholders replaced, everywhere in a body."""
    if isinstance(value, dict):
        return {k: _substitute(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v) for v in value]
    if isinstance(value, str):
        if value.startswith("{{Recipient-"):
            return RECIPIENT
        if match := _URL_PLACEHOLDER.match(value):
            return f"https://example.com/{match['rest']}"
        return SUBSTITUTIONS.get(value, value)
    return value


@pytest.mark.parametrize(
    ("name", "operation", "content_type", "body"),
    EXAMPLES or [pytest.param("", "", "", None, marks=pytest.mark.skip(reason=_SKIP))],
    ids=[e[0] for e in EXAMPLES] or ["no-openapi-file"],
)
def test_meta_example_is_answered_as_whatsapp_would(
    name: str, operation: str, content_type: str, body: Any, sandbox: WhatsAppSandbox, http: httpx.Client
) -> None:
    answer = _Replay(sandbox, http).send(name, operation, content_type, body)
    if name in MALFORMED or name in NOT_EMULATED:
        assert 400 <= answer.status_code < 500, f"{name} was accepted: {answer.text}"
        assert answer.json()["error"]["code"] in (100, 131008, 131009, 132000, 132012), answer.text
    else:
        assert answer.status_code == 200, f"{name} was refused: {answer.text}"
        assert "error" not in answer.json()


def test_the_replay_covers_every_example_and_lists_no_stale_one() -> None:
    if not EXAMPLES:
        pytest.skip(_SKIP)
    names = [e[0] for e in EXAMPLES]
    assert len(names) == len(set(names)), "two examples share a name; the lists below would be ambiguous"
    listed = {*MALFORMED, *NOT_EMULATED}
    assert listed <= set(names), f"listed examples Meta no longer has: {sorted(listed - set(names))}"
    assert set(MUST_BE_ACCEPTED) <= set(names) - listed
    interactive = [e[0] for e in EXAMPLES if isinstance(e[3], dict) and "interactive" in e[3]]
    kinds = {e[3]["interactive"]["type"] for e in EXAMPLES if e[0] in interactive and e[0] not in listed}
    assert {"button", "list", "flow", "product", "product_list", "catalog_message"} <= kinds
    print(
        f"Meta examples: {len(names)} found and replayed, {len(names) - len(listed)} to be accepted, "
        f"{len(MALFORMED)} malformed, {len(NOT_EMULATED)} not emulated"
    )
