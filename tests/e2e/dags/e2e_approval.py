"""The approval example's shape with short waits: ask two approvers, publish on approve, skip on reject."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow_provider_whatsapp.operators.approval import WhatsAppApprovalOperator

try:
    from airflow.sdk import DAG, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task

with DAG(
    dag_id="e2e_approval",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"approvers": "+1 415 555 0100, +1 415 555 0101", "out": "/nonexistent"},
    default_args={"retries": 0},
) as dag:
    ask = WhatsAppApprovalOperator(
        task_id="ask_to_publish",
        to="{{ params.approvers }}",
        body="Nightly load: 1284 rows, 3 rejected. Publish the numbers?",
        approve_label="Publish",
        reject_label="Hold",
        timeout=timedelta(seconds=60),
        timeout_default="fail",
        poke_interval=0.05,
        deferrable=True,
    )

    @task
    def publish(answer: dict[str, Any], params: dict | None = None) -> None:
        (Path((params or {})["out"]) / "published.json").write_text(json.dumps(answer))

    publish(ask.output)
