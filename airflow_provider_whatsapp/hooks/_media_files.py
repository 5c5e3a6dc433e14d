"""Files on either side of a media transfer: local paths and object storage, opened for streaming.

Nothing here reads a file whole: uploads hand httpx an open binary handle (which it sends in chunks)
and downloads write chunk by chunk, so a 100 MB document costs a few buffers of memory, not 100 MB.
"""

from __future__ import annotations

import contextlib
import functools
import mimetypes
import os
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

import httpx

from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.limits import check_media, media_type_for_mime

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_whatsapp.hooks._settings import MatonSettings


# Where Graph's media URLs point (e.g. lookaside.fbsbx.com); matched on a domain boundary.
META_MEDIA_DOMAINS = ("facebook.com", "fbsbx.com", "whatsapp.net")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def may_send_key(s: MatonSettings, url: str) -> bool:
    """Whether a download URL may receive the bearer key.

    Only the gateway's exact origin (scheme, host and port) gets it; talking to Graph directly, so do
    Meta's media hosts, over https on the standard port, matched on a domain boundary
    (``lookaside.fbsbx.com`` is Meta's, ``evilfacebook.com`` and ``facebook.com.evil.io`` are not).
    """
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return False
    if not target.host:
        return False
    if _origin(target) == _origin(httpx.URL(s.base_url)):
        return True
    if s.via_maton or target.scheme != "https" or target.port not in (None, 443):
        return False
    return any(target.host == domain or target.host.endswith(f".{domain}") for domain in META_MEDIA_DOMAINS)


def is_remote(location: Any) -> bool:
    """An ``ObjectStoragePath`` or a URL (``s3://``, ``file://``...) rather than a plain local path."""
    return not isinstance(location, (str, os.PathLike)) or "://" in str(location)


def _storage_path(location: Any) -> Any:
    from airflow_provider_whatsapp._compat import ObjectStoragePath

    return ObjectStoragePath(location) if isinstance(location, str) else location


@contextmanager
def open_media(
    source: Any, mime_type: str | None, media_type: str | None
) -> Iterator[tuple[IO[bytes], str, str]]:
    """Open a media file for streaming, after checking it against WhatsApp's limits.

    Yields the open handle, the file name and the MIME type (guessed from the name when not given).
    """
    if is_remote(source):
        path = _storage_path(source)
        name, size = path.name, path.stat().st_size
        opener = path.open
    else:
        local = os.fspath(source)
        if not os.path.isfile(local):
            raise WhatsAppValidationError(f"file_path: {local!r} does not exist or is not a file.")
        name, size = os.path.basename(local), os.path.getsize(local)
        opener = functools.partial(open, local)
    mime = mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    kind = media_type or media_type_for_mime(mime)
    with opener("rb") as handle:
        animated = kind == "sticker" and _is_animated_webp(handle)
        try:
            check_media(kind, mime, size, animated=animated)
        except ValueError as error:
            raise WhatsAppValidationError(f"file_path: {name}: {error}") from None
        handle.seek(0)
        yield handle, name, mime


def _is_animated_webp(handle: IO[bytes]) -> bool:
    """An extended WebP (``VP8X`` chunk) with its animation flag set; WhatsApp allows these 500 KB."""
    head = handle.read(21)
    return len(head) == 21 and head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X" and bool(head[20] & 0x02)


@contextmanager
def open_destination(destination: Any) -> Iterator[IO[bytes]]:
    """Open a local path or object-storage location for writing; removed again if writing fails."""
    remote = is_remote(destination)
    path = _storage_path(destination) if remote else os.fspath(destination)
    try:
        with path.open("wb") if remote else open(path, "wb") as handle:
            yield handle
    except BaseException:
        remove(destination)
        raise


def remove(location: Any) -> None:
    """Delete a (partly) written file, ignoring one that is not there."""
    with contextlib.suppress(OSError, FileNotFoundError):
        if is_remote(location):
            _storage_path(location).unlink()
        else:
            os.remove(os.fspath(location))
