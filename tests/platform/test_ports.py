"""Two test sessions on one machine never collide: each asks the kernel for free ports (tests/ports.py)."""

from __future__ import annotations

import socket

from tests.ports import free_ports


def test_a_test_session_listens_on_free_ports_of_its_own(settings):
    ports = [settings.api_port, settings.dagster_port, settings.dagster_code_server_port, settings.local_llm_port]
    assert len(set(ports)) == 4
    assert not {18400, 13400, 14400, 18765} & set(ports)  # the fixed ones two sessions fought over
    other_session = free_ports(4)
    assert len(set(other_session)) == 4
    for port in other_session:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # free: nothing else holds it
