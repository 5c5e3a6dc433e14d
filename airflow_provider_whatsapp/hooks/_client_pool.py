"""Many async requests at once over kept-alive connections: several small httpx pools, not one large one.

One httpx client keeps at most ``max_keepalive_connections`` idle connections (20 by default). With more
requests than that in flight, most answers close their connection and the next request opens a new one
(and pays a TLS handshake on a real gateway). Raising the keep-alive count does not help: httpcore's
pool looks at each of its connections, polling every idle socket, whenever a request starts or ends,
so each request costs more the larger the pool.

So :class:`AsyncClients` holds several clients of :data:`CONNECTIONS_PER_CLIENT` connections each, all
kept alive, and lends each request the first one with a connection to spare; a new client is made only
when every client has that many requests in flight. A pool never holds more requests than connections,
so none waits in httpcore's queue and none of its connections is closed for being one idle too many.
Every client comes from the same factory (timeouts, headers, the per-request deadline, one TLS
context).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

# Connections (all kept alive) of each client: small enough that httpcore's scan of them stays cheap.
CONNECTIONS_PER_CLIENT = 16
# Clients at most: beyond this many requests in flight (64 x 16), they queue in the least busy pool.
MOST_CLIENTS = 64


class Lent:
    """One client of :class:`AsyncClients` and how many requests it is carrying."""

    __slots__ = ("busy", "client")

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.busy = 0


class AsyncClients:
    """The async clients of one hook on one event loop; see the module's docstring.

    :param make: makes one client given its number of connections (kept alive, all of them).
    """

    def __init__(self, make: Callable[[int], httpx.AsyncClient]) -> None:
        self._make = make
        self._members: list[Lent] = []

    @property
    def first(self) -> httpx.AsyncClient:
        """The first client (made if there is none yet): for callers that want one client."""
        if not self._members:
            self._members.append(Lent(self._make(CONNECTIONS_PER_CLIENT)))
        return self._members[0].client

    @property
    def clients(self) -> int:
        """How many clients there are now."""
        return len(self._members)

    def borrow(self) -> Lent:
        """The first client with a connection to spare, counted busy with one more request until
        :meth:`give_back`; a new client when none has (or the least busy, once there are
        :data:`MOST_CLIENTS`).

        Filling the first clients up, rather than spreading requests evenly, keeps their connections
        busy: httpcore polls each idle connection of a pool for every request through it.
        """
        members = self._members
        for member in members:
            if member.busy < CONNECTIONS_PER_CLIENT:
                break
        else:
            if len(members) < MOST_CLIENTS:
                member = Lent(self._make(CONNECTIONS_PER_CLIENT))
                members.append(member)
            else:
                member = min(members, key=lambda m: m.busy)
        member.busy += 1
        return member

    @staticmethod
    def give_back(lent: Lent) -> None:
        """The request that borrowed ``lent`` is over (answered, failed or cancelled)."""
        lent.busy -= 1

    async def aclose(self) -> None:
        """Close every client's connections."""
        members, self._members = self._members, []
        for member in members:
            await member.client.aclose()
