"""What WhatsApp refuses, checked the way WhatsApp checks it, answered with Graph's error bodies.

Every number, list of allowed values and text rule comes from :mod:`airflow_provider_whatsapp.spec`
(``limits``, ``vocabulary``, ``grammar``); the titles and statuses of refusals from its error table,
``spec.error_codes``. A refusal is a :class:`GraphError`
carrying the HTTP status, the Graph code and the ``error_data.details`` text WhatsApp would send:
a missing parameter, a value out of range, a malformed parameter or a string over its length, and the
template codes, each named in ``spec.error_codes``.
"""

from __future__ import annotations

import secrets
from typing import Any

from airflow_provider_whatsapp.spec import error_codes, grammar, interactive_actions, limits, vocabulary


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
            error["error_data"] = {"messaging_product": vocabulary.MESSAGING_PRODUCT, "details": self.details}
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
        return {"error": error}


def missing(name: str) -> GraphError:
    return GraphError(error_codes.MISSING_PARAMETER, f"The parameter {name} is required.")


def invalid(details: str) -> GraphError:
    return GraphError(error_codes.INVALID_PARAMETER_VALUE, details)


def too_long(name: str, limit: int) -> GraphError:
    return GraphError(100, f"Param {name} must be at most {limit} characters long.")


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
    """``obj[key]`` as a string of at most ``limit`` characters; a blank one counts as absent."""
    value = obj.get(key)
    if value is None or (isinstance(value, str) and grammar.is_blank(value)):
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


def _one_of(value: Any, allowed: tuple[str, ...] | frozenset[str], name: str) -> None:
    if value not in allowed:
        raise GraphError(100, f"Param {name} must be one of {{{', '.join(sorted(allowed))}}}, got {value!r}.")


def recipient(to: Any) -> str:
    """The ``wa_id`` of a ``to`` value: digits only, as many as :mod:`~..spec.grammar` allows."""
    if to is None or to == "":
        raise missing("to")
    digits = grammar.recipient_digits(str(to))
    if digits is None:
        raise GraphError(
            100,
            f"Param to ({to!r}) is not a valid WhatsApp phone number: give the number in international "
            f"format, {limits.RECIPIENT_MIN_DIGITS}-{limits.RECIPIENT_MAX_DIGITS} digits.",
        )
    return digits


def placeholders(text: str | None) -> list[str]:
    """The placeholders of a template text, in order (``["1", "2"]`` or ``["name"]``)."""
    return grammar.placeholders(text)


# --- messages ------------------------------------------------------------------------------------


def validate_message(payload: Any, media_lookup: Any) -> str:
    """Check an outgoing message as WhatsApp does; returns the recipient's ``wa_id``.

    :param media_lookup: ``media_id -> Media | None`` so that a media id must exist.
    """
    body = _object(payload, "body")
    _messaging_product(body)
    _one_of(
        body.get("recipient_type", vocabulary.RECIPIENT_INDIVIDUAL),
        vocabulary.RECIPIENT_TYPES,
        "recipient_type",
    )
    wa_id = recipient(body.get("to"))
    kind = body.get("type", "text")
    if kind not in vocabulary.MESSAGE_TYPES:
        raise GraphError(
            100,
            f"Param type must be one of {{{', '.join(sorted(vocabulary.MESSAGE_TYPES))}}}.",
        )
    context = body.get("context")
    if context is not None and not (isinstance(context, dict) and isinstance(context.get("message_id"), str)):
        raise GraphError(100, "Param context['message_id'] must be a message id (wamid).")
    if kind == "contacts":  # the only type whose content is an array
        _contacts(body.get("contacts"))
        return wa_id
    content = _object(body.get(kind), kind)
    if kind == "text":
        _text(content, "body", "text['body']", limits.TEXT_BODY_MAX)
    elif kind in vocabulary.MEDIA_TYPES:
        _media_object(kind, content, kind, media_lookup)
    elif kind == "location":
        _location(content)
    elif kind == "interactive":
        _interactive(content, media_lookup)
    elif kind == "reaction":
        _reaction(content)
    elif kind == "template":
        _template_shape(content)
    return wa_id


