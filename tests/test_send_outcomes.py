"""Every answer a send can get, in one table: what it raises, how often the hook sends, whether Airflow
may try again; each row driven through the hook (sync and async) over a real socket, then through a
real ``dag.test()`` with ``retries=2``, counting the POSTs that reached the server."""

from __future__ import annotations

import gzip
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_provider_whatsapp._compat import AirflowFailException
from airflow_provider_whatsapp.errors import (
    MatonNoConnectionError,
    WhatsAppAuthError,
    WhatsAppConnectError,
    WhatsAppDeliveryUnknownError,
    WhatsAppError,
    WhatsAppInvalidParameterError,
    WhatsAppPermanentError,
    WhatsAppPermissionError,
    WhatsAppRateLimitError,
    WhatsAppReEngagementError,
    WhatsAppTransientError,
)
from airflow_provider_whatsapp.hooks.maton import MatonHook
from tests.conftest import connection_json
from tests.dagrun import run_dag, task_states
from tests.loopback import LoopbackServer, Reply, graph_error, sent

TEXT = {"to": "14155550100", "type": "text", "text": {"body": "hello"}}
HTML = b"<html><body><h1>Welcome to nginx!</h1></body></html>"
MIB = 1024 * 1024
DU = WhatsAppDeliveryUnknownError


def _deep_json(depth: int) -> bytes:
    return b'{"messages":' + b"[" * depth + b"]" * depth + b"}"


def _megabytes(count: int) -> list[bytes]:
    block = b" " * MIB  # whitespace: a valid start of JSON, so only the size can refuse it
    return [block] * count


def _html(status: int) -> Reply:
    return Reply(status, body=HTML, headers={"Content-Type": "text/html"})


@dataclass(frozen=True)
class Outcome:
    """One way a send can end.

    :param replies: the server's answers, in turn (the last repeats).
    :param raises: the error the send raises, ``None`` for a success.
    :param posts: POSTs one hook call makes (the hook retries only what provably did not go through).
    :param in_dag: also run as a task of the ``dag.test()`` run.
    """

    name: str
    replies: tuple[Reply, ...]
    raises: type[WhatsAppError] | None
    posts: int = 1
    in_dag: bool = True

    @property
    def airflow_may_retry(self) -> bool:
        return self.raises is not None and not issubclass(self.raises, AirflowFailException)


