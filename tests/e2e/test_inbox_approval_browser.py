"""A person taps the approval's button in the sandbox's inbox page (headless Chromium) and the waiting
DAG proceeds: the tap goes page -> sandbox -> signed webhook -> receiver -> event store -> the deferred
approval under ``dag.test()``. A stranger's answer, sent first, is ignored."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.dagrun import run_dag, task_states
from tests.e2e.conftest import Conversation
from tests.e2e.test_conversations import APPROVER, DAGS, SECOND_APPROVER, STRANGER, WAIT, eventually

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _tap_in_the_inbox(talk: Conversation, errors: list[BaseException]) -> threading.Thread:
    """In the background, once both approvers were asked: a stranger answers Publish (through the
    sandbox's API: the inbox shows only the business's conversations), then the first approver taps
    Publish in the page, as a person would."""

    def play() -> None:
        from airflow_provider_whatsapp.sandbox.browser import chromium_page

        try:
            asked = eventually(
                lambda: len(questions := _questions(talk)) == 2 and questions, "both approvers to be asked"
            )
            mine = next(m for m in asked if m.wa_id == APPROVER)
            publish = next(
                b["reply"] for b in mine.content["action"]["buttons"] if b["reply"]["title"] == "Publish"
            )
            tap = {"type": "button_reply", "button_reply": publish}
            stranger = talk.sandbox.add_inbound(
                STRANGER, message={"type": "interactive", "interactive": tap}, reply_to=mine.id
            )
            eventually(lambda: talk.store().message(stranger.id), "the stranger's answer to be stored")
            with chromium_page() as page:
                page.goto(f"{talk.sandbox.url}/#{APPROVER}")
                # The reply buttons under the question, drawn by the page: tap the one titled Publish.
                button = page.locator(f'.choice[data-button-id="{publish["id"]}"]')
                button.first.click(timeout=15_000)
                eventually(
                    lambda: any(r.sender == APPROVER for r in talk.store().replies(mine.id)), "the tap"
                )
        except BaseException as error:  # the test thread reports it
            errors.append(error)

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    return thread


def _questions(talk: Conversation) -> list[Any]:
    return [
        m for n in (APPROVER, SECOND_APPROVER) for m in talk.sandbox.messages_to(n) if m.type == "interactive"
    ]


def test_a_tap_in_the_inbox_approves_and_the_dag_proceeds(
    chromium: str, conversation: Conversation, dags_folder: Path, tmp_path: Path
) -> None:
    errors: list[BaseException] = []
    person = _tap_in_the_inbox(conversation, errors)
    dag_run = run_dag(DAGS / "e2e_approval.py", dags_folder, "e2e_approval", run_conf={"out": str(tmp_path)})
    person.join(timeout=WAIT)

    assert errors == []
    assert task_states(dag_run) == {"ask_to_publish": "success", "publish": "success"}
    answer = json.loads((tmp_path / "published.json").read_text())
    assert (answer["decision"], answer["by"]) == ("approve", APPROVER)
    (tap,) = [r for r in conversation.store().replies(answer["message_id"]) if r.sender == APPROVER]
    assert answer["wamid"] == tap.wamid and tap.button_title == "Publish"
