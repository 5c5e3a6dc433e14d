"""The inbound-message event trigger: filters, its place in the feed kept across a restart, no loss."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow_provider_whatsapp.webhooks.events import InboundMessage
from airflow_provider_whatsapp.webhooks.store import EventStore

from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS
from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.triggers.inbound import CURSORS_FOLDER, WhatsAppInboundMessageTrigger
from tests.conftest import PHONE_NUMBER_ID, connection_json

ANA = "14155550100"
BEN = "14155550101"
on_airflow_3 = pytest.mark.skipif(
    not AIRFLOW_V_3_PLUS, reason="event triggers (AssetWatcher) are Airflow 3's"
)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "events"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MATON_DEFAULT", connection_json("http://127.0.0.1:9", events_path=str(root))
    )
    return root


def message(
    wamid: str, *, sender: str = ANA, text: str | None = "report please", kind: str = "text"
) -> InboundMessage:
    return InboundMessage(
        wamid=wamid, sender=sender, type=kind, timestamp=int(time.time()), phone_number_id=PHONE_NUMBER_ID,
        text=text, button_id=None, button_title=None, row_id=None, context_id=None, contact_name="Ana",
    )  # fmt: skip


class Watcher:
    """Drives a trigger's ``run()`` as the triggerer does, one event at a time."""

    def __init__(self, trigger: WhatsAppInboundMessageTrigger, root: Path) -> None:
        self.events = trigger.run()
        self.root = root
        self.pending: asyncio.Future[Any] | None = None

    async def started(self) -> None:
        """Wait until the trigger has taken its place in the feed (its cursor file exists)."""
        self.pending = asyncio.ensure_future(self.events.__anext__())
        ends = time.monotonic() + 10
        while not any((self.root / CURSORS_FOLDER).glob("*.json")):
            assert time.monotonic() < ends, "the trigger never saved its cursor"
            await asyncio.sleep(0.05)

    async def next(self) -> dict[str, Any]:
        if self.pending is None:
            self.pending = asyncio.ensure_future(self.events.__anext__())
        event = await asyncio.wait_for(self.pending, timeout=10)
        self.pending = None
        return event.payload

    async def stop(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
        await self.events.aclose()


def trigger(**kwargs: Any) -> WhatsAppInboundMessageTrigger:
    return WhatsAppInboundMessageTrigger(poke_interval=0.05, **kwargs)


@on_airflow_3
def test_one_event_per_matching_message_with_the_normalised_message(root: Path) -> None:
    store = EventStore(root, retention=timedelta(days=1))
    store.add(message("wamid.BEFORE"))  # stored before the trigger first ran: no DAG run for it

    async def scenario() -> list[dict[str, Any]]:
        watcher = Watcher(
            trigger(from_numbers=["+1 415 555 0100"], text_pattern=r"(?i)^report", types="text"), root
        )
        await watcher.started()
        store.add(message("wamid.OTHER_SENDER", sender=BEN))
        store.add(message("wamid.NO_MATCH", text="hello"))
        store.add(message("wamid.IMAGE", kind="image", text="report.png"))
        store.add(message("wamid.MATCH", text="Report please"))
        store.add(message("wamid.MATCH2", text="report"))
        got = [await watcher.next(), await watcher.next()]
        await watcher.stop()
        return got

    first, second = asyncio.run(scenario())
    assert (first["wamid"], second["wamid"]) == ("wamid.MATCH", "wamid.MATCH2")
    assert set(first) == {
        "from", "type", "text", "button_id", "button_title", "row_id", "wamid", "timestamp", "contact_name"
    }  # fmt: skip
    assert (first["from"], first["text"], first["contact_name"]) == (ANA, "Report please", "Ana")
    json.dumps(first)  # it becomes the asset event's extra


@on_airflow_3
def test_a_restarted_trigger_resumes_where_it_was_and_loses_nothing(root: Path) -> None:
    store = EventStore(root, retention=timedelta(days=1))

    async def scenario() -> list[str]:
        seen = []
        first = Watcher(trigger(), root)
        await first.started()
        store.add(message("wamid.M1"))
        seen.append((await first.next())["wamid"])
        store.add(message("wamid.M2"))
        seen.append((await first.next())["wamid"])
        # The triggerer stops right after handing M2 over, before the trigger moved past it.
        await first.stop()
        store.add(message("wamid.M3"))  # arrives while no trigger runs

        second = Watcher(trigger(), root)  # a new instance from the same arguments
        seen.append((await second.next())["wamid"])
        seen.append((await second.next())["wamid"])
        await second.stop()
        return seen

    # M1 was passed for good before the stop: not again. M2 may not have reached Airflow: again.
    assert asyncio.run(scenario()) == ["wamid.M1", "wamid.M2", "wamid.M2", "wamid.M3"]


@on_airflow_3
def test_the_same_filters_in_another_spelling_are_the_same_trigger() -> None:
    from airflow.sdk import AssetWatcher
    from airflow.triggers.base import BaseEventTrigger

    one = trigger(from_numbers=["+1 415 555 0101", "14155550100"], types=["text", "button"])
    other = trigger(from_numbers=["14155550100", "+1 (415) 555-0101"], types=["button", "text"])
    assert BaseEventTrigger.hash(*one.serialize()) == BaseEventTrigger.hash(*other.serialize())
    assert one.cursor_name() == other.cursor_name() != trigger().cursor_name()
    AssetWatcher(name="requests", trigger=one)  # Airflow accepts it as an event trigger


@on_airflow_3
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"text_pattern": "(unclosed"}, "text_pattern"),
        ({"from_numbers": ["14155550100", "abc"]}, r"from_numbers\[1\]"),
        ({"types": ["text", ""]}, "types"),
    ],
)
def test_bad_filters_are_refused_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(WhatsAppValidationError, match=field):
        trigger(**kwargs)


@pytest.mark.skipif(AIRFLOW_V_3_PLUS, reason="Airflow 2 only")
def test_on_airflow_2_the_module_imports_and_the_trigger_says_what_it_needs() -> None:
    with pytest.raises(WhatsAppValidationError, match="Airflow 3"):
        trigger()
