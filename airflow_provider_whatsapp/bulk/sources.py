"""Recipients read from a file or an ``ObjectStoragePath`` as a stream, one line (or CSV row) at a time.

A bulk send to a million recipients cannot hold them in XCom or in memory: ``recipients`` may name a
file instead. Two formats, chosen by the name's ending:

* JSON lines (``.jsonl``, ``.ndjson``): one recipient per line, a phone number (``"+14155550100"``,
  quotes optional) or an object with ``to`` and per-recipient template fields
  (``{"to": "+1...", "body_parameters": ["Ada"]}``);
* CSV with a header row (``.csv``): a ``to`` column, and one column per per-recipient template field
  (``body_parameters``, ``components``, ``header``) whose cells hold JSON (``["Ada", "12.50"]``); an
  empty cell leaves the field out.

Parquet is not read: its reader (pyarrow) is not among the provider's dependencies.

Nothing here keeps more than one line: a source is read again (from the start) by every pass over it.
Every byte is hostile until checked: a line longer than :data:`MAX_LINE_BYTES`, bytes that are not
UTF-8, JSON nested too deeply, numbers JSON text cannot mean (``NaN``, ``Infinity``, ``1e400``) or a
row with more cells than the header are reported with the line (or row) number, never raised as a bare
exception. A UTF-8 byte order mark at the start is skipped. A source that cannot be opened or read (a
missing file, a storage scheme without its provider, a store that fails) is one error naming it,
without the password or query string its URL may hold.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.errors import WhatsAppError, WhatsAppTransientError, WhatsAppValidationError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

# The longest line (or CSV row) read, in bytes: far above any real recipient with its parameters, far
# below what would hurt a worker's memory.
MAX_LINE_BYTES = 256 * 1024
# The most columns a CSV file may have: "to" and a few per-recipient fields are all a send reads.
MAX_CSV_COLUMNS = 16
# Where the name ends this way, recipients are read from the file in this format.
SOURCE_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_BOM = "\ufeff"
_BARE_NUMBER = re.compile(r"^\+?[0-9 ()-]+$")
# scheme://[userinfo@]rest[?query][#fragment]: what a location's URL shows of itself in errors.
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)(?:([^/?#@]*)@)?([^?#]*)(.*)$", re.DOTALL)
# Errors that say the location itself is wrong: a new try reads the same nothing.
_BAD_LOCATION = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


class _NotANumber(ValueError):
    """A JSON number no text parameter or phone number can be (``NaN``, ``Infinity``, ``1e400``)."""


def _refuse_constant(name: str) -> Any:
    raise _NotANumber(f"{name} is not a number a recipient can be sent")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NotANumber(f"{text[:40]} is too large for a number")
    return value


# JSON as json.loads reads it, but NaN, Infinity and numbers beyond a float's range are refused instead
# of becoming the texts "nan" and "inf" in a message.
_decode = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite).decode


class BadLine:
    """A line that could not be read, with the reason; the planner reports it with its position."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def is_location(value: Any) -> bool:
    """Whether ``recipients`` names a file rather than listing numbers.

    An ``ObjectStoragePath`` or ``os.PathLike`` always does; a string does when it holds ``://`` or
    ends in ``.csv``, ``.jsonl`` or ``.ndjson``, which no list of phone numbers can (numbers hold
    only digits, ``+``, spaces, ``-`` and parentheses).
    """
    if isinstance(value, os.PathLike) or (hasattr(value, "protocol") and hasattr(value, "open")):
        return True
    if not isinstance(value, str):
        return False
    text = value.strip()
    return "://" in text or text.lower().endswith(tuple(SOURCE_FORMATS))


