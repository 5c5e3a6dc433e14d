"""Operators that send WhatsApp messages: one base send operator and a thin subclass per message type.

:class:`WhatsAppSendMessageOperator` sends a payload as given and is the base of the others. Each typed
operator only DECLARES what it sends: the model it builds (``model``, named so importing this module
stays cheap), the arguments that make up the message (``message_fields``) and where an argument's name
differs from the model's (``model_arguments``). The base stores the arguments, derives
``template_fields`` from the declaration, validates once when the DAG is parsed (only what is already
concrete: no Jinja, no ``XComArg``), and at run time builds the model, uploads a ``file_path`` first when
there is one, builds the payload once and hands it to the hook. The new message's id (``wamid...``) is
returned, so it lands in XCom.

Importing this module stays cheap: the models and the hook are imported when first needed.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_whatsapp._compat import default_deferrable
from airflow_provider_whatsapp.operators._base import WhatsAppBaseOperator, is_concrete
from airflow_provider_whatsapp.operators._confirm import (
    DEFAULT_CONFIRM_POKE_INTERVAL,
    DEFAULT_CONFIRM_TIMEOUT,
    check_seconds,
    check_target,
    nothing_sent_again,
    resume_without_resending,
)
from airflow_provider_whatsapp.redact import mask_phone_number

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import timedelta

    from airflow.sdk import Context

    from airflow_provider_whatsapp.messages import OutgoingMessage
    from airflow_provider_whatsapp.webhooks.store import EventStore


def _with_article(noun: str) -> str:
    # "a text message", "an interactive message": log lines read as sentences.
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


class WhatsAppSendMessageOperator(WhatsAppBaseOperator):
    """Send one WhatsApp message given as a Graph payload dict or a message model.

    It is also the base of every typed send operator: a subclass declares its ``model`` and its
    ``message_fields``, and this class stores, validates, builds, uploads and sends.

    :param to: the recipient's phone number with country code (``+1 415 555 0100`` is fine).
    :param message: e.g. ``{"type": "text", "text": {"body": "hi"}}`` or a model from
        :mod:`airflow_provider_whatsapp.messages`; ``type`` must be one WhatsApp knows.
    :param reply_to: the wamid of a received message to reply to (``context.message_id``).
    :param confirm: ``None`` (default): the task succeeds once WhatsApp ACCEPTED the message, which
        does not prove it arrived (a message outside the 24-hour window, or to a number without
        WhatsApp, is accepted and fails later). ``"sent"``, ``"delivered"`` or ``"read"``: the task
        succeeds only once the message reached that status (or a later one), as WhatsApp's status
        webhooks report it in the event store; a ``failed`` status fails it with the error of its code
        (131047: :class:`~airflow_provider_whatsapp.errors.WhatsAppReEngagementError`).
    :param confirm_timeout: seconds (or a ``timedelta``) to wait for ``confirm``; then the task fails
        with :class:`~airflow_provider_whatsapp.errors.WhatsAppNotConfirmedError`. The message is never
        sent again, by the task or by Airflow's retries.
    :param confirm_poke_interval: seconds between two looks at the event store.
    :param deferrable: wait for ``confirm`` in the triggerer (the sent wamid travels in the trigger, so
        resuming never sends again; a trigger that fails fails the task without Airflow retries);
        default from ``[operators] default_deferrable``. With ``deferrable=False`` the worker waits: an
        error during the wait fails the task without retries too, but a worker that is killed while
        waiting (OOM, node lost, a deploy) is retried by Airflow, and the retry sends the message again.
        That is inherent to waiting in the worker: prefer ``deferrable=True`` with ``confirm``, or set
        ``retries=0`` on the task.
    :return: the new message's id (``wamid...``).
    """

    #: The model class in :mod:`airflow_provider_whatsapp.messages`, by name: importing it here would load
    #: pydantic on every DAG parse. ``None`` (this class): the payload's ``type`` chooses the model.
    model: ClassVar[str | None] = None
    #: The arguments that make up the message, passed to the model's ``build``; templated unless listed
    #: in :attr:`untemplated_fields`.
    message_fields: ClassVar[tuple[str, ...]] = ("message",)
    message: Any  # the generic operator's payload, stored by __init__ as every declared field
    #: Operator argument -> model argument, where the names differ.
    model_arguments: ClassVar[Mapping[str, str]] = {}
    #: Message fields Jinja leaves alone (flags rather than text).
    untemplated_fields: ClassVar[frozenset[str]] = frozenset()
    #: Message fields whose empty value means "none" (a template that rendered to ``""``).
    empty_means_absent: ClassVar[frozenset[str]] = frozenset()
    #: Arguments that only shape the upload of a ``file_path``: passed to ``upload_media``, not templated.
    upload_options: ClassVar[tuple[str, ...]] = ()

    #: What every send operator renders besides its message fields.
    envelope_fields: ClassVar[tuple[str, ...]] = (*WhatsAppBaseOperator.template_fields, "to", "reply_to")
    template_fields: Sequence[str] = (*envelope_fields, "message")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "template_fields" not in cls.__dict__:
            templated = [name for name in cls.message_fields if name not in cls.untemplated_fields]
            cls.template_fields = (*cls.envelope_fields, *templated)

    def __init__(
        self,
        *,
        to: str,
        reply_to: str | None = None,
        confirm: str | None = None,
        confirm_timeout: float | timedelta = DEFAULT_CONFIRM_TIMEOUT,
        confirm_poke_interval: float = DEFAULT_CONFIRM_POKE_INTERVAL,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if self.model is None and "message" not in kwargs:
            raise TypeError(f"{type(self).__name__}() missing required keyword argument: 'message'")
        declared = {name: kwargs.pop(name, None) for name in (*self.message_fields, *self.upload_options)}
        super().__init__(**kwargs)
        self.to = to
        self.reply_to = reply_to
        self.confirm = check_target("confirm", confirm, optional=True)
        self.confirm_timeout = check_seconds("confirm_timeout", confirm_timeout)
        self.confirm_poke_interval = check_seconds("confirm_poke_interval", confirm_poke_interval)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        for name, value in declared.items():
            setattr(self, name, value)
        # Here, not in the subclasses: every argument is stored by now, whatever the depth of the class.
        self.validate_if_concrete()

    def model_fields(self) -> dict[str, Any]:
        """The declared message fields as the model's arguments."""
        fields = {}
        for name in self.message_fields:
            value = getattr(self, name)
            if name in self.empty_means_absent and not value:
                value = None
            fields[self.model_arguments.get(name, name)] = value
        return fields

    def build_message(self) -> OutgoingMessage:
        """The validated message model; raises ``WhatsAppValidationError`` naming the field."""
        from airflow_provider_whatsapp import messages

        if self.model is None:
            return messages.parse_message(self.message)
        return getattr(messages, self.model).build(**self.model_fields())

    def validate_if_concrete(self) -> None:
        """Validate at DAG parse time the recipient and the message, each when already final."""
        if is_concrete(self.to):
            from airflow_provider_whatsapp.messages import normalize_recipient

            normalize_recipient(self.to)
        if all(is_concrete(getattr(self, name)) for name in self.message_fields):
            self.build_message()

    def execute(self, context: Context) -> str:
        from airflow_provider_whatsapp.messages import normalize_recipient

        # Everything the DAG gave is checked before the first request, the upload included; so is the
        # event store a confirmation reads, so that a broken one cannot fail the task after the send.
        message = self.build_message()
        recipient = normalize_recipient(self.to)
        store = self.event_store() if self.confirm is not None else None
        target = message.upload_target()
        if target is not None:
            media_type, file_path = target
            options = {name: getattr(self, name) or None for name in self.upload_options}
            media_id = self.hook.upload_media(file_path, media_type=media_type, **options)
            self.log.info("Uploaded %s as %s media %s", file_path, media_type, media_id)
            message = message.with_media_id(media_id)
        payload = message.to_payload(recipient, reply_to=self.reply_to or None)
        wamid = self.hook.message_id(self.hook.send_message(payload))
        self.log.info(
            "Sent %s message to %s: %s",
            _with_article(message.message_type),
            mask_phone_number(recipient),
            wamid,
        )
        if store is None or self.confirm is None:
            return wamid
        with nothing_sent_again(f"Message {wamid}"):
            return self._confirm(store, wamid)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Resume after the status trigger; a failed trigger fails the task for good, as a retry would
        send the message again."""
        resume = functools.partial(super().resume_execution, next_method, next_kwargs, context)
        return resume_without_resending(
            resume,
            next_method=next_method,
            next_kwargs=next_kwargs,
            log=self.log,
            sent=f"The message this task sent before it deferred (confirm={self.confirm!r})",
        )

    def event_store(self) -> EventStore:
        """The event store of the connection, where the receiver writes WhatsApp's status webhooks."""
        from airflow_provider_whatsapp.webhooks.store import EventStore

        return EventStore.for_connection(self.maton_conn_id)

    def _confirm(self, store: EventStore, wamid: str) -> str:
        """Wait until ``wamid`` reached :attr:`confirm`: in the triggerer when deferrable, else here."""
        from airflow_provider_whatsapp.triggers._events import end_time_after, tolerant
        from airflow_provider_whatsapp.triggers.status import look

        target = str(self.confirm)
        end_time = end_time_after(self.confirm_timeout)
        self.log.info("Waiting up to %.0f s for message %s to be %s", self.confirm_timeout, wamid, target)
        if self.deferrable and tolerant(lambda: look(store, wamid, target), self.log)() is None:
            from airflow_provider_whatsapp.triggers.status import WhatsAppMessageStatusTrigger

            self.defer(
                trigger=WhatsAppMessageStatusTrigger(
                    message_id=wamid,
                    target=target,
                    store=store.describe(),
                    poke_interval=self.confirm_poke_interval,
                    end_time=end_time,
                ),
                method_name="execute_complete",
            )
        from airflow_provider_whatsapp.operators._confirm import confirm_in_process

        event = confirm_in_process(
            store,
            wamid,
            target,
            poke_interval=self.confirm_poke_interval,
            end_time=end_time,
            log=self.log,
        )
        self.log.info("Message %s is %s", wamid, event.get("status"))
        return wamid

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after the status trigger: the wamid sent before deferring, or the confirmation's error.
        Nothing is sent here."""
        from airflow_provider_whatsapp.errors import WhatsAppNotConfirmedError
        from airflow_provider_whatsapp.triggers.status import settle

        status = settle(event, on_timeout=WhatsAppNotConfirmedError)
        wamid = str((event or {}).get("message_id"))
        self.log.info("Message %s is %s", wamid, status.get("status"))
        return wamid


class WhatsAppSendTextOperator(WhatsAppSendMessageOperator):
    """Send a text message (at most 4096 characters).

    :param to: the recipient's phone number.
    :param body: the text; WhatsApp formatting (``*bold*``, ``_italic_``) works.
    :param preview_url: show a preview of the first URL in the text.
    :param reply_to: the wamid of a received message to reply to.
    """

    model: ClassVar[str] = "TextMessage"
    message_fields: ClassVar[tuple[str, ...]] = ("body", "preview_url")
    untemplated_fields: ClassVar[frozenset[str]] = frozenset({"preview_url"})

    def __init__(
        self, *, to: str, body: str, preview_url: bool = False, reply_to: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(to=to, body=body, preview_url=preview_url, reply_to=reply_to, **kwargs)


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

    model: ClassVar[str] = "TemplateMessage"
    message_fields: ClassVar[tuple[str, ...]] = (
        "template_name",
        "language_code",
        "components",
        "body_parameters",
        "header",
    )
    model_arguments: ClassVar[Mapping[str, str]] = {"template_name": "name"}
    upload_options: ClassVar[tuple[str, ...]] = ("mime_type",)

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
        super().__init__(
            to=to,
            template_name=template_name,
            language_code=language_code,
            components=components,
            body_parameters=body_parameters,
            header=header,
            mime_type=mime_type,
            reply_to=reply_to,
            **kwargs,
        )


class _WhatsAppSendMediaOperator(WhatsAppSendMessageOperator):
    """Send media given by exactly one of ``link``, ``media_id`` or ``file_path``."""

    message_fields: ClassVar[tuple[str, ...]] = ("link", "media_id", "file_path")
    upload_options: ClassVar[tuple[str, ...]] = ("mime_type",)

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
        super().__init__(
            to=to,
            link=link,
            media_id=media_id,
            file_path=file_path,
            mime_type=mime_type,
            reply_to=reply_to,
            **kwargs,
        )


class _WhatsAppSendCaptionedMediaOperator(_WhatsAppSendMediaOperator):
    message_fields: ClassVar[tuple[str, ...]] = (*_WhatsAppSendMediaOperator.message_fields, "caption")

    def __init__(self, *, caption: str | None = None, **kwargs: Any) -> None:
        super().__init__(caption=caption, **kwargs)


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

    model: ClassVar[str] = "ImageMessage"


class WhatsAppSendVideoOperator(_WhatsAppSendCaptionedMediaOperator):
    """Send a video (MP4 or 3GPP, at most 16 MB); arguments as :class:`WhatsAppSendImageOperator`."""

    model: ClassVar[str] = "VideoMessage"


class WhatsAppSendDocumentOperator(_WhatsAppSendCaptionedMediaOperator):
    """Send a document (any type, at most 100 MB).

    Arguments as :class:`WhatsAppSendImageOperator`, plus:

    :param filename: the name the recipient sees; defaults to the uploaded file's name.
    """

    model: ClassVar[str] = "DocumentMessage"
    message_fields: ClassVar[tuple[str, ...]] = (
        *_WhatsAppSendCaptionedMediaOperator.message_fields,
        "filename",
    )

    def __init__(self, *, filename: str | None = None, **kwargs: Any) -> None:
        super().__init__(filename=filename, **kwargs)


class WhatsAppSendAudioOperator(_WhatsAppSendMediaOperator):
    """Send audio (AAC, AMR, MP3, MP4 audio, OGG/Opus; at most 16 MB); no caption.

    :param to: the recipient's phone number.
    :param link: a public ``http(s)://`` URL. :param media_id: the id of uploaded media.
    :param file_path: a local path or object-storage URL, uploaded first.
    :param reply_to: the wamid of a received message to reply to.
    """

    model: ClassVar[str] = "AudioMessage"


class WhatsAppSendStickerOperator(_WhatsAppSendMediaOperator):
    """Send a WebP sticker (at most 100 KB); arguments as :class:`WhatsAppSendAudioOperator`."""

    model: ClassVar[str] = "StickerMessage"


class WhatsAppSendLocationOperator(WhatsAppSendMessageOperator):
    """Send a location pin.

    :param to: the recipient's phone number.
    :param latitude: -90..90. :param longitude: -180..180.
    :param name: the place's name. :param address: its address.
    :param reply_to: the wamid of a received message to reply to.
    """

    model: ClassVar[str] = "LocationMessage"
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
        super().__init__(
            to=to,
            latitude=latitude,
            longitude=longitude,
            name=name,
            address=address,
            reply_to=reply_to,
            **kwargs,
        )


class WhatsAppSendContactsOperator(WhatsAppSendMessageOperator):
    """Send one to five contact cards.

    :param to: the recipient's phone number.
    :param contacts: contact objects as the Graph API defines them, each with ``name.formatted_name``.
    :param reply_to: the wamid of a received message to reply to.
    """

    model: ClassVar[str] = "ContactsMessage"
    message_fields: ClassVar[tuple[str, ...]] = ("contacts",)

    def __init__(
        self, *, to: str, contacts: list[dict[str, Any]], reply_to: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(to=to, contacts=contacts, reply_to=reply_to, **kwargs)


class _WhatsAppSendInteractiveOperator(WhatsAppSendMessageOperator):
    """Shared by the interactive operators: a body text, an optional header and footer."""

    message_fields: ClassVar[tuple[str, ...]] = ("body", "header", "footer")
    empty_means_absent: ClassVar[frozenset[str]] = frozenset({"header", "footer"})

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
        super().__init__(to=to, body=body, header=header, footer=footer, reply_to=reply_to, **kwargs)


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

    model: ClassVar[str] = "ButtonsMessage"
    message_fields: ClassVar[tuple[str, ...]] = (*_WhatsAppSendInteractiveOperator.message_fields, "buttons")

    def __init__(self, *, buttons: list[dict[str, str]], **kwargs: Any) -> None:
        super().__init__(buttons=buttons, **kwargs)


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

    model: ClassVar[str] = "ListMessage"
    message_fields: ClassVar[tuple[str, ...]] = (
        *_WhatsAppSendInteractiveOperator.message_fields,
        "button",
        "sections",
    )

    def __init__(self, *, button: str, sections: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(button=button, sections=sections, **kwargs)


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

    model: ClassVar[str] = "CtaUrlMessage"
    message_fields: ClassVar[tuple[str, ...]] = (
        *_WhatsAppSendInteractiveOperator.message_fields,
        "display_text",
        "url",
    )

    def __init__(self, *, display_text: str, url: str, **kwargs: Any) -> None:
        super().__init__(display_text=display_text, url=url, **kwargs)


class WhatsAppSendReactionOperator(WhatsAppSendMessageOperator):
    """React to a message with an emoji (an empty ``emoji`` removes the reaction).

    :param to: the phone number of the chat the message is in.
    :param message_id: the wamid of the message to react to.
    :param emoji: one emoji, e.g. ``"👍"``.
    """

    model: ClassVar[str] = "ReactionMessage"
    message_fields: ClassVar[tuple[str, ...]] = ("message_id", "emoji")

    def __init__(
        self, *, to: str, message_id: str, emoji: str, reply_to: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(to=to, message_id=message_id, emoji=emoji, reply_to=reply_to, **kwargs)


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
