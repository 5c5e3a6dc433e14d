"""Recipients from a file, read as a stream and planned in bounded memory; the journal replayed as a stream.

Real files on disk; no Airflow code path differs here, so these run on the Airflow 3 line only.
"""

from __future__ import annotations

import asyncio
import io
import json
import pickle
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp.bulk.engine import BulkConfig, BulkItem, run_bulk
from airflow_provider_whatsapp.bulk.items import build_plan, payload_fingerprint, share_of
from airflow_provider_whatsapp.bulk.progress import LocalJournal, record
from airflow_provider_whatsapp.bulk.sources import MAX_LINE_BYTES
from airflow_provider_whatsapp.errors import WhatsAppTransientError, WhatsAppValidationError
from airflow_provider_whatsapp.messages import TemplateMessage

TEMPLATE = {"template_name": "order_ready", "language_code": "en_US"}


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_a_json_lines_file_gives_numbers_and_per_recipient_parameters(tmp_path: Path) -> None:
    source = tmp_path / "recipients.jsonl"
    source.write_bytes(
        "\ufeff".encode()
        + b'"+1 415 555 0100"\n\n'
        + b'{"to": "+14155550101", "body_parameters": ["Ada", 12]}\n'
        + b"14155550102\n"
    )

    plan = build_plan(str(source), **TEMPLATE, body_parameters=["friend", "0"])

    items = {item.to: item for item in plan.items()}
    assert len(plan.items()) == 3 and list(items) == ["14155550100", "14155550101", "14155550102"]
    own = TemplateMessage.build(name="order_ready", body_parameters=["Ada", 12]).to_payload("14155550101")
    assert items["14155550101"].payload == own
    # The same fingerprint as the model's payload: journals of earlier versions compare as unchanged.
    assert items["14155550101"].fingerprint == payload_fingerprint(own)
    shared = TemplateMessage.build(name="order_ready", body_parameters=["friend", "0"]).to_payload(
        "14155550100"
    )
    assert items["14155550100"].fingerprint == payload_fingerprint(shared)


def test_a_csv_file_with_a_header_and_json_cells(tmp_path: Path) -> None:
    source = tmp_path / "recipients.csv"
    source.write_text(
        'to,body_parameters\n+14155550100,"[""Ada"", ""12.50""]"\n+14155550101,\n',
        encoding="utf-8",
    )

    items = list(build_plan(str(source), **TEMPLATE, body_parameters=["you", "0"]).items())

    assert [item.to for item in items] == ["14155550100", "14155550101"]
    body = items[0].payload["template"]["components"][0]["parameters"]
    assert [p["text"] for p in body] == ["Ada", "12.50"]
    shared = items[1].payload["template"]["components"][0]["parameters"]
    assert [p["text"] for p in shared] == ["you", "0"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'"+14155550100"\n' + b"x" * (MAX_LINE_BYTES + 10) + b'\n"+14155550101"\n', "line 2: longer than"),
        (b'"+14155550100"\n"+1415555\xff0101"\n', "line 2: is not UTF-8"),
        (b'"+14155550100"\n{"to": \n', "line 2: is not JSON"),
        (b'"+14155550100"\n' + b"[" * 100_000 + b"\n", "line 2: is nested too deeply"),
        (b'{"to": "+14155550100", "body_parameters": ' + b"[" * 30 + b"]" * 30 + b"}\n", "line 1: nested"),
        (b'{"to": "+14155550100", "name": "Ada"}\n', "line 1: 'name' is not a per-recipient field"),
        (b'"+14155550100"\n"not a number"\n', "line 2: to: 'not a number' is not a phone number"),
    ],
    ids=["huge-line", "not-utf8", "bad-json", "deep-json", "deep-value", "unknown-field", "bad-number"],
)
def test_each_bad_line_is_named_with_its_reason(tmp_path: Path, content: bytes, expected: str) -> None:
    source = tmp_path / "recipients.jsonl"
    source.write_bytes(content)

    with pytest.raises(WhatsAppValidationError, match="nothing was sent") as raised:
        build_plan(str(source), **TEMPLATE)

    assert f"recipients {expected}" in raised.value.message
    assert len(raised.value.message) < 2000


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("phone,name\n+14155550100,Ada\n", "row 1 (the header): no 'to' column"),
        (",".join(f"c{i}" for i in range(40)) + ",to\n", "row 1 (the header): 41 columns"),
        ("to\n+14155550100,extra\n", "row 2: has 2 cells; the header names 1 columns"),
        ('to,body_parameters\n+14155550100,"[""Ada"""\n', "row 2: column 'body_parameters' is not JSON"),
        ('to,body_parameters\n+14155550100,"[""Ada""]"\n+14155550100,"[""Bob""]"\n', "row 3: 14155550100"),
    ],
    ids=["no-to", "too-many-columns", "too-many-cells", "bad-json-cell", "conflicting-duplicate"],
)
def test_each_bad_csv_row_is_named_with_its_reason(tmp_path: Path, content: str, expected: str) -> None:
    source = tmp_path / "recipients.csv"
    source.write_text(content, encoding="utf-8")

    with pytest.raises(WhatsAppValidationError) as raised:
        build_plan(str(source), **TEMPLATE)

    assert f"recipients {expected}" in raised.value.message


