"""Shared pieces of the bulk tests: a WhatsApp-like responder that logs who got what, and a task context."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.conftest import PHONE_NUMBER_ID
from tests.loopback import Recorded, Reply, graph_error, sent

MESSAGES = rf"^/whatsapp-business/v21\.0/{PHONE_NUMBER_ID}/messages$"


def numbers(count: int, start: int = 0) -> list[str]:
    """``count`` distinct, valid recipients."""
    return [f"+1 415 555 {i:04d}" for i in range(start, start + count)]


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    """The most of ``times`` that fall in any window of ``window`` seconds (a server's rate count)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def digits(number: str) -> str:
    return "".join(c for c in number if c.isdigit())


class Inbox:
    """Answers sends like WhatsApp and keeps what each recipient received (the "phones").

    ``rules`` maps a recipient (digits) to a list of replies used in turn before normal delivery;
    a reply is a ``Reply`` (not delivered) or ``"deliver-500"`` (delivered, but answered 500).
    """

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.delivered: list[str] = []
        self.attempts: list[tuple[str, float]] = []
        self.rules: dict[str, list[Reply | str]] = {}
        self.on_delivery: Callable[[str, int], None] | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self, request: Recorded) -> Reply:
        to = request.json["to"]
        with self._lock:
            self.attempts.append((to, request.at))
            queued = self.rules.get(to)
            rule = queued.pop(0) if queued else None
            if isinstance(rule, Reply):
                return rule
            self.delivered.append(to)
            count = len(self.delivered)
            wamid = f"wamid.{next(self._ids)}.{uuid.uuid4().hex[:6]}"
        if self.on_delivery is not None:
            self.on_delivery(to, count)
        if rule == "deliver-500":
            return Reply(500, {"error": {"message": "Internal error", "code": 1200}}, delay=self.delay)
        return Reply(json=sent(wamid, to), delay=self.delay)

    def counts(self) -> Counter[str]:
        return Counter(self.delivered)


def throttled_429(retry_after: str = "0.2") -> Reply:
    return Reply(429, {"error": {"message": "Too many requests"}}, headers={"Retry-After": retry_after})


def graph(code: int, status: int = 400, retry_after: str | None = None) -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Reply(status, graph_error(code, "refused"), headers=headers)


def context(
    task_id: str = "bulk", run_id: str | None = None, dag_id: str = "bulk_dag", map_index: int = -1
) -> dict[str, Any]:
    """The part of a task context the bulk operator reads."""
    ti = SimpleNamespace(
        dag_id=dag_id, task_id=task_id, run_id=run_id or f"manual__{uuid.uuid4().hex}", map_index=map_index
    )
    return {"ti": ti}


def journal_file(progress: Path, ctx: dict[str, Any]) -> Path:
    from airflow_provider_whatsapp.bulk.progress import open_journal

    ti = ctx["ti"]
    journal = open_journal(
        str(progress), dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=ti.map_index
    )
    return Path(journal.location)


def text_items(recipients: list[str]) -> list[Any]:
    """A short text to each of ``recipients``, as the engine's items."""
    from airflow_provider_whatsapp.bulk.engine import BulkItem

    return [
        BulkItem(to=digits(r), payload={"to": digits(r), "type": "text", "text": {"body": "hi"}})
        for r in recipients
    ]


def run_through_hook(
    items: Any, journal: Any, config: Any, check: Callable[[Any], None] | None = None
) -> Any:
    """``run_bulk`` of ``items`` through a bulk hook's real async client (one attempt, no limiter of its
    own), then the journal closed; ``check(payload)`` runs before each send."""
    import asyncio

    from airflow_provider_whatsapp.bulk.engine import run_bulk
    from airflow_provider_whatsapp.hooks.maton import MatonHook

    hook = MatonHook(max_attempts=1, rate_limit=0)

    async def send(payload: dict[str, Any]) -> str:
        if check is not None:
            check(payload)
        return MatonHook.message_id(await hook.asend_message(payload))

    async def main() -> Any:
        try:
            return await run_bulk(items, send, journal, config)
        finally:
            await hook.aclose()

    try:
        return asyncio.run(main())
    finally:
        journal.close()
