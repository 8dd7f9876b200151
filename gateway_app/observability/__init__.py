"""Metrics (Prometheus), traces (OpenTelemetry) and structured logs.

One hook (:class:`~gateway_app.observability.hook.ObservabilityHook`),
registered first so that its ``after`` runs last and sees every other hook's
outcome (cache, governance). Tracing is imported only when configured.
"""
