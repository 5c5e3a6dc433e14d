"""The approval operator: checks at parse, and whole DAG runs under dag.test() against the sandbox.

The question goes to the sandbox through a real socket; the test plays the approvers by writing their
taps into the real event store the operator reads (what the webhook receiver does in production).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS
from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.operators.approval import WhatsAppApprovalOperator, button_ids_for
from airflow_provider_whatsapp.sandbox.pytest_plugin import CONN_ENV
from airflow_provider_whatsapp.spec.error_codes import RE_ENGAGEMENT
from airflow_provider_whatsapp.spec.limits import REPLY_BUTTON_TITLE_MAX
from airflow_provider_whatsapp.webhooks.events import InboundMessage, StatusEvent, WebhookError
from airflow_provider_whatsapp.webhooks.store import EventStore
from tests.conftest import REPO_ROOT
from tests.dagrun import load_dag, task_states

APPROVER = "14155550100"
SECOND_APPROVER = "14155550101"
STRANGER = "14155550199"


# --- checks at parse -----------------------------------------------------------------------------


def approval(**kwargs: Any) -> WhatsAppApprovalOperator:
    return WhatsAppApprovalOperator(**{"task_id": "ask", "to": APPROVER, "body": "Publish?", **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"approve_label": "x" * (REPLY_BUTTON_TITLE_MAX + 1)}, r"buttons\[0\]\.title"),
        ({"reject_label": "Approve"}, "unique button titles"),
        ({"to": ["+1 415 555 0100", "call me"]}, r"to\[1\]"),
        ({"to": []}, "to: no phone number"),
        ({"on_reject": "ignore"}, "on_reject"),
        ({"timeout_default": "maybe"}, "timeout_default"),
        ({"timeout": timedelta(0)}, "timeout"),
    ],
)
def test_bad_arguments_are_refused_at_parse_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(WhatsAppValidationError, match=field):
        approval(**kwargs)


def test_templated_arguments_wait_for_run_time() -> None:
    task = approval(to="{{ var.json.approvers }}", approve_label="{{ params.label }}")
    assert "to" in task.template_fields and "approve_label" in task.template_fields


class _TI:
    def __init__(self, run_id: str, try_number: int) -> None:
        self.dag_id, self.task_id, self.map_index = "nightly", "ask", -1
        self.run_id, self.try_number = run_id, try_number


def test_button_ids_differ_per_run_and_per_try() -> None:
    first = button_ids_for({"ti": _TI("scheduled__2026-01-01", 1)})
    assert first == button_ids_for({"ti": _TI("scheduled__2026-01-01", 1)})
    assert first != button_ids_for({"ti": _TI("scheduled__2026-01-02", 1)})
    assert first != button_ids_for({"ti": _TI("scheduled__2026-01-01", 2)})
    assert "nightly" not in first[0]


# --- whole runs ----------------------------------------------------------------------------------

DAG_ID = "approval_under_test"
DAG_SOURCE = """
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from airflow_provider_whatsapp.operators.approval import WhatsAppApprovalOperator

try:
    from airflow.sdk import DAG, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task

OUT = Path({out!r})

with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    ask = WhatsAppApprovalOperator(
        task_id="ask",
        to={to!r},
        body="Nightly load: 1284 rows. Publish?",
        approve_label="Publish",
        reject_label="Hold",
        timeout=timedelta(seconds={timeout}),
        timeout_default={timeout_default!r},
        poke_interval=0.05,
        deferrable={deferrable},
    )

    @task
    def publish(decision):
        (OUT / "publish.json").write_text(json.dumps(decision))

    @task(trigger_rule="all_done")
    def audit(ti=None):
        (OUT / "audit.json").write_text(json.dumps(ti.xcom_pull(task_ids="ask")))

    publish(ask.output)
    ask >> audit()
