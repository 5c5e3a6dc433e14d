"""Logs a person can read: no full phone numbers, sentences that read right, no per-request httpx lines,
and values that rendered to nothing named as such."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_whatsapp.errors import WhatsAppValidationError
from tests.conftest import MESSAGES
from tests.loopback import LoopbackServer, Reply, sent


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        ("+1 (415) 555-0100", "+1415***0100"),
        ("14155550100", "+1415***0100"),
        (442079460000, "+4420***0000"),
        ("+49 30 901820", "+493***1820"),
        ("1234567", "+***4567"),
        ("12345", "***"),
        ("not a number", "***"),
    ],
)
def test_phone_numbers_are_masked_in_the_middle(number: str | int, shown: str) -> None:
    from airflow_provider_whatsapp.redact import mask_phone_number

    assert mask_phone_number(number) == shown


def _messages(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """Everything logged: stdlib records (Airflow 2) and what structlog printed (Airflow 3)."""
    out, err = capfd.readouterr()
    return "\n".join([*(record.getMessage() for record in caplog.records), out, err])


def test_the_send_log_line_reads_right_and_hides_the_number(
    gateway: LoopbackServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_whatsapp.operators.messages import WhatsAppSendButtonsOperator

    gateway.route("POST", MESSAGES, Reply(json=sent("wamid.ASK")))
    operator = WhatsAppSendButtonsOperator(
        task_id="ask", to="+1 415 555 0100", body="Publish?", buttons=[{"id": "y", "title": "Yes"}]
    )
    caplog.set_level(logging.INFO)

    operator.execute(context={})

    logged = _messages(caplog, capfd)
    assert "Sent an interactive message to +1415***0100: wamid.ASK" in logged
    assert "14155550100" not in logged
    assert "555 0100" not in logged


# A fresh interpreter, like a task process: Airflow configures logging on import, then the provider loads.
_SEND_ONCE = """
import logging, sys
import airflow
from airflow_provider_whatsapp.hooks.maton import MatonHook

root = logging.getLogger()
root.setLevel(logging.INFO)
root.addHandler(logging.StreamHandler(sys.stdout))  # whatever Airflow's handlers do, INFO shows here
with MatonHook() as hook:
    hook.send_message({"to": "14155550100", "type": "text", "text": {"body": "hi"}})
print("sent")
"""


def test_no_per_request_httpx_lines_at_info(gateway: LoopbackServer) -> None:
    import os
    import subprocess
    import sys

    gateway.route("POST", MESSAGES, Reply(json=sent("wamid.QUIET")))

    ran = subprocess.run(
        [sys.executable, "-c", _SEND_ONCE], capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )

    assert ran.returncode == 0, ran.stderr
    assert "sent" in ran.stdout
    assert len(gateway.requests) == 1, "the request did not reach the loopback gateway"
    assert "HTTP Request:" not in ran.stdout + ran.stderr


def test_a_notifier_logs_which_field_failed_to_render_and_still_alerts(
    gateway: LoopbackServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    import datetime

    from airflow_provider_whatsapp.notifications.whatsapp import WhatsAppNotifier

    try:
        from airflow.sdk import DAG
    except ImportError:
        from airflow import DAG

    gateway.route("POST", MESSAGES, Reply(json=sent("wamid.FALLBACK")))
    notifier = WhatsAppNotifier(to="+1 415 555 0100", body="Load for {{ ds }} failed: {{ exception }}")
    dag = DAG("render_fails", schedule=None, start_date=datetime.datetime(2026, 1, 1))
    caplog.set_level(logging.INFO)

    notifier({"dag": dag, "run_id": "manual__1", "exception": RuntimeError("quota exceeded")})

    (request,) = gateway.requests
    body = request.json["text"]["body"]
    assert body.startswith("Airflow: render_fails (run manual__1) failed: quota exceeded")
    assert "its body failed to render" in body
    logged = _messages(caplog, capfd)
    assert "'body' failed to render (UndefinedError: 'ds' is undefined)" in logged
    assert "+1415***0100: wamid.FALLBACK" in logged


def test_a_notifier_without_a_recipient_after_rendering_says_so(gateway: LoopbackServer) -> None:
    import datetime

    from airflow_provider_whatsapp.notifications.whatsapp import WhatsAppNotifier

    try:
        from airflow.sdk import DAG
    except ImportError:
        from airflow import DAG

    notifier = WhatsAppNotifier(to="{{ var_that_does_not_exist }}", body="hello")
    dag = DAG("render_fails", schedule=None, start_date=datetime.datetime(2026, 1, 1))

    context = {"dag": dag}
    notifier.render_template_fields(context)

    with pytest.raises(WhatsAppValidationError, match="to: failed to render"):
        notifier.notify(context)
    assert gateway.requests == []


@pytest.mark.parametrize(
    ("build", "field"),
    [
        ({"body_parameters": ["Ada", None]}, "body_parameters[1]"),
        ({"body_parameters": [None]}, "body_parameters[0]"),
    ],
)
def test_a_value_that_rendered_to_none_says_so(build: dict, field: str) -> None:
    from airflow_provider_whatsapp.messages import TemplateMessage

    with pytest.raises(WhatsAppValidationError) as raised:
        TemplateMessage.build(name="weekly_digest", language_code="en_US", **build)

    assert f"{field}" in str(raised.value)
    assert "rendered to None" in str(raised.value)
    assert "Input should be" not in str(raised.value)


def test_an_operator_field_that_rendered_to_none_fails_before_any_request(gateway: LoopbackServer) -> None:
    from airflow_provider_whatsapp.operators.messages import WhatsAppSendTextOperator

    operator = WhatsAppSendTextOperator(task_id="t", to="+1 415 555 0100", body="{{ ti.xcom_pull('x') }}")
    operator.body = None  # what a native-rendered template or an empty XCom leaves

    with pytest.raises(WhatsAppValidationError, match=r"body: rendered to None"):
        operator.execute(context={})
    assert gateway.requests == []
