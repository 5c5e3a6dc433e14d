"""The receiver as an Airflow plugin: the Airflow 3 API server serves it under ``/whatsapp``.

Airflow loads every plugin in each of its processes (scheduler, workers, DAG processor), so this module
stays cheap and never fails: on Airflow 2.11, or without FastAPI, it registers no app (run the
``whatsapp-webhooks`` console script there instead).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_whatsapp._compat import AirflowPlugin, api_server_apps


def _fastapi_apps() -> list[dict[str, Any]]:
    try:
        from airflow_provider_whatsapp.webhooks.app import URL_PREFIX, create_app
    except ImportError:  # FastAPI missing: nothing to serve
        return []
    return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "WhatsApp webhooks"}]


class WhatsAppWebhooksPlugin(AirflowPlugin):
    """Serves the WhatsApp webhook receiver at ``/whatsapp/webhook`` on the Airflow 3 API server."""

    name = "whatsapp_webhooks"
    fastapi_apps = api_server_apps(_fastapi_apps)
