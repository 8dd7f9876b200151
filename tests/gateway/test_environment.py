"""The gateway reads its environment in one place (gateway_app/environment.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from gateway_app.environment import Environment

GATEWAY = Path(__file__).resolve().parents[2] / "gateway_app"
# The serving process's variables: read by Environment.from_environ and nowhere else.
SERVING = {
    "AIGW_REDIS_URL",
    "AIGW_REDIS_CA_FILE",
    "AIGW_REDIS_AUTH",
    "AIGW_DATABASE_URL",
    "AIGW_DATABASE_CA_FILE",
    "AIGW_MIGRATION_DATABASE_URL",
    "AIGW_ADMIN_KEY",
    "AIGW_KEY_HASH_SECRET",
    "AIGW_UPSTREAM_CLIENT",
}


def test_variables_map_to_fields_and_empty_means_unset() -> None:
    env = Environment.from_environ(
        {
            "AIGW_REDIS_URL": "rediss://:pw@redis:6380/0",
            "AIGW_REDIS_CA_FILE": "/etc/aigw/redis-ca.pem",
            "AIGW_DATABASE_URL": "",
            "AIGW_ADMIN_KEY": "adm",
            "AIGW_UPSTREAM_CLIENT": "aiohttp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        }
    )
    assert env.redis_url == "rediss://:pw@redis:6380/0"
    assert env.redis_ca_file == "/etc/aigw/redis-ca.pem"
    assert env.database_url is None  # set but empty: unset (a blank Secret key)
    assert env.admin_key == "adm" and env.key_hash_secret is None
    assert env.upstream_client == "aiohttp" and env.tracing
    assert Environment.from_environ({}) == Environment()
    # Secrets (and URLs that carry passwords) never reach a log line through repr().
    assert "pw@" not in repr(env) and "adm" not in repr(env)


def test_no_other_gateway_module_reads_the_serving_variables() -> None:
    """``AIGW_REDIS_URL`` was read in four places; a fifth would slip back in unseen."""
    readers: dict[str, set[str]] = {}
    for path in GATEWAY.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in SERVING:
                readers.setdefault(node.value, set()).add(str(path.relative_to(GATEWAY)))
    assert readers == {name: {"environment.py"} for name in SERVING}
