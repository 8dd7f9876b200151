"""Hostile clients against the default server, run as users run it.

The gateway is started in a subprocess exactly as the container starts it
(``python -m gateway_app serve``, the default server, ``--workers 2``) against
a fake upstream; every case is bounded in time and talks to it over loopback
with raw sockets: slowloris headers and bodies, oversized heads, URLs and
bodies (with the workers' memory watched), hundreds of idle connections,
request-smuggling framings, a worker killed with SIGKILL. After all of it the
gateway must still be ready and serve a chat completion through the official
SDK. ``AIGW_HOSTILE_SERVER=uvicorn`` runs the same cases against uvicorn (the
comparison bench/notes.md records); CI runs the default.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import orjson
import pytest
import yaml

from tests.fakes import FakeUpstream
from tests.ports import kept_port

ROOT = Path(__file__).resolve().parents[2]
HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 2.0
MAX_BODY = 1 << 20
# The workers' RSS may grow by this much at most while a case sends tens of MB.
MEMORY_BOUND_KIB = 16 * 1024
SERVER = os.environ.get("AIGW_HOSTILE_SERVER", "httptools")


@dataclass
class Gateway:
    """The gateway subprocess: the supervisor's pid, its port and its log file."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        """The supervisor's child processes (the workers)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return sorted(int(c) for c in children)

    def rss_kib(self) -> int:
        total = 0
        for pid in self.workers():
            status = Path(f"/proc/{pid}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        return total


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    work = tmp_path_factory.mktemp("hostile")
    with FakeUpstream("openai") as upstream:
        config = {
            "server": {
                "header_timeout_s": HEADER_TIMEOUT_S,
                "body_timeout_s": BODY_TIMEOUT_S,
                "max_body_bytes": MAX_BODY,
                "graceful_shutdown_s": 2,
            },
            "providers": {
                "openai": {"type": "openai", "api_key": "sk-fake", "base_url": upstream.url}
            },
            "models": {
                "gpt-4o-mini": {"deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]}
            },
            "observability": {"logs": {"enabled": False}},
        }
        (work / "gateway.yaml").write_text(yaml.safe_dump(config))
        port = kept_port()
        log = work / "gateway.log"
        env = {
            **os.environ,
            "AIGW_CONFIG": str(work / "gateway.yaml"),
            "PYTHONPATH": str(ROOT),
            "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"),
        }
        env.pop("AIGW_ADMIN_KEY", None)
        command = [sys.executable, "-m", "gateway_app", "serve", "--port", str(port)]
        command += ["--workers", "2", "--server", SERVER, "--log-level", "info"]
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        running = Gateway(process, port, log)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if httpx.get(running.url + "/health/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the gateway did not become ready"
                time.sleep(0.1)
            yield running
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _connect(gateway: Gateway) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_until_closed(sock: socket.socket, limit_s: float) -> bytes:
    """Everything the server sends until it closes (bounded by ``limit_s``)."""
    sock.settimeout(limit_s)
    data = b""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    return data


def _error(response: bytes, status: int) -> dict:
    """The OpenAI-shaped error of a raw response with ``status``."""
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), response[:300]
    assert b"content-type: application/json" in head.lower()
    error = orjson.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def _trickle(sock: socket.socket, data: bytes, every_s: float, stop: threading.Event) -> None:
    for byte in data:
        if stop.is_set():
            return
        try:
            sock.send(bytes([byte]))
        except OSError:
            return
        time.sleep(every_s)


def _flood(sock: socket.socket, head: bytes, filler: bytes, total: int) -> None:
    """Send ``head`` then ``total`` bytes of ``filler`` until the server stops reading."""
    try:
        sock.sendall(head)
        sent = 0
        while sent < total:
            sock.sendall(filler)
            sent += len(filler)
    except OSError:
        return


def _slowloris(gateway: Gateway, start: bytes, trickle: bytes, timeout_s: float) -> None:
    sock = _connect(gateway)
    stop = threading.Event()
    began = time.monotonic()
    sock.sendall(start)
    sender = threading.Thread(target=_trickle, args=(sock, trickle, 0.3, stop), daemon=True)
    sender.start()
    try:
        response = _read_until_closed(sock, timeout_s + 8)
        elapsed = time.monotonic() - began
    finally:
        stop.set()
        sender.join(5)
        sock.close()
    error = _error(response, 408)
    assert error["code"] == "request_timeout"
    # Cut at the deadline (the sweep runs twice per timeout; slack for a busy CI machine),
    # not left open until the client gives up.
    assert timeout_s - 0.2 <= elapsed <= timeout_s + 3.0, elapsed


@pytest.mark.timeout(30)
def test_slow_headers_are_cut_at_the_header_deadline(gateway: Gateway) -> None:
    _slowloris(
        gateway,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n",
        b"X-Slow: " + b"a" * 200,
        HEADER_TIMEOUT_S,
    )


@pytest.mark.timeout(30)
def test_slow_body_is_cut_at_the_body_deadline(gateway: Gateway) -> None:
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "' + b"a" * 500
    _slowloris(
        gateway,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (len(body) + 100),
        body,
        BODY_TIMEOUT_S,
    )


def _oversized(gateway: Gateway, head: bytes, filler: bytes, total: int, status: int) -> dict:
    before = gateway.rss_kib()
    sock = _connect(gateway)
    sender = threading.Thread(target=_flood, args=(sock, head, filler, total), daemon=True)
    sender.start()
    try:
        response = _read_until_closed(sock, 15)
    finally:
        sock.close()
        sender.join(15)
    grown = gateway.rss_kib() - before
    assert grown < MEMORY_BOUND_KIB, f"the workers grew by {grown} KiB"
    return _error(response, status)


@pytest.mark.timeout(60)
def test_a_40_mb_header_gets_431_before_it_is_buffered(gateway: Gateway) -> None:
    error = _oversized(
        gateway,
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Huge: ",
        b"a" * 65536,
        40 << 20,
        431,
    )
    assert error["code"] == "request_headers_too_large"


@pytest.mark.timeout(60)
def test_a_20_mb_url_gets_414_before_it_is_read(gateway: Gateway) -> None:
    error = _oversized(gateway, b"GET /v1/models?q=", b"a" * 65536, 20 << 20, 414)
    assert error["code"] == "url_too_long"


@pytest.mark.timeout(60)
def test_an_oversized_body_gets_413_declared_or_chunked(gateway: Gateway) -> None:
    declared = _oversized(
        gateway,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (40 << 20),
        b"a" * 65536,
        40 << 20,
        413,
    )
    assert declared["code"] == "request_too_large"
    chunk = b"10000\r\n" + b"a" * 65536 + b"\r\n"
    chunked = _oversized(
        gateway,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        chunk,
        40 << 20,
        413,
    )
    assert chunked["code"] == "request_too_large"


@pytest.mark.timeout(60)
def test_300_idle_connections_do_not_stop_a_normal_request(gateway: Gateway) -> None:
    idle: list[socket.socket] = []
    try:
        for index in range(300):
            sock = _connect(gateway)
            if index % 2:  # half fresh and silent, half idle after a request (keep-alive)
                sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            idle.append(sock)
        for sock in idle[1::2]:
            sock.settimeout(10)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="k", max_retries=0, timeout=10)
        began = time.monotonic()
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "still here?"}]
        )
        assert reply.choices[0].message.content
        assert time.monotonic() - began < 8
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
        b"Content-Length: 4\r\nContent-Length: 40\r\n\r\nabcdGET /smuggled HTTP/1.1\r\n\r\n",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
    ],
    ids=["cl-and-te", "duplicate-cl", "duplicate-te"],
)
def test_request_smuggling_gets_400_and_close(gateway: Gateway, framing: bytes) -> None:
    sock = _connect(gateway)
    try:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + framing)
        response = _read_until_closed(sock, 10)
    finally:
        sock.close()
    error = _error(response, 400)
    assert error["code"] == "bad_request"
    assert response.count(b"HTTP/1.1") == 1  # nothing answered for the smuggled request


