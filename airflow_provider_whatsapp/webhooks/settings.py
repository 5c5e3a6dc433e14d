"""The webhook settings, read from the Maton connection's extras (each secret masked as it is read).

Extras, all optional:

- ``events_path``: where events are stored (a directory or a URL such as ``s3://bucket/events``; default
  ``$AIRFLOW_HOME/whatsapp-events``), ``events_conn_id``: the object-storage connection for a URL,
  ``events_retention_days``: how long events are kept (default
  :data:`~airflow_provider_whatsapp.spec.limits.EVENTS_RETENTION_DAYS_DEFAULT`);
- ``webhook_verify_token``: what Meta's verification request must carry;
- ``webhook_app_secret``: the Meta app secret that signs deliveries (Graph direct);
- ``webhook_path_token``: a long random token in the callback path (through Maton, whose app signs with
  a secret the user never sees);
- ``webhook_phone_number_ids``: phone number ids besides ``phone_number_id`` whose events are stored.

The connection is read again on every call (no cache), so a changed connection takes effect at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from airflow_provider_whatsapp.spec.limits import (
    EVENTS_RETENTION_DAYS_DEFAULT,
    EVENTS_RETENTION_DAYS_MAX,
    WEBHOOK_CALLBACK_URL_MAX_CHARS,
    WEBHOOK_PATH_TOKEN_MIN_CHARS,
)

DEFAULT_CONN_ID = "maton_default"
#: The environment variable naming the connection the receiver reads.
CONN_ID_ENV = "WHATSAPP_WEBHOOKS_CONN_ID"
EVENTS_FOLDER = "whatsapp-events"
# A path token is one URL path segment; the whole callback URL stays within its bound.
_URL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_TOKEN_MAX = WEBHOOK_CALLBACK_URL_MAX_CHARS // 4
SECRET_EXTRAS = ("webhook_verify_token", "webhook_app_secret", "webhook_path_token")


@dataclass(frozen=True)
class WebhookSettings:
    """What the receiver needs from the connection. Secrets never show in the repr.

    :param conn_id: the connection read.
    :param phone_number_ids: the business phone numbers whose events are stored.
    :param store_description: the event store, as ``EventStore.describe`` writes it.
    """

    conn_id: str
    phone_number_ids: frozenset[str]
    store_description: dict[str, Any]
    verify_token: str | None = field(default=None, repr=False)
    app_secret: str | None = field(default=None, repr=False)
    path_token: str | None = field(default=None, repr=False)

    @property
    def authenticated(self) -> bool:
        """Whether deliveries can be authenticated at all (an app secret or a path token is set)."""
        return bool(self.app_secret or self.path_token)


def receiver_conn_id() -> str:
    """The connection the receiver reads: ``$WHATSAPP_WEBHOOKS_CONN_ID``, else ``maton_default``."""
    return os.environ.get(CONN_ID_ENV) or DEFAULT_CONN_ID


def _extras(conn_id: str) -> dict[str, Any]:
    from airflow_provider_whatsapp._compat import AirflowNotFoundException, connection_extra, get_connection

    try:
        return connection_extra(get_connection(conn_id))
    except AirflowNotFoundException:
        return {}


def _value(extra: dict[str, Any], key: str) -> Any:
    from airflow_provider_whatsapp.hooks._settings import _extra_value

    return _extra_value(extra, key)


def _secret(extra: dict[str, Any], key: str) -> str | None:
    value = _value(extra, key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} in the connection's extra must be a string")
    from airflow_provider_whatsapp._compat import mask_secret

    mask_secret(value)
    return value


def _store_location(extra: dict[str, Any]) -> tuple[str, str | None, int]:
    path = _value(extra, "events_path")
    if path is None:
        from airflow_provider_whatsapp._compat import airflow_home

        path = os.path.join(airflow_home(), EVENTS_FOLDER)
    if not isinstance(path, str):
        raise ValueError("events_path in the connection's extra must be a path or a URL")
    days = _value(extra, "events_retention_days")
    days = EVENTS_RETENTION_DAYS_DEFAULT if days is None else days
    try:
        retention_days = float(days)
    except (TypeError, ValueError, OverflowError):
        retention_days = -1.0
    if not 0 < retention_days <= EVENTS_RETENTION_DAYS_MAX:
        raise ValueError(
            "events_retention_days in the connection's extra must be a number of days, more than 0 and at "
            f"most {EVENTS_RETENTION_DAYS_MAX}"
        )
    conn = _value(extra, "events_conn_id")
    return (
        path,
        (str(conn) if conn is not None else None),
        int(timedelta(days=retention_days).total_seconds()),
    )


def store_location(conn_id: str = DEFAULT_CONN_ID) -> tuple[str, str | None, int]:
    """The event store a connection names: its root, object-storage connection id and retention (s)."""
    return _store_location(_extras(conn_id))


def webhook_settings(conn_id: str | None = None) -> WebhookSettings:
    """Everything the receiver needs, read now from the connection (masked as it is read)."""
    conn_id = conn_id or receiver_conn_id()
    extra = _extras(conn_id)
    root, store_conn, retention = _store_location(extra)
    numbers: set[str] = set()
    own = _value(extra, "phone_number_id")
    if own is not None:
        numbers.add(str(own))
    others = _value(extra, "webhook_phone_number_ids")
    if isinstance(others, str):
        others = [part.strip() for part in others.split(",")]
    if others is not None:
        if not isinstance(others, list):
            raise ValueError("webhook_phone_number_ids in the connection's extra must be a list of ids")
        numbers.update(str(number) for number in others if str(number))
    return WebhookSettings(
        conn_id=conn_id,
        phone_number_ids=frozenset(numbers),
        store_description={"root": root, "conn_id": store_conn, "retention_seconds": retention},
        verify_token=_secret(extra, "webhook_verify_token"),
        app_secret=_secret(extra, "webhook_app_secret"),
        path_token=_path_token(extra),
    )


def _path_token(extra: dict[str, Any]) -> str | None:
    token = _secret(extra, "webhook_path_token")
    if token is not None and (
        len(token) < WEBHOOK_PATH_TOKEN_MIN_CHARS or not set(token) <= _URL_SAFE or len(token) > _TOKEN_MAX
    ):
        raise ValueError(
            f"webhook_path_token in the connection's extra must be {WEBHOOK_PATH_TOKEN_MIN_CHARS} to "
            f"{_TOKEN_MAX} URL-safe characters (letters, digits, - and _), e.g. the output of "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return token
