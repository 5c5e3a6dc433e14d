"""Run every benchmark and write ``benchmarks/results.md`` (what ``make bench`` does).

Each benchmark runs as its own process with ``--json``; the table gives each figure's median with
min and max, its goal, and the command that produced it, under a description of the machine.

    .venvs/airflow3/bin/python benchmarks/run.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results.md"


def python_label() -> str:
    try:
        return os.path.relpath(sys.executable, ROOT)
    except ValueError:
        return sys.executable


def run(script: str, *args: str) -> tuple[str, dict[str, Any] | None, str]:
    """Run one benchmark; returns the command as shown, its JSON (None when it failed), and errors."""
    path = HERE / script
    shown = " ".join([python_label(), f"benchmarks/{script}", *args, "--json"])
    if not path.exists():
        return shown, None, f"{script} is missing"
    print(f"$ {shown}", flush=True)
    done = subprocess.run(
        [sys.executable, str(path), *args, "--json"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return shown, None, (done.stderr or done.stdout)[-1500:]
    return shown, json.loads(lines[-1]), ""


def machine() -> list[tuple[str, str]]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return [
        ("date (UTC)", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")),
        ("CPU", f"{cpu}, {os.cpu_count()} logical CPUs (`nproc`)"),
        ("memory", memory),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("apache-airflow", version("apache-airflow")),
        ("httpx", version("httpx")),
        ("pydantic", version("pydantic")),
        ("airflow-provider-whatsapp", version("airflow-provider-whatsapp")),
    ]


def spread(figure: dict[str, float], unit: str = "", digits: int = 3) -> str:
    fmt = f"{{:.{digits}f}}"
    return (
        f"{fmt.format(figure['median'])}{unit} "
        f"({fmt.format(figure['min'])}{unit}-{fmt.format(figure['max'])}{unit})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke test, not for the README)")
    args = parser.parse_args(argv)
    quick = args.quick

    bulk_cmd, bulk, bulk_err = run(
        "bench_bulk.py", *(["--runs", "2", "--sequential-runs", "1"] if quick else ["--runs", "5"])
    )
    over_cmd, over, over_err = run("bench_overhead.py", *(["--rounds", "3"] if quick else ["--rounds", "7"]))
    imp_cmd, imp, imp_err = run("import_time.py", *(["--runs", "5"] if quick else ["--runs", "15"]))
    bulk_imp_cmd, bulk_imp, _ = run(
        "import_time.py",
        "--module",
        "airflow_provider_whatsapp.operators.bulk",
        "--runs",
        "5" if quick else "15",
    )
    mem_cmd, mem, mem_err = run("upload_memory.py", *(["--runs", "2"] if quick else ["--runs", "5"]))
    plan_cmd, plan, plan_err = run("bench_planning.py", *(["--max-size", "100000"] if quick else []))

    rows: list[str] = []
    missing: list[str] = []

    def row(what: str, figure: str, goal: str, met: bool | None, command: str) -> None:
        verdict = "n/a" if met is None else ("yes" if met else "**no**")
        rows.append(f"| {what} | {figure} | {goal} | {verdict} | `{command}` |")

    if bulk:
        row(
            f"Bulk send, {bulk['recipients']} recipients, server at {bulk['limit_per_second']}/s with "
            f"{int(bulk['latency_seconds'] * 1000)} ms latency: achieved rate / limit "
            f"(runs: {bulk['runs']})",
            spread(bulk["fraction_of_limit"]),
            "≥ 0.9",
            bulk["fraction_of_limit"]["min"] >= 0.9,
            bulk_cmd,
        )
        row(
            "… the same over the whole `execute` (validation and journal included)",
            spread(bulk["fraction_of_limit_whole_execute"]),
            "",
            None,
            bulk_cmd,
        )
        row(
            "… 429 answers from the server, all runs (most accepted in any 1 s window)",
            f"{bulk['throttled_429']} ({bulk['max_in_any_second']})",
            "0",
            bulk["throttled_429"] == 0,
            bulk_cmd,
        )
        row(
            f"… bulk rate / sequential loop of `send_message` (runs: {bulk['sequential_runs']}, "
            f"{bulk['sequential_rate']['median']:.1f} msg/s)",
            spread(bulk["bulk_over_sequential"], "x", 2),
            "",
            None,
            bulk_cmd,
        )
    else:
        missing.append(f"bulk: {bulk_err}")
    if over:
        row(
            f"Per-message client overhead: `MatonHook.send_message` / raw `httpx` post, keep-alive both "
            f"({over['rounds']} rounds x {over['messages_per_round']} messages; hook "
            f"{over['hook_us']['median']:.0f} µs, raw {over['raw_us']['median']:.0f} µs)",
            spread(over["hook_over_raw"]),
            "≤ 1.3",
            over["hook_over_raw"]["median"] <= 1.3,
            over_cmd,
        )
    else:
        missing.append(f"overhead: {over_err}")
    if imp:
        row(
            f"Import cost of `{imp['module']}` over `import {imp['baseline']}` ({imp['runs']} runs)",
            f"{imp['median_ms']:.1f} ms ({imp['min_ms']:.1f} ms-{imp['max_ms']:.1f} ms)",
            "≤ 20 ms",
            imp["median_ms"] <= 20,
            imp_cmd,
        )
    else:
        missing.append(f"import time: {imp_err}")
    if bulk_imp:
        row(
            f"... and of `{bulk_imp['module']}` ({bulk_imp['runs']} runs)",
            f"{bulk_imp['median_ms']:.1f} ms ({bulk_imp['min_ms']:.1f} ms-{bulk_imp['max_ms']:.1f} ms)",
            "≤ 20 ms",
            bulk_imp["median_ms"] <= 20,
            bulk_imp_cmd,
        )
    if mem:
        growth = mem["peak_rss_growth_mb"]
        row(
            f"Peak RSS growth uploading a {mem['file_mb']:.0f} MB document ({mem['runs']} runs)",
            f"{growth['median']:.1f} MB ({growth['min']:.1f} MB-{growth['max']:.1f} MB)",
            f"< {mem['limit_mb']:.0f} MB",
            bool(mem["ok"]),
            mem_cmd,
        )
    else:
        missing.append(f"upload memory: {mem_err}")
    if plan:
        cases = {(c["kind"], c["input"], c["recipients"]): c for c in plan["cases"]}

        def cost(case: dict[str, Any] | None) -> str:
            if case is None:
                return "—"
            return f"{case['us_per_recipient']:.1f} µs, +{case['peak_growth_mb']:.0f} MB"

        for kind in ("numbers", "parameters"):
            for size in sorted({c["recipients"] for c in plan["cases"] if c["kind"] == "plan"}):
                planned = cases[("plan", kind, size)]
                goal_us = plan["goal_us"][kind]
                goal = f"≤ {goal_us:g} µs"
                met = planned["us_per_recipient"] <= goal_us
                if kind == "parameters" and size >= 1_000_000:
                    goal += f", ≤ {plan['goal_peak_mb']:g} MB"
                    met = met and planned["peak_growth_mb"] <= plan["goal_peak_mb"]
                row(
                    f"Planning {size:,} recipients from a JSON-lines file, {kind}"
                    f"{' (per-recipient body parameters)' if kind == 'parameters' else ''}: time per "
                    f"recipient, peak RSS growth (baselines: stdlib read + `json.loads` "
                    f"{cost(cases.get(('stdlib', kind, size)))}; as a list with every item built up front "
                    f"{cost(cases.get(('list', kind, size)))})",
                    cost(planned),
                    goal,
                    met,
                    plan_cmd,
                )
        resume = cases.get(("resume", "numbers", plan["journal_recipients"]))
        if resume:
            row(
                f"Resume: reading the journal of a finished {resume['recipients']:,}-recipient send "
                f"({2 * resume['recipients']:,} lines) into the outcomes a new try skips the accepted with",
                f"{resume['seconds']:.1f} s, +{resume['peak_growth_mb']:.0f} MB",
                "",
                None,
                plan_cmd,
            )
    else:
        missing.append(f"planning: {plan_err}")

    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`benchmarks/run.py`); every figure is the median of several runs, "
        "with min-max in parentheses. Servers run on 127.0.0.1 in a process of their own.",
        "",
        "| machine | |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in machine()),
        "",
        "| benchmark | result: median (min-max) | goal | met | command |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        "Notes:",
        "",
        "- Bulk: `WhatsAppSendBulkOperator(max_rate=80)` against `benchmarks/_server.py --latency 0.05 "
        "--limit 80`, which answers 429 to any request beyond 80 accepted in the last second. The rate "
        "is recipients / seconds from the first send to the last answer. The sequential loop is one "
        "`MatonHook` calling `send_message` per recipient, keep-alive reused (its best case).",
        "- Overhead: both sides reuse one keep-alive client, send the same body with the same headers "
        "and decode the JSON answer; the hook's rate limiter is off (`rate_limit=0`), the server answers "
        "at once. Sends alternate in blocks of 50.",
        "- Import time and upload memory come from `benchmarks/import_time.py` and "
        "`benchmarks/upload_memory.py`; see their docstrings for the method.",
        "- Planning: each case is a fresh process measuring its own peak RSS before and after the work "
        "(`benchmarks/bench_planning.py`, one run per case); the stdlib baseline reads and parses the "
        "same file with no validation and keeps nothing.",
    ]
    if quick:
        lines += ["", "**Quick run (`--quick`): fewer runs than the published figures.**"]
    if missing:
        lines += ["", "Not measured:", "", *(f"- {m}" for m in missing)]
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
