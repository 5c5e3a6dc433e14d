"""Bulk send at Meta's highest tier (1,000/s) in two worker processes, beside plain httpx loops.

A server in its own process answers each send after 50 ms and accepts at most 1,000 requests in any
second (429 beyond). Each run sends one text to 5,000 recipients three ways, in this order:

* ``WhatsAppSendBulkOperator(max_rate=1000, processes=2)`` (a fresh progress journal each run);
* the same with ``processes=1`` (what one core reaches);
* the machine's own ceiling: two processes, each a plain ``httpx.AsyncClient`` loop (httpx's default
  pool) sending half the recipients the same payload with the same headers, paced at 500/s each, at
  most 100 in flight (no journal, no checks), started at the same moment.

Rates are recipients / seconds from the first send to the last answer (for the operator: its result's
``elapsed_seconds``, which leaves out the workers' start-up; that is reported apart, as the rest of
the whole ``execute``). CPU is the children's user + system time (the workers' or the loops'),
start-up included.

    python benchmarks/bench_processes.py [--runs 3] [--count 5000] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    API_KEY,
    PHONE_NUMBER_ID,
    TEXT,
    bench_server,
    bulk_execute,
    point_connection_at,
    reset_server,
    server_stats,
    spread,
    use_private_airflow_home,
)

LATENCY = 0.05
LIMIT = 1000
PROCESSES = 2
# In flight per raw loop: httpx's default pool (100 connections, 20 kept alive), as a plain loop has it.
RAW_IN_FLIGHT = 100


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bulk_run(url: str, progress: str, count: int, processes: int) -> dict[str, Any]:
    cpu = children_cpu()
    run = bulk_execute(url, progress, count=count, max_rate=LIMIT, processes=processes)
    result, wall, stats = run["result"], run["wall"], run["stats"]
    return {
        "rate": count / result["elapsed_seconds"],
        "overhead_seconds": wall - result["elapsed_seconds"],
        "worker_cpu_per_1000": (children_cpu() - cpu) / count * 1000 if processes > 1 else None,
        "sent": result["sent"],
        "throttled_429": stats["throttled"],
        "max_in_any_second": stats["max_in_any_second"],
        "duplicates": stats["duplicates"],
    }


def raw_run(url: str, count: int) -> dict[str, Any]:
    """Two plain httpx loops in two processes, started together; their combined rate."""
    reset_server(url)
    share = count // PROCESSES
    start_at = time.time() + 2.0  # both have imported httpx by then
    cpu = children_cpu()
    loops = []
    for index in range(PROCESSES):
        arguments = [url, share, LIMIT / PROCESSES, start_at, RAW_IN_FLIGHT, index]
        loops.append(
            subprocess.Popen(
                [sys.executable, __file__, "--raw-loop", *map(str, arguments)],
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    reports = [json.loads(loop.communicate(timeout=600)[0]) for loop in loops]
    stats = server_stats(url)
    first, last = min(r["first"] for r in reports), max(r["last"] for r in reports)
    return {
        "rate": share * PROCESSES / (last - first),
        "cpu_per_1000": (children_cpu() - cpu) / (share * PROCESSES) * 1000,
        "throttled_429": stats["throttled"],
    }


def raw_loop(url: str, count: int, rate: float, start_at: float, concurrency: int, index: int) -> None:
    """One plain loop: ``count`` sends paced at ``rate``, at most ``concurrency`` in flight."""
    import asyncio

    import httpx

    async def main() -> dict[str, float]:
        headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}
        path = f"{url}/whatsapp-business/v21.0/{PHONE_NUMBER_ID}/messages"
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            slots = asyncio.Semaphore(concurrency)

            async def one(number: int) -> None:
                try:
                    body = {"messaging_product": "whatsapp", "to": f"1415{index}{number:06d}", **TEXT}
                    answer = await client.post(path, json=body)
                    answer.json()
                finally:
                    slots.release()

            await asyncio.sleep(max(0.0, start_at - time.time()))
            first = time.time()
            tasks = []
            for number in range(count):
                await asyncio.sleep(max(0.0, first + number / rate - time.time()))
                await slots.acquire()
                tasks.append(asyncio.create_task(one(number)))
            await asyncio.gather(*tasks)
            return {"first": first, "last": time.time()}

    print(json.dumps(asyncio.run(main())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--raw-loop", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.raw_loop:
        url, count, rate, start_at, concurrency, index = args.raw_loop
        raw_loop(url, int(count), float(rate), float(start_at), int(concurrency), int(index))
        return 0
    use_private_airflow_home()
    with open("/proc/loadavg") as handle:
        load_before = handle.read().split()[:3]

    with bench_server(latency=LATENCY, limit=LIMIT) as url, tempfile.TemporaryDirectory() as progress:
        point_connection_at(url, rate_limit=LIMIT)
        bulk_run(url, progress, 200, PROCESSES)  # warm-up: imports, first connection
        runs = []
        for _ in range(args.runs):
            runs.append(
                {
                    "bulk": bulk_run(url, progress, args.count, PROCESSES),
                    "single": bulk_run(url, progress, args.count, 1),
                    "raw": raw_run(url, args.count),
                }
            )
    with open("/proc/loadavg") as handle:
        load_after = handle.read().split()[:3]

    bulk = [run["bulk"] for run in runs]
    fraction = [b["rate"] / LIMIT for b in bulk]
    of_raw = [run["bulk"]["rate"] / run["raw"]["rate"] for run in runs]
    summary = {
        "benchmark": "processes",
        "recipients": args.count,
        "limit_per_second": LIMIT,
        "latency_seconds": LATENCY,
        "processes": PROCESSES,
        "runs": args.runs,
        "fraction_of_limit": spread(fraction),
        "fraction_of_limit_one_process": spread([run["single"]["rate"] / LIMIT for run in runs]),
        "raw_fraction_of_limit": spread([run["raw"]["rate"] / LIMIT for run in runs]),
        "bulk_over_raw": spread(of_raw),
        "startup_seconds": spread([b["overhead_seconds"] for b in bulk], 2),
        "worker_cpu_ms_per_1000": spread([b["worker_cpu_per_1000"] * 1000 for b in bulk], 0),
        "raw_cpu_ms_per_1000": spread([run["raw"]["cpu_per_1000"] * 1000 for run in runs], 0),
        "throttled_429": sum(b["throttled_429"] for b in bulk),
        "raw_throttled_429": sum(run["raw"]["throttled_429"] for run in runs),
        "max_in_any_second": max(b["max_in_any_second"] for b in bulk),
        "duplicates": sum(b["duplicates"] for b in bulk),
        "load_average_before_after": [load_before, load_after],
        "ok": min(of_raw) >= 0.9 and all(b["throttled_429"] == 0 for b in bulk),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        f, r = summary["fraction_of_limit"], summary["bulk_over_raw"]
        print(
            f"bulk {args.count} at {LIMIT}/s in {PROCESSES} processes: {f['median']:.3f} of the limit "
            f"({f['min']:.3f}-{f['max']:.3f}), {summary['throttled_429']} x 429; {r['median']:.2f} of two "
            f"raw httpx loops ({summary['raw_fraction_of_limit']['median']:.3f} of the limit); one process: "
            f"{summary['fraction_of_limit_one_process']['median']:.3f}; start-up and plan "
            f"{summary['startup_seconds']['median']} s; load {load_before} -> {load_after}"
        )
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
