"""Run a DAG for each inbound WhatsApp message: an event trigger for ``AssetWatcher`` (Airflow 3).

.. code-block:: python

    from airflow.sdk import DAG, Asset, AssetWatcher

    requests = Asset(
        name="whatsapp_report_requests",
        watchers=[
            AssetWatcher(
                name="whatsapp_report_requests",
                trigger=WhatsAppInboundMessageTrigger(text_pattern=r"(?i)^report", types=["text"]),
            )
        ],
    )

The triggerer reads the event store the webhook receiver fills, in arrival order, and yields one event
per matching message; Airflow records it as an asset event whose ``extra["payload"]`` is the message.

Delivery is at least once. The trigger keeps its place in the feed in a small cursor file in the store
(one per set of filters), and moves it past a page of messages only one ``poke_interval`` after it
yielded them and only if it was not stopped meanwhile: a triggerer that restarts (or is killed before
Airflow recorded the events) yields those messages again rather than losing them. A consumer that must
act once per message de-duplicates on ``wamid`` (e.g. keeps the wamids it handled, or makes its effect
idempotent by wamid). A new trigger starts at the end of the feed: messages stored before it first ran
do not start DAG runs. Cursor files live in the store's ``cursors/`` folder; removing one makes that
trigger start afresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp._compat import EVENT_TRIGGERS, BaseEventTrigger, TriggerEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_whatsapp.webhooks.events import InboundMessage
    from airflow_provider_whatsapp.webhooks.store import EventStore

#: Messages read from the feed at a time.
PAGE_SIZE = 100
#: Longest ``text_pattern`` accepted: a pattern is the user's, but it runs on every inbound message.
TEXT_PATTERN_MAX = 1000
#: Folder of the store holding the triggers' cursor files.
CURSORS_FOLDER = "cursors"


def message_payload(message: InboundMessage) -> dict[str, Any]:
    """What a matching message becomes: the normalised reply form plus the sender's profile name."""
    return {**message.as_reply(), "contact_name": message.contact_name}


