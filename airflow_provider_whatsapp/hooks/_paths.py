"""Request paths: the only code that writes a Graph or Maton control-plane URL path.

Two layers, so a value cannot steer a request even when one of them is missed:

* every id is checked against the shape the service gives it (Graph ids are digits, Maton connection
  ids letters, digits, ``-`` and ``_``) before any request, with an error naming the field;
* every path is built from its segments, each one percent-encoded (``/``, ``?``, ``#`` and ``%``
  included) and a segment of dots encoded too (``.`` and ``..`` survive ``quote()`` and servers
  resolve them), so no segment can add another one, a query or a fragment.

Importing this module is cheap (no httpx, no pydantic): operators use its checks at DAG parse time.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

from airflow_provider_whatsapp.errors import WhatsAppConfigurationError, WhatsAppValidationError
from airflow_provider_whatsapp.spec.limits import LOOPBACK_HOSTS

# Graph object ids (phone numbers, WABAs, media, templates) are decimal numbers; 32 digits leaves room
# beyond the 15-20 digits they have today.
GRAPH_ID_MAX_DIGITS = 32
# Maton connection ids are UUIDs; the shape allows any similar opaque token, never a separator.
MATON_CONNECTION_ID_MAX = 64
# A Graph edge or object in a generic ``request()`` path: a name such as ``message_templates`` or an id.
GRAPH_SEGMENT_MAX = 128
APP_MAX = 64

_GRAPH_ID = re.compile(rf"[0-9]{{1,{GRAPH_ID_MAX_DIGITS}}}")
_MATON_CONNECTION_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{MATON_CONNECTION_ID_MAX}}}")
_GRAPH_SEGMENT = re.compile(rf"[A-Za-z0-9_.-]{{1,{GRAPH_SEGMENT_MAX}}}")
_API_VERSION = re.compile(r"v[0-9]{1,3}\.[0-9]{1,3}")
_APP = re.compile(rf"[a-z0-9-]{{1,{APP_MAX}}}")

GRAPH_ID_RULE = f"Graph ids are 1 to {GRAPH_ID_MAX_DIGITS} ASCII digits"
MATON_CONNECTION_ID_RULE = (
    f"Maton connection ids are 1 to {MATON_CONNECTION_ID_MAX} ASCII letters, digits, '-' or '_' (a UUID)"
)

# The id arguments users can give, and the shape each must have.
GRAPH_ID_FIELDS = ("phone_number_id", "waba_id", "media_id", "template_id")
CONNECTION_ID_FIELD = "connection_id"

# Graph edges the provider calls, and Maton's control-plane collection.
MESSAGES = "messages"
MEDIA = "media"
MESSAGE_TEMPLATES = "message_templates"
PHONE_NUMBERS = "phone_numbers"
BUSINESS_PROFILE = "whatsapp_business_profile"
SUBSCRIBED_APPS = "subscribed_apps"
CONNECTIONS = "connections"

# A webhook callback URL: Meta calls it over https; plain http only reaches a receiver on this machine
# (the sandbox). The length bound keeps a templated megabyte out of a request, far above any real URL.
CALLBACK_URL_MAX = 2048
CALLBACK_URL_RULE = (
    f"an https URL (http only on this machine: {', '.join(sorted(LOOPBACK_HOSTS))}) with a host, no "
    f"user:password@ and no #fragment, at most {CALLBACK_URL_MAX} characters"
)
# The verify token travels in the verification request's query: printable, no spaces, bounded.
VERIFY_TOKEN_MAX = 256
VERIFY_TOKEN_RULE = f"1 to {VERIFY_TOKEN_MAX} printable ASCII characters without spaces"
_VERIFY_TOKEN = re.compile(rf"[!-~]{{1,{VERIFY_TOKEN_MAX}}}")

_SHOWN_MAX = 40
# Python refuses to turn an int of thousands of digits into text; no id comes near this bound.
_INT_BOUND = 10**_SHOWN_MAX


def _is_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    # A hostile value may be megabytes long: show its start and its length, not all of it.
    if _is_number(value) and not -_INT_BOUND < value < _INT_BOUND:
        return f"an integer of more than {_SHOWN_MAX} digits"
    text = repr(value)
    return text if len(text) <= _SHOWN_MAX else f"{text[:_SHOWN_MAX]}... ({len(str(value))} characters)"


def _as_text(field: str, value: Any, rule: str, *, origin: str | None) -> str:
    # Rendered templates may give an int; a bool is not an id even though it is an int.
    if _is_number(value) and -_INT_BOUND < value < _INT_BOUND:
        return str(value)
    if isinstance(value, str):
        return value
    raise _id_error(field, value, rule, origin=origin)


def _id_error(field: str, value: Any, rule: str, *, origin: str | None) -> Exception:
    if origin is not None:
        return WhatsAppConfigurationError(
            f"{field} in the extra of the connection {origin!r}: {_shown(value)} is not valid; {rule}. "
            "Fix the connection."
        )
    return WhatsAppValidationError(f"{field}: {_shown(value)} is not valid; {rule}.")


def check_graph_id(field: str, value: Any, *, origin: str | None = None) -> str:
    """``value`` as a Graph object id (digits only), else an error naming ``field``.

    :param field: the argument's name, e.g. ``media_id``.
    :param origin: the Airflow connection the value was read from (a configuration error then).
    """
    text = _as_text(field, value, GRAPH_ID_RULE, origin=origin)
    if not _GRAPH_ID.fullmatch(text):
        raise _id_error(field, value, GRAPH_ID_RULE, origin=origin)
    return text


def check_connection_id(value: Any, *, origin: str | None = None) -> str:
    """``value`` as a Maton connection id, else an error naming ``connection_id``."""
    text = _as_text(CONNECTION_ID_FIELD, value, MATON_CONNECTION_ID_RULE, origin=origin)
    if not _MATON_CONNECTION_ID.fullmatch(text):
        raise _id_error(CONNECTION_ID_FIELD, value, MATON_CONNECTION_ID_RULE, origin=origin)
    return text


def check_id(field: str, value: Any, *, origin: str | None = None) -> str:
    """Check an id argument by its name: ``connection_id`` as a Maton id, the others as Graph ids."""
    if field == CONNECTION_ID_FIELD:
        return check_connection_id(value, origin=origin)
    if field not in GRAPH_ID_FIELDS:
        raise ValueError(f"{field!r} is not an id argument")
    return check_graph_id(field, value, origin=origin)


def check_api_version(value: Any, *, origin: str) -> str:
    """The connection's ``api_version``: ``v<major>.<minor>``, e.g. ``v21.0``."""
    if not isinstance(value, str) or not _API_VERSION.fullmatch(value):
        raise WhatsAppConfigurationError(
            f"api_version in the extra of the connection {origin!r}: {_shown(value)} is not a Graph API "
            "version; use v<major>.<minor>, e.g. v21.0."
        )
    return value


