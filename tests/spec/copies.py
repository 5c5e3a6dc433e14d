"""A detector of copies of WhatsApp's rules: the spec layer's numbers, allowed values and patterns
written again as literals somewhere else.

It reads a module's source (never imports it) and reports each literal that repeats a fact of
:mod:`airflow_provider_whatsapp.spec`, as ``module:line value (spec name)``. What counts as a copy:

- an ``int``/``float`` constant equal to a distinctive spec number (see :data:`COMMON_NUMBERS`);
- a string constant (not a docstring) equal to a distinctive vocabulary value (see
  :data:`COMMON_WORDS`), or a tuple/list/set literal holding several values of one vocabulary list;
- a regex equal to one of the grammar's patterns, or any regex for ``{{...}}`` placeholders;
- text (docstrings included) stating one of the spec's rates as a number (``10 requests/s``,
  ``80 for Graph``, ``one per 6 s``): prose says "Maton's per-account limit" and code formats the value.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from airflow_provider_whatsapp.spec import error_codes, grammar, limits, vocabulary

# Numbers too common to tell a copy from an unrelated use: counts, indexes, HTTP statuses' neighbours,
# time units, powers of two used for buffers. Each is listed with why; anything else in the spec is
# distinctive (every error code above 10, every size, every rate).
COMMON_NUMBERS: dict[float, str] = {
    0: "zero: empty, off, first index",
    1: "one: at least one, first item, Graph error code 1 as well",
    2: "two: pairs, halves; Graph error code 2 as well",
    3: "three: small counts (reply buttons) but also retries, indexes",
    4: "four: Graph error code 4, but also bytes of a header, a small count",
    5: "five: contacts per message, but also attempts, seconds",
    8: "eight: recipient digits, but also bytes, bits",
    10: "ten: list rows, error code 10 and Maton's rate, but also seconds, counts; the rate is caught "
    "as text instead",
    15: "fifteen: recipient digits, but also seconds",
    20: "twenty: button titles, but also seconds, sizes of excerpts",
    21: "bytes of a WebP header, also a TCP port",
    24: "twenty-four: list titles, hours in a day",
    25: "a button label, also a percentage",
    30: "a flow's call-to-action text, also seconds (timeouts)",
    32: "a path token's least length, also bits, bytes of a digest and a hex excerpt's length",
    60: "sixty: header texts, seconds in a minute",
    72: "row descriptions, also a line width",
    90: "latitude and code expiry, also degrees and seconds",
    100: "error code 100, 100 MB and failures in XCom, also a percentage and a count",
    128: "profile e-mail, also a power of two and a socket backlog",
    180: "longitude, also degrees and seconds",
    190: "error code 190, also a column width",
    200: "list row ids and the permission codes' start, also HTTP 200",
    256: "ids and website lengths, also a power of two",
    300: "the permission codes' end, also HTTP 3xx and excerpt lengths",
    512: "template names, also a power of two",
    1000: "pages, rates, amount_1000, also milliseconds",
    1024: "a KB, captions and bodies, also a buffer size",
    # (a float equal to an int, 60.0 or 1000.0, is the same key as the int above)
    0.1: "the lowest rate, also a tenth of a second",
    6.0: "the pair-rate interval, also seconds; caught as text instead",
    -90.0: "latitude, also degrees",
    -180.0: "longitude, also degrees",
}

# Vocabulary values that are also Graph field names or plain words: ``{"type": "text", "text": ...}``
# uses the same word as a key, and "read", "failed" or "list" mean many things.
COMMON_WORDS = frozenset(
    {
        *vocabulary.MESSAGE_TYPES,
        "button", "list", "flow", "product", "header", "body", "currency", "date_time", "payload",
        "action", "url", "sent", "delivered", "read", "failed",
        "messages", "interactive",  # a Graph path segment and answer key; a message type
        "TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION", "HEADER", "BODY", "FOOTER", "BUTTONS", "URL",
        "HOME", "WORK", "MAIN", "CELL", "MOBILE",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Copy:
    """One literal that repeats a spec fact."""

    module: str
    line: int
    value: Any
    spec_name: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} {self.value!r} ({self.spec_name})"


def _spec_numbers() -> dict[float, str]:
    numbers: dict[float, str] = {}

    def add(value: Any, name: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        numbers.setdefault(value, name)

    for name, value in vars(limits).items():
        if name.isupper():
            if isinstance(value, tuple):
                for i, item in enumerate(value):
                    add(item, f"limits.{name}[{i}]")
            else:
                add(value, f"limits.{name}")
    for media_type, rule in limits.MEDIA_RULES.items():
        add(rule.max_bytes, f"limits.MEDIA_RULES[{media_type!r}].max_bytes")
    for code in error_codes.ERROR_CODES:
        add(code, f"error_codes.ERROR_CODES[{code}]")
    for name in ("PERMISSION_CODES", "TEMPLATE_CODES"):
        span = getattr(error_codes, name)
        add(span.start, f"error_codes.{name}.start")
        add(span.stop, f"error_codes.{name}.stop")
    return {value: name for value, name in numbers.items() if value not in COMMON_NUMBERS}


def _spec_lists() -> dict[str, tuple[str, ...]]:
    """Every list of allowed values, by its spec name (dicts give their keys and their values)."""
    lists: dict[str, tuple[str, ...]] = {}

    def add(name: str, value: Any) -> None:
        if isinstance(value, dict):
            add(f"{name} keys", tuple(value))
            if all(isinstance(v, str) for v in value.values()):
                add(f"{name} values", tuple(dict.fromkeys(value.values())))
            else:
                for key, item in value.items():
                    add(f"{name}[{key!r}]", item)
        elif isinstance(value, (tuple, frozenset, set)) and all(isinstance(v, str) for v in value):
            lists[name] = tuple(sorted(value)) if not isinstance(value, tuple) else value

    for name, value in vars(vocabulary).items():
        # ``*_FIELDS`` lists name an object's keys (``id``, ``name``, ``status``): every reader of an
        # answer writes them, so they are not values a copy would repeat.
        if name.isupper() and not name.endswith("_FIELDS"):
            add(f"vocabulary.{name}", value)
    for media_type, rule in limits.MEDIA_RULES.items():
        add(f"limits.MEDIA_RULES[{media_type!r}].mime_types", rule.mime_types)
    return lists


def _spec_words(lists: dict[str, tuple[str, ...]]) -> dict[str, str]:
    words: dict[str, str] = {}
    for name, values in lists.items():
        for value in values:
            words.setdefault(value, name)
    for name, value in vars(vocabulary).items():
        if name.isupper() and isinstance(value, str):
            words.setdefault(value, f"vocabulary.{name}")
    # Only names and tokens: the spec's prose (advice) is not a value a copy would repeat.
    return {word: name for word, name in words.items() if word not in COMMON_WORDS and _TOKEN.match(word)}


_TOKEN = re.compile(r"^[\w./+-]+$")


def _spec_patterns() -> dict[str, str]:
    patterns = {}
    for name, value in vars(grammar).items():
        if isinstance(value, re.Pattern):
            patterns[value.pattern] = f"grammar.{name}"
            patterns[value.pattern.strip("^$")] = f"grammar.{name}"
    return patterns


def _rate_texts() -> list[tuple[re.Pattern[str], str]]:
    """Prose that states a rate as a number: it would go stale when the spec's value changes."""
    texts = []
    for name in ("MATON_REQUESTS_PER_SECOND", "GRAPH_MESSAGES_PER_SECOND"):
        number = re.escape(f"{getattr(limits, name):g}")
        texts.append(
            (
                re.compile(
                    rf"(?<![\d.]){number}(?:\.0)?\s*(?:/\s*s\b|(?:requests?|messages?|msg|sends?)\s*"
                    rf"(?:/\s*s\b|per second|a second|each second)|(?:through|via) Maton|for Graph)",
                    re.IGNORECASE,
                ),
                f"limits.{name}",
            )
        )
    seconds = re.escape(f"{limits.PAIR_RATE_INTERVAL_SECONDS:g}")
    texts.append(
        (
            re.compile(rf"(?<![\d.]){seconds}(?:\.0)?\s*(?:s|seconds?)\b(?!\w)", re.IGNORECASE),
            "limits.PAIR_RATE_INTERVAL_SECONDS",
        )
    )
    return texts


