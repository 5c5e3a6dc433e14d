"""Leak probes for the system test: sends to a loopback server that echoes the API key back.

Two DAGs with the same tasks: ``whatsapp_leak_probe_env`` takes its key from ``MATON_API_KEY``
(``maton_default`` without a connection), ``whatsapp_leak_probe_connection`` from the
``whatsapp_probe`` connection. Each ``echo_*`` task sends to its own phone number id, for which the
server answers with the key in a different place; ``bulk_reasons`` makes every recipient fail with the
key in the reason, which the bulk result (XCom) and journal carry.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from airflow_provider_whatsapp.operators.messages import WhatsAppSendTextOperator

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

# Phone number id -> where the server puts the key; the test's echo server reads the same table.
ECHO_PHONE_NUMBER_IDS = {
    "error_message": "100000000000001",
    "error_details": "100000000000002",
    "html_body": "100000000000003",
    "success_without_id": "100000000000004",
    "bulk_reasons": "100000000000005",
}
RECIPIENTS = ["+1 202 555 0147", "+1 202 555 0148"]
PROBE_CONNECTION = "whatsapp_probe"


class _WithoutDefaultConnection:
    """Runs the task as a deployment with only ``MATON_API_KEY`` would: no ``maton_default`` connection.

    The deployment defines ``maton_default`` (for the example DAGs) in the environment of the task
    processes only, so dropping it here leaves the hook the ``MATON_API_KEY`` fallback.
    """

    def execute(self, context: Any) -> Any:
        os.environ.pop("AIRFLOW_CONN_MATON_DEFAULT", None)
        return super().execute(context)  # type: ignore[misc]


class _EnvKeyText(_WithoutDefaultConnection, WhatsAppSendTextOperator):
    pass


class _EnvKeyBulk(_WithoutDefaultConnection, WhatsAppSendBulkOperator):
    pass


def _probe_dag(dag_id: str, *, from_environment: bool) -> DAG:
    text = _EnvKeyText if from_environment else WhatsAppSendTextOperator
    bulk = _EnvKeyBulk if from_environment else WhatsAppSendBulkOperator
    conn_id = "maton_default" if from_environment else PROBE_CONNECTION
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        default_args={"retries": 0},
        tags=["probe"],
    ) as dag:
        for echo in ("error_message", "error_details", "html_body", "success_without_id"):
            text(
                task_id=f"echo_{echo}",
                maton_conn_id=conn_id,
                phone_number_id=ECHO_PHONE_NUMBER_IDS[echo],
                to=RECIPIENTS[0],
                body="leak probe",
            )
        bulk(
            task_id="bulk_reasons",
            maton_conn_id=conn_id,
            phone_number_id=ECHO_PHONE_NUMBER_IDS["bulk_reasons"],
            recipients=RECIPIENTS,
            message={"type": "text", "text": {"body": "leak probe"}},
            max_failure_ratio=1.0,  # every recipient fails; the task succeeds and returns the reasons
        )
    return dag


env_probe = _probe_dag("whatsapp_leak_probe_env", from_environment=True)
connection_probe = _probe_dag("whatsapp_leak_probe_connection", from_environment=False)
