"""One pacing design and one retry rule: the hook's limiter and the bulk engine count the same window the
same way, and wait the same way after a refusal."""

from __future__ import annotations

import ast
import asyncio
import itertools
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_whatsapp.bulk.engine import BulkConfig, BulkItem
from airflow_provider_whatsapp.bulk.progress import LocalJournal
from airflow_provider_whatsapp.errors import (
    WhatsAppPairRateLimitError,
    WhatsAppRateLimitError,
    WhatsAppTransientError,
    error_from_response,
)
from airflow_provider_whatsapp.hooks import _pacing
from airflow_provider_whatsapp.hooks._pacing import Pacer, RequestWindow, limiter_for
from airflow_provider_whatsapp.hooks._retry import RetryPolicy
from airflow_provider_whatsapp.hooks.maton import MatonHook
from airflow_provider_whatsapp.spec.limits import PAIR_RATE_INTERVAL_SECONDS, PAIR_RATE_MAX_WAIT_SECONDS
from tests.bulk.helpers import MESSAGES, digits, max_in_any_window, numbers, run_through_hook
from tests.conftest import REPO_ROOT, connection_json
from tests.loopback import LoopbackServer, Reply, graph_error, sent

PACKAGE = REPO_ROOT / "airflow_provider_whatsapp"
TEXT = {"to": "+1 415 555 0100", "type": "text", "text": {"body": "Your report is ready"}}


# --- one window, whoever sends -------------------------------------------------------------------


def _hook_sends(count_sync: int, count_async: int) -> None:
    """``count_sync`` sends from as many threads and ``count_async`` from one event loop, at once, each
    from its own hook (its own connection): they meet only in the process-wide limiter."""

    def one_sync() -> None:
        with MatonHook() as hook:
            hook.send_message(TEXT)

    async def all_async() -> None:
        hooks = [MatonHook() for _ in range(count_async)]
        try:
            await asyncio.gather(*(hook.asend_message(TEXT) for hook in hooks))
        finally:
            for hook in hooks:
                await hook.aclose()

    threads = [threading.Thread(target=one_sync) for _ in range(count_sync)]
    threads.append(threading.Thread(target=asyncio.run, args=(all_async(),)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)


def _bulk_sends(tmp_path: Path, count: int, rate: float) -> Any:
    items = [BulkItem(to=digits(n), payload={**TEXT, "to": digits(n)}) for n in numbers(count)]
    journal = LocalJournal(str(tmp_path / "journal.jsonl"))
    return run_through_hook(items, journal, BulkConfig(max_rate=rate, max_concurrency=12))


def test_the_hook_and_the_bulk_engine_keep_one_rate_on_one_counting_server(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer, tmp_path: Path
) -> None:
    rate = 5
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(loopback.url, rate_limit=rate))
    maton_conn = loopback
    # Answers take a varying time, so requests overlap and answers come back out of order.
    delays = iter([0.01, 0.25, 0.05, 0.4, 0.02, 0.15] * 20)
    lock = threading.Lock()

    def answer(request: Any) -> Reply:
        with lock:
            return Reply(json=sent(), delay=next(delays))

    maton_conn.route("POST", MESSAGES, answer)

    _hook_sends(count_sync=8, count_async=6)
    by_hook = [r.at for r in maton_conn.requests]
    maton_conn.requests.clear()
    result = _bulk_sends(tmp_path, 14, rate)
    by_bulk = [r.at for r in maton_conn.requests]

    assert len(by_hook) == 14 and result.sent == 14
    # The server's own count, on arrival: never more than the rate in any one-second window.
    assert max_in_any_window(by_hook) <= rate
    assert max_in_any_window(by_bulk) <= rate
    # ... and both by the same window: the hook's limiter is the class the bulk pacer wraps.
    settings = MatonHook().settings
    assert settings.rate_limit == rate
    hook_limiter = limiter_for(settings.base_url, settings.api_key, settings.rate_limit)
    assert type(hook_limiter) is type(Pacer(rate).window) is RequestWindow


