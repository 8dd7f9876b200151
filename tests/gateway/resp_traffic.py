"""Counting the Redis round trips: a recording RespClient (in process) and a proxy (any client)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import hiredis

from gateway_app.state.resp import RespClient, _Protocol


def counting_client(record: list[Any]) -> type[RespClient]:
    """A RespClient class appending, per ``send``, the tuple of its command names to ``record``."""

    class CountingProtocol(_Protocol):
        def send(self, data: bytes, futures: Any) -> None:
            reader = hiredis.Reader()
            reader.feed(data)
            names = []
            while (command := reader.gets()) is not False:
                names.append(command[0].decode().upper())
            record.append(tuple(names))
            super().send(data, futures)

    class CountingClient(RespClient):
        protocol = CountingProtocol

    return CountingClient


class CountingProxy:
    """A loopback TCP proxy in front of Redis that records every client's round trips.

    Runs its own event loop in a thread. Per client connection, a *turn* is what the
    client sends before it next receives a reply: one network round trip, however many
    commands it holds (a pipeline, or the concurrent callers of one pipelining
    connection). ``turns`` records each as the tuple of its command names (an
    ``EVALSHA`` named by ``scripts``, SHA1 -> name, as ``"EVALSHA name"``), with the
    number of the connection it was sent on.
    """

    def __init__(self, upstream_port: int, scripts: dict[str, str]) -> None:
        self.upstream_port = upstream_port
        self.scripts = scripts
        self.turns: list[tuple[int, tuple[str, ...]]] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the counting proxy did not start"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def take(self) -> list[tuple[int, tuple[str, ...]]]:
        """The turns recorded since the last ``take`` (and forget them)."""
        with self._lock:
            taken, self.turns = self.turns, []
        return taken

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def _name(self, command: list[Any]) -> str:
        name = command[0].decode().upper()
        if name == "EVALSHA":
            sha = command[1].decode()
            return f"EVALSHA {self.scripts.get(sha, sha)}"
        return name

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        parser = hiredis.Reader()
        # The commands of the turn in progress; a reply to the client closes it.
        turn: list[str] = []

        async def client_to_redis() -> None:
            while data := await reader.read(65536):
                parser.feed(data)
                with self._lock:
                    while (command := parser.gets()) is not False:
                        turn.append(self._name(command))
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def redis_to_client() -> None:
            while data := await up_reader.read(65536):
                with self._lock:
                    if turn:
                        self.turns.append((number, tuple(turn)))
                        turn.clear()
                writer.write(data)
                await writer.drain()
            writer.close()

        with contextlib.suppress(ConnectionError):
            await asyncio.gather(client_to_redis(), redis_to_client())
