"""What the benchmark scripts share: the server process, the connection, and the statistics."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

HERE = Path(__file__).resolve().parent
API_KEY = "bench-key-not-a-secret"
# The message every bulk benchmark sends.
TEXT = {"type": "text", "text": {"body": "Your weekly report is ready"}}
PHONE_NUMBER_ID = "106540352242922"


def use_private_airflow_home() -> str:
    """A throwaway AIRFLOW_HOME, set before Airflow is imported: benchmarks never touch ~/airflow."""
    home = tempfile.mkdtemp(prefix="whatsapp-bench-airflow-")
    os.environ["AIRFLOW_HOME"] = home
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.pop("MATON_API_KEY", None)
    return home


def point_connection_at(url: str, **extra: Any) -> None:
    """``maton_default`` as an environment connection to the benchmark server."""
    os.environ["AIRFLOW_CONN_MATON_DEFAULT"] = json.dumps(
        {
            "conn_type": "maton",
            "host": url,
            "password": API_KEY,
            "extra": {"phone_number_id": PHONE_NUMBER_ID, **extra},
        }
    )


@contextmanager
def bench_server(*, latency: float = 0.0, limit: int = 0) -> Iterator[str]:
    """Run ``_server.py`` in its own process; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "_server.py"), "--latency", str(latency), "--limit", str(limit)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def server_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/stats", timeout=10) as answer:
        return dict(json.load(answer))


def reset_server(url: str) -> None:
    request = urllib.request.Request(f"{url}/reset", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def spread(samples: list[float], digits: int = 3) -> dict[str, float]:
    """Median, min and max of ``samples``."""
    return {
        "median": round(statistics.median(samples), digits),
        "min": round(min(samples), digits),
        "max": round(max(samples), digits),
    }


def recipients(count: int) -> list[str]:
    return [f"+1 415 555 {i:04d}" for i in range(count)]


def bulk_execute(url: str, progress: str, *, count: int, **arguments: Any) -> dict[str, Any]:
    """One ``WhatsAppSendBulkOperator.execute`` sending :data:`TEXT` to ``count`` recipients through the
    server at ``url`` (its counters reset first), with a fresh journal under ``progress``.

    Returns the operator's result, the wall and CPU (this process's) seconds of ``execute``, and the
    server's counters after it.
    """
    import time
    import uuid
    from types import SimpleNamespace

    from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator

    reset_server(url)
    operator = WhatsAppSendBulkOperator(
        task_id="bench", recipients=recipients(count), message=TEXT, progress_path=progress, **arguments
    )
    ti = SimpleNamespace(dag_id="bench", task_id="bench", run_id=f"bench__{uuid.uuid4().hex}", map_index=-1)
    cpu, started = time.process_time(), time.perf_counter()
    result = operator.execute({"ti": ti})
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"result": result, "wall": wall, "cpu": cpu, "stats": server_stats(url)}
