"""The bulk example DAG end to end with dag.test(): subscribers from XCom, template per recipient."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bulk.helpers import MESSAGES, Inbox
from tests.conftest import REPO_ROOT
from tests.dagrun import run_dag, task_states
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.integration


def test_example_bulk_dag_sends_each_subscriber_their_template(
    maton_conn: LoopbackServer, dags_folder: Path
) -> None:
    inbox = Inbox()
    maton_conn.route("POST", MESSAGES, inbox)

    dag_run = run_dag(REPO_ROOT / "example_dags" / "example_bulk.py", dags_folder, "example_whatsapp_bulk")

    assert set(task_states(dag_run).values()) == {"success"}
    assert sorted(inbox.delivered) == ["14155550100", "14155550101", "442079460000", "4930901820"]
    by_recipient = {r.json["to"]: r.json for r in maton_conn.requests_to("POST", MESSAGES)}
    ada = by_recipient["14155550100"]["template"]
    assert ada["name"] == "weekly_digest" and ada["language"] == {"code": "en_US"}
    name, day = ada["components"][0]["parameters"]
    assert name == {"type": "text", "text": "Ada"}
    assert len(day["text"]) == 10  # the run's ds, YYYY-MM-DD
