"""A RespClient that records the command names of every logical write (round trip)."""

from __future__ import annotations

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
