"""Create a WhatsApp message template, wait until Meta approves it, then send it.

Templates are how a business writes first, or writes again more than 24 hours after the recipient's
last message: outside that window only an approved template may be sent. Review usually takes
minutes and can take up to a day, so the sensor defers: the waiting happens in the triggerer, not in a
worker slot. A rejection (with Meta's reason), a paused or a disabled template fails the sensor at
once, without retries.

Template names are unique per WhatsApp Business Account and language: running this DAG a second time
fails at ``create_template`` unless the template is deleted first (``WhatsAppDeleteTemplateOperator``)
or the name changed. Needs a ``maton_default`` connection (or ``MATON_API_KEY``) with a ``waba_id`` and
a ``phone_number_id`` in its extra.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow_provider_whatsapp.operators.messages import WhatsAppSendTemplateOperator
from airflow_provider_whatsapp.operators.templates import WhatsAppCreateTemplateOperator
from airflow_provider_whatsapp.sensors.template import WhatsAppTemplateApprovalSensor

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

TEMPLATE_NAME = "daily_sales_report"
LANGUAGE = "en_US"

# {{1}}, {{2}} are WhatsApp's placeholders, not Jinja: `components` is not rendered by Airflow.
COMPONENTS = [
    {"type": "HEADER", "format": "TEXT", "text": "Daily sales report"},
    {
        "type": "BODY",
        "text": "Hello {{1}}, the sales report for {{2}} is ready in your dashboard.",
        "example": {"body_text": [["Ana", "2026-05-31"]]},
    },
    {"type": "FOOTER", "text": "Sent by Airflow"},
    {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Thanks"}]},
]

with DAG(
    dag_id="example_whatsapp_template_lifecycle",
    description="Create a WhatsApp template, wait for Meta's approval (deferred), then send it",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"recipient": "14155550100", "name": "Ana"},
    tags=["example", "whatsapp"],
) as dag:
    create_template = WhatsAppCreateTemplateOperator(
        task_id="create_template",
        name=TEMPLATE_NAME,
        language=LANGUAGE,
        category="UTILITY",
        components=COMPONENTS,
    )

    wait_for_approval = WhatsAppTemplateApprovalSensor(
        task_id="wait_for_approval",
        template_name=TEMPLATE_NAME,
        language_code=LANGUAGE,
        deferrable=True,
        poke_interval=timedelta(minutes=2),
        timeout=timedelta(days=1),
    )

    send_report = WhatsAppSendTemplateOperator(
        task_id="send_report",
        to="{{ params.recipient }}",
        template_name=TEMPLATE_NAME,
        language_code=LANGUAGE,
        # The run's day, with or without a logical date (Airflow 3 runs triggered by API or CLI have none).
        body_parameters=["{{ params.name }}", "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"],
    )

    create_template >> wait_for_approval >> send_report
