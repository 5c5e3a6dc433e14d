"""Integration DAG: both callbacks' templates fail to render; the alerts must still go out."""

from __future__ import annotations

import datetime

from airflow_provider_whatsapp.notifications.whatsapp import WhatsAppNotifier

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.decorators import task

ON_CALL = "+1 (415) 555-0100"

with DAG(
    dag_id="whatsapp_alert_render_fails",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    default_args={
        "retries": 0,
        # `no_such_value` is undefined: rendering raises (Airflow renders with StrictUndefined).
        "on_failure_callback": WhatsAppNotifier(to=ON_CALL, body="{{ no_such_value.upper() }} failed"),
    },
) as dag:

    @task(on_success_callback=WhatsAppNotifier(to=ON_CALL, body="done for {{ no_such_value }}"))
    def works() -> int:
        return 1

    @task
    def explode(_: int) -> None:
        raise RuntimeError("disk full on /data")

    explode(works())
