"""Every file in example_dags/ imports without errors and defines at least one DAG (any author's)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "example_dags"
FILES = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def _dagbag(path: Path) -> Any:
    from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if AIRFLOW_V_3_PLUS:
            from airflow.dag_processing.dagbag import DagBag

            return DagBag(dag_folder=str(path), safe_mode=False)
        from airflow.models.dagbag import DagBag

        return DagBag(dag_folder=str(path), include_examples=False, safe_mode=False)


def test_there_are_example_dags() -> None:
    assert len(FILES) >= 4


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_example_dag_imports_without_errors(path: Path) -> None:
    bag = _dagbag(path)

    assert bag.import_errors == {}
    assert bag.dags, f"{path.name} defines no DAG"
    for dag_id, dag in bag.dags.items():
        assert dag_id.startswith("example_whatsapp_"), dag_id
        assert "whatsapp" in (dag.tags or set()), dag_id


def test_example_dag_ids_are_unique() -> None:
    seen: dict[str, str] = {}
    for path in FILES:
        for dag_id in _dagbag(path).dags:
            assert dag_id not in seen, f"{dag_id} is defined in {seen.get(dag_id)} and {path.name}"
            seen[dag_id] = path.name


# --- every run has what the examples use: Airflow 3 runs triggered by API/CLI have no logical date -----

README = EXAMPLES.parent / "README.md"
# Context keys Airflow 3 leaves out of runs without a logical date (and Airflow 2's old aliases).
NEEDS_A_LOGICAL_DATE = {
    "ds",
    "ds_nodash",
    "ts",
    "ts_nodash",
    "ts_nodash_with_tz",
    "logical_date",
    "execution_date",
    "data_interval_start",
    "data_interval_end",
    "prev_data_interval_start_success",
    "prev_data_interval_end_success",
    "next_ds",
    "prev_ds",
    "tomorrow_ds",
    "yesterday_ds",
}


def _python_sources() -> list[tuple[str, str]]:
    """``(where, code)`` for every example DAG and every Python block of the README."""
    sources = [(path.name, path.read_text()) for path in FILES]
    blocks = README.read_text().split("```python\n")[1:]
    sources += [(f"README.md python block {i}", block.split("```", 1)[0]) for i, block in enumerate(blocks)]
    return sources


def _needs_a_logical_date(code: str) -> set[str]:
    """Context keys only runs with a logical date have, used by templates or task parameters in ``code``."""
    import ast
    import io
    import re
    import tokenize

    from jinja2 import Environment, meta

    used: set[str] = set()
    env = Environment()
    env.filters.update(
        dict.fromkeys(("ds", "ds_nodash", "ts", "ts_nodash", "ts_nodash_with_tz"), str)
    )  # Airflow's
    strings = [
        t.string for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type == tokenize.STRING
    ]
    for literal in strings:
        for template in re.findall(r"\{\{.*?\}\}|\{%.*?%\}", literal, flags=re.S):
            used |= meta.find_undeclared_variables(env.parse(template))
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.FunctionDef):
            used |= {arg.arg for arg in [*node.args.args, *node.args.kwonlyargs]}
    return used & NEEDS_A_LOGICAL_DATE


@pytest.mark.parametrize(("where", "code"), _python_sources(), ids=[w for w, _ in _python_sources()])
def test_no_example_needs_a_logical_date(where: str, code: str) -> None:
    assert not _needs_a_logical_date(code), f"{where} uses what runs without a logical date lack"


def test_the_logical_date_check_finds_what_it_looks_for() -> None:
    code = 'X = "{{ ds }}"\n\ndef task(logical_date=None):\n    return "{{ dag_run.run_after | ds }}"\n'
    assert _needs_a_logical_date(code) == {"ds", "logical_date"}
