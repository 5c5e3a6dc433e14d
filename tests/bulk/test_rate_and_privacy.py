"""The bulk send keeps the connection's rate, and never puts a full phone number in logs or errors."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import AirflowException
from airflow_provider_whatsapp.bulk.engine import BulkConfig, BulkItem, MessageChangedError, run_bulk
from airflow_provider_whatsapp.bulk.progress import LocalJournal
from airflow_provider_whatsapp.hooks._retry import RetryPolicy
from airflow_provider_whatsapp.hooks.maton import MatonHook
from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from airflow_provider_whatsapp.redact import mask_phone_number
from airflow_provider_whatsapp.spec.limits import (
    GRAPH_MESSAGES_PER_SECOND,
    MATON_REQUESTS_PER_SECOND,
    PAIR_RATE_INTERVAL_SECONDS,
    PAIR_RATE_MAX_WAIT_SECONDS,
    default_rate,
)
from tests.bulk.helpers import MESSAGES, Inbox, context, digits, graph, max_in_any_window, numbers
from tests.conftest import connection_json
from tests.loopback import LoopbackServer

OLD = {"type": "text", "text": {"body": "Your March statement is ready"}}
NEW = {"type": "text", "text": {"body": "Your April statement is ready"}}


def bulk(tmp_path: Path, recipients: list[Any], **kwargs: Any) -> WhatsAppSendBulkOperator:
    kwargs.setdefault("message", OLD)
    return WhatsAppSendBulkOperator(
        task_id="bulk", recipients=recipients, progress_path=str(tmp_path), **kwargs
    )


def assert_no_full_number(text: str, recipients: list[str]) -> None:
    for number in recipients:
        assert digits(number) not in text
        assert number not in text


# --- the connection's rate ----------------------------------------------------------------------


def test_the_connections_rate_limit_paces_the_bulk_send(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(loopback.url, rate_limit="2"))
    inbox = Inbox()
    loopback.route("POST", MESSAGES, inbox)

    result = bulk(tmp_path, numbers(7)).execute(context())

    assert result["sent"] == 7
    arrivals = sorted(at for _, at in inbox.attempts)
    assert max_in_any_window(arrivals) <= 2
    # Seven at 2/s take about 3 s between the first and the last (10/s, the Maton default, takes 0.6 s).
    assert arrivals[-1] - arrivals[0] >= 2.5


def test_max_rate_still_overrides_the_connections_rate(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(loopback.url, rate_limit="2"))
    inbox = Inbox()
    loopback.route("POST", MESSAGES, inbox)

    bulk(tmp_path, numbers(12), max_rate=20).execute(context())

    arrivals = sorted(at for _, at in inbox.attempts)
    assert len(arrivals) == 12
    assert arrivals[-1] - arrivals[0] < 2.5  # far faster than 2/s would allow (5.5 s)


# --- no full phone number in logs or errors ---------------------------------------------------


def test_a_pair_rate_retry_logs_the_number_masked(
    maton_conn: LoopbackServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = Inbox()
    recipients = numbers(3)
    inbox.rules[digits(recipients[1])] = [graph(131056)]
    maton_conn.route("POST", MESSAGES, inbox)
    hook = MatonHook(max_attempts=1, rate_limit=0)
    items = [BulkItem(to=digits(r), payload={"to": digits(r), **OLD}) for r in recipients]
    journal = LocalJournal(str(tmp_path / "journal.jsonl"))

    async def send(payload: dict[str, Any]) -> str:
        return MatonHook.message_id(await hook.asend_message(payload))

    async def main() -> Any:
        try:
            return await run_bulk(
                items, send, journal, BulkConfig(max_rate=20, max_concurrency=4, pair_backoff=0.1)
            )
        finally:
            await hook.aclose()

    with caplog.at_level(logging.DEBUG):
        try:
            result = asyncio.run(main())
        finally:
            journal.close()

    assert result.sent == 3
    assert f"Send to {mask_phone_number(recipients[1])} refused for now (131056)" in caplog.text
    assert_no_full_number(caplog.text, recipients)


def test_resends_and_changed_messages_never_show_a_full_number(
    maton_conn: LoopbackServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = Inbox()
    recipients = numbers(3)
    inbox.rules[digits(recipients[2])] = ["deliver-500"]  # delivered, but answered 500: unknown
    maton_conn.route("POST", MESSAGES, inbox)
    ctx = context()
    errors: list[str] = []

    with caplog.at_level(logging.DEBUG):
        with pytest.raises(AirflowException) as unknown:
            bulk(tmp_path, recipients).execute(ctx)
        errors.append(str(unknown.value))
        bulk(tmp_path, recipients, resend_unknown=True).execute(ctx)
        with pytest.raises(MessageChangedError) as changed:
            bulk(tmp_path, recipients, message=NEW).execute(ctx)
        errors.append(str(changed.value))
        bulk(tmp_path, recipients, message=NEW, resend_changed=True).execute(ctx)

    masked = [mask_phone_number(n) for n in recipients]
    assert f"Sending again to {masked[2]}, left unknown" in caplog.text
    assert all(f"Sending the new message to {m}" in caplog.text for m in masked)
    assert errors[1].startswith("3 recipient(s) were already sent a different message")
    assert all(m in errors[1] for m in masked)
    assert_no_full_number(caplog.text, recipients)
    assert_no_full_number("\n".join(errors), recipients)


# --- one place per limit -------------------------------------------------------------------------


def test_the_pair_rate_wait_doubles_through_the_one_retry_policy_up_to_its_cap() -> None:
    policy = BulkConfig(max_rate=1, max_concurrency=1).retry_policy
    waits = [policy.pair_rate_wait(n) for n in range(1, 7)]
    assert waits == [6.0, 12.0, 24.0, 48.0, 60.0, 60.0]
    assert waits[0] == PAIR_RATE_INTERVAL_SECONDS and waits[-1] == PAIR_RATE_MAX_WAIT_SECONDS
    assert policy.pair_rate_wait(3) == RetryPolicy().pair_rate_wait(3)  # the hook's, too


def test_the_default_rate_depends_only_on_the_route() -> None:
    assert default_rate(via_maton=True) == MATON_REQUESTS_PER_SECOND
    assert default_rate(via_maton=False) == GRAPH_MESSAGES_PER_SECOND
