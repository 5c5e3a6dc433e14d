"""Test DAG: a text sent with ``confirm="delivered"`` (deferred), then a status sensor waiting for
``read`` (deferred); both resume from their trigger's event."""

from __future__ import annotations

import datetime

from airflow_provider_whatsapp.operators.messages import WhatsAppSendTextOperator
from airflow_provider_whatsapp.sensors.status import WhatsAppMessageStatusSensor

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

with DAG(
    dag_id="whatsapp_confirm_and_status",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    default_args={"retries": 0},
) as dag:
    send = WhatsAppSendTextOperator(
        task_id="send",
        to="+1 415 555 0100",
        body="Nightly load done: 1284 rows",
        confirm="delivered",
        confirm_timeout=60,
        confirm_poke_interval=0.05,
        deferrable=True,
    )
    wait_read = WhatsAppMessageStatusSensor(
        task_id="wait_read",
        message_id="{{ ti.xcom_pull(task_ids='send') }}",
        target="read",
        poke_interval=0.05,
        timeout=60,
        deferrable=True,
    )
    send >> wait_read
