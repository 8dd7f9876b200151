"""Stored responses in the gateway's own store: chaining, retrieval, deletion, TTL, tenants."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from gateway_app.cache.store import InProcessCacheStore
from gateway_app.config import parse
from gateway_app.environment import Environment
from gateway_app.responses.store import ResponseStore, ResponseStoreHook
from tests.fakes import FakeUpstream
from tests.fakes.azure import FakeAzureOpenAI
from tests.gateway.conftest import Running, serve
from tests.gateway.responses.conftest import client, raw_config
from tests.gateway.test_circuit_contract import redis_url  # noqa: F401  (session fixture)
from tests.ports import kept_port


@pytest.fixture(params=["in-process", "redis"])
def stored(
    request: pytest.FixtureRequest,
    fake_openai: FakeUpstream,
    fake_anthropic: FakeUpstream,
    fake_azure: FakeAzureOpenAI,
) -> Iterator[Running]:
    """A gateway whose response store is in-process, or Redis (shared by replicas)."""
    env = Environment()
    if request.param == "redis":
        env = Environment(redis_url=request.getfixturevalue("redis_url"))
    with serve(raw_config(fake_openai, fake_anthropic, fake_azure), env=env) as running:
        yield running


def test_previous_response_id_sends_the_whole_conversation_to_any_deployment(
    stored: Running, fake_openai: FakeUpstream, fake_azure: FakeAzureOpenAI
) -> None:
    sdk = client(stored)
    first = sdk.responses.create(model="gpt-5-mini", input="My name is Ada.", instructions="Hi")
    # The next turn goes to another provider's deployment: the gateway has the conversation.
    second = sdk.responses.create(
        model="azure-gpt-5", input="What is my name?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    upstream = fake_azure.requests[-1]["json"]
    assert "previous_response_id" not in upstream and upstream["store"] is False
    assert [(i.get("role"), i.get("type")) for i in upstream["input"]] == [
        ("user", "message"),
        ("assistant", "message"),
        ("user", "message"),
    ]
    assert upstream["input"][1]["content"][0]["text"] == "echo: My name is Ada."
    assert all("id" not in item for item in upstream["input"])  # the upstream kept nothing
    assert "instructions" not in upstream  # as OpenAI: instructions are not carried over
    # A third turn chains onto the second (streamed this time), back on OpenAI.
    with sdk.responses.stream(
        model="gpt-5-mini", input="And again?", previous_response_id=second.id
    ) as stream:
        third = stream.get_final_response()
    assert len(fake_openai.requests[-1]["json"]["input"]) == 5
    assert sdk.responses.retrieve(third.id).output_text == third.output_text


def test_retrieve_input_items_and_delete(stored: Running) -> None:
    sdk = client(stored)
    first = sdk.responses.create(model="gpt-5-mini", input="one")
    second = sdk.responses.create(model="gpt-5-mini", input="two", previous_response_id=first.id)
    again = sdk.responses.retrieve(second.id)
    assert again.id == second.id and again.output_text == "echo: two"
    assert again.previous_response_id == first.id
    items = sdk.responses.input_items.list(second.id, order="asc")
    texts = [item.content[0].text for item in items.data]
    assert texts == ["one", "echo: one", "two"]
    assert all(item.id for item in items.data)
    newest = sdk.responses.input_items.list(second.id, limit=1)
    assert newest.data[0].content[0].text == "two" and newest.has_more is True
    assert sdk.responses.delete(first.id) is None  # the SDK's delete returns nothing on 200
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.delete(first.id)
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.responses.create(model="gpt-5-mini", input="x", previous_response_id=first.id)
    assert raised.value.param == "previous_response_id"
    assert raised.value.code == "previous_response_not_found"
    assert sdk.responses.retrieve(second.id).id == second.id  # the chain's later turns stay


def test_store_false_is_honoured(stored: Running, fake_openai: FakeUpstream) -> None:
    sdk = client(stored)
    unsaved = sdk.responses.create(model="gpt-5-mini", input="secret", store=False)
    assert unsaved.store is False
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(unsaved.id)
    with pytest.raises(openai.BadRequestError):
        sdk.responses.create(model="gpt-5-mini", input="x", previous_response_id=unsaved.id)
    with sdk.responses.stream(model="gpt-5-mini", input="secret", store=False) as stream:
        streamed = stream.get_final_response()
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(streamed.id)


def test_failed_calls_are_not_stored(stored: Running, fake_openai: FakeUpstream) -> None:
    from tests.fakes import error, ok

    fake_openai.script(ok(content="a b c d", stream_error_after=4))
    with client(stored).responses.stream(model="gpt-5-mini", input="x") as stream:
        events = list(stream)
    created = events[0].response.id
    assert events[-1].type == "error"
    with pytest.raises(openai.NotFoundError):
        client(stored).responses.retrieve(created)
    fake_openai.script(error(400))
    with pytest.raises(openai.BadRequestError):
        client(stored).responses.create(model="gpt-5-mini", input="x")


def test_stored_responses_expire_after_their_ttl(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream, fake_azure: FakeAzureOpenAI
) -> None:
    raw = {**raw_config(fake_openai, fake_anthropic, fake_azure), "responses": {"ttl_s": 0.3}}
    with serve(raw) as running:
        sdk = client(running)
        first = sdk.responses.create(model="gpt-5-mini", input="short-lived")
        assert sdk.responses.retrieve(first.id).id == first.id
        time.sleep(0.4)
        with pytest.raises(openai.NotFoundError):
            sdk.responses.retrieve(first.id)


def test_the_store_can_be_turned_off(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream, fake_azure: FakeAzureOpenAI
) -> None:
    raw = {**raw_config(fake_openai, fake_anthropic, fake_azure), "responses": {"store": False}}
    with serve(raw) as running:
        first = client(running).responses.create(model="gpt-5-mini", input="x")
        assert first.store is False  # the response object says what the gateway did
        with pytest.raises(openai.NotFoundError):
            client(running).responses.retrieve(first.id)


def test_another_teams_key_gets_404_never_the_content(
    teams: tuple[Running, dict[str, str], Any],
) -> None:
    running, keys, _ = teams
    red = client(running, keys["red"])
    blue = client(running, keys["blue"])
    kept = red.responses.create(model="gpt-5-mini", input="red team secret")
    assert client(running, keys["red2"]).responses.retrieve(kept.id).id == kept.id
    for call in (
        lambda: blue.responses.retrieve(kept.id),
        lambda: blue.responses.input_items.list(kept.id),
        lambda: blue.responses.delete(kept.id),
    ):
        with pytest.raises(openai.NotFoundError) as raised:
            call()
        assert "red team secret" not in raised.value.response.text
    with pytest.raises(openai.BadRequestError) as refused:
        blue.responses.create(model="gpt-5-mini", input="x", previous_response_id=kept.id)
    assert refused.value.code == "previous_response_not_found"
    assert red.responses.retrieve(kept.id).output_text == "echo: red team secret"  # not deleted
    anonymous = httpx.get(f"{running.url}/v1/responses/{kept.id}")
    assert anonymous.status_code == 401


def test_unknown_paths_and_methods(stored: Running) -> None:
    kept = client(stored).responses.create(model="gpt-5-mini", input="x")
    assert httpx.post(f"{stored.url}/v1/responses/{kept.id}").status_code == 405
    assert httpx.get(f"{stored.url}/v1/responses/{kept.id}/other").status_code == 404
    listed = httpx.get(f"{stored.url}/v1/responses/{kept.id}/input_items?limit=0")
    assert listed.status_code == 400 and listed.json()["error"]["param"] == "limit"


def test_a_store_outage_is_a_503_for_chained_turns_only(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream, fake_azure: FakeAzureOpenAI
) -> None:
    down = f"redis://127.0.0.1:{kept_port()}/0"  # a port nothing listens on: Redis is down
    raw = raw_config(fake_openai, fake_anthropic, fake_azure)
    with serve(raw, env=Environment(redis_url=down)) as running:
        sdk = client(running)
        answered = sdk.responses.create(model="gpt-5-mini", input="still answered")
        assert answered.output_text == "echo: still answered"  # not stored, but answered
        with pytest.raises(openai.InternalServerError) as raised:
            sdk.responses.create(model="gpt-5-mini", input="x", previous_response_id=answered.id)
        assert raised.value.status_code == 503
        assert raised.value.code == "response_store_unavailable"
        assert raised.value.response.headers["retry-after"] == "1"


class _SlowStore(InProcessCacheStore):
    """A store whose writes take a while (a far Redis, a busy one)."""

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await asyncio.sleep(0.3)
        await super().set(key, value, ttl_s)


def test_a_response_is_stored_before_the_client_has_it_all(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream, fake_azure: FakeAzureOpenAI
) -> None:
    """A client chains onto a response the moment it has it: the write is not left behind."""
    raw = raw_config(fake_openai, fake_anthropic, fake_azure)
    store = ResponseStoreHook(ResponseStore(_SlowStore(), parse(raw).responses))
    with serve(raw, hooks=[store]) as running:
        sdk = client(running)
        first = sdk.responses.create(model="gpt-5-mini", input="one")
        second = sdk.responses.create(
            model="gpt-5-mini", input="two", previous_response_id=first.id
        )
        with sdk.responses.stream(
            model="gpt-5-mini", input="three", previous_response_id=second.id
        ) as stream:
            third = stream.get_final_response()
        assert sdk.responses.retrieve(third.id).previous_response_id == second.id
