"""Ports for the servers a test session starts: free ones, asked of the kernel, so two test sessions on one machine
(or a platform started by `make up`) never collide."""

from __future__ import annotations

import socket
from contextlib import ExitStack


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing listens on now. All are held until all are picked, so none comes twice; the
    kernel hands out ephemeral ports in turn, so the test's own server binding one next is, in practice, not raced."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def free_port() -> int:
    return free_ports(1)[0]
