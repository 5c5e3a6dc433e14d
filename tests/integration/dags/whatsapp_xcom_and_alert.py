"""Integration DAG: a text, a reply that templates the first send's wamid from XCom, then a task that
fails and alerts on WhatsApp through the notifier (task-level callback via default_args)."""

from __future__ import annotations

import datetime

from airflow_provider_whatsapp.notifications.whatsapp import WhatsAppNotifier
from airflow_provider_whatsapp.operators.messages import WhatsAppSendTextOperator

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.decorators import task

ON_CALL = "+1 (415) 555-0100"

with DAG(
    dag_id="whatsapp_xcom_and_alert",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    default_args={
        "retries": 0,
        "on_failure_callback": WhatsAppNotifier(
            to=ON_CALL, body="{{ dag.dag_id }}.{{ ti.task_id }} failed: {{ exception }}"
        ),
    },
) as dag:
    first = WhatsAppSendTextOperator(task_id="first", to=ON_CALL, body="Load started for {{ ds }}")
    second = WhatsAppSendTextOperator(
        task_id="second",
        to=ON_CALL,
        body="Follow-up to {{ ti.xcom_pull(task_ids='first') }}",
        reply_to="{{ ti.xcom_pull(task_ids='first') }}",
    )

    @task
    def explode() -> None:
        raise RuntimeError("disk full on /data")

    first >> second >> explode()