def _messaging_product(body: dict[str, Any]) -> None:
    if body.get("messaging_product") != vocabulary.MESSAGING_PRODUCT:
        if "messaging_product" not in body:
            raise GraphError(100, "The parameter messaging_product is required.")
        raise GraphError(100, f"Param messaging_product must be '{vocabulary.MESSAGING_PRODUCT}'.")


def validate_read_receipt(body: dict[str, Any]) -> str:
    """Check a read receipt (``status: read``, optionally with a typing indicator); returns its message id."""
    _messaging_product(body)
    message_id = _text(body, "message_id", "message_id", None)
    indicator = body.get("typing_indicator")
    if indicator is not None:
        name = "typing_indicator"
        _one_of(_object(indicator, name).get("type"), vocabulary.TYPING_INDICATOR_TYPES, f"{name}['type']")
    return str(message_id)


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
    if "filename" in content and kind not in vocabulary.NAMED_MEDIA:
        raise GraphError(100, f"Param {name}['filename'] is only allowed for documents.")


def _coordinates(content: dict[str, Any], name: str) -> None:
    for key, (low, high) in (("latitude", limits.LATITUDE_RANGE), ("longitude", limits.LONGITUDE_RANGE)):
        value = content.get(key)
        if value is None or value == "":
            raise missing(f"{name}['{key}']")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GraphError(100, f"Param {name}['{key}'] must be a number, got {value!r}.")
        if not low <= value <= high:
            raise invalid(f"{name}['{key}'] is {value}; it must be between {low:g} and {high:g}.")


def _location(content: dict[str, Any]) -> None:
    _coordinates(content, "location")
    for key in ("name", "address"):
        if key in content and content[key] is not None and not isinstance(content[key], str):
            raise GraphError(100, f"Param location['{key}'] must be a string.")


def _reaction(content: dict[str, Any]) -> None:
    _text(content, "message_id", "reaction['message_id']", None)
    emoji = content.get("emoji")
    if emoji is None:
        raise missing("reaction['emoji']")
    if not isinstance(emoji, str) or not grammar.is_single_emoji(emoji):
        raise invalid("reaction['emoji'] must be a single emoji (or empty to remove the reaction).")


# --- contacts ------------------------------------------------------------------------------------


def _contacts(contacts: Any) -> None:
    """An array of contact cards, each with a name and typed phones, emails, URLs and addresses."""
    items = _count(contacts, "contacts", limits.CONTACTS_MIN, limits.CONTACTS_MAX, "contacts")
    for i, contact in enumerate(items):
        name = f"contacts[{i}]"
        entry = _object(contact, name)
        _text(
            _object(entry.get("name"), f"{name}['name']"),
            "formatted_name",
            f"{name}['name']['formatted_name']",
            None,
        )
        _contact_entries(entry, "phones", "phone", vocabulary.CONTACT_PHONE_TYPES, name)
        _contact_entries(entry, "emails", "email", vocabulary.CONTACT_ENTRY_TYPES, name)
        _contact_entries(entry, "urls", "url", vocabulary.CONTACT_ENTRY_TYPES, name)
        _contact_entries(entry, "addresses", None, vocabulary.CONTACT_ENTRY_TYPES, name)
        if entry.get("org") is not None:
            _object(entry["org"], f"{name}['org']")
        birthday = entry.get("birthday")
        if birthday is not None and not (
            isinstance(birthday, str) and grammar.BIRTHDAY_PATTERN.match(birthday)
        ):
            raise invalid(f"{name}['birthday'] must be a date as YYYY-MM-DD, got {birthday!r}.")


