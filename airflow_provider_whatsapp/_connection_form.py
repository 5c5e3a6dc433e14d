"""The Maton connection form, as data: Airflow 3 reads it from provider info, Airflow 2 from the hook."""

from __future__ import annotations

from typing import Any

#: The connection form, in the declarative shape Airflow 3 reads from provider info.
CONNECTION_UI: dict[str, Any] = {
    "conn-fields": {
        "connection_id": {
            "label": "Maton connection id",
            "schema": {"type": ["string", "null"]},
            "description": "Sent as Maton-Connection; empty = the oldest active WhatsApp connection.",
        },
        "phone_number_id": {"label": "Phone number id", "schema": {"type": ["string", "null"]}},
        "waba_id": {"label": "WhatsApp Business Account id", "schema": {"type": ["string", "null"]}},
        "api_version": {
            "label": "Graph API version",
            "schema": {"type": ["string", "null"], "default": "v21.0"},
        },
    },
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "port", "login"],
        "relabeling": {"host": "Gateway URL", "password": "Maton API key"},
        "placeholders": {
            "host": "https://api.maton.ai",
            "password": "Maton API key (or a Meta access token for Graph direct)",
            "extra": '{"phone_number_id": "...", "waba_id": "...", "app": "whatsapp-business"}',
        },
    },
}
