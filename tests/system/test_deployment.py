"""The example DAGs and the leak probes on a running Airflow 3: triggered through the REST API, run by
the scheduler's LocalExecutor under the real task supervisor, the template sensor resumed by the real
triggerer; then the sandbox's messages, the task log files, the XCom table and the bulk journals."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_whatsapp.sandbox.demo import FAILS_ON_PURPOSE
from tests.loopback import LoopbackServer
from tests.system.conftest import (
    CONNECTION_KEY,
    ENV_KEY,
    SANDBOX_KEY,
    VERIFY_TOKEN,
    callback_url,
    digits,
    events_path,
)
from tests.system.dags.whatsapp_leak_probes import ECHO_PHONE_NUMBER_IDS
from tests.system.harness import AirflowDeployment, SandboxProcess, wait_until

EXAMPLE_DAGS = (
    "example_whatsapp_bulk",
    "example_whatsapp_etl_alert",
    "example_whatsapp_fanout",
    "example_whatsapp_interactive",
    "example_whatsapp_report",
    "example_whatsapp_template_lifecycle",
)
PROBES = {"whatsapp_leak_probe_env": ENV_KEY, "whatsapp_leak_probe_connection": CONNECTION_KEY}
LIFECYCLE = "example_whatsapp_template_lifecycle"
LIFECYCLE_TEMPLATE = "daily_sales_report"
LOGICAL_DATE = "2026-03-04T05:00:00+00:00"
# Every recipient the example DAGs write to, as they write it and as WhatsApp ids.
EXAMPLE_RECIPIENTS = ("+1 415 555 0100", "+1 415 555 0101", "+44 20 7946 0000", "+49 30 901820")
RUN_TIMEOUT = 150.0


@dataclass
class Run:
    dag_id: str
    run_id: str
    state: str = ""
    task_states: dict[str, str | None] = field(default_factory=dict)
    description: str = ""


@dataclass
class Runs:
    """Everything the module's tests look at, from one pass over the deployment."""

    by_name: dict[str, Run]
    sensor_states: list[str]

    def __getitem__(self, name: str) -> Run:
        return self.by_name[name]


def _approve_once_deferred(airflow: AirflowDeployment, sandbox: SandboxProcess, run_id: str) -> list[str]:
    """Watch the template sensor; once it is deferred, approve the template (as Meta's review would).

    The approval waits for ``deferred``, so the sensor's own first look sees PENDING and hands over to
    the triggerer; a latency on template reads (set before the run) holds the trigger's first look long
    enough for the approval to be what it reads.
    """
    seen: list[str] = []

    def deferred_or_done() -> bool:
        state = airflow.task_states(LIFECYCLE, run_id).get("wait_for_approval")
        if state and (not seen or seen[-1] != state):
            seen.append(state)
        # Stop on anything the sensor cannot come back from to deferred: the test then says what it saw.
        return state in ("deferred", "success", "failed", "upstream_failed", "skipped")

    try:
        wait_until(
            deferred_or_done, timeout=RUN_TIMEOUT, what="the template sensor to be deferred", interval=0.1
        )
    except AssertionError as error:
        seen.append(f"never deferred: {error}")
    finally:
        sandbox.control("POST", f"templates/{LIFECYCLE_TEMPLATE}/status", json={"status": "APPROVED"})
        sandbox.control("DELETE", "faults")
    return seen


