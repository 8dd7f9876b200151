"""Spans (OTel SDK, in-memory exporter) and the JSON access log."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
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
from gateway_app.observability import logs
from gateway_app.observability.hook import ObservabilityHook
from gateway_app.observability.logs import ACCESS_LOGGER, BufferedLineHandler, JsonFormatter
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


@pytest.fixture
def log_stream() -> Iterator[tuple[io.BytesIO, BufferedLineHandler]]:
    """The ``gateway_app`` loggers as :func:`logs.configure` sets them up in a served
    gateway (one :class:`BufferedLineHandler`, not propagating), writing to a buffer."""
    root = logging.getLogger("gateway_app")
    saved = (root.handlers[:], root.propagate, root.level, logs._configured)
    stream = io.BytesIO()
    handler = BufferedLineHandler(stream, interval_s=3600)
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.INFO)
    # Configured: a gateway served meanwhile adds no handler of its own (it would when
    # this test runs first in its process, and the access lines would then take the
    # logging machinery's way).
    logs._configured = True
    try:
        yield stream, handler
    finally:
        handler.close()
        root.handlers[:], root.propagate = saved[0], saved[1]
        root.setLevel(saved[2])
        logs._configured = saved[3]


def _alone(handler: BufferedLineHandler) -> None:
    """Only ``handler`` on the ``gateway_app`` logger, as in a served gateway: pytest
    attaches its log capture to every non-propagating logger for each test's call."""
    logging.getLogger("gateway_app").handlers[:] = [handler]


def test_the_writer_is_woken_once_for_each_buffer_it_takes() -> None:
    """Past ``flush_bytes`` (or on a warning) the writer thread is woken; until it takes the
    buffer (it clears the event first, then takes), more lines do not wake it again: it
    waits for the loop's interpreter lock meanwhile, and every line set the event anew."""
    import threading

    sets: list[int] = []

    class Counting(threading.Event):
        def set(self) -> None:
            sets.append(1)
            super().set()

    class Unattended(BufferedLineHandler):
        def _run(self) -> None:  # no writer thread: the test plays its part
            return

    stream = io.BytesIO()
    handler = Unattended(stream, interval_s=3600, flush_bytes=100)
    handler._wake = Counting()
    for _ in range(10):
        handler._buffer(b"x" * 40, False)  # past 100 bytes at the third line
    handler._buffer(b"a warning", True)
    assert len(sets) == 1
    handler._wake.clear()  # the writer: clear, then take what is buffered
    assert handler._take().count(b"\n") == 11
    handler._buffer(b"x" * 40, False)
    assert len(sets) == 1  # below flush_bytes again: the interval's write takes it
    handler._buffer(b"another warning", True)
    assert len(sets) == 2  # urgent, and the event clear: woken again
    handler.close()
    assert stream.getvalue() == b"x" * 40 + b"\nanother warning\n"


def test_an_access_line_written_directly_is_the_line_the_logger_writes(
    log_stream: tuple[io.BytesIO, BufferedLineHandler], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The access line skips the logging machinery (no ``LogRecord``) only where nothing
    else would see the record, and its bytes are the ``JsonFormatter``'s for that record."""
    stream, handler = log_stream
    access = logging.getLogger(ACCESS_LOGGER)
    _alone(handler)
    assert logs.access_writer(access) is handler
    fields = {"endpoint": "/v1/chat/completions", "status": 200, "cost_usd": 1.5e-06,
              "attempts": ["gpt-4o-mini#0:ok"], "note": "tab\\t \u00e9 \"q\""}  # fmt: skip
    created = 1796569391.9871
    monkeypatch.setattr(logs.time, "time", lambda: created)
    handler.access("req-direct-1", dict(fields))
    record = access.makeRecord(
        ACCESS_LOGGER, logging.INFO, __file__, 0, "request", (), None,
        extra={"request_id": "req-direct-1", "fields": dict(fields)},
    )  # fmt: skip
    record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
    handler.flush()
    assert stream.getvalue() == JsonFormatter().format_bytes(record) + b"\n"
    assert orjson.loads(stream.getvalue())["ts"] == "2026-12-06T15:03:11.987Z"
    # Anything else that would see the record: the logging machinery, as before.
    probe = logging.Handler()
    for undo, change in (
        (lambda: access.removeHandler(probe), lambda: access.addHandler(probe)),
        (lambda: access.removeFilter(probe), lambda: access.addFilter(lambda r: True)),
        (lambda: access.setLevel(logging.NOTSET), lambda: access.setLevel(logging.WARNING)),
        (lambda: handler.removeFilter(probe), lambda: handler.addFilter(lambda r: True)),
        (
            lambda: logging.getLogger("gateway_app").removeHandler(probe),
            lambda: logging.getLogger("gateway_app").addHandler(probe),
        ),
        (
            lambda: setattr(logging.getLogger("gateway_app"), "propagate", False),
            lambda: setattr(logging.getLogger("gateway_app"), "propagate", True),
        ),
    ):
        change()
        try:
            assert logs.access_writer(access) is None
        finally:
            undo()
            access.filters.clear()
            handler.filters.clear()
        assert logs.access_writer(access) is handler


def test_a_served_gateway_writes_its_access_lines_without_log_records(
    log_stream: tuple[io.BytesIO, BufferedLineHandler],
    monkeypatch: pytest.MonkeyPatch,
    fake_openai: FakeUpstream,
    fake_anthropic: FakeUpstream,
) -> None:
    stream, handler = log_stream
    made: list[str] = []
    make = logging.Logger.makeRecord

    def counting(self: logging.Logger, name: str, *args: Any, **kwargs: Any) -> Any:
        made.append(name)
        return make(self, name, *args, **kwargs)

    monkeypatch.setattr(logging.Logger, "makeRecord", counting)
    _alone(handler)
    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": {
            "gpt-4o-mini": {"deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]}
        },
    }
    with serve(raw) as running:
        client = running.client()
        client.api_key = KEY
        for n in range(3):
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": PROMPT}],
                extra_headers={"x-request-id": f"req-direct-{n}"},
            )
    handler.flush()
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == ACCESS_LOGGER]
    assert [line["request_id"] for line in access] == [f"req-direct-{n}" for n in range(3)]
    assert all(line["status"] == 200 and line["prompt_tokens"] == 11 for line in access)
    assert ACCESS_LOGGER not in made
    assert KEY not in stream.getvalue().decode()
