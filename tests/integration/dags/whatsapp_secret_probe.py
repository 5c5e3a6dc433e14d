"""Two sends at DEBUG log level: one accepted, one refused; the test looks for the key in everything."""

from __future__ import annotations

import datetime

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

from airflow_provider_whatsapp.operators.messages import WhatsAppSendTextOperator

with DAG(
    "whatsapp_secret_probe", start_date=datetime.datetime(2026, 1, 1), schedule=None, catchup=False
) as dag:
    # With only MATON_API_KEY there is no connection extra, so the number to send from is given here.
    sender = {"to": "+1 415 555 0100", "phone_number_id": "106540352242922"}
    accepted = WhatsAppSendTextOperator(task_id="accepted", body="hello", **sender)
    refused = WhatsAppSendTextOperator(task_id="refused", body="{{ ti.xcom_pull('accepted') }}", **sender)
    accepted >> refused