class WhatsAppInboundMessageTrigger(BaseEventTrigger):
    """Yield one event per inbound message that matches every filter given (Airflow 3, ``AssetWatcher``).

    The event's payload is ``from``, ``type``, ``text``, ``button_id``, ``button_title``, ``row_id``,
    ``wamid``, ``timestamp`` (ISO-8601, UTC) and ``contact_name``. At least once; ``wamid`` is the
    de-duplication key (see the module's documentation).

    :param from_numbers: only messages from these numbers (any form: ``+1 415 555 0100``).
    :param text_pattern: only messages whose text (a text's body, a caption, a tapped button's or list
        row's title) matches this regular expression (``re.search``).
    :param types: only messages of these webhook types (``text``, ``interactive``, ``button``, ``image``...).
    :param maton_conn_id: Airflow connection of type ``maton`` whose extras say where the events are.
    :param poke_interval: seconds between two reads of the feed.
    """

    def __init__(
        self,
        *,
        from_numbers: str | list[str] | None = None,
        text_pattern: str | None = None,
        types: str | list[str] | None = None,
        maton_conn_id: str = "maton_default",
        poke_interval: float = 5.0,
    ) -> None:
        from airflow_provider_whatsapp.errors import WhatsAppValidationError

        if not EVENT_TRIGGERS:
            raise WhatsAppValidationError(
                "WhatsAppInboundMessageTrigger needs Airflow 3 (event-driven scheduling with AssetWatcher); "
                "on Airflow 2 wait for a message with WhatsAppReplySensor instead."
            )
        super().__init__()
        from airflow_provider_whatsapp.sensors.reply import normalize_senders

        # Normalised and sorted: the same filters given in another order or spelling are the same
        # trigger (Airflow identifies an event trigger by its serialised arguments) with the same cursor.
        self.from_numbers = sorted(normalize_senders("from_numbers", from_numbers)) if from_numbers else []
        self.text_pattern = _check_pattern(text_pattern)
        self.types = sorted(_check_types(types))
        self.maton_conn_id = maton_conn_id
        self.poke_interval = float(poke_interval)
        if not self.poke_interval > 0:
            raise WhatsAppValidationError(f"poke_interval: {poke_interval!r} is not a positive number")
        self._pattern = re.compile(self.text_pattern) if self.text_pattern is not None else None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "from_numbers": self.from_numbers,
                "text_pattern": self.text_pattern,
                "types": self.types,
                "maton_conn_id": self.maton_conn_id,
                "poke_interval": self.poke_interval,
            },
        )

    def matches(self, message: InboundMessage) -> bool:
        """Whether ``message`` passes every filter given."""
        if self.from_numbers and message.sender not in self.from_numbers:
            return False
        if self.types and message.type not in self.types:
            return False
        if self._pattern is not None:
            return message.text is not None and self._pattern.search(message.text) is not None
        return True

    def cursor_name(self) -> str:
        """The cursor file's name: a digest of the filters (not of ``poke_interval``, which a user may
        tune without losing the trigger's place)."""
        filters = {"from_numbers": self.from_numbers, "text_pattern": self.text_pattern, "types": self.types}
        digest = hashlib.sha256(json.dumps(filters, sort_keys=True).encode()).hexdigest()[:32]
        return f"inbound-{digest}.json"

    async def run(self) -> AsyncIterator[TriggerEvent]:
        store = await self._open_store()
        cursor = await asyncio.to_thread(self._start, store)
        while True:
            page, after = await asyncio.to_thread(store.inbound_after, cursor, PAGE_SIZE)
            for message in page:
                if self.matches(message):
                    yield TriggerEvent(message_payload(message))
            # The cursor moves only after a pause: the triggerer hands the events just yielded to Airflow
            # meanwhile. Stopped during the pause, it did not move, and these messages come again.
            await asyncio.sleep(self.poke_interval)
            if page and after is not None and after != cursor:
                await asyncio.to_thread(self._save_cursor, store, after)
                cursor = after

    async def _open_store(self) -> EventStore:
        from airflow_provider_whatsapp.webhooks.store import EventStore

        return await asyncio.to_thread(EventStore.for_connection, self.maton_conn_id)

    def _start(self, store: EventStore) -> str | None:
        """Where to read from: the saved cursor, else the feed from now on (saved at once)."""
        saved = self._load_cursor(store)
        if saved is not None:
            cursor: str | None = saved["cursor"]
            return cursor
        start = store.start_cursor()
        self._save_cursor(store, start)
        return start

    def _cursor_path(self, store: EventStore) -> Any:
        return store.root / CURSORS_FOLDER / self.cursor_name()

    def _load_cursor(self, store: EventStore) -> dict[str, Any] | None:
        path = self._cursor_path(store)
        try:
            saved = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        if not isinstance(saved, dict) or not (
            saved.get("cursor") is None or isinstance(saved["cursor"], str)
        ):
            raise ValueError(f"The cursor file {path} is not one this trigger wrote; remove it to start anew")
        return saved

    def _save_cursor(self, store: EventStore, cursor: str | None) -> None:
        path = self._cursor_path(store)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"cursor": cursor, **self.serialize()[1]})
        if not isinstance(path, Path):
            path.write_text(body)  # an object is replaced whole: never half written
            return
        # A local file is replaced by a rename, so a crash leaves the old cursor or the new one.
        temporary = path.parent / f".{path.name}.tmp"
        temporary.write_text(body)
        os.replace(temporary, path)


def _check_pattern(value: str | None) -> str | None:
    from airflow_provider_whatsapp.errors import WhatsAppValidationError

    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise WhatsAppValidationError(f"text_pattern: {value!r} is not a regular expression")
    if len(value) > TEXT_PATTERN_MAX:
        raise WhatsAppValidationError(
            f"text_pattern: {len(value)} characters; at most {TEXT_PATTERN_MAX} are accepted"
        )
    try:
        re.compile(value)
    except re.error as error:
        raise WhatsAppValidationError(
            f"text_pattern: {value!r} is not a valid regular expression: {error}"
        ) from None
    return value


def _check_types(value: str | list[str] | None) -> list[str]:
    from airflow_provider_whatsapp.errors import WhatsAppValidationError

    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)) or not all(
        isinstance(item, str) and item.strip() for item in items
    ):
        raise WhatsAppValidationError(f"types: {value!r} is not a list of message types such as ['text']")
    return sorted({item.strip() for item in items})
