"""Event-driven: a WhatsApp message saying "report" runs this DAG, which answers the sender.

On Airflow 3 the DAG is scheduled on an asset watched by ``WhatsAppInboundMessageTrigger``: the
triggerer reads the event store the webhook receiver fills, and each inbound text matching
``text_pattern`` becomes an asset event whose ``extra["payload"]`` is the message (``from``, ``type``,
``text``, ``wamid``, ``timestamp``, ...), so one DAG run per message. No message is lost across a triggerer
restart (at least once; the wamid is the de-duplication key). The watcher starts at the end of the
feed: messages stored before it first ran start no run. The person has just written, so their
24-hour window is open and the answer can be free-form text.

Airflow 2.11 has no event-driven scheduling: there the DAG parses with ``schedule=None`` and can be
triggered by hand with ``{"sender": "+1 415 555 0100"}`` as its conf.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow_provider_whatsapp.operators.messages import WhatsAppSendTextOperator

try:  # Airflow 3: AssetWatcher and event triggers
    from airflow.sdk import DAG, Asset, AssetWatcher, task

    from airflow_provider_whatsapp.triggers.inbound import WhatsAppInboundMessageTrigger

    REPORT_REQUESTS: Any = Asset(
        name="whatsapp_report_requests",
        watchers=[
            AssetWatcher(
                name="whatsapp_report_requests",
                trigger=WhatsAppInboundMessageTrigger(text_pattern=r"(?i)^\s*report\b", types=["text"]),
            )
        ],
    )
    SCHEDULE: Any = [REPORT_REQUESTS]
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task

    REPORT_REQUESTS = None
    SCHEDULE = None

with DAG(
    dag_id="example_whatsapp_report_on_request",
    description='Answer a WhatsApp "report" message with the latest numbers',
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"sender": "+1 415 555 0100"},
    tags=["example", "whatsapp"],
) as dag:

    @task
    def requested_by(**context: Any) -> dict[str, Any]:
        """The message that asked: the latest asset event's extra, else (a manual run) ``params``."""
        events = context.get("triggering_asset_events") or {}
        messages = [
            dict((event.extra or {}).get("payload") or {})
            for asset_events in events.values()
            for event in asset_events
        ]
        if messages and messages[-1].get("from"):
            return messages[-1]
        return {"from": context["params"]["sender"], "wamid": None}

    @task
    def numbers() -> dict[str, int]:
        return {"orders": 1284, "revenue": 57_310}

    request = requested_by()
    figures = numbers()
    answer = WhatsAppSendTextOperator(
        task_id="send_report",
        to="{{ ti.xcom_pull(task_ids='requested_by')['from'] }}",
        reply_to="{{ ti.xcom_pull(task_ids='requested_by')['wamid'] or '' }}",
        body=(
            "Today so far: {{ ti.xcom_pull(task_ids='numbers')['orders'] }} orders, "
            "{{ ti.xcom_pull(task_ids='numbers')['revenue'] }} EUR revenue."
        ),
    )
    [request, figures] >> answer
