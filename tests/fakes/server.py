"""A scripted fake HTTP server on loopback in a background thread (cloud provider fakes)."""

from __future__ import annotations

import asyncio
import threading
import time
import zlib
from collections import deque
from typing import Any

from aiohttp import web

from tests.fakes.fakes import Behaviour


class ScriptedServer:
    """Base of the cloud fakes: aiohttp on 127.0.0.1, a script of behaviours, a request log."""

    name = "fake"

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._script: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The server's root URL."""
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        """Register the fake's handlers."""
        raise NotImplementedError

    def script(self, *behaviours: Behaviour) -> ScriptedServer:
        """Queue behaviours for the next requests (then default successes)."""
        with self._lock:
            self._script.extend(behaviours)
        return self

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        with self._lock:
            self._script.clear()
            self.requests.clear()

    def next_behaviour(self) -> Behaviour:
        """The next scripted behaviour (a default success when the script is empty)."""
        with self._lock:
            return self._script.popleft() if self._script else Behaviour()

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> bool:
        """Poll ``predicate()`` until true or ``timeout``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.01)
        return bool(predicate())

    def start(self) -> ScriptedServer:
        """Start serving in a background thread."""
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application(client_max_size=64 * 1024 * 1024)
            self.routes(app)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-{self.name}", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Stop the server and its thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def last_text(texts: list[str]) -> str:
    """The echo reply the fakes send by default."""
    return "echo: " + (texts[-1] if texts else "")


def fake_vector(text: str, size: int) -> list[float]:
    """The fakes' deterministic embedding of ``text``: its length, then a checksum spread."""
    seed = zlib.crc32(text.encode())
    return [float(len(text))] + [((seed >> (i % 24)) % 97) / 97 for i in range(size - 1)]


def token_count(text: str) -> int:
    """The fakes' token count of ``text`` (its words)."""
    return len(text.split())
