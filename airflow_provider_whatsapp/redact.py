"""What must not travel: the API key in server-derived text, and phone numbers in logs.

Airflow's masker hides a secret in log lines, but not in an exception's fields, XCom or the bulk
journal. A server may echo the key back (in an error message, in ``error_data.details``, in an HTML
error page), so every text that came from a server is scrubbed here before the provider keeps it.
Phone numbers are personal data: logs show only as much of one as tells recipients apart.
"""

from __future__ import annotations

import html
import json
import threading
from typing import Any
from urllib.parse import quote, quote_plus

REPLACEMENT = "***"

# Shorter values would blot out ordinary words; Airflow's own masker has the same floor by default.
MIN_SECRET_LENGTH = 5

_lock = threading.Lock()
_forms: tuple[str, ...] = ()


def _spellings(secret: str) -> set[str]:
    """The ways a server may write the secret back: as is, percent-encoded, JSON- or HTML-escaped."""
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1], html.escape(secret)}


def keep_secret(secret: str | None) -> None:
    """Remember a secret the provider resolved (the API key) so :func:`scrub` removes it from now on.

    Registering it with Airflow's log masker is :func:`~airflow_provider_whatsapp._compat.mask_key`'s job.
    """
    if not secret or len(secret) < MIN_SECRET_LENGTH:
        return
    global _forms
    with _lock:
        # Longest first, so a longer spelling is not left half-replaced by a shorter one.
        _forms = tuple(sorted(set(_forms) | _spellings(secret), key=len, reverse=True))


def scrub(text: str) -> str:
    """``text`` with every registered secret (in any of its spellings) replaced by ``***``."""
    for form in _forms:
        if form in text:
            text = text.replace(form, REPLACEMENT)
    return text


def scrub_value(value: Any) -> Any:
    """A decoded server answer (JSON or text) with every string in it scrubbed, keys included.

    Walks with its own stack rather than recursing, so a hostile answer nested as deep as the JSON
    decoder allows cannot exhaust Python's recursion limit here. The answer is copied, not changed.
    """
    if not _forms:
        return value
    root = [value]
    pending: list[tuple[Any, Any]] = [(root, 0)]
    while pending:
        container, slot = pending.pop()
        item = container[slot]
        if isinstance(item, str):
            container[slot] = scrub(item)
        elif isinstance(item, dict):
            copy = {scrub(k) if isinstance(k, str) else k: v for k, v in item.items()}
            container[slot] = copy
            pending.extend((copy, k) for k in copy)
        elif isinstance(item, list):
            listed = list(item)
            container[slot] = listed
            pending.extend((listed, i) for i in range(len(listed)))
    return root[0]


#: Digits kept at each end of a masked number; at least ``_MIN_HIDDEN`` digits are always hidden.
_KEPT_LEADING = 4
_KEPT_TRAILING = 4
_MIN_HIDDEN = 3


def mask_phone_number(number: str | int) -> str:
    """A phone number for logs: ``+1 415 555 0100`` -> ``+1415***0100``.

    The country code and area stay readable and the last digits tell recipients apart; the middle is
    never shown. Anything that is not a plausible number is hidden entirely (``***``).

    :param number: the number as given or as normalised to digits.
    """
    digits = "".join(c for c in str(number) if c.isdigit() and c.isascii())
    if len(digits) < _KEPT_TRAILING + _MIN_HIDDEN:
        return "***"
    leading = max(0, min(_KEPT_LEADING, len(digits) - _KEPT_TRAILING - _MIN_HIDDEN))
    return f"+{digits[:leading]}***{digits[-_KEPT_TRAILING:]}"
