"""Every example DAG, end to end with ``dag.test()`` against the sandbox, on the installed Airflow.

The DAGs are discovered from ``example_dags/``: a new example is covered without touching this file.
Each must finish in success and send at least one message that the sandbox stored.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS
from airflow_provider_whatsapp.sandbox import WhatsAppSandbox
from tests.dagrun import run_dag, task_states

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"

# DAGs whose default params make them fail on purpose (to show an alert), and the conf that does not.
FAILS_ON_PURPOSE = {"example_whatsapp_etl_alert": {"fail_load": False}}
# DAGs that wait for a person's answer on WhatsApp: they need the webhook receiver and a tap, so they run
# end to end in tests/e2e (and the failing ETL alert, which confirms its alert's status, too).
WAITS_FOR_AN_ANSWER = {"example_whatsapp_approval"}


def _literal_dag_ids(source: Path) -> list[str]:
    """DAG ids written in the file: ``DAG("id")``/``DAG(dag_id="id")``, or ``@dag`` functions' names."""
    tree = ast.parse(source.read_text())
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "DAG":
            for arg in [*node.args[:1], *(k.value for k in node.keywords if k.arg == "dag_id")]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.append(arg.value)
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if getattr(target, "id", getattr(target, "attr", None)) == "dag":
                    explicit = [
                        k.value.value
                        for k in (decorator.keywords if isinstance(decorator, ast.Call) else [])
                        if k.arg == "dag_id" and isinstance(k.value, ast.Constant)
                    ]
                    found.extend(explicit or [node.name])
    return found


def _example_cases() -> list[object]:
    cases: list[object] = []
    for source in sorted(EXAMPLES.glob("*.py")):
        if source.name.startswith("_"):
            continue
        ids = _literal_dag_ids(source) or [source.stem]
        cases.extend(
            pytest.param(source, dag_id, id=f"{source.stem}:{dag_id}")
            for dag_id in ids
            if dag_id not in WAITS_FOR_AN_ANSWER
        )
    return cases


def test_the_examples_folder_is_discovered() -> None:
    files = [p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")]
    assert len(_example_cases()) + len(WAITS_FOR_AN_ANSWER) >= len(files)


@pytest.mark.parametrize(("source", "dag_id"), _example_cases())
def test_example_dag_runs_against_the_sandbox(
    source: Path, dag_id: str, whatsapp_sandbox: WhatsAppSandbox, dags_folder: Path
) -> None:
    with whatsapp_sandbox.labelled(dag_id):
        dag_run = run_dag(source, dags_folder, dag_id, run_conf=FAILS_ON_PURPOSE.get(dag_id))

    states = task_states(dag_run)
    assert str(dag_run.state).endswith("success"), f"{dag_id} ended {dag_run.state}: {states}"
    sent = [m for m in whatsapp_sandbox.messages if m.label == dag_id]
    assert sent, f"{dag_id} ran but the sandbox received no message from it:\n{whatsapp_sandbox.transcript()}"
    assert all(m.id.startswith("wamid.") for m in sent)


@pytest.mark.skipif(not AIRFLOW_V_3_PLUS, reason="only Airflow 3 has runs without a logical date")
@pytest.mark.parametrize(("source", "dag_id"), _example_cases())
def test_example_dag_runs_without_a_logical_date(
    source: Path, dag_id: str, whatsapp_sandbox: WhatsAppSandbox, dags_folder: Path
) -> None:
    """As when triggered from the REST API or ``airflow dags trigger`` without ``-l``: no ``{{ ds }}``."""
    with whatsapp_sandbox.labelled(dag_id):
        dag_run = run_dag(
            source, dags_folder, dag_id, logical_date=None, run_conf=FAILS_ON_PURPOSE.get(dag_id)
        )

    assert dag_run.logical_date is None
    states = task_states(dag_run)
    assert str(dag_run.state).endswith("success"), f"{dag_id} ended {dag_run.state}: {states}"
    sent = [m for m in whatsapp_sandbox.messages if m.label == dag_id]
    assert sent, f"{dag_id} sent nothing:\n{whatsapp_sandbox.transcript()}"
    assert "{{" not in whatsapp_sandbox.transcript()
    assert "None" not in whatsapp_sandbox.transcript(), whatsapp_sandbox.transcript()


# The ETL example failing on purpose confirms its alert's status: tests/e2e/test_conversations.py runs it
# with the receiver (the alert arrives as its template outside the window, or after a 131047 text).
