"""Send the same message to several recipients with dynamic task mapping: one mapped task per person.

Each mapped task sends one message and returns its wamid, so a failed recipient can be retried on its
own and the others are not sent twice. The list comes from the Airflow Variable
``whatsapp_fanout_recipients`` (a JSON list), else from ``params.recipients``. For hundreds of
recipients, ``WhatsAppSendBulkOperator`` paces the sends to WhatsApp's rate limits in one task.
"""

from __future__ import annotations

from datetime import datetime

from airflow_provider_whatsapp.operators.messages import WhatsAppSendTextOperator

try:  # Airflow 3
    from airflow.sdk import DAG, Variable, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task
    from airflow.models import Variable

# The day of the run, for runs with a logical date and without one (Airflow 3 runs triggered from the
# REST API or `airflow dags trigger` have none, so `{{ ds }}` is undefined there).
RUN_DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"

with DAG(
    dag_id="example_whatsapp_fanout",
    description="One WhatsApp text per recipient with .partial().expand()",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"recipients": ["+1 415 555 0100", "+1 415 555 0101", "+44 20 7946 0000"]},
    tags=["example", "whatsapp"],
) as dag:
    # Phone numbers are personal data: Airflow would print the returned list in the task log.
    @task(show_return_value_in_logs=False)
    def recipients(params: dict | None = None) -> list[str]:
        """The people to notify: the Variable when it is set, else the DAG's params."""
        configured = Variable.get("whatsapp_fanout_recipients", None, deserialize_json=True)
        return list(configured or (params or {}).get("recipients") or [])

    notify = WhatsAppSendTextOperator.partial(
        task_id="notify",
        body=f"Good morning! The data for {RUN_DAY} is ready: https://example.com/dashboards/{RUN_DAY}",
        preview_url=True,
    ).expand(to=recipients())
