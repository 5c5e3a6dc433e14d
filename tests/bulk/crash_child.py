"""Run one bulk send of 200 recipients in a process of its own, for the crash test to SIGKILL.

Kept free of ``tests.conftest`` (which would make a new AIRFLOW_HOME): the parent passes everything
through the environment and the command line.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator

RECIPIENTS = 200


def recipients() -> list[str]:
    return [f"+1 415 555 {i:04d}" for i in range(RECIPIENTS)]


def main(progress_path: str, run_id: str) -> None:
    operator = WhatsAppSendBulkOperator(
        task_id="bulk",
        recipients=recipients(),
        message={"type": "text", "text": {"body": "Quarterly results are out"}},
        max_rate=80,
        progress_path=progress_path,
    )
    ti = SimpleNamespace(dag_id="bulk_dag", task_id="bulk", run_id=run_id, map_index=-1)
    operator.execute({"ti": ti})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
