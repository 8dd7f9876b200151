"""Retry policy: what is retryable, how long to wait (full jitter, Retry-After)."""

from __future__ import annotations

import random
from email.utils import parsedate_to_datetime
from time import time

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})
"""Upstream statuses worth another try (as OpenAI's own SDK retries them)."""

FAILOVER_STATUSES = RETRYABLE_STATUSES | {401, 403, 404}
"""Statuses that move on to the next deployment: transient ones plus those that are
about this deployment (its key, its model name), not about the request."""

CIRCUIT_STATUSES = frozenset({429}) | frozenset(range(500, 600))
"""Statuses that count as a failure for the circuit breaker (other 4xx do not)."""


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0.0, min(cap, base * (2**attempt)))


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` (delta seconds or HTTP date) or ``retry-after-ms``."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (now if now is not None else time())
    return max(0.0, seconds)
