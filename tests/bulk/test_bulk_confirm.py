"""``confirm=`` on the bulk send: the sandbox accepts every send over a real socket, its status webhooks
reach a real event store, and the task succeeds only when enough messages reached the asked status;
nothing is ever sent twice, by the wait or by a new try."""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import AirflowFailException
from airflow_provider_whatsapp.errors import (
    WhatsAppNotConfirmedError,
    WhatsAppReEngagementError,
    WhatsAppValidationError,
)
from airflow_provider_whatsapp.operators._confirm import confirm_all
from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from airflow_provider_whatsapp.sandbox.controller import WhatsAppSandbox
from airflow_provider_whatsapp.spec.error_codes import RE_ENGAGEMENT, UNDELIVERABLE
from airflow_provider_whatsapp.webhooks.store import EventStore
from tests.bulk.helpers import context, digits, numbers
from tests.conversations.statuses import Receiver, status, store_at

TEXT = {"type": "text", "text": {"body": "The quarterly numbers are in"}}

# No gateway rate limit in these tests: they are about statuses, not pacing.
pytestmark = pytest.mark.whatsapp_sandbox(rate_limit=0)


@pytest.fixture
def store(whatsapp_sandbox: WhatsAppSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EventStore:
    """``maton_default`` pointing at the sandbox, its events stored under ``tmp_path``; that store."""
    events = tmp_path / "events"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_DEFAULT", whatsapp_sandbox.connection_json(events_path=str(events))
    )
    return store_at(events)


def bulk(tmp_path: Path, recipients: list[str], **kwargs: Any) -> WhatsAppSendBulkOperator:
    args: dict[str, Any] = {
        "task_id": "bulk",
        "recipients": recipients,
        "message": TEXT,
        "progress_path": str(tmp_path / "progress"),
        "max_rate": 100,
        "confirm": "delivered",
        "confirm_poke_interval": 0.05,
        "confirm_timeout": 20,
    }
    return WhatsAppSendBulkOperator(**{**args, **kwargs})


def posts_per_recipient(sandbox: WhatsAppSandbox) -> Counter[str]:
    return Counter(m.wa_id for m in sandbox.messages)


def test_bad_confirm_arguments_are_refused_at_parse_time(tmp_path: Path) -> None:
    with pytest.raises(WhatsAppValidationError, match="confirm: must be None or one of 'sent', 'delivered'"):
        bulk(tmp_path, numbers(1), confirm="failed")
    with pytest.raises(WhatsAppValidationError, match="confirm_timeout: must be a positive number"):
        bulk(tmp_path, numbers(1), confirm_timeout=0)


def test_every_message_delivered_succeeds_with_the_counts(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore, tmp_path: Path
) -> None:
    recipients = numbers(4)
    with Receiver(whatsapp_sandbox, store):  # the sandbox moves each message on to delivered by itself
        result = bulk(tmp_path, recipients).execute(context())

    assert (result["sent"], result["confirmed"], result["failed_after_send"], result["unconfirmed"]) == (
        4,
        4,
        0,
        0,
    )
    assert result["failed_after_send_recipients"] == [] and result["failed_after_send_omitted"] == 0
    assert all(store.status(m.id).status == "delivered" for m in whatsapp_sandbox.messages)  # type: ignore[union-attr]
    assert posts_per_recipient(whatsapp_sandbox) == {digits(n): 1 for n in recipients}


@pytest.mark.whatsapp_sandbox(require_window=True, unreachable=["14155550004"])
@pytest.mark.parametrize("max_failure_ratio", [0.6, 0.4])
def test_failures_by_status_count_toward_max_failure_ratio(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore, tmp_path: Path, max_failure_ratio: float
) -> None:
    # Five recipients: 0 and 1 wrote lately (their window is open), 2 and 3 did not (131047 by status),
    # 4 is unreachable (131026 by status). 3 of 5 fail after the send: 60 %.
    recipients = numbers(5)
    for number in recipients[:2]:
        whatsapp_sandbox.add_inbound(digits(number), text="hi")
    task = bulk(tmp_path, recipients, max_failure_ratio=max_failure_ratio, max_failures_in_xcom=2, retries=3)

    with Receiver(whatsapp_sandbox, store):
        if max_failure_ratio >= 0.6:
            result = task.execute(context())
        else:
            with pytest.raises(WhatsAppReEngagementError) as raised:
                task.execute(context())

    assert posts_per_recipient(whatsapp_sandbox) == {digits(n): 1 for n in recipients}  # none sent again
    if max_failure_ratio >= 0.6:
        assert (result["sent"], result["failed"], result["confirmed"]) == (5, 0, 2)
        assert (result["failed_after_send"], result["unconfirmed"]) == (3, 0)
        listed = result["failed_after_send_recipients"]
        assert len(listed) == 2 and result["failed_after_send_omitted"] == 1
        assert {entry["code"] for entry in listed} <= {RE_ENGAGEMENT, UNDELIVERABLE}
        assert all(entry["title"] and entry["wamid"].startswith("wamid.") for entry in listed)
    else:
        error = raised.value
        assert isinstance(error, AirflowFailException)  # never retried by Airflow: the messages were sent
        message = str(error)
        assert "Of 5 recipients, 0 failed and 0 were unknown at the send, 3 failed after" in message
        assert "0 were not confirmed delivered (60.0%)" in message and "max_failure_ratio=40.0%" in message
        assert f"Most common failure: code {RE_ENGAGEMENT}" in message and "2 time(s)" in message
        assert "No accepted message was sent again" in message


