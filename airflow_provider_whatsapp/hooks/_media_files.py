"""Files on either side of a media transfer: local paths and object storage, opened for streaming.

Nothing here reads a file whole: uploads hand httpx an open binary handle (which it sends in chunks)
and downloads write chunk by chunk, so a 100 MB document costs a few buffers of memory, not 100 MB.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

import httpx

from airflow_provider_whatsapp.errors import WhatsAppError, WhatsAppValidationError
from airflow_provider_whatsapp.spec.limits import (
    WEBP_HEADER_BYTES,
    check_media,
    is_animated_webp,
    media_type_for_mime,
)

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
    A missing file, a directory or a file that cannot be read is a ``WhatsAppError`` naming ``file_path``.
    """
    try:
        if is_remote(source):
            path = _storage_path(source)
            if not path.is_file():
                raise _not_a_file("file_path", source)
            name, size = path.name, path.stat().st_size
            handle = path.open("rb")
        else:
            local = os.fspath(source)
            if not os.path.isfile(local):
                raise _not_a_file("file_path", local)
            name, size = os.path.basename(local), os.path.getsize(local)
            handle = open(local, "rb")  # noqa: SIM115 - closed by the with block below
    except OSError as error:
        raise _file_error("file_path", source, error) from None
    mime = mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    kind = media_type or media_type_for_mime(mime)
    with handle:
        animated = kind == "sticker" and is_animated_webp(handle.read(WEBP_HEADER_BYTES))
        try:
            check_media(kind, mime, size, animated=animated)
        except ValueError as error:
            raise WhatsAppValidationError(f"file_path: {name}: {error}") from None
        handle.seek(0)
        yield handle, name, mime


def check_destination(destination: Any) -> None:
    """Refuse a download destination that is a directory, before anything is requested."""
    try:
        is_dir = (
            _storage_path(destination).is_dir()
            if is_remote(destination)
            else os.path.isdir(os.fspath(destination))
        )
    except OSError as error:
        raise _file_error("destination", destination, error) from None
    if is_dir:
        raise WhatsAppValidationError(
            f"destination: {str(destination)!r} is a directory; give the path of the file to write."
        )


def _not_a_file(field: str, location: Any) -> WhatsAppValidationError:
    return WhatsAppValidationError(f"{field}: {str(location)!r} does not exist or is not a file.")


def _file_error(field: str, location: Any, error: OSError) -> WhatsAppError:
    """An ``OSError`` as the provider's error naming the argument; only the errno text, never a repr."""
    reason = error.strerror or type(error).__name__
    message = f"{field}: {str(location)!r} cannot be used: {reason}."
    # What retrying cannot fix fails the task; other I/O errors (a storage outage) may pass.
    if isinstance(error, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return WhatsAppValidationError(message)
    return WhatsAppError(message)


@contextmanager
def open_destination(destination: Any) -> Iterator[IO[bytes]]:
    """Open a local path or object-storage location for writing; removed again if writing fails.

    A destination that cannot be opened (a directory, a missing parent) is a ``WhatsAppError`` naming
    ``destination``, and nothing is removed: only a file this call created is.
    """
    remote = is_remote(destination)
    path = _storage_path(destination) if remote else os.fspath(destination)
    try:
        handle = path.open("wb") if remote else open(path, "wb")  # noqa: SIM115 - closed below
    except OSError as error:
        raise _file_error("destination", destination, error) from None
    try:
        with handle:
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
