"""The three-cloud simulation: each cloud serves on its own state; links obey the injector."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.multicloud.clouds import CLOUDS, Cloud, Multicloud

INTERNAL = "/internal/v1/changes"
"""A link leads to the peer's internal listener, where only /internal/v1/* is served."""


def _new_key(cloud: Cloud, project: str) -> dict[str, Any]:
    response = cloud.admin("POST", "/admin/keys", json={"team_id": "t", "project_id": project})
    assert response.status_code == 201, response.text
    return response.json()


def _audited(cloud: Cloud, key_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The request events of ``key_id`` in the cloud's PostgreSQL, once the drainer wrote them."""
    db = cloud.database()
    try:
        deadline = time.monotonic() + timeout
        while True:
            rows = db.fetch(
                "SELECT * FROM audit_events WHERE kind = 'request' AND key_id = ?", (key_id,)
            )
            if rows or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)
    finally:
        db.close()


def test_each_cloud_serves_a_chat_completion_from_its_own_upstream_and_state(
    clouds: Multicloud,
) -> None:
    assert sorted(clouds.clouds) == sorted(CLOUDS)
    # Three islands of state: no two clouds share a Redis or a PostgreSQL.
    assert len({c.redis.port for c in clouds.clouds.values()}) == 3
    assert len({c.postgres.port for c in clouds.clouds.values()}) == 3
    for name, cloud in clouds.clouds.items():
        key = _new_key(cloud, f"serve-{name}")
        client = openai.OpenAI(base_url=cloud.url + "/v1", api_key=key["key"], max_retries=0)
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"hello from {name}"}]
        )
        assert reply.choices[0].message.content == f"echo: hello from {name}"
        # Served by this cloud's upstream, and by no other's.
        for other in clouds.clouds.values():
            texts = [r["json"]["messages"][-1]["content"] for r in other.upstream.requests]
            assert (f"hello from {name}" in texts) == (other is cloud), (other.name, texts)
        rows = _audited(cloud, key["id"])
        assert len(rows) == 1, rows
        assert rows[0]["status"] == 200 and rows[0]["cost_usd"] > 0


def test_a_link_carries_calls_to_the_peer_and_obeys_delay_partition_and_heal(
    clouds: Multicloud,
) -> None:
    link = clouds.link("gcp", "aws")
    # Through the link, gcp reaches the home's (aws's) internal listener: with gcp's own
    # token the change feed answers.
    token = {"authorization": f"Bearer {clouds.identities['gcp'].mint()}"}
    with httpx.stream("GET", link.url + INTERNAL, headers=token, timeout=5) as stream:
        assert stream.status_code == 200
        assert '"head"' in next(stream.iter_lines())
    with httpx.Client(timeout=1.0) as http:
        # Without a token the peer refuses (401): the call crossed the link.
        assert http.get(link.url + INTERNAL).status_code == 401
        link.delay(0.1)
        started = time.monotonic()
        assert http.get(link.url + INTERNAL).status_code == 401
        assert time.monotonic() - started >= 0.2  # request and response: two one-way delays
        link.partition("drop")
        started = time.monotonic()
        with pytest.raises(httpx.TimeoutException):
            http.get(link.url + INTERNAL)
        assert time.monotonic() - started < 2.0  # the client's timeout bounds the hang
        link.heal()
    with httpx.Client(timeout=2.0) as http:
        assert http.get(link.url + INTERNAL).status_code == 401
        link.partition("reset")
        started = time.monotonic()
        with pytest.raises(httpx.TransportError):
            http.get(link.url + INTERNAL)
        assert time.monotonic() - started < 1.0  # refused at once
    # The cloud behind the link was never affected: direct calls work throughout.
    assert httpx.get(clouds["aws"].url + "/health/live", timeout=2).status_code == 200


def test_isolating_a_cloud_cuts_every_link_into_and_out_of_it_and_no_other(
    clouds: Multicloud,
) -> None:
    clouds.isolate("azure", mode="reset")
    for source, cloud in clouds.clouds.items():
        for target, link in cloud.links.items():
            cut = "azure" in (source, target)
            assert (link.partitioned == "reset") == cut, link.name
            with httpx.Client(timeout=1.0) as http:
                if cut:
                    with pytest.raises(httpx.TransportError):
                        http.get(link.url + INTERNAL)
                else:
                    assert http.get(link.url + INTERNAL).status_code == 401
    # Clients of the isolated cloud still reach it (a partition between clouds, not of clients).
    assert httpx.get(clouds["azure"].url + "/health/ready", timeout=2).status_code == 200
    clouds.heal()
    for cloud in clouds.clouds.values():
        for link in cloud.links.values():
            assert httpx.get(link.url + INTERNAL, timeout=2).status_code == 401
