"""The action object of each interactive kind the provider sends as given (flow, product, catalog...).

One check per kind, pure: each returns the first :class:`Problem` of an ``interactive.action`` value, or
``None``. The message models turn a problem into a ``WhatsAppValidationError`` naming the field
(:func:`dotted`), the sandbox into Graph's error body (:func:`bracketed`), so both refuse the same
payloads for the same reason. Blank text counts as absent, as :func:`.grammar.is_blank` says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.spec import error_codes, limits, vocabulary
from airflow_provider_whatsapp.spec.grammar import is_blank

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

#: A field's place inside the ``interactive`` object: ``("action", "sections", 0, "title")``.
FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """What is wrong with one field of an interactive action.

    :param path: where the field is, from the ``interactive`` object.
    :param code: the Graph code WhatsApp answers with (131008 missing, 131009 invalid, 100 malformed).
    :param rule: what is wrong, without the field's name: ``"must be at most 30 characters long"``.
    """

    path: FieldPath
    code: int
    rule: str


def dotted(path: FieldPath) -> str:
    """``interactive.action.sections[0].title``: how the models name a field."""
    return "interactive" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


def bracketed(path: FieldPath) -> str:
    """``interactive['action']['sections'][0]['title']``: how Graph names a field."""
    return "interactive" + "".join(f"[{part}]" if isinstance(part, int) else f"['{part}']" for part in path)


def check_action(kind: str, action: Any) -> Problem | None:
    """The first problem of the ``action`` of a passthrough interactive ``kind``, or ``None``.

    Graph requires an action object of every kind; a kind in :data:`.vocabulary.INTERACTIVE_ACTION_NAMES`
    also needs that ``name``, and some kinds need more (see ``_RULES``).
    """
    path: FieldPath = ("action",)
    try:
        entry = _object(action, path)
        expected = vocabulary.INTERACTIVE_ACTION_NAMES.get(kind)
        if expected is not None and entry.get("name") != expected:
            if entry.get("name") is None:
                raise _Refusal(_missing((*path, "name")))
            raise _Refusal(_invalid((*path, "name"), f"must be {expected!r} for {kind} messages"))
        rules = _RULES.get(kind)
        if rules is not None:
            rules(entry, path)
    except _Refusal as refusal:
        return refusal.problem
    return None


# --- the kinds -----------------------------------------------------------------------------------


def _flow(action: dict[str, Any], path: FieldPath) -> None:
    params_path = (*path, "parameters")
    params = _object(action.get("parameters"), params_path)
    _one_of(
        params.get("flow_message_version"),
        vocabulary.FLOW_MESSAGE_VERSIONS,
        (*params_path, "flow_message_version"),
    )
    _text(params, "flow_cta", params_path, limits.FLOW_CTA_MAX)
    has_id, has_name = params.get("flow_id") is not None, params.get("flow_name") is not None
    if has_id == has_name:
        raise _Refusal(_invalid(params_path, "give either flow_id or flow_name (one of them)"))
    _text(params, "flow_id" if has_id else "flow_name", params_path, None)
    for key, allowed in (("flow_action", vocabulary.FLOW_ACTIONS), ("mode", vocabulary.FLOW_MODES)):
        if params.get(key) is not None:
            _one_of(params[key], allowed, (*params_path, key))
    if params.get("flow_action_payload") is not None:
        _object(params["flow_action_payload"], (*params_path, "flow_action_payload"))


def _product(action: dict[str, Any], path: FieldPath) -> None:
    _text(action, "catalog_id", path, None)
    _text(action, "product_retailer_id", path, None)


def _product_list(action: dict[str, Any], path: FieldPath) -> None:
    _text(action, "catalog_id", path, None)
    sections_path = (*path, "sections")
    low, high = limits.PRODUCT_LIST_SECTIONS_MIN, limits.PRODUCT_LIST_SECTIONS_MAX
    sections = _count(action.get("sections"), sections_path, low, high, "sections")
    for i, section in enumerate(sections):
        section_path = (*sections_path, i)
        entry = _object(section, section_path)
        # A title tells sections apart: needed only when there are several.
        _text(entry, "title", section_path, limits.LIST_SECTION_TITLE_MAX, required=len(sections) > 1)
        items_path = (*section_path, "product_items")
        items = _count(
            entry.get("product_items"),
            items_path,
            limits.PRODUCT_ITEMS_MIN,
            limits.PRODUCT_ITEMS_MAX,
            "products",
        )
        for j, item in enumerate(items):
            _text(_object(item, (*items_path, j)), "product_retailer_id", (*items_path, j), None)


def _catalog_message(action: dict[str, Any], path: FieldPath) -> None:
    params = action.get("parameters")
    if params is not None:
        params_path = (*path, "parameters")
        thumbnail = _object(params, params_path).get("thumbnail_product_retailer_id")
        if thumbnail is not None and not isinstance(thumbnail, str):
            raise _Refusal(_malformed((*params_path, "thumbnail_product_retailer_id"), "must be a string"))


def _address_message(action: dict[str, Any], path: FieldPath) -> None:
    params_path = (*path, "parameters")
    _text(_object(action.get("parameters"), params_path), "country", params_path, None)


# call_permission_request and location_request_message need only their action name; order_details and
# order_status (payments) only an action object.
_RULES: dict[str, Callable[[dict[str, Any], FieldPath], None]] = {
    "flow": _flow,
    "product": _product,
    "product_list": _product_list,
    "catalog_message": _catalog_message,
    "address_message": _address_message,
}


# --- shapes --------------------------------------------------------------------------------------


class _Refusal(Exception):
    """Carries the first problem out of nested checks; never leaves this module."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.rule)
        self.problem = problem


def _missing(path: FieldPath) -> Problem:
    return Problem(path, error_codes.MISSING_PARAMETER, "is required")


def _invalid(path: FieldPath, rule: str) -> Problem:
    return Problem(path, error_codes.INVALID_PARAMETER_VALUE, rule)


def _malformed(path: FieldPath, rule: str) -> Problem:
    return Problem(path, error_codes.INVALID_PARAMETER, rule)


def _object(value: Any, path: FieldPath) -> dict[str, Any]:
    if value is None:
        raise _Refusal(_missing(path))
    if not isinstance(value, dict):
        raise _Refusal(_malformed(path, "must be a JSON object"))
    return value


def _text(
    obj: dict[str, Any], key: str, parent: FieldPath, limit: int | None, *, required: bool = True
) -> None:
    """``obj[key]``: a string of at most ``limit`` characters; blank text counts as absent."""
    path = (*parent, key)
    value = obj.get(key)
    if value is None or (isinstance(value, str) and is_blank(value)):
        if required:
            raise _Refusal(_missing(path))
        return
    if not isinstance(value, str):
        raise _Refusal(_malformed(path, "must be a string"))
    if limit is not None and len(value) > limit:
        raise _Refusal(_malformed(path, f"must be at most {limit} characters long"))


def _count(items: Any, path: FieldPath, low: int, high: int, what: str) -> list[Any]:
    if items is None:
        raise _Refusal(_missing(path))
    if not isinstance(items, list):
        raise _Refusal(_malformed(path, "must be an array"))
    if not low <= len(items) <= high:
        raise _Refusal(_invalid(path, f"{len(items)} {what} given; between {low} and {high} are allowed"))
    return items


def _one_of(value: Any, allowed: Collection[str], path: FieldPath) -> None:
    # A list or dict is not hashable; compare strings only.
    if not isinstance(value, str) or value not in allowed:
        raise _Refusal(_malformed(path, f"must be one of {{{', '.join(sorted(allowed))}}}, got {value!r}"))
