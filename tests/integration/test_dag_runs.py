"""A real DAG run (``dag.test()``) on the installed Airflow: templated XCom between sends, and the
failure notifier's message arriving at the loopback gateway."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PHONE_NUMBER_ID
from tests.dagrun import run_dag, task_states
from tests.loopback import LoopbackServer, Reply, sent

pytestmark = pytest.mark.integration

DAGS = Path(__file__).parent / "dags"
MESSAGES = rf"^/whatsapp-business/v21\.0/{PHONE_NUMBER_ID}/messages$"


def test_templated_xcom_and_failure_notifier(maton_conn: LoopbackServer, dags_folder: Path) -> None:
    maton_conn.route(
        "POST",
        MESSAGES,
        Reply(json=sent("wamid.FIRST")),
        Reply(json=sent("wamid.SECOND")),
        Reply(json=sent("wamid.ALERT")),
    )

    dag_run = run_dag(DAGS / "whatsapp_xcom_and_alert.py", dags_folder, "whatsapp_xcom_and_alert")

    states = task_states(dag_run)
    assert states["first"] == "success"
    assert states["second"] == "success"
    assert states["explode"] == "failed"
    first, second, alert = (r.json for r in maton_conn.requests_to("POST", MESSAGES))
    assert first["text"]["body"].startswith("Load started for 20")
    assert second["text"]["body"] == "Follow-up to wamid.FIRST"
    assert second["context"] == {"message_id": "wamid.FIRST"}
    assert alert["to"] == "14155550100"
    assert alert["text"]["body"] == "whatsapp_xcom_and_alert.explode failed: disk full on /data"
