"""Hypothesis strategies for Graph ``/messages`` payloads, near and across every limit in ``spec.limits``.

Each strategy draws a :class:`Case`: the payload a DAG would give ``WhatsAppSendMessageOperator(message=...)``
(the Graph wire form, without ``to`` and ``messaging_product``) and a recipient. A payload starts from a
well-formed message whose texts and counts sit at ``limit - 1``, ``limit`` or ``limit + 1`` (or blank,
invisible, unicode), then may get one structural mutation anywhere inside the message object: a field
deleted, a value of the wrong type, an unknown field, or a list item repeated (duplicate ids, one item
too many).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from hypothesis import strategies as st

from airflow_provider_whatsapp.spec import limits, vocabulary

#: Marks an optional field left out.
ABSENT: Any = object()


@dataclass(frozen=True)
class Case:
    """One generated send: ``label`` names the message kind (``interactive:list``, ``image``...)."""

    label: str
    payload: dict[str, Any]
    to: str
    mutation: str = field(default="", compare=False)


# --- text near a limit ---------------------------------------------------------------------------

# Units a text is built from: ASCII, combining marks, CJK, emoji of several code points, anything.
_VISIBLE_UNITS = st.sampled_from(["x", "Ä", "日本", "👍🏽", "🇧🇷", "e\u0301", "👨\u200d👩\u200d👧", "ok "])
_UNITS = st.one_of(
    _VISIBLE_UNITS,
    _VISIBLE_UNITS,
    _VISIBLE_UNITS,
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=3),
)
#: Texts that show nothing: empty, whitespace, zero-width and filler characters.
BLANK = st.sampled_from(["", " ", "\t\n", "\u200b", "\u3164", "\u2800", "\ufeff", " \u200d "])


@st.composite
def _sized(draw: st.DrawFn, sizes: st.SearchStrategy[int]) -> str:
    # A long text is one short unit repeated and cut to size (code points, how WhatsApp and len() count):
    # drawing thousands of characters one by one would be slow and no more telling.
    size, unit = draw(sizes), draw(_UNITS)
    return (unit * (size // len(unit) + 1))[:size]


# Strategies are built once per limit: building them per draw costs hypothesis more than drawing.
@cache
def near(limit: int, *, low: int = 1) -> st.SearchStrategy[str]:
    """A text whose length is ``low``, ``limit - 1``, ``limit`` or in between, or ``limit + 1``."""
    edges = sorted({low, max(low, limit - 1), limit})
    # One text in ten is over its limit: a message has several texts, one over is enough to refuse it.
    over = st.integers(0, 9).map(lambda n: n == 5)
    fitting = st.one_of(st.sampled_from(edges), st.integers(low, limit))
    return _sized(over.flatmap(lambda is_over: st.just(limit + 1) if is_over else fitting))


# Hypothesis favours the ends of a range, so "rarely" is one value in its middle.
_ONE_IN_TWENTY = st.integers(0, 19).map(lambda n: n == 11)


@st.composite
def _sometimes_blank(draw: st.DrawFn, text: st.SearchStrategy[str]) -> str:
    # Rarely: a message has several texts, and one blank among them is enough to refuse it.
    return draw(BLANK) if draw(_ONE_IN_TWENTY) else draw(text)


@cache
def text_field(limit: int) -> st.SearchStrategy[str]:
    """A required text near its limit, one time in twenty blank."""
    return _sometimes_blank(near(limit))


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(ABSENT), strategy)


def obj(**fields: Any) -> dict[str, Any]:
    """A dict without the fields drawn as :data:`ABSENT`."""
    return {k: v for k, v in fields.items() if v is not ABSENT}


def counts(low: int, high: int) -> st.SearchStrategy[int]:
    """``low - 1``, ``low``, ``high``, ``high + 1`` or in between (never below 0)."""
    edges = sorted({max(0, low - 1), low, high, high + 1})
    return st.one_of(st.sampled_from(edges), st.integers(low, high), st.integers(low, high))


# --- recipients, URLs, media ---------------------------------------------------------------------


_DIGITS = st.integers(10**16, 10**17 - 1)
_STYLES = st.sampled_from(["plain", "plus", "spaces", "dashes", "parentheses"])
#: An index into a list whose length is known only while drawing (taken modulo that length).
_INDEX = st.integers(0, 9999)


@st.composite
def recipients(draw: st.DrawFn) -> str:
    """Phone numbers of 7, 8, 15 or 16 digits (or in between), written with separators."""
    lo, hi = limits.RECIPIENT_MIN_DIGITS, limits.RECIPIENT_MAX_DIGITS
    size = draw(st.one_of(st.sampled_from([lo - 1, lo, hi, hi + 1]), st.integers(lo, hi), st.just(11)))
    digits = str(draw(_DIGITS))[:size]
    style = draw(_STYLES)
    if style == "plain":
        return digits
    if style == "plus":
        return "+" + digits
    if style == "spaces":
        return "+" + " ".join(digits[i : i + 3] for i in range(0, len(digits), 3))
    if style == "dashes":
        return "-".join(digits[i : i + 4] for i in range(0, len(digits), 4))
    return f"+{digits[:1]} ({digits[1:4]}) {digits[4:]}"


GOOD_URLS = ["https://example.com/a.png", "http://cdn.example.org/x/y?z=1#f", "HTTPS://EXAMPLE.COM/B"]
BAD_URLS = ["ftp://example.com/a", "example.com/a.png", "https://", "https://exa mple.com/a", "/relative", ""]
urls = st.one_of(st.sampled_from(GOOD_URLS), st.sampled_from(GOOD_URLS), st.sampled_from(BAD_URLS))

#: A media id no upload returned: both sides must refuse it, but only the service can know.
UNKNOWN_MEDIA_ID = "999000111222333"


def media_source(media_type: str, media_ids: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    """``{"link": ...}`` or ``{"id": ...}`` of an uploaded file of this type (or, rarely, of none)."""
    by_id = st.sampled_from([media_ids[media_type], media_ids[media_type], UNKNOWN_MEDIA_ID])
    return st.one_of(urls.map(lambda u: {"link": u}), by_id.map(lambda i: {"id": i}))


# --- the message kinds ---------------------------------------------------------------------------


def text_message() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda body, preview: {"type": "text", "text": obj(body=body, preview_url=preview)},
        text_field(limits.TEXT_BODY_MAX),
        optional(st.booleans()),
    )


def media_message(media_type: str, media_ids: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    caption = optional(near(limits.MEDIA_CAPTION_MAX, low=0))
    filename = optional(st.sampled_from(["report.pdf", "Ünïcode name.txt", "a"]))

    def build(source: dict[str, Any], caption: Any, filename: Any) -> dict[str, Any]:
        content = dict(source)
        if media_type in vocabulary.CAPTIONED_MEDIA:
            content = obj(**content, caption=caption)
        if media_type in vocabulary.NAMED_MEDIA:
            content = obj(**content, filename=filename)
        return {"type": media_type, media_type: content}

    return st.builds(build, media_source(media_type, media_ids), caption, filename)


def _coordinate(low: float, high: float) -> st.SearchStrategy[float]:
    edges = [low, high, low - 1e-6, high + 1e-6, 0.0, -0.0]
    return st.one_of(st.sampled_from(edges), st.floats(low - 1, high + 1, allow_nan=False))


def location_message() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda lat, lon, name, address: {
            "type": "location",
            "location": obj(latitude=lat, longitude=lon, name=name, address=address),
        },
        _coordinate(*limits.LATITUDE_RANGE),
        _coordinate(*limits.LONGITUDE_RANGE),
        optional(near(100)),
        optional(near(100)),
    )


_PHONE_TYPES = st.sampled_from([*vocabulary.CONTACT_PHONE_TYPES, "FAX"])
_ENTRY_TYPES = st.sampled_from([*vocabulary.CONTACT_ENTRY_TYPES, "OTHER"])
_CONTACT = st.builds(
    lambda formatted, first, phones, emails, org, birthday, addresses: obj(
        name=obj(formatted_name=formatted, first_name=first),
        phones=phones,
        emails=emails,
        org=org,
        birthday=birthday,
        addresses=addresses,
    ),
    text_field(100),
    optional(near(30)),
    optional(st.lists(st.builds(lambda t: obj(phone="+1 415 555 0100", type=t), optional(_PHONE_TYPES)),
                      min_size=1, max_size=2)),
    optional(st.lists(st.builds(lambda t: obj(email="a@example.com", type=t), optional(_ENTRY_TYPES)),
                      min_size=1, max_size=2)),
    optional(st.just({"company": "Acme", "title": "Engineer"})),
    optional(st.sampled_from(["1990-01-31", "1990-01-31", "1990-01-31", "31/01/1990"])),
    optional(st.just([{"city": "Lisbon", "country_code": "PT", "type": "HOME"}])),
)  # fmt: skip


@st.composite
def _contacts(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(counts(limits.CONTACTS_MIN, limits.CONTACTS_MAX))
    return {"type": "contacts", "contacts": [draw(_CONTACT) for _ in range(size)]}


def contacts_message() -> st.SearchStrategy[dict[str, Any]]:
    return _contacts()


EMOJIS = ["👍", "👍🏽", "🇧🇷", "👨\u200d👩\u200d👧\u200d👦", "❤️", "", "ok", "👍👍", "1", "!" * 11, "🙂" * 10]


def reaction_message() -> st.SearchStrategy[dict[str, Any]]:
    message_id = st.one_of(st.just("wamid.HBgLMTQxNTU1NTAxMDAVAgARGBI"), BLANK)
    return st.builds(
        lambda mid, emoji: {"type": "reaction", "reaction": {"message_id": mid, "emoji": emoji}},
        message_id,
        st.sampled_from(EMOJIS),
    )


def _header(media_ids: dict[str, str], *, media: bool) -> st.SearchStrategy[dict[str, Any]]:
    """A text header, or (mostly for kinds that take one, rarely for the others) a media header."""
    text = text_field(limits.INTERACTIVE_HEADER_TEXT_MAX).map(lambda t: {"type": "text", "text": t})
    kinds = (
        vocabulary.INTERACTIVE_MEDIA_HEADER_TYPES if media else vocabulary.INTERACTIVE_MEDIA_HEADER_TYPES[:1]
    )
    headers = [
        media_source(kind, media_ids).map(lambda source, kind=kind: {"type": kind, kind: source})
        for kind in kinds
    ]
    if media:
        return st.one_of(text, *headers)
    return _ONE_IN_TWENTY.flatmap(lambda rare: headers[0] if rare else text)


def _interactive(kind: str, action: Any, media_ids: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    footer = optional(text_field(limits.INTERACTIVE_FOOTER_MAX).map(lambda t: {"text": t}))
    return st.builds(
        lambda header, body, footer, action: {
            "type": "interactive",
            "interactive": obj(type=kind, header=header, body={"text": body}, footer=footer, action=action),
        },
        optional(_header(media_ids, media=kind in vocabulary.INTERACTIVE_MEDIA_HEADER_KINDS)),
        text_field(limits.INTERACTIVE_BODY_MAX),
        footer,
        action,
    )


@cache
def _reply_button(index: int) -> st.SearchStrategy[dict[str, Any]]:
    # Ids and titles near their limits; a short one carries the index so that most are unique.
    ident = st.one_of(st.just(f"b{index}"), near(limits.REPLY_BUTTON_ID_MAX))
    title = st.one_of(st.just(f"Option {index}"), text_field(limits.REPLY_BUTTON_TITLE_MAX))
    return st.builds(lambda i, t: {"type": "reply", "reply": {"id": i, "title": t}}, ident, title)


@st.composite
def _buttons_action(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(counts(limits.REPLY_BUTTONS_MIN, limits.REPLY_BUTTONS_MAX))
    return {"buttons": [draw(_reply_button(i)) for i in range(size)]}


def buttons_message(media_ids: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    return _interactive("button", _buttons_action(), media_ids)


def _rarely(rare: st.SearchStrategy[Any], usual: Any) -> st.SearchStrategy[Any]:
    return _ONE_IN_TWENTY.flatmap(lambda is_rare: rare if is_rare else st.just(usual))


@cache
def _row(index: int) -> st.SearchStrategy[dict[str, Any]]:
    # A list has up to ten rows of three texts each: each row's texts are near their limits rarely, or
    # nearly every list would have one over and be refused.
    return st.builds(
        lambda ident, title, description: obj(id=ident, title=title, description=description),
        _rarely(near(limits.LIST_ROW_ID_MAX), f"r{index}"),
        _rarely(text_field(limits.LIST_ROW_TITLE_MAX), f"Row {index}"),
        optional(_rarely(near(limits.LIST_ROW_DESCRIPTION_MAX, low=0), "A row")),
    )


# "" stands for a short unique title here (the blank ones come from text_field); rarely none, which a list
# of several sections may not have.
_SECTION_TITLE = _ONE_IN_TWENTY.flatmap(
    lambda rare: (
        st.just(ABSENT) if rare else st.one_of(st.just(""), text_field(limits.LIST_SECTION_TITLE_MAX))
    )
)
_ROWS_TOTAL = st.one_of(
    st.sampled_from([limits.LIST_ROWS_TOTAL_MAX, limits.LIST_ROWS_TOTAL_MAX + 1]),
    st.integers(1, limits.LIST_ROWS_TOTAL_MAX),
)


@st.composite
def _list_action(draw: st.DrawFn) -> dict[str, Any]:
    n_sections = draw(counts(limits.LIST_SECTIONS_MIN, limits.LIST_SECTIONS_MAX))
    # Rows in all near the total limit: spread over the sections, at least one each.
    total = draw(_ROWS_TOTAL)
    if n_sections == 0:
        return {"button": draw(text_field(limits.LIST_BUTTON_TEXT_MAX)), "sections": []}
    total = max(total, n_sections)
    sizes = [1] * n_sections
    for _ in range(total - n_sections):
        sizes[draw(_INDEX) % n_sections] += 1
    sections, row = [], 0
    for size in sizes:
        rows = [draw(_row(row + i)) for i in range(size)]
        row += size
        title = draw(_SECTION_TITLE)
        sections.append(obj(title=f"Section {len(sections)}" if title == "" else title, rows=rows))
    return {"button": draw(text_field(limits.LIST_BUTTON_TEXT_MAX)), "sections": sections}


def list_message(media_ids: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    return _interactive("list", _list_action(), media_ids)


def cta_url_message(media_ids: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    action = st.builds(
        lambda text, url: {"name": "cta_url", "parameters": {"display_text": text, "url": url}},
        text_field(limits.CTA_URL_DISPLAY_TEXT_MAX),
        urls,
    )
    return _interactive("cta_url", action, media_ids)


# The action of each interactive kind the provider passes through as given, in Graph's shape.
PASSTHROUGH_ACTIONS: dict[str, dict[str, Any]] = {
    "flow": {
        "name": "flow",
        "parameters": {"flow_message_version": "3", "flow_id": "1234", "flow_cta": "Book", "flow_token": "t"},
    },
    "product": {"catalog_id": "1234", "product_retailer_id": "sku-1"},
    "product_list": {
        "catalog_id": "1234",
        "sections": [{"title": "Shoes", "product_items": [{"product_retailer_id": "sku-1"}]}],
    },
    "catalog_message": {"name": "catalog_message", "parameters": {"thumbnail_product_retailer_id": "sku-1"}},
    "call_permission_request": {"name": "call_permission_request"},
    "location_request_message": {"name": "send_location"},
    "address_message": {"name": "address_message", "parameters": {"country": "IN"}},
    "order_details": {
        "name": "review_and_pay",
        "parameters": {"reference_id": "r1", "type": "digital-goods"},
    },
    "order_status": {
        "name": "review_order",
        "parameters": {"reference_id": "r1", "order": {"status": "shipped"}},
    },
}


def passthrough_message(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    header = optional(
        text_field(limits.INTERACTIVE_HEADER_TEXT_MAX).map(lambda t: {"type": "text", "text": t})
    )
    body = optional(text_field(limits.INTERACTIVE_BODY_MAX).map(lambda t: {"text": t}))
    footer = optional(text_field(limits.INTERACTIVE_FOOTER_MAX).map(lambda t: {"text": t}))
    return st.builds(
        lambda h, b, f: {
            "type": "interactive",
            "interactive": obj(type=kind, header=h, body=b, footer=f, action=PASSTHROUGH_ACTIONS[kind]),
        },
        header,
        body,
        footer,
    )


# --- templates -----------------------------------------------------------------------------------

#: Approved templates the parity sandbox holds (the sandbox's seeds plus the test's own): name ->
#: (header kind or None, body placeholders, URL-button indexes that take a suffix).
TEMPLATES: dict[str, tuple[str | None, int, tuple[int, ...]]] = {
    "hello_world": (None, 0, ()),
    "daily_report": ("document", 2, ()),
    "order_update": (None, 3, ()),
    "parity_header": ("text", 1, (0,)),
    "a" * limits.TEMPLATE_NAME_MAX: (None, 1, ()),
}
BAD_TEMPLATE_NAMES = ["Hello_World", "order-update", "a" * (limits.TEMPLATE_NAME_MAX + 1), ""]


@cache
def _text_parameter(limit: int) -> st.SearchStrategy[dict[str, Any]]:
    return text_field(limit).map(lambda t: {"type": "text", "text": t})


_TEMPLATE_NAMES = st.one_of(st.sampled_from(sorted(TEMPLATES)), st.sampled_from(BAD_TEMPLATE_NAMES))
_CURRENCY = st.just(
    {"type": "currency", "currency": {"fallback_value": "$1", "code": "USD", "amount_1000": 1000}}
)
_BODY_PARAMETER = st.one_of(
    _text_parameter(limits.TEMPLATE_BODY_PARAMETER_MAX),
    _text_parameter(limits.TEMPLATE_BODY_PARAMETER_MAX),
    _CURRENCY,
)
_URL_SUFFIX = st.one_of(st.just("abc"), BLANK)
_LANGUAGE = st.sampled_from([{"code": "en_US"}, {"policy": "deterministic", "code": "en_US"}])
_FILENAME = optional(st.just("report.pdf"))


def template_message(media_ids: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    header_media = {kind: media_source(kind, media_ids) for kind in vocabulary.INTERACTIVE_MEDIA_HEADER_TYPES}

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        name = draw(_TEMPLATE_NAMES)
        header_kind, body_count, url_buttons = TEMPLATES.get(name, (None, 1, ()))
        components: list[dict[str, Any]] = []
        if header_kind == "text":
            parameter = draw(_text_parameter(limits.TEMPLATE_HEADER_PARAMETER_MAX))
            components.append({"type": "header", "parameters": [parameter]})
        elif header_kind is not None:
            source = obj(**draw(header_media[header_kind]), filename=draw(_FILENAME))
            components.append({"type": "header", "parameters": [{"type": header_kind, header_kind: source}]})
        if body_count:
            parameters = [draw(_BODY_PARAMETER) for _ in range(body_count)]
            components.append({"type": "body", "parameters": parameters})
        for index in url_buttons:
            components.append(
                {"type": "button", "sub_type": "url", "index": str(index),
                 "parameters": [{"type": "text", "text": draw(_URL_SUFFIX)}]}
            )  # fmt: skip
        template = obj(name=name, language=draw(_LANGUAGE), components=components or ABSENT)
        return {"type": "template", "template": template}

    return build()


# --- one structural mutation ---------------------------------------------------------------------

HOSTILE_VALUES: list[Any] = [None, 0, 1.5, True, "", " ", "\u200b", [], {}, "x", {"text": "x"}]


_OPERATIONS = st.sampled_from(["none", "none", "delete", "replace", "extra", "repeat"])
_HOSTILE = st.sampled_from(HOSTILE_VALUES)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@st.composite
def mutated(draw: st.DrawFn, message: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``message`` with one change somewhere in its object (or none), and a description of it."""
    kind = message["type"]
    paths = [(kind, *p) for p in _paths(message[kind])] or [(kind,)]
    operation = draw(_OPERATIONS)
    if operation == "none":
        return message, ""
    changed = _copy(message)
    path = paths[draw(_INDEX) % len(paths)]
    parent = _get(changed, path[:-1])
    key = path[-1]
    if operation == "delete":
        del parent[key]
        return changed, f"deleted {path}"
    if operation == "replace":
        value = draw(_HOSTILE)
        parent[key] = _copy(value)
        return changed, f"{path} = {value!r}"
    target = _get(changed, path)
    if operation == "extra" and isinstance(target, dict):
        target["unexpected"] = "x"
        return changed, f"extra field in {path}"
    if operation == "repeat" and isinstance(parent, list):
        parent.append(_copy(parent[key]))
        return changed, f"repeated {path}"
    return message, ""


def cases(label: str, messages: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Case]:
    """Cases of one kind: a message near its limits, perhaps mutated, and a recipient."""
    return st.builds(
        lambda pair, to: Case(label, pair[0], to, pair[1]),
        messages.flatmap(mutated),
        recipients(),
    )