@pytest.fixture(scope="module")
def runs(
    deployment: AirflowDeployment, sandbox: SandboxProcess, tmp_path_factory: pytest.TempPathFactory
) -> Runs:
    report_dir = f"file://{tmp_path_factory.mktemp('reports')}"
    deployment.wait_for_dags([*EXAMPLE_DAGS, *PROBES])
    for dag_id in [*EXAMPLE_DAGS, *PROBES]:
        deployment.unpause(dag_id)
    sandbox.control("POST", "faults", json={"latency": 8, "method": "GET", "path": "message_templates"})

    triggered: dict[str, Run] = {}

    def trigger(name: str, dag_id: str, conf: dict | None = None, logical_date: str | None = None) -> None:
        triggered[name] = Run(dag_id, deployment.trigger(dag_id, conf=conf, logical_date=logical_date))

    trigger(LIFECYCLE, LIFECYCLE)
    for dag_id in EXAMPLE_DAGS:
        if dag_id == LIFECYCLE:
            continue
        conf = {"report_dir": report_dir} if dag_id == "example_whatsapp_report" else None
        trigger(dag_id, dag_id, conf=conf)
    for dag_id, conf in FAILS_ON_PURPOSE.items():
        trigger(f"{dag_id}:conf", dag_id, conf=conf)
    trigger(
        "with_logical_date",
        "example_whatsapp_report",
        conf={"report_dir": report_dir},
        logical_date=LOGICAL_DATE,
    )
    for dag_id in PROBES:
        trigger(dag_id, dag_id)

    sensor_states = _approve_once_deferred(deployment, sandbox, triggered[LIFECYCLE].run_id)
    for run in triggered.values():
        try:
            run.state = deployment.wait_for_run(run.dag_id, run.run_id, timeout=RUN_TIMEOUT)
        except AssertionError as error:
            run.state = f"did not finish: {error}"
        run.task_states = deployment.task_states(run.dag_id, run.run_id)
        run.description = deployment.describe_run(run.dag_id, run.run_id)
    # The sensor's last state, after the run ended.
    final = triggered[LIFECYCLE].task_states.get("wait_for_approval")
    if final and sensor_states[-1] != final:
        sensor_states.append(final)
    return Runs(triggered, sensor_states)


# --- the deployment itself ----------------------------------------------------------------------


def test_every_component_listens_on_loopback_only(deployment: AirflowDeployment) -> None:
    addresses = deployment.listening_addresses()

    assert f"127.0.0.1:{deployment.port}" in addresses
    assert [a for a in addresses if not a.startswith(("127.", "::1:"))] == []


# --- the example DAGs ---------------------------------------------------------------------------


@pytest.mark.parametrize("dag_id", [d for d in EXAMPLE_DAGS if d not in FAILS_ON_PURPOSE])
def test_example_without_logical_date_succeeds(runs: Runs, dag_id: str) -> None:
    run = runs[dag_id]
    assert run.state == "success", run.description
    assert set(run.task_states.values()) == {"success"}, run.description


@pytest.mark.parametrize("dag_id", sorted(FAILS_ON_PURPOSE))
def test_failing_example_fails_as_designed_and_alerts(
    runs: Runs, sandbox: SandboxProcess, dag_id: str
) -> None:
    failing, passing = runs[dag_id], runs[f"{dag_id}:conf"]
    assert failing.state == "failed", failing.description
    assert failing.task_states["load"] == "failed", failing.description
    # The on-call person has not written: their window is closed, so the alert went as the template,
    # and the failure callback returned only once its "sent" status came back through the receiver.
    alerts = [
        [
            p["text"]
            for c in m["payload"]["template"]["components"]
            if c["type"] == "body"
            for p in c["parameters"]
        ]
        for m in sandbox.messages()
        if m["type"] == "template" and m["payload"]["template"]["name"] == "etl_failure"
    ]
    assert [a[0] for a in alerts] == [f"{dag_id}.load"], alerts
    assert "disk quota exceeded" in alerts[0][2]
    texts = [m["payload"]["text"]["body"] for m in sandbox.messages() if m["type"] == "text"]
    # The same DAG with conf that lets the load succeed: its confirmation arrives instead.
    assert passing.state == "success", passing.description
    assert any(t.startswith(f"{dag_id}: loaded 50 rows") for t in texts), texts


def test_example_with_a_logical_date_succeeds(runs: Runs, sandbox: SandboxProcess) -> None:
    run = runs["with_logical_date"]
    assert run.state == "success", run.description
    templates = [m["payload"]["template"] for m in sandbox.messages() if m["type"] == "template"]
    days = [
        c["parameters"][0]["text"]
        for t in templates
        if t["name"] == "daily_report"
        for c in t["components"]
        if c["type"] == "body"
    ]
    assert "2026-03-03" in days  # the day before the logical date


