"""Cancellation that holds on Python 3.11, the gateway image's Python.

Python 3.11's ``asyncio.wait_for`` returns the awaited result and drops the cancellation
when the cancel arrives as the awaited work finishes (CPython gh-86296; Python 3.12
rebuilt ``wait_for`` on ``asyncio.timeout``, gh-96764). redis-py sends every command
through it when its client has a socket timeout, as the gateway's clients do, so a
background task cancelled during a Redis command could run on: an audit shipper's lease
renewer went on renewing the lease of a shipper that had stopped, and no other replica
took over. Two rules keep cancellation whole, both checked:

- the gateway bounds a wait with ``async with asyncio.timeout(...)``, never
  ``asyncio.wait_for`` (ruff's banned-api rule in ``pyproject.toml`` fails the lint);
- a background loop waits between its rounds with :func:`pause`, which honours a
  cancellation a library dropped, so the loop stops at its next pause
  (``tests/gateway/test_aio.py``).
"""

from __future__ import annotations

import asyncio


def cancel_requested() -> bool:
    """Whether the running task was asked to stop and is still running: a library
    dropped the cancellation (``Task.cancelling()`` counts the requests not yet
    withdrawn; ``asyncio.timeout`` withdraws its own when it expires)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def stop_if_cancelled() -> None:
    """Raise ``CancelledError`` if the running task was asked to stop (see
    :func:`cancel_requested`): for a loop that waits on something else than a sleep."""
    if cancel_requested():
        raise asyncio.CancelledError


async def pause(seconds: float) -> None:
    """Sleep ``seconds`` between a background loop's rounds; raise ``CancelledError``
    first if the task was asked to stop while a library dropped the request.

    Not for a cleanup that runs after a cancellation (an ``except CancelledError`` or
    ``finally`` block): there the request is still counted and this would raise."""
    stop_if_cancelled()
    await asyncio.sleep(seconds)
