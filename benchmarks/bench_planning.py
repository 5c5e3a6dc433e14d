"""Planning a bulk send from a file: time per recipient and peak memory growth, beside baselines.

For 10k, 100k and 1M recipients in a JSON-lines file, numbers only and with per-recipient body
parameters, each case runs in a fresh Python process that measures its own peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) before and after the work, after a warm-up plan of one
recipient (imports, schemas): the difference is what the work itself costs.

* ``plan``: ``build_plan(path, ...)``, what the operator does before the first send (every line read
  and validated, duplicates found);
* ``stdlib``: the baseline, the same file read line by line and parsed with ``json.loads`` alone, no
  validation, nothing kept;
* ``list`` (10k and 100k): the recipients as a list in memory (as XCom hands them over), planned,
  and every item built up front, as the engine took them before it was fed one at a time;
* ``resume``: reading the journal of a finished 1M-recipient send (an ``attempt`` and an ``accepted``
  record each: 2M lines) into the outcomes a new try skips the accepted with.

    python benchmarks/bench_planning.py            # markdown table
    python benchmarks/bench_planning.py --json     # machine-readable
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SIZES = (10_000, 100_000, 1_000_000)
LIST_SIZES = (10_000, 100_000)
JOURNAL_RECIPIENTS = 1_000_000
TEMPLATE = {"template_name": "order_ready", "language_code": "en_US", "body_parameters": ["friend", "0"]}
# The goals of issue 13, per recipient and for the million.
GOAL_US = {"numbers": 10.0, "parameters": 20.0}
GOAL_PEAK_MB_1M = 300.0
REPEATS = 3


def recipient(i: int, personal: bool) -> Any:
    to = f"+1415{i:07d}"
    return {"to": to, "body_parameters": [f"Customer {i}", f"{i % 997}.50"]} if personal else to


def write_recipients(path: Path, count: int, personal: bool) -> None:
    with path.open("w") as handle:
        for i in range(count):
            handle.write(json.dumps(recipient(i, personal)) + "\n")


def write_journal(path: Path, count: int) -> None:
    fingerprint = "f" * 64
    with path.open("w") as handle:
        for i in range(count):
            to = f"1415{i:07d}"
            handle.write(
                json.dumps(
                    {"at": 1.0, "attempt": 1, "fingerprint": fingerprint, "state": "attempt", "to": to}
                )
                + "\n"
            )
            handle.write(
                json.dumps({"at": 1.1, "state": "accepted", "to": to, "wamid": f"wamid.{i:024d}"}) + "\n"
            )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def child(kind: str, path: str, count: int, personal: bool) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    from airflow_provider_whatsapp.bulk.items import build_plan

    build_plan([recipient(0, personal)], **TEMPLATE)  # warm-up: imports, schemas
    before = peak_mb()
    best = float("inf")
    growth = 0.0
    # Small cases are repeated (the best time is kept): a 10k case lasts a tenth of a second, which a
    # busy neighbour on the machine can double. The memory figure is the first run's.
    for _ in range(REPEATS if count <= max(LIST_SIZES) else 1):
        started = time.perf_counter()
        done = work(kind, path, personal)
        best = min(best, time.perf_counter() - started)
        growth = growth or peak_mb() - before
    return {
        "kind": kind,
        "recipients": count,
        "done": done,
        "seconds": best,
        "us_per_recipient": best / count * 1e6,
        "peak_growth_mb": growth,
    }


def work(kind: str, path: str, personal: bool) -> int:
    from airflow_provider_whatsapp.bulk.items import build_plan
    from airflow_provider_whatsapp.bulk.progress import LocalJournal

    if kind == "plan":
        done = build_plan(path, **TEMPLATE).count
    elif kind == "stdlib":
        done = 0
        with open(path, "rb") as handle:
            for line in handle:
                json.loads(line)
                done += 1
    elif kind == "list":
        with open(path, "rb") as handle:
            recipients = [json.loads(line) for line in handle]
        done = len(list(build_plan(recipients, **TEMPLATE).items()))
    elif kind == "resume":
        outcomes = LocalJournal(path).outcomes()
        done = sum(1 for outcome in outcomes.values() if outcome.state == "accepted")
    else:
        raise SystemExit(f"unknown case {kind}")
    return done


def measure(kind: str, path: Path, count: int, personal: bool) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), str(count), "1" if personal else "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["input"] = "parameters" if personal else "numbers"
    print(
        f"  {kind:7} {figures['input']:10} {count:>9}: {figures['us_per_recipient']:6.1f} µs/recipient, "
        f"peak +{figures['peak_growth_mb']:.0f} MB",
        file=sys.stderr,
        flush=True,
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--child", nargs=4, metavar=("KIND", "PATH", "COUNT", "PERSONAL"), help=argparse.SUPPRESS
    )
    parser.add_argument("--max-size", type=int, default=max(SIZES), help="largest recipient count measured")
    args = parser.parse_args(argv)
    if args.child:
        kind, path, count, personal = args.child
        print(json.dumps(child(kind, path, int(count), personal == "1")))
        return 0

    sizes = [size for size in SIZES if size <= args.max_size]
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="whatsapp-bench-plan-") as folder:
        for personal in (False, True):
            for size in sizes:
                path = Path(folder) / f"r-{size}-{int(personal)}.jsonl"
                write_recipients(path, size, personal)
                cases.append(measure("plan", path, size, personal))
                cases.append(measure("stdlib", path, size, personal))
                if size in LIST_SIZES:
                    cases.append(measure("list", path, size, personal))
                path.unlink()
        journal_size = min(JOURNAL_RECIPIENTS, args.max_size)
        journal = Path(folder) / "journal.jsonl"
        write_journal(journal, journal_size)
        cases.append(measure("resume", journal, journal_size, False))
    by_key = {(c["kind"], c["input"], c["recipients"]): c for c in cases}
    largest = max(sizes)
    goals = {
        "numbers_us": by_key[("plan", "numbers", largest)]["us_per_recipient"] <= GOAL_US["numbers"],
        "parameters_us": by_key[("plan", "parameters", largest)]["us_per_recipient"] <= GOAL_US["parameters"],
        "parameters_peak_mb": by_key[("plan", "parameters", largest)]["peak_growth_mb"] <= GOAL_PEAK_MB_1M,
    }
    result = {
        "cases": cases,
        "goals": goals,
        "goal_us": GOAL_US,
        "goal_peak_mb": GOAL_PEAK_MB_1M,
        "largest": largest,
        "journal_recipients": journal_size,
        "load_average": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print("| case | input | recipients | µs / recipient | peak RSS growth |")
    print("| --- | --- | --- | --- | --- |")
    for c in cases:
        print(
            f"| {c['kind']} | {c['input']} | {c['recipients']:,} | {c['us_per_recipient']:.1f} | "
            f"{c['peak_growth_mb']:.0f} MB |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
