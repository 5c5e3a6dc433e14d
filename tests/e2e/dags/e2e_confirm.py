"""A free-form send that must be confirmed ``sent`` (deferred while it waits); a failure is written down."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_whatsapp.operators.messages import WhatsAppSendTextOperator

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG


def record_failure(context: Any) -> None:
    error = context.get("exception")
    out = Path(context["params"]["out"]) / f"{context['ti'].task_id}.failure"
    out.write_text(f"{type(error).__name__}: {error}")


with DAG(
    dag_id="e2e_confirm",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"to": "+1 415 555 0100", "out": "/nonexistent"},
    default_args={"retries": 0, "on_failure_callback": record_failure},
) as dag:
    WhatsAppSendTextOperator(
        task_id="alert",
        to="{{ params.to }}",
        body="The nightly load failed: disk quota exceeded.",
        confirm="sent",
        confirm_timeout=60,
        confirm_poke_interval=0.05,
        deferrable=True,
    )
