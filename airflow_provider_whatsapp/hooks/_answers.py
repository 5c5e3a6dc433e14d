"""Reading the parts of a server's answer without trusting it: a wrong shape is described, never quoted."""

from __future__ import annotations

from typing import Any

from airflow_provider_whatsapp.errors import WhatsAppTransientError

_ABSENT: Any = object()  # "no default" for answer_part


def shape(answer: Any) -> str:
    """What an unexpected answer looked like, without quoting its values (they could be anything)."""
    if isinstance(answer, dict):
        return "answer keys: " + ", ".join(repr(str(key)[:40]) for key in list(answer)[:10])
    return f"answer of type {type(answer).__name__}"


def answer_part(
    answer: Any,
    key: str,
    expected: type,
    what: str,
    *,
    default: Any = _ABSENT,
    items: type | None = None,
) -> Any:
    """``answer[key]`` if it is an ``expected`` (of ``items``, for a list), else a retryable error
    describing the shape, never quoting a value (a server may answer anything).

    :param what: what the part is, for the error, e.g. ``"the list of phone numbers"``.
    :param default: used when the key is missing or null; without it, that is an error too.
    """
    if not isinstance(answer, dict):
        raise WhatsAppTransientError(f"The answer with {what} is not a JSON object ({shape(answer)}).")
    value = answer.get(key)
    if value is None and default is not _ABSENT:
        return default
    if not isinstance(value, expected):
        got = "nothing" if value is None else f"a JSON {_json_type(value)}"
        raise WhatsAppTransientError(
            f"The answer's {key!r} ({what}) should be a JSON {_json_type(expected())}, not {got} "
            f"({shape(answer)})."
        )
    if items is not None:
        entries: list[Any] = list(value) if isinstance(value, list) else []
        for index, entry in enumerate(entries):
            if not isinstance(entry, items):
                raise WhatsAppTransientError(
                    f"The answer's {key!r} ({what}) should hold JSON {_json_type(items())}s; item {index} "
                    f"is a JSON {_json_type(entry)}."
                )
    return value


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
