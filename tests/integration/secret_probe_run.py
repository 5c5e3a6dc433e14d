"""Child process: run the secret-probe DAG with ``dag.test()`` so every log line reaches stdout/stderr."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.dagrun import run_dag, task_states

if __name__ == "__main__":
    dag_run = run_dag(Path(sys.argv[1]), Path(sys.argv[2]), "whatsapp_secret_probe")
    print("STATES", task_states(dag_run))
