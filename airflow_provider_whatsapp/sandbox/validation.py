"""What WhatsApp refuses, checked the way WhatsApp checks it, answered with Graph's error bodies.

Every limit comes from :mod:`airflow_provider_whatsapp.spec.limits`. A refusal is a :class:`GraphError`
carrying the HTTP status, the Graph code and the ``error_data.details`` text WhatsApp would send:
131008 for a missing parameter, 131009 for a value out of range, 100 for a malformed parameter or a
string over its length, 132000/132001/132012 for templates.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from airflow_provider_whatsapp.spec import error_codes, grammar, limits, vocabulary


def default_status(code: int) -> int:
    """The HTTP status Graph pairs with an error code."""
    row = error_codes.lookup(code)
    return row.http_status if row is not None else 400


class GraphError(Exception):
    """A refusal in Graph's shape.

    ``{"error": {message, type, code, error_subcode?, error_data: {messaging_product, details}, fbtrace_id}}``
    """

    def __init__(
        self,
        code: int,
        details: str = "",
        *,
        status: int | None = None,
        subcode: int | None = None,
        message: str | None = None,
    ) -> None:
        self.code = code
        self.details = details
        self.status = status or default_status(code)
        self.subcode = subcode
        row = error_codes.lookup(code)
        title = message or (row.title if row is not None else "An error occurred")
        self.message = title if title.startswith("(#") else f"(#{code}) {title}"
        super().__init__(f"{self.message}: {details}")

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": error_codes.GRAPH_ERROR_TYPE,
        }
        error["code"] = self.code
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
        return {"error": error}


def missing(name: str) -> GraphError:
    return GraphError(131008, f"The parameter {name} is required.")


def invalid(details: str) -> GraphError:
    return GraphError(131009, details)


def too_long(name: str, limit: int) -> GraphError:
    return GraphError(100, f"Param {name} must be at most {limit} characters long.")


MESSAGE_TYPES = frozenset(
    {
        "text",
        "image",
        "video",
        "audio",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "reaction",
        "template",
    }
)
MEDIA_TYPES = frozenset(limits.MEDIA_RULES)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


# --- helpers -------------------------------------------------------------------------------------


def _object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        raise missing(name)
    if not isinstance(value, dict):
        raise GraphError(100, f"Param {name} must be a JSON object.")
    return value


def _text(
    obj: dict[str, Any], key: str, name: str, limit: int | None, *, required: bool = True
) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str):
        raise GraphError(100, f"Param {name} must be a string.")
    if limit is not None and len(value) > limit:
        raise too_long(name, limit)
    return value


def _count(items: Any, name: str, low: int, high: int, what: str) -> list[Any]:
    if items is None:
        raise missing(name)
    if not isinstance(items, list):
        raise GraphError(100, f"Param {name} must be an array.")
    if not low <= len(items) <= high:
        raise invalid(f"{name}: {len(items)} {what} given; between {low} and {high} are allowed.")
    return items


def recipient(to: Any) -> str:
    """The ``wa_id`` of a ``to`` value: digits only, 8 to 15 of them."""
    if to is None or to == "":
        raise missing("to")
    digits = re.sub(r"[\s+\-()]", "", str(to))
    if not digits.isdigit() or not limits.RECIPIENT_MIN_DIGITS <= len(digits) <= limits.RECIPIENT_MAX_DIGITS:
        raise GraphError(
            100,
            f"Param to ({to!r}) is not a valid WhatsApp phone number: give the number in international "
            f"format, {limits.RECIPIENT_MIN_DIGITS}-{limits.RECIPIENT_MAX_DIGITS} digits.",
        )
    return digits


# --- messages ------------------------------------------------------------------------------------


def validate_message(payload: Any, media_lookup: Any) -> str:
    """Check an outgoing message as WhatsApp does; returns the recipient's ``wa_id``.

    :param media_lookup: ``media_id -> Media | None`` so that a media id must exist.
    """
    body = _object(payload, "body")
    if body.get("messaging_product") != "whatsapp":
        if "messaging_product" not in body:
            raise GraphError(100, "The parameter messaging_product is required.")
        raise GraphError(100, "Param messaging_product must be 'whatsapp'.")
    recipient_type = body.get("recipient_type", "individual")
    if recipient_type != "individual":
        raise GraphError(100, "Param recipient_type must be 'individual'.")
    wa_id = recipient(body.get("to"))
    kind = body.get("type", "text")
    if kind not in MESSAGE_TYPES:
        raise GraphError(
            100, f"Param type must be one of {{{', '.join(sorted(t.upper() for t in MESSAGE_TYPES))}}}."
        )
    content = _object(body.get(kind), kind)
    context = body.get("context")
    if context is not None and not (isinstance(context, dict) and isinstance(context.get("message_id"), str)):
        raise GraphError(100, "Param context['message_id'] must be a message id (wamid).")
    if kind == "text":
        _text(content, "body", "text['body']", limits.TEXT_BODY_MAX)
    elif kind in MEDIA_TYPES:
        _media_object(kind, content, kind, media_lookup)
    elif kind == "location":
        _location(content)
    elif kind == "contacts":
        _contacts(body.get("contacts"))
    elif kind == "interactive":
        _interactive(content, media_lookup)
    elif kind == "reaction":
        _text(content, "message_id", "reaction['message_id']", None)
        emoji = content.get("emoji")
        if emoji is None:
            raise missing("reaction['emoji']")
        if not isinstance(emoji, str) or len(emoji) > 10:
            raise invalid("reaction['emoji'] must be a single emoji (or empty to remove the reaction).")
    elif kind == "template":
        _template_shape(content)
    return wa_id


def _media_object(kind: str, content: dict[str, Any], name: str, media_lookup: Any) -> None:
    has_id, has_link = bool(content.get("id")), bool(content.get("link"))
    if not has_id and not has_link:
        raise missing(f"{name}['id'] or {name}['link']")
    if has_id and has_link:
        raise invalid(f"{name}: give either id or link, not both.")
    if has_link and not grammar.is_http_url(content["link"]):
        raise invalid(f"{name}['link'] must be an absolute http(s) URL, got {content['link']!r}.")
    if has_id:
        media = media_lookup(str(content["id"]))
        if media is None:
            raise invalid(f"{name}['id']: media {content['id']} does not exist (or was deleted).")
        if kind != "document" and media.media_type != kind:
            raise invalid(f"{name}['id']: media {content['id']} is {media.mime_type}, not a {kind}.")
    if "caption" in content:
        if kind not in vocabulary.CAPTIONED_MEDIA:
            raise GraphError(100, f"Param {name}['caption'] is not allowed for {kind} messages.")
        _text(content, "caption", f"{name}['caption']", limits.MEDIA_CAPTION_MAX, required=False)
    if "filename" in content and kind != "document":
        raise GraphError(100, f"Param {name}['filename'] is only allowed for documents.")


def _location(content: dict[str, Any]) -> None:
    for key, (low, high) in (("latitude", limits.LATITUDE_RANGE), ("longitude", limits.LONGITUDE_RANGE)):
        value = content.get(key)
        if value is None or value == "":
            raise missing(f"location['{key}']")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise GraphError(100, f"Param location['{key}'] must be a number.") from None
        if not low <= number <= high:
            raise invalid(f"location['{key}'] is {number}; it must be between {low:g} and {high:g}.")


def _contacts(contacts: Any) -> None:
    items = _count(contacts, "contacts", limits.CONTACTS_MIN, limits.CONTACTS_MAX, "contacts")
    for i, contact in enumerate(items):
        entry = _object(contact, f"contacts[{i}]")
        name = _object(entry.get("name"), f"contacts[{i}]['name']")
        _text(name, "formatted_name", f"contacts[{i}]['name']['formatted_name']", None)


def _interactive(content: dict[str, Any], media_lookup: Any) -> None:
    kind = content.get("type")
    if not kind:
        raise missing("interactive['type']")
    body = content.get("body")
    if kind in ("button", "list", "cta_url") or body is not None:
        _text(
            _object(body, "interactive['body']"),
            "text",
            "interactive['body']['text']",
            limits.INTERACTIVE_BODY_MAX,
        )
    footer = content.get("footer")
    if footer is not None:
        _text(
            _object(footer, "interactive['footer']"),
            "text",
            "interactive['footer']['text']",
            limits.INTERACTIVE_FOOTER_MAX,
        )
    header = content.get("header")
    if header is not None:
        header = _object(header, "interactive['header']")
        header_type = header.get("type")
        if header_type == "text":
            _text(header, "text", "interactive['header']['text']", limits.INTERACTIVE_HEADER_TEXT_MAX)
        elif (
            header_type in vocabulary.INTERACTIVE_MEDIA_HEADER_TYPES
            and kind in vocabulary.INTERACTIVE_MEDIA_HEADER_KINDS
        ):
            _media_object(
                header_type,
                _object(header.get(header_type), f"interactive['header']['{header_type}']"),
                f"interactive['header']['{header_type}']",
                media_lookup,
            )
        elif header_type is None:
            raise missing("interactive['header']['type']")
        else:
            raise invalid(
                f"interactive['header']['type'] {header_type!r} is not allowed for {kind} messages."
            )
    action = _object(content.get("action"), "interactive['action']")
    if kind == "button":
        _reply_buttons(action)
    elif kind == "list":
        _list(action)
    elif kind == "cta_url":
        params = _object(action.get("parameters"), "interactive['action']['parameters']")
        _text(
            params,
            "display_text",
            "interactive['action']['parameters']['display_text']",
            limits.CTA_URL_DISPLAY_TEXT_MAX,
        )
        if not grammar.is_http_url(params.get("url")):
            raise invalid("interactive['action']['parameters']['url'] must be an absolute http(s) URL.")
    elif kind not in ("location_request_message", "flow", "product", "product_list", "address_message"):
        raise GraphError(100, f"Param interactive['type'] {kind!r} is not a known interactive type.")


def _reply_buttons(action: dict[str, Any]) -> None:
    buttons = _count(
        action.get("buttons"),
        "interactive['action']['buttons']",
        limits.REPLY_BUTTONS_MIN,
        limits.REPLY_BUTTONS_MAX,
        "buttons",
    )
    titles: set[str] = set()
    ids: set[str] = set()
    for i, button in enumerate(buttons):
        name = f"interactive['action']['buttons'][{i}]"
        entry = _object(button, name)
        if entry.get("type", "reply") != "reply":
            raise invalid(f"{name}['type'] must be 'reply'.")
        reply = _object(entry.get("reply"), f"{name}['reply']")
        title = _text(reply, "title", f"{name}['reply']['title']", limits.REPLY_BUTTON_TITLE_MAX)
        button_id = _text(reply, "id", f"{name}['reply']['id']", limits.REPLY_BUTTON_ID_MAX)
        if title in titles:
            raise invalid(f"{name}['reply']['title']: button titles must be unique ({title!r} repeats).")
        if button_id in ids:
            raise invalid(f"{name}['reply']['id']: button ids must be unique ({button_id!r} repeats).")
        titles.add(str(title))
        ids.add(str(button_id))


def _list(action: dict[str, Any]) -> None:
    _text(action, "button", "interactive['action']['button']", limits.LIST_BUTTON_TEXT_MAX)
    sections = _count(
        action.get("sections"),
        "interactive['action']['sections']",
        limits.LIST_SECTIONS_MIN,
        limits.LIST_SECTIONS_MAX,
        "sections",
    )
    rows_total = 0
    row_ids: set[str] = set()
    for i, section in enumerate(sections):
        name = f"interactive['action']['sections'][{i}]"
        entry = _object(section, name)
        _text(entry, "title", f"{name}['title']", limits.LIST_SECTION_TITLE_MAX, required=len(sections) > 1)
        rows = entry.get("rows")
        if not isinstance(rows, list) or not rows:
            raise missing(f"{name}['rows']")
        rows_total += len(rows)
        for j, row in enumerate(rows):
            row_name = f"{name}['rows'][{j}]"
            row_entry = _object(row, row_name)
            row_id = _text(row_entry, "id", f"{row_name}['id']", limits.LIST_ROW_ID_MAX)
            _text(row_entry, "title", f"{row_name}['title']", limits.LIST_ROW_TITLE_MAX)
            _text(
                row_entry,
                "description",
                f"{row_name}['description']",
                limits.LIST_ROW_DESCRIPTION_MAX,
                required=False,
            )
            if row_id in row_ids:
                raise invalid(f"{row_name}['id']: row ids must be unique ({row_id!r} repeats).")
            row_ids.add(str(row_id))
    if rows_total > limits.LIST_ROWS_TOTAL_MAX:
        raise invalid(
            f"interactive['action']['sections']: {rows_total} rows in all; at most "
            f"{limits.LIST_ROWS_TOTAL_MAX} are allowed."
        )


# --- templates: sending --------------------------------------------------------------------------


def _template_shape(content: dict[str, Any]) -> None:
    _text(content, "name", "template['name']", limits.TEMPLATE_NAME_MAX)
    language = _object(content.get("language"), "template['language']")
    _text(language, "code", "template['language']['code']", None)
    components = content.get("components", [])
    if not isinstance(components, list):
        raise GraphError(100, "Param template['components'] must be an array.")


def placeholders(text: str | None) -> list[str]:
    """The placeholders of a template text, in order (``["1", "2"]`` or ``["name"]``)."""
    return _PLACEHOLDER.findall(text or "")


def _component(components: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((c for c in components if str(c.get("type", "")).upper() == kind), None)


def check_template_send(template: Any, content: dict[str, Any]) -> None:
    """Check a template message against the template it names (which exists and is approved)."""
    sent = content.get("components") or []
    defined = template.components
    for kind in ("HEADER", "BODY"):
        definition = _component(defined, kind) or {}
        given = next((c for c in sent if str(c.get("type", "")).upper() == kind), None)
        params = list((given or {}).get("parameters") or [])
        header_format = str(definition.get("format", "TEXT")).upper() if kind == "HEADER" else "TEXT"
        if kind == "HEADER" and definition and header_format in ("IMAGE", "VIDEO", "DOCUMENT"):
            media_kind = header_format.lower()
            if len(params) != 1:
                raise GraphError(
                    132012 if not params else 132000,
                    f"header: the template's {header_format} header needs one {media_kind} parameter, "
                    f"{len(params)} given.",
                )
            param = params[0]
            if (
                not isinstance(param, dict)
                or param.get("type") != media_kind
                or not isinstance(param.get(media_kind), dict)
            ):
                raise GraphError(132012, f"header: parameter must be of type {media_kind}.")
            media = param[media_kind]
            if not (media.get("id") or grammar.is_http_url(media.get("link"))):
                raise invalid(f"header: the {media_kind} parameter needs an id or an http(s) link.")
            continue
        expected = placeholders(definition.get("text"))
        if len(params) != len(expected):
            raise GraphError(
                132000,
                f"{kind.lower()}: number of localizable_params ({len(params)}) does not match the expected "
                f"number of params ({len(expected)})",
            )
        limit = (
            limits.TEMPLATE_HEADER_PARAMETER_MAX if kind == "HEADER" else limits.TEMPLATE_BODY_PARAMETER_MAX
        )
        named = template.parameter_format == "NAMED"
        for i, param in enumerate(params):
            if not isinstance(param, dict) or param.get("type", "text") != "text":
                if isinstance(param, dict) and param.get("type") in ("currency", "date_time"):
                    continue
                raise GraphError(132012, f"{kind.lower()}: parameter {i + 1} must be of type text.")
            value = param.get("text")
            if not isinstance(value, str) or not value.strip():
                raise missing(f"template['components'][{kind.lower()}]['parameters'][{i}]['text']")
            if len(value) > limit:
                raise GraphError(
                    132005, f"{kind.lower()}: parameter {i + 1} is {len(value)} characters; at most {limit}."
                )
            if named and param.get("parameter_name") not in expected:
                raise GraphError(
                    132000,
                    f"{kind.lower()}: parameter_name {param.get('parameter_name')!r} is not in the template.",
                )


# --- templates: creating -------------------------------------------------------------------------


def validate_template_definition(body: Any) -> dict[str, Any]:
    """Check a template submitted for review; returns the fields to store."""
    spec = _object(body, "body")
    name = spec.get("name")
    if not name:
        raise GraphError(100, "The parameter name is required.")
    if (
        not isinstance(name, str)
        or len(name) > limits.TEMPLATE_NAME_MAX
        or not grammar.TEMPLATE_NAME_PATTERN.match(name)
    ):
        raise GraphError(
            100,
            "Param name must contain only lowercase letters, numbers and underscores, and be at most "
            f"{limits.TEMPLATE_NAME_MAX} characters.",
            subcode=2388043,
        )
    language = spec.get("language")
    if not language or not isinstance(language, str):
        raise GraphError(100, "The parameter language is required.")
    category = str(spec.get("category") or "").upper()
    if category not in vocabulary.TEMPLATE_CATEGORIES:
        raise GraphError(
            100, f"Param category must be one of {{{', '.join(vocabulary.TEMPLATE_CATEGORIES)}}}."
        )
    components = spec.get("components")
    if not isinstance(components, list) or not components:
        raise GraphError(100, "The parameter components is required.")
    body_component = _component(components, "BODY")
    if body_component is None or not body_component.get("text"):
        raise GraphError(100, "A template needs a BODY component with text.", subcode=2388072)
    expected = placeholders(body_component["text"])
    example = body_component.get("example") or {}
    if str(spec.get("parameter_format") or "").upper() == "NAMED":
        samples = example.get("body_text_named_params") or []
    else:
        rows = example.get("body_text") or [[]]
        samples = rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], list) else []
    if expected and len(samples) != len(expected):
        raise GraphError(
            100,
            f"components[BODY]: {len(expected)} variable(s) need as many sample values in example.body_text.",
            subcode=2388043,
        )
    text_limits = {
        "HEADER": limits.TEMPLATE_HEADER_TEXT_MAX,
        "BODY": limits.TEMPLATE_BODY_TEXT_MAX,
        "FOOTER": limits.TEMPLATE_FOOTER_TEXT_MAX,
    }
    for component in components:
        kind = str(component.get("type", "")).upper() if isinstance(component, dict) else ""
        if kind in text_limits and component.get("text") and len(component["text"]) > text_limits[kind]:
            raise too_long(f"components[{kind}]['text']", text_limits[kind])
        if kind == "HEADER":
            header_format = str(component.get("format", "TEXT")).upper()
            if header_format not in ("TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION"):
                raise invalid(f"components[HEADER]['format'] {header_format!r} is not a header format.")
        if kind == "BUTTONS":
            buttons = component.get("buttons") or []
            if len(buttons) > limits.TEMPLATE_BUTTONS_MAX:
                raise invalid(
                    f"components[BUTTONS]: {len(buttons)} buttons; at most {limits.TEMPLATE_BUTTONS_MAX}."
                )
            for button in buttons:
                if len(str(button.get("text", ""))) > limits.TEMPLATE_BUTTON_LABEL_MAX:
                    raise too_long("components[BUTTONS]['text']", limits.TEMPLATE_BUTTON_LABEL_MAX)
        elif kind not in ("HEADER", "BODY", "FOOTER"):
            raise invalid(f"components: unknown component type {component.get('type')!r}.")
    parameter_format = spec.get("parameter_format")
    return {
        "name": name,
        "language": language,
        "category": category,
        "components": components,
        "parameter_format": str(parameter_format).upper() if parameter_format else None,
    }


# --- business profile ----------------------------------------------------------------------------

_PROFILE_LIMITS = {
    "about": limits.PROFILE_ABOUT_MAX,
    "address": limits.PROFILE_ADDRESS_MAX,
    "description": limits.PROFILE_DESCRIPTION_MAX,
    "email": limits.PROFILE_EMAIL_MAX,
}
_PROFILE_FIELDS = {*_PROFILE_LIMITS, "websites", "vertical", "profile_picture_handle", "messaging_product"}


def validate_profile_update(body: Any) -> dict[str, Any]:
    """Check a business profile update; returns the fields to change."""
    spec = _object(body, "body")
    if spec.get("messaging_product") != "whatsapp":
        raise GraphError(100, "The parameter messaging_product is required.")
    unknown = set(spec) - _PROFILE_FIELDS
    if unknown:
        raise GraphError(100, f"Param {sorted(unknown)[0]} is not a business profile field.")
    for key, limit in _PROFILE_LIMITS.items():
        if key in spec and len(str(spec[key])) > limit:
            raise too_long(key, limit)
    websites = spec.get("websites")
    if websites is not None:
        if not isinstance(websites, list) or len(websites) > limits.PROFILE_WEBSITES_MAX:
            raise invalid(f"websites: at most {limits.PROFILE_WEBSITES_MAX} websites are allowed.")
        for site in websites:
            if not grammar.is_http_url(site) or len(site) > limits.PROFILE_WEBSITE_MAX:
                raise invalid(
                    f"websites: {site!r} is not an http(s) URL of at most "
                    f"{limits.PROFILE_WEBSITE_MAX} characters."
                )
    return {k: v for k, v in spec.items() if k not in ("messaging_product", "profile_picture_handle")}
