"""No copy of WhatsApp's rules outside the spec layer: every number, allowed value, pattern and rate
that :mod:`airflow_provider_whatsapp.spec` holds is written there and nowhere else in the package.

The detector (``tests/spec/copies.py``) is tested here too: it catches a fake module full of copies
and passes a harmless one.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import airflow_provider_whatsapp
from tests.spec.copies import Copy, find_copies

PACKAGE = Path(airflow_provider_whatsapp.__file__).parent

# Literals equal to a spec value by coincidence: (module, value) -> why it is not a copy.
COINCIDENCES: dict[tuple[str, object], str] = {
    ("bulk/lease.py", 4096): "bytes read from a lock file, not the text body limit",
    ("hooks/_media_files.py", 80): "HTTP's default port, not Graph's throughput",
    ("sandbox/state.py", "UTILITY"): "the seeded templates: definitions written as a user writes them",
    ("sandbox/state.py", "MARKETING"): "the seeded templates, as above",
    ("sandbox/state.py", "QUICK_REPLY"): "the seeded templates, as above",
    ("sandbox/state.py", 86400): "the seeded templates were created a day ago, not the 24-hour window",
    ("sandbox/state.py", "PENDING"): "a new Maton connection's status, not a template's",
    (
        "sandbox/validation.py",
        "vocabulary.TEMPLATE_COMPONENT_TYPES: BODY, BUTTONS, FOOTER, HEADER",
    ): "a dispatch table with one checker "
    "per component type, checked against the vocabulary when the module loads",
}

# Every copy the detector found after the merge was replaced by an import; a new one fails the test.
KNOWN_ELSEWHERE: set[tuple[str, object]] = set()


def _key(copy: Copy) -> tuple[str, object]:
    return copy.module, (copy.spec_name if copy.value == "[...]" else copy.value)


def package_copies() -> list[Copy]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module.startswith("spec/"):
            continue
        found.extend(find_copies(path.read_text(encoding="utf-8"), module))
    return found


def test_no_copy_of_a_spec_fact_outside_the_spec() -> None:
    new = [
        str(copy)
        for copy in package_copies()
        if _key(copy) not in KNOWN_ELSEWHERE and _key(copy) not in COINCIDENCES
    ]
    assert not new, "WhatsApp's rules copied outside spec/ (import them instead):\n" + "\n".join(new)


def test_known_copies_are_still_there() -> None:
    found = {_key(copy) for copy in package_copies()}
    stale = sorted(map(str, (KNOWN_ELSEWHERE | set(COINCIDENCES)) - found))
    assert not stale, "no longer found, remove from the allow-lists:\n" + "\n".join(stale)


def test_the_walk_covers_the_package_but_the_spec() -> None:
    walked = {copy.module.split("/")[0] for copy in package_copies()}
    assert "spec" not in walked
    assert "sandbox" in walked  # the sandbox is read like every other module
    modules = {path.relative_to(PACKAGE).parts[0] for path in PACKAGE.rglob("*.py")}
    assert {"sandbox", "messages", "hooks", "bulk", "operators", "spec"} <= modules


# --- the detector --------------------------------------------------------------------------------

COPIES = textwrap.dedent(
    r"""
    import re

    RETRY_CODES = {131047: "window", 130429: "throughput"}
    CATEGORIES = ["MARKETING", "UTILITY"]
    KIND = "cta_url"
    STATUS = "PENDING_DELETION"
    NAME = re.compile(r"^[a-z0-9_]+$")
    PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
    MIME = "image/webp"
    BODY_MAX = 4096
    HELP = "at most 10 requests/s through the gateway"
    PAIR = "wait about 6 s between two messages"
    """
)

HARMLESS = textwrap.dedent(
    '''
    """A module that mentions cta_url, 131047 and QUICK_REPLY in its docstring only."""
    from airflow_provider_whatsapp.spec import limits, vocabulary

    PAYLOAD = {"type": "text", "text": {"body": "hi"}}
    MEDIA = ("link", "media_id", "file_path")
    CHOSEN = ("template", "document", "image")
    RETRIES, WAIT, EMPTY = 3, 60, 0
    HELP = f"at most {limits.MATON_REQUESTS_PER_SECOND} requests/s"
    KIND = vocabulary.INTERACTIVE_CTA_URL


    def check(value: str) -> bool:
        """Refuses anything but cta_url."""
        return value in vocabulary.INTERACTIVE_TYPES
    '''
)


def test_the_detector_finds_each_kind_of_copy() -> None:
    found = find_copies(COPIES, "fake.py")
    names = {str(copy.value): copy.spec_name for copy in found}
    assert names["131047"] == "error_codes.ERROR_CODES[131047]"
    assert names["130429"] == "error_codes.ERROR_CODES[130429]"
    assert names["cta_url"] == "vocabulary.MODELLED_INTERACTIVE_TYPES"
    assert names["PENDING_DELETION"] == "vocabulary.TEMPLATE_FAILED_STATUSES"
    assert names["^[a-z0-9_]+$"] == "grammar.TEMPLATE_NAME_PATTERN"
    assert names[r"\{\{(\w+)\}\}"].startswith("grammar.PLACEHOLDER")
    assert names["image/webp"].startswith("limits.MEDIA_RULES")
    assert names["4096"] == "limits.TEXT_BODY_MAX"
    assert names["10 requests/s"] == "limits.MATON_REQUESTS_PER_SECOND"
    assert names["6 s"] == "limits.PAIR_RATE_INTERVAL_SECONDS"
    assert any(c.value == "[...]" and c.spec_name.startswith("vocabulary.TEMPLATE_CATEGORIES") for c in found)


def test_a_report_names_the_module_the_line_the_value_and_the_spec_name() -> None:
    line = next(c for c in find_copies(COPIES, "fake.py") if c.value == "cta_url")
    assert str(line) == "fake.py:6 'cta_url' (vocabulary.MODELLED_INTERACTIVE_TYPES)"


def test_the_detector_passes_a_harmless_module() -> None:
    assert find_copies(HARMLESS, "harmless.py") == []


@pytest.mark.parametrize(
    "source",
    [
        "SIZE = 5 * 1024 * 1024",  # composed from common numbers, not the literal 5242880
        "X = {'header': 1, 'body': 2}",  # two common words of a list, not a copy of it
        "WAIT = 6.5",
        "TEXT = 'wait 16 s'",
    ],
)
def test_near_misses_are_not_copies(source: str) -> None:
    assert find_copies(source, "near.py") == []
