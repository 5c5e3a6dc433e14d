"""Operators that send WhatsApp messages: one generic operator and a thin subclass per message type.

Each operator holds its arguments and delegates: it builds the message model (which validates every
limit), uploads a ``file_path`` first when there is one, and hands the payload to the hook. Arguments
that are already concrete (no Jinja, no ``XComArg``) are validated when the DAG is parsed; everything
is validated again after rendering, before the first request. The new message's id (``wamid...``) is
returned, so it lands in XCom.

Importing this module stays cheap: the models and the hook are imported when first needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_whatsapp.operators._base import WhatsAppBaseOperator, is_concrete
from airflow_provider_whatsapp.redact import mask_phone_number

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_whatsapp.messages import OutgoingMessage


def _with_article(noun: str) -> str:
    # "a text message", "an interactive message": log lines read as sentences.
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


class WhatsAppSendMessageOperator(WhatsAppBaseOperator):
    """Send one WhatsApp message given as a Graph payload dict or a message model.

    :param to: the recipient's phone number with country code (``+1 415 555 0100`` is fine).
    :param message: e.g. ``{"type": "text", "text": {"body": "hi"}}`` or a model from
        :mod:`airflow_provider_whatsapp.messages`; ``type`` must be one WhatsApp knows.
    :param reply_to: the wamid of a received message to reply to (``context.message_id``).
    :return: the new message's id (``wamid...``).
    """

    template_fields: Sequence[str] = (*WhatsAppBaseOperator.template_fields, "to", "reply_to", "message")
    message_fields: ClassVar[tuple[str, ...]] = ("message",)

    def __init__(
        self,
        *,
        to: str,
        message: dict[str, Any] | Any,
        reply_to: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.to = to
        self.message = message
        self.reply_to = reply_to
        if type(self).build_message is WhatsAppSendMessageOperator.build_message:
            self.validate_if_concrete()

    def build_message(self) -> OutgoingMessage:
        """The validated message model; raises ``WhatsAppValidationError`` naming the field."""
        from airflow_provider_whatsapp.messages import parse_message

        return parse_message(self.message)

    def validate_if_concrete(self) -> None:
        """Validate at DAG parse time when the recipient and every message field are already final."""
        if is_concrete(self.to):
            from airflow_provider_whatsapp.messages import normalize_recipient

            normalize_recipient(self.to)
        if all(is_concrete(getattr(self, name)) for name in self.message_fields):
            self.build_message()

    def execute(self, context: Context) -> str:
        from airflow_provider_whatsapp.messages import normalize_recipient

        message = self.build_message()
        recipient = normalize_recipient(self.to)
        reply_to = str(self.reply_to) if self.reply_to else None
        target = message.upload_target()
        if target is not None:
            media_type, file_path = target
            media_id = self.hook.upload_media(file_path, media_type=media_type, mime_type=self._mime_type())
            self.log.info("Uploaded %s as %s media %s", file_path, media_type, media_id)
            message = message.with_media_id(media_id)
        response = self.hook.send_message(message.to_payload(recipient, reply_to=reply_to))
        wamid = self.hook.message_id(response)
        self.log.info(
            "Sent %s message to %s: %s",
            _with_article(message.message_type),
            mask_phone_number(recipient),
            wamid,
        )
        return wamid

    def _mime_type(self) -> str | None:
        return getattr(self, "mime_type", None) or None


class WhatsAppSendTextOperator(WhatsAppSendMessageOperator):
    """Send a text message (at most 4096 characters).

    :param to: the recipient's phone number.
    :param body: the text; WhatsApp formatting (``*bold*``, ``_italic_``) works.
    :param preview_url: show a preview of the first URL in the text.
    :param reply_to: the wamid of a received message to reply to.
    """

    template_fields: Sequence[str] = (*WhatsAppBaseOperator.template_fields, "to", "reply_to", "body")
    message_fields: ClassVar[tuple[str, ...]] = ("body", "preview_url")

    def __init__(
        self, *, to: str, body: str, preview_url: bool = False, reply_to: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(to=to, message=None, reply_to=reply_to, **kwargs)
        self.body = body
        self.preview_url = preview_url
        self.validate_if_concrete()

    def build_message(self) -> OutgoingMessage:
        from airflow_provider_whatsapp.messages import TextMessage

        return TextMessage.build(body=self.body, preview_url=self.preview_url)


class WhatsAppSendTemplateOperator(WhatsAppSendMessageOperator):
    """Send an approved message template: the only message allowed outside the 24-hour window.

    :param to: the recipient's phone number.
    :param template_name: the template's name.
    :param language_code: the language it was approved in (``en_US`` and ``en`` are different).
    :param components: parameter values as the Graph API takes them (header, body, buttons such as a
        URL suffix ``{"type": "button", "sub_type": "url", "index": 0, "parameters": [...]}``).
    :param body_parameters: the body's text parameters in placeholder order (shortcut).
    :param header: the header parameter (shortcut): ``{"type": "text", "text": ...}``, or
        ``{"type": "document", "file_path": ..., "filename": ...}`` (also ``link``/``media_id``; also
        ``image``, ``video``), or ``{"type": "location", "latitude": ..., "longitude": ...}``. A
        ``file_path`` (local or object storage) is uploaded first.
    :param mime_type: MIME type of the header file, when its name does not tell.
    :param reply_to: the wamid of a received message to reply to.
    """

    template_fields: Sequence[str] = (
        *WhatsAppBaseOperator.template_fields,
        "to",
        "reply_to",
        "template_name",
        "language_code",
        "components",
        "body_parameters",
        "header",
    )
    message_fields: ClassVar[tuple[str, ...]] = (
        "template_name",
        "language_code",
        "components",
        "body_parameters",
        "header",
    )

    def __init__(
        self,
        *,
        to: str,
        template_name: str,
        language_code: str = "en_US",
        components: list[dict[str, Any]] | None = None,
        body_parameters: list[Any] | None = None,
        header: dict[str, Any] | None = None,
        mime_type: str | None = None,
        reply_to: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(to=to, message=None, reply_to=reply_to, **kwargs)
        self.template_name = template_name
        self.language_code = language_code
        self.components = components
        self.body_parameters = body_parameters
        self.header = header
        self.mime_type = mime_type
        self.validate_if_concrete()

    def build_message(self) -> OutgoingMessage:
        from airflow_provider_whatsapp.messages import TemplateMessage

        return TemplateMessage.build(
            name=self.template_name,
            language_code=self.language_code,
            components=self.components,
            body_parameters=self.body_parameters,
            header=self.header,
        )


class _WhatsAppSendMediaOperator(WhatsAppSendMessageOperator):
    """Send media given by exactly one of ``link``, ``media_id`` or ``file_path``."""

    model_name: ClassVar[str]
    template_fields: Sequence[str] = (
        *WhatsAppBaseOperator.template_fields,
        "to",
        "reply_to",
        "link",
        "media_id",
        "file_path",
    )
    message_fields: ClassVar[tuple[str, ...]] = ("link", "media_id", "file_path")

    def __init__(
        self,
        *,
        to: str,
        link: str | None = None,
        media_id: str | None = None,
        file_path: Any = None,
        mime_type: str | None = None,
        reply_to: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(to=to, message=None, reply_to=reply_to, **kwargs)
        self.link = link
        self.media_id = media_id
        self.file_path = file_path
        self.mime_type = mime_type

    def model_fields(self) -> dict[str, Any]:
        return {"link": self.link, "media_id": self.media_id, "file_path": self.file_path}

    def build_message(self) -> OutgoingMessage:
        from airflow_provider_whatsapp import messages

        model = getattr(messages, self.model_name)
        return model.build(**{k: v for k, v in self.model_fields().items() if v is not None})


class _WhatsAppSendCaptionedMediaOperator(_WhatsAppSendMediaOperator):
    template_fields: Sequence[str] = (*_WhatsAppSendMediaOperator.template_fields, "caption")
    message_fields: ClassVar[tuple[str, ...]] = (*_WhatsAppSendMediaOperator.message_fields, "caption")

    def __init__(self, *, caption: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.caption = caption

    def model_fields(self) -> dict[str, Any]:
        return {**super().model_fields(), "caption": self.caption}


class WhatsAppSendImageOperator(_WhatsAppSendCaptionedMediaOperator):
    """Send an image (JPEG or PNG, at most 5 MB).

    :param to: the recipient's phone number.
    :param link: a public ``http(s)://`` URL of the image.
    :param media_id: the id of uploaded media.
    :param file_path: a local path or object-storage URL, uploaded first.
    :param caption: text under the image (at most 1024 characters).
    :param mime_type: the file's MIME type when its name does not tell.
    :param reply_to: the wamid of a received message to reply to.
    """

    model_name: ClassVar[str] = "ImageMessage"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validate_if_concrete()


class WhatsAppSendVideoOperator(_WhatsAppSendCaptionedMediaOperator):
    """Send a video (MP4 or 3GPP, at most 16 MB); arguments as :class:`WhatsAppSendImageOperator`."""

    model_name: ClassVar[str] = "VideoMessage"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validate_if_concrete()


class WhatsAppSendDocumentOperator(_WhatsAppSendCaptionedMediaOperator):
    """Send a document (any type, at most 100 MB).

    Arguments as :class:`WhatsAppSendImageOperator`, plus:

    :param filename: the name the recipient sees; defaults to the uploaded file's name.
    """

    model_name: ClassVar[str] = "DocumentMessage"
    template_fields: Sequence[str] = (*_WhatsAppSendCaptionedMediaOperator.template_fields, "filename")
    message_fields: ClassVar[tuple[str, ...]] = (
        *_WhatsAppSendCaptionedMediaOperator.message_fields,
        "filename",
    )

    def __init__(self, *, filename: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filename = filename
        self.validate_if_concrete()

    def model_fields(self) -> dict[str, Any]:
        return {**super().model_fields(), "filename": self.filename}


class WhatsAppSendAudioOperator(_WhatsAppSendMediaOperator):
    """Send audio (AAC, AMR, MP3, MP4 audio, OGG/Opus; at most 16 MB); no caption.

    :param to: the recipient's phone number.
    :param link: a public ``http(s)://`` URL. :param media_id: the id of uploaded media.
    :param file_path: a local path or object-storage URL, uploaded first.
    :param reply_to: the wamid of a received message to reply to.
    """

    model_name: ClassVar[str] = "AudioMessage"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validate_if_concrete()


class WhatsAppSendStickerOperator(_WhatsAppSendMediaOperator):
    """Send a WebP sticker (at most 100 KB); arguments as :class:`WhatsAppSendAudioOperator`."""

    model_name: ClassVar[str] = "StickerMessage"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validate_if_concrete()


class WhatsAppSendLocationOperator(WhatsAppSendMessageOperator):
    """Send a location pin.

    :param to: the recipient's phone number.
    :param latitude: -90..90. :param longitude: -180..180.
    :param name: the place's name. :param address: its address.
    :param reply_to: the wamid of a received message to reply to.
    """

    template_fields: Sequence[str] = (
        *WhatsAppBaseOperator.template_fields,
        "to",
        "reply_to",
        "latitude",
        "longitude",
        "name",
        "address",
    )
    message_fields: ClassVar[tuple[str, ...]] = ("latitude", "longitude", "name", "address")

    def __init__(
        self,
        *,
        to: str,
        latitude: float | str,
        longitude: float | str,
        name: str | None = None,
        address: str | None = None,
        reply_to: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(to=to, message=None, reply_to=reply_to, **kwargs)
        self.latitude = latitude
        self.longitude = longitude
        self.name = name
        self.address = address
        self.validate_if_concrete()

    def build_message(self) -> OutgoingMessage:
        from airflow_provider_whatsapp.messages import LocationMessage

        return LocationMessage.build(
            latitude=self.latitude, longitude=self.longitude, name=self.name, address=self.address
        )


class WhatsAppSendContactsOperator(WhatsAppSendMessageOperator):
    """Send one to five contact cards.

    :param to: the recipient's phone number.
    :param contacts: contact objects as the Graph API defines them, each with ``name.formatted_name``.
    :param reply_to: the wamid of a received message to reply to.
    """

    template_fields: Sequence[str] = (*WhatsAppBaseOperator.template_fields, "to", "reply_to", "contacts")
    message_fields: ClassVar[tuple[str, ...]] = ("contacts",)

    def __init__(
        self, *, to: str, contacts: list[dict[str, Any]], reply_to: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(to=to, message=None, reply_to=reply_to, **kwargs)
        self.contacts = contacts
        self.validate_if_concrete()

    def build_message(self) -> OutgoingMessage:
        from airflow_provider_whatsapp.messages import ContactsMessage

        return ContactsMessage.build(contacts=self.contacts)


class _WhatsAppSendInteractiveOperator(WhatsAppSendMessageOperator):
    """Shared by the interactive operators: a body text, an optional header and footer."""

    def __init__(
        self,
        *,
        to: str,
        body: str,
        header: str | dict[str, Any] | None = None,
        footer: str | None = None,
        reply_to: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(to=to, message=None, reply_to=reply_to, **kwargs)
        self.body = body
        self.header = header
        self.footer = footer

    def common_fields(self) -> dict[str, Any]:
        return {"body": self.body, "header": self.header or None, "footer": self.footer or None}


class WhatsAppSendButtonsOperator(_WhatsAppSendInteractiveOperator):
    """Send a text with up to three reply buttons.

    :param to: the recipient's phone number.
    :param body: the text above the buttons (at most 1024 characters).
    :param buttons: one to three ``{"id": ..., "title": ...}`` (title at most 20 characters, unique).
    :param header: a text (at most 60 characters) or ``{"type": "image", "link": ...}`` (also video,
        document; ``media_id`` instead of ``link``).
    :param footer: small text under the body (at most 60 characters).
    :param reply_to: the wamid of a received message to reply to.
    """

    template_fields: Sequence[str] = (
        *WhatsAppBaseOperator.template_fields,
        "to",
        "reply_to",
        "body",
        "buttons",
        "header",
        "footer",
    )
    message_fields: ClassVar[tuple[str, ...]] = ("body", "buttons", "header", "footer")

    def __init__(self, *, buttons: list[dict[str, str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.buttons = buttons
        self.validate_if_concrete()

    def build_message(self) -> OutgoingMessage:
        from airflow_provider_whatsapp.messages import ButtonsMessage

        return ButtonsMessage.build(**self.common_fields(), buttons=self.buttons)


class WhatsAppSendListOperator(_WhatsAppSendInteractiveOperator):
    """Send a text with a button that opens a list of up to ten options.

    :param to: the recipient's phone number.
    :param body: the text (at most 1024 characters).
    :param button: the label of the button that opens the list (at most 20 characters).
    :param sections: ``[{"title": ..., "rows": [{"id", "title", "description"}]}]``: one to ten
        sections, ten rows in all; titles are required when there is more than one section.
    :param header: a text header (at most 60 characters). :param footer: at most 60 characters.
    :param reply_to: the wamid of a received message to reply to.
    """

    template_fields: Sequence[str] = (
        *WhatsAppBaseOperator.template_fields,
        "to",
        "reply_to",
        "body",
        "button",
        "sections",
        "header",
        "footer",
    )
    message_fields: ClassVar[tuple[str, ...]] = ("body", "button", "sections", "header", "footer")

    def __init__(self, *, button: str, sections: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.button = button
        self.sections = sections
        self.validate_if_concrete()

    def build_message(self) -> OutgoingMessage:
        from airflow_provider_whatsapp.messages import ListMessage

        return ListMessage.build(**self.common_fields(), button=self.button, sections=self.sections)


class WhatsAppSendCtaUrlOperator(_WhatsAppSendInteractiveOperator):
    """Send a text with one button that opens a URL.

    :param to: the recipient's phone number.
    :param body: the text (at most 1024 characters).
    :param display_text: the button's label (at most 20 characters).
    :param url: the ``http(s)://`` URL the button opens.
    :param header: text or media header, as for :class:`WhatsAppSendButtonsOperator`.
    :param footer: at most 60 characters.
    :param reply_to: the wamid of a received message to reply to.
    """

    template_fields: Sequence[str] = (
        *WhatsAppBaseOperator.template_fields,
        "to",
        "reply_to",
        "body",
        "display_text",
        "url",
        "header",
        "footer",
    )
    message_fields: ClassVar[tuple[str, ...]] = ("body", "display_text", "url", "header", "footer")

    def __init__(self, *, display_text: str, url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.display_text = display_text
        self.url = url
        self.validate_if_concrete()

    def build_message(self) -> OutgoingMessage:
        from airflow_provider_whatsapp.messages import CtaUrlMessage

        return CtaUrlMessage.build(**self.common_fields(), display_text=self.display_text, url=self.url)


class WhatsAppSendReactionOperator(WhatsAppSendMessageOperator):
    """React to a message with an emoji (an empty ``emoji`` removes the reaction).

    :param to: the phone number of the chat the message is in.
    :param message_id: the wamid of the message to react to.
    :param emoji: one emoji, e.g. ``"👍"``.
    """

    template_fields: Sequence[str] = (
        *WhatsAppBaseOperator.template_fields,
        "to",
        "reply_to",
        "message_id",
        "emoji",
    )
    message_fields: ClassVar[tuple[str, ...]] = ("message_id", "emoji")

    def __init__(
        self, *, to: str, message_id: str, emoji: str, reply_to: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(to=to, message=None, reply_to=reply_to, **kwargs)
        self.message_id = message_id
        self.emoji = emoji
        self.validate_if_concrete()

    def build_message(self) -> OutgoingMessage:
        from airflow_provider_whatsapp.messages import ReactionMessage

        return ReactionMessage.build(message_id=self.message_id, emoji=self.emoji)


class WhatsAppMarkAsReadOperator(WhatsAppBaseOperator):
    """Mark a received message as read (the sender sees blue ticks).

    :param message_id: the wamid of the received message.
    :return: the message id that was marked.
    """

    template_fields: Sequence[str] = (*WhatsAppBaseOperator.template_fields, "message_id")

    def __init__(self, *, message_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message_id = message_id
        if is_concrete(message_id):
            self._model()

    def _model(self) -> Any:
        from airflow_provider_whatsapp.messages import MarkAsRead

        return MarkAsRead.build(message_id=self.message_id)

    def execute(self, context: Context) -> str:
        message_id = self._model().message_id
        self.hook.mark_as_read(message_id)
        self.log.info("Marked %s as read", message_id)
        return message_id


__all__ = [
    "WhatsAppMarkAsReadOperator",
    "WhatsAppSendAudioOperator",
    "WhatsAppSendButtonsOperator",
    "WhatsAppSendContactsOperator",
    "WhatsAppSendCtaUrlOperator",
    "WhatsAppSendDocumentOperator",
    "WhatsAppSendImageOperator",
    "WhatsAppSendListOperator",
    "WhatsAppSendLocationOperator",
    "WhatsAppSendMessageOperator",
    "WhatsAppSendReactionOperator",
    "WhatsAppSendStickerOperator",
    "WhatsAppSendTemplateOperator",
    "WhatsAppSendTextOperator",
    "WhatsAppSendVideoOperator",
]
