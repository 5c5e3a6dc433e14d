"""Run a DAG file end to end with ``dag.test()`` on real Airflow (2.11 and 3.x)."""

from __future__ import annotations

import importlib.util
import shutil
import uuid
from pathlib import Path
from typing import Any


def load_dag(source: Path, dags_folder: Path, dag_id: str) -> Any:
    """Copy ``source`` into the configured dags folder (Airflow 3 only tests DAGs from there) and load it."""
    target = dags_folder / source.name
    shutil.copy(source, target)
    module_name = f"dag_under_test_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, target)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [v for v in vars(module).values() if getattr(v, "dag_id", None) == dag_id and hasattr(v, "test")]
    assert dags, f"{source.name} defines no DAG {dag_id!r}"
    return dags[0]


def run_dag(source: Path, dags_folder: Path, dag_id: str, **test_kwargs: Any) -> Any:
    """``dag.test()`` the DAG ``dag_id`` from ``source``; returns the DagRun."""
    return load_dag(source, dags_folder, dag_id).test(**test_kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    """``{task_id: state}`` of a finished run (mapped tasks: the last map index seen)."""
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
