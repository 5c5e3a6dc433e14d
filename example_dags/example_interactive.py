"""Interactive WhatsApp messages: reply buttons, a list of options and a call-to-action URL button.

Interactive messages are free-form, so they are delivered only within 24 hours of the recipient's last
message (else error 131047: send a template first). When the recipient taps a button or a row, its
``id`` comes back to the business in a webhook. The second message replies to the first one
(``reply_to`` takes the first send's wamid from XCom), so the two appear threaded in the chat.

The recipient comes from the Airflow Variable ``whatsapp_recipient``, else from ``params.recipient``.
"""

from __future__ import annotations

from datetime import datetime

from airflow_provider_whatsapp.operators.messages import (
    WhatsAppSendButtonsOperator,
    WhatsAppSendCtaUrlOperator,
    WhatsAppSendListOperator,
)

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

RECIPIENT = "{{ var.value.get('whatsapp_recipient', params.recipient) }}"
# The day of the run, for runs with a logical date and without one (Airflow 3 runs triggered from the
# REST API or `airflow dags trigger` have none, so `{{ ds }}` is undefined there).
RUN_DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
RUN_DAY_NODASH = "{{ (dag_run.logical_date or dag_run.run_after) | ds_nodash }}"

with DAG(
    dag_id="example_whatsapp_interactive",
    description="Ask with reply buttons, offer a list of reports, link to the dashboard",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"recipient": "+1 415 555 0100"},
    tags=["example", "whatsapp"],
) as dag:
    ask = WhatsAppSendButtonsOperator(
        task_id="ask_approval",
        to=RECIPIENT,
        header=f"Nightly load {RUN_DAY}",
        body="The nightly load finished with 3 rejected rows. Publish the numbers anyway?",
        footer="Sent by Airflow",
        buttons=[
            {"id": f"publish-{RUN_DAY_NODASH}", "title": "Publish"},
            {"id": f"hold-{RUN_DAY_NODASH}", "title": "Hold"},
            {"id": f"details-{RUN_DAY_NODASH}", "title": "Show details"},
        ],
    )

    offer = WhatsAppSendListOperator(
        task_id="offer_reports",
        to=RECIPIENT,
        reply_to="{{ ti.xcom_pull(task_ids='ask_approval') }}",
        header="Reports",
        body="Which reports do you want every morning?",
        button="Choose reports",
        sections=[
            {
                "title": "Sales",
                "rows": [
                    {
                        "id": "sales-daily",
                        "title": "Daily sales",
                        "description": "Orders and revenue by region",
                    },
                    {"id": "sales-weekly", "title": "Weekly sales", "description": "Every Monday at 8:00"},
                ],
            },
            {
                "title": "Operations",
                "rows": [
                    {
                        "id": "ops-failures",
                        "title": "Failed tasks",
                        "description": "Only when something failed",
                    },
                    {"id": "ops-sla", "title": "SLA misses"},
                ],
            },
        ],
        footer="You can change this any time",
    )

    link = WhatsAppSendCtaUrlOperator(
        task_id="link_dashboard",
        to=RECIPIENT,
        body=f"The full numbers for {RUN_DAY} are on the dashboard.",
        display_text="Open dashboard",
        url=f"https://example.com/dashboards/sales?day={RUN_DAY}",
    )

    ask >> offer >> link
