"""``/health/ready`` is public (the edge routes it for the DNS health checkers, from many
places) and its Redis check opens a connection (TLS and AUTH in the clusters): probes that
arrive together share one check, and its answer serves the next second's, so no rate of
probes opens more than about one Redis connection a second per replica."""

from __future__ import annotations

import asyncio

import pytest

from gateway_app import health as health_module
from gateway_app.config import parse
from gateway_app.environment import Environment
from gateway_app.health import Health

CONFIG = {
    "providers": {"p": {"type": "openai", "api_key": "k"}},
    "models": {"m": {"deployments": [{"provider": "p", "model": "x"}]}},
}


class CountingRedis:
    """A loopback server that answers PING with PONG after ``delay_s``, counting the
    connections it accepts."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while line := await reader.readline():
                if line.strip().upper() == b"PING":
                    await asyncio.sleep(self.delay_s)
                    writer.write(b"+PONG\r\n")
                    await writer.drain()
        finally:
            writer.close()


def _health(port: int) -> Health:
    return Health(parse(CONFIG), Environment(redis_url=f"redis://127.0.0.1:{port}/0"))


def test_probes_at_once_share_one_redis_check_and_its_answer_serves_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health_module, "REDIS_CHECK_S", 0.3)

    async def main() -> None:
        redis = CountingRedis(delay_s=0.05)
        health = _health(await redis.start())
        answers = await asyncio.gather(*(health.ready() for _ in range(20)))
        assert all(ready for ready, _ in answers)
        assert {report["checks"]["redis"]["status"] for _, report in answers} == {"ok"}
        assert redis.connections == 1  # twenty probes at once: one PING
        for _ in range(20):
            assert (await health.ready())[0]
        assert redis.connections == 1  # within the second: its answer
        await asyncio.sleep(0.35)
        assert (await health.ready())[0]
        assert redis.connections == 2  # later: a new check
        # Redis goes away: the next check (after the answer's time) says so.
        await redis.stop()
        await asyncio.sleep(0.35)
        ready, report = await health.ready()
        assert not ready and report["checks"]["redis"]["status"] == "error"
        assert "ConnectionRefusedError" in report["checks"]["redis"]["error"]
        assert not (await health.ready())[0]  # the failure's answer serves the second too

    asyncio.run(main())


def test_a_probe_that_hangs_up_does_not_cancel_the_check_others_wait_for() -> None:
    async def main() -> None:
        redis = CountingRedis(delay_s=0.2)
        health = _health(await redis.start())
        first = asyncio.ensure_future(health.ready())
        second = asyncio.ensure_future(health.ready())
        await asyncio.sleep(0.05)
        first.cancel()  # (its client left: the server cancels its request)
        ready, report = await second
        assert ready and report["checks"]["redis"]["status"] == "ok"
        assert first.cancelled() and redis.connections == 1
        await redis.stop()

    asyncio.run(main())
