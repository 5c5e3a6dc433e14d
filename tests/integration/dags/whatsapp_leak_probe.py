"""Sends whose answers echo the API key back; the deployment test looks for the key everywhere after."""

from __future__ import annotations

import datetime
import os

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from airflow_provider_whatsapp.operators.messages import WhatsAppSendTextOperator

# The test's loopback server answers by recipient: 14155550100 is accepted with a wamid that echoes
# the key, 14155550199 is refused with the key in the error's message and details.
ECHOED_ID, REFUSED = "+1 415 555 0100", "+1 415 555 0199"
SENDER = "106540352242922"  # given here: with only MATON_API_KEY there is no connection extra

with DAG(
    "whatsapp_leak_probe", start_date=datetime.datetime(2026, 1, 1), schedule=None, catchup=False
) as dag:
    echoed = WhatsAppSendTextOperator(task_id="echoed", to=ECHOED_ID, body="hi", phone_number_id=SENDER)
    refused = WhatsAppSendTextOperator(
        task_id="refused", to=REFUSED, body="{{ ti.xcom_pull('echoed') }}", phone_number_id=SENDER
    )
    bulk = WhatsAppSendBulkOperator(
        task_id="bulk",
        recipients=[ECHOED_ID, REFUSED],
        message={"type": "text", "text": {"body": "hi"}},
        phone_number_id=SENDER,
        max_failure_ratio=1.0,
        progress_path=os.environ.get("LEAK_PROBE_JOURNAL", "/tmp/whatsapp-leak-probe"),
    )
    echoed >> refused
