"""Text, location, contacts and reaction messages, and marking a received message as read."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BeforeValidator, Field, field_validator

from airflow_provider_whatsapp.messages._common import (
    OutgoingMessage,
    WhatsAppModel,
    check_not_blank,
    drop_none,
    one_of,
)
from airflow_provider_whatsapp.spec import grammar, limits, vocabulary


class TextMessage(OutgoingMessage):
    """Plain text, at most 4096 characters; ``preview_url`` renders a preview of the first link."""

    message_type: ClassVar[str] = "text"
    kind: ClassVar[str] = "text message"

    body: Annotated[str, Field(max_length=limits.TEXT_BODY_MAX), AfterValidator(check_not_blank)]
    preview_url: bool = False

    def content(self) -> dict[str, Any]:
        return {"body": self.body, "preview_url": self.preview_url}


def _in_range(low: float, high: float, what: str) -> Any:
    def check(value: float) -> float:
        if not low <= value <= high:
            raise ValueError(f"{value} is outside {low:g}..{high:g}, the range of a {what}")
        return value

    return AfterValidator(check)


def _not_bool(value: Any) -> Any:
    # A bool is an int to pydantic (True would become 1.0): a coordinate given as True/False is a mistake.
    if isinstance(value, bool):
        raise ValueError(f"{value} is not a number; give the coordinate in degrees")
    return value


Latitude = Annotated[float, BeforeValidator(_not_bool), _in_range(*limits.LATITUDE_RANGE, "latitude")]
Longitude = Annotated[float, BeforeValidator(_not_bool), _in_range(*limits.LONGITUDE_RANGE, "longitude")]


class LocationMessage(OutgoingMessage):
    """A pin on the map, with an optional place name and address."""

    message_type: ClassVar[str] = "location"
    kind: ClassVar[str] = "location message"

    latitude: Latitude
    longitude: Longitude
    name: str | None = None
    address: str | None = None

    def content(self) -> dict[str, Any]:
        return drop_none(
            {
                "latitude": self.latitude,
                "longitude": self.longitude,
                "name": self.name,
                "address": self.address,
            }
        )


# --- contacts: the objects as the Graph API defines them -----------------------------------------

HomeOrWork = Annotated[str, one_of(vocabulary.CONTACT_ENTRY_TYPES)]


class ContactName(WhatsAppModel):
    formatted_name: Annotated[str, AfterValidator(check_not_blank)]
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    prefix: str | None = None


class ContactPhone(WhatsAppModel):
    phone: str
    type: Annotated[str, one_of(vocabulary.CONTACT_PHONE_TYPES)] | None = None
    wa_id: str | None = None


class ContactEmail(WhatsAppModel):
    email: str
    type: HomeOrWork | None = None


class ContactUrl(WhatsAppModel):
    url: str
    type: HomeOrWork | None = None


class ContactAddress(WhatsAppModel):
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    type: HomeOrWork | None = None


class ContactOrg(WhatsAppModel):
    company: str | None = None
    department: str | None = None
    title: str | None = None


class Contact(WhatsAppModel):
    """One contact card; ``name.formatted_name`` is required by WhatsApp."""

    name: ContactName
    phones: list[ContactPhone] | None = None
    emails: list[ContactEmail] | None = None
    urls: list[ContactUrl] | None = None
    addresses: list[ContactAddress] | None = None
    org: ContactOrg | None = None
    birthday: Annotated[str, Field(pattern=grammar.BIRTHDAY_PATTERN.pattern)] | None = None


class ContactsMessage(OutgoingMessage):
    """One to five contact cards."""

    message_type: ClassVar[str] = "contacts"
    kind: ClassVar[str] = "contacts message"

    contacts: Annotated[list[Contact], Field(min_length=limits.CONTACTS_MIN, max_length=limits.CONTACTS_MAX)]

    def content(self) -> list[dict[str, Any]]:
        return [contact.model_dump(exclude_none=True) for contact in self.contacts]


class ReactionMessage(OutgoingMessage):
    """An emoji reaction to a message; an empty ``emoji`` removes the reaction."""

    message_type: ClassVar[str] = "reaction"
    kind: ClassVar[str] = "reaction"

    message_id: Annotated[str, AfterValidator(check_not_blank)]
    emoji: str

    @field_validator("emoji")
    @classmethod
    def _one_emoji(cls, value: str) -> str:
        if not grammar.is_single_emoji(value):
            raise ValueError(f"{value!r} is not a single emoji")
        return value

    def content(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "emoji": self.emoji}


class MarkAsRead(WhatsAppModel):
    """Marks a received message as read (the sender sees blue ticks)."""

    kind: ClassVar[str] = "mark-as-read request"

    message_id: Annotated[str, AfterValidator(check_not_blank)]

    def to_payload(self) -> dict[str, Any]:
        """The Graph ``/messages`` body, without ``messaging_product``."""
        return {"status": "read", "message_id": self.message_id}
