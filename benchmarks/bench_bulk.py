"""Bulk send throughput at the rate limit, beside a sequential loop of single sends.

A server in its own process answers each send after 50 ms and accepts at most 80 requests in any
second (429 beyond). Each run sends one text to 300 recipients with ``WhatsAppSendBulkOperator``
(``max_rate=80``, a fresh progress journal) and records the achieved rate over the send (from the
operator's result: recipients / seconds from the first send to the last answer) and over the whole
``execute`` (validation and journal included), the 429s the server counted, and duplicates.

The comparison is what a DAG without the bulk operator does: one ``MatonHook.send_message`` per
recipient in a loop, as ``WhatsAppSendTextOperator`` calls it (one hook, so keep-alive is reused: the
loop's best case). The ratio is bulk rate / sequential rate, both measured in this run.

    python benchmarks/bench_bulk.py [--runs 5] [--sequential-runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    TEXT,
    bench_server,
    bulk_execute,
    point_connection_at,
    recipients,
    reset_server,
    server_stats,
    spread,
    use_private_airflow_home,
)

LATENCY = 0.05
LIMIT = 80
COUNT = 300


def bulk_run(url: str, progress: str) -> dict[str, Any]:
    run = bulk_execute(url, progress, count=COUNT, max_rate=LIMIT)
    result, wall, stats = run["result"], run["wall"], run["stats"]
    return {
        "send_rate": COUNT / result["elapsed_seconds"],
        "execute_rate": COUNT / wall,
        "sent": result["sent"],
        "throttled_429": stats["throttled"],
        "max_in_any_second": stats["max_in_any_second"],
        "duplicates": stats["duplicates"],
    }


def sequential_run(url: str) -> dict[str, Any]:
    from airflow_provider_whatsapp.hooks.maton import MatonHook
    from airflow_provider_whatsapp.messages import normalize_recipient

    reset_server(url)
    hook = MatonHook()
    started = time.perf_counter()
    for number in recipients(COUNT):
        MatonHook.message_id(hook.send_message({"to": normalize_recipient(number), **TEXT}))
    elapsed = time.perf_counter() - started
    hook.close()
    stats = server_stats(url)
    return {"rate": COUNT / elapsed, "throttled_429": stats["throttled"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sequential-runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    use_private_airflow_home()

    with bench_server(latency=LATENCY, limit=LIMIT) as url, tempfile.TemporaryDirectory() as progress:
        point_connection_at(url, rate_limit=LIMIT)
        bulk_run(url, progress)  # warm-up: imports, first connection
        bulk = [bulk_run(url, progress) for _ in range(args.runs)]
        sequential = [sequential_run(url) for _ in range(args.sequential_runs)]

    send_fraction = [run["send_rate"] / LIMIT for run in bulk]
    execute_fraction = [run["execute_rate"] / LIMIT for run in bulk]
    sequential_rate = spread([run["rate"] for run in sequential], 2)
    bulk_rate = spread([run["send_rate"] for run in bulk], 1)
    # Median over median; the range pairs the slowest bulk run with the fastest loop and vice versa.
    ratio = {
        "median": round(bulk_rate["median"] / sequential_rate["median"], 2),
        "min": round(bulk_rate["min"] / sequential_rate["max"], 2),
        "max": round(bulk_rate["max"] / sequential_rate["min"], 2),
    }
    summary = {
        "benchmark": "bulk",
        "recipients": COUNT,
        "limit_per_second": LIMIT,
        "latency_seconds": LATENCY,
        "runs": args.runs,
        "sequential_runs": args.sequential_runs,
        "fraction_of_limit": spread(send_fraction),
        "fraction_of_limit_whole_execute": spread(execute_fraction),
        "bulk_rate": bulk_rate,
        "sequential_rate": sequential_rate,
        "bulk_over_sequential": ratio,
        "throttled_429": sum(run["throttled_429"] for run in bulk),
        "max_in_any_second": max(run["max_in_any_second"] for run in bulk),
        "duplicates": sum(run["duplicates"] for run in bulk),
        "ok": min(send_fraction) >= 0.9 and all(run["throttled_429"] == 0 for run in bulk),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        f, r = summary["fraction_of_limit"], summary["bulk_over_sequential"]
        print(
            f"bulk {COUNT} at {LIMIT}/s: {f['median']:.3f} of the limit ({f['min']:.3f}-{f['max']:.3f}), "
            f"{summary['throttled_429']} x 429; {r['median']:.2f}x the sequential loop "
            f"({summary['sequential_rate']['median']}/s)"
        )
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
