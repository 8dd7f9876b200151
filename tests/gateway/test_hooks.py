"""Hooks: before in order (short-circuit), after in reverse order with the outcome."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from gateway_app.context import Exchange, RequestContext
from gateway_app.hooks import Hook, Response, Stage
from tests.fakes import FakeUpstream

USER = [{"role": "user", "content": "hello"}]


class Recorder(Hook[str]):
    def __init__(
        self, name: str, log: list[Any], short: bool = False, no_fallbacks: bool = False
    ) -> None:
        self.name, self.log, self.short, self.no_fallbacks = name, log, short, no_fallbacks

    async def before(self, request: RequestContext, exchange: Exchange) -> str | Response:
        self.log.append(("before", self.name))
        if self.no_fallbacks:
            request.allow_fallbacks = False
        body = request.body
        if self.short and body and body["messages"][0]["content"] == "cached?":
            body = {
                "id": "hit",
                "object": "chat.completion",
                "created": 0,
                "model": request.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "from hook"},
                        "finish_reason": "stop",
                    }
                ],
            }
            return Response(200, orjson.dumps(body), [(b"x-cache", b"hit")])
        return f"state of {self.name}"

    async def after(self, request: RequestContext, exchange: Exchange, state: str | None) -> None:
        await asyncio.sleep(0.01)  # hooks do I/O (Redis, queues): they must not be cancelled
        tokens = (exchange.usage or {}).get("total_tokens")
        self.log.append(("after", self.name, exchange.status, exchange.deployment, tokens, state))


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
                ("after", "cache", 200, "openai/x", 18, "state of cache"),
                ("after", "limits", 200, "openai/x", 18, "state of limits"),
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
    # The hook that answered gets no state back; the one before it gets its own.
    assert [entry[-1] for entry in log[2:]] == [None, "state of limits"]
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


class Staged(Recorder):
    """A recorder entered at another stage, that may refuse (a 401 at the API stage)."""

    def __init__(self, name: str, log: list[Any], stage: Stage, refuse: bool = False) -> None:
        super().__init__(name, log)
        self.stage = stage
        self.refuse = refuse

    async def before(self, request: RequestContext, exchange: Exchange) -> str | Response:
        self.log.append(("before", self.name))
        if self.refuse and request.headers.get("authorization") != "Bearer letmein":
            return Response(401, b'{"error":{"message":"no"}}')
        return f"state of {self.name}"

    async def start(self) -> None:
        self.log.append(("start", self.name))

    async def stop(self) -> None:
        self.log.append(("stop", self.name))


def test_after_runs_only_for_hooks_that_were_entered(
    gateway: Any, fake_openai: FakeUpstream
) -> None:
    """Bifrost's rule: a short-circuit skips the hooks after it, before and after alike."""
    import httpx
    import openai

    log: list[Any] = []
    hooks = [
        Staged("observe", log, Stage.ARRIVAL),
        Staged("auth", log, Stage.API, refuse=True),
        Recorder("limits", log),
        Recorder("cache", log, short=True),
        Recorder("inner", log),
    ]
    models = {"m": {"deployments": [{"provider": "openai", "model": "x"}]}}
    with gateway(models, hooks=hooks) as gw:
        assert log == [("start", "observe"), ("start", "auth")]
        log.clear()
        # Refused on arrival of the API request: only the hooks entered so far settle.
        refused = httpx.post(gw.url + "/v1/chat/completions", json={"model": "m"})
        assert refused.status_code == 401
        assert fake_openai.wait_for(lambda: len(log) == 4)
        assert [e[:2] for e in log] == [
            ("before", "observe"),
            ("before", "auth"),
            ("after", "auth"),
            ("after", "observe"),
        ]
        log.clear()
        # A cache hit: the hooks after the cache are never entered, so never settled.
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="letmein", max_retries=0)
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "cached?"}])
        assert fake_openai.wait_for(lambda: len(log) == 8)
        assert [e[:2] for e in log] == [
            ("before", "observe"),
            ("before", "auth"),
            ("before", "limits"),
            ("before", "cache"),
            ("after", "cache"),
            ("after", "limits"),
            ("after", "auth"),
            ("after", "observe"),
        ]
        log.clear()
        # Refused before the body was read whole (an unknown path, bad JSON): observed only.
        assert httpx.get(gw.url + "/v1/nothing-here").status_code == 404
        bad = httpx.post(
            gw.url + "/v1/chat/completions",
            content=b"{not json",
            headers={"authorization": "Bearer letmein"},
        )
        assert bad.status_code == 400
        assert fake_openai.wait_for(lambda: len(log) == 6)
        assert [e[:2] for e in log] == [
            ("before", "observe"),
            ("after", "observe"),
            ("before", "observe"),
            ("before", "auth"),
            ("after", "auth"),
            ("after", "observe"),
        ]
        assert [e[2] for e in log if e[0] == "after"] == [404, 400, 400]
        log.clear()
    assert log == [("stop", "auth"), ("stop", "observe")]


