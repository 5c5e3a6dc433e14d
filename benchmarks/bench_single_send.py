"""CPU of one single-send task's hook: a new ``MatonHook`` that reads its connection, makes its client
and sends one message, as every ``WhatsAppSend*Operator`` run does.

Three figures per round, measured side by side in the same process against the same server (its own
process, answering at once), in CPU time (``time.process_time``), alternating blocks so that drift in
the machine hits all three:

* **task**: a new hook each time, the process's shared TLS context (what the provider does);
* **task, fresh TLS**: the same with the shared context dropped before each hook, so that every client
  loads the CA bundle again (what the provider did before it shared the context: the baseline);
* **send**: one more message on an already open, kept-alive hook (the send itself).

    python benchmarks/bench_single_send.py [--rounds 5] [--tasks 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_server, point_connection_at, spread, use_private_airflow_home

if TYPE_CHECKING:
    from collections.abc import Callable

PAYLOAD = {"to": "14155550100", "type": "text", "text": {"body": "Your weekly report is ready"}}
BLOCK = 10


def cpu_ms(action: Callable[[], Any], times: int) -> list[float]:
    samples = []
    for _ in range(times):
        started = time.process_time()
        action()
        samples.append((time.process_time() - started) * 1000)
    return samples


def one_round(tasks: int) -> dict[str, float]:
    from airflow_provider_whatsapp.hooks import _tls
    from airflow_provider_whatsapp.hooks.maton import MatonHook

    def task() -> None:
        with MatonHook() as hook:
            MatonHook.message_id(hook.send_message(PAYLOAD))

    def task_fresh_tls() -> None:
        _tls._cached = None
        task()

    kept = MatonHook()
    kept.send_message(PAYLOAD)

    def send() -> None:
        MatonHook.message_id(kept.send_message(PAYLOAD))

    samples: dict[str, list[float]] = {"task": [], "fresh": [], "send": []}
    for _ in range(max(1, tasks // BLOCK)):
        samples["task"] += cpu_ms(task, BLOCK)
        samples["fresh"] += cpu_ms(task_fresh_tls, BLOCK)
        samples["send"] += cpu_ms(send, BLOCK)
    kept.close()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "task_ms": medians["task"],
        "fresh_ms": medians["fresh"],
        "send_ms": medians["send"],
        "fresh_over_task": medians["fresh"] / medians["task"],
        "task_over_send": medians["task"] / medians["send"],
        "fresh_over_send": medians["fresh"] / medians["send"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    use_private_airflow_home()

    with bench_server() as url:
        point_connection_at(url, rate_limit=0)
        one_round(BLOCK)  # warm-up: imports, first connection
        rounds = [one_round(args.tasks) for _ in range(args.rounds)]

    summary = {
        "benchmark": "single_send",
        "rounds": args.rounds,
        "tasks_per_round": args.tasks,
        "task_ms": spread([r["task_ms"] for r in rounds], 2),
        "fresh_tls_task_ms": spread([r["fresh_ms"] for r in rounds], 2),
        "send_ms": spread([r["send_ms"] for r in rounds], 3),
        "fresh_over_task": spread([r["fresh_over_task"] for r in rounds], 1),
        "task_over_send": spread([r["task_over_send"] for r in rounds], 1),
        "fresh_over_send": spread([r["fresh_over_send"] for r in rounds], 1),
    }
    summary["ok"] = summary["fresh_over_task"]["median"] >= 2
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"single-send task: {summary['task_ms']['median']} ms CPU (fresh TLS context: "
            f"{summary['fresh_tls_task_ms']['median']} ms); the send on a kept-alive client "
            f"{summary['send_ms']['median']} ms; task / send {summary['task_over_send']['median']}x "
            f"(was {summary['fresh_over_send']['median']}x)"
        )
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
