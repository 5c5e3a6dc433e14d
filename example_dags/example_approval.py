"""A nightly load that asks for approval on WhatsApp, then publishes or skips.

``WhatsAppApprovalOperator`` sends the question with two reply buttons to every approver and defers
(no worker slot is held) until the first approver taps one. Approve: ``publish`` runs. Reject: the
downstream tasks are skipped. Nobody answers within ``timeout``: the operator takes ``timeout_default``
(here a reject, so nothing is published unseen). An answer from a number that is not an approver is
ignored. The operator returns who answered what and when (``decision``, ``by``, ``at``...) as XCom.

The taps reach Airflow as webhooks: the receiver (the Airflow 3 API server's ``/whatsapp`` plugin, or
``whatsapp-webhooks``) must be set up as the README's "Conversations" section says. Reply buttons are
free-form, so WhatsApp delivers them within 24 hours of the approver's last message; the operator
reports a 131047 failure instead of waiting for an answer that cannot come.

Approvers come from the Airflow Variable ``whatsapp_approvers`` (comma-separated numbers), else from
``params.approvers``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow_provider_whatsapp.operators.approval import WhatsAppApprovalOperator

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task

RUN_DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"

with DAG(
    dag_id="example_whatsapp_approval",
    description="Load every night, ask on WhatsApp whether to publish, publish or skip",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"approvers": "+1 415 555 0100, +1 415 555 0101"},
    default_args={"retries": 0},
    tags=["example", "whatsapp"],
) as dag:

    @task
    def load() -> dict[str, int]:
        return {"rows": 1284, "rejected": 3}

    loaded = load()

    ask = WhatsAppApprovalOperator(
        task_id="ask_to_publish",
        to="{{ var.value.get('whatsapp_approvers', params.approvers) }}",
        body=(
            f"Nightly load {RUN_DAY}: "
            "{{ ti.xcom_pull(task_ids='load')['rows'] }} rows loaded, "
            "{{ ti.xcom_pull(task_ids='load')['rejected'] }} rejected. Publish the numbers?"
        ),
        approve_label="Publish",
        reject_label="Hold",
        timeout=timedelta(hours=6),
        timeout_default="reject",
        deferrable=True,  # hours of waiting belong in the triggerer, not in a worker slot
    )

    @task
    def publish(answer: dict[str, str]) -> str:
        return f"published, approved by {answer['by']} at {answer['at']}"

    loaded >> ask
    publish(ask.output)
