"""A try whose message differs from what an earlier try sent is refused before any request, unless asked."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import AirflowException, AirflowFailException
from airflow_provider_whatsapp.bulk.engine import MessageChangedError
from airflow_provider_whatsapp.bulk.progress import LocalJournal, record
from airflow_provider_whatsapp.hooks._retry import RetryPolicy
from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from tests.bulk.helpers import MESSAGES, Inbox, context, digits, journal_file, numbers
from tests.conftest import PHONE_NUMBER_ID
from tests.loopback import LoopbackServer, Reply

OLD = {"type": "text", "text": {"body": "Your March statement is ready"}}
NEW = {"type": "text", "text": {"body": "Your April statement is ready"}}
MEDIA = rf"^/whatsapp-business/v21\.0/{PHONE_NUMBER_ID}/media$"


def bulk(tmp_path: Path, recipients: Any, **kwargs: Any) -> WhatsAppSendBulkOperator:
    return WhatsAppSendBulkOperator(
        task_id="bulk", recipients=recipients, progress_path=str(tmp_path), **kwargs
    )


def bodies(server: LoopbackServer) -> dict[str, list[str]]:
    sent: dict[str, list[str]] = {}
    for request in server.requests_to("POST", MESSAGES):
        sent.setdefault(request.json["to"], []).append(request.json["text"]["body"])
    return sent


def test_a_changed_message_on_retry_fails_before_any_request(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    maton_conn.route("POST", MESSAGES, Inbox())
    ctx = context()
    bulk(tmp_path, numbers(3), message=OLD).execute(ctx)
    before = len(maton_conn.requests)

    with pytest.raises(MessageChangedError) as raised:
        bulk(tmp_path, numbers(6), message=NEW).execute(ctx)  # the list grew, and the text changed

    assert len(maton_conn.requests) == before  # nothing sent, not even to the three new recipients
    text = str(raised.value)
    assert text.startswith("3 recipient(s) were already sent a different message")
    assert "resend_changed=True" in text and "nothing was sent" in text
    assert str(journal_file(tmp_path, ctx)) in text


def test_with_resend_changed_the_changed_recipients_get_the_new_message(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    maton_conn.route("POST", MESSAGES, Inbox())
    ctx = context()
    bulk(tmp_path, numbers(3), message=OLD).execute(ctx)

    result = bulk(tmp_path, numbers(6), message=NEW, resend_changed=True).execute(ctx)
    again = bulk(tmp_path, numbers(6), message=NEW).execute(ctx)  # the new message is now the one on record

    assert result["sent"] == 6 and result["skipped"] == 0
    assert again["sent"] == 0 and again["skipped"] == 6
    assert bodies(maton_conn) == {
        **{digits(n): [OLD["text"]["body"], NEW["text"]["body"]] for n in numbers(3)},
        **{digits(n): [NEW["text"]["body"]] for n in numbers(6)[3:]},
    }


def test_a_per_recipient_parameter_change_is_a_changed_message(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    maton_conn.route("POST", MESSAGES, Inbox())
    ctx = context()
    people = [
        {"to": n, "body_parameters": [name]} for n, name in zip(numbers(2), ["Ada", "Alan"], strict=True)
    ]
    bulk(tmp_path, people, template_name="statement").execute(ctx)
    people[1] = {"to": numbers(2)[1], "body_parameters": ["Grace"]}

    with pytest.raises(MessageChangedError, match=r"^1 recipient\(s\).*: \+1415\*\*\*0001\."):
        bulk(tmp_path, people, template_name="statement").execute(ctx)
    assert len(maton_conn.requests) == 2


def test_a_recipient_left_unknown_with_another_message_is_also_refused(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    inbox = Inbox()
    inbox.rules["14155550001"] = ["deliver-500"]  # delivered, answer lost: unknown
    maton_conn.route("POST", MESSAGES, inbox)
    ctx = context()
    bulk(tmp_path, numbers(2), message=OLD, max_failure_ratio=0.5).execute(ctx)

    with pytest.raises(MessageChangedError, match=r"0 accepted, 1 possibly delivered"):
        bulk(tmp_path, numbers(2)[1:], message=NEW).execute(ctx)


def test_a_new_upload_of_the_same_file_is_not_a_changed_message(
    maton_conn: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The journal is under test, not the backoff: each retry of the 503s waits 10 ms.
    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, attempt: 0.01)
    ids = itertools.count(1037543291543000)
    maton_conn.route("POST", MEDIA, lambda request: Reply(json={"id": str(next(ids))}))
    inbox = Inbox()
    inbox.rules["14155550002"] = [Reply(503, {})] * 10  # not delivered: left for the next try
    maton_conn.route("POST", MESSAGES, inbox)
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    image = {"type": "image", "image": {"file_path": str(chart), "caption": "Weekly chart"}}
    ctx = context()
    progress = tmp_path / "progress"

    with pytest.raises(AirflowException, match=r"^1 failed and 0 unknown of 3 recipients") as first_try:
        bulk(progress, numbers(3), message=image).execute(ctx)
    assert not isinstance(first_try.value, AirflowFailException)  # a 503 is retryable: Airflow may retry
    inbox.rules.clear()
    result = bulk(progress, numbers(3), message=image).execute(ctx)  # uploads again: a new media id

    assert result["sent"] == 1 and result["skipped"] == 2
    assert inbox.counts() == {digits(n): 1 for n in numbers(3)}
    assert len(maton_conn.requests_to("POST", MEDIA)) == 2
    # The retry sent its own upload's id: the fingerprint names the file, not the id.
    assert len({r.json["image"]["id"] for r in maton_conn.requests_to("POST", MESSAGES)}) == 2

    # ... but another file in its place is a changed message.
    other = tmp_path / "other.png"
    other.write_bytes(chart.read_bytes())
    moved = {"type": "image", "image": {"file_path": str(other), "caption": "Weekly chart"}}
    with pytest.raises(MessageChangedError):
        bulk(progress, numbers(3), message=moved).execute(ctx)


def test_a_journal_written_before_fingerprints_is_still_read(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    inbox = Inbox()
    maton_conn.route("POST", MESSAGES, inbox)
    ctx = context()
    old = LocalJournal(str(journal_file(tmp_path, ctx)))
    old.append(
        [
            record("14155550000", "attempt", attempt=1),
            record("14155550000", "accepted", wamid="wamid.old"),
            record("14155550001", "attempt", attempt=1),
        ]
    )
    old.close()

    result = bulk(tmp_path, numbers(3), message=NEW, max_failure_ratio=0.5).execute(ctx)

    assert (result["skipped"], result["unknown"], result["sent"]) == (1, 1, 1)
    assert inbox.counts() == {"14155550002": 1}
