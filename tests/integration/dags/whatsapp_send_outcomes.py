"""Integration DAG: one text send per business phone number id listed in WHATSAPP_OUTCOME_PHONE_IDS,
each with two Airflow retries and no delay, so the test can count how often each answer got re-sent."""

from __future__ import annotations

import datetime
import json
import os

from airflow_provider_whatsapp.operators.messages import WhatsAppSendTextOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

with DAG(
    dag_id="whatsapp_send_outcomes",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": datetime.timedelta(0)},
) as dag:
    for phone_number_id in json.loads(os.environ.get("WHATSAPP_OUTCOME_PHONE_IDS", "[]")):
        WhatsAppSendTextOperator(
            task_id=f"send_{phone_number_id}",
            to="+1 415 555 0100",
            body="Nightly load finished",
            phone_number_id=phone_number_id,
        )