def test_a_recipient_twice_with_the_same_parameters_is_planned_once(tmp_path: Path) -> None:
    same = {"to": "+14155550100", "body_parameters": ["Ada"]}
    source = write_lines(tmp_path / "r.jsonl", [same, "+14155550101", {**same, "to": "14155550100"}])

    plan = build_plan(str(source), **TEMPLATE)

    assert plan.count == 2 and [item.to for item in plan.items()] == ["14155550100", "14155550101"]


def test_shares_split_the_plan_between_workers_and_the_plan_pickles_small(tmp_path: Path) -> None:
    recipients = [{"to": f"+1415555{i:04d}", "body_parameters": [f"N{i}"]} for i in range(300)]
    source = write_lines(tmp_path / "r.jsonl", recipients)
    plan = pickle.loads(pickle.dumps(build_plan(str(source), **TEMPLATE)))

    shares = [[item.to for item in plan.items(share=(k, 3))] for k in range(3)]

    assert sorted(to for share in shares for to in share) == sorted(item.to for item in plan.items())
    assert all(shares) and sum(len(share) for share in shares) == 300
    assert [len(plan.items(share=(k, 3))) for k in range(3)] == [len(share) for share in shares]
    assert len(pickle.dumps(plan)) < 5_000  # the file's location, not its 300 recipients
    with pytest.raises(ValueError, match="share"):
        plan.items(share=(3, 3))


def test_a_large_file_is_planned_and_iterated_without_holding_its_recipients(tmp_path: Path) -> None:
    count = 5_000
    source = tmp_path / "r.jsonl"
    with source.open("w") as handle:
        for i in range(count):
            handle.write(json.dumps({"to": f"+1415{i:07d}", "body_parameters": [f"Name {i}", "9.50"]}) + "\n")

    build_plan(["+14155550100"], **TEMPLATE)  # imports and schemas before counting
    tracemalloc.start()
    try:
        plan = build_plan(str(source), **TEMPLATE)
        _, planning_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        taken = sum(1 for _ in plan.items())
        _, sending_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert taken == count
    # One small int per recipient to find duplicates (about 100 bytes with the dict around it), where
    # models and payloads held for every recipient took kilobytes each.
    assert planning_peak < 300 * count, planning_peak
    assert sending_peak < 300 * count, sending_peak


def test_a_journal_is_replayed_as_a_stream_from_its_files_in_order(tmp_path: Path) -> None:
    class TwoFiles(LocalJournal):
        def _files(self) -> list[str]:
            return [self.location + ".first", self.location]

    journal = TwoFiles(str(tmp_path / "j.jsonl"))
    first = [record("1", "attempt", attempt=1, fingerprint="f1"), record("1", "accepted", wamid="w1")]
    write_lines(Path(journal.location + ".first"), [*first, record("2", "attempt", attempt=1)])
    write_lines(Path(journal.location), [record("2", "accepted", wamid="w2"), record("3", "attempt")])

    outcomes = journal.outcomes()

    assert {to: (o.state, o.wamid, o.fingerprint) for to, o in outcomes.items()} == {
        "1": ("accepted", "w1", "f1"),
        "2": ("accepted", "w2", None),
        "3": ("attempt", None, None),
    }