@pytest.mark.whatsapp_sandbox(auto_deliver=False)
def test_no_status_by_the_timeout_fails_not_confirmed_and_sends_once(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore, tmp_path: Path
) -> None:
    recipients = numbers(3)
    started = time.monotonic()
    # One message gets as far as "sent", the others nothing: none reaches "delivered".
    only_one_sent = Receiver(
        whatsapp_sandbox,
        store,
        react=lambda sb, m: sb.set_status(m.id, "sent") if m.wa_id == digits(recipients[0]) else None,
    )
    with only_one_sent, pytest.raises(WhatsAppNotConfirmedError) as raised:
        bulk(tmp_path, recipients, confirm_timeout=0.5, max_failure_ratio=0.5).execute(context())

    assert time.monotonic() - started < 15
    message = str(raised.value)
    assert "3 were not confirmed delivered (100.0%)" in message
    assert "3 had no final status after 0.5 s: they may still arrive" in message
    assert "No accepted message was sent again" in message
    assert isinstance(raised.value, AirflowFailException)
    assert posts_per_recipient(whatsapp_sandbox) == {digits(n): 1 for n in recipients}


@pytest.mark.whatsapp_sandbox(auto_deliver=False)
def test_a_new_try_sends_nothing_again_and_confirms_the_earlier_messages(
    whatsapp_sandbox: WhatsAppSandbox, store: EventStore, tmp_path: Path
) -> None:
    recipients = numbers(3)
    ctx = context()  # the same task instance: the same journal
    with pytest.raises(WhatsAppNotConfirmedError):
        bulk(tmp_path, recipients, confirm_timeout=0.3).execute(ctx)
    first_wamids = {m.id for m in whatsapp_sandbox.messages}
    for message in whatsapp_sandbox.messages:
        whatsapp_sandbox.set_status(message.id, "delivered")

    with Receiver(whatsapp_sandbox, store):
        result = bulk(tmp_path, recipients).execute(ctx)

    assert (result["sent"], result["skipped"], result["confirmed"], result["unconfirmed"]) == (0, 3, 3, 0)
    assert {m.id for m in whatsapp_sandbox.messages} == first_wamids
    assert posts_per_recipient(whatsapp_sandbox) == {digits(n): 1 for n in recipients}


class CountingStore(EventStore):
    """A real store that counts the reads of each wamid's status."""

    def __init__(self, root: Path) -> None:
        base = store_at(root)
        super().__init__(root, retention=base.retention)
        self.reads: Counter[str] = Counter()

    def status(self, wamid: str) -> Any:
        self.reads[wamid] += 1
        return super().status(wamid)


def test_each_look_reads_each_undecided_message_once_and_a_decided_one_never_again(tmp_path: Path) -> None:
    store = CountingStore(tmp_path)
    store.add(status("wamid.DONE", "read"))
    store.add(status("wamid.FAILED", "failed", code=RE_ENGAGEMENT))
    store.add(status("wamid.LATE", "sent"))

    confirmation = confirm_all(
        store,
        {"wamid.DONE": "14155550001", "wamid.FAILED": "14155550002", "wamid.LATE": "14155550003"},
        "delivered",
        poke_interval=0.05,
        end_time=time.time() + 0.3,
        log=logging.getLogger(__name__),
    )

    assert confirmation.confirmed == 1
    assert [(e["to"], e["code"]) for e in confirmation.failed] == [("14155550002", RE_ENGAGEMENT)]
    assert confirmation.unconfirmed == [{"to": "14155550003", "wamid": "wamid.LATE", "seen": "sent"}]
    assert store.reads["wamid.DONE"] == 1 and store.reads["wamid.FAILED"] == 1
    assert store.reads["wamid.LATE"] >= 2  # read again at each look until the end time