def test_a_request_that_reaches_the_server_late_is_not_overtaken(maton_conn: LoopbackServer) -> None:
    """A request in flight counts as arriving now, however long ago it left: the server may count it
    only when it finally reads it (here: its accept queue is held for 2.5 s)."""
    maton_conn.route("POST", MESSAGES, Reply(json=sent()))
    # Maton's rate is per account: one key, one window, whichever hook (connection) sends.
    with MatonHook(rate_limit=1) as warm:
        warm.send_message(TEXT)  # a quick round trip first, and out of the window by the time B leaves
    maton_conn.requests.clear()

    server = maton_conn._server
    accept = server.get_request
    held = threading.Event()
    held.set()

    def held_accept() -> Any:
        connection = accept()
        while held.is_set():
            time.sleep(0.01)
        return connection

    server.get_request = held_accept  # type: ignore[method-assign]

    def send() -> None:
        with MatonHook(rate_limit=1) as hook:  # a new connection: it waits in the accept queue
            hook.send_message(TEXT)

    first = threading.Thread(target=send)
    first.start()
    time.sleep(1.3)  # longer than the window: only the first request's arrival can hold the second
    second = threading.Thread(target=send)
    second.start()
    time.sleep(2.0)
    held.clear()
    for thread in (first, second):
        thread.join(timeout=30)

    arrivals = sorted(r.at for r in maton_conn.requests)
    assert len(arrivals) == 2
    assert max_in_any_window(arrivals) == 1


def test_an_answer_on_another_thread_wakes_an_event_loop_waiting_for_room() -> None:
    now = [10.0]
    window = RequestWindow(1, clock=lambda: now[0])
    in_flight, _ = window.try_depart()
    assert in_flight is not None
    assert window.room() == (False, None)  # nothing fits until it is answered

    def answer_later() -> None:
        time.sleep(0.3)
        now[0] = 20.0  # long after: once answered, it is out of the window at once
        window.answered(in_flight)

    async def wait_for_room() -> Any:
        return await asyncio.wait_for(window.depart(), timeout=10)

    threading.Thread(target=answer_later).start()
    started = time.monotonic()
    departure = asyncio.run(wait_for_room())
    assert departure.left == 20.0
    assert time.monotonic() - started < 5  # woken by the answer, not by a poll or a timeout


def test_a_thread_waiting_for_room_is_woken_by_an_answer() -> None:
    now = [10.0]
    window = RequestWindow(1, clock=lambda: now[0])
    in_flight, _ = window.try_depart()
    assert in_flight is not None

    def answer_later() -> None:
        time.sleep(0.3)
        now[0] = 20.0
        window.answered(in_flight)

    threading.Thread(target=answer_later).start()
    started = time.monotonic()
    assert window.depart_blocking().left == 20.0
    assert time.monotonic() - started < 5


def test_a_request_counts_from_its_first_written_byte_not_from_connecting() -> None:
    """Connecting took 0.5 s: the round trip is the 10 ms after the write, so the server saw the request
    at about 0.5 s, and it stays in the window until about 1.5 s (not 1.0 s, as from when it left)."""
    now = [0.0]
    window = RequestWindow(1, clock=lambda: now[0])
    with window.sending() as entry:
        now[0] = 0.5
        _pacing.on_the_wire()  # what the transport's trace hook calls when the request starts
        now[0] = 0.51
    assert entry.left == 0.5
    now[0] = 1.2
    fits, wait = window.room()
    assert not fits and wait == pytest.approx(0.5 + window.span - 1.2)


