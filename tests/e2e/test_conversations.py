"""The inbound half end to end, through real sockets, on Airflow 3 and 2.11 under ``dag.test()``.

The sandbox (WhatsApp) POSTs signed webhooks to the receiver (uvicorn on 127.0.0.1), which stores them
in the event store; deferrable tasks then read the store in the triggerer ``dag.test()`` runs in-process.
Nothing is written into the store by the tests: every event comes through the receiver, so each test
fails if any link of the chain (sandbox -> HTTP -> receiver -> store -> trigger -> task) is missing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp.spec import error_codes
from tests.dagrun import run_dag, task_states
from tests.e2e.conftest import POLL, Conversation

pytestmark = pytest.mark.integration

DAGS = Path(__file__).parent / "dags"
EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
ONCALL = "14155550100"
APPROVER, SECOND_APPROVER, STRANGER = "14155550100", "14155550101", "14155550199"
WAIT = 60.0


def in_background(action: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    return thread


def eventually(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        found = check()
        if found:
            return found
        time.sleep(POLL)
    raise AssertionError(f"gave up waiting for {what}")


def all_delivered(talk: Conversation) -> bool:
    deliveries = talk.sandbox.webhook_deliveries()
    return bool(deliveries) and all(d["state"] == "delivered" for d in deliveries)


# --- a status ---------------------------------------------------------------------------------------


@pytest.mark.whatsapp_sandbox(sent_delay=0.2, delivered_delay=0.3)
def test_a_delivered_status_completes_the_deferred_sensor(
    conversation: Conversation, dags_folder: Path, tmp_path: Path
) -> None:
    dag_run = run_dag(DAGS / "e2e_status.py", dags_folder, "e2e_status", run_conf={"out": str(tmp_path)})

    assert task_states(dag_run) == {"send": "success", "delivered": "success"}, list(tmp_path.glob("*"))
    (sent,) = conversation.sandbox.messages_to(ONCALL)
    # The status came the whole way: the sandbox's deliveries were answered, the store holds them.
    eventually(lambda: all_delivered(conversation), "the sandbox's webhooks to be answered")
    stored = conversation.store().status(sent.id)
    assert stored is not None and stored.status in ("delivered", "read")


@pytest.mark.whatsapp_sandbox(sent_delay=0.1, delivered_delay=0.1, unreachable=(ONCALL,))
def test_an_undeliverable_number_fails_the_sensor_with_its_error(
    conversation: Conversation, dags_folder: Path, tmp_path: Path
) -> None:
    dag_run = run_dag(DAGS / "e2e_status.py", dags_folder, "e2e_status", run_conf={"out": str(tmp_path)})

    assert task_states(dag_run) == {"send": "success", "delivered": "failed"}
    failure = (tmp_path / "delivered.failure").read_text()
    assert failure.startswith(error_codes.lookup(error_codes.UNDELIVERABLE).error_class), failure
    assert str(error_codes.UNDELIVERABLE) in failure


# --- confirm= and the 24-hour window ------------------------------------------------------------------


@pytest.mark.whatsapp_sandbox(require_window=True, sent_delay=0.1, delivered_delay=0.1)
def test_a_free_form_alert_outside_the_window_fails_confirm_with_the_re_engagement_error(
    conversation: Conversation, dags_folder: Path, tmp_path: Path
) -> None:
    dag_run = run_dag(DAGS / "e2e_confirm.py", dags_folder, "e2e_confirm", run_conf={"out": str(tmp_path)})

    # WhatsApp accepted the text (a wamid, HTTP 200) and reported 131047 later, by status.
    (sent,) = conversation.sandbox.messages_to(ONCALL)
    assert sent.id.startswith("wamid.")
    assert task_states(dag_run) == {"alert": "failed"}
    failure = (tmp_path / "alert.failure").read_text()
    assert failure.startswith(error_codes.lookup(error_codes.RE_ENGAGEMENT).error_class + ":"), failure
    assert "template" in failure  # it says what to do instead
    stored = conversation.store().status(sent.id)
    assert stored is not None and stored.status == "failed"
    assert [e.code for e in stored.errors] == [error_codes.RE_ENGAGEMENT]


@pytest.mark.whatsapp_sandbox(require_window=True, sent_delay=0.1, delivered_delay=0.1)
def test_the_etl_alert_outside_the_window_arrives_as_its_template(
    conversation: Conversation, dags_folder: Path
) -> None:
    dag_run = run_dag(EXAMPLES / "example_etl_alert.py", dags_folder, "example_whatsapp_etl_alert")

    assert task_states(dag_run)["load"] == "failed"
    (alert,) = conversation.sandbox.messages_to(ONCALL)
    assert alert.type == "template" and alert.content["name"] == "etl_failure"
    body = next(c for c in alert.content["components"] if c["type"] == "body")
    assert "disk quota exceeded" in body["parameters"][2]["text"]
    eventually(lambda: (s := conversation.store().status(alert.id)) and s.reached("sent"), "its sent status")


@pytest.mark.whatsapp_sandbox(require_window=True, sent_delay=0.1, delivered_delay=0.1)
def test_a_text_that_fails_with_131047_is_followed_by_the_template(
    conversation: Conversation, dags_folder: Path
) -> None:
    # The store believes the window open (an old message WhatsApp no longer counts, say); WhatsApp,
    # which decides, does not: the text is accepted, fails by status, and the template follows.
    from airflow_provider_whatsapp.webhooks.events import InboundMessage

    conversation.store().add(
        InboundMessage(
            wamid="wamid.E2E-EARLIER", sender=ONCALL, type="text", timestamp=int(time.time()) - 60,
            phone_number_id=conversation.sandbox.phone_number_id, text="on call", button_id=None,
            button_title=None, row_id=None, context_id=None, contact_name=None,
        )
    )  # fmt: skip

    dag_run = run_dag(EXAMPLES / "example_etl_alert.py", dags_folder, "example_whatsapp_etl_alert")

    assert task_states(dag_run)["load"] == "failed"
    text, template = conversation.sandbox.messages_to(ONCALL)
    assert text.type == "text" and "disk quota exceeded" in text.content["body"]
    assert text.status == "failed"
    assert template.type == "template" and template.content["name"] == "etl_failure"


# --- the approval ------------------------------------------------------------------------------------


def _questions(talk: Conversation) -> list[Any]:
    return [
        m for n in (APPROVER, SECOND_APPROVER) for m in talk.sandbox.messages_to(n) if m.type == "interactive"
    ]


def _answer_when_asked(talk: Conversation, answers: list[tuple[str, str]]) -> threading.Thread:
    """Once both approvers were asked, each ``(number, button title)`` in order taps that button: an
    approver on the question they got, anyone else on the first approver's; each tap only once the one
    before reached the store (so the order is the store's too)."""

    def play() -> None:
        asked = eventually(lambda: len(_questions(talk)) == 2 and _questions(talk), "both questions")
        by_number = {m.wa_id: m for m in asked}
        for number, title in answers:
            question = by_number.get(number, asked[0])
            buttons = {b["reply"]["title"]: b["reply"]["id"] for b in question.content["action"]["buttons"]}
            tap = {"type": "button_reply", "button_reply": {"id": buttons[title], "title": title}}
            message = {"type": "interactive", "interactive": tap}
            talk.sandbox.add_inbound(number, message=message, reply_to=question.id)
            eventually(
                lambda q=question, n=number: any(r.sender == n for r in talk.store().replies(q.id)),
                "the tap to be stored",
            )

    return in_background(play)


def test_an_approvers_tap_runs_the_downstream_task_and_a_strangers_is_ignored(
    conversation: Conversation, dags_folder: Path, tmp_path: Path
) -> None:
    player = _answer_when_asked(conversation, [(STRANGER, "Hold"), (APPROVER, "Publish")])
    dag_run = run_dag(DAGS / "e2e_approval.py", dags_folder, "e2e_approval", run_conf={"out": str(tmp_path)})
    player.join(timeout=WAIT)

    assert task_states(dag_run) == {"ask_to_publish": "success", "publish": "success"}
    answer = json.loads((tmp_path / "published.json").read_text())
    assert (answer["decision"], answer["by"], answer["approved"]) == ("approve", APPROVER, True)
    assert [len(conversation.sandbox.messages_to(n)) for n in (APPROVER, SECOND_APPROVER)] == [1, 1]


def test_a_reject_skips_the_downstream_task(
    conversation: Conversation, dags_folder: Path, tmp_path: Path
) -> None:
    player = _answer_when_asked(conversation, [(SECOND_APPROVER, "Hold")])
    dag_run = run_dag(DAGS / "e2e_approval.py", dags_folder, "e2e_approval", run_conf={"out": str(tmp_path)})
    player.join(timeout=WAIT)

    assert task_states(dag_run) == {"ask_to_publish": "skipped", "publish": "skipped"}
    assert not (tmp_path / "published.json").exists()


# --- refused, then re-delivered: stored once -----------------------------------------------------------


def test_a_badly_signed_delivery_is_refused_then_redelivered_and_stored_once(
    conversation: Conversation,
) -> None:
    talk = conversation
    talk.sandbox.set_webhook(talk.callback_url, app_secret="not-the-app-secret")
    inbound = talk.sandbox.add_inbound(ONCALL, "Are the numbers in?")

    # Refused with nothing stored, and WhatsApp (the sandbox) keeps trying with backoff.
    eventually(lambda: any(d["attempts"] >= 2 for d in talk.sandbox.webhook_deliveries()), "a second attempt")
    assert talk.stored_files() == []
    assert talk.store().message(inbound.id) is None

    talk.sandbox.set_webhook(talk.callback_url, app_secret=talk.app_secret)
    eventually(lambda: all_delivered(talk), "the re-delivery to be accepted")
    stored = talk.store().message(inbound.id)
    assert stored is not None and stored.text == "Are the numbers in?"
    files = talk.stored_files()

    # Meta re-delivers what it thinks was lost: the same signed body again is acknowledged, not re-stored.
    import hashlib
    import hmac

    import httpx

    from airflow_provider_whatsapp.spec.vocabulary import SIGNATURE_HEADER, SIGNATURE_PREFIX

    with talk.sandbox.state.lock:
        body = talk.sandbox.state.deliveries[-1].body
    signature = SIGNATURE_PREFIX + hmac.new(talk.app_secret.encode(), body, hashlib.sha256).hexdigest()
    again = httpx.post(
        talk.callback_url,
        content=body,
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
        timeout=30,
    )
    assert again.status_code == 200
    assert talk.stored_files() == files
