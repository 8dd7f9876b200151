"""Exact cache through the gateway, driven by the official openai SDK."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fakes import FakeUpstream
from tests.fakes.fakes import error, ok
from tests.gateway.cache.helpers import cached_gateway, raw_config

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def ask(client: openai.OpenAI, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
    kwargs.setdefault("messages", MESSAGES)
    return client.chat.completions.with_raw_response.create(
        model=kwargs.pop("model", "gpt-4o-mini"), extra_headers=headers or {}, **kwargs
    )


@pytest.fixture
def gw(fake_openai: FakeUpstream, fake_anthropic: FakeUpstream) -> Any:
    with cached_gateway(raw_config(fake_openai, fake_anthropic)) as running:
        yield running


def test_second_identical_request_is_a_hit_served_without_upstream(
    gw: Any, fake_openai: FakeUpstream
) -> None:
    client = gw.client()
    first = ask(client)
    second = ask(client)
    assert first.headers["x-cache"] == "miss"
    assert second.headers["x-cache"] == "hit"
    assert float(second.headers["x-gateway-overhead-ms"]) >= 0
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.1},
        {"max_tokens": 5},
        {"seed": 3},
        {"response_format": {"type": "json_object"}},
        {
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
            ]
        },
        {"messages": [{"role": "system", "content": "Be brief."}, *MESSAGES]},
    ],
)
def test_anything_that_changes_the_output_changes_the_key(
    gw: Any, fake_openai: FakeUpstream, change: dict[str, Any]
) -> None:
    client = gw.client()
    ask(client)
    assert ask(client, **change).headers["x-cache"] == "miss"
    assert len(fake_openai.requests) == 2


def test_labels_that_do_not_change_the_output_share_the_entry(
    gw: Any, fake_openai: FakeUpstream
) -> None:
    client = gw.client()
    ask(client, user="alice")
    assert ask(client, user="bob", metadata={"run": "2"}).headers["x-cache"] == "hit"


def test_teams_never_share_entries(gw: Any, fake_openai: FakeUpstream) -> None:
    client = gw.client()
    ask(client, {"x-test-team": "team-a"})
    assert ask(client, {"x-test-team": "team-b"}).headers["x-cache"] == "miss"
    assert ask(client, {"x-test-team": "team-a"}).headers["x-cache"] == "hit"
    assert ask(client).headers["x-cache"] == "miss"  # no team: "anonymous", its own tenant
    assert len(fake_openai.requests) == 3


def test_no_store_neither_reads_nor_writes(gw: Any, fake_openai: FakeUpstream) -> None:
    client = gw.client()
    first = ask(client, {"cache-control": "no-store"})
    assert "x-cache" not in first.headers
    assert ask(client).headers["x-cache"] == "miss"  # nothing was stored
    assert ask(client, {"cache-control": "no-store"}).headers.get("x-cache") is None
    assert len(fake_openai.requests) == 3


def test_no_cache_skips_the_lookup_but_refreshes_the_entry(
    gw: Any, fake_openai: FakeUpstream
) -> None:
    client = gw.client()
    fake_openai.script(ok("old answer"), ok("new answer"))
    ask(client)
    refreshed = ask(client, {"cache-control": "no-cache"})
    assert refreshed.headers["x-cache"] == "miss"
    hit = ask(client)
    assert hit.headers["x-cache"] == "hit"
    assert hit.parse().choices[0].message.content == "new answer"


@pytest.mark.parametrize("status", [400, 429, 500])
def test_errors_are_never_cached(gw: Any, fake_openai: FakeUpstream, status: int) -> None:
    client = gw.client()
    tries = 1 if status == 400 else 3  # 429 and 5xx are retried twice by default
    fake_openai.script(*[error(status, "upstream says no")] * tries)
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    fake_openai.script(ok("fine now"))
    answer = ask(client)
    assert answer.headers["x-cache"] == "miss"
    assert answer.parse().choices[0].message.content == "fine now"


def test_streams_are_cached_and_replayed_as_streams(gw: Any, fake_openai: FakeUpstream) -> None:
    client = gw.client()
    fake_openai.script(ok("streamed words here"))

    def run() -> tuple[str, str, list[Any]]:
        with client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        ) as response:
            chunks = list(response.parse())
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            return response.headers["x-cache"], text, chunks

    outcome, text, chunks = run()
    assert (outcome, text) == ("miss", "streamed words here")
    outcome, replayed, replayed_chunks = run()
    assert (outcome, replayed) == ("hit", "streamed words here")
    assert len(replayed_chunks) == len(chunks) > 2  # frame by frame, usage chunk included
    assert replayed_chunks[-1].usage is not None
    assert len(fake_openai.requests) == 1
    # A stream entry never answers a non-streamed request (and vice versa).
    assert ask(client).headers["x-cache"] == "miss"


def test_broken_stream_is_not_cached(gw: Any, fake_openai: FakeUpstream) -> None:
    client = gw.client()
    # chunk_delay: the first event reaches the client before the error (no retry then)
    fake_openai.script(ok("will break", stream_error_after=2, chunk_delay=0.05))
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    stream = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    assert stream.headers["x-cache"] == "miss"


def test_ttl_zero_model_is_not_cached(gw: Any, fake_anthropic: FakeUpstream) -> None:
    client = gw.client()
    for _ in range(2):
        response = ask(client, model="claude-sonnet-4-6")
        assert "x-cache" not in response.headers
    assert len(fake_anthropic.requests) == 2


def test_a_stream_larger_than_an_entry_is_not_held_or_cached(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    raw = raw_config(fake_openai, fake_anthropic)
    raw["cache"]["max_entry_bytes"] = 200
    with cached_gateway(raw) as gw:
        client = gw.client()
        fake_openai.script(ok("a long answer " * 40), ok("second"))
        for expected in ("miss", "miss"):
            response = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True
            )
            assert response.headers["x-cache"] == expected
            list(response.parse())
