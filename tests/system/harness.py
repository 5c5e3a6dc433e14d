"""A real Airflow 3 deployment for system tests: API server, scheduler, DAG processor and triggerer.

Every process binds 127.0.0.1 only (no log servers), in a private ``AIRFLOW_HOME`` with sqlite and the
``LocalExecutor``, so tasks run under Airflow's real task supervisor and write real log files. Tests talk
to it the way a user does, through the REST API with a JWT from the simple auth manager.

>>> with AirflowDeployment(home=tmp, dags_folder=dags, env=extra) as airflow:  # doctest: +SKIP
...     run_id = airflow.trigger("my_dag")
...     airflow.wait_for_run("my_dag", run_id)

Later features (the webhook receiver mounted in the API server) start the same deployment with their
own ``env`` and ``component_env``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ADMIN_USER = "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
FINISHED = frozenset({"success", "failed"})
_POLL = 0.2


class DeploymentError(AssertionError):
    """The deployment did not start, or a run did not end as expected; the message says where to look."""


def free_port() -> int:
    """A port free on 127.0.0.1 now (for a process that needs its port before it starts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], Any], *, timeout: float, what: str, interval: float = _POLL) -> Any:
    """Poll ``check`` until it returns something truthy; its value. ``DeploymentError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DeploymentError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    output: Path

    def tail(self, lines: int = 30) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def start_process(name: str, command: list[str], *, env: Mapping[str, str], output: Path) -> Process:
    """Start ``command`` in its own process group (so stopping it stops its children too)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as out:
        popen = subprocess.Popen(
            command,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Process(name, popen, output)


def stop_processes(processes: Iterable[Process], *, grace: float = 10.0) -> None:
    """SIGTERM every process group at once, then SIGKILL what is left after ``grace`` seconds."""
    running = [p for p in processes if p.popen.poll() is None]
    for process in running:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
    for process in running:
        # The group, not only its leader: task supervisors and log-less workers are children.
        _signal_group(process, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=5)


def _signal_group(process: Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.popen.pid, signum)


class AirflowDeployment:
    """Airflow 3 on 127.0.0.1: ``db migrate``, then the four components started in parallel.

    :param home: an empty directory to use as ``AIRFLOW_HOME``.
    :param dags_folder: the folder the DAG processor parses.
    :param env: variables for every component (connections, ``MATON_API_KEY``...).
    :param component_env: extra variables for one component only, by name (``"api-server"``...).
    :param parallelism: most task instances running at once.
    :param startup_timeout: seconds the components have to report healthy.
    """

    def __init__(
        self,
        *,
        home: Path,
        dags_folder: Path,
        env: Mapping[str, str] | None = None,
        component_env: Mapping[str, Mapping[str, str]] | None = None,
        parallelism: int = 6,
        startup_timeout: float = 120.0,
    ) -> None:
        self.home = home
        self.dags_folder = dags_folder
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(16)
        self.startup_timeout = startup_timeout
        self.processes: list[Process] = []
        self._extra_env = dict(env or {})
        self._component_env = {k: dict(v) for k, v in (component_env or {}).items()}
        self._parallelism = parallelism
        self._jwt_secret = secrets.token_urlsafe(32)
        self._secret_key = secrets.token_urlsafe(32)
        self._client: httpx.Client | None = None

    # --- life cycle -----------------------------------------------------------------------------

    @property
    def logs_folder(self) -> Path:
        return self.home / "logs"

    @property
    def output_folder(self) -> Path:
        """Each component's stdout/stderr (outside the task logs folder)."""
        return self.home / "components"

    def environment(self, component: str | None = None) -> dict[str, str]:
        """The environment of one component (or of the CLI commands, with ``None``)."""
        passwords = self.home / "simple_auth_manager_passwords.json"
        # Nothing of the caller's Airflow or Maton set-up leaks in: the deployment is what ``env`` says.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "MATON_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self._parallelism),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                # Every component signs or checks the same tokens; generated per deployment.
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                "AIRFLOW__API__SECRET_KEY": self._secret_key,
                # Only the runs a test triggers: no scheduled runs of the examples with a schedule.
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "2",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self._extra_env)
        if component is not None:
            env.update(self._component_env.get(component, {}))
        return env

    def __enter__(self) -> AirflowDeployment:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "simple_auth_manager_passwords.json").write_text(json.dumps({ADMIN_USER: self.password}))
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if migrate.returncode != 0:
            raise DeploymentError(
                f"airflow db migrate failed:\n{migrate.stdout[-3000:]}{migrate.stderr[-3000:]}"
            )
        commands = _commands(self.port)
        try:
            for name in COMPONENTS:
                self.processes.append(
                    start_process(
                        name,
                        [sys.executable, "-m", "airflow", *commands[name]],
                        env=self.environment(name),
                        output=self.output_folder / f"{name}.log",
                    )
                )
            wait_until(self._healthy, timeout=self.startup_timeout, what="every Airflow component healthy")
            self._client = httpx.Client(
                base_url=self.base_url, headers={"Authorization": f"Bearer {self._token()}"}, timeout=30
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        stop_processes(self.processes)

    def _healthy(self) -> bool:
        for process in self.processes:
            if process.popen.poll() is not None:
                raise DeploymentError(
                    f"airflow {process.name} exited with {process.popen.returncode}:\n{process.tail()}"
                )
        try:
            health = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return False
        return all(
            health.get(part, {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    def _token(self) -> str:
        response = httpx.post(
            f"{self.base_url}/auth/token",
            json={"username": ADMIN_USER, "password": self.password},
            timeout=30,
        )
        if response.status_code >= 300:
            raise DeploymentError(f"POST /auth/token answered {response.status_code}: {response.text[:500]}")
        return str(response.json()["access_token"])

    # --- the REST API ---------------------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """One REST API call (``path`` under ``/api/v2``); raises on an error status."""
        if self._client is None:
            raise DeploymentError("the deployment is not running")
        response = self._client.request(method, f"/api/v2/{path.lstrip('/')}", **kwargs)
        if response.status_code >= 300:
            raise DeploymentError(
                f"{method} /api/v2/{path} answered {response.status_code}: {response.text[:1000]}"
            )
        return response.json() if response.content else None

    def wait_for_dags(self, dag_ids: Iterable[str], *, timeout: float = 90.0) -> None:
        """Wait until the DAG processor has parsed every one of ``dag_ids``; fail on import errors."""
        wanted = set(dag_ids)

        def parsed() -> bool:
            errors = self.api("GET", "importErrors")["import_errors"]
            if errors:
                shown = "\n".join(f"{e['filename']}: {e['stack_trace'][-800:]}" for e in errors)
                raise DeploymentError(f"DAG import errors:\n{shown}")
            known = {d["dag_id"] for d in self.api("GET", "dags", params={"limit": 100})["dags"]}
            return wanted <= known

        wait_until(parsed, timeout=timeout, what=f"the DAG processor to parse {sorted(wanted)}")

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"dags/{dag_id}", json={"is_paused": False})

    def pause(self, dag_id: str) -> None:
        self.api("PATCH", f"dags/{dag_id}", json={"is_paused": True})

    def restart(self, component: str, env: Mapping[str, str]) -> None:
        """Restart one component with more environment (a few seconds; a new deployment costs a minute).

        Only when none of its work is under way: a scheduler's running tasks are its children.
        """
        (process,) = [p for p in self.processes if p.name == component]
        stop_processes([process])
        self.processes.remove(process)
        self._component_env.setdefault(component, {}).update(env)
        commands = _commands(self.port)
        output = self.output_folder / f"{component}.restarted.log"
        self.processes.append(
            start_process(
                component,
                [sys.executable, "-m", "airflow", *commands[component]],
                env=self.environment(component),
                output=output,
            )
        )
        wait_until(self._healthy, timeout=self.startup_timeout, what=f"the restarted {component} healthy")

    def trigger(
        self, dag_id: str, *, conf: dict[str, Any] | None = None, logical_date: str | None = None
    ) -> str:
        """Trigger a run (without a logical date unless one is given); its run id."""
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf or {}}
        return str(self.api("POST", f"dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``{task_id: state}``; a mapped task as ``task_id[map_index]``."""
        return {
            ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): ti["state"]
            for ti in self.task_instances(dag_id, run_id)
        }

    def wait_for_run(self, dag_id: str, run_id: str, *, timeout: float = 120.0) -> str:
        """Wait until the run has finished; its state. On a timeout the message shows the task states."""
        try:
            return str(
                wait_until(
                    lambda: (state := self.run_state(dag_id, run_id)) in FINISHED and state,
                    timeout=timeout,
                    what=f"run {run_id} of {dag_id} to finish",
                )
            )
        except DeploymentError as error:
            raise DeploymentError(f"{error}\n{self.describe_run(dag_id, run_id)}") from None

    def describe_run(self, dag_id: str, run_id: str, *, lines: int = 12) -> str:
        """The run's task states and the log tail of every task that did not succeed (for messages)."""
        parts = [f"{dag_id} / {run_id}: {self.task_states(dag_id, run_id)}"]
        for ti in self.task_instances(dag_id, run_id):
            if ti["state"] == "success":
                continue
            for log in self.task_log_files(dag_id, run_id, ti["task_id"], map_index=ti["map_index"]):
                tail = [_readable(line) for line in log.read_text(errors="replace").splitlines()[-lines:]]
                parts.append(f"--- {log.relative_to(self.logs_folder)} ---\n" + "\n".join(tail))
        return "\n".join(parts)

    # --- what the deployment wrote --------------------------------------------------------------

    def task_log_files(
        self,
        dag_id: str | None = None,
        run_id: str | None = None,
        task_id: str | None = None,
        *,
        map_index: int | None = None,
    ) -> list[Path]:
        """Task log files (the triggerer's too, beside them), optionally of one DAG, run, task, map index."""
        parts = [f"dag_id={dag_id or '*'}", f"run_id={run_id or '*'}", f"task_id={task_id or '*'}"]
        if map_index is None:
            parts += ["**", "*"]
        else:
            parts += [f"map_index={map_index}", "*"] if map_index >= 0 else ["attempt=*"]
        return sorted(p for p in self.logs_folder.glob("/".join(parts)) if p.is_file())

    def all_log_files(self) -> list[Path]:
        return sorted(p for p in self.logs_folder.rglob("*") if p.is_file())

    def xcom_rows(self) -> list[tuple[str, str, str, str, int, str]]:
        """``(dag_id, run_id, task_id, key, map_index, value)`` of every XCom in the metadata database."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            rows = db.execute("SELECT dag_id, run_id, task_id, key, map_index, value FROM xcom").fetchall()
        return [
            (d, r, t, k, m, v if isinstance(v, str) else bytes(v or b"").decode(errors="replace"))
            for d, r, t, k, m, v in rows
        ]

    def listening_addresses(self) -> list[str]:
        """``host:port`` of every TCP socket our processes (and their children) listen on."""
        pids = set()
        for process in self.processes:
            pids |= _group_pids(process.popen.pid)
        return _listening(pids)


class SandboxProcess:
    """The WhatsApp sandbox as its own process (``python -m airflow_provider_whatsapp.sandbox``).

    :param api_key: the key the sandbox accepts.
    :param output: where its stdout/stderr go.
    :param args: more command-line options (``--approval-delay``...).
    """

    def __init__(self, *, api_key: str, output: Path, args: Iterable[str] = ()) -> None:
        self.api_key = api_key
        self._command = [
            sys.executable,
            "-m",
            "airflow_provider_whatsapp.sandbox",
            "--port",
            "0",
            "--api-key",
            api_key,
            *args,
        ]
        self._output = output
        self.process: Process | None = None
        self.url = ""

    def __enter__(self) -> SandboxProcess:
        self.process = start_process("sandbox", self._command, env=os.environ, output=self._output)
        try:
            self.url = wait_until(self._announced_url, timeout=60, what="the sandbox to listen")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            stop_processes([self.process], grace=5)

    def _announced_url(self) -> str | None:
        assert self.process is not None
        if self.process.popen.poll() is not None:
            raise DeploymentError(f"the sandbox exited:\n{self.process.tail()}")
        for line in self._output.read_text(errors="replace").splitlines():
            if line.startswith("WhatsApp sandbox on "):
                return line.split()[3]
        return None

    def connection_json(self, **extra: Any) -> str:
        """An ``AIRFLOW_CONN_*`` value for a Maton connection to this sandbox."""
        from airflow_provider_whatsapp.sandbox.state import DEFAULT_PHONE_NUMBER_ID, DEFAULT_WABA_ID

        values = {"phone_number_id": DEFAULT_PHONE_NUMBER_ID, "waba_id": DEFAULT_WABA_ID, **extra}
        return json.dumps({"conn_type": "maton", "host": self.url, "password": self.api_key, "extra": values})

    def control(self, method: str, route: str, **kwargs: Any) -> Any:
        """A call to the sandbox's own ``/_sandbox/{route}`` API."""
        if method != "GET" and "json" not in kwargs:
            kwargs["json"] = {}  # the sandbox takes changes only as JSON (no cross-site form posts)
        response = httpx.request(method, f"{self.url}/_sandbox/{route}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def messages(self) -> list[dict[str, Any]]:
        """Every message the business sent, oldest first."""
        return list(self.control("GET", "messages", params={"direction": "out"})["data"])


def _commands(port: int) -> dict[str, list[str]]:
    """The ``airflow`` command line of each component."""
    return {
        "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        # --skip-serve-logs: no log server, which would bind every interface.
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer", "--skip-serve-logs"],
    }


def _readable(line: str, width: int = 400) -> str:
    """One line of a JSON task log as ``level: event (exception)``; other lines as they are."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line[:width]
    if not isinstance(entry, dict):
        return line[:width]
    errors = entry.get("error_detail") or []
    shown = f"{entry.get('level', '')}: {entry.get('event', '')}"
    for error in errors if isinstance(errors, list) else []:
        shown += f" [{error.get('exc_type')}: {error.get('exc_value')}]"
    return shown[: width * 3]


def _group_pids(pgid: int) -> set[int]:
    """The live processes of a process group, from ``/proc``."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # a zombie holds nothing and waits to be reaped
            found.add(int(stat.parent.name))
    return found


def _listening(pids: set[int]) -> list[str]:
    """Listening TCP sockets (IPv4 and IPv6) whose inode one of ``pids`` holds open."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                found.append(f"{_address(address, width)}:{int(port, 16)}")
    return sorted(found)


def _address(hex_address: str, width: int) -> str:
    raw = bytes.fromhex(hex_address)
    # /proc/net stores each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET if width == 8 else socket.AF_INET6, words)
