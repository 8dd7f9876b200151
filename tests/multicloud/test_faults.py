"""The fault injector itself, against a loopback echo server: it must do what it claims."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.multicloud.faults import Injector, Link
from tests.ports import kept_port


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except ConnectionError:
            pass  # the injector reset the connection: what the tests ask of it


@pytest.fixture(scope="module")
def echo() -> Iterator[tuple[str, int]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address  # type: ignore[misc]
    server.shutdown()
    server.server_close()


@pytest.fixture
def link(echo: tuple[str, int]) -> Iterator[Link]:
    with Injector() as injector:
        yield injector.link("a->b", echo)


def _connect(link: Link, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection(link.address, timeout=timeout)


def _assert_reset(link: Link) -> None:
    """A new connection through ``link`` is reset (at connect, send or receive)."""
    with pytest.raises((ConnectionResetError, BrokenPipeError)), _connect(link) as sock:
        sock.sendall(b"x")
        if not sock.recv(100):
            raise ConnectionResetError("closed without an answer")


def _round_trip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_a_healthy_link_forwards_bytes_both_ways_and_counts_them(link: Link) -> None:
    with _connect(link) as sock:
        assert _round_trip(sock, b"hello") == b"hello"
        assert _round_trip(sock, b"x" * 200_000) == b"x" * 200_000
    assert link.stats.connections == 1
    assert link.stats.bytes_forward == link.stats.bytes_back == 200_005


def test_delay_is_one_way_latency_and_chunks_in_flight_do_not_queue_behind_each_other(
    link: Link,
) -> None:
    with _connect(link) as sock:
        _round_trip(sock, b"warm")
        link.delay(0.15)
        started = time.monotonic()
        assert _round_trip(sock, b"ping") == b"ping"
        round_trip = time.monotonic() - started
        # There and back: two one-way delays.
        assert 0.30 <= round_trip < 0.30 + 0.25
        # Twenty sends in a row: still about one round trip in total, not twenty.
        started = time.monotonic()
        for i in range(20):
            sock.sendall(b"%02d" % i)
            time.sleep(0.01)
        got = b""
        while len(got) < 40:
            got += sock.recv(100)
        assert got == b"".join(b"%02d" % i for i in range(20))  # order kept
        assert time.monotonic() - started < 0.20 + 0.30 + 0.25
        link.heal()
        started = time.monotonic()
        _round_trip(sock, b"fast")
        assert time.monotonic() - started < 0.1


def test_a_drop_partition_holds_bytes_and_healing_delivers_them_in_order(link: Link) -> None:
    with _connect(link, timeout=0.4) as sock:
        _round_trip(sock, b"before")
        link.partition("drop")
        assert link.partitioned == "drop"
        sock.sendall(b"one,")
        sock.sendall(b"two,")
        with pytest.raises(TimeoutError):
            sock.recv(100)  # nothing crosses a partition
        # A connection opened during the partition stalls as well.
        with _connect(link, timeout=0.3) as late:
            late.sendall(b"late")
            with pytest.raises(TimeoutError):
                late.recv(100)
            link.heal()
            late.settimeout(2.0)
            assert late.recv(100) == b"late"
        sock.settimeout(2.0)
        got = b""
        while len(got) < 8:
            got += sock.recv(100)
        assert got == b"one,two,"  # held, then delivered: nothing lost, nothing reordered
        assert _round_trip(sock, b"after") == b"after"


def test_a_reset_partition_aborts_open_connections_and_refuses_new_ones(link: Link) -> None:
    with _connect(link) as sock:
        _round_trip(sock, b"before")
        link.partition("reset")
        with pytest.raises(ConnectionResetError):
            for _ in range(3):  # the RST may land after one more send
                sock.sendall(b"x")
                if not sock.recv(100):
                    raise ConnectionResetError("closed")
                time.sleep(0.05)
    started = time.monotonic()
    _assert_reset(link)
    assert time.monotonic() - started < 1.0  # refused at once, not a timeout
    link.heal()
    with _connect(link) as sock:
        assert _round_trip(sock, b"healed") == b"healed"
    assert link.stats.resets >= 2


def test_loss_resets_connections_at_the_given_rate(link: Link) -> None:
    link.loss(1.0)
    _assert_reset(link)
    link.loss(0.3, seed=7)
    survived = 0
    for _ in range(40):
        try:
            with _connect(link) as sock:
                if _round_trip(sock, b"x") == b"x":
                    survived += 1
        except (ConnectionResetError, BrokenPipeError):
            pass
    # Two chunks per round trip (there and back): each survives with 0.7, so ~49% of 40.
    assert 10 <= survived <= 30
    link.heal()
    with _connect(link) as sock:
        assert _round_trip(sock, b"ok") == b"ok"


def test_a_link_to_a_dead_target_resets_and_a_closed_injector_refuses(
    echo: tuple[str, int],
) -> None:
    dead = ("127.0.0.1", kept_port())  # nothing listens there
    injector = Injector()
    try:
        _assert_reset(injector.link("a->dead", dead))
        alive = injector.link("a->echo", echo)
        with pytest.raises(ValueError, match="exists already"):
            injector.link("a->echo", echo)
        with pytest.raises(ValueError, match="partition mode"):
            alive.partition("sever")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="loss probability"):
            alive.loss(1.5)
    finally:
        injector.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(alive.address, timeout=1).close()