@dataclass(frozen=True)
class RecipientSource:
    """A file of recipients, read again from the start by each pass (planning, then sending).

    Picklable: a worker process can read its own share of it.

    :param location: the path or URL, as text (shown in errors).
    :param format: ``"csv"`` or ``"jsonl"``.
    :param path: the ``ObjectStoragePath`` to open, or ``None`` for a local file at ``location``.
    """

    location: str
    format: str
    path: Any = None

    @classmethod
    def of(cls, value: Any) -> RecipientSource:
        """The source ``value`` names (see :func:`is_location`); bad names raise before anything is read."""
        if hasattr(value, "protocol") and hasattr(value, "open"):  # an ObjectStoragePath
            local = value.protocol in ("file", "local")
            if local:
                return cls(str(value.path), _format_of(str(value.path)), None)
            return cls(shown(str(value)), _format_of(str(value), url=True), value)
        text = os.fspath(value) if isinstance(value, os.PathLike) else value
        if not isinstance(text, str):
            raise WhatsAppValidationError("recipients: give the file's path as text, not bytes.")
        text = text.strip()
        if "\x00" in text:
            raise WhatsAppValidationError("recipients: the file's path contains a NUL character.")
        if text.startswith("file://"):
            text = text[len("file://") :]
        elif "://" in text:
            from airflow_provider_whatsapp._compat import ObjectStoragePath

            location = shown(text)
            try:
                path = ObjectStoragePath(text)
            except Exception as error:  # whatever the storage layer raises, named as the field's error
                detail = _clip(str(error).replace(text, location))
                raise WhatsAppValidationError(
                    f"recipients: {location} is not a usable location ({type(error).__name__}: {detail})."
                ) from None
            return cls(location, _format_of(text, url=True), path)
        return cls(text, _format_of(text), None)

    def _open(self) -> BinaryIO:
        if self.path is None:
            return open(os.path.expanduser(self.location), "rb")
        return self.path.open("rb")  # type: ignore[no-any-return]

    def unreadable(self, error: Exception) -> WhatsAppError:
        """The error for a source that could not be opened or read: permanent when the location is
        wrong (missing, a directory, refused, a scheme without its provider, a bad URL); retryable when
        the store failed on the way (a connection dropped, a timeout: a new try may read it)."""
        said = str(error) if self.path is None else str(error).replace(str(self.path), self.location)
        detail = f"{type(error).__name__}: {_clip(said)}" if said else type(error).__name__
        if isinstance(error, _BAD_LOCATION) and error.strerror:
            detail = error.strerror  # "No such file or directory", without the path told twice
        text = f"recipients: cannot read {self.location} ({detail})"
        if isinstance(error, OSError) and not isinstance(error, _BAD_LOCATION):
            return WhatsAppTransientError(f"{text}; a new try may read it.")
        return WhatsAppValidationError(f"{text}.")

    def where(self, number: int) -> str:
        """How errors name a line: ``recipients line 3`` (JSON lines) or ``recipients row 3`` (CSV, the
        header being row 1)."""
        return f"recipients {'row' if self.format == 'csv' else 'line'} {number}"

    def entries(self) -> Iterator[tuple[int, Any]]:
        """``(line or row number, entry)`` for each recipient, in file order; an unreadable line gives a
        :class:`BadLine`. Blank lines are skipped. A source that cannot be opened, or fails while it is
        read, raises :meth:`unreadable`'s error."""
        try:
            with self._open() as handle:
                lines = _lines(handle)
                yield from (_csv_entries(lines) if self.format == "csv" else _jsonl_entries(lines))
        except WhatsAppError:
            raise
        except Exception as error:  # the storage layer's own: a provider's, fsspec's, the OS's
            raise self.unreadable(error) from None


def shown(url: str) -> str:
    """``url`` as errors show it: a password in it and its query string (which may sign it) left out;
    a connection id before ``@`` stays, it names what was used."""
    match = _URL.match(url)
    if match is None:
        return _clip(url)
    scheme, userinfo, rest, tail = match.groups()
    user = "" if userinfo is None else userinfo.split(":", 1)[0] + (":***@" if ":" in userinfo else "@")
    return _clip(scheme + user + rest + ("?..." if tail else ""))


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _format_of(location: str, *, url: bool = False) -> str:
    """The format the name ends with; a URL's query string and fragment are not part of its name."""
    if url:
        location = re.split(r"[?#]", location, maxsplit=1)[0]
    name = location.rsplit("/", 1)[-1].lower()
    for suffix, kind in SOURCE_FORMATS.items():
        if name.endswith(suffix):
            return kind
    named = shown(location) if url else location
    raise WhatsAppValidationError(
        f"recipients: cannot tell the format of {named}: name it .csv (with a header row), .jsonl or "
        ".ndjson (one recipient per line)."
    )


