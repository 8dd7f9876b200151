"""Spans (OTel SDK, in-memory exporter) and the JSON access log."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway_app.cache.hook import CacheHook
from gateway_app.cache.store import InProcessCacheStore
from gateway_app.config import parse
from gateway_app.context import Caller, Exchange, RequestContext
from gateway_app.hooks import Hook, Response
from gateway_app.observability.hook import ObservabilityHook
from gateway_app.observability.metrics import Metrics
from gateway_app.observability.tracing import TimedHook, Tracer, configured
from tests.fakes import FakeUpstream
from tests.fakes.fakes import error, ok
from tests.gateway.conftest import providers, serve

PROMPT = "tell me about the okapi secret"
KEY = "sk-live-never-log-me-42"


class Limits(Hook[None]):
    """Stands in for governance's limit check (and its authentication)."""

    async def before(self, request: RequestContext, exchange: Exchange) -> Response | None:
        request.caller = Caller("key-a", "team-a", "project-a")
        return None

    async def after(self, request: RequestContext, exchange: Exchange, state: None) -> None:
        return None


@pytest.fixture
def traced(fake_openai: FakeUpstream, fake_anthropic: FakeUpstream) -> Any:
    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": {
            "gpt-4o-mini": {"deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]}
        },
        "cache": {"enabled": True},
    }
    config = parse(raw)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observer = ObservabilityHook(config, Metrics(config), tracer=Tracer(config, provider))
    hooks = [observer, TimedHook(Limits(), "aigw.limits"), CacheHook(config, InProcessCacheStore())]
    with serve(raw, hooks=hooks) as running:
        yield running, exporter


def test_spans_for_request_cache_limits_and_each_attempt(
    traced: Any, fake_openai: FakeUpstream
) -> None:
    running, exporter = traced
    fake_openai.script(error(500, "boom"), ok("fine"))
    running.client().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": PROMPT}],
        temperature=0.2,
        extra_headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )
    # Spans are written by the after hooks, which run once the response is sent:
    # the client can have its answer a moment before the request's span exists.
    deadline = time.monotonic() + 5
    while not any(s.kind == SpanKind.SERVER for s in exporter.get_finished_spans()):
        assert time.monotonic() < deadline, "no request span after 5 s"
        time.sleep(0.01)
    spans = {(s.name, s.kind): s for s in exporter.get_finished_spans()}
    root = spans[("chat gpt-4o-mini", SpanKind.SERVER)]
    assert root.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C  # traceparent honoured
    assert root.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert root.attributes["gen_ai.request.temperature"] == 0.2
    assert root.attributes["aigw.cache.outcome"] == "miss"
    attempts = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert [s.attributes["aigw.attempt.outcome"] for s in attempts][-1] == "ok"
    assert len(attempts) == 2 and attempts[0].attributes["error.type"] != "ok"
    final = attempts[-1]
    assert final.name == "chat gpt-4o-mini"
    assert final.attributes["gen_ai.provider.name"] == "openai"
    assert final.attributes["gen_ai.usage.input_tokens"] == 11
    assert final.attributes["gen_ai.usage.output_tokens"] == 7
    assert final.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attempts[0].end_time <= final.start_time
    for name in ("aigw.cache", "aigw.limits"):
        span = spans[(name, SpanKind.INTERNAL)]
        assert span.parent.span_id == root.context.span_id
        assert root.start_time <= span.start_time <= span.end_time <= root.end_time
    for span in exporter.get_finished_spans():
        assert PROMPT not in str(dict(span.attributes))


def test_one_json_line_per_request_without_keys_or_prompts(
    access_lines: list[dict[str, Any]], fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": {
            "gpt-4o-mini": {"deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]}
        },
    }
    with serve(raw) as running:  # the default pipeline
        client = running.client()
        client.api_key = KEY
        response = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": PROMPT}],
            extra_headers={"x-request-id": "req-log-test-1"},
        )
        assert response.headers["x-request-id"] == "req-log-test-1"
        with pytest.raises(Exception):  # noqa: B017  (unknown model: a 400)
            client.chat.completions.create(
                model=PROMPT, messages=[{"role": "user", "content": PROMPT}]
            )
    assert len(access_lines) == 2
    first, second = access_lines
    assert first["request_id"] == "req-log-test-1"
    assert first["status"] == 200 and first["model"] == "gpt-4o-mini"
    assert first["prompt_tokens"] == 11 and first["overhead_ms"] >= 0
    assert second["status"] == 400 and second["model"] == "other"
    text = orjson.dumps(access_lines).decode()
    assert KEY not in text and "okapi" not in text


def test_prompts_are_logged_only_when_configured(
    access_lines: list[dict[str, Any]], fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": {
            "gpt-4o-mini": {"deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]}
        },
        "observability": {"logs": {"include_prompts": True}},
    }
    with serve(raw) as running:
        running.client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}]
        )
    assert access_lines[0]["messages"] == [{"role": "user", "content": PROMPT}]


def test_tracing_is_off_unless_otel_variables_ask() -> None:
    assert not configured({})
    assert configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})
    assert not configured(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}
    )
    assert not configured(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}
    )
