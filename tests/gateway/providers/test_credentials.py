"""RefreshingCredential: one fetch for many callers, refreshed ahead of expiry, never blocking early."""

from __future__ import annotations

import asyncio

import pytest

from gateway_app.credentials import RefreshingCredential
from tests.gateway.conftest import run_async


class Source:
    """A credential endpoint issuing tokens that live ``lifetime`` seconds on a fake clock."""

    def __init__(self, lifetime: float = 3600.0) -> None:
        self.now = 1_000_000.0
        self.lifetime = lifetime
        self.issued = 0
        self.gate: asyncio.Event | None = None

    def clock(self) -> float:
        return self.now

    async def fetch(self) -> tuple[str, float]:
        if self.gate is not None:
            await self.gate.wait()
        self.issued += 1
        return f"token-{self.issued}", self.now + self.lifetime


def test_concurrent_first_callers_share_one_fetch() -> None:
    source = Source()
    credential = RefreshingCredential(source.fetch, clock=source.clock)

    async def scenario() -> list[str]:
        source.gate = asyncio.Event()
        waiting = [asyncio.create_task(credential.get()) for _ in range(10)]
        await asyncio.sleep(0)
        source.gate.set()
        return await asyncio.gather(*waiting)

    assert run_async(scenario()) == ["token-1"] * 10
    assert source.issued == 1


def test_refreshed_in_the_background_before_expiry_and_awaited_only_at_the_last_moment() -> None:
    source = Source(lifetime=3600)
    credential = RefreshingCredential(
        source.fetch, refresh_before=300, must_refresh_before=60, clock=source.clock
    )

    async def scenario() -> list[str]:
        seen = [await credential.get()]
        source.now += 3000  # well before the refresh window
        seen.append(await credential.get())
        assert source.issued == 1
        source.now += 400  # inside the window: the cached token, a refresh in the background
        source.gate = asyncio.Event()
        seen.append(await credential.get())
        assert source.issued == 1
        source.gate.set()
        await asyncio.sleep(0.01)
        seen.append(await credential.get())
        source.gate = None
        source.now += 3600 - 30  # past must_refresh_before: the caller waits for a new one
        seen.append(await credential.get())
        return seen

    assert run_async(scenario()) == ["token-1", "token-1", "token-1", "token-2", "token-3"]


def test_a_failed_background_refresh_keeps_the_valid_token() -> None:
    source = Source(lifetime=600)
    credential = RefreshingCredential(
        source.fetch,
        refresh_before=300,
        must_refresh_before=60,
        retry_interval=30,
        clock=source.clock,
    )
    failures = 0

    async def failing() -> tuple[str, float]:
        nonlocal failures
        failures += 1
        raise ConnectionError("token endpoint down")

    async def scenario() -> list[str]:
        seen = [await credential.get()]
        credential._fetch = failing
        source.now += 400
        seen.append(await credential.get())
        await asyncio.sleep(0.01)
        seen.append(await credential.get())  # within retry_interval: no second attempt
        await asyncio.sleep(0.01)
        return seen

    assert run_async(scenario()) == ["token-1"] * 3
    assert failures == 1


def test_a_failed_first_fetch_fails_fast_until_the_retry_interval_passed() -> None:
    source = Source()
    attempts = 0

    async def failing() -> tuple[str, float]:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("no credential source")

    credential = RefreshingCredential(failing, retry_interval=30, clock=source.clock)

    async def scenario() -> str:
        for _ in range(3):
            with pytest.raises(ConnectionError):
                await credential.get()
        assert attempts == 1
        credential._fetch = source.fetch
        source.now += 31
        return await credential.get()

    assert run_async(scenario()) == "token-1"
