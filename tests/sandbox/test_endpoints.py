"""The sandbox's Graph endpoints and Maton's control plane, driven through MatonHook as a DAG would."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
import pytest

from airflow_provider_whatsapp.errors import (
    WhatsAppError,
    WhatsAppInvalidParameterError,
    WhatsAppTemplateNotFoundError,
    WhatsAppValidationError,
)
from airflow_provider_whatsapp.hooks.maton import MatonHook
from airflow_provider_whatsapp.sandbox import WhatsAppSandbox
from airflow_provider_whatsapp.sandbox.state import _seed_templates
from airflow_provider_whatsapp.spec import error_codes
from airflow_provider_whatsapp.spec.limits import ANIMATED_STICKER_MAX_BYTES, MEDIA_RULES, is_animated_webp
from airflow_provider_whatsapp.template_definitions import validate_template
from tests.sandbox.conftest import (
    RECIPIENT,
    assert_graph_error,
    eventually,
    final_status,
    messages_path,
    template,
    text,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


# --- media ---------------------------------------------------------------------------------------


def test_media_upload_get_download_delete(whatsapp_sandbox: WhatsAppSandbox, tmp_path: Path) -> None:
    source = tmp_path / "chart.png"
    source.write_bytes(PNG)
    hook = MatonHook()

    media_id = hook.upload_media(source)
    info = hook.get_media(media_id)
    target = hook.download_media(media_id, tmp_path / "copy.png")

    assert info["mime_type"] == "image/png"
    assert info["file_size"] == len(PNG)
    assert info["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert info["url"].startswith(whatsapp_sandbox.url)
    assert Path(target).read_bytes() == PNG
    assert hook.delete_media(media_id) is True
    with pytest.raises(WhatsAppInvalidParameterError):
        hook.get_media(media_id)


def test_media_download_url_needs_the_key(whatsapp_sandbox: WhatsAppSandbox, tmp_path: Path) -> None:
    source = tmp_path / "a.png"
    source.write_bytes(PNG)
    url = MatonHook().get_media(MatonHook().upload_media(source))["url"]
    assert httpx.get(url).status_code == 401


@pytest.mark.parametrize(
    ("mime", "size", "accepted"),
    [
        ("image/png", MEDIA_RULES["image"].max_bytes, True),
        ("image/png", MEDIA_RULES["image"].max_bytes + 1, False),
        ("image/webp", MEDIA_RULES["sticker"].max_bytes + 1, False),
        ("application/pdf", 1000, True),
    ],
)
def test_media_limits_are_enforced_by_the_server(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client, mime: str, size: int, accepted: bool
) -> None:
    response = client.post(
        f"/whatsapp-business/v21.0/{whatsapp_sandbox.phone_number_id}/media",
        files={"file": ("f", b"\x00" * size, mime)},
        data={"messaging_product": "whatsapp", "type": mime},
    )
    if accepted:
        assert response.status_code == 200 and response.json()["id"].isdigit()
    else:
        error = assert_graph_error(response, 400, 131053)
        assert "at most" in error["error_data"]["details"]


def _webp(size: int, *, riff: bool = True, animated: bool = True) -> bytes:
    """A WebP-shaped file of ``size`` bytes: an extended (VP8X) header with the animation flag as asked."""
    magic = (b"RIFF", b"WEBP") if riff else (b"JUNK", b"JUNK")
    flags = bytes([0x02 if animated else 0x00])
    head = magic[0] + (size - 8).to_bytes(4, "little") + magic[1] + b"VP8X" + b"\x0a\x00\x00\x00" + flags
    return head + b"\x00" * (size - len(head))


@pytest.mark.parametrize(
    ("data", "accepted"),
    [
        (_webp(ANIMATED_STICKER_MAX_BYTES), True),
        (_webp(ANIMATED_STICKER_MAX_BYTES + 1), False),
        (_webp(MEDIA_RULES["sticker"].max_bytes + 1, animated=False), False),
        # The animation flag without a RIFF/WEBP header is not an animated WebP: the static limit holds.
        (_webp(MEDIA_RULES["sticker"].max_bytes + 1, riff=False), False),
    ],
    ids=["animated", "animated-too-big", "static-too-big", "not-riff"],
)
def test_sticker_limits_follow_the_one_animated_webp_check(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client, data: bytes, accepted: bool
) -> None:
    assert is_animated_webp(data) == (data[:4] == b"RIFF" and data[20] == 0x02)
    response = client.post(
        f"/whatsapp-business/v21.0/{whatsapp_sandbox.phone_number_id}/media",
        files={"file": ("s.webp", data, "image/webp")},
        data={"messaging_product": "whatsapp", "type": "image/webp"},
    )
    if accepted:
        assert response.status_code == 200 and response.json()["id"].isdigit()
    else:
        assert_graph_error(response, 400, 131053)


def test_the_hook_refuses_what_the_sandbox_refuses(whatsapp_sandbox: WhatsAppSandbox, tmp_path: Path) -> None:
    source = tmp_path / "s.webp"
    source.write_bytes(_webp(MEDIA_RULES["sticker"].max_bytes + 1, riff=False))
    with pytest.raises(WhatsAppValidationError, match="sticker file is"):
        MatonHook().upload_media(source)
    source.write_bytes(_webp(ANIMATED_STICKER_MAX_BYTES))
    assert MatonHook().upload_media(source).isdigit()


def test_media_upload_without_messaging_product_is_refused(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    response = client.post(
        f"/whatsapp-business/v21.0/{whatsapp_sandbox.phone_number_id}/media",
        files={"file": ("a.png", PNG, "image/png")},
    )
    assert_graph_error(response, 400, 100)


def test_a_message_may_only_use_media_that_exists(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    payload = {"messaging_product": "whatsapp", "to": RECIPIENT, "type": "image", "image": {"id": "123"}}
    assert_graph_error(client.post(messages_path(whatsapp_sandbox), json=payload), 400, 131009)
    payload["image"] = {"link": "ftp://example.com/a.png"}
    assert_graph_error(client.post(messages_path(whatsapp_sandbox), json=payload), 400, 131009)
    payload["image"] = {}
    assert_graph_error(client.post(messages_path(whatsapp_sandbox), json=payload), 400, 131008)


# --- templates -----------------------------------------------------------------------------------

BODY = [
    {
        "type": "BODY",
        "text": "Hello {{1}}, the load of {{2}} finished.",
        "example": {"body_text": [["Ana", "sales"]]},
    }
]


@pytest.mark.whatsapp_sandbox(approval_delay=0.3)
def test_a_created_template_is_pending_then_approved(whatsapp_sandbox: WhatsAppSandbox) -> None:
    hook = MatonHook()
    created = hook.create_template(name="load_done", language="en_US", category="UTILITY", components=BODY)

    assert created["status"] == "PENDING" and created["category"] == "UTILITY"
    with pytest.raises(WhatsAppTemplateNotFoundError):  # not approved yet
        hook.send_message(template("load_done", "Ana", "sales"))
    time.sleep(0.4)
    (found,) = hook.list_templates(name="load_done")
    assert found["status"] == "APPROVED" and found["id"] == created["id"]
    assert MatonHook.message_id(hook.send_message(template("load_done", "Ana", "sales")))


@pytest.mark.whatsapp_sandbox(approval_delay=0)
def test_a_template_named_to_be_rejected_is_rejected_with_a_reason(whatsapp_sandbox: WhatsAppSandbox) -> None:
    MatonHook().create_template(name="promo_reject", language="en_US", category="MARKETING", components=BODY)
    (found,) = MatonHook().list_templates(name="promo_reject")
    assert found["status"] == "REJECTED"
    assert found["rejected_reason"] == "INVALID_FORMAT"


def test_template_definitions_are_checked(whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client) -> None:
    path = f"/whatsapp-business/v21.0/{whatsapp_sandbox.waba_id}/message_templates"
    good = {"name": "ok_name", "language": "en_US", "category": "UTILITY", "components": BODY}
    assert_graph_error(client.post(path, json={**good, "name": "Bad Name"}), 400, 100)
    assert_graph_error(client.post(path, json={**good, "category": "OTHER"}), 400, 100)
    assert client.post(path, json=good).status_code == 200
    duplicate = assert_graph_error(client.post(path, json=good), 400, 100)
    assert duplicate["error_subcode"] == 2388024


def test_template_list_pages_and_the_hook_follows_them(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    for i in range(7):
        whatsapp_sandbox.state.add_template(
            name=f"bulk_{i}", language="en_US", category="UTILITY", components=BODY, status="APPROVED"
        )
    total = len(whatsapp_sandbox.templates())
    path = f"/whatsapp-business/v21.0/{whatsapp_sandbox.waba_id}/message_templates"

    first = client.get(path, params={"limit": 5}).json()
    assert len(first["data"]) == 5
    assert set(first["paging"]["cursors"]) == {"before", "after"}
    second = client.get(path, params={"limit": 5, "after": first["paging"]["cursors"]["after"]}).json()
    assert [t["name"] for t in second["data"]] == [t.name for t in whatsapp_sandbox.templates()[5:10]]
    last = client.get(path, params={"limit": total}).json()
    assert "next" not in last["paging"]
    assert len(MatonHook().list_templates(page_size=3)) == total


def test_deleting_a_template(whatsapp_sandbox: WhatsAppSandbox) -> None:
    hook = MatonHook()
    assert hook.delete_template("order_update") is True
    assert hook.list_templates(name="order_update") == []
    with pytest.raises(WhatsAppInvalidParameterError):
        hook.delete_template("order_update")


def test_a_paused_template_cannot_be_sent(whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client) -> None:
    whatsapp_sandbox.state.set_template_status("hello_world", "PAUSED")
    assert_graph_error(
        client.post(messages_path(whatsapp_sandbox), json=template("hello_world")), 400, 132015
    )


def test_a_media_header_template_needs_its_media(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    params = ("2026-11-20", "1204")
    path = messages_path(whatsapp_sandbox)
    assert_graph_error(client.post(path, json=template("daily_report", *params)), 400, 132012)
    header = {"type": "document", "document": {"link": "https://example.com/r.pdf", "filename": "r.pdf"}}
    assert client.post(path, json=template("daily_report", *params, header=header)).status_code == 200
    (sent,) = whatsapp_sandbox.messages_to(RECIPIENT)
    assert "Sales report for 2026-11-20: 1204 orders." in whatsapp_sandbox.transcript()
    assert sent.type == "template"


# --- phone numbers, profile, read receipts --------------------------------------------------------


def test_phone_numbers_and_business_profile(whatsapp_sandbox: WhatsAppSandbox) -> None:
    hook = MatonHook()
    number = hook.get_phone_number()
    assert number["id"] == whatsapp_sandbox.phone_number_id
    assert number["display_phone_number"] and number["verified_name"]
    assert [n["id"] for n in hook.list_phone_numbers()] == [whatsapp_sandbox.phone_number_id]

    hook.update_business_profile(about="Nightly reports", websites=["https://example.com"])

    profile = hook.get_business_profile()
    assert profile["about"] == "Nightly reports" and profile["websites"] == ["https://example.com"]
    with pytest.raises(WhatsAppInvalidParameterError):
        hook.update_business_profile(about="x" * 140)
    with pytest.raises(WhatsAppValidationError):
        hook.update_business_profile()


def test_mark_as_read_marks_an_inbound_message(whatsapp_sandbox: WhatsAppSandbox) -> None:
    inbound = whatsapp_sandbox.add_inbound(RECIPIENT, "Is the report ready?")
    assert MatonHook().mark_as_read(inbound.id) == {"success": True}
    assert whatsapp_sandbox.state.by_id[inbound.id].status == "read"
    with pytest.raises(WhatsAppInvalidParameterError):
        MatonHook().mark_as_read("wamid.unknown")


def test_unknown_objects_get_graphs_subcode_33(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    error = assert_graph_error(client.get("/whatsapp-business/v21.0/999"), 400, 100)
    assert error["error_subcode"] == 33


# --- control plane -------------------------------------------------------------------------------


def test_control_plane_list_create_activate_delete(whatsapp_sandbox: WhatsAppSandbox) -> None:
    hook = MatonHook()
    (seeded,) = hook.list_maton_connections()
    assert seeded["connection_id"] == whatsapp_sandbox.connection_id and seeded["status"] == "ACTIVE"

    created = hook.create_maton_connection()
    assert created["status"] == "PENDING" and created["app"] == "whatsapp-business"
    # "Completing" the OAuth flow: the consent page, then its button's JSON POST.
    assert httpx.get(created["url"]).status_code == 200
    assert httpx.post(created["url"], json={}).json()["connection"]["status"] == "ACTIVE"

    assert hook.get_maton_connection(created["connection_id"])["status"] == "ACTIVE"
    assert len(hook.list_maton_connections()) == 2
    hook.delete_maton_connection(created["connection_id"])
    assert [c["connection_id"] for c in hook.list_maton_connections(status=None)] == [seeded["connection_id"]]
    ok, said = hook.test_connection()
    assert ok and whatsapp_sandbox.connection_id in said


def test_oauth_page_changes_nothing_until_its_json_post(whatsapp_sandbox: WhatsAppSandbox) -> None:
    hook = MatonHook()
    created = hook.create_maton_connection()
    cid = created["connection_id"]

    page = httpx.get(created["url"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "/_sandbox/static/oauth.js" in page.text and cid in page.text
    assert httpx.get(whatsapp_sandbox.url + "/_sandbox/static/oauth.js").status_code == 200
    # What a page on another site can send without a preflight: a link or <img> (GET), a form POST.
    httpx.get(created["url"], headers={"Origin": "https://evil.example"})
    form = httpx.post(created["url"], data={"x": "1"})
    assert form.status_code == 415
    assert hook.get_maton_connection(cid)["status"] == "PENDING"

    activated = httpx.post(created["url"], json={})

    assert activated.status_code == 200 and activated.json()["connection"]["connection_id"] == cid
    assert hook.get_maton_connection(cid)["status"] == "ACTIVE"
    assert httpx.post(whatsapp_sandbox.url + "/_sandbox/oauth/nope", json={}).status_code == 404


# --- the 24-hour window and status updates --------------------------------------------------------


@pytest.mark.whatsapp_sandbox(require_window=True)
def test_free_form_outside_the_window_is_accepted_then_fails_by_status(
    whatsapp_sandbox: WhatsAppSandbox,
) -> None:
    # As WhatsApp does: the send is answered 200 with a wamid, the failure comes later as a status.
    hook = MatonHook()
    late = hook.message_id(hook.send_message(text("hi")))
    failed = final_status(whatsapp_sandbox, late, "failed")
    assert failed["error"]["code"] == error_codes.RE_ENGAGEMENT
    assert failed["error"]["title"] == error_codes.lookup(error_codes.RE_ENGAGEMENT).title
    assert [s["status"] for s in failed["statuses"]] == ["accepted", "failed"]  # never sent
    final_status(whatsapp_sandbox, hook.message_id(hook.send_message(template("hello_world"))), "delivered")

    whatsapp_sandbox.add_inbound(RECIPIENT, "hello?")
    final_status(whatsapp_sandbox, hook.message_id(hook.send_message(text("hi"))), "delivered")

    whatsapp_sandbox.advance_clock(24 * 3600 + 1)
    again = final_status(whatsapp_sandbox, hook.message_id(hook.send_message(text("still there?"))), "failed")
    assert again["error"]["code"] == error_codes.RE_ENGAGEMENT


def test_the_24_hour_rule_can_be_switched_on_over_http(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    assert client.post("/_sandbox/config", json={"require_window": True}).json()["require_window"] is True
    answer = client.post(messages_path(whatsapp_sandbox), json=text("hi"))
    assert answer.status_code == 200
    wamid = answer.json()["messages"][0]["id"]

    def failed() -> dict | None:
        (message,) = client.get("/_sandbox/messages", params={"wa_id": RECIPIENT}).json()["data"]
        return message if message["status"] == "failed" else None

    assert eventually(failed)["error"]["code"] == error_codes.RE_ENGAGEMENT
    statuses = [
        e["entry"][0]["changes"][0]["value"]["statuses"][0]
        for e in client.get("/_sandbox/webhooks").json()["data"]
    ]
    assert [(s["id"], s["status"], s["errors"][0]["code"]) for s in statuses] == [
        (wamid, "failed", error_codes.RE_ENGAGEMENT)
    ]
    assert client.post("/_sandbox/inbound", json={"from": RECIPIENT, "text": "hi"}).status_code == 200
    assert client.post(messages_path(whatsapp_sandbox), json=text("hi")).status_code == 200


@pytest.mark.whatsapp_sandbox(auto_deliver=False)
def test_status_updates_and_their_webhook_events(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    wamid = MatonHook.message_id(MatonHook().send_message(text("report ready")))
    assert whatsapp_sandbox.messages_to(RECIPIENT)[0].status == "accepted"

    assert client.post("/_sandbox/status", json={"message_id": wamid, "status": "read"}).status_code == 200

    (message,) = whatsapp_sandbox.messages_to(RECIPIENT)
    assert message.status == "read"
    assert [s["status"] for s in message.statuses] == ["accepted", "sent", "delivered", "read"]
    events = client.get("/_sandbox/webhooks").json()["data"]
    statuses = [e["entry"][0]["changes"][0]["value"]["statuses"][0] for e in events]
    assert [(s["id"], s["status"]) for s in statuses] == [
        (wamid, "sent"),
        (wamid, "delivered"),
        (wamid, "read"),
    ]


def test_an_inbound_reply_reads_earlier_messages_and_is_a_webhook(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    wamid = MatonHook.message_id(MatonHook().send_message(text("Approve the load?")))
    client.post(
        "/_sandbox/inbound",
        json={
            "from": RECIPIENT,
            "name": "Ana",
            "message": {
                "type": "interactive",
                "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}},
            },
            "reply_to": wamid,
        },
    )
    assert whatsapp_sandbox.messages_to(RECIPIENT)[0].status == "read"
    value = client.get("/_sandbox/webhooks").json()["data"][-1]["entry"][0]["changes"][0]["value"]
    assert value["contacts"][0]["profile"]["name"] == "Ana"
    assert value["messages"][0]["interactive"]["button_reply"]["id"] == "yes"
    assert value["messages"][0]["context"]["id"] == wamid


def test_failed_status_carries_an_error(whatsapp_sandbox: WhatsAppSandbox) -> None:
    wamid = MatonHook.message_id(MatonHook().send_message(text("hi")))
    whatsapp_sandbox.set_status(wamid, "failed", error_code=error_codes.UNDELIVERABLE)
    error = whatsapp_sandbox.messages_to(RECIPIENT)[0].error
    assert error is not None
    assert error["code"] == error_codes.UNDELIVERABLE
    assert error["title"] == error["message"] == error_codes.lookup(error_codes.UNDELIVERABLE).title
    assert error["error_data"]["details"] == error_codes.STATUS_ERROR_DETAILS[error_codes.UNDELIVERABLE]
    with pytest.raises(WhatsAppError):
        MatonHook(max_attempts=1).send_message({"to": RECIPIENT, "type": "nonsense", "nonsense": {}})


def test_reset_forgets_everything_but_the_seed(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    MatonHook().send_message(text("hi"))
    MatonHook().delete_template("hello_world")
    whatsapp_sandbox.inject_fault(code=131000)

    assert client.post("/_sandbox/reset", json={}).json() == {"success": True}

    assert whatsapp_sandbox.messages == [] and whatsapp_sandbox.state.faults == []
    assert [t["name"] for t in MatonHook().list_templates(name="hello_world")] == ["hello_world"]
    assert whatsapp_sandbox.state.connections


@pytest.mark.parametrize("seeded", _seed_templates(), ids=lambda t: t["name"])
def test_seeded_templates_follow_the_rules_the_provider_enforces(seeded: dict) -> None:
    # A template the sandbox offers must be one a user could have created through the provider.
    validate_template(
        name=seeded["name"],
        language=seeded["language"],
        category=seeded["category"],
        components=seeded["components"],
    )
