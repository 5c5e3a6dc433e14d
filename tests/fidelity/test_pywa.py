"""A third-party client, pywa, drives the sandbox through every call it has that the sandbox serves.

pywa is written against Meta's real service by people who never saw this sandbox: it builds its own
payloads (contacts, authentication templates, catalogue messages, flows...) and parses the answers into
its own types. Each call goes through a real socket (pywa talks httpx) and must succeed, and what the
sandbox stored must be what pywa meant to send.

pywa has no setting for the host: it sets its httpx session's ``base_url`` to graph.facebook.com, and
the test points that session at the sandbox's gateway (``/whatsapp-business/vXX.X``) or Graph path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

pywa = pytest.importorskip("pywa", reason="pywa (a test dependency in the dev extra) is not installed")

from pywa import WhatsApp, types
from pywa.types import templates as t

from airflow_provider_whatsapp.sandbox import WhatsAppSandbox
from airflow_provider_whatsapp.sandbox.state import APP

TO = "14155550100"
GRAPH = "https://graph.facebook.com"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
MP4 = bytes(8) + b"ftypisom" + bytes(200)
OGG = b"OggS" + bytes(200)
WEBP = b"RIFF" + (212).to_bytes(4, "little") + b"WEBPVP8 " + bytes(200)
PDF = b"%PDF-1.4\n" + bytes(200)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[WhatsAppSandbox]:
    # pywa calls in quick succession; Maton's per-second limit is tested elsewhere.
    with WhatsAppSandbox(port=0, rate_limit=0) as running:
        yield running


def _client(sandbox: WhatsAppSandbox, *, gateway: bool) -> WhatsApp:
    """pywa as it comes (its own default Graph version), its session moved from Meta to the sandbox."""
    wa = WhatsApp(phone_id=sandbox.phone_number_id, token=sandbox.api_key, waba_id=sandbox.waba_id)
    session = wa._api._session
    meta = str(session.base_url)
    assert meta.startswith(GRAPH), meta
    session.base_url = meta.replace(GRAPH, f"{sandbox.url}/{APP}" if gateway else sandbox.url, 1)
    return wa


@pytest.fixture
def wa(sandbox: WhatsAppSandbox) -> Iterator[WhatsApp]:
    sandbox.state.reset()
    client = _client(sandbox, gateway=True)
    yield client
    client._api._session.close()


def _last(sandbox: WhatsAppSandbox) -> dict[str, Any]:
    """The payload of the last message the sandbox accepted for :data:`TO`."""
    return sandbox.messages_to(TO)[-1].payload


# --- sends ---------------------------------------------------------------------------------------

SENDS: dict[str, tuple[Callable[[WhatsApp], Any], str, Callable[[dict[str, Any]], Any]]] = {
    "text": (lambda wa: wa.send_message(to=TO, text="hello"), "text", lambda p: p["text"]["body"] == "hello"),
    "reply buttons": (
        lambda wa: wa.send_message(
            to=TO,
            text="Pick one",
            header="Header",
            footer="Footer",
            buttons=[
                types.Button(title="Yes", callback_data="y"),
                types.Button(title="No", callback_data="n"),
            ],
        ),
        "interactive",
        lambda p: p["interactive"]["type"] == "button" and len(p["interactive"]["action"]["buttons"]) == 2,
    ),
    "list": (
        lambda wa: wa.send_message(
            to=TO,
            text="Choose",
            buttons=types.SectionList(
                button_title="Open",
                sections=[
                    types.Section(title="Fruit", rows=[types.SectionRow(title="Apple", callback_data="a")])
                ],
            ),
        ),
        "interactive",
        lambda p: p["interactive"]["type"] == "list",
    ),
    "cta_url": (
        lambda wa: wa.send_message(
            to=TO, text="Visit", buttons=types.URLButton(title="Site", url="https://example.com")
        ),
        "interactive",
        lambda p: p["interactive"]["type"] == "cta_url",
    ),
    "flow": (
        lambda wa: wa.send_message(
            to=TO, text="Sign up", buttons=types.FlowButton(title="Open", flow_id="1234", flow_token="tok")
        ),
        "interactive",
        lambda p: p["interactive"]["type"] == "flow",
    ),
    "call permission request": (
        lambda wa: wa.send_message(to=TO, text="May we call?", buttons=types.CallPermissionRequestButton()),
        "interactive",
        lambda p: p["interactive"]["type"] == "call_permission_request",
    ),
    "location request": (
        lambda wa: wa.request_location(to=TO, text="Where are you?"),
        "interactive",
        lambda p: p["interactive"]["type"] == "location_request_message",
    ),
    "catalog": (
        lambda wa: wa.send_catalog(to=TO, body="Our catalogue", thumbnail_product_sku="sku-1"),
        "interactive",
        lambda p: p["interactive"]["type"] == "catalog_message",
    ),
    "product": (
        lambda wa: wa.send_product(to=TO, catalog_id="99", sku="sku-1", body="Look"),
        "interactive",
        lambda p: p["interactive"]["type"] == "product",
    ),
    "products": (
        lambda wa: wa.send_products(
            to=TO,
            catalog_id="99",
            title="Picks",
            body="Look",
            product_sections=[types.ProductsSection(title="New", skus=["sku-1", "sku-2"])],
        ),
        "interactive",
        lambda p: p["interactive"]["type"] == "product_list",
    ),
    "location": (
        lambda wa: wa.send_location(to=TO, latitude=37.48, longitude=-122.15, name="HQ", address="1 Way"),
        "location",
        lambda p: p["location"]["latitude"] == 37.48,
    ),
    "contact": (
        lambda wa: wa.send_contact(
            to=TO,
            contact=types.Contact(
                name=types.Contact.Name(formatted_name="Ana Silva", first_name="Ana"),
                phones=[types.Contact.Phone(phone="+1 415 555 0100", type="CELL")],
                emails=[types.Contact.Email(email="ana@example.com", type="WORK")],
                urls=[types.Contact.Url(url="https://example.com", type="WORK")],
            ),
        ),
        "contacts",
        lambda p: p["contacts"][0]["name"]["formatted_name"] == "Ana Silva",
    ),
    "image by link": (
        lambda wa: wa.send_image(to=TO, image="https://example.com/a.png", caption="A picture"),
        "image",
        lambda p: p["image"]["link"] == "https://example.com/a.png",
    ),
    "video by link": (
        lambda wa: wa.send_video(to=TO, video="https://example.com/a.mp4"),
        "video",
        lambda p: "link" in p["video"],
    ),
    "audio by link": (
        lambda wa: wa.send_audio(to=TO, audio="https://example.com/a.ogg"),
        "audio",
        lambda p: "link" in p["audio"],
    ),
    "document by link": (
        lambda wa: wa.send_document(to=TO, document="https://example.com/a.pdf", filename="a.pdf"),
        "document",
        lambda p: p["document"]["filename"] == "a.pdf",
    ),
    "sticker by link": (
        lambda wa: wa.send_sticker(to=TO, sticker="https://example.com/a.webp"),
        "sticker",
        lambda p: "link" in p["sticker"],
    ),
}

UPLOADS = {
    "image": (PNG, "image/png", lambda wa, media: wa.send_image(to=TO, image=media)),
    "video": (MP4, "video/mp4", lambda wa, media: wa.send_video(to=TO, video=media)),
    "audio": (OGG, "audio/ogg", lambda wa, media: wa.send_audio(to=TO, audio=media)),
    "voice": (OGG, "audio/ogg", lambda wa, media: wa.send_voice(to=TO, voice=media)),
    "document": (
        PDF,
        "application/pdf",
        lambda wa, media: wa.send_document(to=TO, document=media, filename="r.pdf"),
    ),
    "sticker": (WEBP, "image/webp", lambda wa, media: wa.send_sticker(to=TO, sticker=media)),
}


@pytest.mark.parametrize("name", list(SENDS))
def test_pywa_send_is_accepted_as_sent(name: str, wa: WhatsApp, sandbox: WhatsAppSandbox) -> None:
    send, message_type, sent_as_meant = SENDS[name]
    sent = send(wa)
    assert sent.id.startswith("wamid.")
    assert sandbox.messages_to(TO)[-1].id == sent.id
    assert _last(sandbox)["type"] == message_type
    assert sent_as_meant(_last(sandbox)), _last(sandbox)


@pytest.mark.parametrize("kind", list(UPLOADS))
def test_pywa_uploads_media_sends_it_by_id_reads_and_deletes_it(
    kind: str, wa: WhatsApp, sandbox: WhatsAppSandbox
) -> None:
    data, mime, send = UPLOADS[kind]
    media = wa.upload_media(media=data, mime_type=mime, filename=f"file.{mime.split('/')[1]}")
    sent = send(wa, media.id)
    wire_type = "audio" if kind == "voice" else kind
    assert _last(sandbox)[wire_type]["id"] == media.id
    assert sandbox.messages_to(TO)[-1].id == sent.id
    url = wa.get_media_url(media.id)
    assert url.mime_type == mime
    assert wa.get_media_bytes(url.url) == data
    assert wa.delete_media(media.id).success
    assert media.id not in sandbox.state.media


def test_pywa_reacts_to_a_message(wa: WhatsApp, sandbox: WhatsAppSandbox) -> None:
    first = wa.send_message(to=TO, text="hello")
    wa.send_reaction(to=TO, emoji="👍", message_id=first.id)
    assert _last(sandbox)["reaction"] == {"message_id": first.id, "emoji": "👍"}


def test_pywa_marks_a_received_message_read_and_shows_typing(wa: WhatsApp, sandbox: WhatsAppSandbox) -> None:
    inbound = sandbox.state.add_inbound(TO, text="hi")
    assert wa.mark_message_as_read(message_id=inbound.id).success
    assert wa.indicate_typing(message_id=inbound.id).success
    assert sandbox.state.by_id[inbound.id].status == "read"


# --- templates -----------------------------------------------------------------------------------


def test_pywa_creates_lists_reads_sends_and_deletes_a_template(
    wa: WhatsApp, sandbox: WhatsAppSandbox
) -> None:
    template = t.Template(
        name="pywa_order",
        category=t.TemplateCategory.UTILITY,
        language=t.TemplateLanguage.ENGLISH_US,
        parameter_format=t.ParamFormat.POSITIONAL,
        components=[
            t.HeaderText("Order {{1}}", "A-1"),
            t.BodyText("Hi {{1}}, your order {{2}} ships today.", "Ana", "A-1"),
            t.FooterText(text="Thanks"),
            t.Buttons(
                buttons=[
                    t.URLButton(
                        text="Track", url="https://example.com/t/{{1}}", example="https://example.com/t/A-1"
                    ),
                    t.QuickReplyButton(text="Stop"),
                ]
            ),
        ],
    )
    created = wa.create_template(template)
    assert created.category == t.TemplateCategory.UTILITY
    listed = wa.get_templates(name="pywa_order")
    assert [d.name for d in listed] == ["pywa_order"]
    assert listed.total_count == 1
    details = wa.get_template(created.id)
    assert details.status == t.TemplateStatus.APPROVED
    assert details.parameter_format == t.ParamFormat.POSITIONAL
    sent = wa.send_template(
        to=TO,
        name="pywa_order",
        language=t.TemplateLanguage.ENGLISH_US,
        params=[
            t.HeaderText.params("A-1"),
            t.BodyText.params("Ana", "A-1"),
            t.URLButton.params(url_variable="A-1", index=0),
            t.QuickReplyButton.params(callback_data="stop", index=1),
        ],
    )
    assert sandbox.messages_to(TO)[-1].id == sent.id
    assert wa.delete_template(template_name="pywa_order").success
    assert sandbox.state.find_template("pywa_order", "en_US") is None


def test_pywa_creates_and_sends_an_authentication_template(wa: WhatsApp, sandbox: WhatsAppSandbox) -> None:
    template = t.Template(
        name="pywa_login_code",
        category=t.TemplateCategory.AUTHENTICATION,
        language=t.TemplateLanguage.ENGLISH_US,
        components=[
            t.AuthenticationBody(add_security_recommendation=True),
            t.AuthenticationFooter(code_expiration_minutes=5),
            t.Buttons(buttons=[t.CopyCodeOTPButton(text="Copy code")]),
        ],
    )
    wa.create_template(template)
    wa.send_template(
        to=TO,
        name="pywa_login_code",
        language=t.TemplateLanguage.ENGLISH_US,
        params=[t.AuthenticationBody.params(otp="482913"), t.CopyCodeOTPButton.params(otp="482913")],
    )
    components = _last(sandbox)["template"]["components"]
    assert {c["type"].lower() for c in components} == {"body", "button"}
    button = next(c for c in components if c["type"] == "button")
    assert button["parameters"] == [{"type": "text", "text": "482913"}]


# --- the business: phone numbers and profile -----------------------------------------------------


def test_pywa_reads_the_phone_numbers(wa: WhatsApp, sandbox: WhatsAppSandbox) -> None:
    assert wa.get_business_phone_number().id == sandbox.phone_number_id
    assert [n.id for n in wa.get_business_phone_numbers()] == [sandbox.phone_number_id]


def test_pywa_reads_and_updates_the_business_profile(wa: WhatsApp, sandbox: WhatsAppSandbox) -> None:
    assert wa.update_business_profile(about="Open 9-5", websites=["https://example.com"]).success
    profile = wa.get_business_profile()
    assert profile.about == "Open 9-5"
    assert list(profile.websites) == ["https://example.com"]


def test_pywa_works_in_graph_direct_mode_too(sandbox: WhatsAppSandbox) -> None:
    sandbox.state.reset()
    client = _client(sandbox, gateway=False)
    try:
        sent = client.send_message(to=TO, text="direct")
    finally:
        client._api._session.close()
    assert sandbox.messages_to(TO)[-1].id == sent.id