def test_a_long_journal_keeps_one_small_outcome_per_recipient(tmp_path: Path) -> None:
    count = 8_000
    path = tmp_path / "j.jsonl"
    with path.open("w") as handle:
        for i in range(count):
            to = f"1415{i:07d}"
            handle.write(json.dumps(record(to, "attempt", attempt=1, fingerprint="a" * 64)) + "\n")
            handle.write(json.dumps(record(to, "accepted", wamid=f"wamid.{i:020d}")) + "\n")

    tracemalloc.start()
    try:
        outcomes = LocalJournal(str(path)).outcomes()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(outcomes) == count and outcomes["14150000007"].fingerprint == "a" * 64
    # The recipient, its wamid and one slotted outcome; the records are never all held.
    assert peak < 400 * count, peak


def test_the_engine_takes_items_as_it_needs_them_and_keeps_no_wamids_unless_asked(tmp_path: Path) -> None:
    taken = 0
    taken_at_first_send: list[int] = []

    def items() -> Any:
        nonlocal taken
        for i in range(500):
            taken += 1
            to = f"1415555{i:04d}"
            yield BulkItem(to=to, payload={"to": to, "type": "text", "text": {"body": "hi"}})

    async def send(payload: dict[str, Any]) -> str:
        if not taken_at_first_send:
            taken_at_first_send.append(taken)
        return f"wamid.{payload['to']}"

    journal = LocalJournal(str(tmp_path / "j.jsonl"))
    config = BulkConfig(max_rate=100_000, max_concurrency=4, keep_accepted=False)

    result = asyncio.run(run_bulk(items(), send, journal, config, total=500))

    assert (result.total, result.sent, result.not_sent) == (500, 500, 0)
    assert taken_at_first_send[0] <= 5  # not the whole list before the first send
    assert result.accepted == {}


def test_a_file_changed_after_planning_stops_the_send_at_the_changed_line(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "r.jsonl", ['"+14155550100"', '"+14155550101"'])
    plan = build_plan(str(source), **TEMPLATE)
    write_lines(source, ['"+14155550100"', '"not a number"'])

    taken = []
    with pytest.raises(
        WhatsAppValidationError, match=r"recipients line 2: .* changed after they were checked"
    ):
        taken.extend(item.to for item in plan.items())

    assert taken == ["14155550100"]


class FailingStore:
    """An ``ObjectStoragePath`` whose store fails the way a remote one can: while it is opened, or with
    the connection dropped after the first line."""

    protocol = "s3"

    def __init__(self, fail_on_open: Exception | None = None) -> None:
        self.fail_on_open = fail_on_open

    def __str__(self) -> str:
        return "s3://aws_default:secret@bucket/people.jsonl?X-Amz-Signature=signed"

    def open(self, mode: str) -> Any:
        if self.fail_on_open is not None:
            raise self.fail_on_open
        store = self

        class Dropping(io.BytesIO):
            def readline(self, size: int | None = -1) -> bytes:
                if self.tell():
                    raise ConnectionResetError(104, f"Connection reset reading {store}")
                return super().readline(size)

        return Dropping(b'"+14155550100"\n"+14155550101"\n')


