"""MatonHook against a real HTTP server on loopback: URLs, headers, retries, errors, secrets."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from airflow_provider_whatsapp._compat import AirflowFailException
from airflow_provider_whatsapp.errors import (
    MatonNoConnectionError,
    WhatsAppAuthError,
    WhatsAppConfigurationError,
    WhatsAppConnectError,
    WhatsAppDeliveryUnknownError,
    WhatsAppPermanentError,
    WhatsAppRateLimitError,
    WhatsAppReEngagementError,
    WhatsAppTemplateNotFoundError,
    WhatsAppTransientError,
    WhatsAppValidationError,
)
from airflow_provider_whatsapp.hooks.maton import MatonHook
from tests.conftest import MESSAGES, PHONE_NUMBER_ID, TEST_KEY, WABA_ID, connection_json
from tests.loopback import LoopbackServer, Reply, graph_error, sent

TEXT = {"to": "14155550100", "type": "text", "text": {"body": "hello"}}


# --- where requests go ---------------------------------------------------------------------------


def test_send_goes_to_gateway_url_with_bearer_key(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(json=sent("wamid.A")))

    answer = MatonHook().send_message(TEXT)

    assert MatonHook.message_id(answer) == "wamid.A"
    (request,) = maton_conn.requests
    assert request.path == f"/whatsapp-business/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request.header("Authorization") == f"Bearer {TEST_KEY}"
    assert request.json == {"messaging_product": "whatsapp", **TEXT}
    assert request.header("Maton-Connection") is None  # Maton then picks the oldest active connection


@pytest.mark.parametrize(
    ("extra_id", "argument_id", "expected"),
    [
        (None, None, None),
        ("conn-from-extra", None, "conn-from-extra"),
        ("conn-from-extra", "conn-arg", "conn-arg"),
    ],
)
def test_maton_connection_header_precedence(
    monkeypatch: pytest.MonkeyPatch,
    loopback: LoopbackServer,
    extra_id: str | None,
    argument_id: str | None,
    expected: str | None,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(loopback.url, connection_id=extra_id))
    loopback.route("POST", MESSAGES, Reply(json=sent()))

    MatonHook(connection_id=argument_id).send_message(TEXT)

    assert loopback.requests[0].header("Maton-Connection") == expected


def test_api_version_app_and_phone_number_come_from_extra(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_DEFAULT",
        connection_json(loopback.url, api_version="v23.0", phone_number_id="555"),
    )
    loopback.route("POST", r"/messages$", Reply(json=sent()))

    MatonHook().send_message(TEXT)
    MatonHook(phone_number_id="777").send_message(TEXT)

    assert [r.path for r in loopback.requests] == [
        "/whatsapp-business/v23.0/555/messages",
        "/whatsapp-business/v23.0/777/messages",
    ]


def test_graph_direct_has_no_app_segment_and_no_maton_header(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_DEFAULT", connection_json(loopback.url, app="", connection_id="c1")
    )
    loopback.route("POST", r"/messages$", Reply(json=sent()))

    MatonHook().send_message(TEXT)

    assert loopback.requests[0].path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert loopback.requests[0].header("Maton-Connection") is None


def test_environment_fallback_without_connection(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_MATON_DEFAULT", raising=False)
    monkeypatch.setenv("MATON_API_KEY", "env-key-123")
    monkeypatch.setenv("MATON_BASE_URL", loopback.url)
    loopback.route("GET", r"/whatsapp-business/v21\.0/42$", Reply(json={"id": "42"}))

    assert MatonHook().get_phone_number("42") == {"id": "42"}
    assert loopback.requests[0].header("Authorization") == "Bearer env-key-123"


def test_missing_connection_and_key_explains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_MATON_DEFAULT", raising=False)
    with pytest.raises(WhatsAppConfigurationError, match="MATON_API_KEY"):
        MatonHook().send_message(TEXT)
    with pytest.raises(WhatsAppConfigurationError, match="'other' is not defined"):
        MatonHook("other").send_message(TEXT)


def test_missing_phone_number_id_is_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(loopback.url, phone_number_id=None))
    with pytest.raises(WhatsAppConfigurationError, match="phone_number_id"):
        MatonHook().send_message(TEXT)
    assert loopback.requests == []


# --- retries that cannot duplicate a message ---------------------------------------------------


def test_429_with_retry_after_is_retried_after_waiting(maton_conn: LoopbackServer) -> None:
    maton_conn.route(
        "POST",
        MESSAGES,
        Reply(429, {"error": "Too many requests"}, headers={"Retry-After": "1"}),
        Reply(json=sent("wamid.OK")),
    )

    answer = MatonHook(rate_limit=0).send_message(TEXT)

    assert MatonHook.message_id(answer) == "wamid.OK"
    first, second = maton_conn.requests
    assert second.at - first.at >= 1.0


def test_throughput_code_130429_is_retried(maton_conn: LoopbackServer) -> None:
    maton_conn.route(
        "POST", MESSAGES, Reply(400, graph_error(130429, "Rate limit hit")), Reply(json=sent("wamid.B"))
    )

    assert MatonHook.message_id(MatonHook().send_message(TEXT)) == "wamid.B"
    assert len(maton_conn.requests) == 2


def test_24_hour_window_error_is_not_retried_and_says_send_a_template(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(400, graph_error(131047, "Re-engagement message")))

    with pytest.raises(WhatsAppReEngagementError) as caught:
        MatonHook().send_message(TEXT)

    assert len(maton_conn.requests) == 1
    assert "24 hours" in str(caught.value)
    assert "template" in str(caught.value)
    assert caught.value.code == 131047
    assert isinstance(caught.value, AirflowFailException)


def test_unknown_template_is_not_retried_and_explains(maton_conn: LoopbackServer) -> None:
    maton_conn.route(
        "POST",
        MESSAGES,
        Reply(404, graph_error(132001, "Template name does not exist in the translation", details="x")),
    )

    with pytest.raises(WhatsAppTemplateNotFoundError, match="language code") as caught:
        MatonHook().send_message(TEXT)

    assert len(maton_conn.requests) == 1
    assert "132001" in str(caught.value)


def test_500_on_a_send_is_made_once_and_may_have_been_delivered(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(500, {"message": "internal"}))

    with pytest.raises(WhatsAppDeliveryUnknownError, match="may have been delivered") as caught:
        MatonHook().send_message(TEXT)

    assert len(maton_conn.requests) == 1
    assert isinstance(caught.value, AirflowFailException)  # no Airflow retry either


def test_500_on_a_read_is_retried(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", rf"/{PHONE_NUMBER_ID}$", Reply(500, {}), Reply(json={"id": PHONE_NUMBER_ID}))

    assert MatonHook().get_phone_number() == {"id": PHONE_NUMBER_ID}
    assert len(maton_conn.requests) == 2


def test_503_on_a_send_is_retried(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(503, {}), Reply(json=sent("wamid.C")))

    assert MatonHook.message_id(MatonHook().send_message(TEXT)) == "wamid.C"
    assert len(maton_conn.requests) == 2


def test_read_timeout_on_a_send_is_not_repeated(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(json=sent(), delay=1.0))

    with pytest.raises(WhatsAppDeliveryUnknownError, match="may have been delivered"):
        MatonHook(timeout=0.3).send_message(TEXT)

    assert len(maton_conn.requests) == 1


def test_dropped_connection_on_a_send_is_not_repeated(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(drop=True))

    with pytest.raises(WhatsAppDeliveryUnknownError):
        MatonHook().send_message(TEXT)

    assert len(maton_conn.requests) == 1


def test_connect_errors_are_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # A port nothing listens on: nothing can have been sent, so every attempt is made.
    with LoopbackServer() as server:
        url = server.url
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(url))
    hook = MatonHook(max_attempts=3)
    hook.retry_policy = type(hook.retry_policy)(max_attempts=3, base_delay=0.01)

    with pytest.raises(WhatsAppConnectError, match="Nothing was sent") as caught:
        hook.send_message(TEXT)

    assert "Gave up after 3 attempt(s)" in str(caught.value)
    assert not isinstance(caught.value, AirflowFailException)  # Airflow may retry the task


def test_retries_are_bounded(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(400, graph_error(130429)))
    hook = MatonHook(max_attempts=3)
    hook.retry_policy = type(hook.retry_policy)(max_attempts=3, base_delay=0.01)

    with pytest.raises(WhatsAppRateLimitError):
        hook.send_message(TEXT)

    assert len(maton_conn.requests) == 3


def test_retry_after_beyond_the_time_budget_gives_up_at_once(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(429, {}, headers={"Retry-After": "600"}))

    started = time.monotonic()
    with pytest.raises(WhatsAppRateLimitError):
        MatonHook(max_retry_seconds=5).send_message(TEXT)

    assert len(maton_conn.requests) == 1
    assert time.monotonic() - started < 5


# --- errors that explain -------------------------------------------------------------------------


def test_bad_key_makes_one_request_and_says_so(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(401, {"error": "Invalid API key"}))

    with pytest.raises(WhatsAppAuthError, match="Maton API key was refused"):
        MatonHook().send_message(TEXT)

    assert len(maton_conn.requests) == 1


def test_maton_400_without_connection_says_create_one(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(400, {"error": "No connection found for app whatsapp-business"}))

    with pytest.raises(MatonNoConnectionError, match="create one"):
        MatonHook().send_message(TEXT)


def test_error_data_may_be_a_plain_string(maton_conn: LoopbackServer) -> None:
    body = {"error": {"message": "Invalid parameter", "code": 100, "error_data": "to must be a phone number"}}
    maton_conn.route("POST", MESSAGES, Reply(400, body))

    with pytest.raises(WhatsAppPermanentError, match="to must be a phone number") as caught:
        MatonHook().send_message(TEXT)

    assert caught.value.details == "to must be a phone number"


# --- secrets -------------------------------------------------------------------------------------


def test_key_never_in_debug_logs_repr_or_errors(
    maton_conn: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    maton_conn.route(
        "POST", MESSAGES, Reply(429, {}, headers={"Retry-After": "0"}), Reply(401, {"error": "bad key"})
    )
    # caplog restores the levels it sets: later tests' failure reports stay free of DEBUG noise.
    for name in (None, "httpx", "httpcore", "airflow_provider_whatsapp"):
        caplog.set_level(logging.DEBUG, logger=name)
    hook = MatonHook()

    with pytest.raises(WhatsAppAuthError) as caught:
        hook.send_message(TEXT)

    assert any(r.name.startswith("httpcore") for r in caplog.records), "DEBUG logging was not captured"
    everything = "\n".join(
        [
            caplog.text,
            repr(hook),
            str(hook.__dict__),
            repr(hook.settings),
            str(caught.value),
            repr(caught.value),
        ]
    )
    assert TEST_KEY not in everything


def test_key_is_registered_with_airflows_secret_masker(maton_conn: LoopbackServer) -> None:
    from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS

    MatonHook().settings  # noqa: B018 - reading the settings registers the key
    if AIRFLOW_V_3_PLUS:
        from airflow.sdk.log import redact
    else:
        from airflow.utils.log.secrets_masker import redact
    assert TEST_KEY not in str(redact(f"key={TEST_KEY}"))


# --- the control plane ---------------------------------------------------------------------------


def test_control_plane_list_get_create_delete(maton_conn: LoopbackServer) -> None:
    record = {"connection_id": "c-1", "status": "ACTIVE", "app": "whatsapp-business"}
    maton_conn.route("GET", r"^/connections$", Reply(json={"connections": [record]}))
    maton_conn.route("GET", r"^/connections/c-1$", Reply(json={"connection": record}))
    maton_conn.route(
        "POST",
        r"^/connections$",
        Reply(json={"connection": {**record, "status": "PENDING", "url": "https://connect.example/x"}}),
    )
    maton_conn.route("DELETE", r"^/connections/c-1$", Reply(json={}))
    hook = MatonHook(connection_id="ignored-by-control-plane")

    assert hook.list_maton_connections() == [record]
    assert hook.get_maton_connection("c-1") == record
    assert hook.create_maton_connection()["url"] == "https://connect.example/x"
    hook.delete_maton_connection("c-1")

    listing, _get, create, delete = maton_conn.requests
    assert listing.query == {"app": ["whatsapp-business"], "status": ["ACTIVE"]}
    assert create.json == {"app": "whatsapp-business"}
    assert delete.method == "DELETE"
    assert all(r.header("Maton-Connection") is None for r in maton_conn.requests)


def test_ctrl_url_can_be_a_separate_host(monkeypatch: pytest.MonkeyPatch) -> None:
    with LoopbackServer() as gateway, LoopbackServer() as ctrl:
        monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(gateway.url, ctrl_url=ctrl.url))
        gateway.route("POST", MESSAGES, Reply(json=sent()))
        ctrl.route("GET", r"^/connections$", Reply(json={"connections": []}))
        hook = MatonHook()
        hook.send_message(TEXT)
        hook.list_maton_connections()
        assert len(gateway.requests) == 1
        assert len(ctrl.requests) == 1


def test_test_connection_names_active_connections(maton_conn: LoopbackServer) -> None:
    maton_conn.route(
        "GET",
        r"^/connections$",
        Reply(json={"connections": [{"connection_id": "c-1"}, {"connection_id": "c-2"}]}),
    )

    ok, message = MatonHook().test_connection()

    assert ok
    assert "2 active" in message and "c-1" in message and "c-2" in message


def test_test_connection_reports_bad_key_and_no_connection(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", r"^/connections$", Reply(401, {"error": "bad"}), Reply(json={"connections": []}))

    ok, message = MatonHook().test_connection()
    assert not ok
    assert "Maton API key was refused" in message

    ok, message = MatonHook().test_connection()
    assert not ok
    assert "no ACTIVE whatsapp-business connection" in message


# --- other calls ---------------------------------------------------------------------------------


def test_template_listing_follows_next_and_filters_exact_name(maton_conn: LoopbackServer) -> None:
    page1 = {
        "data": [{"name": "daily_report", "language": "en_US", "status": "APPROVED"}],
        "paging": {"cursors": {"before": "a", "after": "CURSOR1"}, "next": "https://graph/next"},
    }
    page2 = {
        "data": [{"name": "daily_report_v2", "language": "en_US", "status": "PENDING"}],
        "paging": {"cursors": {"before": "b", "after": "CURSOR2"}},
    }
    maton_conn.route("GET", rf"/{WABA_ID}/message_templates$", Reply(json=page1), Reply(json=page2))

    found = MatonHook().list_templates(name="daily_report")

    assert [t["name"] for t in found] == ["daily_report"]
    first, second = maton_conn.requests
    assert "after" not in first.query
    assert second.query["after"] == ["CURSOR1"]
    assert len(maton_conn.requests) == 2  # cursors without "next" do not mean another page


def test_business_profile_and_mark_as_read(maton_conn: LoopbackServer) -> None:
    profile_path = rf"/{PHONE_NUMBER_ID}/whatsapp_business_profile$"
    maton_conn.route(
        "GET", profile_path, Reply(json={"data": [{"about": "Reports", "messaging_product": "whatsapp"}]})
    )
    maton_conn.route("POST", profile_path, Reply(json={"success": True}))
    maton_conn.route("POST", MESSAGES, Reply(json={"success": True}))
    hook = MatonHook()

    assert hook.get_business_profile()["about"] == "Reports"
    assert hook.update_business_profile(about="Daily reports") == {"success": True}
    hook.mark_as_read("wamid.IN")

    assert maton_conn.requests[1].json == {"messaging_product": "whatsapp", "about": "Daily reports"}
    assert maton_conn.requests[2].json == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.IN",
    }


def test_messaging_product_is_the_hooks_own_value_on_every_body(maton_conn: LoopbackServer) -> None:
    # One helper adds it to sends, read receipts and profile updates; a caller's value cannot replace it.
    profile_path = rf"/{PHONE_NUMBER_ID}/whatsapp_business_profile$"
    maton_conn.route("POST", profile_path, Reply(json={"success": True}))
    maton_conn.route("POST", MESSAGES, Reply(json=sent("wamid.A")))
    hook = MatonHook()

    hook.send_message({**TEXT, "messaging_product": "sms"})
    hook.update_business_profile(about="Reports", messaging_product="sms")
    hook.mark_as_read("wamid.IN")

    assert [r.json["messaging_product"] for r in maton_conn.requests] == ["whatsapp"] * 3
    assert maton_conn.requests[0].json == {"messaging_product": "whatsapp", **TEXT}


def test_upload_media_sends_multipart_and_returns_id(maton_conn: LoopbackServer, tmp_path) -> None:
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 report")
    maton_conn.route("POST", rf"/{PHONE_NUMBER_ID}/media$", Reply(json={"id": "media-1"}))

    assert MatonHook().upload_media(report) == "media-1"

    (request,) = maton_conn.requests
    assert request.header("Content-Type").startswith("multipart/form-data")
    assert b'filename="report.pdf"' in request.body
    assert b"application/pdf" in request.body
    assert b'name="messaging_product"' in request.body


def test_upload_media_refuses_oversized_image_before_sending(maton_conn: LoopbackServer, tmp_path) -> None:
    image = tmp_path / "big.png"
    image.write_bytes(b"\0" * (5 * 1024 * 1024 + 1))

    with pytest.raises(ValueError, match="at most 5242880 bytes"):
        MatonHook().upload_media(image)

    assert maton_conn.requests == []


# --- async path ----------------------------------------------------------------------------------


async def test_async_send_shares_the_retry_rules(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(400, graph_error(130429)), Reply(json=sent("wamid.ASYNC")))
    hook = MatonHook()

    answer = await hook.asend_message(TEXT)
    await hook.aclose()

    assert MatonHook.message_id(answer) == "wamid.ASYNC"
    assert len(maton_conn.requests) == 2
    assert maton_conn.requests[1].header("Authorization") == f"Bearer {TEST_KEY}"


async def test_async_500_on_send_is_not_repeated(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(502, {}))

    with pytest.raises(WhatsAppDeliveryUnknownError):
        await MatonHook().asend_message(TEXT)

    assert len(maton_conn.requests) == 1


async def test_async_template_listing(maton_conn: LoopbackServer) -> None:
    maton_conn.route(
        "GET",
        r"/message_templates$",
        Reply(json={"data": [{"name": "t", "status": "APPROVED"}], "paging": {}}),
    )

    assert await MatonHook().alist_templates(status="APPROVED") == [{"name": "t", "status": "APPROVED"}]


# --- the rate limiter ----------------------------------------------------------------------------


def test_client_side_limiter_keeps_under_ten_per_second(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(json=sent()))
    hook = MatonHook(rate_limit=10)

    for _ in range(25):
        hook.send_message(TEXT)

    arrivals = [r.at for r in maton_conn.requests]
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert busiest <= 10


def test_transient_errors_are_typed_retryable() -> None:
    from airflow_provider_whatsapp.errors import error_from_response

    assert isinstance(error_from_response(503, {}, may_have_taken_effect=True), WhatsAppTransientError)
    assert isinstance(
        error_from_response(500, graph_error(131000), may_have_taken_effect=True), WhatsAppTransientError
    )
    assert not isinstance(error_from_response(500, {}, may_have_taken_effect=True), WhatsAppTransientError)


def test_pair_rate_error_is_retryable_and_carries_only_the_servers_retry_after() -> None:
    from airflow_provider_whatsapp.errors import WhatsAppPairRateLimitError, error_from_response

    error = error_from_response(400, graph_error(131056), may_have_taken_effect=True)
    told = error_from_response(400, graph_error(131056), retry_after=2.0, may_have_taken_effect=True)

    assert isinstance(error, WhatsAppPairRateLimitError) and isinstance(told, WhatsAppPairRateLimitError)
    # The wait without a Retry-After (Meta's 6 s, doubling) is the retry policy's: tests/test_pacing.py.
    assert error.retry_after is None and told.retry_after == 2.0


def _webp(size: int, *, animated: bool) -> bytes:
    flags = 0x02 if animated else 0x00
    header = (
        b"RIFF" + (size - 8).to_bytes(4, "little") + b"WEBPVP8X" + (10).to_bytes(4, "little") + bytes([flags])
    )
    return header + b"\0" * (size - len(header))


def test_animated_sticker_may_be_up_to_500_kb(maton_conn: LoopbackServer, tmp_path) -> None:
    maton_conn.route("POST", rf"/{PHONE_NUMBER_ID}/media$", Reply(json={"id": "sticker-1"}))
    animated = tmp_path / "wave.webp"
    animated.write_bytes(_webp(300 * 1024, animated=True))
    still = tmp_path / "still.webp"
    still.write_bytes(_webp(300 * 1024, animated=False))

    assert MatonHook().upload_media(animated) == "sticker-1"
    with pytest.raises(ValueError, match="at most 102400 bytes"):
        MatonHook().upload_media(still)

    assert len(maton_conn.requests) == 1
    assert maton_conn.requests[0].body.count(b"RIFF") == 1  # the file went whole, from its first byte


# --- rate_limit is checked where it is given --------------------------------------------------------

BAD_RATES = ["abc", "", float("nan"), float("inf"), -1, 0.001, 0.05, 1001, 10**400, True, [5]]


@pytest.mark.parametrize("rate", BAD_RATES, ids=repr)
def test_a_bad_rate_limit_argument_is_refused_naming_it(rate: object) -> None:
    with pytest.raises(WhatsAppConfigurationError, match=r"rate_limit in the MatonHook arguments must be 0"):
        MatonHook(rate_limit=rate)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [r for r in BAD_RATES if r != ""] + ["nan", "1e999"], ids=repr)
def test_a_bad_rate_limit_in_the_extra_is_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer, rate: object
) -> None:
    # Python's JSON reads NaN and Infinity, so the extra can hold them.
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(loopback.url, rate_limit=rate))
    loopback.route("POST", MESSAGES, Reply(json=sent()))

    with pytest.raises(WhatsAppConfigurationError, match=r"rate_limit in the extra of 'maton_default'"):
        MatonHook().send_message(TEXT)

    assert loopback.requests == []


@pytest.mark.parametrize(("rate", "expected"), [(0, 0.0), ("2.5", 2.5), (0.1, 0.1), (1000, 1000.0)])
def test_a_rate_limit_within_bounds_is_used(
    maton_conn: LoopbackServer, rate: object, expected: float
) -> None:
    assert MatonHook(rate_limit=rate).settings.rate_limit == expected  # type: ignore[arg-type]


# --- answers of an unexpected shape are provider errors, never raw exceptions ---------------------

V = r"^/whatsapp-business/v21\.0"
ACCESSORS = {
    "list_phone_numbers": ("GET", rf"{V}/{WABA_ID}/phone_numbers$", lambda h: h.list_phone_numbers()),
    "get_business_profile": (
        "GET",
        rf"{V}/{PHONE_NUMBER_ID}/whatsapp_business_profile$",
        lambda h: h.get_business_profile(),
    ),
    "get_media": ("GET", rf"{V}/4490003$", lambda h: h.get_media("4490003")),
    "aget_media": ("GET", rf"{V}/4490003$", lambda h: asyncio.run(h.aget_media("4490003"))),
    "download_media": ("GET", rf"{V}/4490003$", lambda h: h.download_media("4490003", "/nonexistent/x")),
    "list_templates": ("GET", rf"{V}/{WABA_ID}/message_templates$", lambda h: h.list_templates()),
    "alist_templates": (
        "GET",
        rf"{V}/{WABA_ID}/message_templates$",
        lambda h: asyncio.run(h.alist_templates()),
    ),
    "list_maton_connections": ("GET", r"^/connections$", lambda h: h.list_maton_connections()),
    "get_maton_connection": ("GET", r"^/connections/c-1$", lambda h: h.get_maton_connection("c-1")),
    "create_maton_connection": ("POST", r"^/connections$", lambda h: h.create_maton_connection()),
}
# Each accessor's answer: the key it reads, and values of the wrong shape for it.
SHAPES = {
    "list_phone_numbers": ("data", ["abc", {"a": 1}, [1, 2], ["x"]]),
    "get_business_profile": ("data", ["abc", {"a": 1}, [7], 3]),
    "get_media": ("url", [["https://x"], {"u": 1}, 5, True, ""]),
    "aget_media": ("url", [["https://x"], 5, ""]),
    "download_media": ("url", [["https://x"], 5]),
    "list_templates": ("data", ["abcdef", {"name": "x"}, [1, "t"]]),
    "alist_templates": ("data", ["abcdef", [None]]),
    "list_maton_connections": ("connections", ["abc", {"connection_id": 1}, ["c-1"]]),
    "get_maton_connection": ("connection", ["abc", [1], 5]),
    "create_maton_connection": ("connection", ["abc", [1]]),
}
SHAPE_CASES = [
    pytest.param(name, {key: value}, id=f"{name}-{key}={value!r}")
    for name, (key, values) in SHAPES.items()
    for value in values
] + [
    pytest.param("get_media", {}, id="get_media-no-url"),
    pytest.param("list_templates", {"data": [], "paging": "next"}, id="list_templates-paging-string"),
    pytest.param("list_templates", {"data": [], "paging": ["next"]}, id="list_templates-paging-list"),
    pytest.param(
        "list_templates",
        {"data": [], "paging": {"next": "u", "cursors": "c"}},
        id="list_templates-cursors-str",
    ),
    pytest.param(
        "alist_templates",
        {"data": [], "paging": {"next": "u", "cursors": {"after": 5}}},
        id="alist_templates-after-int",
    ),
]


@pytest.mark.parametrize(("accessor", "answer"), SHAPE_CASES)
def test_an_answer_of_an_unexpected_shape_is_a_transient_provider_error(
    maton_conn: LoopbackServer, accessor: str, answer: dict[str, object]
) -> None:
    method, path, call = ACCESSORS[accessor]
    maton_conn.route(method, path, Reply(json=answer))

    with pytest.raises(WhatsAppTransientError) as caught:
        call(MatonHook(rate_limit=0, max_attempts=1))

    assert "should" in str(caught.value) or "empty" in str(caught.value)
    for value in answer.values():  # the shape is described, the values are not quoted
        if isinstance(value, str) and len(value) > 3:
            assert value not in str(caught.value)
    assert len(maton_conn.requests) == 1


def test_test_connection_reports_an_odd_answer_instead_of_crashing(maton_conn: LoopbackServer) -> None:
    maton_conn.route("GET", r"^/connections$", Reply(json={"connections": ["c-1"]}))

    ok, message = MatonHook(rate_limit=0, max_attempts=1).test_connection()

    assert ok is False
    assert "'connections'" in message


# --- template listing always ends ----------------------------------------------------------------

TEMPLATES = rf"{V}/{WABA_ID}/message_templates$"


def _page(after: str) -> dict[str, object]:
    return {
        "data": [{"name": f"t_{after}"}],
        "paging": {"next": "https://x/next", "cursors": {"after": after}},
    }


@pytest.mark.parametrize("call", ["sync", "async"])
def test_a_cursor_seen_before_ends_the_listing(maton_conn: LoopbackServer, call: str) -> None:
    maton_conn.route("GET", TEMPLATES, Reply(json=_page("A")), Reply(json=_page("B")), Reply(json=_page("A")))
    hook = MatonHook(rate_limit=0)

    with pytest.raises(WhatsAppTransientError, match="points back to a page already read"):
        hook.list_templates() if call == "sync" else asyncio.run(hook.alist_templates())

    assert [r.query.get("after") for r in maton_conn.requests] == [None, ["A"], ["B"]]


def test_a_listing_that_never_ends_stops_at_the_page_cap(
    maton_conn: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("airflow_provider_whatsapp.hooks.maton.MAX_TEMPLATE_PAGES", 5)
    counter = iter(range(10**6))
    maton_conn.route("GET", TEMPLATES, lambda _request: Reply(json=_page(f"c{next(counter)}")))

    with pytest.raises(WhatsAppTransientError, match="still more pages after 5"):
        MatonHook(rate_limit=0).list_templates()

    assert len(maton_conn.requests) == 5


def test_every_page_is_followed_until_next_is_gone(maton_conn: LoopbackServer) -> None:
    last = {"data": [{"name": "t_C"}], "paging": {"cursors": {"after": "C"}}}
    maton_conn.route("GET", TEMPLATES, Reply(json=_page("A")), Reply(json=_page("B")), Reply(json=last))

    names = [t["name"] for t in MatonHook(rate_limit=0).list_templates()]

    assert names == ["t_A", "t_B", "t_C"]


def test_a_read_answered_408_is_retried_but_a_send_is_not(maton_conn: LoopbackServer) -> None:
    maton_conn.route(
        "GET", rf"{V}/{PHONE_NUMBER_ID}$", Reply(408, body=b""), Reply(json={"id": PHONE_NUMBER_ID})
    )
    maton_conn.route("POST", MESSAGES, Reply(408, body=b""), Reply(json=sent()))
    hook = MatonHook(rate_limit=0)

    assert hook.get_phone_number() == {"id": PHONE_NUMBER_ID}
    with pytest.raises(WhatsAppDeliveryUnknownError, match="HTTP 408"):
        hook.send_message(TEXT)

    assert [r.method for r in maton_conn.requests] == ["GET", "GET", "POST"]


@pytest.mark.parametrize("url", ["http://exa\x00mple/x", "http://[::1/x", "ftp://example/x"])
def test_a_media_url_that_cannot_be_requested_is_a_provider_error(
    maton_conn: LoopbackServer, tmp_path: object, url: str
) -> None:
    maton_conn.route("GET", rf"{V}/4490009$", Reply(json={"url": url}))

    with pytest.raises(WhatsAppConfigurationError, match="is not usable") as caught:
        MatonHook(rate_limit=0).download_media("4490009", f"{tmp_path}/m.bin")

    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert len(maton_conn.requests) == 1


# --- webhook subscription ------------------------------------------------------------------------

SUBSCRIBED_APPS = rf"^/whatsapp-business/v21\.0/{WABA_ID}/subscribed_apps$"
CALLBACK = "https://airflow.example.com/whatsapp/webhooks/Zx9"
VERIFY_TOKEN = "verify-token-7c1d0e9a"


def test_subscribe_webhooks_posts_the_callback_override(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", SUBSCRIBED_APPS, Reply(json={"success": True}))

    assert MatonHook().subscribe_webhooks(CALLBACK, VERIFY_TOKEN) == {"success": True}

    (request,) = maton_conn.requests
    assert request.json == {"override_callback_uri": CALLBACK, "verify_token": VERIFY_TOKEN}


def test_get_webhook_subscription_reads_the_override(maton_conn: LoopbackServer) -> None:
    app = {"whatsapp_business_api_data": {"id": "1", "name": "Maton"}, "override_callback_uri": CALLBACK}
    maton_conn.route("GET", SUBSCRIBED_APPS, Reply(json={"data": [app]}))

    assert MatonHook().get_webhook_subscription() == {
        "subscribed": True,
        "callback_url": CALLBACK,
        "apps": [app],
    }


@pytest.mark.parametrize(
    "url",
    [
        "http://airflow.example.com/hook",  # plain http off this machine
        "ftp://127.0.0.1/hook",
        "https://user:secret@airflow.example.com/hook",
        "https://airflow.example.com/hook#part",
        "https:///no-host",
        "https://airflow.example.com/" + "a" * 3000,
        12345,
    ],
)
def test_a_bad_callback_url_is_refused_before_any_request(maton_conn: LoopbackServer, url: object) -> None:
    with pytest.raises(WhatsAppValidationError, match=r"^callback_url: .*https URL"):
        MatonHook().subscribe_webhooks(url, VERIFY_TOKEN)  # type: ignore[arg-type]
    assert maton_conn.requests == []


def test_a_bad_verify_token_is_refused_without_showing_it(maton_conn: LoopbackServer) -> None:
    with pytest.raises(WhatsAppValidationError, match=r"^verify_token: ") as caught:
        MatonHook().subscribe_webhooks("http://127.0.0.1:8080/hook", "secret with spaces")
    assert "secret" not in str(caught.value)
    assert maton_conn.requests == []


def test_the_verify_token_echoed_in_an_error_is_scrubbed(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", SUBSCRIBED_APPS, Reply(400, graph_error(100, f"token {VERIFY_TOKEN} refused")))

    with pytest.raises(WhatsAppPermanentError) as caught:
        MatonHook(max_attempts=1).subscribe_webhooks(CALLBACK, VERIFY_TOKEN)
    assert VERIFY_TOKEN not in str(caught.value)
