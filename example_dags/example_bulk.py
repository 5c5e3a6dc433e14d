"""Send an approved template to every subscriber, each with their own name, at WhatsApp's rate limit.

The subscriber list comes from an upstream task (a query in real life; here the DAG's params), through
XCom. ``WhatsAppSendBulkOperator`` validates every number and parameter before the first send, sends
concurrently without going over ``max_rate``, and records each accepted message in a progress journal:
if the worker dies part-way, the task's retry skips everyone already sent. The last task reads the
bulk send's result (counts and failures) from XCom.

Set the Airflow Variable ``whatsapp_bulk_progress`` to shared storage (``s3://bucket/whatsapp`` or
``file:///shared/whatsapp``) when tasks may run on more than one worker.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from airflow_provider_whatsapp.redact import mask_phone_number

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task

with DAG(
    dag_id="example_whatsapp_bulk",
    description="A template with per-recipient parameters to many subscribers, resumable",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "subscribers": [
            {"phone": "+1 415 555 0100", "name": "Ada"},
            {"phone": "+1 415 555 0101", "name": "Alan"},
            {"phone": "+44 20 7946 0000", "name": "Grace"},
            {"phone": "+49 30 901820", "name": "Konrad"},
        ]
    },
    tags=["example", "whatsapp"],
) as dag:
    # Phone numbers are personal data: Airflow would print the returned list in the task log.
    @task(show_return_value_in_logs=False)
    def subscribers(params: dict | None = None, dag_run: Any = None) -> list[dict]:
        """Who gets the digest, with the values for the template's placeholders."""
        rows = (params or {}).get("subscribers") or []
        # Runs triggered without a logical date (Airflow 3: REST API, `airflow dags trigger`) have none.
        day = (dag_run.logical_date or dag_run.run_after).strftime("%Y-%m-%d")
        return [{"to": row["phone"], "body_parameters": [row["name"], day]} for row in rows]

    send_digest = WhatsAppSendBulkOperator(
        task_id="send_digest",
        recipients=subscribers(),
        # "Hi {{1}}, your weekly digest for {{2}} is ready." approved as weekly_digest in en_US
        template_name="weekly_digest",
        language_code="en_US",
        max_failure_ratio=0.05,  # a few unreachable numbers do not fail the run
        progress_path="{{ var.value.get('whatsapp_bulk_progress', '') }}",
        retries=2,
        retry_delay=timedelta(seconds=30),
    )

    @task
    def report(result: dict) -> str:
        """Summarise the bulk send for the log (or a dashboard)."""
        summary = (
            f"{result['sent']} sent, {result['skipped']} already sent by an earlier try, "
            f"{result['failed']} failed, {result['unknown']} unknown"
        )
        for failure in result["failures"]:
            # Phone numbers are personal data: the log shows enough to find the row, not the number.
            print(f"failed: {mask_phone_number(failure['to'])} ({failure['code']}): {failure['reason']}")
        print(summary)
        return summary

    report(send_digest.output)
