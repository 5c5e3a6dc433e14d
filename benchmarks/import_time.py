"""How much importing the operators module adds to a DAG file's parse, over ``import airflow.sdk``.

Runs ``python -X importtime -c "import airflow.sdk; import <module>"`` N times in fresh interpreters
and sums the cumulative import time of the top-level ``airflow_provider_whatsapp`` entries: everything
the provider's import loaded that ``airflow.sdk`` had not loaded already. Prints a markdown table row
(or JSON with ``--json``) with the median, min and max in milliseconds.

    python benchmarks/import_time.py [--runs 15] [--module airflow_provider_whatsapp.operators.messages]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PREFIX = "airflow_provider_whatsapp"


def baseline_import(python: str) -> str:
    """``airflow.sdk`` on Airflow 3. Airflow 2 has no SDK; what a DAG file loads there anyway is
    ``BaseOperator``, so that is the baseline."""
    probe = subprocess.run(
        [python, "-c", "import importlib.util as u; print(bool(u.find_spec('airflow.sdk')))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return "airflow.sdk" if probe.stdout.strip() == "True" else "airflow.models.baseoperator"


def attributable_us(stderr: str, prefix: str = PREFIX) -> int:
    """Microseconds spent in top-level imports of ``prefix`` (their cumulative time: submodules and
    any third-party module first loaded by them)."""
    total = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if name.startswith(" " + prefix) and not name.startswith("  "):  # depth 0: not nested
            module = name.strip()
            if module == prefix or module.startswith(prefix + "."):
                total += int(cumulative.strip())
    return total


def measure(module: str, runs: int, python: str) -> dict[str, object]:
    base = baseline_import(python)
    samples = []
    for _ in range(runs):
        result = subprocess.run(
            [python, "-X", "importtime", "-c", f"import {base}; import {module}"],
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(attributable_us(result.stderr) / 1000)
    return {
        "module": module,
        "baseline": base,
        "runs": runs,
        "median_ms": round(statistics.median(samples), 2),
        "min_ms": round(min(samples), 2),
        "max_ms": round(max(samples), 2),
        "samples_ms": [round(s, 2) for s in samples],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", default="airflow_provider_whatsapp.operators.messages")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure (default: this one)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a markdown row")
    parser.add_argument("--header", action="store_true", help="print the markdown table header first")
    args = parser.parse_args(argv)

    figures = measure(args.module, args.runs, args.python)
    if args.json:
        print(json.dumps(figures))
        return 0
    if args.header:
        print("| import | over | runs | median ms | min ms | max ms |")
        print("| --- | --- | --- | --- | --- | --- |")
    print(
        f"| `{figures['module']}` | `import {figures['baseline']}` | {figures['runs']} | "
        f"{figures['median_ms']} | {figures['min_ms']} | {figures['max_ms']} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
