"""The exact cache for the Responses API, driven by the official openai SDK: a hit is a
new response of its own (new id, stored, chainable), per team, streamed as it was."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from gateway_app.cache.hook import CacheHook
from gateway_app.cache.store import InProcessCacheStore
from gateway_app.config import parse
from gateway_app.hooks import Stage
from gateway_app.responses.store import build as build_store
from tests.fakes import FakeUpstream
from tests.fakes.azure import FakeAzureOpenAI
from tests.gateway.cache.helpers import TenantFromHeader
from tests.gateway.conftest import Running, serve
from tests.gateway.responses.conftest import raw_config

# One natively served model (OpenAI's Responses API), one translated through chat.
MODELS = ["gpt-5-mini", "claude-sonnet-4-6"]


class Tenant(TenantFromHeader):
    """The team from ``x-test-team``, set before the body is read (as authentication is):
    the stored-response routes read it too."""

    stage = Stage.API


@pytest.fixture
def cached(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream, fake_azure: FakeAzureOpenAI
) -> Iterator[Running]:
    """The gateway with its response store and the exact cache; the team from a header."""
    raw = {
        **raw_config(fake_openai, fake_anthropic, fake_azure),
        "cache": {"enabled": True, "ttl_s": 60},
    }
    config = parse(raw)
    hooks = [
        Tenant(),
        build_store(config, None, None),
        CacheHook(config, InProcessCacheStore(100)),
    ]
    with serve(raw, hooks=hooks) as running:
        yield running


def sdk(running: Running, team: str = "red") -> openai.OpenAI:
    """The official SDK pointed at the gateway, as a key of ``team``."""
    return openai.OpenAI(
        base_url=running.url + "/v1",
        api_key="k",
        max_retries=0,
        default_headers={"x-test-team": team},
    )


def upstream_calls(fake_openai: FakeUpstream, fake_anthropic: FakeUpstream) -> int:
    return len(fake_openai.requests) + len(fake_anthropic.requests)


@pytest.mark.parametrize("model", MODELS)
def test_a_hit_is_a_new_stored_response_that_chains(
    cached: Running, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream, model: str
) -> None:
    client = sdk(cached)
    ask: Callable[..., Any] = client.responses.with_raw_response.create
    first = ask(model=model, input="What is 2+2?", instructions="Be brief.")
    second = ask(model=model, input="What is 2+2?", instructions="Be brief.")
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert upstream_calls(fake_openai, fake_anthropic) == 1
    one, two = first.parse(), second.parse()
    assert two.output_text == one.output_text
    assert two.id != one.id and two.id.startswith("resp_")
    assert two.output[0].id != one.output[0].id  # item ids are the new response's own
    assert two.created_at >= one.created_at
    # The hit is stored: retrieved, and a later turn chains onto it.
    assert client.responses.retrieve(two.id).output_text == one.output_text
    after = client.responses.create(model=model, input="And 3+3?", previous_response_id=two.id)
    assert after.previous_response_id == two.id
    sent = (fake_openai.requests or fake_anthropic.requests)[-1]["json"]
    assert "What is 2+2?" in str(sent) and one.output_text in str(sent)  # the whole history
    # Other instructions or another input are other conversations.
    ask(model=model, input="What is 2+2?", instructions="Be verbose.")
    assert upstream_calls(fake_openai, fake_anthropic) == 3


def test_the_key_is_the_whole_conversation_chained_or_sent_whole(
    cached: Running, fake_openai: FakeUpstream
) -> None:
    client = sdk(cached)
    first = client.responses.create(model="gpt-5-mini", input="My name is Ada.")
    chained = client.responses.with_raw_response.create(
        model="gpt-5-mini", input="What is my name?", previous_response_id=first.id
    )
    again = client.responses.with_raw_response.create(
        model="gpt-5-mini", input="What is my name?", previous_response_id=first.id
    )
    assert (chained.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    assert again.parse().previous_response_id == first.id
    # The same last input after another history is another conversation.
    other = client.responses.create(model="gpt-5-mini", input="My name is Bob.")
    elsewhere = client.responses.with_raw_response.create(
        model="gpt-5-mini", input="What is my name?", previous_response_id=other.id
    )
    assert elsewhere.headers["x-cache"] == "miss"
    assert len(fake_openai.requests) == 4


def test_another_team_misses_and_store_false_is_kept(
    cached: Running, fake_openai: FakeUpstream
) -> None:
    red, blue = sdk(cached, "red"), sdk(cached, "blue")
    kept = red.responses.create(model="gpt-5-mini", input="red team question")
    answer = blue.responses.with_raw_response.create(model="gpt-5-mini", input="red team question")
    assert answer.headers["x-cache"] == "miss"
    assert len(fake_openai.requests) == 2
    # store: false on the hit: not kept (nothing to retrieve), and it says so.
    unstored = red.responses.with_raw_response.create(
        model="gpt-5-mini", input="red team question", store=False
    )
    assert unstored.headers["x-cache"] == "hit"
    assert unstored.parse().store is False
    with pytest.raises(openai.NotFoundError):
        red.responses.retrieve(unstored.parse().id)
    assert red.responses.retrieve(kept.id).id == kept.id


@pytest.mark.parametrize("model", MODELS)
def test_a_streamed_hit_replays_the_complete_stream_with_new_ids(
    cached: Running, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream, model: str
) -> None:
    client = sdk(cached)

    def streamed() -> tuple[list[Any], Any]:
        with client.responses.stream(model=model, input="Tell me a story.") as stream:
            events = list(stream)
            return events, stream.get_final_response()

    first_events, first = streamed()
    second_events, second = streamed()
    assert upstream_calls(fake_openai, fake_anthropic) == 1
    assert [e.type for e in second_events] == [e.type for e in first_events]
    assert second.output_text == first.output_text
    assert second.id != first.id
    # Every event names the new response's ids, never the first's.
    created = next(e for e in second_events if e.type == "response.created")
    assert created.response.id == second.id
    item_ids = {getattr(e, "item_id", None) for e in second_events} - {None}
    assert item_ids == {second.output[0].id}
    assert first.output[0].id not in item_ids
    assert client.responses.retrieve(second.id).output_text == first.output_text
    chained = client.responses.create(model=model, input="More.", previous_response_id=second.id)
    assert chained.previous_response_id == second.id