"""


def run_approval_dag(tmp_path: Path, dags_folder: Path, **settings: Any) -> tuple[dict[str, str], Path]:
    out = tmp_path / "out"
    out.mkdir()
    values = {
        "to": [APPROVER, SECOND_APPROVER],
        "timeout": 60,
        "timeout_default": "reject",
        "deferrable": True,
    }
    source = tmp_path / "approval_under_test.py"
    source.write_text(DAG_SOURCE.format(out=str(out), dag_id=DAG_ID, **{**values, **settings}))
    dag_run = load_dag(source, dags_folder, DAG_ID).test()
    return task_states(dag_run), out


@pytest.fixture
def store(whatsapp_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EventStore:  # type: ignore[no-untyped-def]
    root = tmp_path / "events"
    monkeypatch.setenv(CONN_ENV, whatsapp_sandbox.connection_json(events_path=str(root)))
    for approver in (APPROVER, SECOND_APPROVER):
        whatsapp_sandbox.add_inbound(approver, "hi")  # their 24-hour windows are open
    return EventStore(root, retention=timedelta(days=1))


def play_approvers(
    sandbox: Any, store: EventStore, answers: list[tuple[str, str]], *, failed_code: int | None = None
) -> threading.Thread:
    """In the background: once the question reached both approvers, store its statuses (what the
    receiver does with Meta's webhooks) and then each ``(sender, "approve" | "reject")`` tap on the
    first approver's question, in order. With ``failed_code``, every question fails with that code."""

    def questions() -> list[Any]:
        sent = [m for number in (APPROVER, SECOND_APPROVER) for m in sandbox.messages_to(number)]
        return [m for m in sent if m.type == "interactive"]

    def play() -> None:
        ends = time.monotonic() + 60
        while len(questions()) < 2 and time.monotonic() < ends:
            time.sleep(0.05)
        sent = questions()
        for message in sent:
            store.add(_status(message.id, message.wa_id, failed_code))
        asked = next(m for m in sent if m.wa_id == APPROVER)
        buttons = {b["reply"]["title"]: b["reply"]["id"] for b in asked.content["action"]["buttons"]}
        button = {"approve": buttons["Publish"], "reject": buttons["Hold"]}
        now = int(time.time())
        for index, (sender, choice) in enumerate(answers):
            store.add(_tap(f"wamid.TAP{index}", sender, asked.id, button[choice], now + index))

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    return thread


def _status(wamid: str, recipient: str, failed_code: int | None = None) -> StatusEvent:
    errors = (
        (WebhookError(code=failed_code, title="failed", message=None, details=None),) if failed_code else ()
    )
    return StatusEvent(
        wamid=wamid, status="failed" if failed_code else "delivered", timestamp=int(time.time()),
        recipient_id=recipient, phone_number_id="106540352242922", errors=errors,
    )  # fmt: skip


def _tap(wamid: str, sender: str, context_id: str, button_id: str, at: int) -> InboundMessage:
    return InboundMessage(
        wamid=wamid, sender=sender, type="interactive", timestamp=at, phone_number_id="106540352242922",
        text=None, button_id=button_id, button_title=None, row_id=None, context_id=context_id,
        contact_name=None,
    )  # fmt: skip


@pytest.mark.integration
def test_approve_runs_the_downstream_task(whatsapp_sandbox, store, tmp_path, dags_folder) -> None:  # type: ignore[no-untyped-def]
    player = play_approvers(whatsapp_sandbox, store, [(APPROVER, "approve")])
    states, out = run_approval_dag(tmp_path, dags_folder)
    player.join(timeout=10)

    assert states == {"ask": "success", "publish": "success", "audit": "success"}
    decision = json.loads((out / "publish.json").read_text())
    assert decision["approved"] is True and decision["decision"] == "approve"
    assert decision["by"] == APPROVER and decision["wamid"] == "wamid.TAP0"
    # One question to each approver, never re-sent when the task resumed after deferring.
    assert [len(whatsapp_sandbox.messages_to(n)) for n in (APPROVER, SECOND_APPROVER)] == [1, 1]


@pytest.mark.integration
def test_a_non_approvers_tap_is_ignored_and_a_reject_skips_downstream(
    whatsapp_sandbox, store, tmp_path, dags_folder
) -> None:  # type: ignore[no-untyped-def]
    player = play_approvers(whatsapp_sandbox, store, [(STRANGER, "approve"), (APPROVER, "reject")])
    states, out = run_approval_dag(tmp_path, dags_folder)
    player.join(timeout=10)

    assert states == {"ask": "skipped", "publish": "skipped", "audit": "success"}
    assert not (out / "publish.json").exists()
    decision = json.loads((out / "audit.json").read_text())  # pushed before the skip
    assert (decision["decision"], decision["by"], decision["approved"]) == ("reject", APPROVER, False)


@pytest.mark.integration
def test_no_answer_takes_the_timeout_default_waiting_in_the_worker(
    whatsapp_sandbox, store, tmp_path, dags_folder
) -> None:  # type: ignore[no-untyped-def]
    states, out = run_approval_dag(
        tmp_path, dags_folder, timeout=1, timeout_default="approve", deferrable=False
    )

    assert states == {"ask": "success", "publish": "success", "audit": "success"}
    decision = json.loads((out / "publish.json").read_text())
    assert (decision["decision"], decision["approved"], decision["by"]) == ("timeout", True, None)


@pytest.mark.integration
def test_when_every_question_failed_the_task_fails_instead_of_waiting(
    whatsapp_sandbox, store, tmp_path, dags_folder
) -> None:  # type: ignore[no-untyped-def]
    # 131047: the approvers had not written within 24 hours, so the free-form question never arrived.
    player = play_approvers(whatsapp_sandbox, store, [], failed_code=RE_ENGAGEMENT)
    states, _ = run_approval_dag(tmp_path, dags_folder, timeout=600, timeout_default="approve")
    player.join(timeout=10)

    assert states == {"ask": "failed", "publish": "upstream_failed", "audit": "success"}
    assert [len(whatsapp_sandbox.messages_to(n)) for n in (APPROVER, SECOND_APPROVER)] == [1, 1]


def test_importing_the_approval_operator_and_the_reply_sensor_stays_cheap() -> None:
    # DAG files import them on every parse: no hook, models, store or trigger machinery until a task runs
    # (Airflow 2's own sensor base imports its trigger base, so that one is checked on Airflow 3 only).
    heavy = [
        "airflow_provider_whatsapp.webhooks.store",
        "airflow_provider_whatsapp.messages",
        "airflow_provider_whatsapp.hooks.maton",
        *(["airflow.triggers.base"] if AIRFLOW_V_3_PLUS else []),
    ]
    code = (
        "import sys\n"
        "import airflow_provider_whatsapp.operators.approval, airflow_provider_whatsapp.sensors.reply\n"
        f"print([name for name in {heavy!r} if name in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, cwd=REPO_ROOT
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
