"""Apache Airflow provider for WhatsApp Business through the Maton API gateway."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_INTEGRATION = "WhatsApp Business"


def get_provider_info() -> dict[str, Any]:
    """Provider metadata read by Airflow's ``ProvidersManager`` (entry point ``apache_airflow_provider``)."""
    from airflow_provider_whatsapp.hooks._connection_form import CONNECTION_UI

    package = "airflow_provider_whatsapp"
    return {
        "package-name": "airflow-provider-whatsapp",
        "name": "WhatsApp Business (Maton)",
        "description": "Send WhatsApp Business messages, media and templates from Airflow, through the "
        "Maton API gateway or Meta's Graph API.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://developers.facebook.com/docs/whatsapp/cloud-api",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": _INTEGRATION, "python-modules": [f"{package}.hooks.maton"]}],
        "operators": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": [
                    f"{package}.operators.messages",
                    f"{package}.operators.media",
                    f"{package}.operators.templates",
                    f"{package}.operators.bulk",
                    f"{package}.operators.approval",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": [f"{package}.sensors.{name}" for name in ("template", "status", "reply")],
            }
        ],
        "triggers": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": [
                    f"{package}.triggers.{name}" for name in ("template", "status", "reply", "inbound")
                ],
            }
        ],
        "plugins": [
            {"name": "whatsapp_webhooks", "plugin-class": f"{package}.webhooks.plugin.WhatsAppWebhooksPlugin"}
        ],
        "notifications": [f"{package}.notifications.whatsapp.WhatsAppNotifier"],
        "connection-types": [
            {
                "connection-type": "maton",
                "hook-class-name": f"{package}.hooks.maton.MatonHook",
                "hook-name": "WhatsApp Business (Maton)",
                **CONNECTION_UI,
            }
        ],
    }