def test_the_hook_marks_the_write_through_httpxs_trace(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", MESSAGES, Reply(json=sent()))
    hook = MatonHook(rate_limit=3)
    hook.send_message(TEXT)
    settings = hook.settings
    window = limiter_for(settings.base_url, settings.api_key, settings.rate_limit)
    assert window is not None
    ((_, _, entry),) = window._arrived  # answered, so among the arrived
    assert entry.written and entry.answered is not None and entry.left <= entry.answered
    assert _pacing._sending.get() is None  # nothing of the send lingers in the context


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf")])
def test_a_window_needs_a_positive_finite_rate(rate: float) -> None:
    with pytest.raises(ValueError, match="rate must be a positive number"):
        RequestWindow(rate)


# --- one retry rule ------------------------------------------------------------------------------


def test_the_pair_rate_wait_is_the_policys_meta_interval_doubling_to_its_cap() -> None:
    error = error_from_response(400, graph_error(131056), may_have_taken_effect=True)
    assert isinstance(error, WhatsAppPairRateLimitError)
    assert error.retry_after is None  # only the server's Retry-After: the wait is the policy's

    policy = RetryPolicy()
    waits = [policy.wait_after(n, error, pair_refusals=n) for n in range(1, 7)]
    assert waits == [6.0, 12.0, 24.0, 48.0, 60.0, 60.0]
    assert waits[0] == PAIR_RATE_INTERVAL_SECONDS and waits[-1] == PAIR_RATE_MAX_WAIT_SECONDS
    # The bulk engine's policy is the same, with its own first wait.
    assert BulkConfig(max_rate=1, max_concurrency=1).retry_policy.pair_rate_wait(1) == 6.0
    assert BulkConfig(max_rate=1, max_concurrency=1, pair_backoff=0.5).retry_policy.pair_rate_wait(3) == 2.0


def test_retry_after_is_a_floor_for_every_wait_and_backoff_doubles_with_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    throttled = WhatsAppRateLimitError("slow down", retry_after=3.0)
    assert policy.wait_after(1, throttled) == 3.0
    pair = WhatsAppPairRateLimitError("same recipient", retry_after=20.0)
    assert policy.wait_after(1, pair, pair_refusals=1) == 20.0
    transient = WhatsAppTransientError("again")
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        wait = policy.wait_after(attempt, transient)
        assert ceiling / 2 <= wait <= ceiling


def test_the_hooks_pair_rate_retry_doubles_like_the_bulk_engines(maton_conn: LoopbackServer) -> None:
    refused = Reply(400, graph_error(131056, "Pair rate limit hit"))
    maton_conn.route("POST", MESSAGES, refused, refused, refused, Reply(json=sent("wamid.OK")))
    hook = MatonHook(rate_limit=0)
    hook.retry_policy = RetryPolicy(base_delay=0.01, pair_delay=0.3, max_pair_delay=0.6)

    assert MatonHook.message_id(hook.send_message(TEXT)) == "wamid.OK"

    at = [r.at for r in maton_conn.requests]
    gaps = [later - earlier for earlier, later in itertools.pairwise(at)]
    assert len(gaps) == 3
    assert gaps[0] >= 0.3 and gaps[1] >= 0.6 and gaps[2] >= 0.6  # 0.3, doubled, then capped
    assert gaps[2] < 1.2 + 2.0  # capped: an uncapped third wait would be 1.2 s (slack for a busy machine)


# --- one place for each --------------------------------------------------------------------------


def _modules(*, skip: tuple[str, ...]) -> list[tuple[str, ast.Module]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if not name.startswith(skip):
            found.append((name, ast.parse(path.read_text(encoding="utf-8"))))
    return found


# The sandbox is the server side: it counts arrivals as the service does, the thing the pacers keep to.
_SERVER_SIDE = ("sandbox/",)
_WINDOW_METHODS = {"reserve", "depart", "try_depart", "depart_blocking", "room", "answered"}


def test_only_the_pacing_module_keeps_a_window_of_departures() -> None:
    offenders = []
    for name, tree in _modules(skip=(*_SERVER_SIDE, "hooks/_pacing.py")):
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                methods = {
                    n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                }
                if methods & _WINDOW_METHODS:
                    offenders.append(f"{name}: class {node.name} paces ({sorted(methods & _WINDOW_METHODS)})")
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    label = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
                    if label.upper().endswith(("_SAFETY", "_MARGIN")):
                        offenders.append(f"{name}: a pacing margin {label}")
    assert offenders == []
    assert {"RequestWindow", "Pacer", "limiter_for", "WINDOW_SAFETY", "PACE_SAFETY"} <= set(vars(_pacing))


def _computes_a_wait(node: ast.AST) -> str | None:
    if (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Pow)
        and isinstance(node.left, ast.Constant)
        and node.left.value == 2
    ):
        return "a doubling (2 ** n)"
    if isinstance(node, ast.Attribute) and node.attr in {"uniform", "parsedate_to_datetime", "parsedate"}:
        return f"{node.attr} (jitter or a Retry-After date)"
    if isinstance(node, ast.Name) and node.id in {"PAIR_RATE_INTERVAL_SECONDS", "PAIR_RATE_MAX_WAIT_SECONDS"}:
        return f"{node.id} (the pair-rate wait)"
    return None


def test_only_the_retry_module_computes_a_wait_or_reads_retry_after() -> None:
    offenders = []
    for name, tree in _modules(skip=(*_SERVER_SIDE, "hooks/_retry.py", "spec/")):
        for node in ast.walk(tree):
            found = _computes_a_wait(node)
            if found:
                offenders.append(f"{name}:{getattr(node, 'lineno', '?')}: {found}")
    assert offenders == []
