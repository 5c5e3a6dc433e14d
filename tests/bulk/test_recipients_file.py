"""The bulk operator reads its recipients from a file or an ``ObjectStoragePath``, through a real socket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS, AirflowException, ObjectStoragePath
from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from tests.bulk.helpers import MESSAGES, Inbox, context, digits, numbers
from tests.loopback import LoopbackServer, Reply


def bulk(recipients: Any, progress: Path, **kwargs: Any) -> WhatsAppSendBulkOperator:
    return WhatsAppSendBulkOperator(
        task_id="bulk",
        recipients=recipients,
        template_name="order_ready",
        body_parameters=["friend"],
        progress_path=str(progress),
        max_rate=1000,
        **kwargs,
    )


def sent_names(maton_conn: LoopbackServer) -> dict[str, str]:
    """Recipient -> the body parameter they were sent."""
    return {
        r.json["to"]: r.json["template"]["components"][0]["parameters"][0]["text"]
        for r in maton_conn.requests_to("POST", MESSAGES)
    }


def test_a_json_lines_file_is_sent_and_a_new_try_skips_the_accepted(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    recipients = numbers(30)
    source = tmp_path / "recipients.jsonl"
    source.write_text(
        "".join(json.dumps({"to": n, "body_parameters": [f"N{i}"]}) + "\n" for i, n in enumerate(recipients))
    )
    inbox = Inbox()
    # The 12th recipient's send finds the key refused: the send stops, the rest pending.
    inbox.rules[digits(recipients[11])] = [Reply(401, {"error": {"message": "bad key"}})]
    maton_conn.route("POST", MESSAGES, inbox)
    ctx = context()

    with pytest.raises(AirflowException, match="Bulk send stopped"):
        bulk(str(source), tmp_path / "progress", max_concurrency=1).execute(ctx)
    first = len(inbox.delivered)
    result = bulk(str(source), tmp_path / "progress", max_concurrency=4).execute(ctx)

    assert 0 < first < 30 and (result["skipped"], result["sent"]) == (first, 30 - first)
    assert set(inbox.counts().values()) == {1} and len(inbox.counts()) == 30  # each once, no one twice
    assert sent_names(maton_conn)[digits(recipients[29])] == "N29"


def test_a_bad_line_fails_the_task_before_anything_is_sent(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    source = tmp_path / "recipients.jsonl"
    source.write_bytes(b'"+14155550100"\n"+14155550101"\n{"to": "+14155550102", "body_parameters": [}\n')
    maton_conn.route("POST", MESSAGES, Inbox())

    with pytest.raises(WhatsAppValidationError, match=r"recipients line 3: is not JSON") as raised:
        bulk(str(source), tmp_path).execute(context())

    assert "nothing was sent" in raised.value.message
    assert maton_conn.requests_to("POST", MESSAGES) == []


@pytest.mark.parametrize("store", ["file", "memory"])
def test_an_object_storage_path_is_read_as_a_stream(
    maton_conn: LoopbackServer, tmp_path: Path, store: str
) -> None:
    if store == "memory":
        from fsspec.implementations.memory import MemoryFileSystem

        if AIRFLOW_V_3_PLUS:
            from airflow.sdk.io.store import attach
        else:
            from airflow.io.store import attach
        attach("memory", fs=MemoryFileSystem())  # fsspec's store in memory, which Airflow leaves out
        source = ObjectStoragePath(f"memory://recipients-{tmp_path.name}/people.csv")
    else:
        source = ObjectStoragePath(f"file://{tmp_path}/people.csv")
    rows = [("+1 415 555 0100", '["Ada"]'), ("+1 415 555 0101", ""), ("+1 415 555 0102", '["Grace"]')]
    source.write_text(
        "to,body_parameters\n" + "".join(f'{to},"{p.replace(chr(34), 2 * chr(34))}"\n' for to, p in rows)
    )
    maton_conn.route("POST", MESSAGES, Inbox())

    result = bulk(source, tmp_path / "progress").execute(context())

    assert (result["total"], result["sent"]) == (3, 3)
    assert sent_names(maton_conn) == {"14155550100": "Ada", "14155550101": "friend", "14155550102": "Grace"}
