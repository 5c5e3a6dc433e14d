"""Per-message client overhead: ``MatonHook.send_message`` against a raw ``httpx`` post.

Both send the same payload to the same server (its own process, answering at once) over one
keep-alive ``httpx.Client`` each: the hook reuses its client, and the raw side posts with a client
made once, with the same headers, then checks the status and decodes the JSON as the hook does. The
hook runs with its rate limiter off (``rate_limit=0``): pacing is not overhead. Each round times
``--messages`` sends of each kind, alternating blocks of 50 so that drift in the machine's speed
hits both; a round's figure is the hook's median per-message time over the raw one's.

    python benchmarks/bench_overhead.py [--rounds 7] [--messages 400] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    API_KEY,
    PHONE_NUMBER_ID,
    bench_server,
    point_connection_at,
    spread,
    use_private_airflow_home,
)

PAYLOAD = {"to": "14155550100", "type": "text", "text": {"body": "Your weekly report is ready"}}
BLOCK = 50


def one_round(url: str, messages: int) -> dict[str, float]:
    import httpx

    from airflow_provider_whatsapp.hooks.maton import MatonHook

    hook = MatonHook(rate_limit=0)
    raw = httpx.Client(timeout=30.0)
    endpoint = f"{url}/whatsapp-business/v21.0/{PHONE_NUMBER_ID}/messages"
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}
    body = {"messaging_product": "whatsapp", **PAYLOAD}

    def raw_send() -> Any:
        response = raw.post(endpoint, json=body, headers=headers)
        response.raise_for_status()
        return response.json()["messages"][0]["id"]

    def hook_send() -> Any:
        return MatonHook.message_id(hook.send_message(PAYLOAD))

    raw_send(), hook_send()  # connections open, settings read
    times: dict[str, list[float]] = {"raw": [], "hook": []}
    for _ in range(messages // BLOCK):
        for name, send in (("raw", raw_send), ("hook", hook_send)):
            for _ in range(BLOCK):
                started = time.perf_counter()
                send()
                times[name].append(time.perf_counter() - started)
    hook.close()
    raw.close()
    raw_us = statistics.median(times["raw"]) * 1e6
    hook_us = statistics.median(times["hook"]) * 1e6
    return {"raw_us": raw_us, "hook_us": hook_us, "ratio": hook_us / raw_us}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    use_private_airflow_home()

    with bench_server() as url:
        point_connection_at(url)
        one_round(url, BLOCK)  # warm-up
        rounds = [one_round(url, args.messages) for _ in range(args.rounds)]

    summary = {
        "benchmark": "overhead",
        "rounds": args.rounds,
        "messages_per_round": args.messages,
        "hook_over_raw": spread([r["ratio"] for r in rounds]),
        "hook_us": spread([r["hook_us"] for r in rounds], 1),
        "raw_us": spread([r["raw_us"] for r in rounds], 1),
        "ok": statistics.median(r["ratio"] for r in rounds) <= 1.3,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        r = summary["hook_over_raw"]
        print(
            f"hook / raw httpx per message: {r['median']:.3f} ({r['min']:.3f}-{r['max']:.3f}); "
            f"hook {summary['hook_us']['median']} us, raw {summary['raw_us']['median']} us"
        )
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
