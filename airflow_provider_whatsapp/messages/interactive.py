"""Interactive messages: reply buttons, a list of options, and a call-to-action URL button."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, field_validator, model_validator

from airflow_provider_whatsapp.messages._common import (
    OutgoingMessage,
    WhatsAppModel,
    check_http_url,
    check_not_blank,
    drop_none,
    one_of,
)
from airflow_provider_whatsapp.messages.media import MediaRef  # noqa: TC001 (pydantic needs it at run time)
from airflow_provider_whatsapp.spec import grammar, limits, vocabulary

Body = Annotated[str, Field(max_length=limits.INTERACTIVE_BODY_MAX), AfterValidator(check_not_blank)]
Footer = Annotated[str, Field(max_length=limits.INTERACTIVE_FOOTER_MAX), AfterValidator(check_not_blank)]
HeaderText = Annotated[
    str, Field(max_length=limits.INTERACTIVE_HEADER_TEXT_MAX), AfterValidator(check_not_blank)
]

_MEDIA_HEADERS = vocabulary.INTERACTIVE_MEDIA_HEADER_TYPES


class InteractiveHeader(WhatsAppModel):
    """A header: text (at most 60 characters) or an image, video or document (by link or media id).

    A plain string is a text header. Media may be given as ``{"type": "image", "link": ...}`` or in
    the Graph form ``{"type": "image", "image": {"link": ...}}``.
    """

    kind: ClassVar[str] = "interactive header"

    type: Annotated[str, one_of(vocabulary.INTERACTIVE_HEADER_TYPES)]
    text: HeaderText | None = None
    image: MediaRef | None = None
    video: MediaRef | None = None
    document: MediaRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _shortcuts(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"type": "text", "text": data}
        if isinstance(data, dict) and data.get("type") in _MEDIA_HEADERS:
            kind = data["type"]
            flat = {k: data[k] for k in ("link", "media_id", "id") if k in data}
            if flat and kind not in data:
                rest = {k: v for k, v in data.items() if k not in flat}
                return {**rest, kind: flat}
        return data

    @model_validator(mode="after")
    def _matching_object(self) -> InteractiveHeader:
        if getattr(self, self.type) is None:
            raise ValueError(f"a {self.type} header needs its {self.type}")
        extra = [k for k in ("text", *_MEDIA_HEADERS) if k != self.type and getattr(self, k) is not None]
        if extra:
            raise ValueError(f"a {self.type} header cannot also have {', '.join(extra)}")
        return self

    def content(self) -> dict[str, Any]:
        value = getattr(self, self.type)
        return {"type": self.type, self.type: value if self.type == "text" else value.content()}


class ReplyButton(WhatsAppModel):
    """One reply button: ``id`` (at most 256 characters, sent back when tapped) and ``title`` (20)."""

    id: Annotated[str, Field(max_length=limits.REPLY_BUTTON_ID_MAX), AfterValidator(check_not_blank)]
    title: Annotated[str, Field(max_length=limits.REPLY_BUTTON_TITLE_MAX), AfterValidator(check_not_blank)]

    @model_validator(mode="before")
    @classmethod
    def _wire_form(cls, data: Any) -> Any:
        # Graph's form: {"type": "reply", "reply": {"id": ..., "title": ...}}
        if (
            isinstance(data, dict)
            and isinstance(data.get("reply"), dict)
            and data.get("type", "reply") == "reply"
        ):
            return data["reply"]
        return data


def _no_repeats(items: list[Any], attribute: str, field: str, what: str) -> None:
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        value = getattr(item, attribute)
        if value in seen:
            raise ValueError(
                f"{field}[{index}].{attribute}: {value!r} repeats {field}[{seen[value]}].{attribute}; "
                f"WhatsApp needs unique {what}"
            )
        seen[value] = index


class _Interactive(OutgoingMessage):
    message_type: ClassVar[str] = "interactive"
    interactive_type: ClassVar[str]

    body: Body
    header: InteractiveHeader | None = None
    footer: Footer | None = None

    def action(self) -> dict[str, Any]:
        raise NotImplementedError

    def content(self) -> dict[str, Any]:
        return drop_none(
            {
                "type": self.interactive_type,
                "header": self.header.content() if self.header else None,
                "body": {"text": self.body},
                "footer": {"text": self.footer} if self.footer else None,
                "action": self.action(),
            }
        )


class ButtonsMessage(_Interactive):
    """Up to three reply buttons under a body text."""

    interactive_type: ClassVar[str] = vocabulary.INTERACTIVE_BUTTON
    kind: ClassVar[str] = "reply-buttons message"

    buttons: Annotated[
        list[ReplyButton], Field(min_length=limits.REPLY_BUTTONS_MIN, max_length=limits.REPLY_BUTTONS_MAX)
    ]

    @model_validator(mode="after")
    def _unique(self) -> ButtonsMessage:
        _no_repeats(self.buttons, "title", "buttons", "button titles")
        _no_repeats(self.buttons, "id", "buttons", "button ids")
        return self

    def action(self) -> dict[str, Any]:
        return {"buttons": [{"type": "reply", "reply": b.model_dump()} for b in self.buttons]}


class ListRow(WhatsAppModel):
    """One option of a list: ``id`` (200), ``title`` (24), optional ``description`` (72)."""

    id: Annotated[str, Field(max_length=limits.LIST_ROW_ID_MAX), AfterValidator(check_not_blank)]
    title: Annotated[str, Field(max_length=limits.LIST_ROW_TITLE_MAX), AfterValidator(check_not_blank)]
    description: Annotated[str, Field(max_length=limits.LIST_ROW_DESCRIPTION_MAX)] | None = None


class ListSection(WhatsAppModel):
    """A group of rows; its ``title`` (24) is required when the list has more than one section."""

    title: Annotated[str, Field(max_length=limits.LIST_SECTION_TITLE_MAX)] | None = None
    rows: Annotated[list[ListRow], Field(min_length=1, max_length=limits.LIST_ROWS_TOTAL_MAX)]


class ListMessage(_Interactive):
    """A button (20 characters) that opens up to ten options grouped in sections."""

    interactive_type: ClassVar[str] = vocabulary.INTERACTIVE_LIST
    kind: ClassVar[str] = "list message"

    button: Annotated[str, Field(max_length=limits.LIST_BUTTON_TEXT_MAX), AfterValidator(check_not_blank)]
    sections: Annotated[
        list[ListSection], Field(min_length=limits.LIST_SECTIONS_MIN, max_length=limits.LIST_SECTIONS_MAX)
    ]

    @field_validator("header")
    @classmethod
    def _text_header_only(cls, value: InteractiveHeader | None) -> InteractiveHeader | None:
        if value is not None and value.type != "text":
            raise ValueError(f"a list message takes only a text header, not {value.type}")
        return value

    @model_validator(mode="after")
    def _sections(self) -> ListMessage:
        if len(self.sections) > 1:
            for index, section in enumerate(self.sections):
                # The rule the service applies: invisible characters alone are no title.
                if section.title is None or grammar.is_blank(section.title):
                    raise ValueError(
                        f"sections[{index}].title: is required when a list has more than one section"
                    )
        total = sum(len(section.rows) for section in self.sections)
        if total > limits.LIST_ROWS_TOTAL_MAX:
            raise ValueError(
                f"sections: {total} rows in all; WhatsApp allows at most {limits.LIST_ROWS_TOTAL_MAX} "
                "rows across all sections"
            )
        seen: dict[str, str] = {}
        for s_index, section in enumerate(self.sections):
            for r_index, row in enumerate(section.rows):
                where = f"sections[{s_index}].rows[{r_index}].id"
                if row.id in seen:
                    raise ValueError(
                        f"{where}: {row.id!r} repeats {seen[row.id]}; WhatsApp needs unique row ids"
                    )
                seen[row.id] = where
        return self

    def action(self) -> dict[str, Any]:
        return {
            "button": self.button,
            "sections": [section.model_dump(exclude_none=True) for section in self.sections],
        }


class CtaUrlMessage(_Interactive):
    """A body text with one button that opens ``url``; ``display_text`` is the button's label (20)."""

    interactive_type: ClassVar[str] = vocabulary.INTERACTIVE_CTA_URL
    kind: ClassVar[str] = "call-to-action URL message"

    display_text: Annotated[
        str, Field(max_length=limits.CTA_URL_DISPLAY_TEXT_MAX), AfterValidator(check_not_blank)
    ]
    url: Annotated[str, AfterValidator(check_http_url)]

    def action(self) -> dict[str, Any]:
        parameters = {"display_text": self.display_text, "url": self.url}
        return {"name": self.interactive_type, "parameters": parameters}
