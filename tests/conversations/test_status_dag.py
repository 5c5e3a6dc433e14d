"""Under ``dag.test()`` on real Airflow (2.11 and 3.x): a send confirmed in the triggerer, then a status
sensor deferred until the message is read; the statuses come from the sandbox's webhooks."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp.sandbox.controller import WhatsAppSandbox
from airflow_provider_whatsapp.spec.error_codes import RE_ENGAGEMENT
from airflow_provider_whatsapp.triggers.status import WhatsAppMessageStatusTrigger
from tests.conversations.statuses import RECIPIENT, Receiver, store_at
from tests.dagrun import load_dag, task_states

pytestmark = [pytest.mark.integration, pytest.mark.whatsapp_sandbox(auto_deliver=False)]

DAG_FILE = Path(__file__).parent / "dags" / "whatsapp_confirm_and_status.py"
DAG_ID = "whatsapp_confirm_and_status"


@pytest.fixture
def triggers(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each status trigger that runs (appended as it starts), and later each event it yields."""
    runs: list[Any] = []
    original = WhatsAppMessageStatusTrigger.run

    async def spy(self: WhatsAppMessageStatusTrigger) -> Any:
        runs.append(self.target)
        async for event in original(self):
            runs.append(event.payload["status"])
            yield event

    monkeypatch.setattr(WhatsAppMessageStatusTrigger, "run", spy)
    return runs


def test_confirm_and_the_status_sensor_resume_from_their_triggers(
    whatsapp_sandbox: WhatsAppSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dags_folder: Path,
    triggers: list[Any],
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_DEFAULT", whatsapp_sandbox.connection_json(events_path=str(tmp_path))
    )

    def phone(sandbox: WhatsAppSandbox, message: Any) -> None:
        # Each status only once its waiter deferred: both tasks must really wait in the triggerer.
        threading.Thread(target=_statuses_after_deferrals, args=(sandbox, message.id, triggers)).start()

    with Receiver(whatsapp_sandbox, store_at(tmp_path), react=phone):
        dag_run = load_dag(DAG_FILE, dags_folder, DAG_ID).test()

    assert task_states(dag_run) == {"send": "success", "wait_read": "success"}
    assert triggers == ["delivered", "reached", "read", "reached"]
    (message,) = whatsapp_sandbox.messages_to(RECIPIENT)  # sent once, though the task resumed
    assert message.status == "read"


def test_a_131047_failure_fails_the_confirming_task_without_a_retry(
    whatsapp_sandbox: WhatsAppSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dags_folder: Path
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_DEFAULT", whatsapp_sandbox.connection_json(events_path=str(tmp_path))
    )
    dag = load_dag(DAG_FILE, dags_folder, DAG_ID)
    dag.get_task("send").retries = 2

    def window_closed(sandbox: WhatsAppSandbox, message: Any) -> None:
        sandbox.set_status(message.id, "failed", error_code=RE_ENGAGEMENT)

    with Receiver(whatsapp_sandbox, store_at(tmp_path), react=window_closed):
        dag_run = dag.test()

    assert task_states(dag_run) == {"send": "failed", "wait_read": "upstream_failed"}
    assert len(whatsapp_sandbox.messages_to(RECIPIENT)) == 1


def _statuses_after_deferrals(sandbox: WhatsAppSandbox, wamid: str, triggers: list[Any]) -> None:
    from tests.conversations.statuses import wait_until

    wait_until(lambda: "delivered" in triggers)
    sandbox.set_status(wamid, "delivered")
    wait_until(lambda: "read" in triggers)
    sandbox.set_status(wamid, "read")
