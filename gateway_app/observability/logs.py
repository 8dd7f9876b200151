"""Structured JSON logs: one line per request, plus the gateway's own messages.

Lines are handed to a background thread (QueueHandler/QueueListener) so a
slow stdout never blocks the event loop. The access line carries the request
id, identity ids (never the key itself), route, status, timings, tokens, cost
and cache outcome; messages and completions only with
``observability.logs.include_prompts``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import logging.handlers
import queue
import sys
import time
from typing import TYPE_CHECKING, Any

import orjson

from gateway_app.observability.metrics import ENDPOINTS

if TYPE_CHECKING:
    from gateway_app.hooks import RequestContext

ACCESS_LOGGER = "gateway_app.access"
_configured = False


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object (``fields`` and ``request_id`` extras merged in)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure(stream: Any = None) -> None:
    """Send the ``gateway_app`` loggers' records as JSON lines to ``stream`` (stdout)."""
    global _configured
    if _configured:
        return
    _configured = True
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, handler)
    listener.start()
    atexit.register(listener.stop)
    root = logging.getLogger("gateway_app")
    root.addHandler(logging.handlers.QueueHandler(records))
    root.setLevel(logging.INFO)
    root.propagate = False


def access_fields(
    ctx: RequestContext, now: float, include_prompts: bool, models: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The access-log fields of one finished request.

    A model name that is not configured, or a path that is not a route, is
    logged as "other": both are the client's free text and could carry anything.
    """
    model = ctx.model if ctx.model is None or ctx.model in models else "other"
    fields: dict[str, Any] = {
        "endpoint": ctx.endpoint if ctx.endpoint in ENDPOINTS else "other",
        "model": model,
        "deployment": ctx.deployment,
        "provider": ctx.provider,
        "status": ctx.status,
        "stream": ctx.stream,
        "latency_ms": round((now - ctx.started) * 1000, 3),
        "upstream_ms": round(ctx.upstream_s * 1000, 3),
        "cache": ctx.cache_outcome,
        "attempts": [f"{a.deployment}:{a.outcome}" for a in ctx.attempts],
    }
    if ctx.overhead_s is not None:
        fields["overhead_ms"] = round(ctx.overhead_s * 1000, 3)
    if ctx.first_byte_s is not None:
        fields["ttfb_ms"] = round(ctx.first_byte_s * 1000, 3)
    for name in ("key_id", "team_id", "project_id", "customer", "cost_usd", "rejection"):
        value = getattr(ctx, name)
        if value is not None:
            fields[name] = value
    if ctx.cache_outcome not in ("hit", "semantic-hit"):
        usage = ctx.usage
        if usage:
            fields["prompt_tokens"] = usage.get("prompt_tokens")
            fields["completion_tokens"] = usage.get("completion_tokens")
    if ctx.error is not None:
        fields["error"] = ctx.error.code or ctx.error.type
    if ctx.disconnected:
        fields["disconnected"] = True
    if include_prompts and ctx.body is not None:
        fields["messages"] = ctx.body.get("messages", ctx.body.get("input"))
        if ctx.result is not None and ctx.endpoint == "/v1/chat/completions":
            with contextlib.suppress(ValueError, KeyError, TypeError):
                fields["completion"] = [c.get("message") for c in ctx.result.data["choices"]]
    return fields