def _contact_entries(
    contact: dict[str, Any], key: str, required: str | None, types: tuple[str, ...], name: str
) -> None:
    entries = contact.get(key)
    if entries is None:
        return
    if not isinstance(entries, list):
        raise GraphError(100, f"Param {name}['{key}'] must be an array.")
    for j, item in enumerate(entries):
        entry_name = f"{name}['{key}'][{j}]"
        entry = _object(item, entry_name)
        if required is not None:
            _text(entry, required, f"{entry_name}['{required}']", None)
        if entry.get("type") is not None:
            _one_of(entry["type"], types, f"{entry_name}['type']")


# --- interactive ---------------------------------------------------------------------------------


def _interactive(content: dict[str, Any], media_lookup: Any) -> None:
    kind = content.get("type")
    if not kind:
        raise missing("interactive['type']")
    if kind not in vocabulary.INTERACTIVE_TYPES:
        raise GraphError(100, f"Param interactive['type'] {kind!r} is not a known interactive type.")
    body = content.get("body")
    if kind in vocabulary.INTERACTIVE_TYPES_WITH_BODY or body is not None:
        _text(
            _object(body, "interactive['body']"),
            "text",
            "interactive['body']['text']",
            limits.INTERACTIVE_BODY_MAX,
        )
    footer = content.get("footer")
    if footer is not None:
        name = "interactive['footer']"
        _text(_object(footer, name), "text", f"{name}['text']", limits.INTERACTIVE_FOOTER_MAX)
    if content.get("header") is not None:
        _interactive_header(_object(content["header"], "interactive['header']"), kind, media_lookup)
    if kind in _INTERACTIVE_ACTIONS:
        _INTERACTIVE_ACTIONS[kind](_object(content.get("action"), "interactive['action']"))
    else:
        _passthrough_action(kind, content.get("action"))


def _interactive_header(header: dict[str, Any], kind: str, media_lookup: Any) -> None:
    name = "interactive['header']"
    header_type = header.get("type")
    if header_type is None:
        raise missing(f"{name}['type']")
    if header_type == "text":
        _text(header, "text", f"{name}['text']", limits.INTERACTIVE_HEADER_TEXT_MAX)
    elif (
        header_type in vocabulary.INTERACTIVE_MEDIA_HEADER_TYPES
        and kind in vocabulary.INTERACTIVE_MEDIA_HEADER_KINDS
    ):
        media_name = f"{name}['{header_type}']"
        _media_object(header_type, _object(header.get(header_type), media_name), media_name, media_lookup)
    else:
        raise invalid(f"{name}['type'] {header_type!r} is not allowed for {kind} messages.")


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


def _cta_url(action: dict[str, Any]) -> None:
    name = "interactive['action']['parameters']"
    params = _object(action.get("parameters"), name)
    _text(params, "display_text", f"{name}['display_text']", limits.CTA_URL_DISPLAY_TEXT_MAX)
    if not grammar.is_http_url(params.get("url")):
        raise invalid(f"{name}['url'] must be an absolute http(s) URL.")


#: The modelled kinds' actions; the others' are :func:`_passthrough_action`'s.
_INTERACTIVE_ACTIONS = {
    vocabulary.INTERACTIVE_BUTTON: _reply_buttons,
    vocabulary.INTERACTIVE_LIST: _list,
    vocabulary.INTERACTIVE_CTA_URL: _cta_url,
}


def _passthrough_action(kind: str, action: Any) -> None:
    """The action of a kind the models send as given: the spec's one check, answered as Graph does."""
    problem = interactive_actions.check_action(kind, action)
    if problem is None:
        return
    name = interactive_actions.bracketed(problem.path)
    if problem.code == error_codes.MISSING_PARAMETER:
        raise missing(name)
    if problem.code == error_codes.INVALID_PARAMETER_VALUE:
        raise invalid(f"{name}: {problem.rule}.")
    raise GraphError(problem.code, f"Param {name} {problem.rule}.")


# --- templates: sending --------------------------------------------------------------------------


