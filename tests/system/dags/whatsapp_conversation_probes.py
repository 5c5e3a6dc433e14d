"""A status the real triggerer waits for: send a text, then defer until WhatsApp reports it read (which
happens only once the recipient answers, so the sensor's own first look cannot succeed)."""

from __future__ import annotations

from datetime import datetime

from airflow_provider_whatsapp.operators.messages import WhatsAppSendTextOperator
from airflow_provider_whatsapp.sensors.status import WhatsAppMessageStatusSensor

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG

with DAG(
    dag_id="whatsapp_status_probe",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"to": "+44 7700 900123"},
    default_args={"retries": 0},
    tags=["whatsapp", "probe"],
) as dag:
    send = WhatsAppSendTextOperator(task_id="send", to="{{ params.to }}", body="Did you see the numbers?")
    read = WhatsAppMessageStatusSensor(
        task_id="read",
        message_id="{{ ti.xcom_pull(task_ids='send') }}",
        target="read",
        deferrable=True,
        poke_interval=1,
        timeout=150,
    )
    send >> read
