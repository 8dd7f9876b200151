"""Metrics, traces and the access log as one hook, registered first (its after runs last)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from gateway_app.observability.logs import ACCESS_LOGGER, access_fields

if TYPE_CHECKING:
    from gateway_app.config import GatewayConfig
    from gateway_app.hooks import RequestContext, Response
    from gateway_app.observability.metrics import Metrics
    from gateway_app.observability.tracing import Tracer

access_log = logging.getLogger(ACCESS_LOGGER)


class ObservabilityHook:
    """Records every finished request: metrics, one JSON log line, spans."""

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

    async def before(self, ctx: RequestContext) -> Response | None:
        """Nothing: spans are written from the timestamps once the request is done."""
        return None

    async def after(self, ctx: RequestContext) -> None:
        """Record the finished request."""
        now = time.perf_counter()
        metrics = self.metrics
        if metrics is not None:
            metrics.record(ctx, now)
            if self.breakers is not None:
                for attempt in ctx.attempts:
                    metrics.set_circuit(
                        attempt.deployment, str(self.breakers.state(attempt.deployment))
                    )
        if self.log and access_log.isEnabledFor(logging.INFO):
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
                        "request_id": ctx.request_id,
                        "fields": access_fields(ctx, now, self.include_prompts, self.models),
                    },
                )
            )
        if self.tracer is not None:
            try:
                self.tracer.record(ctx, now)
            except Exception:  # tracing must never fail a request
                logging.getLogger("gateway_app.observability").debug(
                    "span export failed", exc_info=True
                )