class Broken(Recorder):
    async def before(self, request: RequestContext, exchange: Exchange) -> str | Response:
        raise RuntimeError("a bug in a hook")


def test_a_hook_that_fails_is_not_entered_and_the_others_still_settle(
    gateway: Any, fake_openai: FakeUpstream
) -> None:
    import openai
    import pytest

    log: list[Any] = []
    hooks = [Recorder("outer", log), Broken("broken", log), Recorder("inner", log)]
    models = {"m": {"deployments": [{"provider": "openai", "model": "x"}]}}
    with gateway(models, hooks=hooks) as gw, pytest.raises(openai.InternalServerError):
        gw.client().chat.completions.create(model="m", messages=USER)
    assert [e[:3] for e in log] == [("before", "outer"), ("after", "outer", 500)]
    assert fake_openai.requests == []


def test_the_chain_refuses_hooks_out_of_stage_order() -> None:
    import pytest

    from gateway_app.hooks import HookChain

    with pytest.raises(ValueError, match=r"hook Staged \(stage ARRIVAL\) comes after Recorder"):
        HookChain([Recorder("limits", []), Staged("observe", [], Stage.ARRIVAL)])


class Plain(Hook[str]):
    """A hook whose methods are plain functions: ``before`` hands back a coroutine, ``after``
    returns None (nothing to wait for), or fails before making one."""

    def __init__(self, name: str, log: list[Any], fail_after: bool = False) -> None:
        self.name, self.log, self.fail_after = name, log, fail_after

    def before(self, request: RequestContext, exchange: Exchange) -> Any:
        async def state() -> str:
            self.log.append(("before", self.name))
            return f"state of {self.name}"

        return state()

    def after(self, request: RequestContext, exchange: Exchange, state: str | None) -> None:
        self.log.append(("after", self.name, exchange.status, state))
        if self.fail_after:
            raise RuntimeError("a bug in a plain after")


def test_plain_hook_methods_are_awaited_or_skipped_and_a_failing_one_stops_no_other(
    gateway: Any, fake_openai: FakeUpstream
) -> None:
    """``before`` may return a coroutine and ``after`` None: the chain awaits the one and
    skips the other, and so does the tracing wrapper around a hook (``TimedHook``, as
    the gateway wraps governance's limits when tracing is on). An ``after`` that raises
    before returning anything is that hook's failure alone: the hooks entered before it
    still settle."""
    from gateway_app.observability.tracing import TimedHook
    from tests.gateway.conftest import logged

    log: list[Any] = []
    hooks = [
        Recorder("outer", log),
        Plain("failing", log, fail_after=True),
        TimedHook(Plain("plain", log), "aigw.limits"),
        Recorder("inner", log),
    ]
    models = {"m": {"deployments": [{"provider": "openai", "model": "x"}]}}
    with logged("gateway_app", logging.ERROR) as errors, gateway(models, hooks=hooks) as gw:
        gw.client().chat.completions.create(model="m", messages=USER)
        assert fake_openai.wait_for(lambda: len(log) == 8)
    assert [e[:2] for e in log] == [
        ("before", "outer"),
        ("before", "failing"),
        ("before", "plain"),
        ("before", "inner"),
        ("after", "inner"),
        ("after", "plain"),
        ("after", "failing"),
        ("after", "outer"),
    ]
    assert log[5][2:] == (200, "state of plain") and log[6][2:] == (200, "state of failing")
    # The only failure is the failing hook's own (the wrapped plain one's None was skipped,
    # not awaited: that would have failed first, the chain settling last entered first).
    failures = [r.exc_info[1] for r in errors if r.exc_info]
    assert [str(exc) for exc in failures] == ["a bug in a plain after"]
