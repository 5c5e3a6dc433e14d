"""What keeps a running sandbox safe from the web pages its developer visits, and from hostile bytes.

A page on another site can make the browser send requests to ``127.0.0.1``: directly (a cross-site
"simple" POST, which needs no CORS preflight) or through a DNS name it re-points at loopback (DNS
rebinding, which makes the sandbox same-origin to that page). So every request must name a loopback
host, carry no foreign ``Origin``, and every change must carry a content type a simple request cannot.
What the sandbox serves from uploads is inert: an attachment, never sniffed, under a CSP without script.

Each check raises :class:`GraphError` with the HTTP status to answer; the server answers and closes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow_provider_whatsapp.sandbox.validation import GraphError
from airflow_provider_whatsapp.spec.limits import LOOPBACK_HOSTS, MB, MEDIA_MAX_BYTES

if TYPE_CHECKING:
    from email.message import Message as HeaderMessage

# A Host header: a name (or bracketed IPv6 address) and an optional port. Only LOOPBACK_HOSTS are served:
# a DNS-rebinding attacker controls none of them.
_HOST = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9.\-]+)(?::([0-9]{1,5}))?$", re.IGNORECASE)

# Room for the multipart framing (boundaries, part headers, the other form fields) around an upload.
MULTIPART_SLACK = MB
# The largest upload WhatsApp takes, with its framing.
MAX_BODY = MEDIA_MAX_BYTES + MULTIPART_SLACK

# Connections served at once (each is a thread); one more waits CONNECTION_SLOT_WAIT seconds for a
# slot, then gets a 503. As many as the listen queue holds, so a burst of clients that fits the queue
# (a DAG's mapped tasks) is served, not refused.
MAX_CONNECTIONS = 128
CONNECTION_SLOT_WAIT = 2.0

# Seconds a connection may sit idle (between requests, or in the middle of one) before it is closed.
CONNECTION_TIMEOUT = 20.0

# Methods a cross-site page can send without a preflight, and the content types it can send them with.
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_JSON = "application/json"

# Served uploads: never rendered as a page of the sandbox's origin, whatever their bytes or MIME type.
INERT_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"
# The inbox page: its own script and style only, no inline script, images from anywhere a message links.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data: http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

_MIME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+\-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+\-]{0,126}$")


def host_name(value: str | None) -> str | None:
    """The lower-case host name of a ``Host`` (or ``Origin`` authority) value, port removed."""
    match = _HOST.match(value or "")
    if match is None or (match.group(2) is not None and int(match.group(2)) > 65535):
        return None
    return match.group(1).lower()


def check_request(method: str, target: str, headers: HeaderMessage) -> None:
    """Refuse, before the body is read, a request a web page could have made or that is framed ambiguously.

    :param method: the request method.
    :param target: the request target as sent (``/path?query``).
    :param headers: the request headers.
    """
    hosts = headers.get_all("Host") or []
    if len(hosts) != 1:
        raise GraphError(100, "The request needs exactly one Host header.", status=400)
    if host_name(hosts[0]) not in LOOPBACK_HOSTS:
        raise GraphError(
            100,
            f"Host {hosts[0][:100]!r} is not this sandbox: use one of {', '.join(sorted(LOOPBACK_HOSTS))}.",
            status=421,
        )
    if not target.startswith("/"):
        raise GraphError(100, "The request target must be a path starting with '/'.", status=400)
    origin = headers.get("Origin")
    if origin is not None and host_name(origin.partition("://")[2]) not in LOOPBACK_HOSTS:
        raise GraphError(100, f"Requests from origin {origin[:100]!r} are not accepted.", status=403)
    # Outside /_sandbox/, an Authorization header (which a simple request cannot carry) also proves the
    # caller is not such a page: media uploads are multipart, as Graph wants them.
    proven = headers.get("Authorization") and not target.startswith("/_sandbox/")
    if method not in _SAFE_METHODS and _media_type(headers.get("Content-Type")) != _JSON and not proven:
        raise GraphError(
            100, f"Content-Type must be {_JSON} for {method} {target.split('?')[0][:100]}.", status=415
        )
    _check_framing(headers)


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _check_framing(headers: HeaderMessage) -> None:
    encodings = headers.get_all("Transfer-Encoding") or []
    lengths = headers.get_all("Content-Length") or []
    if encodings and lengths:
        raise GraphError(100, "Give Content-Length or Transfer-Encoding, not both.", status=400)
    if encodings and [e.strip().lower() for e in ",".join(encodings).split(",")] != ["chunked"]:
        raise GraphError(100, "The only Transfer-Encoding accepted is chunked.", status=400)
    if len(lengths) > 1:
        raise GraphError(100, "The request has more than one Content-Length header.", status=400)


def content_length(headers: HeaderMessage) -> int:
    """The declared body length (0 without one); refuses a malformed or oversized value."""
    raw = (headers.get("Content-Length") or "0").strip()
    if not raw.isdigit() or not raw.isascii():
        raise GraphError(100, f"Content-Length {raw[:40]!r} is not a whole number of bytes.", status=400)
    return check_size(int(raw))


def check_size(size: int) -> int:
    """``size``, if the sandbox accepts a body that large."""
    if size > MAX_BODY:
        raise GraphError(100, f"The request body is over {MAX_BODY} bytes.", status=413)
    return size


def safe_mime(value: str) -> str:
    """``value`` if it is a plain ``type/subtype`` MIME type, else ``application/octet-stream``."""
    return value if _MIME.match(value) else "application/octet-stream"


def is_mime(value: str) -> bool:
    return _MIME.match(value) is not None


def attachment_headers(filename: str) -> dict[str, str]:
    """Headers for serving an upload: a download, never sniffed, never run as a page of this origin."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)[:100] or "file"
    encoded = quote(filename[:200], errors="replace")
    return {
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}",
        "Content-Security-Policy": INERT_CSP,
    }
