"""The async clients of a hook: small kept-alive pools filled in turn, each honouring the request's total
deadline, each telling a connection the server closed from one it may reuse."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_provider_whatsapp.errors import WhatsAppConnectError, WhatsAppDeliveryUnknownError
from airflow_provider_whatsapp.hooks._client_pool import CONNECTIONS_PER_CLIENT, MOST_CLIENTS, AsyncClients
from airflow_provider_whatsapp.hooks.maton import MatonHook
from tests.bulk.helpers import MESSAGES
from tests.loopback import LoopbackServer, Reply, sent

TEXT = {"to": "14155550100", "type": "text", "text": {"body": "hello"}}


class Made:
    """Stands in for an httpx client: the pool logic is what is tested here."""

    def __init__(self, connections: int) -> None:
        self.connections = connections


def clients() -> AsyncClients:
    return AsyncClients(Made)  # type: ignore[arg-type]


def test_requests_fill_the_first_client_before_a_new_one_is_made() -> None:
    pool = clients()
    lent = [pool.borrow() for _ in range(CONNECTIONS_PER_CLIENT)]
    assert pool.clients == 1 and {id(x.client) for x in lent} == {id(pool.first)}
    extra = pool.borrow()
    assert pool.clients == 2 and extra.client is not pool.first
    assert extra.client.connections == CONNECTIONS_PER_CLIENT
    # A connection of the first client is free again: the next request goes there, not to the second.
    AsyncClients.give_back(lent[0])
    assert pool.borrow().client is pool.first
    assert pool.clients == 2


def test_beyond_the_most_clients_requests_go_to_the_least_busy() -> None:
    pool = clients()
    lent = [pool.borrow() for _ in range(CONNECTIONS_PER_CLIENT * MOST_CLIENTS)]
    AsyncClients.give_back(lent[-1])
    AsyncClients.give_back(lent[-2])
    AsyncClients.give_back(lent[5])
    more = [pool.borrow() for _ in range(4)]
    assert pool.clients == MOST_CLIENTS
    assert more[0].client is lent[5].client  # the first with room
    assert more[1].client is lent[-1].client  # ... then the last, which had two free
    assert more[2].client is lent[-1].client
    assert max(member.busy for member in pool._members) == CONNECTIONS_PER_CLIENT + 1


def test_every_client_of_the_hook_bounds_the_total_time_of_a_request(maton_conn: LoopbackServer) -> None:
    # Bytes every 0.05 s: no read waits long, only the total deadline can end the request.
    maton_conn.route("POST", MESSAGES, Reply(json=sent(), trickle=0.05))
    hook = MatonHook(timeout=0.5, rate_limit=0, max_attempts=1)
    count = CONNECTIONS_PER_CLIENT + 4  # the last ones go through a second client

    async def main() -> tuple[list[Any], int]:
        try:
            outcomes = await asyncio.gather(
                *(hook.asend_message(TEXT) for _ in range(count)), return_exceptions=True
            )
            return outcomes, hook._async_clients().clients
        finally:
            await hook.aclose()

    started = time.monotonic()
    outcomes, made = asyncio.run(asyncio.wait_for(main(), 10))
    assert made == 2
    # Cut off while answering (or, on a busy machine, while connecting): never left waiting.
    assert all(isinstance(o, (WhatsAppDeliveryUnknownError, WhatsAppConnectError)) for o in outcomes), (
        outcomes
    )
    assert any(isinstance(o, WhatsAppDeliveryUnknownError) for o in outcomes[CONNECTIONS_PER_CLIENT:])
    assert time.monotonic() - started < 5


def test_a_kept_connection_the_server_closed_is_not_reused(maton_conn: LoopbackServer) -> None:
    body = b'{"messages":[{"id":"wamid.ONE"}]}'
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    # The first answer looks kept-alive, then the server closes the connection.
    maton_conn.route("POST", MESSAGES, Reply(raw=answer), Reply(json=sent("wamid.TWO")))
    hook = MatonHook(rate_limit=0, max_attempts=1)

    async def main() -> list[str]:
        try:
            first = MatonHook.message_id(await hook.asend_message(TEXT))
            pool = hook.get_async_conn()._transport._pool  # type: ignore[attr-defined]
            deadline = time.monotonic() + 5
            # The server's close arrives and is seen as such (the pool may have dropped it already).
            while pool.connections and not pool.connections[0].has_expired():
                assert time.monotonic() < deadline, "a connection the server closed still looks usable"
                await asyncio.sleep(0.01)
            second = MatonHook.message_id(await hook.asend_message(TEXT))
            return [first, second]
        finally:
            await hook.aclose()

    assert asyncio.run(main()) == ["wamid.ONE", "wamid.TWO"]
    assert maton_conn.connections == 2


@pytest.mark.parametrize("closed_fd", [True])
def test_a_stream_without_a_socket_falls_back_to_the_backend(closed_fd: bool) -> None:
    from airflow_provider_whatsapp.hooks._deadline_streams import _AsyncStream

    class NoSocket:
        def get_extra_info(self, info: str) -> Any:
            return {"socket": None, "is_readable": "asked the backend"}[info]

    assert _AsyncStream(NoSocket()).get_extra_info("is_readable") == "asked the backend"  # type: ignore[arg-type]
