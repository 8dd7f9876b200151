"""Redis with Microsoft Entra tokens (Azure Managed Redis, access keys disabled).

Microsoft's rules ("Use Microsoft Entra for cache authentication", Microsoft Learn,
https://learn.microsoft.com/azure/redis/entra-for-authentication): the client sends
``AUTH <object id> <token>``, the token is an Entra access token for
``https://redis.azure.com/.default``, and "after a connection is established by using a
Microsoft Entra token, client applications must periodically refresh the Microsoft
Entra token before expiry. Then the apps must send an AUTH command to the Redis server
to avoid disrupting connections."

The Redis here is a real redis-server whose ACL user (named by the identity's object
id) accepts exactly the newest token the fake Entra endpoint issued: a client that
re-sent an old token, or none, would be refused or would reconnect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_sync

from gateway_app.credentials import cache, redis_entra
from gateway_app.credentials.redis_entra import RedisAuthError, redis_credential
from gateway_app.environment import Environment
from gateway_app.health import redis_ping
from gateway_app.state.governance_redis import redis_client
from gateway_app.state.resp import RespClient, RespConnectionError
from tests.fakes.azure import FakeAzureOpenAI
from tests.gateway.conftest import run_async
from tests.gateway.governance.services import RedisServer

OBJECT_ID = "4f1c8a2e-0d7b-4b8e-9a55-2b6f0c9d1e73"
LIFETIME_S = 4
RENEW_BEFORE_S = 2.0


@pytest.fixture(scope="module")
def entra_redis() -> Iterator[tuple[RedisServer, FakeAzureOpenAI]]:
    server = RedisServer()
    admin = redis_sync.Redis(port=server.port)
    # The access-keys-off database: no default user; only the identity's user.
    admin.execute_command("ACL", "SETUSER", OBJECT_ID, "on", "~*", "&*", "+@all", "nopass")
    admin.execute_command("ACL", "SETUSER", "default", "off")
    fake = FakeAzureOpenAI()
    fake.object_id = OBJECT_ID

    def only_the_newest(token: str) -> None:
        user = redis_sync.Redis(port=server.port, username=OBJECT_ID, password=fake.issued[-2:][0])
        try:
            user.execute_command("ACL", "SETUSER", OBJECT_ID, "resetpass", f">{token}")
        finally:
            user.close()

    with fake:
        fake.on_issue.append(only_the_newest)
        yield server, fake
    server.stop()


@pytest.fixture
def entra_env(
    entra_redis: tuple[RedisServer, FakeAzureOpenAI],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> tuple[RedisServer, FakeAzureOpenAI]:
    server, fake = entra_redis
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(fake.assertion + "\n")
    monkeypatch.setenv("AZURE_CLIENT_ID", fake.client_id)
    monkeypatch.setenv("AZURE_TENANT_ID", "tenant-1")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", fake.url + "/")
    monkeypatch.setattr(redis_entra, "RENEW_BEFORE_S", RENEW_BEFORE_S)
    fake.token_lifetime_s = LIFETIME_S
    fake.token_requests.clear()
    cache.reset()
    yield server, fake
    cache.reset()


def auth_calls(server: RedisServer, fake: FakeAzureOpenAI) -> tuple[int, int]:
    """``(calls, failed_calls)`` of AUTH since the server started (INFO commandstats)."""
    stats = redis_sync.Redis(port=server.port, username=OBJECT_ID, password=fake.issued[-1])
    try:
        line = stats.info("commandstats").get("cmdstat_auth", {})
    finally:
        stats.close()
    return int(line.get("calls", 0)), int(line.get("failed_calls", 0))


def test_the_request_path_client_re_authenticates_its_live_connection_before_expiry(
    entra_env: tuple[RedisServer, FakeAzureOpenAI],
) -> None:
    server, fake = entra_env
    url = f"redis://127.0.0.1:{server.port}"
    credential = Environment(redis_url=url, redis_auth="entra").redis_credential()

    async def main() -> None:
        client = RespClient.from_url(url, credential=credential)
        assert await client.execute("SET", "k", "v") == b"OK"
        connection = await client.execute("CLIENT", "ID")
        assert await client.execute("ACL", "WHOAMI") == OBJECT_ID.encode()
        calls, failed = auth_calls(server, fake)
        first = fake.issued[-1]
        # Past the renewal point of the first token (expires after LIFETIME_S): the client
        # must have fetched the next token and sent AUTH on the same connection.
        await asyncio.sleep(LIFETIME_S - RENEW_BEFORE_S + 1.0)
        assert fake.issued[-1] != first
        assert await client.execute("GET", "k") == b"v"
        assert await client.execute("CLIENT", "ID") == connection  # no reconnect
        assert auth_calls(server, fake) == (calls + 1, failed)  # one AUTH, accepted
        scopes = {r["scope"] for r in fake.token_requests}
        assert scopes == {"https://redis.azure.com/.default"}
        await client.aclose()

    run_async(main())


def test_redis_py_re_authenticates_pooled_connections_with_each_new_token(
    entra_env: tuple[RedisServer, FakeAzureOpenAI],
) -> None:
    server, fake = entra_env
    url = f"redis://127.0.0.1:{server.port}"
    credential = redis_credential("entra", url)

    async def main() -> None:
        client = redis_client(url, None, credential)
        assert await client.set("k", "w")
        connection = await client.client_id()
        assert await client.acl_whoami() == OBJECT_ID
        calls, failed = auth_calls(server, fake)
        await asyncio.sleep(LIFETIME_S - RENEW_BEFORE_S + 1.0)
        assert await client.get("k") == b"w"
        assert await client.client_id() == connection
        now_calls, now_failed = auth_calls(server, fake)
        assert now_calls > calls and now_failed == failed
        await client.aclose()

    run_async(main())


def test_readiness_authenticates_with_the_token(
    entra_env: tuple[RedisServer, FakeAzureOpenAI],
) -> None:
    server, _ = entra_env
    url = f"redis://127.0.0.1:{server.port}"
    run_async(redis_ping(url, None, redis_credential("entra", url)))
    with pytest.raises(ConnectionError):  # the default user (a key) is refused
        run_async(redis_ping(url))


def test_bad_settings_name_the_variable_and_the_fix(
    entra_env: tuple[RedisServer, FakeAzureOpenAI], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(RedisAuthError, match=r"AIGW_REDIS_AUTH='iam'.*use 'entra'"):
        redis_credential("iam", "rediss://host:10000")
    with pytest.raises(RedisAuthError, match="has a password too; remove it"):
        redis_credential("entra", "rediss://:key@host:10000")
    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE")
    with pytest.raises(RedisAuthError, match="AZURE_FEDERATED_TOKEN_FILE are unset"):
        redis_credential("entra", "rediss://host:10000")
    assert redis_credential(None, "rediss://:key@host:10000") is None


def test_a_refused_token_exchange_is_a_connection_error_that_says_why(
    entra_env: tuple[RedisServer, FakeAzureOpenAI], tmp_path: Any
) -> None:
    server, _ = entra_env
    (tmp_path / "azure-identity-token").write_text("not-the-federated-token")
    url = f"redis://127.0.0.1:{server.port}"

    async def main() -> None:
        client = RespClient.from_url(url, credential=redis_credential("entra", url))
        # The hot path's callers handle connection errors (fail over, fail closed).
        with pytest.raises(RespConnectionError, match=r"no Entra token for Redis.*AADSTS700211"):
            await client.execute("PING")
        await client.aclose()

    run_async(main())
