"""Cancelled requests settle or release their budget reservation exactly once (issue 20 #14).

A request is driven through the ASGI app the way an asyncio Task drives it,
except that it is cancelled at its k-th suspension: for every k from the
first ``await`` to the last, sequentially and then all at once (concurrency),
over a real Redis (the reservation script) and SQLite (the audit log). Then
the budget spend Redis reports must equal, to the nano-dollar, the cost of the
audited requests, and no request may be audited twice.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import orjson

from gateway_app.app import GatewayApp
from gateway_app.config import parse
from gateway_app.governance.admin import AdminApi
from gateway_app.governance.hooks import governance_hooks
from gateway_app.governance.service import NANO, Governance
from gateway_app.governance.storage import Database
from gateway_app.state.governance_redis import RedisGovernanceState
from tests.gateway.conftest import STANDARD_MODELS, providers, run_async
from tests.gateway.governance.services import RedisServer

ADMIN = "cancel-admin-key"


async def drive(coroutine: Coroutine[Any, Any, Any], cancel_at: int) -> int:
    """Run ``coroutine`` as a Task would, cancelling it at suspension ``cancel_at``
    (as ``Task.cancel`` does: cancel the awaited future, else throw at the next step).
    Returns the number of suspensions it made."""
    step = 0
    throw = False
    while True:
        try:
            if throw:
                throw = False
                yielded = coroutine.throw(asyncio.CancelledError())
            else:
                yielded = coroutine.send(None)
        except (StopIteration, asyncio.CancelledError):
            return step
        if step == cancel_at and (yielded is None or not yielded.cancel()):
            throw = True
        step += 1
        if yielded is None:
            await asyncio.sleep(0)
        else:
            yielded._asyncio_future_blocking = False
            await asyncio.wait([yielded])


def scope(key: str, request_id: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "query_string": b"",
        "headers": [
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
            (b"x-request-id", request_id.encode()),
        ],
    }


async def request(app: GatewayApp, key: str, request_id: str, cancel_at: int) -> int:
    body = orjson.dumps(
        {"model": "gpt-4o-mini", "max_tokens": 500, "messages": [{"role": "user", "content": "x"}]}
    )
    sent = False
    forever = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await forever.wait()  # the client neither sends more nor leaves
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # a server's write may suspend too

    return await drive(app(scope(key, request_id), receive, send), cancel_at)


def test_cancel_at_every_await_settles_or_releases_each_reservation_once(
    redis_server: RedisServer, fake_openai: Any, fake_anthropic: Any, tmp_path: Path
) -> None:
    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": STANDARD_MODELS,
        "governance": {"enabled": True},
    }
    config = parse(raw)

    async def scenario() -> tuple[int, int, list[dict[str, Any]]]:
        state = RedisGovernanceState.from_url(redis_server.url, prefix="{cancel-test}:")
        await state.client.flushdb()
        gov = Governance(
            config,
            state=state,
            db=Database(f"sqlite:///{tmp_path / 'gov.sqlite3'}"),
            admin_key=ADMIN,
            secret=b"cancel-secret",
        )
        admin = AdminApi(gov)
        app = GatewayApp(config, hooks=governance_hooks(gov), admin=admin)
        await app.startup()
        try:
            headers = {"authorization": f"Bearer {ADMIN}"}
            _, made = await admin.serve(
                "POST", "/admin/keys", "", headers, {"team_id": "t", "project_id": "p"}
            )
            for path in ("/admin/limits/team/t", "/admin/limits/project/p"):
                await admin.serve("PUT", path, "", headers, {"daily_usd": 100.0, "tpm": 10**9})
            key = made["key"]
            steps = await request(app, key, "warm", -1)  # uncancelled: how many awaits
            assert steps > 5
            for k in range(steps + 2):  # one by one: every await of the request
                await request(app, key, f"seq-{k}", k)
            for rounds in range(2):  # all at once: the same points under concurrency
                await asyncio.gather(
                    *(request(app, key, f"con-{rounds}-{k}", k) for k in range(steps + 2))
                )
            await asyncio.sleep(0.05)  # releases of cancelled reservations arrive as replies
            await state.flush()
            while await gov.drainer.drain_once():
                pass
            rows = gov.db.fetch(
                "SELECT request_id, status, cost_usd FROM audit_events WHERE kind = 'request'"
            )
            day = time.strftime("%Y-%m-%d", time.gmtime())
            team = await state.spent_nusd("team:t", "daily", day)
            project = await state.spent_nusd("project:p", "daily", day)
            return team, project, rows
        finally:
            await app.shutdown()  # stops the governance hook too

    team, project, rows = run_async(scenario())
    ids = [row["request_id"] for row in rows]
    assert len(ids) == len(set(ids)), "a request was audited twice"
    audited = sum(math.ceil(row["cost_usd"] * NANO) for row in rows if row["cost_usd"])
    assert audited > 0
    assert team == project == audited, (
        f"budget spend {team} / {project} nano-USD vs audited {audited}: "
        f"{(team - audited) / max(1, math.ceil(0.15e-6 * NANO)):.0f} token-prices apart"
    )
    # Requests cancelled after admission were audited as cut (503: not a client leaving).
    assert any(row["status"] == 503 for row in rows), rows
