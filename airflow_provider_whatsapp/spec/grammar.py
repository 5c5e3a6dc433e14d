"""WhatsApp's rules on text: placeholders, template names, recipients, emoji, URLs and blank text.

Pure functions and patterns, no provider errors: the models turn a failed rule into a
``WhatsAppValidationError``, the sandbox into Graph's error body, each with the same rule.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from airflow_provider_whatsapp.spec.limits import (
    REACTION_EMOJI_MAX_CHARS,
    RECIPIENT_MAX_DIGITS,
    RECIPIENT_MIN_DIGITS,
    TEMPLATE_NAME_MAX,
    WAMID_MAX_CHARS,
)

# --- placeholders: {{1}}, {{2}}... or {{first_name}} ---------------------------------------------

#: Any ``{{...}}`` in a template text; group 1 is what is inside, spaces trimmed.
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
#: A placeholder at the end of a text.
PLACEHOLDER_AT_END = re.compile(r"\{\{\s*[^{}]*?\s*\}\}$")
#: A positional placeholder's name: digits.
POSITIONAL_NAME = re.compile(r"^[0-9]+$")
#: A named placeholder's name: lowercase letters, digits and underscores, not starting with a digit.
NAMED_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def placeholders(text: str | None) -> list[str]:
    """The placeholder names in a text, in order of appearance (``"1"``, ``"first_name"``...)."""
    return PLACEHOLDER.findall(text or "")


def placeholder_kind(name: str) -> str | None:
    """``"positional"``, ``"named"``, or ``None`` for a malformed placeholder name."""
    if POSITIONAL_NAME.match(name):
        return "positional"
    if NAMED_NAME.match(name):
        return "named"
    return None


def fill_placeholders(text: str, values: list[str] | dict[str, str]) -> str:
    """``text`` with each placeholder replaced: by position (``{{1}}`` is ``values[0]``) or by name.

    A placeholder without a value stays as it is.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if isinstance(values, dict):
            return values.get(name, match.group(0))
        if POSITIONAL_NAME.match(name) and 0 < int(name) <= len(values):
            return values[int(name) - 1]
        return match.group(0)

    return PLACEHOLDER.sub(value, text)


# --- template names ------------------------------------------------------------------------------

TEMPLATE_NAME_PATTERN = re.compile(r"^[a-z0-9_]+$")


def is_template_name(value: str) -> bool:
    """Lowercase letters, digits and underscores, at most :data:`.limits.TEMPLATE_NAME_MAX` characters."""
    return 0 < len(value) <= TEMPLATE_NAME_MAX and bool(TEMPLATE_NAME_PATTERN.match(value))


# --- recipients ----------------------------------------------------------------------------------

#: What may separate a phone number's digits: ``+1 (415) 555-0100``.
RECIPIENT_SEPARATORS = re.compile(r"[+\s\-()]")


def recipient_digits(value: str) -> str | None:
    """The digits WhatsApp wants for a recipient (``14155550100``), or ``None`` if it is not one."""
    digits = RECIPIENT_SEPARATORS.sub("", value.strip())
    if not (digits.isascii() and digits.isdigit()):
        return None
    if not RECIPIENT_MIN_DIGITS <= len(digits) <= RECIPIENT_MAX_DIGITS:
        return None
    return digits


def is_wa_id(value: object) -> bool:
    """A WhatsApp user id as webhooks write it (``from``, ``recipient_id``, ``wa_id``): ASCII digits only,
    as many as a phone number has."""
    return (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and RECIPIENT_MIN_DIGITS <= len(value) <= RECIPIENT_MAX_DIGITS
    )


# --- message ids ---------------------------------------------------------------------------------


def is_message_id(value: object) -> bool:
    """A message id as WhatsApp gives them (``wamid.HBgL...``): printable ASCII without spaces, at most
    :data:`.limits.WAMID_MAX_CHARS` characters."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= WAMID_MAX_CHARS
        and value.isascii()
        and value.isprintable()
        and not any(c.isspace() for c in value)
    )


# --- reactions -----------------------------------------------------------------------------------


def is_single_emoji(value: str) -> bool:
    """Whether ``value`` is one emoji, or empty (which removes a reaction).

    An emoji may be several code points (skin tones, flags, ZWJ sequences) but holds no letter or digit.
    """
    return len(value) <= REACTION_EMOJI_MAX_CHARS and not any(c.isalnum() for c in value)


# --- contacts ------------------------------------------------------------------------------------

#: A contact's ``birthday``: ``YYYY-MM-DD``.
#: A message or reply type's name as webhooks give it (``text``, ``interactive``, ``button_reply``...).
TYPE_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")

BIRTHDAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --- URLs and blank text -------------------------------------------------------------------------


def is_http_url(value: object) -> bool:
    """An absolute ``http(s)://`` URL with a host and no whitespace: what WhatsApp can fetch."""
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return False
    parts = urlsplit(value)
    return parts.scheme.lower() in {"http", "https"} and bool(parts.netloc)


# Characters that show nothing: whitespace, controls and format characters (zero-width spaces and
# joiners, U+2060, the BOM), and the letters/symbols that render blank (Hangul fillers, Braille blank).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_INVISIBLE_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_blank(value: str) -> bool:
    """Whether ``value`` would show nothing: empty, or only whitespace and invisible characters."""
    return all(
        ch.isspace() or ch in _INVISIBLE_CHARACTERS or unicodedata.category(ch) in _INVISIBLE_CATEGORIES
        for ch in value
    )
