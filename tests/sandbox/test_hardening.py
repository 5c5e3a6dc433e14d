"""The sandbox is safe to leave running: what a web page or a broken client sends cannot hurt it.

Raw sockets wherever an HTTP client would tidy the request up (a foreign Host, a missing body, garbage).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from contextlib import suppress
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_whatsapp.sandbox import WhatsAppSandbox
from airflow_provider_whatsapp.sandbox.server import SandboxServer
from airflow_provider_whatsapp.sandbox.state import SandboxState
from tests.sandbox.conftest import RECIPIENT, messages_path, text

_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3}) [^\r\n]*$")


def exchange(port: int, raw: bytes, *, timeout: float = 15.0) -> bytes:
    """Send ``raw``, close our side, and return every byte the sandbox answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with suppress(OSError):
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        chunks: list[bytes] = []
        with suppress(ConnectionResetError):
            while data := sock.recv(65536):
                chunks.append(data)
    return b"".join(chunks)


def parse_responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Every HTTP response in ``data`` as (status, lower-case headers, body); fails on anything else."""
    responses = []
    while data:
        head, separator, rest = data.partition(b"\r\n\r\n")
        assert separator, f"no end of headers in {data[:200]!r}"
        status_line, *header_lines = head.split(b"\r\n")
        match = _STATUS_LINE.match(status_line)
        assert match, f"not an HTTP status line: {status_line[:200]!r}"
        headers = {}
        for line in header_lines:
            name, colon, value = line.decode("latin-1").partition(":")
            assert colon, f"malformed header line {line!r}"
            headers[name.strip().lower()] = value.strip()
        status = int(match.group(1))
        length = 0 if status < 200 else int(headers["content-length"])
        assert len(rest) >= length, "body shorter than its Content-Length"
        responses.append((status, headers, rest[:length]))
        data = rest[length:]
    return responses


def assert_graph_answer(data: bytes, statuses: tuple[int, ...] | None = None) -> dict[str, Any]:
    """``data`` is one final HTTP answer, a 4xx with Graph's error body; returns the error object.

    Maton's control plane (``/connections``) refuses a well-formed request of the wrong content in
    Maton's own shape, which has ``status`` instead of Graph's ``code`` and ``fbtrace_id``.
    """
    final = [r for r in parse_responses(data) if r[0] >= 200]
    assert len(final) == 1, data[:500]
    status, headers, body = final[0]
    assert 400 <= status < 500 and (statuses is None or status in statuses), data[:500]
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert isinstance(error["message"], str) and error["message"]
    if error.get("status") == str(status):  # Maton's shape
        return error
    assert error["type"] == "OAuthException"
    assert isinstance(error["code"], int)
    assert error["fbtrace_id"]
    assert "Traceback" not in body.decode()
    return error


def request(
    port: int, method: str, path: str, *, host: str | None = None, headers: str = "", body: bytes = b""
) -> bytes:
    host_line = "" if host is None else f"Host: {host}\r\n"
    head = f"{method} {path} HTTP/1.1\r\n{host_line}{headers}Content-Length: {len(body)}\r\n\r\n"
    return exchange(port, head.encode() + body)


def still_serving(sandbox: WhatsAppSandbox) -> None:
    assert httpx.get(f"{sandbox.url}/_sandbox/health", timeout=10).json() == {"ok": True}


def inbound_body(sender: str = RECIPIENT) -> bytes:
    return json.dumps({"from": sender, "text": "hello"}).encode()


# --- DNS rebinding: only loopback names ----------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.1.nip.io:{port}",
        "localhost.evil.example",
        "10.0.0.1",
        "",
    ],
)
def test_a_foreign_host_is_refused_before_anything_happens(
    whatsapp_sandbox: WhatsAppSandbox, host: str
) -> None:
    answer = request(
        whatsapp_sandbox.port,
        "POST",
        "/_sandbox/inbound",
        host=host.format(port=whatsapp_sandbox.port),
        headers="Content-Type: application/json\r\n",
        body=inbound_body(),
    )

    assert_graph_answer(answer, (400, 421))
    assert whatsapp_sandbox.state.messages == []
    still_serving(whatsapp_sandbox)


def test_a_missing_or_doubled_host_is_refused(whatsapp_sandbox: WhatsAppSandbox) -> None:
    port = whatsapp_sandbox.port
    assert_graph_answer(request(port, "GET", "/_sandbox/health"), (400,))
    doubled = f"Host: 127.0.0.1:{port}\r\nHost: evil.example\r\n"
    assert_graph_answer(request(port, "GET", "/_sandbox/health", headers=doubled), (400,))


@pytest.mark.parametrize(
    "host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "LocalHost", "127.0.0.1"]
)
def test_loopback_hosts_are_served(whatsapp_sandbox: WhatsAppSandbox, host: str) -> None:
    answer = request(
        whatsapp_sandbox.port, "GET", "/_sandbox/health", host=host.format(port=whatsapp_sandbox.port)
    )
    ((status, _, body),) = parse_responses(answer)
    assert (status, json.loads(body)) == (200, {"ok": True})


def test_an_absolute_target_cannot_name_another_host(whatsapp_sandbox: WhatsAppSandbox) -> None:
    answer = request(
        whatsapp_sandbox.port,
        "GET",
        "http://evil.example/_sandbox/health",
        host=f"127.0.0.1:{whatsapp_sandbox.port}",
    )
    assert_graph_answer(answer, (400,))


def test_links_name_the_bound_address_not_the_host_header(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    media_id = client.post(
        f"/v21.0/{whatsapp_sandbox.phone_number_id}/media",
        files={"file": ("a.pdf", b"%PDF-1.4", "application/pdf")},
        data={"messaging_product": "whatsapp"},
    ).json()["id"]
    other_name = {"Host": f"localhost:{whatsapp_sandbox.port}"}

    media = client.get(f"/v21.0/{media_id}", headers=other_name).json()
    templates = client.get(
        f"/v21.0/{whatsapp_sandbox.waba_id}/message_templates", params={"limit": 1}, headers=other_name
    ).json()
    connection = client.post("/connections", json={"app": "whatsapp-business"}, headers=other_name).json()

    own = f"{whatsapp_sandbox.url}/"
    assert media["url"].startswith(own)
    assert templates["paging"]["next"].startswith(own)
    assert connection["connection"]["url"].startswith(own)


# --- cross-site requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_a_sandbox_change_needs_a_json_content_type(
    whatsapp_sandbox: WhatsAppSandbox, content_type: str | None
) -> None:
    """A page on another site can POST these content types without a preflight; JSON it cannot."""
    headers = f"Content-Type: {content_type}\r\n" if content_type else ""
    host = f"127.0.0.1:{whatsapp_sandbox.port}"
    for path, body in (("/_sandbox/inbound", inbound_body()), ("/_sandbox/reset", b"")):
        answer = request(whatsapp_sandbox.port, "POST", path, host=host, headers=headers, body=body)
        assert_graph_answer(answer, (415,))
    assert whatsapp_sandbox.state.messages == []
    assert whatsapp_sandbox.templates()  # not reset


def test_an_api_post_with_the_key_in_the_query_needs_json(whatsapp_sandbox: WhatsAppSandbox) -> None:
    """Without an Authorization header, the key in the URL could come from a cross-site form."""
    url = f"{whatsapp_sandbox.url}{messages_path(whatsapp_sandbox)}?access_token={whatsapp_sandbox.api_key}"
    response = httpx.post(url, content=json.dumps(text("hi")), headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert whatsapp_sandbox.messages == []
    assert httpx.post(url, json=text("hi")).status_code == 200


def test_a_foreign_origin_is_refused(whatsapp_sandbox: WhatsAppSandbox) -> None:
    response = httpx.post(
        f"{whatsapp_sandbox.url}/_sandbox/inbound",
        json={"from": RECIPIENT, "text": "hi"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == 100
    assert whatsapp_sandbox.state.messages == []
    own = httpx.post(
        f"{whatsapp_sandbox.url}/_sandbox/inbound",
        json={"from": RECIPIENT, "text": "hi"},
        headers={"Origin": whatsapp_sandbox.url},
    )
    assert own.status_code == 200


# --- what is served ------------------------------------------------------------------------------

HOSTILE_HTML = b"<!doctype html><script>fetch('/_sandbox/reset', {method: 'POST'})</script>"


def test_uploaded_html_is_served_as_an_inert_attachment(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    media_id = client.post(
        f"/v21.0/{whatsapp_sandbox.phone_number_id}/media",
        files={"file": ('x"\r\nSet-Cookie: a=b.html', HOSTILE_HTML, "text/html")},
        data={"messaging_product": "whatsapp", "type": "text/html"},
    ).json()["id"]

    for response in (
        httpx.get(f"{whatsapp_sandbox.url}/_sandbox/media/{media_id}"),
        client.get(f"/_media/{media_id}"),
    ):
        assert response.status_code == 200
        assert response.content == HOSTILE_HTML
        assert response.headers["content-disposition"].startswith("attachment;")
        assert "set-cookie" not in response.headers
        assert response.headers["x-content-type-options"] == "nosniff"
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "sandbox" in policy


def test_a_mime_type_that_could_inject_headers_is_refused(
    whatsapp_sandbox: WhatsAppSandbox, client: httpx.Client
) -> None:
    response = client.post(
        f"/v21.0/{whatsapp_sandbox.phone_number_id}/media",
        files={"file": ("a.bin", b"data", "application/pdf")},
        data={"messaging_product": "whatsapp", "type": "text/html\r\nSet-Cookie: a=b"},
    )
    assert response.status_code == 400
    assert "MIME type" in response.json()["error"]["error_data"]["details"]
    assert whatsapp_sandbox.state.media == {}


def test_the_inbox_page_allows_only_its_own_script(whatsapp_sandbox: WhatsAppSandbox) -> None:
    response = httpx.get(whatsapp_sandbox.url + "/")
    policy = dict(
        part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"


# --- connections ---------------------------------------------------------------------------------


def test_a_burst_of_connections_queues_while_the_server_is_busy() -> None:
    """128 clients connecting at once wait in the listen queue instead of being dropped."""
    server = SandboxServer(0, SandboxState())  # listening, but not accepting yet
    sockets: list[socket.socket] = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    try:
        for _ in range(128):
            sockets.append(socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5))
        thread.start()
        sockets[-1].sendall(b"GET /_sandbox/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sockets[-1].recv(100).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in sockets:
            sock.close()
        if thread.is_alive():
            server.shutdown()
        server.server_close()


def test_a_client_that_never_sends_its_body_is_cut_off(
    whatsapp_sandbox: WhatsAppSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SandboxServer, "connection_timeout", 1.0)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", whatsapp_sandbox.port), timeout=15) as sock:
        sock.sendall(
            b"POST /_sandbox/inbound HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"from": '
        )
        answer = b""
        while data := sock.recv(65536):  # the sandbox answers and closes; we never close first
            answer += data

    assert time.monotonic() - started < 14
    assert_graph_answer(answer, (408,))
    assert whatsapp_sandbox.state.messages == []
    still_serving(whatsapp_sandbox)


# --- malformed HTTP ------------------------------------------------------------------------------

MALFORMED = {
    "garbage request line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 junk\r\n\r\n",
    "no HTTP version": b"GET /_sandbox/health\r\n\r\n",
    "bad version": b"GET / HTTP/x.y\r\nHost: 127.0.0.1\r\n\r\n",
    "HTTP/2 request line": b"GET / HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n",
    "unknown method": b"BREW /_sandbox/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "header without colon": b"GET /_sandbox/health HTTP/1.1\r\nHost: 127.0.0.1\r\nnot a header\r\n\r\n",
    "folded header": b"GET /_sandbox/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: b\r\n c\r\n\r\n",
    "non-numeric length": b"POST /_sandbox/reset HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: abc\r\n\r\n{}",
    "negative length": b"POST /_sandbox/reset HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: -5\r\n\r\n{}",
    "two lengths": b"POST /_sandbox/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "length and chunked": b"POST /_sandbox/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
    "chunk size garbage": b"POST /_sandbox/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "chunk shorter than its size": b"POST /_sandbox/reset HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{}",
    "unknown transfer coding": b"POST /_sandbox/reset HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "body shorter than its length": b"POST /_sandbox/reset HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 50\r\n\r\n{}",
    "too large": b"POST /_sandbox/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 99999999999\r\n\r\n{}",
    "request line too long": b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "header too long": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: " + b"a" * 70000 + b"\r\n\r\n",
    "too many headers": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",
}


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_http_gets_a_graph_error(whatsapp_sandbox: WhatsAppSandbox, raw: bytes) -> None:
    assert_graph_answer(exchange(whatsapp_sandbox.port, raw))
    assert whatsapp_sandbox.templates()  # nothing was reset
    still_serving(whatsapp_sandbox)


@pytest.mark.parametrize(("extra", "status"), [(0, 400), (1, 413)], ids=["at-the-bound", "over-the-bound"])
def test_body_bound_is_the_largest_media_file_plus_framing(
    whatsapp_sandbox: WhatsAppSandbox, extra: int, status: int
) -> None:
    from airflow_provider_whatsapp.sandbox.guard import MULTIPART_SLACK
    from airflow_provider_whatsapp.spec.limits import MEDIA_MAX_BYTES

    declared = MEDIA_MAX_BYTES + MULTIPART_SLACK + extra
    raw = (
        f"POST /v21.0/{whatsapp_sandbox.phone_number_id}/media HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {whatsapp_sandbox.api_key}\r\n"
        f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {declared}\r\n\r\n--x"
    ).encode()
    # At the bound the sandbox starts reading and finds the body short (400); over it, it refuses at once.
    assert_graph_answer(exchange(whatsapp_sandbox.port, raw), (status,))
    still_serving(whatsapp_sandbox)


# Every endpoint that reads a JSON body, and whether it needs the key.
JSON_ENDPOINTS = [
    ("/whatsapp-business/v21.0/{phone}/messages", True),
    ("/v21.0/{phone}/messages", True),
    ("/v21.0/{phone}/whatsapp_business_profile", True),
    ("/v21.0/{waba}/message_templates", True),
    ("/connections", True),
    *((f"/_sandbox/{route}", False) for route in ("inbound", "status", "faults", "config", "clock")),
    ("/_sandbox/templates/hello_world/status", False),
]


def post_json(sandbox: WhatsAppSandbox, endpoint: tuple[str, bool], body: bytes) -> bytes:
    path, keyed = endpoint
    key = f"Authorization: Bearer {sandbox.api_key}\r\n" if keyed else ""
    return request(
        sandbox.port,
        "POST",
        path.format(phone=sandbox.phone_number_id, waba=sandbox.waba_id),
        host="127.0.0.1",
        headers=key + "Content-Type: application/json\r\n",
        body=body,
    )


MALFORMED_JSON = {
    "not JSON": b"{not json",
    "not UTF-8": b'{"a": "\xff\xfe"}',
    "an array": b"[1, 2]",
    "a string": b'"text"',
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
    "NaN": b'{"advance": NaN, "latency": NaN}',
    "huge numbers": b'{"advance": 1e400, "latency": 1e400, "approval_delay": 1e999, "rate": 1e400}',
    "wrong types": json.dumps(
        {
            "from": ["x"],
            "text": {"a": 1},
            "status": 5,
            "message_id": None,
            "code": "four",
            "path": "([",
            "rate_limit": "many",
            "advance": "1",
            "messaging_product": "whatsapp",
            "to": RECIPIENT,
            "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}, "components": [1, "a", None]},
            "components": [1, [2], {"type": {"x": 1}}],
            "app": {"x": 1},
        }
    ).encode(),
}


@pytest.mark.parametrize("body", list(MALFORMED_JSON.values()), ids=list(MALFORMED_JSON))
def test_malformed_json_gets_a_graph_error_on_every_endpoint(
    whatsapp_sandbox: WhatsAppSandbox, body: bytes
) -> None:
    for endpoint in JSON_ENDPOINTS:
        assert_graph_answer(post_json(whatsapp_sandbox, endpoint, body))
    assert httpx.get(f"{whatsapp_sandbox.url}/_sandbox/conversations").status_code == 200
    still_serving(whatsapp_sandbox)


# --- fuzzing -------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
# Objects that look like what each endpoint expects, with hostile values at any depth.
FIELD_NAMES = st.sampled_from(
    [
        "messaging_product",
        "to",
        "type",
        "text",
        "body",
        "template",
        "interactive",
        "image",
        "document",
        "name",
        "language",
        "code",
        "components",
        "parameters",
        "action",
        "buttons",
        "sections",
        "rows",
        "header",
        "from",
        "message",
        "status",
        "message_id",
        "latency",
        "rate",
        "path",
        "advance",
        "app",
        "category",
        "require_window",
        "rate_limit",
        "label",
        "websites",
        "reply_to",
        "context",
        "link",
        "id",
    ]
)
SHAPED = st.recursive(
    JSON_VALUES,
    lambda inner: st.dictionaries(FIELD_NAMES, inner, max_size=6) | st.lists(inner, max_size=3),
    max_leaves=30,
)


@pytest.fixture(scope="module")
def fuzzed_sandbox() -> Any:
    with WhatsAppSandbox(rate_limit=0) as sandbox:
        yield sandbox


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=SHAPED, endpoint=st.sampled_from(JSON_ENDPOINTS))
def test_fuzzed_json_never_gets_a_server_error(
    fuzzed_sandbox: WhatsAppSandbox, body: Any, endpoint: tuple[str, bool]
) -> None:
    if isinstance(body, dict) and "to" in body:
        body["to"] = RECIPIENT  # so that more bodies get past the recipient to the deeper checks
    answer = post_json(fuzzed_sandbox, endpoint, json.dumps(body).encode())
    # An injected fault answers 5xx or drops requests on purpose: none may outlive its example.
    fuzzed_sandbox.clear_faults()
    ((status, response_headers, response_body),) = parse_responses(answer)
    assert status < 500, response_body
    assert response_headers["content-type"] == "application/json"
    json.loads(response_body)
    if status >= 400:
        assert_graph_answer(answer)
    page = httpx.get(f"{fuzzed_sandbox.url}/_sandbox/conversations", timeout=10)
    assert page.status_code == 200, page.text


REQUEST_GARBAGE = st.one_of(
    st.binary(max_size=300),
    st.tuples(
        st.sampled_from([b"GET", b"POST", b"DELETE", b"PUT", b"OPTIONS", b"PATCH", b"G\x00T", b""]),
        st.binary(max_size=40),
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/9.9", b"http/1.1", b""]),
        st.lists(st.binary(max_size=40), max_size=5),
        st.binary(max_size=100),
    ).map(
        lambda p: (
            p[0]
            + b" /"
            + p[1]
            + b" "
            + p[2]
            + b"\r\nHost: 127.0.0.1\r\n"
            + b"\r\n".join(p[3])
            + b"\r\n\r\n"
            + p[4]
        )
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=REQUEST_GARBAGE)
def test_fuzzed_bytes_get_well_formed_answers(fuzzed_sandbox: WhatsAppSandbox, raw: bytes) -> None:
    answer = exchange(fuzzed_sandbox.port, raw)
    if not answer:
        # Only a connection that never sent a request line may end without an answer.
        assert not raw.split(b"\n", 1)[0].strip(b"\r"), raw
    for status, headers, body in parse_responses(answer):
        assert status < 500, body
        if status >= 200:
            assert headers["content-type"] in ("application/json", "text/html; charset=utf-8"), headers
    still_serving(fuzzed_sandbox)


# --- a bound on concurrent connections -----------------------------------------------------------


def test_connections_over_the_bound_get_a_503_and_the_sandbox_recovers(
    whatsapp_sandbox: WhatsAppSandbox,
) -> None:
    from airflow_provider_whatsapp.sandbox.guard import MAX_CONNECTIONS

    health = b"GET /_sandbox/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    idle = [socket.create_connection(("127.0.0.1", whatsapp_sandbox.port)) for _ in range(MAX_CONNECTIONS)]
    try:
        answer = exchange(whatsapp_sandbox.port, health, timeout=60)
        ((status, headers, body),) = parse_responses(answer)
        assert status == 503 and headers["retry-after"] == "1"
        assert json.loads(body)["error"]["code"] == 2
    finally:
        for sock in idle:
            sock.close()
    # The idle connections' slots come back as they close; the sandbox serves again.
    deadline = time.monotonic() + 30
    while parse_responses(exchange(whatsapp_sandbox.port, health, timeout=60))[0][0] != 200:
        assert time.monotonic() < deadline, "the sandbox did not recover its connection slots"
    still_serving(whatsapp_sandbox)
