"""Checks on a message template definition before it is submitted to Meta for review.

Meta reviews a template asynchronously and a malformed one comes back as a rejection minutes or hours
later, or as a terse error code. Every rule here is checked before the request, and every failure is a
:class:`~airflow_provider_whatsapp.errors.WhatsAppValidationError` whose message starts with the field
it is about (``name``, ``category``, ``components[BODY].text``...) followed by the rule broken.

Only positional placeholders (``{{1}}``, ``{{2}}``...) and named ones (``{{first_name}}``) are known;
a definition mixing both is refused, as Meta does.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.spec import grammar
from airflow_provider_whatsapp.spec.limits import (
    AUTH_CODE_EXPIRATION_MINUTES_MAX,
    AUTH_CODE_EXPIRATION_MINUTES_MIN,
    TEMPLATE_BODY_TEXT_MAX,
    TEMPLATE_BUTTON_LABEL_MAX,
    TEMPLATE_BUTTONS_MAX,
    TEMPLATE_FOOTER_TEXT_MAX,
    TEMPLATE_HEADER_TEXT_MAX,
    TEMPLATE_NAME_MAX,
)
from airflow_provider_whatsapp.spec.vocabulary import (
    TEMPLATE_AUTHENTICATION,
    TEMPLATE_BUTTON_OTP,
    TEMPLATE_BUTTON_PHONE_NUMBER,
    TEMPLATE_BUTTON_URL,
    TEMPLATE_CATEGORIES,
    TEMPLATE_HEADER_FORMATS,
    TEMPLATE_LABELLED_BUTTONS,
    TEMPLATE_MEDIA_HEADER_FORMATS,
    TEMPLATE_OTP_TYPES,
)
from airflow_provider_whatsapp.spec.vocabulary import TEMPLATE_COMPONENT_TYPES as COMPONENT_TYPES

#: The placeholder names in a text, in order of appearance (``"1"``, ``"first_name"``...).
placeholders = grammar.placeholders
# The components, by their type in COMPONENT_TYPES (HEADER, BODY, FOOTER, BUTTONS).
_HEADER, _BODY, _FOOTER, _BUTTONS = COMPONENT_TYPES
# One-tap and zero-tap codes are filled in by the app named here (or in ``supported_apps``).
_APP_FIELDS = ("package_name", "signature_hash")


def _fail(field: str, rule: str) -> WhatsAppValidationError:
    return WhatsAppValidationError(f"{field}: {rule}")


def is_concrete(value: Any) -> bool:
    """Whether an argument is already known at DAG parse time (not a Jinja string, not an XComArg)."""
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value
    return value is None or isinstance(value, (int, float, bool, list, tuple, dict))


# --- top-level fields ----------------------------------------------------------------------------


def validate_name(name: Any) -> None:
    """``name``: lowercase letters, digits and underscores, at most 512 characters."""
    if not isinstance(name, str) or not name:
        raise _fail("name", "a template name is required (a non-empty string)")
    if len(name) > TEMPLATE_NAME_MAX:
        raise _fail("name", f"{len(name)} characters; at most {TEMPLATE_NAME_MAX} are allowed")
    if not grammar.TEMPLATE_NAME_PATTERN.match(name):
        raise _fail(
            "name",
            f"{name!r} may contain only lowercase letters, digits and underscores ([a-z0-9_])",
        )


def validate_language(language: Any) -> None:
    """``language``: a language code such as ``en_US`` (no spaces)."""
    if not isinstance(language, str) or not language.strip() or " " in language:
        raise _fail("language", f"{language!r} is not a language code such as 'en_US'")


def validate_category(category: Any) -> None:
    """``category``: AUTHENTICATION, MARKETING or UTILITY."""
    if category not in TEMPLATE_CATEGORIES:
        raise _fail("category", f"{category!r} is not one of {', '.join(TEMPLATE_CATEGORIES)}")


# --- components ----------------------------------------------------------------------------------


def _placeholder_kind(field: str, found: list[str]) -> str | None:
    """``"positional"``, ``"named"`` or None (no placeholder); refuses malformed and mixed ones."""
    kinds = set()
    for token in found:
        kind = grammar.placeholder_kind(token)
        if kind is None:
            raise _fail(
                field,
                f"placeholder {{{{{token}}}}} is malformed; use {{{{1}}}}, {{{{2}}}}... or "
                "lowercase names such as {{first_name}}",
            )
        kinds.add(kind)
    if len(kinds) > 1:
        raise _fail(field, "positional ({{1}}) and named ({{name}}) placeholders cannot be mixed")
    return kinds.pop() if kinds else None


def _check_numbering(field: str, found: list[str]) -> int:
    """Positional placeholders must be 1..n without gaps; returns n."""
    numbers = sorted({int(token) for token in found})
    if numbers[0] == 0:
        raise _fail(field, "placeholder {{0}} is not allowed; placeholders are numbered from {{1}}")
    for expected, number in enumerate(numbers, start=1):
        if number != expected:
            raise _fail(
                field,
                f"placeholder {{{{{number}}}}} found but {{{{{expected}}}}} is missing; "
                "placeholders must be numbered 1..n without gaps",
            )
    return len(numbers)


def _text(component: dict[str, Any], field: str, limit: int, *, required: bool) -> str | None:
    text = component.get("text")
    if text is None and not required:
        return None
    if not isinstance(text, str) or not text.strip():
        raise _fail(field, "text is required and must not be empty")
    if len(text) > limit:
        raise _fail(field, f"{len(text)} characters; at most {limit} are allowed")
    return text


def _example(component: dict[str, Any]) -> dict[str, Any]:
    example = component.get("example")
    return example if isinstance(example, dict) else {}


def _check_example_values(field: str, values: Any, count: int, what: str) -> None:
    if not isinstance(values, list) or len(values) != count:
        got = len(values) if isinstance(values, list) else 0
        raise _fail(
            field,
            f"{count} placeholder(s) need {count} example value(s) in {what}, got {got}; "
            "Meta reviews templates with their examples",
        )
    for index, value in enumerate(values, start=1):
        if value is None or (isinstance(value, str) and not value.strip()):
            raise _fail(field, f"example value {index} in {what} is empty")


def _check_named_examples(field: str, names: list[str], values: Any, what: str) -> None:
    given = {
        item.get("param_name")
        for item in values or []
        if isinstance(item, dict) and str(item.get("example", "")).strip()
    }
    missing = [name for name in dict.fromkeys(names) if name not in given]
    if missing:
        raise _fail(
            field,
            f"placeholder {{{{{missing[0]}}}}} has no example in {what} "
            "(a list of {'param_name', 'example'})",
        )


def _validate_authentication_body(component: dict[str, Any]) -> None:
    # Meta writes an authentication template's body (the code and, optionally, a security warning).
    if "text" in component:
        raise _fail(
            "components[BODY].text",
            "an authentication template's body text is written by Meta; give only "
            "add_security_recommendation (true or false)",
        )
    flag = component.get("add_security_recommendation")
    if flag is not None and not isinstance(flag, bool):
        raise _fail("components[BODY].add_security_recommendation", f"{flag!r} is not true or false")


def _validate_body(component: dict[str, Any], category: str | None) -> None:
    if category == TEMPLATE_AUTHENTICATION:
        _validate_authentication_body(component)
        return
    field = "components[BODY].text"
    text = _text(component, field, TEMPLATE_BODY_TEXT_MAX, required=True)
    assert text is not None
    found = placeholders(text)
    kind = _placeholder_kind(field, found)
    if kind is None:
        return
    stripped = text.strip()
    if grammar.PLACEHOLDER.match(stripped):
        raise _fail(field, "the body must not start with a placeholder; put some text before it")
    if grammar.PLACEHOLDER_AT_END.search(stripped):
        raise _fail(field, "the body must not end with a placeholder; put some text after it")
    example = _example(component)
    if kind == "positional":
        count = _check_numbering(field, found)
        rows = example.get("body_text")
        row = rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], list) else None
        _check_example_values("components[BODY].example.body_text", row, count, "example.body_text[0]")
    else:
        _check_named_examples(
            "components[BODY].example",
            found,
            example.get("body_text_named_params"),
            "example.body_text_named_params",
        )


def _validate_header(component: dict[str, Any]) -> None:
    fmt = component.get("format")
    if fmt not in TEMPLATE_HEADER_FORMATS:
        raise _fail(
            "components[HEADER].format", f"{fmt!r} is not one of {', '.join(TEMPLATE_HEADER_FORMATS)}"
        )
    example = _example(component)
    if fmt in TEMPLATE_MEDIA_HEADER_FORMATS and not example.get("header_handle"):
        raise _fail(
            "components[HEADER].example.header_handle",
            f"a {fmt} header needs an example media handle (from a resumable upload)",
        )
    if fmt != TEMPLATE_HEADER_FORMATS[0]:  # only a TEXT header has text to check
        return
    field = "components[HEADER].text"
    text = _text(component, field, TEMPLATE_HEADER_TEXT_MAX, required=True)
    assert text is not None
    found = placeholders(text)
    kind = _placeholder_kind(field, found)
    if kind is None:
        return
    if len(found) > 1:
        raise _fail(field, f"{len(found)} placeholders; a header may have at most one")
    if kind == "positional":
        _check_numbering(field, found)
        _check_example_values(
            "components[HEADER].example.header_text",
            example.get("header_text"),
            1,
            "example.header_text",
        )
    else:
        _check_named_examples(
            "components[HEADER].example",
            found,
            example.get("header_text_named_params"),
            "example.header_text_named_params",
        )


def _validate_footer(component: dict[str, Any], category: str | None) -> None:
    if category == TEMPLATE_AUTHENTICATION:
        # Meta writes an authentication footer too; it only says when the code expires.
        if "text" in component:
            raise _fail(
                "components[FOOTER].text",
                "an authentication template's footer text is written by Meta; give only "
                "code_expiration_minutes",
            )
        minutes = component.get("code_expiration_minutes")
        if minutes is not None and not (
            isinstance(minutes, int)
            and not isinstance(minutes, bool)
            and AUTH_CODE_EXPIRATION_MINUTES_MIN <= minutes <= AUTH_CODE_EXPIRATION_MINUTES_MAX
        ):
            raise _fail(
                "components[FOOTER].code_expiration_minutes",
                f"{minutes!r} is not a whole number of minutes from {AUTH_CODE_EXPIRATION_MINUTES_MIN} to "
                f"{AUTH_CODE_EXPIRATION_MINUTES_MAX}",
            )
        return
    field = "components[FOOTER].text"
    text = _text(component, field, TEMPLATE_FOOTER_TEXT_MAX, required=True)
    if text is not None and placeholders(text):
        raise _fail(field, "a footer cannot contain placeholders")


def _validate_buttons(component: dict[str, Any], category: str | None) -> None:
    buttons = component.get("buttons")
    if not isinstance(buttons, list) or not buttons:
        raise _fail("components[BUTTONS].buttons", "a non-empty list of buttons is required")
    if len(buttons) > TEMPLATE_BUTTONS_MAX:
        raise _fail(
            "components[BUTTONS].buttons",
            f"{len(buttons)} buttons; a template may have at most {TEMPLATE_BUTTONS_MAX}",
        )
    for index, button in enumerate(buttons):
        field = f"components[BUTTONS].buttons[{index}]"
        if not isinstance(button, dict) or not button.get("type"):
            raise _fail(field, "each button is a dict with a 'type' (QUICK_REPLY, URL, PHONE_NUMBER...)")
        kind = str(button["type"]).upper()
        text = button.get("text")
        if text is not None or kind in TEMPLATE_LABELLED_BUTTONS:
            if not isinstance(text, str) or not text.strip():
                raise _fail(f"{field}.text", f"a {kind} button needs a label")
            if len(text) > TEMPLATE_BUTTON_LABEL_MAX:
                raise _fail(
                    f"{field}.text",
                    f"label {text!r} has {len(text)} characters; at most {TEMPLATE_BUTTON_LABEL_MAX} "
                    "are allowed",
                )
        if kind == TEMPLATE_BUTTON_URL:
            _validate_url_button(field, button)
        if kind == TEMPLATE_BUTTON_PHONE_NUMBER and not button.get("phone_number"):
            raise _fail(f"{field}.phone_number", f"a {kind} button needs a phone_number")
        if (kind == TEMPLATE_BUTTON_OTP) != (category == TEMPLATE_AUTHENTICATION):
            raise _fail(
                f"{field}.type",
                f"an {TEMPLATE_AUTHENTICATION} template has one {TEMPLATE_BUTTON_OTP} button, and "
                f"{TEMPLATE_BUTTON_OTP} buttons belong to {TEMPLATE_AUTHENTICATION} templates only "
                f"(got a {kind} button in a {category} template)",
            )
        if kind == TEMPLATE_BUTTON_OTP:
            _validate_otp_button(field, button)
    if category == TEMPLATE_AUTHENTICATION and len(buttons) > 1:
        raise _fail(
            "components[BUTTONS].buttons",
            f"{len(buttons)} buttons; an {TEMPLATE_AUTHENTICATION} template has one {TEMPLATE_BUTTON_OTP} "
            "button",
        )


def _validate_otp_button(field: str, button: dict[str, Any]) -> None:
    otp_type = button.get("otp_type")
    if otp_type not in TEMPLATE_OTP_TYPES:
        raise _fail(f"{field}.otp_type", f"{otp_type!r} is not one of {', '.join(TEMPLATE_OTP_TYPES)}")
    if otp_type == TEMPLATE_OTP_TYPES[0]:  # COPY_CODE: the user copies the code, no app involved
        return
    # One-tap and zero-tap codes are handed to an app: name it, or list several in supported_apps.
    apps = button.get("supported_apps")
    if apps is None:
        apps = [button]
    if not isinstance(apps, list) or not apps:
        raise _fail(f"{field}.supported_apps", "a non-empty list of {package_name, signature_hash}")
    for i, app in enumerate(apps):
        where = field if app is button else f"{field}.supported_apps[{i}]"
        for key in _APP_FIELDS:
            value = app.get(key) if isinstance(app, dict) else None
            if not isinstance(value, str) or not value.strip():
                raise _fail(
                    f"{where}.{key}", f"a {otp_type} button needs the {key} of the app that fills in the code"
                )
    if otp_type == TEMPLATE_OTP_TYPES[2] and button.get("zero_tap_terms_accepted") is not True:  # ZERO_TAP
        raise _fail(
            f"{field}.zero_tap_terms_accepted",
            f"a {otp_type} button needs zero_tap_terms_accepted: true (Meta's zero-tap terms)",
        )


def _validate_url_button(field: str, button: dict[str, Any]) -> None:
    url = button.get("url")
    if not isinstance(url, str) or not grammar.is_http_url(url):
        raise _fail(f"{field}.url", f"{url!r} is not an absolute http(s) URL")
    found = placeholders(url)
    if not found:
        return
    if found != ["1"] or not url.rstrip().endswith("}}"):
        raise _fail(f"{field}.url", "a URL button may have one placeholder, {{1}}, at the end of the URL")
    example = button.get("example")
    values = example if isinstance(example, list) else [example] if example else []
    _check_example_values(f"{field}.example", values, 1, "the button's example")


def validate_components(components: Any, *, category: str | None = None) -> None:
    """``components``: one BODY, at most one HEADER, FOOTER and BUTTONS, each shaped as Meta expects.

    :param category: the template's category, when known (authentication templates differ).
    """
    if not isinstance(components, (list, tuple)) or not components:
        raise _fail("components", "a non-empty list of component dicts (HEADER, BODY, FOOTER, BUTTONS)")
    seen: dict[str, dict[str, Any]] = {}
    for index, component in enumerate(components):
        if not isinstance(component, dict):
            raise _fail(f"components[{index}]", "each component must be a dict with a 'type'")
        kind = str(component.get("type", "")).upper()
        if kind not in COMPONENT_TYPES:
            raise _fail(
                f"components[{index}].type",
                f"{component.get('type')!r} is not one of {', '.join(COMPONENT_TYPES)}",
            )
        if kind in seen:
            raise _fail(f"components[{kind}]", f"a template has at most one {kind} component")
        seen[kind] = component
    if _BODY not in seen:
        raise _fail(f"components[{_BODY}]", f"a template needs exactly one {_BODY} component")
    if _HEADER in seen:
        if category == TEMPLATE_AUTHENTICATION:
            raise _fail(f"components[{_HEADER}]", f"an {category} template has no {_HEADER}")
        _validate_header(seen[_HEADER])
    _validate_body(seen[_BODY], category)
    if _FOOTER in seen:
        _validate_footer(seen[_FOOTER], category)
    if _BUTTONS in seen:
        _validate_buttons(seen[_BUTTONS], category)
    elif category == TEMPLATE_AUTHENTICATION:
        raise _fail(
            f"components[{_BUTTONS}]",
            f"an {category} template needs a {_BUTTONS} component with one {TEMPLATE_BUTTON_OTP} button",
        )


def validate_template(
    *, name: Any, language: Any, category: Any, components: Any, only_concrete: bool = False
) -> None:
    """Check a whole template definition; raises :class:`WhatsAppValidationError` on the first problem.

    :param only_concrete: skip the arguments not known yet (Jinja strings, XComArgs), as at DAG
        parse time; at run time everything is checked.
    """

    def known(value: Any) -> bool:
        return not only_concrete or is_concrete(value)

    if known(name):
        validate_name(name)
    if known(language):
        validate_language(language)
    if known(category):
        validate_category(category)
    # ``components`` is never rendered by Jinja, so its ``{{1}}`` placeholders are not templates. Some
    # rules depend on the category (authentication templates differ): wait until it is known.
    if not only_concrete or (isinstance(components, (list, tuple)) and known(category)):
        validate_components(components, category=category)
