"""The harness's own checks can fail: a listener on every interface is seen, process groups are stopped."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from tests.system.harness import Process, _group_pids, _listening, _readable, start_process, stop_processes

# A child that listens on the given address, then forks a grandchild that sleeps (an orphan to be).
_LISTENER = """
import os, socket, sys, time
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
server = socket.socket(family, socket.SOCK_STREAM)
server.bind((sys.argv[1], 0))
server.listen()
if os.fork() == 0:
    time.sleep(600)
print(server.getsockname()[1], flush=True)
time.sleep(600)
"""


def _listener(tmp_path: Path, address: str) -> tuple[Process, int]:
    process = start_process(
        "listener", [sys.executable, "-c", _LISTENER, address], env={}, output=tmp_path / f"{address}.log"
    )
    from tests.system.harness import wait_until

    port = wait_until(lambda: process.output.read_text().strip(), timeout=30, what="the listener")
    return process, int(port)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "127.0.0.1"])
def test_listening_sockets_of_a_process_group_are_found(tmp_path: Path, address: str) -> None:
    if ":" in address and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    process, port = _listener(tmp_path, address)
    try:
        assert _listening(_group_pids(process.popen.pid)) == [f"{address}:{port}"]
    finally:
        stop_processes([process], grace=5)


def test_stopping_a_process_group_leaves_no_orphan(tmp_path: Path) -> None:
    process, _port = _listener(tmp_path, "127.0.0.1")
    assert len(_group_pids(process.popen.pid)) == 2  # the child and its grandchild

    stop_processes([process], grace=5)

    assert process.popen.poll() is not None
    assert _group_pids(process.popen.pid) == set()


def test_json_log_lines_are_shown_with_their_exception() -> None:
    line = (
        '{"level":"error","event":"Task failed with exception",'
        '"error_detail":[{"exc_type":"UndefinedError","exc_value":"\'ds\' is undefined"}]}'
    )
    assert _readable(line) == "error: Task failed with exception [UndefinedError: 'ds' is undefined]"
    assert _readable("plain text") == "plain text"