def test_template_sensor_is_deferred_then_resumed_by_the_triggerer(
    runs: Runs, deployment: AirflowDeployment, sandbox: SandboxProcess
) -> None:
    run = runs[LIFECYCLE]
    assert "deferred" in runs.sensor_states, runs.sensor_states
    assert runs.sensor_states[-1] == "success", (runs.sensor_states, run.description)
    assert runs.sensor_states.index("deferred") < len(runs.sensor_states) - 1
    reads = [
        r
        for r in sandbox.control("GET", "requests")["data"]
        if "message_templates" in r["path"] and r["method"] == "GET"
    ]
    assert len(reads) >= 2, reads  # the sensor's own look, then the trigger's
    # The real triggerer ran the trigger: it wrote the trigger's log beside the task's.
    logs = deployment.task_log_files(LIFECYCLE, run.run_id, "wait_for_approval")
    assert [p for p in logs if ".trigger." in p.name], logs
    assert run.state == "success", run.description
    sent = [
        m
        for m in sandbox.messages()
        if m["type"] == "template" and m["payload"]["template"]["name"] == LIFECYCLE_TEMPLATE
    ]
    assert [m["wa_id"] for m in sent] == ["14155550100"]


def _kind(message: dict) -> str:
    if message["type"] == "template":
        return f"template:{message['payload']['template']['name']}"
    if message["type"] == "interactive":
        return f"interactive:{message['payload']['interactive']['type']}"
    if message["type"] == "text" and "Good morning!" in message["payload"]["text"]["body"]:
        return "text:fanout"
    return message["type"]


# What each example sends (ETL alert: see the failing-example test), by kind of message: recipients.
EXPECTED_MESSAGES = {
    "example_whatsapp_bulk": {"template:weekly_digest": sorted(digits(p) for p in EXAMPLE_RECIPIENTS)},
    "example_whatsapp_fanout": {"text:fanout": ["14155550100", "14155550101", "442079460000"]},
    "example_whatsapp_interactive": {
        "interactive:button": ["14155550100"],
        "interactive:list": ["14155550100"],
        "interactive:cta_url": ["14155550100"],
    },
    # Two runs: without and with a logical date.
    "example_whatsapp_report": {"template:daily_report": ["14155550100", "14155550100"]},
}


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_MESSAGES))
def test_example_messages_arrive_in_the_sandbox(runs: Runs, sandbox: SandboxProcess, dag_id: str) -> None:
    by_kind: dict[str, list[str]] = {}
    for message in sandbox.messages():
        by_kind.setdefault(_kind(message), []).append(message["wa_id"])

    for kind, recipients in EXPECTED_MESSAGES[dag_id].items():
        assert sorted(by_kind.get(kind, [])) == recipients, (kind, runs[dag_id].description)


# --- nothing secret or personal in what the deployment stores ------------------------------------


