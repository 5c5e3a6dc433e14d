"""Template messages: an approved template by name and language, with its parameter values.

Sending a template fills its placeholders; the components here carry values, never ``{{1}}``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, field_validator, model_validator

from airflow_provider_whatsapp.messages._common import (
    OutgoingMessage,
    WhatsAppModel,
    check_not_blank,
    drop_none,
    one_of,
)
from airflow_provider_whatsapp.messages.media import MediaRef, file_name
from airflow_provider_whatsapp.messages.simple import Latitude, Longitude  # noqa: TC001 (run time)
from airflow_provider_whatsapp.spec import grammar, limits, vocabulary

ParameterType = Annotated[str, one_of(vocabulary.TEMPLATE_PARAMETER_TYPES)]
_STRING_TYPES = vocabulary.TEMPLATE_STRING_PARAMETER_TYPES
_OBJECT_TYPES = tuple(t for t in vocabulary.TEMPLATE_PARAMETER_TYPES if t not in _STRING_TYPES)


def check_template_name(value: str) -> str:
    if len(value) > limits.TEMPLATE_NAME_MAX:
        raise ValueError(f"{len(value)} characters; WhatsApp allows at most {limits.TEMPLATE_NAME_MAX}")
    if not grammar.TEMPLATE_NAME_PATTERN.match(value):
        raise ValueError(f"{value!r} may use only lowercase letters, digits and underscores ([a-z0-9_]+)")
    return value


TemplateName = Annotated[str, AfterValidator(check_template_name)]


class _Plain(WhatsAppModel):
    def content(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class TemplateCurrency(_Plain):
    fallback_value: str
    code: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    amount_1000: int


class TemplateDateTime(_Plain):
    fallback_value: str


class TemplateMedia(MediaRef):
    """Header media by ``link`` or ``media_id``; a document may carry the ``filename`` shown."""

    filename: str | None = None

    def content(self) -> dict[str, Any]:
        return drop_none({**super().content(), "filename": self.filename})


class TemplateLocation(_Plain):
    latitude: Latitude
    longitude: Longitude
    name: str | None = None
    address: str | None = None


def _scalar_as_text(data: Any) -> Any:
    if isinstance(data, (str, int, float)) and not isinstance(data, bool):
        return {"type": "text", "text": str(data)}
    return data


class TemplateParameter(WhatsAppModel):
    """One parameter value; a plain string or number is a text parameter."""

    type: ParameterType
    text: str | None = None
    payload: str | None = None
    coupon_code: str | None = None
    currency: TemplateCurrency | None = None
    date_time: TemplateDateTime | None = None
    image: TemplateMedia | None = None
    video: TemplateMedia | None = None
    document: TemplateMedia | None = None
    location: TemplateLocation | None = None
    # A catalogue's or a flow's button data: passed through as given.
    action: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shortcut(cls, data: Any) -> Any:
        return _scalar_as_text(data)

    @model_validator(mode="after")
    def _matching_object(self) -> TemplateParameter:
        if getattr(self, self.type) is None:
            raise ValueError(f"a {self.type} parameter needs its {self.type}")
        extra = [
            k for k in (*_STRING_TYPES, *_OBJECT_TYPES) if k != self.type and getattr(self, k) is not None
        ]
        if extra:
            raise ValueError(f"a {self.type} parameter cannot also have {', '.join(extra)}")
        return self

    def content(self) -> dict[str, Any]:
        value = getattr(self, self.type)
        # Strings (text, payload, coupon_code) and action objects go as given; other objects are models.
        shown = value if isinstance(value, (str, dict)) else value.content()
        return {"type": self.type, self.type: shown}


_ALLOWED_PARAMETERS = vocabulary.TEMPLATE_PARAMETERS_BY_PART
_TEXT_LIMITS = {
    "header": limits.TEMPLATE_HEADER_PARAMETER_MAX,
    "body": limits.TEMPLATE_BODY_PARAMETER_MAX,
}
_BUTTON_PARAMETER = vocabulary.TEMPLATE_BUTTON_PARAMETER


def check_parameters(part: str, parameters: list[TemplateParameter], field: str) -> None:
    """Raise ``ValueError`` when a header or body parameter has a type or length WhatsApp refuses."""
    allowed = _ALLOWED_PARAMETERS[part]
    limit = _TEXT_LIMITS[part]
    for i, parameter in enumerate(parameters):
        if parameter.type not in allowed:
            raise ValueError(
                f"{field}[{i}]: a {part} takes {', '.join(allowed)} parameters, not {parameter.type}"
            )
        if parameter.text is not None and grammar.is_blank(parameter.text):
            raise ValueError(
                f"{field}[{i}].text: is empty; WhatsApp refuses a {part} parameter without visible text"
            )
        if parameter.text is not None and len(parameter.text) > limit:
            raise ValueError(
                f"{field}[{i}].text: {len(parameter.text)} characters; WhatsApp allows at most "
                f"{limit} in a {part} parameter"
            )


class TemplateComponent(WhatsAppModel):
    """The parameter values of one part of the template: ``header``, ``body`` or a ``button``.

    A button needs ``sub_type`` (``quick_reply`` with a ``payload`` parameter, ``url`` with a ``text``
    parameter: the URL suffix, ``catalog`` or ``flow`` with an ``action`` parameter) and ``index`` (its
    position, 0-9).
    """

    type: Annotated[str, one_of(vocabulary.TEMPLATE_SEND_COMPONENT_TYPES)]
    sub_type: Annotated[str, one_of(_BUTTON_PARAMETER)] | None = None
    index: Annotated[int, Field(ge=0, le=limits.TEMPLATE_BUTTONS_MAX - 1)] | None = None
    parameters: list[TemplateParameter] = Field(default_factory=list)

    @field_validator("sub_type", mode="before")
    @classmethod
    def _lowercase(cls, value: Any) -> Any:
        # Meta's own examples spell it either way (``CATALOG``); the API takes the lowercase name.
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _parameters_fit(self) -> TemplateComponent:
        if self.type == "button":
            if self.sub_type is None or self.index is None:
                raise ValueError(
                    f"a button component needs sub_type ({', '.join(_BUTTON_PARAMETER)}) and index"
                )
            expected = _BUTTON_PARAMETER[self.sub_type]
            for i, parameter in enumerate(self.parameters):
                if parameter.type != expected:
                    raise ValueError(
                        f"parameters[{i}]: a {self.sub_type} button takes {expected} parameters, "
                        f"not {parameter.type}"
                    )
            if not self.parameters:
                raise ValueError(f"a {self.sub_type} button component needs one {expected} parameter")
            return self
        if self.sub_type is not None or self.index is not None:
            raise ValueError(f"sub_type and index belong to button components, not {self.type}")
        check_parameters(self.type, self.parameters, "parameters")
        if self.type == "header" and len(self.parameters) > 1:
            raise ValueError(f"{len(self.parameters)} parameters; a header takes at most one")
        return self

    def content(self) -> dict[str, Any]:
        return drop_none(
            {
                "type": self.type,
                "sub_type": self.sub_type,
                "index": str(self.index) if self.index is not None else None,
                "parameters": [p.content() for p in self.parameters],
            }
        )


class TemplateHeader(WhatsAppModel):
    """The header parameter of a template, the short way.

    ``{"type": "text", "text": ...}``; ``{"type": "document", "file_path": ..., "filename": ...}`` (or
    ``link`` or ``media_id`` instead of ``file_path``; also ``image`` and ``video``);
    ``{"type": "location", "latitude": ..., "longitude": ..., "name": ..., "address": ...}``.
    """

    kind: ClassVar[str] = "template header"

    type: Annotated[str, one_of(_ALLOWED_PARAMETERS["header"])]
    text: Annotated[str, Field(max_length=limits.TEMPLATE_HEADER_PARAMETER_MAX)] | None = None
    link: str | None = None
    media_id: str | None = None
    file_path: Any = None
    filename: str | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    name: str | None = None
    address: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> TemplateHeader:
        media = [k for k in ("link", "media_id", "file_path") if getattr(self, k) is not None]
        place = [k for k in ("latitude", "longitude", "name", "address") if getattr(self, k) is not None]
        if self.type == "text":
            if self.text is None:
                raise ValueError("a text header needs text")
            stray = media + place + (["filename"] if self.filename else [])
        elif self.type == "location":
            if self.latitude is None or self.longitude is None:
                raise ValueError("a location header needs latitude and longitude")
            stray = media + (["text"] if self.text is not None else [])
        else:
            if len(media) != 1:
                shown = ", ".join(media) if media else "none"
                raise ValueError(
                    f"a {self.type} header needs exactly one of link, media_id or file_path (given: {shown})"
                )
            stray = place + (["text"] if self.text is not None else [])
            if self.filename and self.type != "document":
                stray.append("filename")
        if stray:
            raise ValueError(f"a {self.type} header cannot have {', '.join(stray)}")
        if self.link is not None:
            TemplateMedia(link=self.link)  # checks the URL
        return self

    def parameter(self) -> dict[str, Any]:
        if self.type == "text":
            return {"type": "text", "text": self.text}
        if self.type == "location":
            place = drop_none(
                {
                    "latitude": self.latitude,
                    "longitude": self.longitude,
                    "name": self.name,
                    "address": self.address,
                }
            )
            return {"type": "location", "location": place}
        if self.file_path is not None:
            raise ValueError("the header file_path must be uploaded before the payload is built")
        source = {"link": self.link} if self.link is not None else {"id": self.media_id}
        if self.type == "document" and self.filename:
            source["filename"] = self.filename
        return {"type": self.type, self.type: source}


class TemplateMessage(OutgoingMessage):
    """An approved template, the only kind of message allowed outside the 24-hour window.

    :param name: the template's name (``[a-z0-9_]+``, at most 512 characters).
    :param language_code: the language it was approved in, e.g. ``en_US``.
    :param components: parameter values as the Graph API takes them (header, body, buttons).
    :param body_parameters: shortcut for the body's text parameters, in placeholder order.
    :param header: shortcut for the header parameter (see :class:`TemplateHeader`).
    """

    message_type: ClassVar[str] = "template"
    kind: ClassVar[str] = "template message"

    name: TemplateName
    language_code: Annotated[str, AfterValidator(check_not_blank)] = "en_US"
    components: list[TemplateComponent] | None = None
    body_parameters: list[TemplateParameter] | None = None
    header: TemplateHeader | None = None

    @model_validator(mode="after")
    def _no_overlap(self) -> TemplateMessage:
        check_parameters("body", self.body_parameters or [], "body_parameters")
        kinds = [c.type for c in self.components or ()]
        if self.body_parameters is not None and "body" in kinds:
            raise ValueError(
                "give the body's parameters either in body_parameters or in components, not both"
            )
        if self.header is not None and "header" in kinds:
            raise ValueError("give the header either in header or in components, not both")
        for kind in ("header", "body"):
            if kinds.count(kind) > 1:
                raise ValueError(f"components: {kinds.count(kind)} {kind} components; a template has one")
        return self

    def upload_target(self) -> tuple[str, Any] | None:
        if self.header is not None and self.header.file_path is not None:
            return self.header.type, self.header.file_path
        return None

    def with_media_id(self, media_id: str) -> TemplateMessage:
        assert self.header is not None
        update: dict[str, Any] = {"media_id": media_id, "file_path": None}
        if self.header.type == "document":
            update["filename"] = self.header.filename or file_name(self.header.file_path)
        return self.model_copy(update={"header": self.header.model_copy(update=update)})

    def all_components(self) -> list[dict[str, Any]]:
        """Header, body and button components in the order WhatsApp shows them."""
        built = [c.content() for c in self.components or ()]
        if self.header is not None:
            built.append({"type": "header", "parameters": [self.header.parameter()]})
        if self.body_parameters:
            built.append({"type": "body", "parameters": [p.content() for p in self.body_parameters]})
        order = vocabulary.TEMPLATE_SEND_COMPONENT_TYPES
        return sorted(built, key=lambda c: order.index(c["type"]))

    def content(self) -> dict[str, Any]:
        template: dict[str, Any] = {"name": self.name, "language": {"code": self.language_code}}
        components = self.all_components()
        if components:
            template["components"] = components
        return template