def check_app(value: Any, *, origin: str) -> str:
    """The connection's ``app``: Maton's app path segment, or empty for Meta's Graph API directly."""
    if not isinstance(value, str) or (value and not _APP.fullmatch(value)):
        raise WhatsAppConfigurationError(
            f"app in the extra of the connection {origin!r}: {_shown(value)} is not a Maton app name; use "
            f"1 to {APP_MAX} lowercase letters, digits or '-' (e.g. whatsapp-business), or an empty "
            "string for Meta's Graph API directly."
        )
    return value


def check_base_url(value: str, *, where: str) -> str:
    """A base URL that paths are appended to: no query or fragment for a path to land in.

    :param where: where the value was read from, e.g. ``host of the connection 'maton_default'``.
    """
    if "?" in value or "#" in value:
        raise WhatsAppConfigurationError(
            f"{where}: {_shown(value)} has a query or fragment; give the base URL only, "
            "e.g. https://api.maton.ai."
        )
    return value


# --- building -------------------------------------------------------------------------------------


def encode_segment(segment: str) -> str:
    """One path segment percent-encoded so that it stays one segment, whatever it holds."""
    if not isinstance(segment, str) or not segment:
        raise WhatsAppValidationError(f"path segment {_shown(segment)}: an empty segment is not allowed.")
    try:
        encoded = quote(segment, safe="")
    except UnicodeEncodeError:
        raise WhatsAppValidationError(
            f"path segment {_shown(segment)}: not encodable as UTF-8 (a lone surrogate)."
        ) from None
    # ``quote`` keeps dots; a segment made only of dots would be resolved as "this/parent directory".
    return encoded.replace(".", "%2E") if not encoded.strip(".") else encoded


def join_url(base_url: str, segments: tuple[str, ...]) -> str:
    """``base_url`` followed by ``segments``, each encoded; the base's own path is kept as it is."""
    path = "/".join(encode_segment(s) for s in segments)
    return f"{base_url.rstrip('/')}/{path}"


