"""The suite's one port helper (tests/ports.py)."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.ports import kept_port


def test_a_kept_port_is_one_no_connection_can_be_handed() -> None:
    """``kept_port`` (every port a test picks for a server to bind later: a CI run failed
    with `cannot listen on 127.0.0.1:39853: the port is in use`, a port from a bind to
    port 0, released, taken before the third gateway bound it) hands free ports below the
    kernel's ephemeral range, where no connection's local end and no bind to port 0 is
    ever given one, and never twice."""
    span = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    low, high = int(span[0]), int(span[1])
    ports = [kept_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(1024 <= port < low for port in ports), (low, high, ports)
    # A connection's local end, and a bind to port 0, come from the ephemeral range.
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname()) as client:
            assert low <= client.getsockname()[1] <= high
        assert low <= server.getsockname()[1] <= high
    # Each is free: a server binds it.
    with socket.create_server(("127.0.0.1", ports[0])):
        pass
