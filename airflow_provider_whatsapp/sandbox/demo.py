"""``make demo``: run every example DAG with ``airflow dags test`` against the sandbox, show what arrived.

Steps: a private ``AIRFLOW_HOME`` under ``.demo/``, ``airflow db migrate``, the sandbox on 127.0.0.1,
the webhook receiver (``whatsapp-webhooks``) beside it with the sandbox POSTing its webhooks there,
``maton_default`` pointing at both, each DAG of ``example_dags/`` run in turn (its messages tagged with
its dag id), then a transcript per recipient and the inbox URL. The approval example waits for a tap on
its reply buttons: the demo taps *Publish* itself, through the inbox's own endpoint, as a person would;
with ``--serve`` it leaves the tap to you in the inbox page, then keeps the sandbox (and the inbox) up
afterwards. ``--screenshot PATH`` saves a picture of the inbox.

With ``SANDBOX=0`` and ``MATON_API_KEY`` set, the same DAGs go to the real gateway instead (phone
number and WABA ids from ``WHATSAPP_PHONE_NUMBER_ID`` / ``WHATSAPP_WABA_ID``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_whatsapp.sandbox.controller import WhatsAppSandbox, wait_until_stopped

DEFAULT_PORT = 8765
DAG_TIMEOUT = 600

# Examples whose default params make the run fail on purpose, to show the alert it sends: such a run
# counts as a success when it failed *and* its alert arrived. Each is then run again with ``conf``
# that lets it succeed.
FAILS_ON_PURPOSE: dict[str, dict[str, Any]] = {"example_whatsapp_etl_alert": {"fail_load": False}}

# Examples that wait for a person's answer on WhatsApp, and the reply button the demo taps for them.
WAITS_FOR_A_TAP: dict[str, str] = {"example_whatsapp_approval": "Publish"}
# The event-driven example, and the message (from the number its params name) that runs it on Airflow 3.
REPORT_ON_REQUEST = "example_whatsapp_report_on_request"
REPORT_REQUEST = ("14155550100", "report please")
RECEIVER_STARTUP_TIMEOUT = 60.0

# Lists the DAGs of a folder, in a subprocess (so the demo itself never imports Airflow).
_LIST_DAGS = """
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "dags": sorted(([d.fileloc, d.dag_id] for d in bag.dags.values())),
    "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
}))
"""


@dataclass
class DagResult:
    dag_id: str
    file: str
    ok: bool
    seconds: float
    log: Path
    messages: list[Any] = field(default_factory=list)
    note: str = ""


def _say(text: str = "") -> None:
    print(text, flush=True)


def _truthy(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def _airflow(
    args: list[str], env: dict[str, str], log: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    with log.open("w") as out:
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )


def _run_succeeded(returncode: int, log: Path) -> bool:
    """``airflow dags test`` may exit 0 when the run failed: its ``DagRun Finished`` line decides."""
    if returncode != 0:
        return False
    text = log.read_text(errors="replace")
    finished = [line for line in text.splitlines() if "DagRun Finished" in line]
    if finished:
        return "state=success" in finished[-1]
    return "state=failed" not in text and "DagRun failed" not in text


def _environment(home: Path, dags_folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _real_gateway_connection() -> str | None:
    """``maton_default`` for the real gateway, from the environment (``None``: MATON_API_KEY missing)."""
    key = os.environ.get("MATON_API_KEY")
    if not key:
        return None
    extra = {
        "phone_number_id": os.environ.get("WHATSAPP_PHONE_NUMBER_ID"),
        "waba_id": os.environ.get("WHATSAPP_WABA_ID"),
        "connection_id": os.environ.get("MATON_CONNECTION_ID"),
    }
    return json.dumps(
        {
            "conn_type": "maton",
            "host": os.environ.get("MATON_BASE_URL", "https://api.maton.ai"),
            "password": key,
            "extra": {k: v for k, v in extra.items() if v},
        }
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Receiver:
    """The standalone webhook receiver (``whatsapp-webhooks``) as a child process on 127.0.0.1, reading the
    same ``maton_default`` as the DAGs, so what it stores is what their tasks wait on."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = _free_port()
        self.path_token = secrets.token_urlsafe(32)
        self._env = env
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def callback_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/whatsapp/webhook/{self.path_token}"

    def start(self) -> Receiver:
        command = [sys.executable, "-m", "airflow_provider_whatsapp.webhooks.cli"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self._log.open("wb") as out:
            self._process = subprocess.Popen(command, env=self._env, stdout=out, stderr=subprocess.STDOUT)
        ends = time.monotonic() + RECEIVER_STARTUP_TIMEOUT
        while time.monotonic() < ends:
            if self._process.poll() is not None:
                raise RuntimeError(f"the webhook receiver exited; see {self._log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the webhook receiver did not listen within {RECEIVER_STARTUP_TIMEOUT:.0f}s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None


def _start_sandbox(port: int) -> WhatsAppSandbox:
    for candidate in (port, 0):
        try:
            return WhatsAppSandbox(candidate).start()
        except OSError:
            continue
    raise RuntimeError("could not start the sandbox")


def list_dags(dags_folder: Path, env: dict[str, str], log: Path) -> list[tuple[str, str]]:
    """``[(file, dag_id)]`` of the folder, sorted by file; import errors are reported and fail the demo."""
    result = subprocess.run(
        [sys.executable, "-c", _LIST_DAGS, str(dags_folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"listing the DAGs failed; see {log}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    for file, error in data["errors"].items():
        _say(f"  ! {Path(file).name} does not import: {error.strip().splitlines()[-1]}")
    if data["errors"]:
        raise RuntimeError("some example DAGs do not import")
    return [(str(f), str(d)) for f, d in data["dags"]]


def run(args: argparse.Namespace) -> int:
    root = Path.cwd()
    dags_folder = Path(args.dags_folder).resolve()
    work = (root / args.home).resolve()
    home = work / "airflow"
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    env = _environment(home, dags_folder)

    use_sandbox = _truthy(os.environ.get("SANDBOX"), True)
    sandbox: WhatsAppSandbox | None = None
    receiver: Receiver | None = None
    if use_sandbox:
        sandbox = _start_sandbox(args.port)
        env.pop("MATON_API_KEY", None)
        receiver = Receiver(env, logs / "whatsapp-webhooks.log")
        shutil.rmtree(work / "events", ignore_errors=True)  # each demo starts a new conversation
        extras = {"events_path": str(work / "events"), "webhook_path_token": receiver.path_token}
        env["AIRFLOW_CONN_MATON_DEFAULT"] = sandbox.connection_json(**extras)
        _say(f"WhatsApp sandbox on {sandbox.url} (nothing leaves this machine)")
    else:
        conn = _real_gateway_connection()
        if conn is None and "AIRFLOW_CONN_MATON_DEFAULT" not in os.environ:
            _say("SANDBOX=0 needs MATON_API_KEY (and WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_WABA_ID) set.")
            return 2
        if conn is not None:
            env["AIRFLOW_CONN_MATON_DEFAULT"] = conn
        _say("Sending through the real Maton gateway: recipients get real WhatsApp messages.")

    try:
        if sandbox is not None and receiver is not None:
            receiver.start()
            # Through Maton the events are signed with a secret the user never sees: the token in the
            # callback path is what authenticates them, so the sandbox signs with one nobody is told.
            sandbox.set_webhook(receiver.callback_url)
            _say(f"Webhook receiver on 127.0.0.1:{receiver.port}; the sandbox POSTs its events there")
        _say(f"Airflow home {home}; migrating its database...")
        migrated = _airflow(["db", "migrate"], env, logs / "db-migrate.log", 600)
        if migrated.returncode != 0:
            _say(f"airflow db migrate failed; see {logs / 'db-migrate.log'}")
            return 1
        dags = list_dags(dags_folder, env, logs / "list-dags.log")
        if not dags:
            _say(f"No DAGs in {dags_folder}.")
            return 1
        results = []
        for file, dag_id in dags:
            if dag_id in WAITS_FOR_A_TAP:
                if sandbox is None:
                    _say(f"- {dag_id} waits for an answer on WhatsApp: run it in Airflow, not in the demo")
                    continue
                results.append(_run_answered(file, dag_id, env, logs, sandbox, by_hand=args.serve))
            elif dag_id == REPORT_ON_REQUEST and sandbox is not None:
                # On Airflow 3 this message starts the run (AssetWatcher); `dags test` runs it directly.
                sandbox.add_inbound(REPORT_REQUEST[0], REPORT_REQUEST[1], name="Ada")
                results.append(_run_one(file, dag_id, env, logs, sandbox))
            elif dag_id in FAILS_ON_PURPOSE:
                results.append(_run_one(file, dag_id, env, logs, sandbox, expect_failure=True))
                results.append(_run_one(file, dag_id, env, logs, sandbox, conf=FAILS_ON_PURPOSE[dag_id]))
            else:
                results.append(_run_one(file, dag_id, env, logs, sandbox))
        if sandbox is not None:
            _simulate_replies(sandbox)
        _report(results, sandbox)
        if sandbox is not None and args.screenshot:
            _screenshot(sandbox, args.screenshot)
        if sandbox is not None and args.serve:
            _say(f"\nServing the inbox at {sandbox.url}/ ; Ctrl-C to stop.")
            wait_until_stopped()
        return 0 if all(r.ok for r in results) else 1
    finally:
        if sandbox is not None:
            sandbox.stop()
        if receiver is not None:
            receiver.stop()


def _run_answered(
    file: str, dag_id: str, env: dict[str, str], logs: Path, sandbox: WhatsAppSandbox, *, by_hand: bool
) -> DagResult:
    """Run a DAG that waits for a tap on its question; the demo taps (or, ``by_hand``, a person does)."""
    label = WAITS_FOR_A_TAP[dag_id]
    stop = threading.Event()

    def tap_when_asked() -> None:
        while not stop.wait(0.2):
            asked = [m for m in sandbox.messages if m.label == dag_id and m.type == "interactive"]
            if not asked:
                continue
            if by_hand:
                _say(f"  → tap “{label}” (or not) in the inbox: {sandbox.url}/#{asked[0].wa_id}")
                return
            question = asked[0]
            button = next(
                b["reply"] for b in question.content["action"]["buttons"] if b["reply"]["title"] == label
            )
            # The inbox page's own endpoint: the tap arrives as WhatsApp would send it, as a webhook.
            _tap(sandbox, question.id, button["id"])
            _say(f"  → the demo tapped “{label}” on the question to +{question.wa_id}")
            return

    tapper = threading.Thread(target=tap_when_asked, name="demo-tap", daemon=True)
    tapper.start()
    try:
        return _run_one(file, dag_id, env, logs, sandbox)
    finally:
        stop.set()
        tapper.join(timeout=5)


def _tap(sandbox: WhatsAppSandbox, message_id: str, button_id: str) -> None:
    import httpx

    answer = httpx.post(
        f"{sandbox.url}/_sandbox/reply", json={"message_id": message_id, "button_id": button_id}, timeout=30
    )
    answer.raise_for_status()


def _run_one(
    file: str,
    dag_id: str,
    env: dict[str, str],
    logs: Path,
    sandbox: WhatsAppSandbox | None,
    *,
    conf: dict[str, Any] | None = None,
    expect_failure: bool = False,
) -> DagResult:
    suffix = "-failing" if expect_failure else ("-conf" if conf else "")
    log = logs / f"{dag_id}{suffix}.log"
    command = ["dags", "test", dag_id, *(["--conf", json.dumps(conf)] if conf else [])]
    shown = " ".join(command[:3]) + (f" --conf '{json.dumps(conf)}'" if conf else "")
    purpose = "  [fails on purpose: shows its alert]" if expect_failure else ""
    _say(f"▶ airflow {shown}  ({Path(file).name}){purpose}")
    before = len(sandbox.messages) if sandbox else 0
    started = time.monotonic()
    if sandbox is not None:
        sandbox.configure(label=dag_id)
    try:
        completed = _airflow(command, env, log, DAG_TIMEOUT)
        succeeded = _run_succeeded(completed.returncode, log)
    except subprocess.TimeoutExpired:
        succeeded = False
    finally:
        if sandbox is not None:
            sandbox.configure(label=None)
    messages = [m for m in sandbox.messages[before:] if m.label == dag_id] if sandbox else []
    if expect_failure:
        ok = not succeeded and (sandbox is None or bool(messages))
        note = "failed as intended, alert sent" if ok else "expected a failure with an alert"
    else:
        ok, note = succeeded, ("success" if succeeded else "FAILED")
    result = DagResult(dag_id, file, ok, time.monotonic() - started, log, messages, note)
    sent = f", {len(messages)} message(s) sent" if sandbox is not None else ""
    _say(f"  {'✓' if ok else '✗'} {note} in {result.seconds:.0f}s{sent}  (log: {log})")
    if not ok:
        tail = log.read_text(errors="replace").splitlines()[-25:]
        _say("\n".join("    " + line for line in tail))
    return result


def _simulate_replies(sandbox: WhatsAppSandbox) -> None:
    """Answer like a phone would, so the inbox shows both sides: the recipient of the first question
    with reply buttons taps its first button (which also reads, blue ticks, what they were sent)
    and reacts to the last document or template they received."""
    question = next(
        (
            m
            for m in sandbox.messages
            if m.type == "interactive"
            and isinstance(m.content, dict)
            and m.content.get("type") == "button"
            and m.label not in WAITS_FOR_A_TAP  # those were answered while their DAG waited
        ),
        None,
    )
    if question is None:
        return
    wa_id = question.wa_id
    liked = next(
        (m for m in reversed(sandbox.messages_to(wa_id)) if m.type in ("template", "document", "image")), None
    )
    if liked is not None:
        reaction = {"type": "reaction", "reaction": {"message_id": liked.id, "emoji": "👍"}}
        sandbox.add_inbound(wa_id, message=reaction, name="Ada")
    sandbox.reply(question.id, button_id=question.content["action"]["buttons"][0]["reply"]["id"])


def _report(results: list[DagResult], sandbox: WhatsAppSandbox | None) -> None:
    _say("\n=== What each DAG sent ===")
    for r in results:
        recipients = sorted({m.wa_id for m in r.messages})
        detail = f"{len(r.messages)} message(s) to {len(recipients)} recipient(s)" if sandbox else ""
        _say(f"  {'✓' if r.ok else '✗'} {r.dag_id:<38} {r.note:<32} {detail}")
    if sandbox is None:
        return
    _say("\n=== What each recipient received (← a simulated reply) ===")
    _say(sandbox.transcript())
    _say(f"\nInbox: {sandbox.url}/  (it stays up with `make demo-serve`)")


def _screenshot(sandbox: WhatsAppSandbox, path: str) -> None:
    from airflow_provider_whatsapp.sandbox.browser import screenshot_inbox

    # The conversation with the most kinds of message shows the most of the page.
    counts: dict[str, set[str]] = {}
    for message in sandbox.messages:
        counts.setdefault(message.wa_id, set()).add(message.type)
    wa_id = max(counts, key=lambda w: len(counts[w])) if counts else None
    screenshot_inbox(sandbox.url, path, wa_id=wa_id)
    _say(f"Screenshot of the inbox saved to {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make demo", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--dags-folder", default="example_dags")
    parser.add_argument("--home", default=".demo", help="where the demo keeps its Airflow home and logs")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="sandbox port (a free one if taken)")
    parser.add_argument("--serve", action="store_true", help="keep the sandbox and its inbox up afterwards")
    parser.add_argument(
        "--screenshot", metavar="PATH", help="save a screenshot of the inbox (needs chromium)"
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
