"""Retries, backoff, Retry-After, failover, circuit breakers, streams, disconnects, shadow traffic."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from gateway_app.config import CircuitBreakerConfig
from gateway_app.state.circuit import CircuitState, InProcessCircuitBreakerStore
from tests.fakes import FakeUpstream, drop, error, ok, slow
from tests.gateway.conftest import run_async

USER = [{"role": "user", "content": "hello"}]
RETRY = {"retry": {"max_retries": 2, "backoff_base_s": 0.5, "backoff_max_s": 4, "deadline_s": 30}}


def two_deployments(strategy: str = "failover", **extra: Any) -> dict[str, Any]:
    return {
        "m": {
            "strategy": strategy,
            "deployments": [
                {"provider": "openai", "model": "primary", "timeout_s": 1},
                {"provider": "anthropic", "model": "secondary"},
            ],
            **extra,
        }
    }


def test_retries_5xx_with_bounded_full_jitter_backoff(
    gateway: Any, fake_openai: FakeUpstream
) -> None:
    fake_openai.script(error(500), error(503))
    with gateway(
        {"m": {"deployments": [{"provider": "openai", "model": "x"}]}}, router=RETRY
    ) as gw:
        completion = gw.client().chat.completions.create(model="m", messages=USER)
    assert completion.choices[0].message.content == "echo: hello"
    assert len(fake_openai.requests) == 3
    assert len(gw.sleeps) == 2
    assert 0 <= gw.sleeps[0] <= 0.5 and 0 <= gw.sleeps[1] <= 1.0


def test_retry_after_is_honoured(gateway: Any, fake_openai: FakeUpstream) -> None:
    fake_openai.script(error(429, retry_after="3"))
    with gateway(
        {"m": {"deployments": [{"provider": "openai", "model": "x"}]}}, router=RETRY
    ) as gw:
        gw.client().chat.completions.create(model="m", messages=USER)
    assert gw.sleeps == [3.0]
    assert len(fake_openai.requests) == 2


def test_retry_after_beyond_deadline_fails_over_instead_of_waiting(
    gateway: Any, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    fake_openai.script(error(429, retry_after="120"))
    with gateway(two_deployments(), router=RETRY) as gw:
        raw = gw.client().chat.completions.with_raw_response.create(model="m", messages=USER)
    assert raw.headers["x-aigw-deployment"] == "anthropic/secondary"
    assert gw.sleeps == [] and len(fake_openai.requests) == 1


def test_exhausted_429_is_returned_as_rate_limit(gateway: Any, fake_openai: FakeUpstream) -> None:
    fake_openai.script(*(error(429, "slow down", retry_after="1") for _ in range(3)))
    with (
        gateway({"m": {"deployments": [{"provider": "openai", "model": "x"}]}}, router=RETRY) as gw,
        pytest.raises(openai.RateLimitError, match="slow down") as raised,
    ):
        gw.client().chat.completions.create(model="m", messages=USER)
    assert raised.value.response.headers["retry-after"] == "1"
    assert len(fake_openai.requests) == 3


def test_no_retry_or_failover_on_400(
    gateway: Any, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    fake_openai.script(error(400, "context too long"))
    with (
        gateway(two_deployments(), router=RETRY) as gw,
        pytest.raises(openai.BadRequestError, match="context too long"),
    ):
        gw.client().chat.completions.create(model="m", messages=USER)
    assert len(fake_openai.requests) == 1 and fake_anthropic.requests == []


def test_failover_order_after_retries_and_on_auth_errors(
    gateway: Any, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    fake_openai.script(error(502), error(502), error(502), error(401))
    with gateway(two_deployments(), router=RETRY) as gw:
        first = gw.client().chat.completions.with_raw_response.create(model="m", messages=USER)
        second = gw.client().chat.completions.with_raw_response.create(model="m", messages=USER)
    assert first.headers["x-aigw-deployment"] == "anthropic/secondary"
    assert second.headers["x-aigw-deployment"] == "anthropic/secondary"
    assert len(fake_openai.requests) == 4 and len(fake_anthropic.requests) == 2


def test_timeout_and_dropped_connection_are_retried(
    gateway: Any, fake_openai: FakeUpstream
) -> None:
    fake_openai.script(slow(3), drop())
    models = {"m": {"deployments": [{"provider": "openai", "model": "x", "timeout_s": 0.3}]}}
    with gateway(models, router=RETRY) as gw:
        completion = gw.client().chat.completions.create(model="m", messages=USER)
    assert completion.choices[0].message.content == "echo: hello"
    assert len(fake_openai.requests) == 3


def test_deadline_bounds_all_tries(gateway: Any, fake_openai: FakeUpstream) -> None:
    fake_openai.script(*(slow(2) for _ in range(5)))
    models = {"m": {"deployments": [{"provider": "openai", "model": "x", "timeout_s": 5}]}}
    router = {"retry": {"max_retries": 5, "deadline_s": 0.5}}
    with gateway(models, router=router) as gw, pytest.raises(openai.APIStatusError) as raised:
        gw.client().chat.completions.create(model="m", messages=USER)
    assert raised.value.status_code == 504
    assert len(fake_openai.requests) == 1


def test_stream_failure_before_first_byte_fails_over(
    gateway: Any, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    fake_openai.script(error(503), drop(), ok(drop_after_events=0))
    with gateway(two_deployments(), router=RETRY) as gw:
        chunks = list(gw.client().chat.completions.create(model="m", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hello"
    assert len(fake_openai.requests) == 3 and len(fake_anthropic.requests) == 1


def test_no_retry_after_first_streamed_byte(
    gateway: Any, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    fake_openai.script(ok(content="one two three four five", drop_after_events=3))
    with gateway(two_deployments(), router=RETRY) as gw:
        received: list[str] = []
        with pytest.raises(openai.APIError):
            for chunk in gw.client().chat.completions.create(model="m", messages=USER, stream=True):
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one two "  # role chunk + two words, then the drop
    assert len(fake_openai.requests) == 1 and fake_anthropic.requests == []


def test_in_stream_upstream_error_reaches_client(
    gateway: Any, fake_anthropic: FakeUpstream
) -> None:
    fake_anthropic.script(ok(content="a b c d", stream_error_after=4, chunk_delay=0.05))
    models = {"m": {"deployments": [{"provider": "anthropic", "model": "c"}]}}
    with gateway(models) as gw, pytest.raises(openai.APIError, match="Overloaded"):
        list(gw.client().chat.completions.create(model="m", messages=USER, stream=True))


def test_client_disconnect_cancels_upstream(gateway: Any, fake_openai: FakeUpstream) -> None:
    fake_openai.script(slow(5), ok(content="a b c d e f g h", chunk_delay=0.5))
    models = {"m": {"deployments": [{"provider": "openai", "model": "x", "timeout_s": 30}]}}
    with gateway(models) as gw:
        with pytest.raises(openai.APITimeoutError):
            gw.client(timeout=0.3).chat.completions.create(model="m", messages=USER)
        assert fake_openai.wait_for(lambda: fake_openai.cancelled == 1)
        stream = gw.client().chat.completions.create(model="m", messages=USER, stream=True)
        next(iter(stream))
        stream.close()
        assert fake_openai.wait_for(lambda: fake_openai.cancelled == 2)
    assert fake_openai.completed == 0


def test_circuit_breaker_opens_half_opens_and_closes() -> None:
    now = [0.0]
    store = InProcessCircuitBreakerStore(
        CircuitBreakerConfig(
            failure_rate=0.5, min_calls=4, window_s=10, cooldown_s=30, half_open_probes=2
        ),
        clock=lambda: now[0],
    )

    async def scenario() -> None:
        for success in (True, False, False):
            assert await store.acquire("d")
            await store.record("d", success)
        assert store.state("d") is CircuitState.CLOSED  # 3 calls < min_calls
        assert await store.acquire("d")
        await store.record("d", False)  # 3 of 4 failed
        assert store.state("d") is CircuitState.OPEN and store.is_open("d")
        assert not await store.acquire("d")
        now[0] = 31
        assert store.state("d") is CircuitState.HALF_OPEN
        assert await store.acquire("d") and await store.acquire("d")
        assert not await store.acquire("d")  # only two probes
        await store.record("d", True)
        await store.record("d", False)  # a failed probe re-opens
        assert store.state("d") is CircuitState.OPEN
        now[0] = 62
        for _ in range(2):
            assert await store.acquire("d")
            await store.record("d", True)
        assert store.state("d") is CircuitState.CLOSED

        # Old failures leave the window.
        for _ in range(3):
            await store.acquire("e")
            await store.record("e", False)
        now[0] = 100
        await store.acquire("e")
        await store.record("e", False)
        assert store.state("e") is CircuitState.CLOSED

    run_async(scenario())


def test_circuit_opens_in_gateway_and_skips_deployment(
    gateway: Any, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    now = [0.0]
    breaker = {
        "failure_rate": 0.5,
        "min_calls": 2,
        "window_s": 60,
        "cooldown_s": 30,
        "half_open_probes": 1,
    }
    router = {"retry": {"max_retries": 0}, "circuit_breaker": breaker}
    config = CircuitBreakerConfig(**breaker)
    store = InProcessCircuitBreakerStore(config, clock=lambda: now[0])
    fake_openai.script(error(500), error(500), error(400))
    with gateway(two_deployments(), router=router, breakers=store) as gw:
        client = gw.client()
        for _ in range(2):
            client.chat.completions.create(model="m", messages=USER)
        assert store.state("openai/primary") is CircuitState.OPEN
        raw = client.chat.completions.with_raw_response.create(model="m", messages=USER)
        assert raw.headers["x-aigw-deployment"] == "anthropic/secondary"
        assert len(fake_openai.requests) == 2  # skipped while open
        now[0] = 31  # half-open: one probe; a 400 is not a failure of the deployment
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="m", messages=USER)
        assert store.state("openai/primary") is CircuitState.HALF_OPEN
        raw = client.chat.completions.with_raw_response.create(model="m", messages=USER)
    assert raw.headers["x-aigw-deployment"] == "openai/primary"  # the probe succeeded
    assert store.state("openai/primary") is CircuitState.CLOSED


def test_shadow_traffic_never_affects_the_response(
    gateway: Any, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    models = {
        "m": {
            "deployments": [{"provider": "openai", "model": "primary"}],
            "shadow": {"deployment": {"provider": "anthropic", "model": "candidate"}, "share": 1.0},
        }
    }
    fake_anthropic.script(slow(1.5, status=500), ok(content="shadow answer"))
    with gateway(models) as gw:
        client = gw.client()
        started = time.monotonic()
        first = client.chat.completions.with_raw_response.create(model="m", messages=USER)
        elapsed = time.monotonic() - started
        second = client.chat.completions.create(model="m", messages=USER)
        assert fake_anthropic.wait_for(lambda: len(gw.app.router.shadow_log.results) == 2)
    assert first.parse().choices[0].message.content == "echo: hello" and elapsed < 1.5
    assert first.headers["x-aigw-deployment"] == "openai/primary"
    assert second.choices[0].message.content == "echo: hello"
    results = {r["status"] for r in gw.app.router.shadow_log.results}
    assert results == {"http_500", "ok"}
    answer = next(r for r in gw.app.router.shadow_log.results if r["status"] == "ok")
    assert answer["response"]["choices"][0]["message"]["content"] == "shadow answer"


def test_missing_credentials_is_503_naming_the_variable(
    fake_openai: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.gateway.conftest import serve

    monkeypatch.delenv("AIGW_TEST_KEY", raising=False)
    raw = {
        "providers": {
            "p": {"type": "openai", "api_key": "${AIGW_TEST_KEY}", "base_url": fake_openai.url}
        },
        "models": {"m": {"deployments": [{"provider": "p", "model": "x"}]}},
    }
    with serve(raw) as gw:
        with pytest.raises(openai.InternalServerError, match="AIGW_TEST_KEY"):
            gw.client().chat.completions.create(model="m", messages=USER)
        ready = httpx.get(gw.url + "/health/ready").json()
    assert ready["status"] == "ready" and ready["providers_missing_credentials"] == ["p"]
    assert ready["providers"]["p"]["set"] == ["AIGW_TEST_KEY"]


def test_unreadable_upstream_response_fails_over_not_500(
    gateway: Any, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    fake_anthropic.script(ok(raw=b"<html>proxy error</html>"), ok(raw=b"{not json"))
    models = {
        "m": {
            "deployments": [
                {"provider": "anthropic", "model": "a"},
                {"provider": "openai", "model": "b"},
            ]
        },
        "only": {"deployments": [{"provider": "anthropic", "model": "c"}]},
    }
    with gateway(models) as gw:
        raw = gw.client().chat.completions.with_raw_response.create(model="m", messages=USER)
        assert raw.headers["x-aigw-deployment"] == "openai/b"
        with pytest.raises(openai.APIStatusError) as raised:
            gw.client().chat.completions.create(model="only", messages=USER)
    assert raised.value.status_code == 502
    assert raised.value.code == "upstream_bad_response"


def test_upstream_credential_refusal_is_the_gateways_502_and_opens_the_circuit(
    gateway: Any, fake_openai: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 20 items 4 and 13: a provider 401 is not the client's invalid_api_key; nothing
    the provider echoed reaches the client; the deployment's circuit opens at once, and the
    503 for a model whose every circuit is open says when to come back."""
    echoed = "Incorrect API key provided: sk-proj-abc***xyz. Find your key at platform"
    fake_openai.script(error(401, message=echoed))
    model = {"m": {"deployments": [{"provider": "openai", "model": "primary"}]}}
    breaker = {"cooldown_s": 30}
    with gateway(model, router={"circuit_breaker": breaker}) as gw:
        client = gw.client()
        with pytest.raises(openai.APIStatusError) as refused:
            client.chat.completions.create(model="m", messages=USER)
        assert refused.value.status_code == 502
        body = refused.value.body
        assert body["code"] == "upstream_auth_failed" and body["type"] == "server_error"
        assert "openai/primary" in body["message"]
        assert "sk-proj" not in body["message"] and "Incorrect" not in body["message"]
        assert gw.app.breakers.state("openai/primary") is CircuitState.OPEN
        assert "refused the gateway's credential" in caplog.text and "sk-proj" not in caplog.text
        with pytest.raises(openai.APIStatusError) as unavailable:
            client.chat.completions.create(model="m", messages=USER)
    assert len(fake_openai.requests) == 1  # the open circuit kept the second call local
    assert unavailable.value.status_code == 503
    assert unavailable.value.body["code"] == "circuit_open"
    assert 25 <= int(unavailable.value.response.headers["retry-after"]) <= 30
