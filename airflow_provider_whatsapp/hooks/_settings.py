"""Where requests go: the settings read from a Maton connection, each value checked as it is read.

URLs are built in :mod:`airflow_provider_whatsapp.hooks._paths`, never here.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_whatsapp.errors import WhatsAppConfigurationError
from airflow_provider_whatsapp.hooks._defaults import (
    DEFAULT_API_VERSION,
    DEFAULT_APP,
    DEFAULT_HOST,
    GRAPH_DIRECT_APP,
)
from airflow_provider_whatsapp.hooks._paths import (
    check_api_version,
    check_app,
    check_base_url,
    check_connection_id,
    check_id,
)
from airflow_provider_whatsapp.spec.limits import (
    LOOPBACK_HOSTS,
    RATE_LIMIT_MAX_PER_SECOND,
    RATE_LIMIT_MIN_PER_SECOND,
    default_rate,
)

DEFAULT_CONN_ID = "maton_default"
API_KEY_ENV = "MATON_API_KEY"
BASE_URL_ENV = "MATON_BASE_URL"

# Maton's older documentation splits the gateway and the control plane over two hosts.
_LEGACY_GATEWAY_HOST = "gateway.maton.ai"
_LEGACY_CTRL_HOST = "ctrl.maton.ai"
# What a bearer token may hold in an HTTP header: printable ASCII, no space.
# Longer text is no rate anyone meant (and float() of megabytes of digits is slow).
_NUMBER_TEXT_MAX = 32
_API_KEY = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class MatonSettings:
    """Everything a request needs, resolved from one connection. The key never shows in its repr."""

    base_url: str
    ctrl_url: str
    app: str
    api_version: str
    connection_id: str | None
    phone_number_id: str | None
    waba_id: str | None
    rate_limit: float
    api_key: str = field(repr=False)

    @property
    def via_maton(self) -> bool:
        """False when talking to Meta's Graph API directly (``app`` set to empty)."""
        return bool(self.app)

    def headers(self, *, connection_id: str | None = None) -> dict[str, str]:
        """Authorization and, through Maton, the connection to use."""
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        chosen = connection_id or self.connection_id
        if chosen and self.via_maton:
            # The header's value is checked like the id in a path: it must not carry anything else.
            headers["Maton-Connection"] = check_connection_id(chosen)
        return headers

    def require_phone_number_id(self, override: Any = None) -> Any:
        """``override`` if given (even empty: it then fails its check where the path is built, rather
        than quietly falling back), else the connection's phone number id.

        Returned as given: the path module checks it (``str()`` first would crash on a huge int)."""
        value = self.phone_number_id if override is None else override
        if value is None:
            raise WhatsAppConfigurationError(
                "No phone_number_id: pass phone_number_id= or set it in the Maton connection's extra "
                '({"phone_number_id": "..."}).'
            )
        return value

    def require_waba_id(self, override: Any = None) -> Any:
        """``override`` if given (even empty), else the connection's WABA id; returned as given, like
        :meth:`require_phone_number_id`."""
        value = self.waba_id if override is None else override
        if value is None:
            raise WhatsAppConfigurationError(
                'No waba_id: pass waba_id= or set it in the Maton connection\'s extra ({"waba_id": "..."}).'
            )
        return value


def normalise_base_url(host: str | None, *, port: int | None = None, schema: str | None = None) -> str:
    """A connection's host as a base URL: scheme added (http for loopback, else https), port kept."""
    host = (host or "").strip()
    if not host:
        return DEFAULT_HOST
    if "://" not in host:
        bare = host.split("/", 1)[0].rsplit(":", 1)[0] if host.count(":") <= 1 else host
        scheme = schema if schema in ("http", "https") else ("http" if bare in LOOPBACK_HOSTS else "https")
        host = f"{scheme}://{host}"
    parsed = urlsplit(host)
    if port and parsed.port is None:
        host = f"{parsed.scheme}://{parsed.netloc}:{port}{parsed.path}"
    return host.rstrip("/")


def default_ctrl_url(base_url: str) -> str:
    """The control plane lives on the gateway host, except on Maton's older split hosts."""
    parsed = urlsplit(base_url)
    if parsed.hostname == _LEGACY_GATEWAY_HOST:
        return f"{parsed.scheme}://{_LEGACY_CTRL_HOST}"
    return base_url