def _files_containing(files: list[Path], needles: tuple[str, ...]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in files:
        text = path.read_text(errors="replace")
        hits = [n for n in needles if n in text]
        if hits:
            found[str(path)] = hits
    return found


def test_task_logs_hold_no_api_key_and_no_full_phone_number(
    runs: Runs, deployment: AirflowDeployment
) -> None:
    example_logs = [p for d in EXAMPLE_DAGS for p in deployment.task_log_files(d)]
    # Every task that ran wrote its log file, so the files below are the ones to read.
    for run in runs.by_name.values():
        for ti in deployment.task_instances(run.dag_id, run.run_id):
            if ti["state"] in ("success", "failed"):
                logs = deployment.task_log_files(
                    run.dag_id, run.run_id, ti["task_id"], map_index=ti["map_index"]
                )
                assert logs, (run.dag_id, ti["task_id"], ti["map_index"])

    assert _files_containing(deployment.all_log_files(), (SANDBOX_KEY,)) == {}
    phones = tuple(
        {
            *EXAMPLE_RECIPIENTS,
            *(digits(p) for p in EXAMPLE_RECIPIENTS),
            *(f"+{digits(p)}" for p in EXAMPLE_RECIPIENTS),
        }
    )
    assert _files_containing(example_logs, phones) == {}


def test_xcom_holds_no_api_key(runs: Runs, deployment: AirflowDeployment) -> None:
    rows = deployment.xcom_rows()
    assert len({row[0] for row in rows if row[0] in EXAMPLE_DAGS}) >= 3, rows  # the examples' results
    assert [row[:3] for row in rows if SANDBOX_KEY in row[5]] == []


# --- the leak probes (issue 9.5): a key from MATON_API_KEY and from a connection, echoed back ------


def _probe_leaks(deployment: AirflowDeployment, key: str) -> dict[str, list[str]]:
    """Where ``key`` was found, by probe task (or by file, outside the probes' logs): the sinks."""
    leaks: dict[str, list[str]] = {}
    for path in deployment.all_log_files():
        if key in path.read_text(errors="replace"):
            task = next((p[8:] for p in path.parts if p.startswith("task_id=")), str(path))
            leaks.setdefault(task, []).append("log file")
    for _dag, _run, task, _xcom_key, _map_index, value in deployment.xcom_rows():
        if key in value:
            leaks.setdefault(task, []).append("xcom")
    journals = deployment.home / "whatsapp_bulk_progress"
    for path in sorted(journals.rglob("*")) if journals.exists() else []:
        if path.is_file() and key in path.read_text(errors="replace"):
            leaks.setdefault(path.name.split(".")[0], []).append("bulk journal")
    return {task: sorted(set(sinks)) for task, sinks in leaks.items()}


@pytest.mark.parametrize("dag_id", sorted(PROBES))
def test_leak_probe_finds_no_key(
    runs: Runs, deployment: AirflowDeployment, echo_server: LoopbackServer, dag_id: str
) -> None:
    key = PROBES[dag_id]
    run = runs[dag_id]
    # The probe really ran: every echo endpoint got the key, and each task wrote its log.
    reached = {
        r.path.split("/")[-2]
        for r in echo_server.requests_to("POST", r"/messages$")
        if r.header("authorization") == f"Bearer {key}"
    }
    assert reached == set(ECHO_PHONE_NUMBER_IDS.values()), run.description
    for task_id in run.task_states:
        logs = deployment.task_log_files(dag_id, run.run_id, task_id)
        assert [p for p in logs if f'"task_id":"{task_id}"' in p.read_text(errors="replace")], task_id
    assert run.task_states["bulk_reasons"] == "success", run.description
    bulk_result = [
        v
        for d, r, t, k, _m, v in deployment.xcom_rows()
        if (d, r, t, k) == (dag_id, run.run_id, "bulk_reasons", "return_value")
    ]
    assert len(bulk_result) == 1 and json.loads(bulk_result[0])["failed"] == 2, bulk_result

    leaks = _probe_leaks(deployment, key)
    count = sum(len(sinks) for sinks in leaks.values())
    assert leaks == {}, f"{count} leak(s) from {len(leaks)} of {len(run.task_states)} probes: {leaks}"


# --- conversations (issue 12): webhooks through the API server, waits resumed by the real triggerer ----
# These run last: they add messages the example checks above do not expect, and they restart the
# scheduler (with job scheduling on, which asset-triggered runs need) once the examples are paused.

APPROVAL = "example_whatsapp_approval"
REPORT_ON_REQUEST = "example_whatsapp_report_on_request"
STATUS_PROBE = "whatsapp_status_probe"
APPROVERS = ("14155550100", "14155550101")  # the approval example's default approvers
STRANGER = "14155550199"
STATUS_RECIPIENT = "447700900123"  # the status probe's
REQUESTER = "4930901820"


@dataclass
class Conversations:
    """Everything the conversation tests look at, from one pass."""

    approval: Run
    approval_states: list[str]
    stranger_tap: str
    approver_tap: str
    status: Run
    status_states: list[str]
    request_wamid: str
    report_runs: list[dict]
    asset_events: list[dict]


@pytest.fixture(scope="module")
def store(system_home: Path) -> Any:
    """The event store the receiver in the API server writes, read directly."""
    from datetime import timedelta

    from airflow_provider_whatsapp.webhooks.store import EventStore

    return EventStore(events_path(system_home), retention=timedelta(days=1))


def _watch(airflow: AirflowDeployment, dag_id: str, run_id: str, task_id: str, seen: list[str]) -> bool:
    state = airflow.task_states(dag_id, run_id).get(task_id)
    if state and (not seen or seen[-1] != state):
        seen.append(state)
    return state in ("deferred", "success", "failed", "upstream_failed", "skipped")


def _wait_for_a_wait(airflow: AirflowDeployment, run: Run, task_id: str, seen: list[str]) -> None:
    """Until ``task_id`` is deferred (or ended); the run's description when it never gets there."""
    try:
        wait_until(
            lambda: _watch(airflow, run.dag_id, run.run_id, task_id, seen),
            timeout=RUN_TIMEOUT,
            what=f"{run.dag_id}.{task_id} to be deferred (seen: {seen})",
        )
    except AssertionError as error:
        raise AssertionError(f"{error}\n{airflow.describe_run(run.dag_id, run.run_id)}") from None


def _questions(sandbox: SandboxProcess) -> list[dict]:
    return [
        m
        for m in sandbox.messages()
        if m["type"] == "interactive"
        and "Publish the numbers?" in m["payload"]["interactive"]["body"]["text"]
    ]


def _button(question: dict, title: str) -> str:
    buttons = question["payload"]["interactive"]["action"]["buttons"]
    return next(b["reply"]["id"] for b in buttons if b["reply"]["title"] == title)


@pytest.fixture(scope="module")
def conversations(
    runs: Runs, deployment: AirflowDeployment, sandbox: SandboxProcess, system_home: Path, store: Any
) -> Conversations:
    deployment.wait_for_dags([APPROVAL, REPORT_ON_REQUEST, STATUS_PROBE])
    for dag_id in (APPROVAL, STATUS_PROBE):
        deployment.unpause(dag_id)
    approval = Run(APPROVAL, deployment.trigger(APPROVAL))
    status = Run(STATUS_PROBE, deployment.trigger(STATUS_PROBE))

    # The approval: once the operator is deferred, a stranger taps Publish (ignored), then an approver.
    approval_states: list[str] = []
    _wait_for_a_wait(deployment, approval, "ask_to_publish", approval_states)
    questions = wait_until(
        lambda: len(_questions(sandbox)) == 2 and _questions(sandbox), timeout=30, what="2 questions"
    )
    first = next(q for q in questions if q["wa_id"] == APPROVERS[0])
    tap = {"type": "button_reply", "button_reply": {"id": _button(first, "Publish"), "title": "Publish"}}
    stranger_tap = sandbox.control(
        "POST",
        "inbound",
        json={
            "from": STRANGER,
            "message": {"type": "interactive", "interactive": tap},
            "reply_to": first["id"],
        },
    )["id"]
    # Stored before the approver's: the trigger sees it first, and must pass over it.
    wait_until(lambda: store.message(stranger_tap), timeout=30, what="the stranger's tap to be stored")
    approver_tap = sandbox.control(
        "POST", "reply", json={"message_id": first["id"], "button_id": _button(first, "Publish")}
    )["id"]

    # The status probe: deferred on "read", which comes only when the recipient answers.
    status_states: list[str] = []
    _wait_for_a_wait(deployment, status, "read", status_states)
    sandbox.control("POST", "inbound", json={"from": STATUS_RECIPIENT, "text": "Seen, thanks"})

    for run in (approval, status):
        try:
            run.state = deployment.wait_for_run(run.dag_id, run.run_id, timeout=RUN_TIMEOUT)
        except AssertionError as error:
            run.state = f"did not finish: {error}"
        run.task_states = deployment.task_states(run.dag_id, run.run_id)
        run.description = deployment.describe_run(run.dag_id, run.run_id)
    approval_states.append(str(approval.task_states.get("ask_to_publish")))
    status_states.append(str(status.task_states.get("read")))

    # Event-driven: asset-triggered runs need the scheduler's job scheduling, off until now so that
    # unpausing the examples started no scheduled run. Pause them, then restart the scheduler with it on.
    for dag_id in (*EXAMPLE_DAGS, *PROBES, APPROVAL, STATUS_PROBE):
        deployment.pause(dag_id)
    deployment.restart("scheduler", {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True"})
    deployment.unpause(REPORT_ON_REQUEST)
    cursors = events_path(system_home) / "cursors"
    wait_until(
        lambda: cursors.exists() and any(cursors.iterdir()),
        timeout=RUN_TIMEOUT,
        what="the triggerer to start the AssetWatcher's trigger",
    )
    request_wamid = sandbox.control("POST", "inbound", json={"from": REQUESTER, "text": "Report please"})[
        "id"
    ]

    def report_runs() -> list[dict]:
        found = deployment.api("GET", f"dags/{REPORT_ON_REQUEST}/dagRuns")["dag_runs"]
        return [r for r in found if r["state"] in ("success", "failed")]

    try:
        finished = wait_until(report_runs, timeout=RUN_TIMEOUT, what="an asset-triggered run to finish")
    except AssertionError:
        finished = deployment.api("GET", f"dags/{REPORT_ON_REQUEST}/dagRuns")["dag_runs"]
    asset_events = deployment.api("GET", "assets/events", params={"limit": 100})["asset_events"]
    return Conversations(
        approval,
        approval_states,
        stranger_tap,
        approver_tap,
        status,
        status_states,
        request_wamid,
        finished,
        asset_events,
    )


def test_the_receiver_in_the_api_server_answers_metas_handshake(deployment: AirflowDeployment) -> None:
    challenge = "1158201444"
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": challenge}
    answer = httpx.get(callback_url(deployment), params=query, timeout=30)
    refused = httpx.get(callback_url(deployment), params={**query, "hub.verify_token": "wrong"}, timeout=30)

    assert (answer.status_code, answer.text) == (200, challenge)
    assert refused.status_code == 403


def test_approval_is_resumed_by_the_triggerer_on_an_approvers_tap_only(
    conversations: Conversations, deployment: AirflowDeployment, sandbox: SandboxProcess, store: Any
) -> None:
    run = conversations.approval
    assert "deferred" in conversations.approval_states, conversations.approval_states
    assert run.state == "success", run.description
    assert run.task_states == {"load": "success", "ask_to_publish": "success", "publish": "success"}
    answer = [
        json.loads(v)
        for d, r, t, k, _m, v in deployment.xcom_rows()
        if (d, r, t, k) == (APPROVAL, run.run_id, "ask_to_publish", "return_value")
    ]
    assert len(answer) == 1, answer
    assert (answer[0]["decision"], answer[0]["by"], answer[0]["wamid"]) == (
        "approve",
        APPROVERS[0],
        conversations.approver_tap,
    )
    # The stranger's tap reached the store through the API server, and decided nothing.
    assert store.message(conversations.stranger_tap) is not None
    logs = deployment.task_log_files(APPROVAL, run.run_id, "ask_to_publish")
    assert [p for p in logs if ".trigger." in p.name], logs
    assert len(_questions(sandbox)) == 2  # one per approver, not sent again on resuming


def test_status_sensor_is_resumed_by_the_triggerer_when_the_status_arrives(
    conversations: Conversations, deployment: AirflowDeployment, store: Any
) -> None:
    run = conversations.status
    assert conversations.status_states[0] == "deferred", conversations.status_states
    assert run.state == "success", run.description
    (sent,) = [
        v
        for d, r, t, k, _m, v in deployment.xcom_rows()
        if (d, r, t, k) == (STATUS_PROBE, run.run_id, "send", "return_value")
    ]
    stored = store.status(json.loads(sent))
    assert stored is not None and stored.status == "read"


def test_an_inbound_report_message_runs_the_asset_watcher_dag(
    conversations: Conversations, deployment: AirflowDeployment, sandbox: SandboxProcess
) -> None:
    runs_ = conversations.report_runs
    assert len(runs_) == 1, runs_
    (report,) = runs_
    assert report["run_type"] == "asset_triggered" and report["logical_date"] is None, report
    assert report["state"] == "success", deployment.describe_run(REPORT_ON_REQUEST, report["dag_run_id"])
    payloads = [e["extra"].get("payload", {}) for e in conversations.asset_events]
    matching = [p for p in payloads if p.get("wamid") == conversations.request_wamid]
    assert len(matching) == 1, payloads
    assert (matching[0]["from"], matching[0]["text"]) == (REQUESTER, "Report please")
    answers = [m for m in sandbox.messages() if m["wa_id"] == REQUESTER and m["type"] == "text"]
    assert [a["payload"].get("context") for a in answers] == [{"message_id": conversations.request_wamid}]
