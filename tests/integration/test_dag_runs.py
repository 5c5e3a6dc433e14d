"""A real DAG run (``dag.test()``) on the installed Airflow: templated XCom between sends, and the
failure notifier's message arriving at the loopback gateway."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS
from tests.conftest import MESSAGES, PHONE_NUMBER_ID, TEST_KEY
from tests.dagrun import run_dag, task_states
from tests.loopback import LoopbackServer, Reply, sent

pytestmark = pytest.mark.integration

DAGS = Path(__file__).parent / "dags"


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


# --- the example DAGs, end to end against the loopback gateway -----------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
MEDIA = rf"^/whatsapp-business/v21\.0/{PHONE_NUMBER_ID}/media$"


def _sent(server: LoopbackServer) -> list[dict]:
    return [r.json for r in server.requests_to("POST", MESSAGES)]


def test_example_report_uploads_the_pdf_and_sends_the_template(
    maton_conn: LoopbackServer, dags_folder: Path, tmp_path: Path
) -> None:
    maton_conn.route("POST", MEDIA, Reply(json={"id": "media-report"}))
    maton_conn.route("POST", MESSAGES, Reply(json=sent("wamid.REPORT")))

    dag_run = run_dag(
        EXAMPLES / "example_report.py",
        dags_folder,
        "example_whatsapp_report",
        run_conf={"recipient": "+1 415 555 0100", "report_dir": f"file://{tmp_path}"},
    )

    assert set(task_states(dag_run).values()) == {"success"}
    (upload,) = maton_conn.requests_to("POST", MEDIA)
    assert upload.body.count(b"%PDF-1.4") == 1 and b"application/pdf" in upload.body
    (send,) = _sent(maton_conn)
    header, body = send["template"]["components"]
    assert header["parameters"][0]["document"]["id"] == "media-report"
    assert header["parameters"][0]["document"]["filename"].startswith("sales_20")
    day, orders = (p["text"] for p in body["parameters"])
    assert len(list(tmp_path.glob(f"sales_{day}.*"))) == 2  # the CSV and the PDF
    assert int(orders) > 0


# fail_load=True confirms its alert's status, which needs the webhook receiver: tests/e2e runs it.
@pytest.mark.parametrize("fail_load", [False])
def test_example_etl_alert(maton_conn: LoopbackServer, dags_folder: Path, fail_load: bool) -> None:
    maton_conn.route("POST", MESSAGES, Reply(json=sent("wamid.ALERT")))

    dag_run = run_dag(
        EXAMPLES / "example_etl_alert.py",
        dags_folder,
        "example_whatsapp_etl_alert",
        run_conf={"fail_load": fail_load},
    )

    (message,) = _sent(maton_conn)
    assert message["to"] == "14155550100"
    if fail_load:
        assert task_states(dag_run)["load"] == "failed"
        assert message["text"]["body"].startswith("*example_whatsapp_etl_alert* failed at task `load`")
        assert "disk quota exceeded" in message["text"]["body"]
    else:
        assert task_states(dag_run)["load"] == "success"
        assert message["text"]["body"].startswith("example_whatsapp_etl_alert: loaded 50 rows for 20")


def test_example_interactive_threads_the_list_under_the_buttons(
    maton_conn: LoopbackServer, dags_folder: Path
) -> None:
    maton_conn.route(
        "POST",
        MESSAGES,
        Reply(json=sent("wamid.ASK")),
        Reply(json=sent("wamid.LIST")),
        Reply(json=sent("wamid.CTA")),
    )

    dag_run = run_dag(EXAMPLES / "example_interactive.py", dags_folder, "example_whatsapp_interactive")

    assert set(task_states(dag_run).values()) == {"success"}
    buttons, listing, cta = _sent(maton_conn)
    assert [b["reply"]["title"] for b in buttons["interactive"]["action"]["buttons"]] == [
        "Publish",
        "Hold",
        "Show details",
    ]
    assert listing["context"] == {"message_id": "wamid.ASK"}
    assert listing["interactive"]["type"] == "list"
    assert cta["interactive"]["action"]["name"] == "cta_url"


def test_example_fanout_maps_one_send_per_recipient(maton_conn: LoopbackServer, dags_folder: Path) -> None:
    maton_conn.route("POST", MESSAGES, Reply(json=sent("wamid.FAN")))

    dag_run = run_dag(EXAMPLES / "example_fanout.py", dags_folder, "example_whatsapp_fanout")

    assert set(task_states(dag_run).values()) == {"success"}
    assert sorted(m["to"] for m in _sent(maton_conn)) == ["14155550100", "14155550101", "442079460000"]


def _debug_dag_run(server: LoopbackServer, dags_folder: Path, **env: str) -> str:
    """Run the secret-probe DAG in a child process with DEBUG logging; return everything it printed."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    server.route("POST", MESSAGES, Reply(json=sent("wamid.OK")), Reply(401, {"error": "Invalid API key"}))
    child_env = {
        **os.environ,
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
        "AIRFLOW__LOGGING__NAMESPACE_LEVELS": "httpx=DEBUG httpcore=DEBUG airflow_provider_whatsapp=DEBUG",
        **env,
    }
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.integration.secret_probe_run",
            str(DAGS / "whatsapp_secret_probe.py"),
            str(dags_folder),
        ],
        cwd=REPO_ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = child.stdout + child.stderr
    assert "'accepted': 'success'" in output and "'refused': 'failed'" in output, output[-3000:]
    assert "Maton API key was refused" in output  # the error was logged in full
    assert "httpcore" in output  # DEBUG logging was really on
    assert [r.header("Authorization") for r in server.requests] == [
        f"Bearer {env.get('MATON_API_KEY', TEST_KEY)}"
    ] * 2
    return output


def _only_the_test_supervisors_mask_lines(output: str, key: str) -> list[str]:
    """The lines carrying ``key``, after checking each is Airflow's own.

    ``dag.test()`` on Airflow 3 runs the task supervisor in-process, and that supervisor logs every
    message it is sent, value included, at DEBUG, MaskSecret among them (a deployed supervisor logs
    "body omitted" instead). The key is registered there on purpose, so that the real supervisor,
    which writes the task log file, masks it. Nothing the provider logs, raises or returns may carry it.
    """
    lines = [line for line in output.splitlines() if key in line]
    assert all("Sending request" in line and "MaskSecret(" in line for line in lines), lines
    return lines


def test_key_from_the_environment_shows_only_in_airflows_own_test_supervisor_line(
    loopback: LoopbackServer, dags_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_MATON_DEFAULT", raising=False)
    key = "mtn-env-key-0b7d41aa-SECRET"

    output = _debug_dag_run(
        loopback,
        dags_folder,
        MATON_API_KEY=key,
        MATON_BASE_URL=loopback.url,
    )

    mask_lines = _only_the_test_supervisors_mask_lines(output, key)
    # Airflow knows nothing of MATON_API_KEY: only the provider can have sent the key to the supervisor.
    assert bool(mask_lines) is AIRFLOW_V_3_PLUS


def test_key_from_a_connection_shows_only_in_airflows_own_test_supervisor_line(
    maton_conn: LoopbackServer, dags_folder: Path
) -> None:
    output = _debug_dag_run(maton_conn, dags_folder)

    _only_the_test_supervisors_mask_lines(output, TEST_KEY)
