"""OpenTelemetry traces, off unless the standard ``OTEL_*`` variables configure them.

Enabled when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (and neither
``OTEL_SDK_DISABLED=true`` nor ``OTEL_TRACES_EXPORTER=none``); the OTLP/HTTP
exporter reads the rest (headers, protocol, timeouts) from the environment.
Nothing of OpenTelemetry is imported otherwise, so the hot path pays nothing.

Spans are written once the request is finished, with the timestamps recorded
on the way (no span objects live across awaits): the request (SERVER), then
its phases (``exchange.spans``: the cache lookup; governance's limit check is
timed as ``aigw.limits`` by :class:`TimedHook`), then one CLIENT
span per upstream attempt, named and attributed per the OpenTelemetry GenAI
semantic conventions (``gen_ai.*``). An incoming ``traceparent`` is honoured.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gateway_app.context import Exchange, RequestContext, Span
from gateway_app.hooks import Hook

if TYPE_CHECKING:
    from gateway_app.config import GatewayConfig


def configured(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for trace export."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "none":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


class Tracer:
    """Writes a finished request's spans to an OpenTelemetry tracer provider."""

    def __init__(self, config: GatewayConfig, provider: Any = None) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        if provider is None:
            provider = _otlp_provider()
        self.provider = provider
        self.tracer = provider.get_tracer("gateway_app")
        self._trace = trace
        self._propagator = TraceContextTextMapPropagator()
        # Deployment id -> (provider name, upstream model) for attempts' attributes.
        self.deployments = {
            d.id: (d.provider, d.model)
            for model in config.models.values()
            for d in model.deployments
        }
        self.provider_types = {name: p.type for name, p in config.providers.items()}
        self._offset_ns = time.time_ns() - time.perf_counter_ns()

    def _ns(self, perf: float) -> int:
        return int(perf * 1e9) + self._offset_ns

    def record(self, request: RequestContext, exchange: Exchange, end: float) -> None:
        """Emit the request's spans."""
        trace = self._trace
        kind = trace.SpanKind
        operation = str(request.api.operation) if request.api is not None else "http"
        body = request.body or {}
        route = exchange.route
        root_attributes: dict[str, Any] = {
            "http.request.method": "POST" if operation != "http" else "GET",
            "url.path": request.endpoint,
            "http.response.status_code": exchange.status,
            "aigw.request_id": request.request_id,
            "gen_ai.operation.name": operation,
        }
        if request.model:
            root_attributes["gen_ai.request.model"] = request.model
        if exchange.cache:
            root_attributes["aigw.cache.outcome"] = str(exchange.cache)
        if exchange.deployment:
            root_attributes["aigw.deployment"] = exchange.deployment
        if request.caller is not None:
            root_attributes["aigw.team_id"] = request.caller.team_id
        for field, attribute in (
            ("temperature", "gen_ai.request.temperature"),
            ("top_p", "gen_ai.request.top_p"),
            ("max_tokens", "gen_ai.request.max_tokens"),
            ("max_completion_tokens", "gen_ai.request.max_tokens"),
            ("max_output_tokens", "gen_ai.request.max_tokens"),  # the Responses API's
            ("seed", "gen_ai.request.seed"),
        ):
            value = body.get(field)
            if isinstance(value, int | float) and not isinstance(value, bool):
                root_attributes[attribute] = value
        headers = request.headers
        parent = self._propagator.extract(headers) if "traceparent" in headers else None
        root = self.tracer.start_span(
            f"{operation} {request.model}" if request.model else f"GET {request.endpoint}",
            context=parent,
            kind=kind.SERVER,
            start_time=self._ns(request.started),
            attributes=root_attributes,
        )
        error = exchange.error
        if error is not None:
            root.set_status(trace.Status(trace.StatusCode.ERROR, error.code or error.type))
            root.set_attribute("error.type", error.code or error.type)
        inner = trace.set_span_in_context(root)
        for name, start, stop, attributes in exchange.spans or ():
            span = self.tracer.start_span(
                name, context=inner, start_time=self._ns(start), attributes=attributes
            )
            span.end(self._ns(stop))
        usage = None if exchange.served_from_cache else exchange.usage
        result = route.result if route is not None else None
        stream = route.stream if route is not None else None
        for attempt in route.attempts if route is not None else ():
            provider_name, upstream_model = self.deployments.get(attempt.deployment, ("", ""))
            attributes = {
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": self.provider_types.get(provider_name, provider_name),
                "gen_ai.system": self.provider_types.get(provider_name, provider_name),
                "gen_ai.request.model": upstream_model,
                "aigw.deployment": attempt.deployment,
                "aigw.attempt.outcome": attempt.outcome,
            }
            ok = attempt.outcome == "ok"
            if ok and usage:
                for key, attribute in (
                    ("prompt_tokens", "gen_ai.usage.input_tokens"),
                    ("completion_tokens", "gen_ai.usage.output_tokens"),
                ):
                    if isinstance(usage.get(key), int):
                        attributes[attribute] = usage[key]
            if ok and result is not None and operation == "chat":
                try:
                    data = result.data
                    attributes["gen_ai.response.model"] = data.get("model", upstream_model)
                    attributes["gen_ai.response.id"] = data.get("id", "")
                    attributes["gen_ai.response.finish_reasons"] = [
                        str(c.get("finish_reason")) for c in data.get("choices", ())
                    ]
                except (ValueError, AttributeError):
                    pass
            elif ok and stream is not None and stream.state.finish_reason:
                attributes["gen_ai.response.finish_reasons"] = [stream.state.finish_reason]
            if not ok:
                attributes["error.type"] = attempt.outcome
            start = attempt.started or request.started
            span = self.tracer.start_span(
                f"{operation} {upstream_model}",
                context=inner,
                kind=kind.CLIENT,
                start_time=self._ns(start),
                attributes=attributes,
            )
            if not ok:
                span.set_status(trace.Status(trace.StatusCode.ERROR, attempt.outcome))
            span.end(self._ns(start + attempt.latency_s))
        root.end(self._ns(end))

    def shutdown(self) -> None:
        """Flush and stop the exporter."""
        shutdown = getattr(self.provider, "shutdown", None)
        if shutdown is not None:
            shutdown()


class TimedHook(Hook[Any]):
    """Wraps another hook to record its ``before`` as a span (e.g. ``aigw.limits``).

    Used for hooks that do not record their own phases; only when tracing is on,
    so the wrapper costs nothing otherwise. It takes the wrapped hook's stage and
    lifecycle.
    """

    def __init__(self, hook: Hook[Any], span_name: str) -> None:
        self.hook = hook
        self.span_name = span_name
        self.stage = hook.stage

    async def start(self) -> None:
        """The wrapped hook's start."""
        await self.hook.start()

    async def stop(self) -> None:
        """The wrapped hook's stop."""
        await self.hook.stop()

    async def before(self, request: RequestContext, exchange: Exchange) -> Any:
        """The wrapped hook's before, timed."""
        started = time.perf_counter()
        try:
            return await self.hook.before(request, exchange)
        finally:
            attributes = {"aigw.rejection": exchange.rejection} if exchange.rejection else {}
            exchange.add_span(Span(self.span_name, started, time.perf_counter(), attributes))

    async def after(self, request: RequestContext, exchange: Exchange, state: Any) -> None:
        """The wrapped hook's after."""
        pending = self.hook.after(request, exchange, state)
        if pending is not None:
            await pending


def _otlp_provider() -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create reads OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES.
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "ai-gateway")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
