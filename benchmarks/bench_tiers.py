"""Bulk sends at Meta's throughput tiers, beside a plain ``httpx.AsyncClient`` loop in the same run.

For each limit (80, 200, 500 and 1,000 per second) a server in its own process answers each send after
50 ms and accepts at most that many requests in any second (429 beyond). One text goes to a list of
recipients through ``WhatsAppSendBulkOperator.execute`` (``max_rate`` = the limit, a fresh progress
journal on local disk: what a user gets). Each row records the achieved rate / limit (recipients /
seconds from the first send to the last answer), the 429s and accepted TCP connections the server
counted, and the CPU time of this process (all its threads) per 1,000 messages over the whole
``execute``.

The baseline is what the machine can do without the engine: coroutines sharing one default
``httpx.AsyncClient``, each posting the same payloads with the same headers and reading the message
id, unpaced, against a server without a limit (its saturation rate, and its CPU per 1,000); and the
same loop with keep-alive raised to its concurrency (every connection reused, but a pool that polls
each idle socket per request), for reference. The engine/raw ratio compares CPU per message with the
default client; at the 1,000/s limit the engine's rate is also compared with
the raw loop's, since one process cannot reach 1,000/s on a small machine.

    python benchmarks/bench_tiers.py [--runs 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
# Recipients per limit: about 5 s of sending at the low tiers, 5,000 at the high ones.
TIERS = {80: 400, 200: 1000, 500: 5000, 1000: 5000}
RAW_COUNT = 5000
# The raw loop keeping every connection alive is slow (its pool polls each idle socket): fewer sends.
KEPT_ALIVE_COUNT = 1000
# Coroutines of the raw loop: enough for 1,000/s at 50 ms with room to spare.
RAW_CONCURRENCY = 100


def engine_run(url: str, progress: str, limit: int, count: int) -> dict[str, Any]:
    run = bulk_execute(url, progress, count=count, max_rate=limit)
    result, cpu, stats = run["result"], run["cpu"], run["stats"]
    return {
        "rate": count / result["elapsed_seconds"],
        "fraction": count / result["elapsed_seconds"] / limit,
        "sent": result["sent"],
        "throttled_429": stats["throttled"],
        "duplicates": stats["duplicates"],
        "max_in_any_second": stats["max_in_any_second"],
        # The /stats request itself came on a connection of its own.
        "connections_per_1000": (stats["connections"] - 1) * 1000 / count,
        "cpu_ms_per_1000": cpu * 1000 * 1000 / count,
    }


def raw_run(url: str, count: int, *, keep_alive: int | None = None) -> dict[str, Any]:
    """The raw loop; ``keep_alive``: that many idle connections kept (httpx's default: 20)."""
    import httpx

    reset_server(url)
    endpoint = f"{url}/v23.0/{PHONE_NUMBER_ID}/messages"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    payloads = [{"messaging_product": "whatsapp", "to": f"1415555{i:04d}", **TEXT} for i in range(count)]

    async def loop() -> float:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=keep_alive or 20)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            queue = iter(payloads)

            async def worker() -> None:
                for payload in queue:
                    answer = await client.post(endpoint, json=payload, headers=headers)
                    answer.raise_for_status()
                    assert answer.json()["messages"][0]["id"]

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(RAW_CONCURRENCY)))
            return time.perf_counter() - started

    cpu = time.process_time()
    elapsed = asyncio.run(loop())
    cpu = time.process_time() - cpu
    stats = server_stats(url)
    return {
        "rate": count / elapsed,
        "throttled_429": stats["throttled"],
        "connections_per_1000": (stats["connections"] - 1) * 1000 / count,
        "cpu_ms_per_1000": cpu * 1000 * 1000 / count,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs per tier and of the raw loop")
    parser.add_argument("--limits", default=",".join(map(str, TIERS)), help="comma-separated limits")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    use_private_airflow_home()
    limits = [int(limit) for limit in args.limits.split(",")]

    tiers: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as progress:
        with bench_server(latency=LATENCY) as url:
            raw_run(url, 500)  # warm-up: imports, first connections
            raw = [raw_run(url, RAW_COUNT) for _ in range(args.runs)]
            # The same with every connection kept: reuse, but a pool that polls each idle socket.
            tuned = [raw_run(url, KEPT_ALIVE_COUNT, keep_alive=RAW_CONCURRENCY) for _ in range(args.runs)]
        for limit in limits:
            count = TIERS.get(limit, 5 * limit)
            with bench_server(latency=LATENCY, limit=limit) as url:
                point_connection_at(url, rate_limit=limit)
                engine_run(url, progress, limit, min(count, 200))  # warm-up
                runs = [engine_run(url, progress, limit, count) for _ in range(args.runs)]
            tiers.append(
                {
                    "limit_per_second": limit,
                    "recipients": count,
                    "fraction_of_limit": spread([r["fraction"] for r in runs]),
                    "rate": spread([r["rate"] for r in runs], 1),
                    "throttled_429": sum(r["throttled_429"] for r in runs),
                    "duplicates": sum(r["duplicates"] for r in runs),
                    "max_in_any_second": max(r["max_in_any_second"] for r in runs),
                    "connections_per_1000": spread([r["connections_per_1000"] for r in runs], 1),
                    "cpu_ms_per_1000": spread([r["cpu_ms_per_1000"] for r in runs], 0),
                }
            )

    raw_rate = spread([r["rate"] for r in raw], 1)
    raw_cpu = spread([r["cpu_ms_per_1000"] for r in raw], 0)
    top = max(tiers, key=lambda t: t["limit_per_second"])
    summary = {
        "benchmark": "tiers",
        "latency_seconds": LATENCY,
        "runs": args.runs,
        "tiers": tiers,
        "raw": {
            "recipients": RAW_COUNT,
            "concurrency": RAW_CONCURRENCY,
            "rate": raw_rate,
            "cpu_ms_per_1000": raw_cpu,
            "connections_per_1000": spread([r["connections_per_1000"] for r in raw], 1),
        },
        "raw_keep_alive": {
            "rate": spread([r["rate"] for r in tuned], 1),
            "cpu_ms_per_1000": spread([r["cpu_ms_per_1000"] for r in tuned], 0),
            "connections_per_1000": spread([r["connections_per_1000"] for r in tuned], 1),
        },
        # At the highest limit, where the engine sends as fast as this process can.
        "engine_over_raw_cpu": round(top["cpu_ms_per_1000"]["median"] / raw_cpu["median"], 2),
        "top_rate_over_raw": round(top["rate"]["median"] / raw_rate["median"], 3),
        "engine_over_raw_keep_alive_cpu": round(
            top["cpu_ms_per_1000"]["median"] / spread([r["cpu_ms_per_1000"] for r in tuned], 0)["median"], 2
        ),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        for tier in tiers:
            print(
                f"{tier['limit_per_second']:>5}/s x {tier['recipients']}: "
                f"{tier['fraction_of_limit']['median']:.3f} of the limit, {tier['throttled_429']} x 429, "
                f"{tier['cpu_ms_per_1000']['median']:.0f} ms CPU / 1,000, "
                f"{tier['connections_per_1000']['median']:.1f} connections / 1,000"
            )
        print(
            f"raw httpx loop: {raw_rate['median']:.0f}/s, {raw_cpu['median']:.0f} ms CPU / 1,000, "
            f"{summary['raw']['connections_per_1000']['median']:.1f} connections / 1,000; engine/raw CPU "
            f"{summary['engine_over_raw_cpu']}, top rate / raw {summary['top_rate_over_raw']}"
        )
        kept = summary["raw_keep_alive"]
        print(
            f"raw loop keeping {RAW_CONCURRENCY} connections alive: {kept['rate']['median']:.0f}/s, "
            f"{kept['cpu_ms_per_1000']['median']:.0f} ms CPU / 1,000, "
            f"{kept['connections_per_1000']['median']:.1f} connections / 1,000"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