@pytest.mark.timeout(30)
def test_garbage_gets_400_in_openai_shape(gateway: Gateway) -> None:
    sock = _connect(gateway)
    try:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        response = _read_until_closed(sock, 10)
    finally:
        sock.close()
    assert _error(response, 400)["type"] == "invalid_request_error"


@pytest.mark.timeout(60)
def test_a_killed_worker_is_replaced_logged_and_counted(gateway: Gateway) -> None:
    before = gateway.workers()
    assert len(before) == 2
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while True:
        now = gateway.workers()
        if len(now) == 2 and victim not in now:
            break
        assert time.monotonic() < deadline, f"workers after the kill: {now}"
        time.sleep(0.1)
    log = gateway.log.read_text()
    assert f"worker {victim} was killed by SIGKILL; starting a replacement" in log
    # Either worker may answer /metrics: both sum the supervisor's counter.
    for _ in range(4):
        metrics = httpx.get(gateway.url + "/metrics", timeout=10).text
        assert re.search(r"^aigw_worker_restarts_total 1\.0$", metrics, re.M), metrics[-2000:]


@pytest.mark.timeout(30)
def test_after_all_of_it_the_gateway_is_ready_and_serves(gateway: Gateway) -> None:
    # Runs last in this module (definition order): every case above has hit the gateway.
    assert httpx.get(gateway.url + "/health/ready", timeout=10).status_code == 200
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="k", max_retries=0, timeout=10)
    for _ in range(4):  # both workers
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
        )
        assert reply.choices[0].message.content
    assert gateway.process.poll() is None
