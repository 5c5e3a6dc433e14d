"""A small WhatsApp-like HTTP server for the benchmarks, run in a process of its own.

It answers every ``POST`` like Graph's ``/messages`` after ``--latency`` seconds, and allows at most
``--limit`` accepted requests in any one-second window: beyond that it answers 429 at once, as Maton
does, and counts it. ``GET /stats`` returns the counters (accepted TCP connections among them);
``POST /reset`` clears them. HTTP/1.1 with
keep-alive, on asyncio, so that the server's own timing is not what the benchmark measures.

    python benchmarks/_server.py --latency 0.05 --limit 80     # prints the port, then serves
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections import deque
from typing import Any


class Stats:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reset()

    def reset(self) -> None:
        self.accepted: deque[float] = deque()
        self.requests = 0
        self.sent = 0
        self.throttled = 0
        self.max_in_window = 0
        self.connections = 0
        self.recipients: dict[str, int] = {}

    def admit(self, to: str | None) -> bool:
        now = time.monotonic()
        self.requests += 1
        while self.accepted and self.accepted[0] <= now - 1.0:
            self.accepted.popleft()
        if self.limit and len(self.accepted) >= self.limit:
            self.throttled += 1
            return False
        self.accepted.append(now)
        self.max_in_window = max(self.max_in_window, len(self.accepted))
        self.sent += 1
        if to:
            self.recipients[to] = self.recipients.get(to, 0) + 1
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "sent": self.sent,
            "throttled": self.throttled,
            "max_in_any_second": self.max_in_window,
            "connections": self.connections,
            "distinct_recipients": len(self.recipients),
            "duplicates": sum(n - 1 for n in self.recipients.values() if n > 1),
        }


def _response(status: int, body: Any, extra: str = "") -> bytes:
    payload = json.dumps(body).encode()
    reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests"}.get(status, "OK")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n{extra}\r\n"
    )
    return head.encode() + payload  # one write: headers and body in the same segment


async def serve(latency: float, limit: int) -> None:
    stats = Stats(limit)
    counter = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal counter
        stats.connections += 1  # accepted TCP connections: a client that reuses them opens few
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                if method == "GET" and path == "/stats":
                    writer.write(_response(200, stats.as_dict()))
                elif method == "POST" and path == "/reset":
                    stats.reset()
                    writer.write(_response(200, {}))
                elif method == "POST":
                    to = None
                    with contextlib.suppress(ValueError):
                        to = json.loads(body).get("to")
                    if stats.admit(to):
                        counter += 1
                        if latency:
                            await asyncio.sleep(latency)
                        answer = {
                            "messaging_product": "whatsapp",
                            "contacts": [{"input": to, "wa_id": to}],
                            "messages": [{"id": f"wamid.BENCH{counter}"}],
                        }
                        writer.write(_response(200, answer))
                    else:
                        error = {"error": {"message": "Rate limit exceeded", "code": 429}}
                        writer.write(_response(429, error, "Retry-After: 1\r\n"))
                else:
                    writer.write(_response(404, {"error": {"message": "not found"}}))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--limit", type=int, default=0, help="accepted requests per second (0: no limit)")
    args = parser.parse_args()
    asyncio.run(serve(args.latency, args.limit))


if __name__ == "__main__":
    main()
