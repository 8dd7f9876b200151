"""A Claude Code style session replayed through the gateway: it changes nothing on the wire.

The fixture (fixtures/claude_code_session.json) holds the requests Claude Code
sends (system blocks and tools with ``cache_control``, extended thinking,
multi-turn ``tool_use``/``tool_result``, streaming, a haiku call and a token
count, with its ``anthropic-beta`` header and ``?beta=true``) and the answers
the upstream gave. Each request is sent byte for byte; the upstream must see the
same body and headers, and the client must get the same bytes back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from tests.fakes import FakeUpstream
from tests.fakes.fakes import Behaviour
from tests.gateway.conftest import providers, serve

SESSION = orjson.loads(
    (Path(__file__).parent / "fixtures" / "claude_code_session.json").read_bytes()
)
EXCHANGES: list[dict[str, Any]] = SESSION["exchanges"]
MODELS = {
    name: {"deployments": [{"provider": "anthropic", "model": name}]}
    for name in ("claude-sonnet-4-6", "claude-haiku-4-5")
}
KEY = "sk-aigw-replay"  # no governance here: the key is only checked not to travel upstream


def recorded(exchange: dict[str, Any]) -> Behaviour:
    if "stream" in exchange:
        return Behaviour(sse=exchange["stream"].encode())
    return Behaviour(raw=orjson.dumps(exchange["response"]))


@pytest.fixture
def replay(fake_openai: FakeUpstream, fake_anthropic: FakeUpstream) -> Any:
    with serve({"providers": providers(fake_openai, fake_anthropic), "models": MODELS}) as gw:
        yield gw, fake_anthropic


def test_the_session_replays_through_the_gateway_unchanged(replay: Any) -> None:
    gw, upstream = replay
    upstream.script(*(recorded(e) for e in EXCHANGES))
    with httpx.Client(base_url=gw.url, timeout=30) as client:
        for index, exchange in enumerate(EXCHANGES):
            body = orjson.dumps(exchange["request"])
            headers = {**exchange["headers"], "authorization": f"Bearer {KEY}"}
            headers["content-type"] = "application/json"
            answer = client.post(exchange["path"], content=body, headers=headers)
            assert answer.status_code == 200, (exchange["name"], answer.text)
            if "stream" in exchange:
                assert answer.headers["content-type"] == "text/event-stream"
                assert answer.content == exchange["stream"].encode(), exchange["name"]
            else:
                assert answer.json() == exchange["response"], exchange["name"]
            seen = upstream.requests[index]
            assert seen["json"] == exchange["request"], exchange["name"]
            sent = {k.lower(): v for k, v in seen["headers"].items()}
            for name in ("anthropic-version", "anthropic-beta"):
                assert sent[name] == exchange["headers"][name], (exchange["name"], name)
            assert sent["x-api-key"] == "ak-fake" and KEY not in str(sent)
    assert [r["path"] for r in upstream.requests] == [
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/messages",
        "/v1/messages",
        "/v1/messages",
    ]


def test_the_sdk_reads_the_replayed_turn_as_claude_code_would(replay: Any) -> None:
    gw, upstream = replay
    turn = EXCHANGES[2]
    upstream.script(recorded(turn))
    request = {k: v for k, v in turn["request"].items() if k not in ("stream", "temperature")}
    sdk = anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0)
    # (this SDK's signature has no `temperature`: sent as an extra field, as Claude Code's)
    extra = {"temperature": turn["request"]["temperature"]}
    with sdk.messages.stream(**request, extra_body=extra, extra_headers=turn["headers"]) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[0].signature == "EqQBCkgIBxABGAIiQL2sig1"  # type: ignore[union-attr]
    assert final.content[2].input == {  # type: ignore[union-attr]
        "command": "pytest tests/test_cart.py -x -q",
        "description": "Run the cart tests",
    }
    assert final.usage.cache_creation_input_tokens == 6210
    assert upstream.requests[0]["json"] == turn["request"]
