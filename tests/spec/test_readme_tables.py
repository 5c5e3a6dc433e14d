"""The README's limits table and error-code tables say what the spec says, row for row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airflow_provider_whatsapp.spec import error_codes, limits
from airflow_provider_whatsapp.spec.error_codes import ERROR_CODES

README = Path(__file__).resolve().parents[2] / "README.md"
L = limits
_NUMBER = re.compile(r"(?<![A-Za-z\d.])\d+(?![A-Za-z\d])")

# Each row of "Limits checked before any request" and the numbers it must state, in order. A 1 is the
# "not empty" bound of a text (checked by grammar.is_blank, not a number of the spec).
LIMIT_ROWS: dict[str, list[float]] = {
    "recipient (`to`)": [L.RECIPIENT_MIN_DIGITS, L.RECIPIENT_MAX_DIGITS],
    "text body": [1, L.TEXT_BODY_MAX],
    "media caption (image, video, document)": [L.MEDIA_CAPTION_MAX],
    "media `link`": [],
    "interactive header text / body / footer": [
        L.INTERACTIVE_HEADER_TEXT_MAX, 1, L.INTERACTIVE_BODY_MAX, L.INTERACTIVE_FOOTER_MAX,
    ],
    "reply buttons": [L.REPLY_BUTTONS_MIN, L.REPLY_BUTTONS_MAX, L.REPLY_BUTTON_TITLE_MAX, L.REPLY_BUTTON_ID_MAX],
    "list": [
        L.LIST_BUTTON_TEXT_MAX, L.LIST_SECTIONS_MIN, L.LIST_SECTIONS_MAX, L.LIST_SECTION_TITLE_MAX,
        L.LIST_ROWS_TOTAL_MAX, L.LIST_ROW_ID_MAX, L.LIST_ROW_TITLE_MAX, L.LIST_ROW_DESCRIPTION_MAX,
    ],
    "call-to-action URL": [L.CTA_URL_DISPLAY_TEXT_MAX],
    "contacts": [L.CONTACTS_MIN, L.CONTACTS_MAX],
    "template name": [L.TEMPLATE_NAME_MAX],
    "template parameters": [L.TEMPLATE_HEADER_PARAMETER_MAX, L.TEMPLATE_BODY_PARAMETER_MAX],
    "location": [-L.LATITUDE_RANGE[0], L.LATITUDE_RANGE[1], -L.LONGITUDE_RANGE[0], L.LONGITUDE_RANGE[1]],
    "raw message": [],
}  # fmt: skip
_UNITS = {"MB": limits.MB, "KB": limits.KB}
_DASH = "\u2013"  # the README writes ranges with an en dash


def _section(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    end = text.find("\n#", start + len(heading))
    return text[start : end if end != -1 else None]


def _rows(section: str) -> list[list[str]]:
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not re.match(r"^\|\s*-", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _limit_rows() -> dict[str, str]:
    rows = _rows(_section("### Limits checked before any request"))
    assert rows[0] == ["what", "limit"]
    return {what: limit for what, limit in rows[1:]}


def test_the_limits_table_has_exactly_the_checked_rows() -> None:
    assert set(_limit_rows()) == {*LIMIT_ROWS, "media file"}


@pytest.mark.parametrize("what", list(LIMIT_ROWS))
def test_each_limit_row_states_the_spec_numbers(what: str) -> None:
    # Code spans (`[a-z0-9_]+`) are patterns, not numbers; "-90..90" is a range of two numbers.
    text = re.sub(r"`[^`]*`", "", _limit_rows()[what]).replace("..", " .. ")
    stated = [float(n) for n in _NUMBER.findall(text)]
    assert stated == [float(n) for n in LIMIT_ROWS[what]], what


def test_the_media_file_row_states_each_types_size() -> None:
    row = _limit_rows()["media file"]
    stated = {}
    for part in row.split(";"):
        media_type, size, unit = re.fullmatch(r"\s*(\w+) .*≤ (\d+) (MB|KB)\s*", part).groups()  # type: ignore[union-attr]
        stated[media_type] = int(size) * _UNITS[unit]
    assert stated == {name: rule.max_bytes for name, rule in limits.MEDIA_RULES.items()}


def _code_rows() -> list[list[str]]:
    rows = _rows(_section("## Errors and retries"))
    start = rows.index(["code", "error", "retried", "what happened, what to do"])
    return rows[start + 1 : start + 1 + len(ERROR_CODES) + 2]


def test_the_error_code_table_is_the_spec_row_for_row() -> None:
    rows = _code_rows()
    by_code = {int(code): rest for code, *rest in rows if code.isdigit()}
    assert set(by_code) == set(ERROR_CODES)
    for code, row in ERROR_CODES.items():
        retried = "yes" if row.kind == "retryable" else "no"
        assert by_code[code] == [f"`{row.error_class}`", retried, row.advice], code


def test_the_error_code_table_states_the_ranges() -> None:
    rows = {code: rest for code, *rest in _code_rows() if not code.isdigit()}
    permission = error_codes.lookup(error_codes.PERMISSION_CODES.start)
    template = error_codes.OTHER_TEMPLATE_ERROR
    assert permission is not None
    span = error_codes.PERMISSION_CODES
    assert rows[f"{span.start}{_DASH}{span.stop - 1}"] == [
        f"`{permission.error_class}`",
        "no",
        permission.advice,
    ]
    span = error_codes.TEMPLATE_CODES
    assert rows[f"other {span.start}{_DASH}{span.stop - 1}"] == [
        f"`{template.error_class}`",
        "no",
        template.advice,
    ]


def test_the_retried_summary_agrees_with_the_spec() -> None:
    rows = _rows(_section("## Errors and retries"))
    start = rows.index(["retried", "not retried: the task fails and says why"])
    summary = rows[start + 1 : rows.index(["code", "error", "retried", "what happened, what to do"])]
    retried = " ".join(row[0] for row in summary)
    permanent = " ".join(row[1] for row in summary)
    for code, row in ERROR_CODES.items():
        # A code is a number of its own (not HTTP 4xx's digits, not the rate's "10 requests/s").
        if re.search(rf"(?<![\d.]){code}(?![\d.]| requests)", retried):
            assert row.kind == "retryable", code
        if re.search(rf"(?<![\d.]){code}(?![\d.]| requests)", permanent):
            assert row.kind == "permanent", code
    assert f"HTTP 429 from Maton ({limits.MATON_REQUESTS_PER_SECOND} requests/s per account)" in retried


# Where the README's prose states a rate, the number must be the spec's: each pattern's one group is a
# number, and the README must say it at least once (so a reworded sentence does not silently escape).
_RATE_PROSE: dict[str, float] = {
    r"(\d+) through Maton": limits.MATON_REQUESTS_PER_SECOND,
    r"more than (\d+) requests in one second": limits.MATON_REQUESTS_PER_SECOND,
    r"\((\d+) requests/s per account\)": limits.MATON_REQUESTS_PER_SECOND,
    r"(\d+) for Graph direct": limits.GRAPH_MESSAGES_PER_SECOND,
    r"(\d+) talking\s+to Graph directly": limits.GRAPH_MESSAGES_PER_SECOND,
    r"\((\d+) s, doubling\)": limits.PAIR_RATE_INTERVAL_SECONDS,
}


@pytest.mark.parametrize(("pattern", "value"), list(_RATE_PROSE.items()))
def test_the_readmes_prose_states_the_spec_rates(pattern: str, value: float) -> None:
    stated = [float(n) for n in re.findall(pattern, README.read_text(encoding="utf-8"))]
    assert stated, f"the README no longer says {pattern!r}: update the pattern with the sentence"
    assert set(stated) == {float(value)}, pattern
