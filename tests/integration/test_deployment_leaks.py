"""Leak probes on Airflow 2.11 run the way a deployment runs tasks, not with ``dag.test()``.

The CLI serialises the DAG, triggers a run, and runs each task as an executor would
(``airflow tasks run DAG TASK RUN_ID --local``: a LocalTaskJob and the StandardTaskRunner, whose file
task handler writes the real log files). A loopback gateway echoes the key back in every answer. The
test then reads every file under the logs folder, the ``xcom`` table and the bulk journal.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS
from tests.conftest import PHONE_NUMBER_ID, REPO_ROOT
from tests.loopback import LoopbackServer, Recorded, Reply, Responder, graph_error, sent

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        AIRFLOW_V_3_PLUS,
        reason="on Airflow 3 the system tests (api-server, scheduler, dag-processor) probe a deployment",
    ),
]

DAG_FILE = Path(__file__).parent / "dags" / "whatsapp_leak_probe.py"
DAG_ID = "whatsapp_leak_probe"
MESSAGES = f"/whatsapp-business/v21.0/{PHONE_NUMBER_ID}/messages"
REFUSED = "14155550199"


def echoing(key: str) -> Responder:
    def answer(request: Recorded) -> Reply:
        if request.json["to"] == REFUSED:
            said = graph_error(131009, f"Bad header: Bearer {key}", details=f"the key {key} is refused")
            return Reply(400, said)
        return Reply(json=sent(f"wamid.{key}"))

    return answer


def airflow(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return f"$ airflow {' '.join(args)} -> {done.returncode}\n{done.stdout}{done.stderr}"


def files_under(folder: Path) -> dict[Path, str]:
    return {p: p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()}


def xcom_rows(database: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT run_id, task_id, value FROM xcom").fetchall()
    return [
        (run_id, task_id, bytes(value or b"").decode(errors="replace")) for run_id, task_id, value in rows
    ]


@pytest.mark.parametrize("source", ["connection", "MATON_API_KEY"])
def test_no_key_in_task_logs_xcom_or_journal_of_a_deployed_run(
    loopback: LoopbackServer, tmp_path: Path, airflow_db: Path, source: str
) -> None:
    key = f"mtn-deployed-{uuid.uuid4().hex}-SECRET"
    loopback.route("POST", rf"^{MESSAGES}$", echoing(key))
    dags, logs, journal = tmp_path / "dags", tmp_path / "logs", tmp_path / "journal"
    dags.mkdir()
    shutil.copy(DAG_FILE, dags)
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(logs),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
        "LEAK_PROBE_JOURNAL": str(journal),
        # No scheduler runs here: the CLI runs each task, so the task's own follow-on scheduling
        # (which would leave the next task "scheduled", not runnable from the CLI) stays off.
        "AIRFLOW__SCHEDULER__SCHEDULE_AFTER_TASK_EXECUTION": "False",
    }
    env.pop("AIRFLOW_CONN_MATON_DEFAULT", None)
    if source == "connection":
        conn = {"conn_type": "maton", "host": loopback.url, "password": key}
        env["AIRFLOW_CONN_MATON_DEFAULT"] = json.dumps(conn)
    else:
        env.update(MATON_API_KEY=key, MATON_BASE_URL=loopback.url)
    run_id = f"leak_probe_{uuid.uuid4().hex}"

    transcript = [airflow(env, "dags", "reserialize"), airflow(env, "dags", "trigger", DAG_ID, "-r", run_id)]
    for task_id in ("echoed", "refused", "bulk"):
        transcript.append(airflow(env, "tasks", "run", DAG_ID, task_id, run_id, "--local"))
    shown = "\n".join(transcript)[-6000:]

    # The probe ran: every send reached the gateway with the key, and each task wrote its log.
    assert len(loopback.requests) == 4, shown
    assert {r.header("Authorization") for r in loopback.requests} == {f"Bearer {key}"}
    task_logs = files_under(logs)
    text = "\n".join(task_logs.values())
    assert "Sent a text message to +1415***0100: wamid.***" in text, shown
    assert "A parameter value is invalid. (Graph error 131009: Bad header: Bearer ***" in text, shown
    assert "Bulk send done: 1 sent" in text, shown
    xcoms = [row for row in xcom_rows(airflow_db / "airflow.db") if row[0] == run_id]
    assert {task_id for _run, task_id, _value in xcoms} == {"echoed", "bulk"}
    journal_files = files_under(journal)
    assert journal_files

    # ...and the key is nowhere: not in a log file, an XCom (of any run) or the journal.
    everywhere = {
        **{str(path): content for path, content in task_logs.items()},
        **{f"xcom {run}/{task}": value for run, task, value in xcom_rows(airflow_db / "airflow.db")},
        **{str(path): content for path, content in journal_files.items()},
    }
    assert [where for where, content in everywhere.items() if key in content] == []
