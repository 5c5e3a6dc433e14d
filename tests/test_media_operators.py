"""Media: upload and delete operators, and streamed, checked downloads to a path or object storage."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from airflow_provider_whatsapp._compat import ObjectStoragePath
from airflow_provider_whatsapp.errors import WhatsAppError, WhatsAppValidationError
from airflow_provider_whatsapp.hooks.maton import MatonHook
from airflow_provider_whatsapp.operators.media import WhatsAppDeleteMediaOperator, WhatsAppUploadMediaOperator
from tests.conftest import PHONE_NUMBER_ID, TEST_KEY
from tests.loopback import LoopbackServer, Recorded, Reply

MEDIA = rf"^/whatsapp-business/v21\.0/{PHONE_NUMBER_ID}/media$"
CONTENT = b"%PDF-1.4\n" + os.urandom(3 * 1024 * 1024 + 17)  # larger than one download chunk


def test_upload_operator_returns_the_media_id(maton_conn: LoopbackServer, tmp_path: Path) -> None:
    photo = tmp_path / "chart.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    maton_conn.route("POST", MEDIA, Reply(json={"id": "1037543291543636"}))

    media_id = WhatsAppUploadMediaOperator(task_id="upload", file_path=str(photo)).execute({})

    assert media_id == "1037543291543636"
    (request,) = maton_conn.requests
    assert request.header("Authorization") == f"Bearer {TEST_KEY}"
    assert b'name="file"; filename="chart.png"' in request.body
    assert b"Content-Type: image/png" in request.body
    assert b'name="type"\r\n\r\nimage/png' in request.body
    assert b'name="messaging_product"\r\n\r\nwhatsapp' in request.body


def test_upload_from_object_storage_and_explicit_mime_type(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    (tmp_path / "export.bin").write_bytes(b"col1,col2\n1,2\n")
    maton_conn.route("POST", MEDIA, Reply(json={"id": "m-os"}))

    media_id = WhatsAppUploadMediaOperator(
        task_id="upload", file_path=f"file://{tmp_path}/export.bin", mime_type="text/csv"
    ).execute({})

    assert media_id == "m-os"
    body = maton_conn.requests[0].body
    assert b'filename="export.bin"' in body
    assert b'name="type"\r\n\r\ntext/csv' in body
    assert b"col1,col2\n1,2\n" in body


def test_upload_is_checked_against_limits_before_a_byte_is_sent(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    document = tmp_path / "huge.pdf"
    with open(document, "wb") as handle:  # sparse: 100 MB + 1 byte, instantly
        handle.truncate(100 * 1024 * 1024 + 1)
    sticker = tmp_path / "sticker.gif"
    sticker.write_bytes(b"GIF89a")
    maton_conn.route("POST", MEDIA, Reply(json={"id": "never"}))

    with pytest.raises(WhatsAppValidationError, match="document file is 104857601 bytes"):
        WhatsAppUploadMediaOperator(task_id="u1", file_path=str(document)).execute({})
    with pytest.raises(WhatsAppValidationError, match="sticker MIME type 'image/gif' is not accepted"):
        MatonHook().upload_media(sticker, media_type="sticker")
    with pytest.raises(WhatsAppValidationError, match="does not exist"):
        MatonHook().upload_media(tmp_path / "missing.pdf")

    assert maton_conn.requests == []


def test_a_failed_upload_attempt_is_resent_from_the_first_byte(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    report = tmp_path / "report.pdf"
    report.write_bytes(CONTENT)
    maton_conn.route("POST", MEDIA, Reply(503, {}), Reply(json={"id": "m-2"}))

    assert MatonHook().upload_media(report) == "m-2"

    first, second = maton_conn.requests
    assert CONTENT in first.body
    assert CONTENT in second.body


async def test_async_upload(maton_conn: LoopbackServer, tmp_path: Path) -> None:
    report = tmp_path / "report.pdf"
    report.write_bytes(CONTENT)
    maton_conn.route("POST", MEDIA, Reply(json={"id": "m-async"}))
    hook = MatonHook()

    assert await hook.aupload_media(report) == "m-async"
    await hook.aclose()
    assert CONTENT in maton_conn.requests[0].body


def serve_media(server: LoopbackServer, url: str, *, sha256: str | None = None) -> None:
    info = {
        "messaging_product": "whatsapp",
        "url": url,
        "mime_type": "application/pdf",
        "sha256": sha256 or hashlib.sha256(CONTENT).hexdigest(),
        "file_size": len(CONTENT),
        "id": "4490001",
    }
    server.route("GET", r"/v21\.0/4490001$", Reply(json=info))
    server.route("GET", r"^/media-bytes/m-1$", Reply(body=CONTENT))


def test_download_to_a_local_path_streams_with_the_key_and_checks_sha256(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    serve_media(maton_conn, f"{maton_conn.url}/media-bytes/m-1")
    target = tmp_path / "out.pdf"

    assert MatonHook().download_media("4490001", target) == str(target)

    assert target.read_bytes() == CONTENT
    _info, download = maton_conn.requests
    assert download.path == "/media-bytes/m-1"
    assert download.header("Authorization") == f"Bearer {TEST_KEY}"  # the gateway's own host


def test_download_to_object_storage(maton_conn: LoopbackServer, tmp_path: Path) -> None:
    serve_media(maton_conn, f"{maton_conn.url}/media-bytes/m-1")
    target = ObjectStoragePath(f"file://{tmp_path}/stored.pdf")

    MatonHook().download_media("4490001", target)

    assert (tmp_path / "stored.pdf").read_bytes() == CONTENT


def test_download_with_a_wrong_sha256_fails_and_leaves_no_file(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    serve_media(maton_conn, f"{maton_conn.url}/media-bytes/m-1", sha256="0" * 64)
    target = tmp_path / "out.pdf"

    with pytest.raises(WhatsAppError, match="expected 0000"):
        MatonHook().download_media("4490001", target)

    assert not target.exists()


def test_download_from_another_host_never_gets_the_key(maton_conn: LoopbackServer, tmp_path: Path) -> None:
    with LoopbackServer() as other:
        other.route("GET", r"^/media-bytes/m-1$", Reply(body=CONTENT))
        port = other.url.rsplit(":", 1)[1]
        serve_media(maton_conn, f"http://localhost:{port}/media-bytes/m-1")

        MatonHook().download_media("4490001", tmp_path / "out.pdf")

        (download,) = other.requests
        assert download.header("Authorization") is None


def test_delete_operator(maton_conn: LoopbackServer) -> None:
    def deleted(request: Recorded) -> Reply:
        return Reply(json={"success": request.query == {"phone_number_id": [PHONE_NUMBER_ID]}})

    maton_conn.route("DELETE", r"/v21\.0/4490001$", deleted)

    assert WhatsAppDeleteMediaOperator(task_id="delete", media_id="4490001").execute({}) is True
    assert maton_conn.requests[0].method == "DELETE"


# --- file arguments that are not files: the provider's error naming the argument, before any request


@pytest.mark.parametrize("as_storage_path", [False, True], ids=["local", "object_storage"])
def test_a_directory_as_file_path_is_refused_before_any_request(
    maton_conn: LoopbackServer, tmp_path: Path, as_storage_path: bool
) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    source = ObjectStoragePath(f"file://{folder}") if as_storage_path else str(folder)
    maton_conn.route("POST", MEDIA, Reply(json={"id": "never"}))

    with pytest.raises(WhatsAppValidationError, match=r"^file_path: .*reports.* is not a file"):
        WhatsAppUploadMediaOperator(task_id="upload", file_path=source).execute({})

    assert maton_conn.requests == []


def test_a_missing_object_storage_file_is_refused_before_any_request(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    maton_conn.route("POST", MEDIA, Reply(json={"id": "never"}))

    with pytest.raises(WhatsAppValidationError, match=r"^file_path: .*missing\.pdf.* does not exist"):
        MatonHook().upload_media(f"file://{tmp_path}/missing.pdf")

    assert maton_conn.requests == []


@pytest.mark.parametrize("as_storage_path", [False, True], ids=["local", "object_storage"])
def test_a_directory_as_download_destination_is_refused_before_any_request(
    maton_conn: LoopbackServer, tmp_path: Path, as_storage_path: bool
) -> None:
    serve_media(maton_conn, f"{maton_conn.url}/media-bytes/m-1")
    destination = ObjectStoragePath(f"file://{tmp_path}") if as_storage_path else tmp_path

    with pytest.raises(WhatsAppValidationError, match=r"^destination: .* is a directory"):
        MatonHook().download_media("4490001", destination)

    assert maton_conn.requests == []
    assert tmp_path.is_dir()


def test_a_destination_that_cannot_be_opened_names_the_argument(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    serve_media(maton_conn, f"{maton_conn.url}/media-bytes/m-1")
    destination = tmp_path / "no-such-folder" / "out.pdf"

    with pytest.raises(WhatsAppValidationError, match=r"^destination: .*out\.pdf.* cannot be used"):
        MatonHook().download_media("4490001", destination)

    assert not destination.exists()