OK = Reply(json=sent("wamid.OK"))
# fmt: off
OUTCOMES = [
    Outcome("200 with a message id", (OK,), None),
    Outcome("201 with a message id", (Reply(201, sent("wamid.OK")),), None),
    Outcome("200 {success: true}", (Reply(json={"success": True}),), DU),
    Outcome("200 HTML page", (_html(200),), DU),
    Outcome("200 empty body", (Reply(body=b""),), DU),
    Outcome("200 JSON list", (Reply(json=[{"id": "wamid.X"}]),), DU),
    Outcome("200 messages without id", (Reply(json={"messages": [{}]}),), DU),
    Outcome("200 id that is not a string", (Reply(json={"messages": [{"id": {"a": 1}}]}),), DU),
    Outcome("200 undecodable bytes", (Reply(body=b"\xff\xfe\xfa\x00{"),), DU),
    Outcome("200 JSON nested 100000 deep", (Reply(body=_deep_json(100_000)),), DU),
    Outcome("200 body over 1 MiB, chunked", (Reply(chunks=lambda: _megabytes(3)),), DU),
    Outcome(
        "200 body announcing 300 MB",
        (Reply(raw=b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n{" % (300 * MIB)),),
        DU,
    ),
    Outcome("200 gzip bomb (20 MB of zeros)",
            (Reply(body=gzip.compress(b"0" * 20 * MIB), headers={"Content-Encoding": "gzip"}),), DU),
    Outcome("200 unknown content encoding", (Reply(body=b"{}", headers={"Content-Encoding": "br"}),), DU),
    Outcome("302 redirect", (Reply(302, headers={"Location": "https://elsewhere.example/x?k=1"}),), DU),
    Outcome("400 Graph 131047 (24 h window)", (Reply(400, graph_error(131047)),), WhatsAppReEngagementError),
    Outcome("400 Graph 130429 then accepted", (Reply(400, graph_error(130429)), OK), None, posts=2),
    Outcome("400 without JSON", (_html(400),), MatonNoConnectionError),
    Outcome("401 bad key", (Reply(401, {"error": "Invalid API key"}),), WhatsAppAuthError),
    Outcome("403 without JSON", (_html(403),), WhatsAppPermissionError),
    Outcome("404 without JSON", (_html(404),), WhatsAppInvalidParameterError),
    Outcome("408 (maybe from a proxy)", (Reply(408, body=b""), OK), DU),
    Outcome("413 too large", (_html(413),), WhatsAppPermanentError),
    Outcome("429 Retry-After 0 then accepted", (Reply(429, headers={"Retry-After": "0"}), OK), None, posts=2),
    Outcome("429 Retry-After 100000", (Reply(429, headers={"Retry-After": "100000"}),), WhatsAppRateLimitError),
    Outcome("429 Retry-After far HTTP date",
            (Reply(429, headers={"Retry-After": "Fri, 31 Dec 2100 23:59:59 GMT"}),), WhatsAppRateLimitError),
    Outcome("500 JSON", (Reply(500, {"message": "internal"}),), DU),
    Outcome("500 Graph 131000 then accepted", (Reply(500, graph_error(131000)), OK), None, posts=2),
    Outcome("502 HTML", (_html(502),), DU),
    Outcome("503 then accepted", (Reply(503, body=b""), OK), None, posts=2),
    Outcome("504", (Reply(504, body=b""),), DU),
    Outcome("malformed status line", (Reply(raw=b"HTTP/1.1 two hundred OK\r\n\r\n"),), DU),
    Outcome("not HTTP at all", (Reply(raw=b"SSH-2.0-OpenSSH_9.6\r\n"),), DU),
    Outcome("closed without an answer", (Reply(drop=True),), DU),
    Outcome("reset without an answer", (Reply(drop=True, reset=True),), DU),
    Outcome("closed mid-body",
            (Reply(raw=b"HTTP/1.1 200 OK\r\nContent-Length: 90\r\n\r\n{\"messages\":[{\"id\""),), DU),
    Outcome("reset mid-body",
            (Reply(raw=b"HTTP/1.1 200 OK\r\nContent-Length: 90\r\n\r\n{\"messages\"", reset=True),), DU),
    Outcome("no answer within the timeout", (Reply(json=sent(), delay=4.0),), DU, in_dag=False),
    Outcome("answer trickled past the timeout", (Reply(json=sent(), trickle=0.5),), DU, in_dag=False),
    Outcome("503 every time", (Reply(503, body=b""),), WhatsAppTransientError, posts=3, in_dag=False),
]
# fmt: on
HOOK_TIMEOUT = 1.5


def phone_id(outcome: Outcome) -> str:
    """A business phone number id (digits) per row, so each row has its own route."""
    return f"90000{OUTCOMES.index(outcome):03d}"


def messages_path(outcome: Outcome) -> str:
    return rf"^/whatsapp-business/v21\.0/{phone_id(outcome)}/messages$"


def hook() -> MatonHook:
    made = MatonHook(timeout=HOOK_TIMEOUT, rate_limit=0)
    made.retry_policy = type(made.retry_policy)(max_attempts=3, base_delay=0.01)
    return made


def _check(outcome: Outcome, caught: Exception | None, server: LoopbackServer) -> None:
    if outcome.raises is None:
        assert caught is None, caught
    else:
        assert type(caught) is outcome.raises, repr(caught)
        assert isinstance(caught, AirflowFailException) is not outcome.airflow_may_retry
        if outcome.raises is DU:
            assert "may have been delivered" in str(caught)
    assert len(server.requests_to("POST", messages_path(outcome))) == outcome.posts


@pytest.mark.parametrize("outcome", OUTCOMES, ids=lambda o: o.name)
def test_every_answer_to_a_send_is_classified(maton_conn: LoopbackServer, outcome: Outcome) -> None:
    maton_conn.route("POST", messages_path(outcome), *outcome.replies)

    sync_hook = hook()
    sync_hook.get_conn()

    caught = None
    started = time.monotonic()
    try:
        sync_hook.send_message(TEXT, phone_number_id=phone_id(outcome))
    except Exception as error:
        caught = error

    _check(outcome, caught, maton_conn)
    assert time.monotonic() - started < HOOK_TIMEOUT + 3  # nothing holds a send past its timeout


@pytest.mark.parametrize("outcome", OUTCOMES, ids=lambda o: o.name)
async def test_every_answer_to_an_async_send_is_classified(
    maton_conn: LoopbackServer, outcome: Outcome
) -> None:
    maton_conn.route("POST", messages_path(outcome), *outcome.replies)
    async_hook = hook()

    caught = None
    started = time.monotonic()
    try:
        await async_hook.asend_message(TEXT, phone_number_id=phone_id(outcome))
    except Exception as error:
        caught = error
    finally:
        await async_hook.aclose()

    _check(outcome, caught, maton_conn)
    assert time.monotonic() - started < HOOK_TIMEOUT + 3


def test_connect_refused_is_retried_and_nothing_was_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    with LoopbackServer() as gone:
        url = gone.url  # nothing listens there any more
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(url))

    with pytest.raises(WhatsAppConnectError, match="Nothing was sent") as caught:
        hook().send_message(TEXT)

    assert "Gave up after 3 attempt(s)" in str(caught.value)
    assert not isinstance(caught.value, AirflowFailException)


def test_a_redirect_names_only_its_host(maton_conn: LoopbackServer) -> None:
    location = "https://elsewhere.example/steal?token=SECRET-IN-LOCATION"
    maton_conn.route(
        "GET",
        r"/message_templates$",
        Reply(301, body=b"see " + location.encode(), headers={"Location": location}),
    )

    with pytest.raises(WhatsAppError) as caught:
        MatonHook().list_templates()

    assert "elsewhere.example" in str(caught.value)
    assert "SECRET-IN-LOCATION" not in str(caught.value) and "steal" not in str(caught.value)
    assert isinstance(caught.value, AirflowFailException)  # configuration: retrying will not help
    assert len(maton_conn.requests) == 1  # not followed


# --- the same table through Airflow: task retries never repeat what may have been delivered ------

DAG_FILE = Path(__file__).parent / "integration" / "dags" / "whatsapp_send_outcomes.py"
IN_DAG = [o for o in OUTCOMES if o.in_dag]


@pytest.mark.integration
def test_a_dag_with_retries_sends_each_outcome_as_often_as_is_safe(
    maton_conn: LoopbackServer, dags_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for outcome in IN_DAG:
        maton_conn.route("POST", messages_path(outcome), *outcome.replies)
    monkeypatch.setenv("WHATSAPP_OUTCOME_PHONE_IDS", json.dumps([phone_id(o) for o in IN_DAG]))

    dag_run = run_dag(DAG_FILE, dags_folder, "whatsapp_send_outcomes")

    states = task_states(dag_run)
    report = {}
    for outcome in IN_DAG:
        tries = 3 if outcome.airflow_may_retry else 1  # retries=2
        expected = (outcome.posts * tries, "success" if outcome.raises is None else "failed")
        actual = (
            len(maton_conn.requests_to("POST", messages_path(outcome))),
            states[f"send_{phone_id(outcome)}"],
        )
        report[outcome.name] = (expected, actual)
    wrong = {name: pair for name, pair in report.items() if pair[0] != pair[1]}
    assert not wrong, wrong
    assert os.environ["WHATSAPP_OUTCOME_PHONE_IDS"]
