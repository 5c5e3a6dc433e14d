"""The API key goes only where it belongs, and nothing a server echoes can carry it further.

Each key here is unique to its test (and full of characters that encode differently in a URL, JSON and
HTML), so a pass never rests on a key another test registered with the process's scrub.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import pickle
import traceback
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS
from airflow_provider_whatsapp.errors import WhatsAppError
from airflow_provider_whatsapp.hooks._media_files import may_send_key
from airflow_provider_whatsapp.hooks._settings import settings_from_connection
from airflow_provider_whatsapp.hooks.maton import MatonHook
from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from airflow_provider_whatsapp.operators.messages import WhatsAppSendTextOperator
from airflow_provider_whatsapp.sensors.template import WhatsAppTemplateApprovalSensor
from airflow_provider_whatsapp.triggers.template import WhatsAppTemplateApprovalTrigger
from tests.bulk.helpers import context
from tests.conftest import MESSAGES, PHONE_NUMBER_ID, WABA_ID
from tests.loopback import LoopbackServer, Recorded, Reply, graph_error, sent

TEMPLATES = rf"^/whatsapp-business/v21\.0/{WABA_ID}/message_templates$"
CONTENT = b"%PDF-1.4\n media bytes"


def new_key() -> str:
    return f"mtn-{uuid.uuid4().hex}/+&=\"<'>"


def spellings(key: str) -> set[str]:
    """The key as is and as a server might write it back; also its first 12 characters, so a key cut
    in half by an excerpt still counts as a leak."""
    encoded = {quote(key, safe=""), quote_plus(key), json.dumps(key)[1:-1], html.escape(key)}
    return {key, key[:12], *encoded}


def leaked(key: str, *texts: str) -> list[str]:
    return [form for form in spellings(key) for text in texts if form in text]


def connect(monkeypatch: pytest.MonkeyPatch, server: LoopbackServer, key: str, **extra: Any) -> None:
    fields = {"phone_number_id": PHONE_NUMBER_ID, "waba_id": WABA_ID, **extra}
    conn = {"conn_type": "maton", "host": server.url, "password": key, "extra": fields}
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", json.dumps(conn))


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer) -> str:
    """A fresh key in ``maton_default``, pointing at the loopback gateway."""
    value = new_key()
    connect(monkeypatch, loopback, value)
    return value


# --- may_send_key: the rule as a pure function ----------------------------------------------------

MATON = "https://api.maton.ai"
GRAPH = "https://graph.facebook.com"

KEY_RULE = [
    # through Maton: the gateway's exact origin only
    ("whatsapp-business", MATON, "https://api.maton.ai/media/1", True),
    ("whatsapp-business", MATON, "https://API.maton.ai:443/media/1", True),
    ("whatsapp-business", MATON, "http://api.maton.ai/media/1", False),
    ("whatsapp-business", MATON, "https://api.maton.ai:8443/media/1", False),
    ("whatsapp-business", MATON, "https://api.maton.ai.evil.io/media/1", False),
    ("whatsapp-business", MATON, "https://api.maton.ai@evil.io/media/1", False),
    ("whatsapp-business", MATON, "https://lookaside.fbsbx.com/whatsapp_business/1", False),
    ("whatsapp-business", "http://127.0.0.1:8080", "http://127.0.0.1:8080/m", True),
    ("whatsapp-business", "http://127.0.0.1:8080", "http://127.0.0.1:8081/m", False),
    ("whatsapp-business", "http://127.0.0.1:8080", "http://localhost:8080/m", False),
    # Graph direct: the base's origin, and Meta's media hosts over https on a domain boundary
    ("", GRAPH, "https://graph.facebook.com/v21.0/1", True),
    ("", GRAPH, "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1", True),
    ("", GRAPH, "https://mmg.whatsapp.net/v/t62/1", True),
    ("", GRAPH, "https://facebook.com/x", True),
    ("", GRAPH, "https://evilfacebook.com/x", False),
    ("", GRAPH, "https://facebook.com.evil.io/x", False),
    ("", GRAPH, "https://lookaside.fbsbx.com.evil.io/x", False),
    ("", GRAPH, "https://notwhatsapp.net/x", False),
    ("", GRAPH, "http://lookaside.fbsbx.com/x", False),
    ("", GRAPH, "https://lookaside.fbsbx.com:8443/x", False),
    ("", GRAPH, "https://evil.io/?u=https://lookaside.fbsbx.com", False),
    ("", GRAPH, "http://[not a url", False),
    ("", GRAPH, "/relative/path", False),
]


@pytest.mark.parametrize(("app", "base", "url", "expected"), KEY_RULE)
def test_may_send_key_rule(app: str, base: str, url: str, expected: bool) -> None:
    s = settings_from_connection(
        api_key="k" * 20, host=base, port=None, schema=None, extra={"app": app}, conn_id="c"
    )

    assert may_send_key(s, url) is expected


def test_may_send_key_refuses_a_url_that_is_not_text() -> None:
    s = settings_from_connection(
        api_key="k" * 20, host=GRAPH, port=None, schema=None, extra={"app": ""}, conn_id="c"
    )

    assert may_send_key(s, {"url": "https://lookaside.fbsbx.com"}) is False  # type: ignore[arg-type]


# --- may_send_key through download_media and two real servers ------------------------------------


def serve_media(server: LoopbackServer, url: str) -> None:
    info = {
        "url": url,
        "mime_type": "application/pdf",
        "sha256": hashlib.sha256(CONTENT).hexdigest(),
        "id": "4490001",
    }
    server.route("GET", r"/v21\.0/4490001$", Reply(json=info))
    server.route("GET", r"^/media-bytes/4490001$", Reply(body=CONTENT))


@pytest.mark.parametrize("app", ["whatsapp-business", ""], ids=["maton", "graph-direct"])
def test_download_sends_the_key_to_the_gateways_origin_only(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer, tmp_path: Path, app: str
) -> None:
    secret = new_key()
    connect(monkeypatch, loopback, secret, app=app)
    port = loopback.url.rsplit(":", 1)[1]
    with LoopbackServer() as other:  # same host, another port: another origin
        other.route("GET", r"^/media-bytes/4490001$", Reply(body=CONTENT))
        other_port = other.url.rsplit(":", 1)[1]
        targets = {
            "gateway": f"{loopback.url}/media-bytes/4490001",
            "other port": f"http://127.0.0.1:{other_port}/media-bytes/4490001",
            "other host name": f"http://localhost:{port}/media-bytes/4490001",
        }
        got: dict[str, str | None] = {}
        for name, url in targets.items():
            serve_media(loopback, url)
            MatonHook().download_media("4490001", tmp_path / f"{name}.pdf")
            server = other if name == "other port" else loopback
            got[name] = server.requests[-1].header("Authorization")
            assert server.requests[-1].path == "/media-bytes/4490001"

    assert got == {"gateway": f"Bearer {secret}", "other port": None, "other host name": None}


# --- scrubbing what a server echoes ---------------------------------------------------------------


def html_echo(key: str) -> bytes:
    # The error keeps a 300-character excerpt: the raw key straddles that cut, so only a scrub before
    # the excerpt is taken keeps its first half out.
    page = "<html><body>" + "x" * 270 + key + " | " + quote(key, safe="") + " | "
    page += json.dumps(key) + " | " + html.escape(key) + "</body></html>"
    return page.encode()


ECHOES = {
    "graph error": lambda key: Reply(
        400,
        {
            "error": {
                **graph_error(131009, f"Bad value near Bearer {key}", details=f"header was {key}")["error"],
                "fbtrace_id": key,
            }
        },
    ),
    "maton 401 with an HTML page": lambda key: Reply(
        401, body=html_echo(key), headers={"Content-Type": "text/html"}
    ),
    "2xx without a message id": lambda key: Reply(json={"messages": [], "echo": key, key: "as a field"}),
    "5xx text": lambda key: Reply(500, body=f"upstream said: Authorization: Bearer {key}".encode()),
}


@pytest.mark.parametrize("echo", list(ECHOES))
def test_an_echoed_key_is_scrubbed_from_the_error(
    key: str, loopback: LoopbackServer, caplog: pytest.LogCaptureFixture, echo: str
) -> None:
    loopback.route("POST", MESSAGES, ECHOES[echo](key))
    caplog.set_level(logging.DEBUG)

    with pytest.raises(WhatsAppError) as raised:
        WhatsAppSendTextOperator(task_id="t", to="+14155550100", body="hi").execute({})

    error = raised.value
    (request,) = loopback.requests
    assert request.header("Authorization") == f"Bearer {key}"  # the server had the key to echo
    assert "***" in str(error)  # the echo reached the error, scrubbed
    rebuilt = pickle.loads(pickle.dumps(error))  # how an error leaves a triggerer
    texts = [str(error), repr(error), repr(error.args), str(error.details), str(error.fbtrace_id)]
    texts += [str(rebuilt), repr(rebuilt), caplog.text]
    assert leaked(key, *texts) == []


def test_bulk_journal_and_xcom_carry_no_echoed_key(
    key: str, loopback: LoopbackServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    echoes = {
        "14155550001": ECHOES["graph error"](key),
        "14155550002": ECHOES["2xx without a message id"](key),
        "14155550003": ECHOES["5xx text"](key),
        "14155550004": Reply(json=sent(f"wamid.{key}")),  # even an "id" is server text
    }

    def answer(request: Recorded) -> Reply:
        return echoes[request.json["to"]]

    loopback.route("POST", MESSAGES, answer)
    caplog.set_level(logging.DEBUG)
    journal = tmp_path / "journal"
    op = WhatsAppSendBulkOperator(
        task_id="bulk",
        recipients=[f"+{number}" for number in echoes],
        message={"type": "text", "text": {"body": "hi"}},
        max_failure_ratio=1.0,
        progress_path=str(journal),
    )

    result = op.execute(context())

    assert len(loopback.requests) == 4
    assert {r.header("Authorization") for r in loopback.requests} == {f"Bearer {key}"}
    assert result["failed"] + result["unknown"] == 3 and result["sent"] == 1
    written = [p.read_text(errors="replace") for p in journal.rglob("*") if p.is_file()]
    assert written, "the journal was not written where the test looks"
    xcom = json.dumps(result)
    assert "***" in xcom
    assert leaked(key, xcom, caplog.text, *written) == []


def test_sensor_and_trigger_event_carry_no_echoed_key(key: str, loopback: LoopbackServer) -> None:
    import asyncio

    template = {
        "name": "daily_report",
        "language": "en_US",
        "status": "REJECTED",
        "category": key,
        "id": key,
        "rejected_reason": f"INVALID_FORMAT {key}",
    }
    loopback.route("GET", TEMPLATES, Reply(json={"data": [template]}))
    sensor = WhatsAppTemplateApprovalSensor(
        task_id="wait", template_name="daily_report", language_code="en_US"
    )
    with pytest.raises(WhatsAppError) as raised:
        sensor.poke({})
    trigger = WhatsAppTemplateApprovalTrigger(template_name="daily_report", language_code="en_US")

    async def events() -> list[Any]:
        return [event async for event in trigger.run()]

    (event,) = asyncio.run(asyncio.wait_for(events(), 20))

    assert event.payload["status"] == "failed"
    assert "INVALID_FORMAT ***" in event.payload["message"]
    assert len(loopback.requests) == 2
    assert leaked(key, str(raised.value), json.dumps(event.payload)) == []


# --- the scrub itself ------------------------------------------------------------------------------


def test_scrub_replaces_every_spelling_and_leaves_short_values_alone() -> None:
    from airflow_provider_whatsapp import redact as _redact

    secret = new_key()
    _redact.keep_secret(secret)
    _redact.keep_secret("abc")  # too short to mask without blotting out ordinary words

    forms = spellings(secret) - {secret[:12]}
    text = " ".join(sorted(forms))

    assert _redact.scrub(text) == " ".join(["***"] * len(forms))
    assert _redact.scrub("abc def") == "abc def"


def test_scrub_value_survives_an_answer_nested_as_deep_as_json_allows() -> None:
    from airflow_provider_whatsapp import redact as _redact

    secret = new_key()
    _redact.keep_secret(secret)
    deep: Any = [secret]
    for _ in range(990):
        deep = [deep]

    scrubbed = _redact.scrub_value(deep)

    assert innermost(scrubbed) == ["***"]
    assert innermost(deep) == [secret]  # the caller's value is not changed


def innermost(nested: Any) -> Any:
    while isinstance(nested[0], list):
        nested = nested[0]
    return nested


# --- registration reaches the process that writes the log -----------------------------------------


@pytest.mark.skipif(not AIRFLOW_V_3_PLUS, reason="the task supervisor channel exists on Airflow 3 only")
def test_key_is_sent_to_the_task_supervisor_sync_and_async(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer
) -> None:
    import asyncio

    from airflow.sdk.execution_time import task_runner

    class RecordingComms:
        """Stands in for the socket to the supervisor: records what the task process sends it."""

        def __init__(self) -> None:
            self.sent: list[Any] = []

        def send(self, msg: Any) -> None:
            self.sent.append(("send", msg))

        async def asend(self, msg: Any) -> None:
            self.sent.append(("asend", msg))

    comms = RecordingComms()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_MATON_DEFAULT", raising=False)
    sync_key, async_key = new_key(), new_key()
    monkeypatch.setenv("MATON_API_KEY", sync_key)
    MatonHook().settings  # noqa: B018 - resolving the settings is what registers the key
    monkeypatch.setenv("MATON_API_KEY", async_key)
    asyncio.run(MatonHook().aget_settings())

    masked = [(how, msg.value) for how, msg in comms.sent if type(msg).__name__ == "MaskSecret"]
    assert masked == [("send", sync_key), ("asend", async_key)]


# --- a key that cannot go into a header never shows in an error ----------------------------------

UNUSABLE_KEYS = {
    "non-ASCII": "sk-secrétkey123",
    "NUL byte": "sk-secret\x00key123",
    "inner space": "sk-secret key123",
    "inner newline": "sk-secret\nkey123",
    "tab": "sk-secret\tkey123",
}


def chain(error: BaseException) -> list[BaseException]:
    """``error`` and every exception it carries as its cause or context."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def assert_no_key(error: BaseException, key: str) -> None:
    texts = [traceback_text(error)]
    for exc in chain(error):
        texts += [str(exc), repr(exc), repr(exc.args)]
    secret = key[:8]  # "sk-secre", however the rest is escaped
    assert not [text for text in texts if secret in text]
    assert isinstance(error, WhatsAppError)


