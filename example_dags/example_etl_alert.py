"""An ETL pipeline whose WhatsApp alert arrives, and says so, when a task fails.

The notifier is a task-level callback given through ``default_args``, so every task alerts with its own
context: ``{{ dag.dag_id }}``, ``{{ ti.task_id }}``, ``{{ exception }}``. The load fails on purpose while
``params.fail_load`` is true (the default, so a first run shows the alert); trigger with
``{"fail_load": false}`` to see the success message instead.

Why the alert has both a ``body`` and a ``template_name``: WhatsApp delivers a free-form text only within
24 hours of the on-call person's last message. It *accepts* one sent outside that window (HTTP 200, a
message id) and reports the failure minutes later, in a ``failed`` status with error 131047. So the
notifier sends the text when the event store shows the window open, and the approved ``etl_failure``
template otherwise; with ``confirm="sent"`` it also waits for the text's status, and when that status is
131047 it sends the template (safe: the text was not delivered). Without ``confirm``, a sent alert only
proves WhatsApp accepted it. The recipient comes from the Airflow Variable ``whatsapp_oncall``, else from
``params.oncall``.
"""

from __future__ import annotations

from datetime import datetime

from airflow_provider_whatsapp.notifications.whatsapp import WhatsAppNotifier, send_whatsapp_notification

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task

ONCALL = "{{ var.value.get('whatsapp_oncall', params.oncall) }}"
# The day of the run, for runs with a logical date and without one (Airflow 3 runs triggered from the
# REST API or `airflow dags trigger` have none, so `{{ ds }}` is undefined there).
RUN_DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"

alert_on_failure = WhatsAppNotifier(
    to=ONCALL,
    # Inside the 24-hour window: the full story as text.
    body=(
        "*{{ dag.dag_id }}* failed at task `{{ ti.task_id }}` (run {{ run_id }}, try {{ ti.try_number }}):\n"
        "{{ exception }}"
    ),
    # Outside it (or when the text fails with 131047): the approved "Task {{1}} failed at {{2}}: {{3}}."
    template_name="etl_failure",
    body_parameters=[
        "{{ dag.dag_id }}.{{ ti.task_id }}",
        "{{ (dag_run.logical_date or dag_run.run_after).strftime('%Y-%m-%d %H:%M') }} UTC",
        "{{ exception | string | truncate(200) }}",
    ],
    # The callback ends only once WhatsApp reports the alert sent, so a lost alert is seen, not assumed.
    confirm="sent",
)

with DAG(
    dag_id="example_whatsapp_etl_alert",
    description="ETL with a WhatsApp alert that arrives on any task failure, and a message on success",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"oncall": "+1 415 555 0100", "fail_load": True},
    default_args={"retries": 0, "on_failure_callback": alert_on_failure},
    tags=["example", "whatsapp"],
) as dag:

    @task
    def extract() -> list[dict[str, int]]:
        return [{"id": i, "amount": i * 10} for i in range(1, 101)]

    @task
    def transform(rows: list[dict[str, int]]) -> list[dict[str, int]]:
        return [row for row in rows if row["amount"] % 20 == 0]

    @task(
        on_success_callback=send_whatsapp_notification(
            to=ONCALL,
            body="{{ dag.dag_id }}: loaded {{ ti.xcom_pull(task_ids='load') }} rows for " + RUN_DAY + ".",
        )
    )
    def load(rows: list[dict[str, int]], params: dict | None = None) -> int:
        if (params or {}).get("fail_load", True):
            raise RuntimeError(f"warehouse refused the batch of {len(rows)} rows: disk quota exceeded")
        return len(rows)

    load(transform(extract()))