def _template_shape(content: dict[str, Any]) -> None:
    _text(content, "name", "template['name']", limits.TEMPLATE_NAME_MAX)
    language = _object(content.get("language"), "template['language']")
    _text(language, "code", "template['language']['code']", None)
    components = content.get("components", [])
    if not isinstance(components, list):
        raise GraphError(100, "Param template['components'] must be an array.")
    for i, component in enumerate(components):
        name = f"template['components'][{i}]"
        kind = str(_object(component, name).get("type", "")).lower()
        _one_of(kind, vocabulary.TEMPLATE_SEND_COMPONENT_TYPES, f"{name}['type']")
        parameters = component.get("parameters", [])
        if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
            raise GraphError(100, f"Param {name}['parameters'] must be an array of objects.")


def _component(components: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next(
        (c for c in components if isinstance(c, dict) and str(c.get("type", "")).upper() == kind), None
    )


def check_template_send(template: Any, content: dict[str, Any]) -> None:
    """Check a template message against the template it names (which exists and is approved)."""
    sent = content.get("components") or []
    _check_header(template, _component(sent, "HEADER"))
    _check_body(template, _component(sent, "BODY"))
    _check_buttons(template, [c for c in sent if str(c.get("type", "")).upper() == "BUTTON"])


def _check_header(template: Any, given: dict[str, Any] | None) -> None:
    definition = _component(template.components, "HEADER")
    params = list((given or {}).get("parameters") or [])
    if definition is None:
        if params:
            raise GraphError(
                error_codes.TEMPLATE_PARAMETER_COUNT,
                f"header: the template has no header; {len(params)} parameter(s) given.",
            )
        return
    header_format = str(definition.get("format", "TEXT")).upper()
    if header_format == "TEXT":
        _check_text_parameters(template, "header", placeholders(definition.get("text")), params)
        return
    kind = header_format.lower()
    if len(params) != 1:
        raise GraphError(
            error_codes.TEMPLATE_PARAMETER_FORMAT if not params else error_codes.TEMPLATE_PARAMETER_COUNT,
            f"header: the template's {header_format} header needs one {kind} parameter, {len(params)} given.",
        )
    param = params[0]
    if param.get("type") != kind or not isinstance(param.get(kind), dict):
        raise GraphError(error_codes.TEMPLATE_PARAMETER_FORMAT, f"header: parameter must be of type {kind}.")
    if header_format == "LOCATION":
        _coordinates(param[kind], "header: location")
        return
    media = param[kind]
    if not (media.get("id") or grammar.is_http_url(media.get("link"))):
        raise invalid(f"header: the {kind} parameter needs an id or an http(s) link.")


def _check_body(template: Any, given: dict[str, Any] | None) -> None:
    definition = _component(template.components, "BODY") or {}
    text = definition.get("text")
    if template.category == vocabulary.TEMPLATE_AUTHENTICATION:
        text = vocabulary.AUTHENTICATION_BODY_TEXT  # WhatsApp writes it; the code is its one placeholder
    _check_text_parameters(template, "body", placeholders(text), list((given or {}).get("parameters") or []))


def _check_text_parameters(template: Any, part: str, expected: list[str], params: list[Any]) -> None:
    if len(params) != len(expected):
        raise GraphError(
            error_codes.TEMPLATE_PARAMETER_COUNT,
            f"{part}: number of localizable_params ({len(params)}) does not match the expected "
            f"number of params ({len(expected)})",
        )
    limit = limits.TEMPLATE_HEADER_PARAMETER_MAX if part == "header" else limits.TEMPLATE_BODY_PARAMETER_MAX
    # A text header takes text only; a body also currency and date_time (which carry a fallback text).
    allowed = ("text",) if part == "header" else vocabulary.TEMPLATE_PARAMETERS_BY_PART[part]
    named = template.parameter_format == vocabulary.TEMPLATE_NAMED
    for i, param in enumerate(params):
        kind = param.get("type", "text")
        if kind != "text":
            if kind in allowed and isinstance(param.get(kind), dict):
                continue
            raise GraphError(
                error_codes.TEMPLATE_PARAMETER_FORMAT, f"{part}: parameter {i + 1} must be of type text."
            )
        value = param.get("text")
        if not isinstance(value, str) or grammar.is_blank(value):
            raise missing(f"template['components'][{part}]['parameters'][{i}]['text']")
        if len(value) > limit:
            raise GraphError(
                error_codes.TEMPLATE_TEXT_TOO_LONG,
                f"{part}: parameter {i + 1} is {len(value)} characters; at most {limit}.",
            )
        if named and param.get("parameter_name") not in expected:
            raise GraphError(
                error_codes.TEMPLATE_PARAMETER_COUNT,
                f"{part}: parameter_name {param.get('parameter_name')!r} is not in the template.",
            )


def _defined_buttons(template: Any) -> list[dict[str, Any]]:
    component = _component(template.components, "BUTTONS") or {}
    return [b for b in component.get("buttons") or [] if isinstance(b, dict)]


def _button_needs_parameter(button: dict[str, Any]) -> bool:
    """A URL button ending in a placeholder, an OTP button (the code) and a coupon code need a parameter."""
    kind = str(button.get("type", "")).upper()
    if kind == "URL":
        return bool(grammar.PLACEHOLDER_AT_END.search(str(button.get("url") or "")))
    return kind in vocabulary.TEMPLATE_BUTTONS_ALWAYS_FILLED


def _check_buttons(template: Any, sent: list[dict[str, Any]]) -> None:
    """Each button component names a button of the template by ``index``, with its sub_type and parameter.

    An index with no button there is a value the template cannot take (``INVALID_PARAMETER_VALUE``). A
    button that needs a parameter (a variable URL, an OTP code) and gets none is a parameter-count
    mismatch (``TEMPLATE_PARAMETER_COUNT``).
    """
    defined = _defined_buttons(template)
    given: set[int] = set()
    for component in sent:
        index = _button_index(component.get("index"), len(defined))
        button = defined[index]
        kind = str(button.get("type", "")).upper()
        name = f"button at index {index} ({kind})"
        expected = vocabulary.TEMPLATE_BUTTON_SUB_TYPES.get(kind)
        sub_type = str(component.get("sub_type", "")).lower()
        if expected is None or sub_type != expected:
            raise invalid(f"{name}: sub_type {sub_type!r} does not match; the button takes {expected!r}.")
        params = list(component.get("parameters") or [])
        if len(params) != 1:
            raise GraphError(
                error_codes.TEMPLATE_PARAMETER_COUNT,
                f"{name}: number of parameters ({len(params)}) does not match the expected 1.",
            )
        param_type = vocabulary.TEMPLATE_BUTTON_PARAMETER[sub_type]
        value = params[0].get(param_type)
        if params[0].get("type") != param_type or value is None:
            raise GraphError(
                error_codes.TEMPLATE_PARAMETER_FORMAT, f"{name}: the parameter must be of type {param_type}."
            )
        if param_type == "action":
            _object(value, f"{name}: parameter action")
        elif not isinstance(value, str) or grammar.is_blank(value):
            raise GraphError(
                error_codes.TEMPLATE_PARAMETER_FORMAT,
                f"{name}: the {param_type} parameter must be a non-empty string.",
            )
        given.add(index)
    for index, button in enumerate(defined):
        if index not in given and _button_needs_parameter(button):
            kind = str(button.get("type", "")).upper()
            raise GraphError(
                error_codes.TEMPLATE_PARAMETER_COUNT,
                f"button at index {index} ({kind}): number of parameters (0) does not match the expected 1; "
                f"send a button component with sub_type {vocabulary.TEMPLATE_BUTTON_SUB_TYPES[kind]!r} and "
                f"index {index}.",
            )


def _button_index(value: Any, count: int) -> int:
    if isinstance(value, bool) or value is None:
        raise missing("template button component index") if value is None else invalid("index must be 0-9.")
    text = str(value)
    if not (text.isascii() and text.isdigit()):
        raise invalid(f"button index {value!r} is not a number.")
    index = int(text)
    if index >= count:
        raise invalid(
            f"button index {index}: the template has {count} button(s), so no button at that index."
        )
    return index


# --- templates: creating -------------------------------------------------------------------------


def validate_template_definition(body: Any) -> dict[str, Any]:
    """Check a template submitted for review; returns the fields to store."""
    spec = _object(body, "body")
    name = spec.get("name")
    if not name:
        raise GraphError(100, "The parameter name is required.")
    if not isinstance(name, str) or not grammar.is_template_name(name):
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
    _one_of(category, vocabulary.TEMPLATE_CATEGORIES, "category")
    parameter_format = str(spec.get("parameter_format") or vocabulary.TEMPLATE_POSITIONAL).upper()
    _one_of(parameter_format, vocabulary.TEMPLATE_PARAMETER_FORMATS, "parameter_format")
    components = spec.get("components")
    if not isinstance(components, list) or not components:
        raise GraphError(100, "The parameter components is required.")
    for i, component in enumerate(components):
        kind = str(_object(component, f"components[{i}]").get("type", "")).upper()
        if kind not in vocabulary.TEMPLATE_COMPONENT_TYPES:
            raise invalid(f"components: unknown component type {component.get('type')!r}.")
        _DEFINITION_PARTS[kind](component, category, parameter_format)
    if _component(components, "BODY") is None:
        raise GraphError(100, "A template needs a BODY component.", subcode=2388072)
    return {
        "name": name,
        "language": language,
        "category": category,
        "components": components,
        "parameter_format": parameter_format,
    }


def _definition_text(component: dict[str, Any], kind: str, limit: int, *, required: bool) -> str | None:
    return _text(component, "text", f"components[{kind}]['text']", limit, required=required)


def _definition_header(component: dict[str, Any], category: str, parameter_format: str) -> None:
    header_format = str(component.get("format", "TEXT")).upper()
    if header_format not in vocabulary.TEMPLATE_HEADER_FORMATS:
        raise invalid(f"components[HEADER]['format'] {header_format!r} is not a header format.")
    if header_format == "TEXT":
        text = _definition_text(component, "HEADER", limits.TEMPLATE_HEADER_TEXT_MAX, required=True)
        example = component.get("example") or {}
        key = "header_text_named_params" if parameter_format == vocabulary.TEMPLATE_NAMED else "header_text"
        _check_samples("HEADER", placeholders(text), example.get(key))


def _definition_body(component: dict[str, Any], category: str, parameter_format: str) -> None:
    # An authentication template's body is WhatsApp's own text; the business only picks options.
    text = _definition_text(component, "BODY", limits.TEMPLATE_BODY_TEXT_MAX, required=False)
    if text is None and category != vocabulary.TEMPLATE_AUTHENTICATION:
        raise GraphError(100, "A template needs a BODY component with text.", subcode=2388072)
    example = component.get("example") or {}
    if parameter_format == vocabulary.TEMPLATE_NAMED:
        samples = example.get("body_text_named_params")
    else:
        rows = example.get("body_text")
        samples = rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], list) else None
    names = placeholders(text)
    _check_samples("BODY", names, samples)
    kinds = {grammar.placeholder_kind(name) for name in names}
    numbers = {int(name) for name in names if grammar.POSITIONAL_NAME.match(name)}
    if kinds - {parameter_format.lower()} or numbers != set(range(1, len(numbers) + 1)):
        raise invalid(
            f"components[BODY]: placeholders must follow the {parameter_format} format: {{{{1}}}}, "
            "{{2}}... numbered without gaps, or {{lowercase_name}}."
        )


