"""The example DAG end to end under dag.test(): create, wait deferred until APPROVED, send."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_whatsapp.triggers.template import WhatsAppTemplateApprovalTrigger
from tests.conftest import PHONE_NUMBER_ID, REPO_ROOT, WABA_ID
from tests.dagrun import load_dag, task_states
from tests.loopback import LoopbackServer, Reply, sent

pytestmark = pytest.mark.integration

EXAMPLE = REPO_ROOT / "example_dags" / "example_template_lifecycle.py"
DAG_ID = "example_whatsapp_template_lifecycle"
TEMPLATES = rf"^/whatsapp-business/v21\.0/{WABA_ID}/message_templates$"


def listing(status: str) -> Reply:
    template = {
        "name": "daily_sales_report",
        "language": "en_US",
        "status": status,
        "category": "UTILITY",
        "id": "1234567890",
    }
    return Reply(json={"data": [template], "paging": {"cursors": {"before": "b", "after": "a"}}})


def test_example_template_lifecycle_dag_completes(
    maton_conn: LoopbackServer, dags_folder, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[dict] = []
    original_run = WhatsAppTemplateApprovalTrigger.run

    async def spy_run(self):  # type: ignore[no-untyped-def]
        async for event in original_run(self):
            events.append(event.payload)
            yield event

    monkeypatch.setattr(WhatsAppTemplateApprovalTrigger, "run", spy_run)
    maton_conn.route(
        "POST", TEMPLATES, Reply(json={"id": "1234567890", "status": "PENDING", "category": "UTILITY"})
    )
    # The sensor's first look (in the worker) sees PENDING, so it defers; the trigger then sees the
    # status flip to APPROVED.
    maton_conn.route("GET", TEMPLATES, listing("PENDING"), listing("PENDING"), listing("APPROVED"))
    maton_conn.route("POST", rf"/{PHONE_NUMBER_ID}/messages$", Reply(json=sent("wamid.REPORT")))
    dag = load_dag(EXAMPLE, dags_folder, DAG_ID)
    dag.get_task("wait_for_approval").poke_interval = 0.1  # the example waits minutes between looks

    dag_run = dag.test()

    assert task_states(dag_run) == {
        "create_template": "success",
        "wait_for_approval": "success",
        "send_report": "success",
    }
    created = maton_conn.requests_to("POST", TEMPLATES)[0].json
    assert created["name"] == "daily_sales_report"
    assert created["components"][1]["text"].startswith("Hello {{1}}")  # not rendered by Jinja
    assert len(maton_conn.requests_to("GET", TEMPLATES)) == 3
    assert [e["status"] for e in events] == ["approved"]  # the sensor really deferred to its trigger
    (send,) = maton_conn.requests_to("POST", r"/messages$")
    template = send.json["template"]
    assert send.json["to"] == "14155550100"
    assert template["name"] == "daily_sales_report"
    assert template["language"]["code"] == "en_US"
    body = next(c for c in template["components"] if c["type"] == "body")
    assert body["parameters"][0] == {"type": "text", "text": "Ana"}


def test_a_rejected_template_fails_the_run_without_retries(maton_conn: LoopbackServer, dags_folder) -> None:
    maton_conn.route(
        "POST", TEMPLATES, Reply(json={"id": "1234567890", "status": "PENDING", "category": "UTILITY"})
    )
    rejected = listing("REJECTED")
    rejected.json["data"][0]["rejected_reason"] = "INVALID_FORMAT"
    maton_conn.route("GET", TEMPLATES, listing("PENDING"), rejected)
    dag = load_dag(EXAMPLE, dags_folder, DAG_ID)
    sensor = dag.get_task("wait_for_approval")
    sensor.poke_interval = 0.1
    sensor.retries = 3
    sensor.retry_delay = timedelta(seconds=0)

    dag_run = dag.test()

    states = task_states(dag_run)
    assert states["wait_for_approval"] == "failed"  # not up_for_retry: a rejection is permanent
    assert states["send_report"] == "upstream_failed"
    assert maton_conn.requests_to("POST", r"/messages$") == []