SPEC_NUMBERS = _spec_numbers()
SPEC_LISTS = _spec_lists()
SPEC_WORDS = _spec_words(SPEC_LISTS)
SPEC_PATTERNS = _spec_patterns()
RATE_TEXTS = _rate_texts()
_REGEX_CALLS = {"compile", "match", "fullmatch", "search", "findall", "finditer", "sub", "subn", "split"}


def _docstring_nodes(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _regex_arguments(tree: ast.AST) -> set[int]:
    """Constants passed as the pattern of an ``re`` call, or as pydantic's ``pattern=``."""
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in _REGEX_CALLS and node.args and isinstance(node.args[0], ast.Constant):
            found.add(id(node.args[0]))
        for keyword in node.keywords:
            if keyword.arg == "pattern" and isinstance(keyword.value, ast.Constant):
                found.add(id(keyword.value))
    return found


def _collection_copy(node: ast.AST) -> str | None:
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        items = node.elts
    elif isinstance(node, ast.Dict):
        items = [key for key in node.keys if key is not None]
    else:
        return None
    values = {item.value for item in items if isinstance(item, ast.Constant) and isinstance(item.value, str)}
    for name, allowed in SPEC_LISTS.items():
        # A whole list (of three or more) written again, or part of one with a value no other use would have. A few common
        # words chosen from a list ("template", "document", "image") are a choice, not a copy.
        shared = values & set(allowed)
        if (len(shared) >= 3 and values == set(allowed)) or (len(shared) >= 2 and shared - COMMON_WORDS):
            return f"{name}: {', '.join(sorted(shared))}"
    return None


def find_copies(source: str, module: str) -> list[Copy]:
    """Every literal of ``source`` that repeats a spec fact."""
    tree = ast.parse(source)
    docstrings = _docstring_nodes(tree)
    regexes = _regex_arguments(tree)
    copies: list[Copy] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        listed = _collection_copy(node)
        if listed:
            copies.append(Copy(module, line, "[...]", listed))
        if not isinstance(node, ast.Constant):
            continue
        value = node.value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value in SPEC_NUMBERS:
            copies.append(Copy(module, line, value, SPEC_NUMBERS[value]))
        if not isinstance(value, str):
            continue
        for pattern, name in RATE_TEXTS:
            match = pattern.search(value)
            if match:
                copies.append(Copy(module, line, match.group(0), name))
        if id(node) in docstrings:
            continue
        if value in SPEC_WORDS:
            copies.append(Copy(module, line, value, SPEC_WORDS[value]))
        if value in SPEC_PATTERNS:
            copies.append(Copy(module, line, value, SPEC_PATTERNS[value]))
        elif id(node) in regexes and r"\{\{" in value:
            copies.append(Copy(module, line, value, "grammar.PLACEHOLDER (a placeholder regex)"))
    return sorted(copies, key=lambda c: (c.line, str(c.value)))
