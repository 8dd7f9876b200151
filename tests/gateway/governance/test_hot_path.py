"""The hot path's Redis traffic: at most one round trip before the upstream call (none
for most requests: admission leases), none after.

The documented count (docs/explanation/governance.md, "Round trips per request"):
far from every limit, a replica makes one reservation round trip per chunk of
requests (``governance.admission.max_requests``, 128, or fewer where a limit's
headroom sizes the chunk smaller), plus about two per set of counters per minute
(a rate limit's chunk belongs to its minute): well under one per request on
average; near a limit, exactly one per request (the exact path). Settlements,
audit events and returned chunks are queued and written by the batcher: one
pipeline for many requests, with the counter corrections summed per key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai

from gateway_app.config import parse
from gateway_app.context import Exchange, RequestContext
from gateway_app.governance.admin import AdminApi
from gateway_app.governance.hooks import governance_hooks
from gateway_app.governance.service import Governance
from gateway_app.governance.storage import Database
from gateway_app.hooks import Hook
from gateway_app.state.governance_redis import RedisGovernanceState, redis_client
from tests.gateway.conftest import STANDARD_MODELS, providers, serve
from tests.gateway.resp_traffic import counting_client

TRAFFIC: list[Any] = []


CountingClient = counting_client(TRAFFIC)


class Marker(Hook[None]):
    """Registered after governance: marks the upstream call and the response's end."""

    async def before(self, request: RequestContext, exchange: Exchange) -> None:
        TRAFFIC.append("upstream call")

    async def after(self, request: RequestContext, exchange: Exchange, state: None) -> None:
        TRAFFIC.append("response complete")


def test_one_round_trip_before_and_batched_settlements(
    fake_openai: Any, fake_anthropic: Any, redis_server: Any, tmp_path: Path
) -> None:
    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": STANDARD_MODELS,
        "governance": {"enabled": True},
    }
    # A flush interval longer than the test: the batch is written only at shutdown.
    state = RedisGovernanceState(
        redis_client(redis_server.url),
        CountingClient.from_url(redis_server.url),
        flush_interval_s=3600,
    )
    gov = Governance(
        parse(raw),
        state=state,
        drain_state=RedisGovernanceState.from_url(redis_server.url),
        db=Database(f"sqlite:///{tmp_path / 'gov.sqlite3'}"),
        admin_key="adm",
        secret=b"s",
    )
    with serve(raw, hooks=[*governance_hooks(gov), Marker()], admin=AdminApi(gov)) as running:
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
        # After hooks run once the response is sent: wait for each request's before the
        # next one starts, or its marker could land after the next EVALSHA (a race).
        fake_openai.wait_for(lambda: "response complete" in TRAFFIC)
        TRAFFIC.clear()
        for sent in range(1, 11):
            ask()
            fake_openai.wait_for(lambda n=sent: TRAFFIC.count("response complete") == n)
        during = list(TRAFFIC)
        assert state.batcher.held == 11  # the warm-up's event and these ten
        admission = state.admission
        assert admission is not None
        assert admission.local >= 7
    # Per request: at most one EVALSHA, before the upstream call, and nothing after it.
    requests: list[list[Any]] = [[]]
    for entry in during:
        requests[-1].append(entry)
        if entry == "response complete":
            requests.append([])
    assert requests.pop() == []
    assert len(requests) == 10
    for traffic in requests:
        assert traffic in (
            [("EVALSHA",), "upstream call", "response complete"],
            ["upstream call", "response complete"],
        ), traffic
    # The chunks hold 12 requests (the tightest: 5% of the 10**6 TPM over ~4,100
    # tokens reserved per request): one refill, plus one per minute boundary crossed.
    round_trips = sum(traffic[0] == ("EVALSHA",) for traffic in requests)
    assert 1 <= round_trips <= 3, requests
    # Shutdown returns the chunks and flushes the batch: one pipeline, the corrections
    # summed per key (4 levels x 2 periods of budget, 4 RPM and 4 TPM counters, in one
    # minute or two), then the events as one stream entry (one XADD) and the INCRBY of
    # the stream's event counter.
    flushes = TRAFFIC[len(during) :]
    assert len(flushes) == 1
    pipeline = flushes[0]
    assert pipeline[0] == "MULTI" and pipeline[-1] == "EXEC"
    incrby = pipeline.count("INCRBY") - 1
    assert 16 <= incrby <= 24, pipeline
    assert pipeline[1:-1] == ("INCRBY",) * incrby + ("XADD", "INCRBY")
