"""A replica stopped while Redis does not answer loses no audit event.

Redis is frozen (``SIGSTOP``: its connections stay open and nothing answers, as a
network partition or a failing-over managed Redis looks), the replica keeps serving
from the headroom its admission holds, and is then stopped as Kubernetes stops a pod
(``SIGTERM``). The events Redis never took go straight to PostgreSQL: every request the
replica served has its audit row, once, in PostgreSQL or in the Redis stream the
drainers will store it from, and the stop fits the pod's termination grace
(``infra/k8s/gateway.py``: the preStop sleep, ``server.graceful_shutdown_s`` and
:data:`gateway_app.config.SHUTDOWN_ALLOWANCE_S`: no request was in flight, so the
whole stop must fit in it).
"""

from __future__ import annotations

import contextlib
import signal
import time
from typing import Any

import openai
import psycopg
import redis

from gateway_app.config import SHUTDOWN_ALLOWANCE_S
from gateway_app.governance import audit
from gateway_app.governance.storage import Database
from tests.gateway.governance.processes import GatewayProcess, gateway_config
from tests.gateway.governance.services import PostgresServer, RedisServer


def test_a_replica_stopped_while_redis_is_dark_stores_every_event_in_postgres(
    fake_openai: Any, postgres_server: PostgresServer
) -> None:
    url = postgres_server.new_database("d")
    db = Database(url)
    db.migrate()
    db.close()
    server = RedisServer()
    gateway = None
    try:
        env = {"AIGW_REDIS_URL": server.url, "AIGW_DATABASE_URL": url}
        gateway = GatewayProcess(gateway_config(fake_openai.url), env)
        created = gateway.admin("POST", "/admin/keys", json={"team_id": "t", "project_id": "p"})
        assert created.status_code == 201, created.text
        limits = gateway.admin("PUT", "/admin/limits/team/t", json={"rpm": 10**6, "tpm": 10**9})
        assert limits.status_code == 200, limits.text
        client = openai.OpenAI(
            base_url=gateway.url + "/v1", api_key=created.json()["key"], max_retries=0
        )

        def call() -> str:
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
            return raw.headers["x-request-id"]

        served = [call() for _ in range(10)]  # admission now holds headroom locally
        server.process.send_signal(signal.SIGSTOP)
        dark = [call() for _ in range(5)]  # admitted locally, their events held
        served += dark
        started = time.monotonic()
        assert gateway.process is not None
        gateway.process.terminate()
        assert gateway.process.wait(30) == 0, gateway.output()
        stopped_in = time.monotonic() - started
        log = gateway.output()
        with psycopg.connect(url) as conn:
            in_postgres = [
                row[0]
                for row in conn.execute(
                    "SELECT request_id FROM audit_events WHERE kind = 'request'"
                ).fetchall()
            ]
        server.process.send_signal(signal.SIGCONT)
        stream = redis.Redis.from_url(server.url)
        try:
            # (A request's event is buffered as its COPY line on PostgreSQL.)
            request_id = audit.COLUMNS.index("request_id")
            # (An entry holds a flush's events, each newline-terminated.)
            buffered = [
                audit.parse_line(line + b"\n")[request_id]
                for _, fields in stream.xrange("{aigw}:audit-v3")
                for line in fields[b"b"].split(b"\n")[:-1]
                if line[:1] != b"{"
            ]
        finally:
            stream.close()
        # Written to PostgreSQL at shutdown: the requests served in the dark, at least.
        assert set(dark) <= set(in_postgres), log
        # Every request has its event, stored once (a row at most once per store; the
        # drainers store a buffered copy once more by its key, not again).
        assert len(in_postgres) == len(set(in_postgres))
        assert set(served) <= set(in_postgres) | set(buffered), log
        assert "written straight to the database" in log and "they are lost" not in log, log
        assert "never retrieved" not in log, log
        assert stopped_in < SHUTDOWN_ALLOWANCE_S, (stopped_in, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            server.process.send_signal(signal.SIGCONT)
        if gateway is not None:
            gateway.stop()
        server.stop()