def _check_samples(kind: str, expected: list[str], samples: Any) -> None:
    count = len(samples) if isinstance(samples, list) else 0
    if expected and count != len(expected):
        raise GraphError(
            100,
            f"components[{kind}]: {len(expected)} variable(s) need as many sample values in its example.",
            subcode=2388043,
        )


def _definition_footer(component: dict[str, Any], category: str, parameter_format: str) -> None:
    if category != vocabulary.TEMPLATE_AUTHENTICATION:
        _definition_text(component, "FOOTER", limits.TEMPLATE_FOOTER_TEXT_MAX, required=True)
        return
    minutes = component.get("code_expiration_minutes")
    low, high = limits.AUTH_CODE_EXPIRATION_MINUTES_MIN, limits.AUTH_CODE_EXPIRATION_MINUTES_MAX
    if minutes is not None and (
        isinstance(minutes, bool) or not isinstance(minutes, int) or not low <= minutes <= high
    ):
        raise invalid(
            f"components[FOOTER]['code_expiration_minutes'] must be a whole number from {low} to {high}."
        )


def _definition_buttons(component: dict[str, Any], category: str, parameter_format: str) -> None:
    buttons = _count(
        component.get("buttons"), "components[BUTTONS]['buttons']", 1, limits.TEMPLATE_BUTTONS_MAX, "buttons"
    )
    for i, button in enumerate(buttons):
        name = f"components[BUTTONS]['buttons'][{i}]"
        entry = _object(button, name)
        kind = str(entry.get("type", "")).upper()
        _one_of(kind, vocabulary.TEMPLATE_BUTTON_TYPES, f"{name}['type']")
        if (kind == vocabulary.TEMPLATE_BUTTON_OTP) != (category == vocabulary.TEMPLATE_AUTHENTICATION):
            raise invalid(
                f"{name}: OTP buttons belong to AUTHENTICATION templates, and only they may have them."
            )
        _text(
            entry,
            "text",
            f"{name}['text']",
            limits.TEMPLATE_BUTTON_LABEL_MAX,
            required=kind in vocabulary.TEMPLATE_LABELLED_BUTTONS,
        )
        if kind == "URL":
            url = str(_text(entry, "url", f"{name}['url']", None))
            if not grammar.is_http_url(url.replace("{{", "").replace("}}", "")):
                raise invalid(f"{name}['url'] must be an absolute http(s) URL.")
            if grammar.placeholders(url) and not _button_has_example(entry):
                raise GraphError(100, f"{name}: a URL with a variable needs an example URL.", subcode=2388043)
        elif kind == vocabulary.TEMPLATE_BUTTON_PHONE_NUMBER:
            _text(entry, "phone_number", f"{name}['phone_number']", None)
        elif kind == vocabulary.TEMPLATE_BUTTON_OTP:
            otp_type = entry.get("otp_type")
            _one_of(otp_type, vocabulary.TEMPLATE_OTP_TYPES, f"{name}['otp_type']")
            if otp_type in vocabulary.TEMPLATE_OTP_APP_TYPES and not entry.get("supported_apps"):
                _text(entry, "package_name", f"{name}['package_name']", None)
                _text(entry, "signature_hash", f"{name}['signature_hash']", None)


def _button_has_example(button: dict[str, Any]) -> bool:
    example = button.get("example")
    return isinstance(example, list) and bool(example) and all(isinstance(e, str) for e in example)


_DEFINITION_PARTS = {
    "HEADER": _definition_header,
    "BODY": _definition_body,
    "FOOTER": _definition_footer,
    "BUTTONS": _definition_buttons,
}
if set(_DEFINITION_PARTS) != set(vocabulary.TEMPLATE_COMPONENT_TYPES):
    # One checker per component type the vocabulary lists: a type added there must get its checker.
    raise RuntimeError(f"template parts {sorted(_DEFINITION_PARTS)} differ from the vocabulary's")


# --- business profile ----------------------------------------------------------------------------


def validate_profile_update(body: Any) -> dict[str, Any]:
    """Check a business profile update; returns the fields to change."""
    spec = _object(body, "body")
    _messaging_product(spec)
    unknown = set(spec) - {*vocabulary.PROFILE_FIELDS, "messaging_product"}
    if unknown:
        raise GraphError(100, f"Param {sorted(unknown)[0]} is not a business profile field.")
    for key, limit in limits.PROFILE_TEXT_MAX.items():
        if key in spec:
            _text(spec, key, key, limit, required=False)
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
