"""Cancellation holds on Python 3.11 (``gateway_app/aio.py``): the gateway bounds waits
with ``asyncio.timeout`` (``asyncio.wait_for`` is banned by the lint), and a background
loop's :func:`~gateway_app.aio.pause` stops a task whose cancellation a library dropped.

The premise is checked here on the interpreter that runs the suite: Python 3.11's
``asyncio.wait_for`` returns the awaited result when the cancel arrives as it finishes
(CPython gh-86296, fixed in 3.12 by gh-96764, which rebuilt it on ``asyncio.timeout``).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from gateway_app.aio import cancel_requested, pause
from tests.gateway.conftest import drop_cancellation, run_async


async def _cancelled_as_it_finishes(bounded: Any) -> tuple[bool, Any]:
    """Cancel a task the moment the future it waits on (through ``bounded``) gets its
    result; whether the cancellation reached it, and what it returned if not."""
    inner: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.get_running_loop().create_task(bounded(inner))
    await asyncio.sleep(0)  # the task now waits on inner
    inner.set_result("finished")
    task.cancel()
    try:
        return False, await task
    except asyncio.CancelledError:
        return True, None


def test_wait_for_drops_the_cancellation_on_this_python_and_timeout_does_not() -> None:
    async def with_wait_for(inner: asyncio.Future[str]) -> str:
        return await asyncio.wait_for(inner, 10)  # noqa: TID251 (the premise under test)

    async def with_timeout(inner: asyncio.Future[str]) -> str:
        async with asyncio.timeout(10):
            return await inner

    reached, returned = run_async(_cancelled_as_it_finishes(with_wait_for))
    if sys.version_info < (3, 12):
        assert (reached, returned) == (False, "finished")  # dropped (gh-86296)
    else:
        assert reached
    assert run_async(_cancelled_as_it_finishes(with_timeout)) == (True, None)


class _DroppingCall:
    """A library call that drops a cancellation arriving while it runs (as redis-py's
    command does through ``wait_for`` on Python 3.11): it returns normally instead."""

    def __init__(self) -> None:
        self.calls = 0
        self.running = asyncio.Event()

    async def __call__(self) -> bool:
        self.calls += 1
        self.running.set()
        await drop_cancellation()
        return True


def test_a_loop_pausing_with_pause_stops_after_a_dropped_cancellation() -> None:
    async def main() -> tuple[int, int, bool]:
        call = _DroppingCall()

        async def loop() -> None:
            while True:
                await call()
                await pause(0.01)

        task = asyncio.get_running_loop().create_task(loop())
        await call.running.wait()
        task.cancel()  # lands inside the call, which drops it
        done, _ = await asyncio.wait([task], timeout=1.0)
        calls = call.calls
        await asyncio.sleep(0.1)  # (a loop running on would call again meanwhile)
        if not done:
            task.cancel()
        return calls, call.calls, bool(done) and task.cancelled()

    calls_then, calls_later, cancelled = run_async(main())
    assert (calls_then, calls_later, cancelled) == (1, 1, True)


def test_pause_sleeps_when_no_stop_was_asked_even_after_a_timeout_expired() -> None:
    """``asyncio.timeout`` cancels the task to end the wait, then withdraws that request:
    a loop bounding its waits with it pauses normally after one expired."""

    async def main() -> tuple[bool, bool]:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await asyncio.sleep(1)
        requested = cancel_requested()
        started = asyncio.get_running_loop().time()
        await pause(0.02)
        return requested, asyncio.get_running_loop().time() - started >= 0.02

    assert run_async(main()) == (False, True)