def graph_url(base_url: str, app: str, api_version: str, segments: tuple[str, ...]) -> str:
    """``{base}/{app}/{api_version}/{segments}``; ``app`` is left out for Meta's Graph API directly."""
    prefix = (app, api_version) if app else (api_version,)
    return join_url(base_url, (*prefix, *segments))


def ctrl_url(ctrl_base: str, segments: tuple[str, ...]) -> str:
    """A URL on Maton's control plane: ``{ctrl_url}/connections[/{connection_id}]``."""
    return join_url(ctrl_base, (CONNECTIONS, *segments))


# --- the paths the hook calls ----------------------------------------------------------------------


def phone_number(phone_number_id: Any) -> tuple[str, ...]:
    return (check_graph_id("phone_number_id", phone_number_id),)


def messages(phone_number_id: Any) -> tuple[str, ...]:
    return (*phone_number(phone_number_id), MESSAGES)


def media_upload(phone_number_id: Any) -> tuple[str, ...]:
    return (*phone_number(phone_number_id), MEDIA)


def business_profile(phone_number_id: Any) -> tuple[str, ...]:
    return (*phone_number(phone_number_id), BUSINESS_PROFILE)


def media(media_id: Any) -> tuple[str, ...]:
    return (check_graph_id("media_id", media_id),)


def message_templates(waba_id: Any) -> tuple[str, ...]:
    return (check_graph_id("waba_id", waba_id), MESSAGE_TEMPLATES)


def phone_numbers(waba_id: Any) -> tuple[str, ...]:
    return (check_graph_id("waba_id", waba_id), PHONE_NUMBERS)


def subscribed_apps(waba_id: Any) -> tuple[str, ...]:
    return (check_graph_id("waba_id", waba_id), SUBSCRIBED_APPS)


def check_callback_url(value: Any) -> str:
    """``value`` as a webhook callback URL WhatsApp can call, else an error naming ``callback_url``."""
    if not isinstance(value, str) or len(value) > CALLBACK_URL_MAX:
        raise WhatsAppValidationError(
            f"callback_url: {_shown(value)} is not valid; it must be {CALLBACK_URL_RULE}."
        )
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 -- a port that is not a number raises here
    except ValueError:
        host, parts = "", urlsplit("")
    loopback = host in LOOPBACK_HOSTS or f"[{host}]" in LOOPBACK_HOSTS
    scheme_ok = parts.scheme == "https" or (parts.scheme == "http" and loopback)
    clean = value.isascii() and value.isprintable() and " " not in value
    if not (host and scheme_ok and clean) or parts.username is not None or "#" in value:
        raise WhatsAppValidationError(
            f"callback_url: {_shown(value)} is not valid; it must be {CALLBACK_URL_RULE}."
        )
    return value


def check_verify_token(value: Any) -> str:
    """``value`` as a webhook verify token, else an error naming ``verify_token`` (never showing it)."""
    if not isinstance(value, str) or not _VERIFY_TOKEN.fullmatch(value):
        length = f"{len(value)} characters" if isinstance(value, str) else type(value).__name__
        raise WhatsAppValidationError(
            f"verify_token: the value given ({length}) is not valid; use {VERIFY_TOKEN_RULE}."
        )
    return value


def maton_connection(connection_id: Any) -> tuple[str, ...]:
    return (check_connection_id(connection_id),)


def split_graph_path(graph_path: Any) -> tuple[str, ...]:
    """A caller's Graph path such as ``"123/phone_numbers"`` as checked segments.

    Each segment is an id or an edge name: ASCII letters, digits, ``_``, ``-`` and ``.``, not made only
    of dots; no empty segment, no ``?``, ``#``, ``%`` or whitespace. Give query values as ``params``.
    """
    rule = (
        "each segment is 1 to "
        f"{GRAPH_SEGMENT_MAX} ASCII letters, digits, '_', '-' or '.' (not only dots), with no empty "
        "segment; give query values as params="
    )
    if not isinstance(graph_path, str):
        raise WhatsAppValidationError(f"graph_path: {_shown(graph_path)} is not a string; {rule}.")
    segments = tuple(graph_path.removeprefix("/").split("/"))
    for segment in segments:
        if not _GRAPH_SEGMENT.fullmatch(segment) or not segment.strip("."):
            raise WhatsAppValidationError(
                f"graph_path: {_shown(graph_path)} has the segment {_shown(segment)}; {rule}."
            )
    return segments
