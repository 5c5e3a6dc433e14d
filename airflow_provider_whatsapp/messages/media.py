"""Image, video, audio, document and sticker messages: sent by link, by media id, or from a file."""

from __future__ import annotations

import os
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator, model_validator

from airflow_provider_whatsapp.messages._common import (
    OutgoingMessage,
    WhatsAppModel,
    check_http_url,
    drop_none,
)
from airflow_provider_whatsapp.spec import limits

Caption = Annotated[str, Field(max_length=limits.MEDIA_CAPTION_MAX)]


def file_name(file_path: Any) -> str:
    """The last part of a local path or an object-storage URL."""
    name = getattr(file_path, "name", None)
    if isinstance(name, str) and name:
        return name
    return os.path.basename(str(file_path).rstrip("/"))


class MediaRef(WhatsAppModel):
    """Media given by exactly one of ``link`` (public http(s) URL) or ``media_id`` (an upload's id)."""

    link: str | None = None
    media_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _wire_id(cls, data: Any) -> Any:
        # The Graph API calls it "id"; accept that spelling too.
        if isinstance(data, dict) and "id" in data and "media_id" not in data:
            data = {("media_id" if k == "id" else k): v for k, v in data.items()}
        return data

    @field_validator("link")
    @classmethod
    def _check_link(cls, value: str | None) -> str | None:
        return value if value is None else check_http_url(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> MediaRef:
        if (self.link is None) == (self.media_id is None):
            raise ValueError("give exactly one of link or media_id")
        return self

    def content(self) -> dict[str, Any]:
        return {"link": self.link} if self.link is not None else {"id": self.media_id}


class MediaMessage(OutgoingMessage):
    """Base of the media messages: exactly one of ``link``, ``media_id``, ``file_path``."""

    link: str | None = None
    media_id: str | None = None
    file_path: Any = None

    captioned: ClassVar[bool] = False

    @field_validator("link")
    @classmethod
    def _check_link(cls, value: str | None) -> str | None:
        return value if value is None else check_http_url(value)

    @field_validator("media_id")
    @classmethod
    def _check_media_id(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is empty; give the id returned by a media upload")
        return value

    @field_validator("file_path")
    @classmethod
    def _check_file_path(cls, value: Any) -> Any:
        if value is not None and not str(value).strip():
            raise ValueError("is empty; give a local path or an object-storage URL")
        return value

    @model_validator(mode="after")
    def _exactly_one_source(self) -> MediaMessage:
        given = [name for name in ("link", "media_id", "file_path") if getattr(self, name) is not None]
        if len(given) != 1:
            shown = ", ".join(given) if given else "none"
            raise ValueError(f"{self.kind} needs exactly one of link, media_id or file_path (given: {shown})")
        return self

    def upload_target(self) -> tuple[str, Any] | None:
        return (self.message_type, self.file_path) if self.file_path is not None else None

    def with_media_id(self, media_id: str) -> MediaMessage:
        return self.model_copy(update={"media_id": media_id, "file_path": None})

    def content(self) -> dict[str, Any]:
        if self.file_path is not None:
            raise ValueError(f"{self.message_type} file_path must be uploaded before the payload is built")
        source = {"link": self.link} if self.link is not None else {"id": self.media_id}
        return drop_none({**source, **self._extra_content()})

    def _extra_content(self) -> dict[str, Any]:
        return {}


class _CaptionedMediaMessage(MediaMessage):
    caption: Caption | None = None

    def _extra_content(self) -> dict[str, Any]:
        return {"caption": self.caption}


class ImageMessage(_CaptionedMediaMessage):
    """An image (JPEG or PNG, at most 5 MB) with an optional caption."""

    message_type: ClassVar[str] = "image"
    kind: ClassVar[str] = "image message"


class VideoMessage(_CaptionedMediaMessage):
    """A video (MP4 or 3GPP, at most 16 MB) with an optional caption."""

    message_type: ClassVar[str] = "video"
    kind: ClassVar[str] = "video message"


class DocumentMessage(_CaptionedMediaMessage):
    """A document (any type, at most 100 MB); ``filename`` is what the recipient sees."""

    message_type: ClassVar[str] = "document"
    kind: ClassVar[str] = "document message"

    filename: str | None = None

    def with_media_id(self, media_id: str) -> DocumentMessage:
        # A document sent from a file keeps that file's name unless another was given.
        name = self.filename or file_name(self.file_path)
        return self.model_copy(update={"media_id": media_id, "file_path": None, "filename": name})

    def _extra_content(self) -> dict[str, Any]:
        return {"caption": self.caption, "filename": self.filename}


class AudioMessage(MediaMessage):
    """An audio file (AAC, AMR, MP3, MP4 audio or OGG/Opus, at most 16 MB); no caption."""

    message_type: ClassVar[str] = "audio"
    kind: ClassVar[str] = "audio message"


class StickerMessage(MediaMessage):
    """A WebP sticker (at most 100 KB, animated 500 KB); no caption."""

    message_type: ClassVar[str] = "sticker"
    kind: ClassVar[str] = "sticker message"
