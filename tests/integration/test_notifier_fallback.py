"""A notifier whose template fails to render still alerts, under a real ``dag.test()`` run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MESSAGES
from tests.dagrun import run_dag, task_states
from tests.loopback import LoopbackServer, Reply, sent

pytestmark = pytest.mark.integration

DAGS = Path(__file__).parent / "dags"


def test_alerts_are_sent_when_their_templates_fail_to_render(
    maton_conn: LoopbackServer, dags_folder: Path
) -> None:
    maton_conn.route("POST", MESSAGES, Reply(json=sent("wamid.ONE")), Reply(json=sent("wamid.TWO")))

    dag_run = run_dag(DAGS / "whatsapp_alert_render_fails.py", dags_folder, "whatsapp_alert_render_fails")

    states = task_states(dag_run)
    assert states == {"works": "success", "explode": "failed"}
    success, failure = (r.json["text"]["body"] for r in maton_conn.requests_to("POST", MESSAGES))
    assert success.startswith("Airflow: whatsapp_alert_render_fails.works (run ")
    assert dag_run.run_id in success
    assert "body failed to render" in success
    assert "whatsapp_alert_render_fails.explode" in failure
    assert "failed: disk full on /data" in failure
    assert "body failed to render" in failure
    assert "no_such_value" not in success + failure, "the render error belongs in the log, not the message"
