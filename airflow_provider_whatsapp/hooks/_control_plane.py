"""Maton's control plane: the WhatsApp connections behind a Maton API key, and the Airflow UI's test.

Requests go through the hook's ``_call`` (the same retries, rate limit and error handling as every Graph
call) but to the control-plane URL and without the ``Maton-Connection`` header: they manage connections
rather than use one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.errors import WhatsAppConfigurationError, WhatsAppError
from airflow_provider_whatsapp.hooks import _paths
from airflow_provider_whatsapp.hooks._answers import answer_part
from airflow_provider_whatsapp.hooks._settings import DEFAULT_APP
from airflow_provider_whatsapp.hooks._transport import IDEMPOTENT_METHODS, ApiRequest

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_whatsapp.hooks._settings import MatonSettings
    from airflow_provider_whatsapp.hooks.maton import MatonHook

    Call = Callable[[ApiRequest], Any]


def control_request(
    s: MatonSettings, method: str, segments: tuple[str, ...] = (), **kwargs: Any
) -> ApiRequest:
    """A request to Maton's control plane; refused for Graph direct, which has none."""
    if not s.via_maton:
        raise WhatsAppConfigurationError(
            "Maton's control plane is not available when talking to Graph directly."
        )
    headers = s.headers()
    headers.pop("Maton-Connection", None)
    return ApiRequest(
        method=method,
        url=_paths.ctrl_url(s.ctrl_url, segments),
        headers=headers,
        idempotent=method in IDEMPOTENT_METHODS,
        **kwargs,
    )


def list_connections(
    call: Call, s: MatonSettings, *, app: str | None, status: str | None
) -> list[dict[str, Any]]:
    """Maton connections for ``app`` (default the settings' app, else ``whatsapp-business``)."""
    params = {"app": app or s.app or DEFAULT_APP}
    if status:
        params["status"] = status
    answer = call(control_request(s, "GET", params=params))
    return answer_part(answer, "connections", list, "the list of Maton connections", default=[], items=dict)


def get_connection(call: Call, s: MatonSettings, connection_id: str) -> dict[str, Any]:
    """One Maton connection: id, status, app, creation time."""
    answer = call(control_request(s, "GET", _paths.maton_connection(connection_id)))
    return dict(answer_part(answer, "connection", dict, "the Maton connection", default=answer))


def create_connection(call: Call, s: MatonSettings, *, app: str | None) -> dict[str, Any]:
    """A new Maton connection, whose ``url`` grants WhatsApp access when opened in a browser."""
    answer = call(control_request(s, "POST", body={"json": {"app": app or s.app or DEFAULT_APP}}))
    return dict(answer_part(answer, "connection", dict, "the new Maton connection", default=answer))


def delete_connection(call: Call, s: MatonSettings, connection_id: str) -> None:
    """Delete a Maton connection."""
    call(control_request(s, "DELETE", _paths.maton_connection(connection_id)))


def test_connection(hook: MatonHook) -> tuple[bool, str]:
    """``(works, message)`` for the Airflow UI: for Maton, which WhatsApp connections are active."""
    try:
        s = hook.settings
        if not s.via_maton:
            shown = hook.get_phone_number().get("display_phone_number", s.phone_number_id)
            return True, f"Graph API token works; phone number {shown}."
        active = hook.list_maton_connections(status="ACTIVE")
    except WhatsAppError as error:
        return False, str(error)
    if not active:
        return False, (
            "The Maton API key works, but there is no ACTIVE whatsapp-business connection: create one "
            "with MatonHook.create_maton_connection() or at maton.ai and complete the OAuth flow."
        )
    ids = ", ".join(str(c.get("connection_id")) for c in active)
    chosen = s.connection_id or "the oldest active one"
    return (
        True,
        f"The Maton API key works; {len(active)} active WhatsApp connection(s): {ids}. Using {chosen}.",
    )