def traceback_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


@pytest.mark.parametrize("key", UNUSABLE_KEYS.values(), ids=UNUSABLE_KEYS.keys())
def test_an_unusable_key_in_the_connection_is_refused_naming_it_not_showing_it(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer, key: str
) -> None:
    connect(monkeypatch, loopback, key)

    with pytest.raises(WhatsAppError) as caught:
        MatonHook().send_message({"to": "14155550100", "type": "text", "text": {"body": "hi"}})

    assert "password of the connection 'maton_default'" in str(caught.value)
    assert_no_key(caught.value, key)
    assert loopback.requests == []


@pytest.mark.parametrize("key", [k for k in UNUSABLE_KEYS.values() if "\x00" not in k])  # no NUL in environ
def test_an_unusable_key_in_the_environment_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer, key: str
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_MATON_DEFAULT", raising=False)
    monkeypatch.setenv("MATON_API_KEY", key)
    monkeypatch.setenv("MATON_BASE_URL", loopback.url)

    with pytest.raises(WhatsAppError) as caught:
        MatonHook().request("GET", PHONE_NUMBER_ID)

    assert str(caught.value).startswith("MATON_API_KEY is not a usable API key")
    assert_no_key(caught.value, key)
    assert loopback.requests == []


@pytest.mark.parametrize("pasted", ["sk-pasted-key123\n", " sk-pasted-key123 ", "sk-pasted-key123\r\n"])
def test_a_pasted_key_is_sent_without_its_surrounding_whitespace(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer, pasted: str
) -> None:
    connect(monkeypatch, loopback, pasted)
    loopback.route("POST", MESSAGES, Reply(json=sent()))

    MatonHook().send_message({"to": "14155550100", "type": "text", "text": {"body": "hi"}})

    assert [r.header("Authorization") for r in loopback.requests] == ["Bearer sk-pasted-key123"]


