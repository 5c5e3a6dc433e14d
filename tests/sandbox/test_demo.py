"""``make demo``'s orchestration: real ``airflow dags test`` runs against the sandbox, in a fresh home."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS
from airflow_provider_whatsapp.sandbox import demo

DAG_SOURCE = textwrap.dedent(
    """
    from datetime import datetime

    from airflow_provider_whatsapp.operators.messages import WhatsAppSendTextOperator

    try:
        from airflow.sdk import DAG
    except ImportError:
        from airflow import DAG

    with DAG("{dag_id}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        WhatsAppSendTextOperator(task_id="hello", to="+1 415 555 0100", body="{body}")
    """
)


@pytest.mark.integration
@pytest.mark.skipif(not AIRFLOW_V_3_PLUS, reason="make demo runs in the Airflow 3 environment")
def test_demo_runs_each_dag_and_prints_a_transcript(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "demo_one.py").write_text(DAG_SOURCE.format(dag_id="demo_one", body="Load *finished*"))
    (dags / "demo_two.py").write_text(DAG_SOURCE.format(dag_id="demo_two", body="Second DAG"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SANDBOX", raising=False)

    code = demo.main(["--dags-folder", str(dags), "--home", ".demo", "--port", "0"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "✓ demo_one" in out and "✓ demo_two" in out
    assert "+1 415 555 0100: 2 message(s)" in out
    assert "[demo_one] Load *finished*" in out and "[demo_two] Second DAG" in out
    assert "Inbox: http://127.0.0.1:" in out
    assert (tmp_path / ".demo" / "logs" / "demo_one.log").exists()


def test_demo_without_the_sandbox_needs_a_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SANDBOX", "0")
    monkeypatch.delenv("MATON_API_KEY", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_MATON_DEFAULT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert demo.main(["--dags-folder", str(tmp_path)]) == 2


def test_real_gateway_connection_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATON_API_KEY", "k")
    monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", "1")
    monkeypatch.delenv("MATON_BASE_URL", raising=False)
    monkeypatch.delenv("WHATSAPP_WABA_ID", raising=False)
    conn = demo._real_gateway_connection()
    assert conn is not None
    assert '"host": "https://api.maton.ai"' in conn and '"extra": {"phone_number_id": "1"}' in conn


@pytest.mark.parametrize(
    ("code", "log", "ok"),
    [
        (0, "DagRun Finished: dag_id=x, state=success, run_type=manual", True),
        (0, "DagRun Finished: dag_id=x, state=failed, run_type=manual", False),
        (1, "DagRun Finished: dag_id=x, state=success", False),
        (0, "no verdict line at all", True),
    ],
)
def test_a_run_is_judged_by_its_finished_line(tmp_path: Path, code: int, log: str, ok: bool) -> None:
    path = tmp_path / "run.log"
    path.write_text(log)
    assert demo._run_succeeded(code, path) is ok
