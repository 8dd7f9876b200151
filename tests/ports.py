"""Ports for the suite's servers: :func:`kept_port`, the one way a test picks a port.

Use :func:`kept_port` for any port a server is told to listen on later (a config
file, a command line, an environment variable, a ``--publish`` of podman) and for a
port that nothing may listen on (a connection-refused case). A server that binds port
0 itself and reports the port it got needs neither; nor does a test that binds a
socket and keeps it open for as long as it needs the port.

Why not a bind to port 0, released, then handed on: the kernel hands that port from
its ephemeral range (``net.ipv4.ip_local_port_range``), the same range every outgoing
connection's local end comes from. Between the release and the server's bind, any
connection the suite opens may be given that port (a CI run failed so: ``cannot
listen on 127.0.0.1:39853: the port is in use``). Below that range neither a
connection's local end nor a bind to port 0 is ever given a port, so a port found free
there stays free until the server binds it, unless another process picks it (another
test run on the same machine: the suite's Redis, PostgreSQL and gateway processes
start again on another port then, ``tests/gateway/governance/services.py``). The
workers of one xdist run each take their own share of the span (every ``count``-th
port from their index, :func:`tests.workers.worker`): a port one worker keeps for
nothing to listen on, or for its server to bind later, is never another worker's.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

from tests.workers import worker

_KEPT: set[int] = set()
"""Every port :func:`kept_port` has handed in this process (none is handed twice)."""


def ephemeral_range() -> tuple[int, int]:
    """The kernel's ephemeral port range (``net.ipv4.ip_local_port_range``), inclusive."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[:2]
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def kept_span() -> range:
    """Where :func:`kept_port` looks: the larger of the ports below the ephemeral range
    (at most 12,000 under its start, none below 1024) and those above it; under xdist,
    this worker's share of it (every ``count``-th port from its index)."""
    low, high = ephemeral_range()
    span = max(range(max(1024, low - 12_000), low), range(high + 1, 65536), key=len)
    index, count = worker()
    return span[index::count]


def kept_port() -> int:
    """A free TCP port on 127.0.0.1 for a server that binds it later, or for nothing to
    listen on; one that no connection and no bind to port 0 can take in the meantime.

    It is taken outside the kernel's ephemeral range (:func:`kept_span`), free when
    handed (a bind succeeds), never handed twice by this process, nor by another worker
    of the same xdist run (:func:`kept_span`): a server that
    stops and starts again on it gets it back, and a port meant to refuse connections is
    not given to a later server. A machine whose ephemeral range leaves fewer than 100
    ports outside it gets the kernel's pick (a bind to port 0), as before this helper."""
    span = kept_span()
    if len(span) < 100:
        for _ in range(200):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if port not in _KEPT:
                _KEPT.add(port)
                return port
        raise AssertionError("the kernel handed only ports this process was handed before")
    for _ in range(200):
        port = random.choice(span)  # a port, not a secret
        if port in _KEPT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # something of this machine's listens there
        _KEPT.add(port)
        return port
    raise AssertionError(
        f"no free port in {span.start}-{span.stop - 1} (step {span.step}) after 200 tries"
    )
