"""Audit exactly-once: PostgreSQL down, gateway SIGKILLed and restarted, PostgreSQL back."""

from __future__ import annotations

import time
from typing import Any

import httpx
import redis

from gateway_app.governance.storage import Database
from tests.gateway.governance.processes import GatewayProcess, gateway_config
from tests.gateway.governance.services import PostgresServer, RedisServer

REQUESTS = 30


def _buffered_requests(stream: redis.Redis) -> int:
    """The request events in the audit stream (their COPY lines; an entry holds a flush's
    events, each newline-terminated; the admin event is JSON, perhaps stored already)."""
    return sum(
        sum(1 for line in fields[b"b"].split(b"\n")[:-1] if line[:1] != b"{")
        for _, fields in stream.xrange("{aigw}:audit-v3")
    )


def test_every_event_lands_exactly_once(fake_openai: Any) -> None:
    postgres, redis_server = PostgresServer(), RedisServer()
    gateway: GatewayProcess | None = None
    try:
        db = Database(postgres.url)
        db.migrate()
        env = {"AIGW_REDIS_URL": redis_server.url, "AIGW_DATABASE_URL": postgres.url}
        gateway = GatewayProcess(gateway_config(fake_openai.url, audit_claim_idle_s=1), env)
        key = gateway.admin("POST", "/admin/keys", json={"team_id": "t", "project_id": "p"}).json()

        postgres.stop()
        request_ids = set()
        for i in range(REQUESTS):
            response = httpx.post(
                gateway.url + "/v1/chat/completions",
                headers={"authorization": f"Bearer {key['key']}", "x-request-id": f"audit-{i}"},
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": str(i)}]},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            request_ids.add(response.headers["x-request-id"])
        # Each event is durable once the batcher's next flush has run (a few ms after
        # the response): wait until the stream holds all of them, then crash.
        stream = redis.Redis.from_url(redis_server.url)
        deadline = time.monotonic() + 10
        while _buffered_requests(stream) < REQUESTS:
            assert time.monotonic() < deadline, "events did not reach the stream"
            time.sleep(0.05)
        gateway.kill()
        gateway.start()  # PostgreSQL is still down: start-up must not need it
        postgres.start()

        def stored() -> list[dict[str, Any]]:
            try:
                return db.fetch("SELECT kind, request_id, action FROM audit_events")
            except Exception:
                return []

        deadline = time.monotonic() + 60
        while len(stored()) < REQUESTS + 1:
            assert time.monotonic() < deadline, f"only {len(stored())} events stored"
            time.sleep(0.2)
        # give a duplicate time to appear if one were going to, then check exactly once
        pending = stream.xpending("{aigw}:audit-v3", "aigw-audit")["pending"]
        deadline = time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            time.sleep(0.1)
            pending = stream.xpending("{aigw}:audit-v3", "aigw-audit")["pending"]
        rows = stored()
        assert pending == 0
        requests = [r["request_id"] for r in rows if r["kind"] == "request"]
        assert sorted(requests) == sorted(request_ids)
        assert [r["action"] for r in rows if r["kind"] == "admin"] == ["key.create"]
        db.close()
        stream.close()
    finally:
        if gateway is not None:
            gateway.stop()
        postgres.destroy()
        redis_server.stop()
