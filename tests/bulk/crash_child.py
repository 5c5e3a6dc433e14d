"""Run one bulk send of 200 recipients in a process of its own, for the crash test to SIGKILL."""

from __future__ import annotations

import sys

from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from tests.bulk.helpers import context, numbers

RECIPIENTS = 200


def main(progress_path: str, run_id: str) -> None:
    operator = WhatsAppSendBulkOperator(
        task_id="bulk",
        recipients=numbers(RECIPIENTS),
        message={"type": "text", "text": {"body": "Quarterly results are out"}},
        max_rate=80,
        progress_path=progress_path,
    )
    operator.execute(context(run_id=run_id))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
