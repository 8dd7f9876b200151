"""Metrics, traces and the access log as one hook: the chain's outermost frame.

Entered when a request arrives (``Stage.ARRIVAL``), first of all hooks, so its
``after`` runs last and sees every outcome: the other hooks' reports (cache,
cost, refusal) and the requests refused before anything else ran (a bad body, an
unknown model or path, a missing key).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from gateway_app.context import Exchange, RequestContext
from gateway_app.hooks import Hook, Stage
from gateway_app.observability.logs import ACCESS_LOGGER, access_fields, access_writer

if TYPE_CHECKING:
    from gateway_app.config import GatewayConfig
    from gateway_app.observability.metrics import Metrics
    from gateway_app.observability.tracing import Tracer

access_log = logging.getLogger(ACCESS_LOGGER)


class ObservabilityHook(Hook[None]):
    """Records every finished request: metrics, one JSON log line, spans."""

    stage = Stage.ARRIVAL

    def __init__(
        self,
        config: GatewayConfig,
        metrics: Metrics | None,
        breakers: Any = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.metrics = metrics
        self.breakers = breakers
        self.tracer = tracer
        self.log = config.observability.logs.enabled
        self.include_prompts = config.observability.logs.include_prompts
        self.models = frozenset(config.models)

    async def stop(self) -> None:
        """Flush and stop the trace exporter."""
        if self.tracer is not None:
            self.tracer.shutdown()

    async def before(self, request: RequestContext, exchange: Exchange) -> None:
        """Nothing: spans are written from the timestamps once the request is done."""
        return None

    async def after(self, request: RequestContext, exchange: Exchange, state: None) -> None:
        """Record the finished request."""
        now = time.perf_counter()
        metrics = self.metrics
        if metrics is not None:
            metrics.record(request, exchange, now)
            route = exchange.route
            if self.breakers is not None and route is not None:
                for attempt in route.attempts:
                    metrics.set_circuit(
                        attempt.deployment, str(self.breakers.state(attempt.deployment))
                    )
        writer = access_writer(access_log) if self.log else None
        if writer is not None:
            # Nothing but the gateway's own log handler would see the record: the line
            # without the logging machinery (logs.access_writer).
            writer.access(
                request.request_id,
                access_fields(request, exchange, now, self.include_prompts, self.models),
            )
        elif self.log and access_log.isEnabledFor(logging.INFO):
            # makeRecord + handle is what .info() does, minus the caller lookup
            # (a stack walk per line; the access line names no source location).
            access_log.handle(
                access_log.makeRecord(
                    ACCESS_LOGGER,
                    logging.INFO,
                    __file__,
                    0,
                    "request",
                    (),
                    None,
                    extra={
                        "request_id": request.request_id,
                        "fields": access_fields(
                            request, exchange, now, self.include_prompts, self.models
                        ),
                    },
                )
            )
        if self.tracer is not None:
            try:
                self.tracer.record(request, exchange, now)
            except Exception:  # tracing must never fail a request
                logging.getLogger("gateway_app.observability").debug(
                    "span export failed", exc_info=True
                )