@pytest.mark.parametrize(
    ("source", "error", "detail"),
    [
        (
            "s3://aws_default:secret@bucket/r.csv?X-Amz-Signature=signed",
            WhatsAppValidationError,
            "ValueError",
        ),
        (FailingStore(PermissionError(13, "Access Denied")), WhatsAppValidationError, "Access Denied"),
        (FailingStore(), WhatsAppTransientError, "ConnectionResetError"),
    ],
    ids=["scheme-without-provider", "refused", "dropped-while-read"],
)
def test_a_location_that_cannot_be_read_is_one_error_naming_it_without_its_secrets(
    source: Any, error: type[Exception], detail: str
) -> None:
    with pytest.raises(error) as raised:
        build_plan(source, **TEMPLATE)

    message = raised.value.message  # type: ignore[attr-defined]
    assert message.startswith("recipients: cannot read s3://aws_default:***@bucket/") and detail in message
    assert "secret" not in message and "signed" not in message
    # Retryable only when the store failed on the way: a missing provider or a refusal stays so.
    assert raised.value.retryable is (error is WhatsAppTransientError)  # type: ignore[attr-defined]


def test_csv_rows_are_numbered_as_records_when_a_cell_spans_lines(tmp_path: Path) -> None:
    source = tmp_path / "recipients.csv"
    source.write_text(
        'to,body_parameters\n+14155550100,"[""Ada\nLovelace""]"\n\n+14155550101,"[""Bob"""\n',
        encoding="utf-8",
    )

    with pytest.raises(WhatsAppValidationError) as raised:
        build_plan(str(source), **TEMPLATE)

    # The header, Ada's row (two lines), a blank row, then Bob's: row 4, on the file's fifth line.
    assert "recipients row 4: column 'body_parameters' is not JSON" in raised.value.message


@pytest.mark.parametrize(
    ("name", "content"), [("r.jsonl", ""), ("r.csv", "to,body_parameters\n"), ("r.csv", "")]
)
def test_a_file_without_recipients_plans_nothing_like_an_empty_list(
    tmp_path: Path, name: str, content: str
) -> None:
    source = tmp_path / name
    source.write_text(content)

    plan = build_plan(str(source), **TEMPLATE)

    assert plan.count == build_plan([], **TEMPLATE).count == 0 and list(plan.items()) == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"to": "+14155550100", "body_parameters": [NaN]}', "line 1: NaN is not a number"),
        ('{"to": "+14155550100", "body_parameters": [1e400]}', "line 1: 1e400 is too large"),
        ("-14155550100", "line 1: to: -14155550100 is negative"),
    ],
    ids=["nan", "overflowing-float", "negative-number"],
)
def test_numbers_a_message_cannot_carry_are_refused_with_the_line(
    tmp_path: Path, line: str, expected: str
) -> None:
    source = write_lines(tmp_path / "r.jsonl", [line])

    with pytest.raises(WhatsAppValidationError) as raised:
        build_plan(str(source), **TEMPLATE)

    assert f"recipients {expected}" in raised.value.message


def test_a_listed_recipients_non_finite_parameter_is_refused() -> None:
    with pytest.raises(WhatsAppValidationError, match=r"recipients\[0\]: body_parameters\[1\]: inf"):
        build_plan([{"to": "+14155550100", "body_parameters": ["Ada", float("inf")]}], **TEMPLATE)


@pytest.mark.parametrize(
    "second",
    [
        {"to": "14155550100", "body_parameters": ["Ada"], "header": None},
        {"to": "14155550100", "body_parameters": [{"type": "text", "text": "Ada"}]},
        "+14155550100",
    ],
    ids=["a-field-given-as-null", "parameter-objects", "the-shared-parameters"],
)
def test_a_recipient_twice_with_the_same_effective_message_is_a_duplicate(second: Any) -> None:
    # The shared body parameters are the recipient's own: the bare number sends the same message.
    first = {"to": "+14155550100", "body_parameters": ["Ada"]}

    plan = build_plan([first, second, "+14155550101"], **TEMPLATE, body_parameters=["Ada"])

    assert plan.count == 2
    assert [item.to for item in plan.items()] == ["14155550100", "14155550101"]


def test_share_of_gives_any_text_a_share() -> None:
    # A damaged journal may hold a "to" that is not a normalised number: replaying it must not crash.
    assert {share_of(to, 3) for to in ("١٤١٥٥٥٥٠١٠٠", "\udc80", "14155550100")} <= {0, 1, 2}
    assert share_of("14155550100", 7) == zlib.crc32(b"14155550100") % 7  # numbers keep their shares
