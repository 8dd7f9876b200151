"""Hooks: before in order (short-circuit), after in reverse order with the outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from gateway_app.hooks import RequestContext, Response
from tests.fakes import FakeUpstream

USER = [{"role": "user", "content": "hello"}]


class Recorder:
    def __init__(
        self, name: str, log: list[Any], short: bool = False, no_fallbacks: bool = False
    ) -> None:
        self.name, self.log, self.short, self.no_fallbacks = name, log, short, no_fallbacks

    async def before(self, ctx: RequestContext) -> Response | None:
        self.log.append(("before", self.name))
        if self.no_fallbacks:
            ctx.allow_fallbacks = False
        if self.short and ctx.body and ctx.body["messages"][0]["content"] == "cached?":
            body = {
                "id": "hit",
                "object": "chat.completion",
                "created": 0,
                "model": ctx.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "from hook"},
                        "finish_reason": "stop",
                    }
                ],
            }
            return Response(200, orjson.dumps(body), [(b"x-cache", b"hit")])
        return None

    async def after(self, ctx: RequestContext) -> None:
        await asyncio.sleep(0.01)  # hooks do I/O (Redis, queues): they must not be cancelled
        self.log.append(
            ("after", self.name, ctx.status, ctx.deployment, (ctx.usage or {}).get("total_tokens"))
        )


def test_hooks_wrap_the_call_and_may_short_circuit(gateway: Any, fake_openai: FakeUpstream) -> None:
    log: list[Any] = []
    hooks = [Recorder("limits", log), Recorder("cache", log, short=True)]
    models = {"m": {"deployments": [{"provider": "openai", "model": "x"}]}}
    with gateway(models, hooks=hooks) as gw:
        client = gw.client()
        # after hooks run once the response is out: the client does not wait for them.
        client.chat.completions.create(model="m", messages=USER)
        assert fake_openai.wait_for(lambda: len(log) == 4)
        list(client.chat.completions.create(model="m", messages=USER, stream=True))
        assert fake_openai.wait_for(lambda: len(log) == 8)
        assert (
            log
            == [
                ("before", "limits"),
                ("before", "cache"),
                ("after", "cache", 200, "openai/x", 18),
                ("after", "limits", 200, "openai/x", 18),
            ]
            * 2
        )
        log.clear()
        raw = client.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": "cached?"}]
        )
        assert fake_openai.wait_for(lambda: len(log) == 4)
    assert raw.parse().choices[0].message.content == "from hook" and raw.headers["x-cache"] == "hit"
    assert [entry[:2] for entry in log] == [
        ("before", "limits"),
        ("before", "cache"),
        ("after", "cache"),
        ("after", "limits"),
    ]
    assert len(fake_openai.requests) == 2  # the short-circuited request never went upstream


def test_hook_can_forbid_failover(
    gateway: Any, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    import openai
    import pytest

    from tests.fakes import error

    fake_openai.script(error(500))
    models = {
        "m": {
            "deployments": [
                {"provider": "openai", "model": "a"},
                {"provider": "anthropic", "model": "b"},
            ]
        }
    }
    with (
        gateway(
            models,
            router={"retry": {"max_retries": 0}},
            hooks=[Recorder("pin", [], no_fallbacks=True)],
        ) as gw,
        pytest.raises(openai.InternalServerError),
    ):
        gw.client().chat.completions.create(model="m", messages=USER)
    assert fake_anthropic.requests == []


def test_after_hooks_run_for_abandoned_requests(gateway: Any, fake_openai: FakeUpstream) -> None:
    import openai
    import pytest

    from tests.fakes import slow

    log: list[Any] = []
    fake_openai.script(slow(3))
    models = {"m": {"deployments": [{"provider": "openai", "model": "x"}]}}
    with gateway(models, hooks=[Recorder("audit", log)]) as gw:
        with pytest.raises(openai.APITimeoutError):
            gw.client(timeout=0.3).chat.completions.create(model="m", messages=USER)
        assert fake_openai.wait_for(lambda: len(log) == 2)
    assert log[1][:3] == ("after", "audit", 499)
