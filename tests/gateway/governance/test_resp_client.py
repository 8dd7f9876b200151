"""The request path's Redis client against a real redis-server: order, scripts, restarts, TLS."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway_app.state.resp import ReplyError, RespClient, RespConnectionError
from tests.gateway.conftest import run_async
from tests.gateway.governance.services import RedisServer


def test_concurrent_callers_and_pipelines_get_their_own_replies(redis_server: Any) -> None:
    async def main() -> None:
        client = RespClient.from_url(redis_server.url)
        # Many callers share one connection: each reply must reach its own caller.
        replies = await asyncio.gather(*(client.execute("ECHO", f"m{i}") for i in range(300)))
        assert replies == [f"m{i}".encode() for i in range(300)]
        piped = await client.pipeline(
            [
                ("DEL", "{r}:n"),
                ("INCRBY", "{r}:n", 5),
                ("HGET", "{r}:n", "x"),
                ("INCRBY", "{r}:n", 2),
            ]
        )
        # an error reply is returned in its place; the commands after it still run
        assert piped[:2] == [0, 5] and isinstance(piped[2], ReplyError) and piped[3] == 7
        with pytest.raises(ReplyError, match="WRONGTYPE"):
            await client.execute("HGET", "{r}:n", "x")
        await client.aclose()

    run_async(main())


def test_scripts_fall_back_when_redis_does_not_know_them(redis_server: Any) -> None:
    async def main() -> None:
        client = RespClient.from_url(redis_server.url)
        await client.execute("SCRIPT", "FLUSH")
        script = client.script("return {KEYS[1], ARGV[1] + 1}")
        assert await script(["{r}:k"], [41]) == [b"{r}:k", 42]  # NOSCRIPT -> EVAL
        assert await client.execute("SCRIPT", "EXISTS", script.sha) == [1]
        await client.execute("SCRIPT", "FLUSH")
        assert await script.many([(["a"], [1]), (["b"], [2])]) == [[b"a", 2], [b"b", 3]]
        await client.aclose()

    run_async(main())


def test_reconnects_after_a_redis_restart() -> None:
    server = RedisServer()
    try:

        async def main() -> None:
            client = RespClient.from_url(server.url, timeout=2)
            assert await client.execute("SET", "k", "v") == b"OK"
            server.stop()
            with pytest.raises((RespConnectionError, OSError)):
                await client.execute("GET", "k")
            server.start()
            assert await client.execute("GET", "k") is None  # a fresh, empty Redis
            assert await client.ping()
            await client.aclose()

        run_async(main())
    finally:
        server.stop()


def test_password_and_database_from_the_url() -> None:
    server = RedisServer()
    server.command += ["--requirepass", "s3cret"]
    server.stop()
    server.start()
    try:

        async def main() -> None:
            url = f"redis://:s3cret@127.0.0.1:{server.port}/3"
            client = RespClient.from_url(url)
            await client.execute("SET", "where", "db3")
            assert await client.execute("SELECT", 3) == b"OK"
            assert await client.execute("GET", "where") == b"db3"
            await client.aclose()
            wrong = RespClient.from_url(f"redis://:nope@127.0.0.1:{server.port}/0")
            with pytest.raises(RespConnectionError, match=r"WRONGPASS|invalid"):
                await wrong.ping()
            await wrong.aclose()

        run_async(main())
    finally:
        server.stop()


def test_rediss_with_the_private_ca(redis_tls_server: Any) -> None:
    async def ping(ca_file: str | None) -> Any:
        client = RespClient.from_url(redis_tls_server.url, ca_file)
        try:
            return await client.ping()
        finally:
            await client.aclose()

    assert run_async(ping(redis_tls_server.ca_file)) is True
    with pytest.raises(Exception, match=r"(?i)certificate"):
        run_async(ping(None))  # the system trust store does not know the private CA


def test_a_reply_that_never_comes_times_out(redis_server: Any) -> None:
    async def main() -> None:
        blocked = RespClient.from_url(redis_server.url, timeout=0.3)
        # BLPOP on an empty list holds the reply back: the watchdog aborts the connection.
        with pytest.raises(TimeoutError):
            await blocked.execute("BLPOP", "{r}:empty", 0)
        assert await blocked.ping()  # and the next call reconnects
        await blocked.aclose()

    run_async(main())
