"""One TLS trust context per process, shared by the HTTP clients of every hook.

Building an ``httpx.Client`` loads the CA bundle into a fresh ``ssl.SSLContext``: about 25 ms of CPU,
many times the cost of the send a short task makes with it. The trust store does not depend on the
Airflow connection (its host, key and ids travel with each request), so one context serves every hook
in the process. It is built with httpx's own rules (``SSL_CERT_FILE``, then ``SSL_CERT_DIR``, then
certifi's bundle) and built again when any of those changes: another variable, or the file or
directory replaced or modified. Nothing else is kept between hooks; each hook still makes its own
client, so a changed connection (host, timeout) is read afresh.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

_lock = threading.Lock()
_cached: tuple[tuple[object, ...], ssl.SSLContext] | None = None


def _trust_source() -> tuple[str, str]:
    """Where httpx would read trusted certificates from: ``(kind, path)``."""
    cert_file = os.environ.get("SSL_CERT_FILE")
    if cert_file:
        return "file", cert_file
    cert_dir = os.environ.get("SSL_CERT_DIR")
    if cert_dir:
        return "dir", cert_dir
    import certifi

    return "file", certifi.where()


def _version(path: str) -> tuple[int, int, int] | None:
    """What changes when the file or directory at ``path`` is replaced or modified."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns, status.st_size


def trust_context() -> ssl.SSLContext:
    """The process's TLS context for verifying servers; rebuilt when its certificate source changed."""
    global _cached
    source = _trust_source()
    key = (*source, _version(source[1]))
    with _lock:
        if _cached is not None and _cached[0] == key:
            return _cached[1]
    import httpx

    context = httpx.create_ssl_context()
    with _lock:
        _cached = (key, context)
    return context
