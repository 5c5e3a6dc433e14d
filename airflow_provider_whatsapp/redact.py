"""Personal data in logs: phone numbers are shown only as much as tells recipients apart."""

from __future__ import annotations

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
