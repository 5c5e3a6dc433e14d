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
