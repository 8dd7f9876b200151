"""The suite's one port helper (tests/ports.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.ports import ephemeral_range, kept_port, kept_span


def test_a_kept_port_is_one_no_connection_can_be_handed() -> None:
    """``kept_port`` (every port a test picks for a server to bind later: a CI run failed
    with `cannot listen on 127.0.0.1:39853: the port is in use`, a port from a bind to
    port 0, released, taken before the third gateway bound it) hands free ports below the
    kernel's ephemeral range, where no connection's local end and no bind to port 0 is
    ever given one, and never twice."""
    low, high = ephemeral_range()
    assert (low, high) == tuple(
        int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    )
    ports = [kept_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(1024 <= port < 65536 and not low <= port <= high for port in ports), (
        low,
        high,
        ports,
    )
    # A connection's local end, and a bind to port 0, come from the ephemeral range.
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname()) as client:
            assert low <= client.getsockname()[1] <= high
        assert low <= server.getsockname()[1] <= high
    # Each is free: a server binds it.
    with socket.create_server(("127.0.0.1", ports[0])):
        pass


def test_the_kept_span_is_outside_the_ephemeral_range_whatever_its_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Machines set ``ip_local_port_range`` differently: the span is below the range when
    that is the larger side, above it otherwise, and empty (kept_port then takes the
    kernel's pick) when the range covers almost every port."""
    import tests.ports as ports

    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # one process: the whole span
    for bounds, expected in (
        ((32768, 60999), range(20768, 32768)),  # Linux's default: below
        ((10000, 20000), range(20001, 65536)),  # above is larger
        ((1024, 65535), range(1024, 1024)),  # nothing outside: the kernel's pick
    ):
        monkeypatch.setattr(ports, "ephemeral_range", lambda bounds=bounds: bounds)
        assert kept_span() == expected, bounds
    monkeypatch.setattr(ports, "ephemeral_range", lambda: (1024, 65535))
    picked = {kept_port() for _ in range(5)}
    assert len(picked) == 5


def test_the_workers_of_one_run_share_the_span_out_without_overlap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under xdist each worker keeps ports from its own share of the span: a port one
    worker holds for nothing to listen on is never bound by another's server."""
    import tests.ports as ports

    monkeypatch.setattr(ports, "ephemeral_range", lambda: (32768, 60999))
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    shares = []
    for index in range(3):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{index}")
        shares.append(set(kept_span()))
    assert sum(len(share) for share in shares) == 12_000
    assert set().union(*shares) == set(range(20768, 32768))
    assert not (shares[0] & shares[1] or shares[0] & shares[2] or shares[1] & shares[2])
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw2")
    assert {kept_port() for _ in range(20)} <= shares[2]
