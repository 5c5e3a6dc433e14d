"""The bulk send against the provider's sandbox: Maton's 10 requests/s limit and injected faults."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from airflow_provider_whatsapp.sandbox import WhatsAppSandbox
from tests.bulk.helpers import context, digits, numbers

TEXT = {"type": "text", "text": {"body": "The quarterly numbers are in"}}


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Any:
    with WhatsAppSandbox(port=0) as sb:
        monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", sb.connection_json())
        yield sb


def received(sb: Any) -> Counter[str]:
    return Counter(m.wa_id for m in sb.messages)


def test_default_pace_through_maton_meets_its_limit_without_a_429(sandbox: Any, tmp_path: Path) -> None:
    result = WhatsAppSendBulkOperator(
        task_id="bulk", recipients=numbers(25), message=TEXT, progress_path=str(tmp_path)
    ).execute(context())

    assert result["sent"] == 25 and result["throttled"] == 0
    assert [r.status for r in sandbox.requests("POST", "/messages$")].count(429) == 0
    assert received(sandbox) == {digits(n): 1 for n in numbers(25)}


def test_throttling_and_a_lost_answer_in_the_same_send(sandbox: Any, tmp_path: Path) -> None:
    sandbox.inject_fault(code=130429, times=2, path="/messages$")
    sandbox.inject_fault(drop=True, after=True, times=1, path="/messages$")  # delivered, answer lost
    ctx = context()

    def run(**kwargs: Any) -> dict[str, Any]:
        return WhatsAppSendBulkOperator(
            task_id="bulk",
            recipients=numbers(12),
            message=TEXT,
            progress_path=str(tmp_path),
            max_failure_ratio=0.1,
            **kwargs,
        ).execute(ctx)

    first = run()
    again = run()

    assert first["throttled"] == 2 and first["unknown"] == 1 and first["sent"] == 11
    assert (again["skipped"], again["sent"], again["unknown"]) == (11, 0, 1)
    assert received(sandbox) == {digits(n): 1 for n in numbers(12)}  # the lost answer's message arrived once