# Keys the connection check would refuse, set on the settings directly: the transport itself must not
# let httpx's or h11's errors (which quote the header) escape or ride along as a cause.
RAW_KEYS = {**UNUSABLE_KEYS, "trailing newline": "sk-secretkey123\n", "trailing CR": "sk-secretkey123\r"}


@pytest.mark.parametrize("key", [k for k in RAW_KEYS.values() if " " not in k and "\t" not in k])
@pytest.mark.parametrize("call", ["sync", "async"])
def test_the_transport_never_carries_a_key_it_cannot_write(
    loopback: LoopbackServer, key: str, call: str
) -> None:
    import asyncio
    import dataclasses

    hook = MatonHook()
    settings = settings_from_connection(
        api_key="placeholder", host=loopback.url, port=None, schema=None, extra={}, conn_id="c"
    )
    hook._settings = dataclasses.replace(settings, api_key=key)
    payload = {"to": "14155550100", "type": "text", "text": {"body": "hi"}}

    with pytest.raises(WhatsAppError) as caught:
        if call == "sync":
            hook.send_message(payload, phone_number_id=PHONE_NUMBER_ID)
        else:
            asyncio.run(hook.asend_message(payload, phone_number_id=PHONE_NUMBER_ID))

    assert "could not be sent as valid HTTP" in str(caught.value)
    assert_no_key(caught.value, key)
    assert loopback.requests == []
