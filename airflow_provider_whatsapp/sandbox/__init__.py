"""A local, stateful emulator of the Maton gateway and the WhatsApp Graph endpoints the provider uses.

Start it with ``whatsapp-sandbox --port 8765``, from Python (:class:`WhatsAppSandbox`) or in tests with
the ``whatsapp_sandbox`` pytest fixture; open its URL in a browser to see each conversation. It imports
nothing from Airflow.
"""

from __future__ import annotations

from airflow_provider_whatsapp.sandbox.controller import WhatsAppSandbox
from airflow_provider_whatsapp.sandbox.state import (
    DEFAULT_API_KEY,
    DEFAULT_CONNECTION_ID,
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_WABA_ID,
    Fault,
    Message,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_CONNECTION_ID",
    "DEFAULT_PHONE_NUMBER_ID",
    "DEFAULT_WABA_ID",
    "Fault",
    "Message",
    "WhatsAppSandbox",
]
