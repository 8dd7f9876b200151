"""Private redis-server and PostgreSQL instances for the governance tests (loopback, temp dirs)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.ports import kept_port


class PortTaken(Exception):
    """The server exited, or something else answered on its port: the port chosen by
    :func:`~tests.ports.kept_port` was taken before the server bound it (by another
    process of the machine, such as another test run, that picked the same port in
    between). The caller starts again on another."""


def start_on_kept_port(start: Callable[[int], None], what: str, attempts: int = 3) -> int:
    """Run ``start(port)`` on a kept port, again on another one when it was taken."""
    for attempt in range(attempts):
        port = kept_port()
        try:
            start(port)
            return port
        except PortTaken as exc:
            if attempt == attempts - 1:
                raise AssertionError(f"{what}: no port it could bind ({exc})") from exc
    raise AssertionError("unreachable")


def wait_port(port: int, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not start on port {port}"
            time.sleep(0.05)


def make_ca(directory: str, names: Sequence[str] = ()) -> tuple[str, str, str]:
    """A private CA and a server certificate for 127.0.0.1 and ``names``: (ca, cert, key) paths."""
    ca, ca_key = os.path.join(directory, "ca.crt"), os.path.join(directory, "ca.key")
    cert, key = os.path.join(directory, "server.crt"), os.path.join(directory, "server.key")
    csr, ext = os.path.join(directory, "server.csr"), os.path.join(directory, "ext")
    quiet: dict[str, Any] = {
        "check": True,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
    }
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            ca_key,
            "-out",
            ca,
            "-days",
            "1",
            "-subj",
            "/CN=aigw-test-ca",
        ],
        **quiet,
    )
    subprocess.run(
        [
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            csr,
            "-subj",
            "/CN=127.0.0.1",
        ],
        **quiet,
    )
    alt_names = ["IP:127.0.0.1", *(f"DNS:{name}" for name in names)]
    Path(ext).write_text(f"subjectAltName={','.join(alt_names)}\n")
    subprocess.run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            cert,
            "-days",
            "1",
            "-extfile",
            ext,
        ],
        **quiet,
    )
    return ca, cert, key


class RedisServer:
    """redis-server without persistence, stopped by PID; ``tls`` serves only rediss://.

    ``names`` are extra host names the TLS certificate is valid for; ``password``
    makes it require AUTH, as every managed Redis does.
    """

    def __init__(
        self, tls: bool = False, names: Sequence[str] = (), password: str | None = None
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; ./scripts/test installs it")
        self.port = 0
        self.ca_file: str | None = None
        tls_files: list[str] = []
        if tls:
            self.dir = tempfile.mkdtemp(prefix="aigw-redis-tls-")
            self.ca_file, cert, key = make_ca(self.dir, names)
            tls_files = ["--tls-cert-file", cert, "--tls-key-file", key]
            tls_files += ["--tls-ca-cert-file", self.ca_file, "--tls-auth-clients", "no"]
        self.tls = tls
        settings = ["--save", "", "--appendonly", "no"]
        if password:
            settings += ["--requirepass", password]

        def first_start(port: int) -> None:
            # Only start_on_kept_port picks the port: the first one tried is the one it
            # hands first (the port-taken tests of test_services.py rely on that).
            if tls:
                ports = ["--port", "0", "--tls-port", str(port), *tls_files]
            else:
                ports = ["--port", str(port)]
            self.command = [binary, "--bind", "127.0.0.1", *ports, *settings]
            self.port = port
            self.start()

        start_on_kept_port(first_start, "redis-server")
        auth = f":{password}@" if password else ""
        self.url = f"{'rediss' if tls else 'redis'}://{auth}127.0.0.1:{self.port}/0"
        if tls:
            # The port opens before the first TLS handshake is quick: wait for a real PING.
            import redis

            client = redis.Redis.from_url(
                self.url, ssl_ca_certs=self.ca_file, socket_connect_timeout=20
            )
            client.ping()
            client.close()

    def start(self) -> None:
        """(Re)start on the same port (empty: no persistence). :class:`PortTaken` when
        redis-server exits or another server answers there."""
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        wait_port(self.port, "redis-server")
        if self.tls:
            return  # (the TLS handshake in __init__ is the check)
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise PortTaken(f"redis-server exited ({self.process.returncode}) on {self.port}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1) as probe:
                    probe.sendall(b"PING\r\n")
                    reply = probe.recv(64)
            except OSError:
                reply = b""
            # +PONG, or -NOAUTH when it requires a password: redis-server is listening.
            if reply.startswith((b"+PONG", b"-NOAUTH")):
                return
            if reply or time.monotonic() > deadline:
                self.stop()
                raise PortTaken(f"not redis-server on {self.port}: {reply[:20]!r}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    pytest.fail(f"PostgreSQL's {name} is not installed; ./scripts/test installs postgresql")


class PostgresServer:
    """A private cluster in a temp dir; run as the ``postgres`` user when we are root.

    With ``tls``, it serves TLS (a certificate for ``names`` from a private CA,
    ``ca_file``) and other users than ``postgres`` must use it and a password
    (``hostssl ... scram-sha-256``), as a managed PostgreSQL requires.
    """

    def __init__(
        self, tls: bool = False, names: Sequence[str] = (), settings: Sequence[str] = ()
    ) -> None:
        self.dir = tempfile.mkdtemp(prefix="aigw-pg-")
        self.data = os.path.join(self.dir, "data")
        self.as_user: list[str] = []
        self.tls_options: list[str] = []
        # Extra server settings (``name=value``), such as shared_preload_libraries.
        self.settings = [arg for setting in settings for arg in ("-c", setting)]
        self.ca_file: str | None = None
        if tls:
            self.ca_file, cert, key = make_ca(self.dir, names)
            os.chmod(key, 0o600)
            self.tls_options = ["-c", "ssl=on", "-c", f"ssl_cert_file={cert}"]
            self.tls_options += ["-c", f"ssl_key_file={key}"]
        if os.geteuid() == 0:
            for path in Path(self.dir).iterdir():
                shutil.chown(path, "postgres")
            shutil.chown(self.dir, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [
                *self.as_user,
                _pg_bin("initdb"),
                "-D",
                self.data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if tls:
            Path(self.data, "pg_hba.conf").write_text(
                "local all all trust\n"
                "host all postgres 127.0.0.1/32 trust\n"
                "hostssl all all 127.0.0.1/32 scram-sha-256\n"
            )
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

        def first_start(port: int) -> None:
            self.port = port
            self.start()

        start_on_kept_port(first_start, "postgres")
        subprocess.run(
            [
                *self.as_user,
                _pg_bin("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-c",
                "CREATE DATABASE aigw",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/aigw"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *self.as_user,
                _pg_bin("postgres"),
                "-D",
                self.data,
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.dir}",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                *self.tls_options,
                *self.settings,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Until queries work (the port opens before recovery finishes). If the postmaster
        # exits meanwhile, its port was taken (PortTaken: the caller takes another).
        deadline = time.monotonic() + 20
        import psycopg

        while True:
            if self.process.poll() is not None:
                raise PortTaken(f"postgres exited ({self.process.returncode}) on {self.port}")
            try:
                psycopg.connect(
                    f"postgresql://postgres@127.0.0.1:{self.port}/postgres", connect_timeout=2
                ).close()
                return
            except psycopg.OperationalError:
                assert time.monotonic() < deadline, "postgres did not accept connections"
                time.sleep(0.1)

    def new_database(self, prefix: str = "t") -> str:
        """The URL of a new, empty database on this server (named ``prefix`` + random)."""
        import uuid

        from gateway_app.governance.storage import Database

        name = prefix + uuid.uuid4().hex[:10]
        setup = Database(self.url)
        try:
            setup.execute(f"CREATE DATABASE {name}")
        finally:
            setup.close()
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        if self.process is not None:
            # Signal the postmaster itself (runuser does not forward signals); SIGINT is
            # PostgreSQL's "fast" shutdown, which does not wait for clients to leave.
            pid_file = Path(self.data, "postmaster.pid")
            if pid_file.exists():
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
            else:
                self.process.send_signal(signal.SIGINT)
            self.process.wait(30)
            self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def one_model_config(**governance: Any) -> Any:
    """A parsed config of one model on an upstream nobody listens at, governance on with
    ``governance``'s settings: for tests that build a ``Governance`` and send nothing."""
    from gateway_app.config import parse

    return parse(
        {
            "providers": {
                "p": {"type": "openai", "api_key": "k", "base_url": "http://127.0.0.1:9"}
            },
            "models": {"m": {"deployments": [{"provider": "p", "model": "gpt-4o-mini"}]}},
            "governance": {"enabled": True, **governance},
        }
    )