def _lines(handle: BinaryIO) -> Iterator[tuple[int, str | BadLine]]:
    """``(number, text)`` of each line, decoded; a line too long or not UTF-8 is a :class:`BadLine`."""
    number = 0
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            # Skip the rest of the line, a bounded piece at a time, to read on from the next one.
            while raw and not raw.endswith(b"\n"):
                raw = handle.readline(MAX_LINE_BYTES + 1)
            yield number, BadLine(f"longer than {MAX_LINE_BYTES} bytes.")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield number, BadLine(f"is not UTF-8 text (byte {error.start + 1} cannot be read).")
            continue
        if number == 1 and text.startswith(_BOM):
            text = text[1:]
        yield number, text


def _jsonl_entries(lines: Iterator[tuple[int, str | BadLine]]) -> Iterator[tuple[int, Any]]:
    for number, text in lines:
        if isinstance(text, BadLine):
            yield number, text
            continue
        text = text.strip()
        if not text:
            continue
        try:
            yield number, _decode(text)
        except _NotANumber as error:
            yield number, BadLine(f"{error}; give it as a text in quotes.")
        except ValueError as error:
            if _BARE_NUMBER.match(text):
                yield number, text  # a number without quotes: what a one-column export writes
            else:
                yield number, BadLine(f"is not JSON ({error}); give a number or an object with 'to'.")
        except RecursionError:
            yield number, BadLine("is nested too deeply to read.")


def _csv_entries(lines: Iterator[tuple[int, str | BadLine]]) -> Iterator[tuple[int, Any]]:
    """Rows as dicts keyed by the header's column names; JSON cells parsed, empty cells left out.

    Rows are numbered as records (the header is row 1), not as lines: a quoted cell spanning lines is
    one row. A file with no rows at all, not even a header, has no recipients."""
    bad: list[BadLine] = []

    def texts() -> Iterator[str]:
        for _, text in lines:
            if isinstance(text, BadLine):
                bad.append(text)
                yield "\n"  # an empty row in its place keeps the rows after it numbered right
            else:
                yield text

    reader = csv.reader(texts(), strict=True)
    header: list[str] | None = None
    number = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            # A CSV quote left open swallows the rest of the file: report it once and stop reading.
            yield number + 1, BadLine(f"is not valid CSV ({error}).")
            return
        number += 1
        if bad:
            if header is None:
                raise WhatsAppValidationError(f"recipients row 1 (the header): {bad[0].reason}")
            yield number, bad[0]
            bad.clear()
            continue
        if header is None:
            header = [name.strip() for name in row]
            problem = _bad_header(header)
            if problem:
                raise WhatsAppValidationError(f"recipients row 1 (the header): {problem}")
            continue
        if any(cell.strip() for cell in row):
            yield number, _row_entry(header, row)


def _row_entry(header: list[str], row: list[str]) -> dict[str, Any] | BadLine:
    if len(row) > len(header):
        return BadLine(f"has {len(row)} cells; the header names {len(header)} columns.")
    entry: dict[str, Any] = {}
    for name, cell in zip(header, row, strict=False):
        cell = cell.strip()
        if not cell:
            continue
        if name == "to" or cell[0] not in '[{"':
            entry[name] = cell
            continue
        try:
            entry[name] = _decode(cell)
        except _NotANumber as error:
            return BadLine(f"column {name!r}: {error}; give it as a text in quotes.")
        except ValueError as error:
            return BadLine(f"column {name!r} is not JSON ({error}).")
        except RecursionError:
            return BadLine(f"column {name!r} is nested too deeply to read.")
    return entry


def _bad_header(header: list[str]) -> str | None:
    if len(header) > MAX_CSV_COLUMNS:
        return f"{len(header)} columns; a recipients file has at most {MAX_CSV_COLUMNS}."
    if "to" not in header:
        return f"no 'to' column (columns: {', '.join(repr(name[:40]) for name in header[:8])})."
    if "" in header:
        return "a column without a name."
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        return f"column {repeated[0]!r} appears more than once."
    return None
