"""The hot path's Redis traffic: one round trip before the upstream call, one pipelined after."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import openai
import redis.asyncio as aioredis

from gateway_app.config import parse
from gateway_app.governance.service import Governance
from gateway_app.governance.storage import Database
from gateway_app.hooks import RequestContext
from gateway_app.state.governance_redis import RedisGovernanceState
from tests.gateway.conftest import STANDARD_MODELS, providers, serve

TRAFFIC: list[Any] = []
_NAME = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")


class CountingConnection(aioredis.Connection):
    """Records every write to the socket (one per round trip) with its command names."""

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        data = command if isinstance(command, bytes | str) else b"".join(command)
        data = data.encode() if isinstance(data, str) else data
        TRAFFIC.append(tuple(name.decode().upper() for name in _NAME.findall(data)))
        await super().send_packed_command(command, check_health)


class Marker:
    """Registered after governance: marks the upstream call and the response's end."""

    async def before(self, ctx: RequestContext) -> None:
        TRAFFIC.append("upstream call")

    async def after(self, ctx: RequestContext) -> None:
        TRAFFIC.append("response complete")


def test_one_round_trip_before_and_one_pipeline_after(
    fake_openai: Any, fake_anthropic: Any, redis_server: Any, tmp_path: Path
) -> None:
    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": STANDARD_MODELS,
        "governance": {"enabled": True},
    }
    pool = aioredis.ConnectionPool.from_url(
        redis_server.url, connection_class=CountingConnection, health_check_interval=0
    )
    gov = Governance(
        parse(raw),
        state=RedisGovernanceState(aioredis.Redis(connection_pool=pool)),
        drain_state=RedisGovernanceState.from_url(redis_server.url),
        db=Database(f"sqlite:///{tmp_path / 'gov.sqlite3'}"),
        admin_key="adm",
        secret=b"s",
    )
    with serve(raw, hooks=[gov, Marker()], admin=gov) as running:
        import httpx

        admin = {"authorization": "Bearer adm"}
        key = httpx.post(
            running.url + "/admin/keys", headers=admin, json={"team_id": "t", "project_id": "p"}
        ).json()
        for scope, scope_id in (("org", "*"), ("team", "t"), ("project", "p"), ("key", key["id"])):
            httpx.put(
                f"{running.url}/admin/limits/{scope}/{scope_id}",
                headers=admin,
                json={"daily_usd": 100, "monthly_usd": 1000, "rpm": 1000, "tpm": 10**6},
            )
        client = openai.OpenAI(base_url=running.url + "/v1", api_key=key["key"], max_retries=0)

        def ask() -> None:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], user="cust"
            )

        ask()  # connects and loads the script
        TRAFFIC.clear()
        ask()
        fake_openai.wait_for(lambda: "response complete" in TRAFFIC and len(TRAFFIC) >= 4)
    assert TRAFFIC[0] == ("EVALSHA",)
    assert TRAFFIC[1:3] == ["upstream call", "response complete"]
    # after: budget corrections at 4 levels x 2 periods, the TPM corrections, the audit event
    assert len(TRAFFIC) == 4
    after = TRAFFIC[3]
    assert after[-1] == "XADD" and set(after[:-1]) == {"INCRBY"} and len(after) > 8
