"""A finished request leaves nothing for the cyclic GC: its objects are freed by their
reference counts when it ends.

Objects in a reference cycle are freed only by the GC's collections, and every
collection walks the young objects still alive: a request left as cyclic garbage (the
server's exchange, the scope, the app's exchange and task, the disconnect callback and
what they hold: 28 objects) made collections run every ~25 requests and the
generation-1 ones walk ~100 dead requests, pausing the event loop up to ~1.7 ms
(``bench/partial-gc-tail.md``). Counted here with the GC off, not timed.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai

from gateway_app.context import Exchange, RequestContext
from gateway_app.governance.admin import AdminApi
from gateway_app.governance.hooks import governance_hooks
from gateway_app.server import _Cycle
from gateway_app.state.governance_redis import RedisGovernanceState
from tests.gateway.conftest import STANDARD_MODELS, providers
from tests.gateway.governance.test_gateway_governance import Admin, embedded_governance
from tests.gateway.test_server import serve_httptools

# What one request through the gateway's own server creates and should free at its end.
REQUEST_TYPES = (_Cycle, Exchange, RequestContext)
REQUESTS = 20


def _alive() -> list[Any]:
    return [obj for obj in gc.get_objects() if isinstance(obj, REQUEST_TYPES)]


@contextmanager
def _gc_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _left_behind(ask: Callable[[], Any]) -> int:
    """Request objects still alive once ``REQUESTS`` requests (and their after hooks,
    which run after the response is sent) are done, with the GC off: 0 unless a
    request's objects are cyclic garbage."""
    with _gc_off():
        # Held (so their ids cannot be reused) and left out of the count: objects of
        # earlier requests whose after hooks may still run (the warm-up's, the admin
        # calls'); one of them ending meanwhile must not hide a new one left behind.
        earlier = _alive()
        known = {id(obj) for obj in earlier}

        def new() -> int:
            return sum(id(obj) not in known for obj in _alive())

        for _ in range(REQUESTS):
            ask()
        deadline = time.monotonic() + 5
        left = new()
        while left > 0 and time.monotonic() < deadline:
            time.sleep(0.02)  # the last request's after hooks
            left = new()
        del earlier
    return left


def _chat(client: openai.OpenAI) -> Callable[[], Any]:
    return lambda: client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], user="cust"
    )


def test_a_plain_request_leaves_no_cyclic_garbage(fake_openai: Any, fake_anthropic: Any) -> None:
    raw = {"providers": providers(fake_openai, fake_anthropic), "models": STANDARD_MODELS}
    with serve_httptools(raw) as running:
        ask = _chat(running.client())
        ask()  # connect, warm the caches
        assert _left_behind(ask) == 0


def test_a_governed_request_leaves_no_cyclic_garbage(
    fake_openai: Any, fake_anthropic: Any, redis_server: Any, tmp_path: Path
) -> None:
    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": STANDARD_MODELS,
        "governance": {"enabled": True},
    }
    state = RedisGovernanceState.from_url(redis_server.url)
    gov = embedded_governance(raw, tmp_path / "gov.sqlite3", state)
    with serve_httptools(raw, hooks=governance_hooks(gov), admin=AdminApi(gov)) as running:
        admin = Admin(running.url)
        key = admin("POST", "/admin/keys", json={"team_id": "t", "project_id": "p"}).json()
        for scope, scope_id in (("org", "*"), ("team", "t"), ("project", "p"), ("key", key["id"])):
            limits = {"daily_usd": 100, "monthly_usd": 1000, "rpm": 1000, "tpm": 10**6}
            admin("PUT", f"/admin/limits/{scope}/{scope_id}", json=limits).raise_for_status()
        client = openai.OpenAI(base_url=running.url + "/v1", api_key=key["key"], max_retries=0)
        ask = _chat(client)
        ask()  # connect, load the scripts, fill the key cache
        assert _left_behind(ask) == 0
