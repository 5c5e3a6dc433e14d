"""XCom stays small whatever happens; odd inputs end in the provider's error naming the field, unsent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from tests.bulk.helpers import MESSAGES, Inbox, context, graph, journal_file, numbers
from tests.loopback import LoopbackServer

TEXT = {"type": "text", "text": {"body": "Your report is ready"}}


def test_a_thousand_failures_keep_xcom_small_and_the_journal_complete(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    maton_conn.route("POST", MESSAGES, graph(131026))  # every recipient undeliverable
    ctx = context()
    operator = WhatsAppSendBulkOperator(
        task_id="bulk",
        recipients=numbers(1000),
        message=TEXT,
        progress_path=str(tmp_path),
        max_rate=1000,
        max_concurrency=32,
        max_failure_ratio=1.0,
    )

    result = operator.execute(ctx)

    assert (result["total"], result["failed"], result["sent"]) == (1000, 1000, 0)
    assert len(result["failures"]) == 100 and result["failures_omitted"] == 900
    assert result["progress_path"] == str(journal_file(tmp_path, ctx))
    assert len(json.dumps(result)) < 40_000
    records = [json.loads(line) for line in journal_file(tmp_path, ctx).read_text().splitlines()]
    assert len({r["to"] for r in records if r["state"] == "failed" and r["code"] == 131026}) == 1000


def test_the_xcom_cap_is_configurable_and_covers_unknown_recipients(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    inbox = Inbox()
    for n in numbers(4):
        inbox.rules["".join(c for c in n if c.isdigit())] = ["deliver-500"]
    maton_conn.route("POST", MESSAGES, inbox)

    result = WhatsAppSendBulkOperator(
        task_id="bulk",
        recipients=numbers(4),
        message=TEXT,
        progress_path=str(tmp_path),
        max_failure_ratio=1.0,
        max_failures_in_xcom=1,
    ).execute(context())

    assert (
        result["unknown"] == 4 and len(result["unknown_recipients"]) == 1 and result["unknown_omitted"] == 3
    )


def test_bad_xcom_cap_is_refused_at_parse_time() -> None:
    with pytest.raises(ValueError, match="max_failures_in_xcom"):
        WhatsAppSendBulkOperator(task_id="t", recipients=[], message=TEXT, max_failures_in_xcom=-1)


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def cycle() -> list[Any]:
    value: list[Any] = ["+14155550100"]
    value.append(value)
    return value


@pytest.mark.parametrize(
    ("recipients", "options", "named"),
    [
        ("[" * 100_000 + "]" * 100_000, {}, "recipients: "),  # json.loads: RecursionError
        (
            nested(100_000),
            {},
            r"recipients\[0\]: nested more than 16 levels",
        ),  # repr: RecursionError
        ([cycle()], {}, r"recipients\[0\]: nested more than 16 levels"),
        (
            [{"to": "+14155550100", "body_parameters": nested(50_000)}],
            {"template_name": "report", "message": None},
            r"recipients\[0\]: nested more than 16 levels",
        ),
        (["+14155550100", 10**5000], {}, r"recipients\[1\]: cannot be read \(ValueError"),
        (10**5000, {}, "recipients: got a number far too long"),
        (b"+14155550100", {}, "recipients: got bytes"),
        (
            ["+14155550100"],
            {"message": {"type": "text", "text": nested(10_000)}},
            "message: nested more than 16 levels",
        ),
    ],
    ids=[
        "deep-json-text",
        "deep-list",
        "cycle",
        "deep-parameters",
        "huge-int-entry",
        "huge-int",
        "bytes",
        "deep-msg",
    ],
)
def test_odd_inputs_are_the_providers_error_naming_the_field_and_nothing_is_sent(
    maton_conn: LoopbackServer, tmp_path: Path, recipients: Any, options: dict[str, Any], named: str
) -> None:
    maton_conn.route("POST", MESSAGES, Inbox())
    # Built with harmless values, then given the odd ones the way rendering does (from XCom, a macro,
    # native rendering): on the copy Airflow locks for execution.
    operator = WhatsAppSendBulkOperator(
        task_id="bulk", recipients=[], message=TEXT, progress_path=str(tmp_path)
    ).prepare_for_execution()
    operator.recipients = recipients
    for name, value in options.items():
        setattr(operator, name, value)

    with pytest.raises(WhatsAppValidationError, match=named) as raised:
        operator.execute(context())

    assert len(str(raised.value)) < 2_000
    assert maton_conn.requests == []
    assert not any(tmp_path.rglob("*.jsonl"))


def test_a_journal_path_that_is_a_directory_names_progress_path(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    maton_conn.route("POST", MESSAGES, Inbox())
    ctx = context()
    journal_file(tmp_path, ctx).mkdir(parents=True)  # where the journal file should be

    with pytest.raises(WhatsAppValidationError, match=r"^progress_path: .*IsADirectoryError") as raised:
        WhatsAppSendBulkOperator(
            task_id="bulk", recipients=numbers(2), message=TEXT, progress_path=str(tmp_path)
        ).execute(ctx)

    assert "nothing was sent" in str(raised.value)
    assert maton_conn.requests == []


@pytest.mark.parametrize("progress_path", ["s3://bucket\x00/x", "nosuchscheme://bucket/prefix"])
def test_an_unusable_progress_path_names_the_field(maton_conn: LoopbackServer, progress_path: str) -> None:
    maton_conn.route("POST", MESSAGES, Inbox())
    with pytest.raises(WhatsAppValidationError, match=r"^progress_path: "):
        WhatsAppSendBulkOperator(
            task_id="bulk", recipients=numbers(2), message=TEXT, progress_path=progress_path
        ).execute(context())
    assert maton_conn.requests == []
