"""The error-code table is the one source of the provider's error classes: each row names a class that
exists with the row's retryability, each code answered by a server over a real socket raises that
class, and the classes' docs list exactly the table's codes."""

from __future__ import annotations

import re

import pytest

from airflow_provider_whatsapp import errors
from airflow_provider_whatsapp.hooks.maton import MatonHook
from airflow_provider_whatsapp.spec import error_codes
from airflow_provider_whatsapp.spec.error_codes import ERROR_CODES, ErrorCode
from tests.loopback import LoopbackServer, Reply, graph_error

TEXT = {"type": "text", "text": {"body": "hello"}}
ROWS = [*ERROR_CODES.values(), error_codes.OTHER_TEMPLATE_ERROR]
# A code from each range the table covers by span rather than by row, and the row it reads as.
RANGE_CODES = {
    error_codes.PERMISSION_CODES.stop - 1: error_codes.lookup(error_codes.PERMISSION_CODES.start),
    error_codes.TEMPLATE_CODES.stop - 1: error_codes.OTHER_TEMPLATE_ERROR,
}


@pytest.mark.parametrize("row", ROWS, ids=lambda row: f"{row.code}-{row.error_class}")
def test_each_row_names_a_provider_error_with_the_rows_retryability(row: ErrorCode) -> None:
    cls = getattr(errors, row.error_class, None)
    assert isinstance(cls, type) and issubclass(cls, errors.WhatsAppError), row.error_class
    assert issubclass(cls, errors.WhatsAppRetryableError) == (row.kind == "retryable"), row
    assert cls.retryable == (row.kind == "retryable")
    # A permanent error fails the task without Airflow retries; a retryable one leaves that to Airflow.
    assert issubclass(cls, errors.AirflowFailException) == (row.kind == "permanent")
    assert row.title and row.advice and 400 <= row.http_status < 600


def _answers(server: LoopbackServer, phone_number_id: str, code: int, row: ErrorCode) -> None:
    body = graph_error(code, row.title, details=f"details of {code}")
    server.route(
        "POST", rf"^/whatsapp-business/v21\.0/{phone_number_id}/messages$", Reply(row.http_status, json=body)
    )


CASES = [(code, row) for code, row in ERROR_CODES.items()] + list(RANGE_CODES.items())


@pytest.mark.parametrize("code,row", CASES, ids=[str(code) for code, _ in CASES])
def test_each_code_answered_over_a_socket_raises_the_rows_class(
    gateway: LoopbackServer, code: int, row: ErrorCode | None
) -> None:
    assert row is not None
    phone_number_id = f"7{code:09d}"
    _answers(gateway, phone_number_id, code, row)
    hook = MatonHook(timeout=10, rate_limit=0)
    hook.retry_policy = type(hook.retry_policy)(max_attempts=1, base_delay=0.01)

    with pytest.raises(errors.WhatsAppError) as caught:
        hook.send_message({**TEXT, "to": "14155550100"}, phone_number_id=phone_number_id)

    error = caught.value
    assert type(error).__name__ == row.error_class
    assert error.code == code and error.http_status == row.http_status
    assert error.retryable == (row.kind == "retryable")
    assert row.advice in str(error) and f"details of {code}" in str(error)
    assert len(gateway.requests_to("POST", rf"^/whatsapp-business/v21\.0/{phone_number_id}/messages$")) == 1


def _documented_codes(cls: type) -> list[str]:
    match = re.search(r"Graph error codes: (.*)\.", cls.__doc__ or "")
    return match.group(1).split(", ") if match else []


def test_each_class_documents_exactly_its_codes_from_the_table() -> None:
    expected: dict[str, list[str]] = {}
    for row in ERROR_CODES.values():
        expected.setdefault(row.error_class, []).append(str(row.code))
    for name, codes in expected.items():
        listed = [code for code in _documented_codes(getattr(errors, name)) if not code.startswith("any")]
        assert listed == codes, name
    # No class states codes in its own words: the only code list in a docstring is the generated one.
    for name, cls in vars(errors).items():
        if isinstance(cls, type) and issubclass(cls, errors.WhatsAppError):
            prose = (cls.__doc__ or "").split("Graph error codes:")[0]
            assert not re.search(r"\b\d{4,6}\b|\bcodes? \d", prose), f"{name}: {prose!r}"
