"""Send a text, then wait (deferred) until WhatsApp reports it delivered; a failure is written down."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_whatsapp.operators.messages import WhatsAppSendTextOperator
from airflow_provider_whatsapp.sensors.status import WhatsAppMessageStatusSensor

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG


def record_failure(context: Any) -> None:
    """The exception's class and text, for the test to read (the run's own log is not at hand)."""
    error = context.get("exception")
    out = Path(context["params"]["out"]) / f"{context['ti'].task_id}.failure"
    out.write_text(f"{type(error).__name__}: {error}")


with DAG(
    dag_id="e2e_status",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"to": "+1 415 555 0100", "out": "/nonexistent"},
    default_args={"retries": 0, "on_failure_callback": record_failure},
) as dag:
    send = WhatsAppSendTextOperator(task_id="send", to="{{ params.to }}", body="The nightly load finished.")
    delivered = WhatsAppMessageStatusSensor(
        task_id="delivered",
        message_id="{{ ti.xcom_pull(task_ids='send') }}",
        target="delivered",
        deferrable=True,
        poke_interval=0.05,
        timeout=60,
    )
    send >> delivered
