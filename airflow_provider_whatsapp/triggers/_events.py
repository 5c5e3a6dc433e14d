"""Waiting on the webhook event store: what every task that waits for WhatsApp shares.

A wait asks one question of the store again and again (``look``: a decided outcome as a dict, or ``None``
to keep waiting) until it is answered or the end time passes. The same look runs in a worker (poke mode,
or an operator polling in-process) and in the triggerer, so both modes decide alike.

The store travels to the triggerer as its ``EventStore.describe()`` (a root, an object-storage conn id,
a retention: no secret) and is rebuilt there.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp._compat import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from airflow_provider_whatsapp.webhooks.store import EventStore

#: ``status`` of the event a wait yields when its end time passed first.
TIMEOUT = "timeout"
#: ``status`` of the event a wait yields when the store could not be read at all.
ERROR = "error"


def tolerant(look: Callable[[], dict[str, Any] | None], log: Any) -> Callable[[], dict[str, Any] | None]:
    """``look``, but a store that cannot be read right now counts as "not decided yet".

    Any exception of a read counts, not only ``OSError``: object storage down, a network share gone, a
    file another process is still writing (half a JSON document), an object-store client's own error
    class. A long wait should not end on a passing fault, and above all a wait after a send must not
    fail with an error Airflow retries (the retry would send again). Each distinct fault is logged once
    (masked by the task's log), so a wait of hours does not repeat it every look.
    """
    logged: set[str] = set()

    def patient_look() -> dict[str, Any] | None:
        try:
            return look()
        except Exception as error:
            from airflow_provider_whatsapp.redact import scrub

            said = scrub(f"{type(error).__name__}: {error}")[:300]
            if said not in logged:
                logged.add(said)
                log.warning("Could not read the WhatsApp event store yet (looking again): %s", said)
            return None

    return patient_look


def end_time_after(timeout: float | None) -> float | None:
    """The epoch second a wait of ``timeout`` seconds starting now ends at; ``None`` waits forever."""
    return time.time() + float(timeout) if timeout else None


def remaining(end_time: float | None) -> float | None:
    """Seconds left before ``end_time`` (never negative); ``None`` when there is no end."""
    return None if end_time is None else max(0.0, end_time - time.time())


def wait_blocking(
    look: Callable[[], dict[str, Any] | None], *, poke_interval: float, end_time: float | None
) -> dict[str, Any] | None:
    """Call ``look`` every ``poke_interval`` seconds in this thread until it decides; ``None`` at the end
    time. For code that cannot defer (a notifier in a callback, a task not deferrable)."""
    while True:
        outcome = look()
        if outcome is not None:
            return outcome
        left = remaining(end_time)
        if left == 0:
            return None
        time.sleep(poke_interval if left is None else min(poke_interval, left))


async def wait_async(
    look: Callable[[], dict[str, Any] | None], *, poke_interval: float, end_time: float | None
) -> dict[str, Any] | None:
    """:func:`wait_blocking` for the triggerer: each look runs in a thread (object storage blocks), the
    waits on the event loop."""
    while True:
        outcome = await asyncio.to_thread(look)
        if outcome is not None:
            return outcome
        left = remaining(end_time)
        if left == 0:
            return None
        await asyncio.sleep(poke_interval if left is None else min(poke_interval, left))


def store_from(description: dict[str, Any]) -> EventStore:
    """The event store a trigger was given, rebuilt from its description."""
    from airflow_provider_whatsapp.webhooks.store import EventStore

    return EventStore.from_description(description)


class EventStoreTrigger(BaseTrigger):
    """Base of the triggers that wait on the event store: one event, decided by :meth:`look`.

    Subclasses implement :meth:`look` and :meth:`timeout_event` and list their own serialised arguments
    in :meth:`arguments`; this class serialises the store's description, the interval and the end time.

    :param store: :meth:`EventStore.describe` of the store to read (no secret in it).
    :param poke_interval: seconds between two looks.
    :param end_time: epoch seconds after which :meth:`timeout_event` is yielded; ``None`` waits forever.
    """

    def __init__(self, *, store: dict[str, Any], poke_interval: float = 5.0, end_time: float | None = None):
        super().__init__()
        self.store = dict(store)
        self.poke_interval = float(poke_interval)
        self.end_time = end_time

    def arguments(self) -> dict[str, Any]:
        """The subclass's own constructor arguments, JSON-safe."""
        raise NotImplementedError

    def look(self, store: EventStore) -> dict[str, Any] | None:
        """One look at the store: the event's payload once decided, else ``None`` (blocking is fine)."""
        raise NotImplementedError

    def timeout_event(self) -> dict[str, Any]:
        """The payload yielded when the end time passed undecided."""
        raise NotImplementedError

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **self.arguments(),
                "store": self.store,
                "poke_interval": self.poke_interval,
                "end_time": self.end_time,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            store = store_from(self.store)
        except Exception as error:  # a store that cannot be built will not become readable by waiting
            yield TriggerEvent({"status": ERROR, "message": f"The event store cannot be opened: {error}"})
            return
        outcome = await wait_async(
            tolerant(lambda: self.look(store), self.log),
            poke_interval=self.poke_interval,
            end_time=self.end_time,
        )
        yield TriggerEvent(outcome if outcome is not None else self.timeout_event())