def check_api_key(api_key: str, *, source: str) -> str:
    """The key as it goes into the ``Authorization`` header: printable ASCII, no space.

    Anything else would be refused while the header is written, by code whose errors quote the header
    (the key with it); so it is refused here, saying what is wrong and never showing the key.
    """
    if _API_KEY.fullmatch(api_key):
        return api_key
    if not api_key.isascii():
        problem = "a non-ASCII character"
    elif any(c.isspace() for c in api_key):
        problem = "a space or line break inside it"
    else:
        problem = "a control character"
    raise WhatsAppConfigurationError(
        f"{source} is not a usable API key: it has {problem}. A key is printable ASCII without spaces; "
        "paste it again."
    )


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float (a number, or its text as a form saves it); ``None`` if it is not one
    (a bool, nan, infinity, an int beyond float)."""
    if isinstance(value, str):
        try:
            value = float(value.strip()) if len(value) <= _NUMBER_TEXT_MAX else None
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def check_rate_limit(value: Any, *, where: str) -> float:
    """``rate_limit`` (requests per second): 0 to turn the limiter off, else within the named bounds."""
    rate = finite_number(value)
    if rate is None or not (rate == 0 or RATE_LIMIT_MIN_PER_SECOND <= rate <= RATE_LIMIT_MAX_PER_SECOND):
        raise WhatsAppConfigurationError(
            f"rate_limit in {where} must be 0 (no limit) or a number of requests per second from "
            f"{RATE_LIMIT_MIN_PER_SECOND} to {RATE_LIMIT_MAX_PER_SECOND:g}."
        )
    return rate


def _extra_value(extra: dict[str, Any], key: str) -> Any:
    # The Airflow 2 UI stores custom fields as extra__<conn_type>__<field>.
    value = extra.get(key)
    if value in (None, ""):
        value = extra.get(f"extra__maton__{key}")
    return value if value not in (None, "") else None


def settings_from_connection(
    *,
    api_key: str | None,
    host: str | None,
    port: int | None,
    schema: str | None,
    extra: dict[str, Any],
    conn_id: str,
    key_source: str | None = None,
) -> MatonSettings:
    """Build settings from a connection's fields.

    :param key_source: where ``api_key`` was read from, for errors (default: the connection's password).
    """
    key_source = key_source or f"the password of the connection {conn_id!r}"
    api_key = (api_key or "").strip()  # a pasted key often ends with a newline or a space
    if not api_key:
        raise WhatsAppConfigurationError(
            f"The connection {conn_id!r} has no password: put the Maton API key there."
        )
    check_api_key(api_key, source=key_source)
    where = f"host of the connection {conn_id!r}"
    base_url = check_base_url(normalise_base_url(host, port=port, schema=schema), where=where)
    # An empty "app" in the JSON extra means Graph direct, so it is read as is; the Airflow 2 form's
    # field (extra__maton__app) is blank when left alone, which means the default, as for every field.
    app = extra["app"] if extra.get("app") is not None else _extra_value(extra, "app")
    if isinstance(app, str) and app.strip().lower() == GRAPH_DIRECT_APP:
        app = ""  # a form cannot save an empty field: "none" says Graph direct
    app = check_app(DEFAULT_APP if app is None else app, origin=conn_id)
    ctrl = _extra_value(extra, "ctrl_url")
    if ctrl:
        ctrl = check_base_url(normalise_base_url(ctrl), where=f"ctrl_url in the extra of {conn_id!r}")
    rate = _extra_value(extra, "rate_limit")
    return MatonSettings(
        base_url=base_url,
        ctrl_url=ctrl or default_ctrl_url(base_url),
        app=app,
        api_version=check_api_version(
            str(_extra_value(extra, "api_version") or DEFAULT_API_VERSION), origin=conn_id
        ),
        connection_id=_checked(extra, "connection_id", conn_id),
        phone_number_id=_checked(extra, "phone_number_id", conn_id),
        waba_id=_checked(extra, "waba_id", conn_id),
        rate_limit=check_rate_limit(
            default_rate(via_maton=bool(app)) if rate is None else rate, where=f"the extra of {conn_id!r}"
        ),
        api_key=api_key,
    )


def _checked(extra: dict[str, Any], key: str, conn_id: str) -> str | None:
    """An id from the connection's extra, checked against its shape (a configuration error naming it)."""
    value = _extra_value(extra, key)
    return None if value is None else check_id(key, value, origin=conn_id)


def settings_from_environment(conn_id: str) -> MatonSettings:
    """Fallback for ``maton_default`` when no such connection exists: ``MATON_API_KEY``."""
    api_key = os.environ.get(API_KEY_ENV)
    if not api_key:
        raise WhatsAppConfigurationError(
            f"No Airflow connection {conn_id!r} and {API_KEY_ENV} is not set: create a connection of type "
            f"'maton' with the Maton API key as password, or export {API_KEY_ENV}."
        )
    host = os.environ.get(BASE_URL_ENV)
    if host:
        check_base_url(host, where=BASE_URL_ENV)
    return settings_from_connection(
        api_key=api_key,
        host=host,
        port=None,
        schema=None,
        extra={},
        conn_id=conn_id,
        key_source=API_KEY_ENV,
    )
