"""Upload media to WhatsApp (for sending by id) and delete it again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.operators._base import WhatsAppBaseOperator, check_ids_if_concrete

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from airflow_provider_whatsapp._compat import ObjectStoragePath


class WhatsAppUploadMediaOperator(WhatsAppBaseOperator):
    """Upload a file as WhatsApp media; returns the media id (XCom) to send it by ``media_id``.

    The file is streamed from disk or object storage, never read whole into memory, and checked
    against WhatsApp's type and size limits before anything is sent. Uploaded media expires after
    30 days.

    :param file_path: a local path, an ``ObjectStoragePath`` or a URL such as ``s3://bucket/report.pdf``
        (templated).
    :param mime_type: e.g. ``application/pdf``; guessed from the file name when not given (templated).
    :param media_type: ``image``, ``video``, ``audio``, ``document`` or ``sticker``; guessed from the
        MIME type when not given.
    """

    template_fields: Sequence[str] = (*WhatsAppBaseOperator.template_fields, "file_path", "mime_type")

    def __init__(
        self,
        *,
        file_path: str | os.PathLike[str] | ObjectStoragePath,
        mime_type: str | None = None,
        media_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.file_path = file_path
        self.mime_type = mime_type
        self.media_type = media_type

    def execute(self, context: Any) -> str:
        media_id = self.hook.upload_media(
            self.file_path,
            mime_type=self.mime_type or None,
            media_type=self.media_type or None,
            phone_number_id=self.phone_number_id or None,
        )
        self.log.info("Uploaded %s as media %s", self.file_path, media_id)
        return media_id


class WhatsAppDeleteMediaOperator(WhatsAppBaseOperator):
    """Delete uploaded WhatsApp media.

    :param media_id: the id :class:`WhatsAppUploadMediaOperator` returned (templated); digits only,
        checked when the DAG is parsed if already concrete, and always before the request.
    """

    template_fields: Sequence[str] = (*WhatsAppBaseOperator.template_fields, "media_id")

    def __init__(self, *, media_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.media_id = media_id
        check_ids_if_concrete(media_id=media_id)

    def execute(self, context: Any) -> bool:
        deleted = self.hook.delete_media(self.media_id, phone_number_id=self.phone_number_id or None)
        self.log.info("Media %s deleted: %s", self.media_id, deleted)
        return deleted
