"""Structured JSON logs: one line per request, plus the gateway's own messages.

Lines are formatted where they are logged and buffered; a writer thread
writes the buffer in one ``write`` every ``interval_s`` (at once for warnings
and errors, or when the buffer passes ``flush_bytes``), so a slow stdout never
blocks the event loop and a request costs no thread hand-off. (One hand-off
per line, the stdlib QueueHandler/QueueListener pair, cost ~190 CPU µs per
request here: a futex wake and a GIL transfer each time.) If stdout stays
blocked, the buffer stops at ``max_bytes`` and the lines past it are counted
and reported, not held without bound. The access line carries the request
id, identity ids (never the key itself), route, status, timings, tokens, cost
and cache outcome; messages and completions only with
``observability.logs.include_prompts``.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import orjson

from gateway_app.apis import CHAT_COMPLETIONS
from gateway_app.config.prices import Tokens
from gateway_app.observability.metrics import ENDPOINTS

if TYPE_CHECKING:
    from gateway_app.context import Exchange, RequestContext

ACCESS_LOGGER = "gateway_app.access"
_configured = False


_SECOND: list[Any] = [None, ""]  # (the second, its text): formatted once per second


def timestamp(created: float) -> str:
    """A line's ``ts``: UTC to the millisecond, ``2026-12-06T17:30:00.123Z``."""
    second = int(created)
    if _SECOND[0] != second:
        _SECOND[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _SECOND[0] = second
    return f"{_SECOND[1]}.{int((created - second) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object (``fields`` and ``request_id`` extras merged in)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        return self.format_bytes(record).decode()

    def format_bytes(self, record: logging.LogRecord) -> bytes:
        """The record as a JSON line, UTF-8 encoded, without the newline."""
        line: dict[str, Any] = {
            "ts": timestamp(record.created),
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
        return orjson.dumps(line, default=str)


class BufferedLineHandler(logging.Handler):
    """JSON lines into a bounded buffer that a writer thread empties in batches.

    ``emit`` runs in the logging thread (the event loop): it formats the record
    and appends it; nothing else. Warnings and errors wake the writer at once so
    an operator sees them without the batching delay.
    """

    def __init__(
        self,
        stream: Any,
        *,
        interval_s: float = 0.05,
        flush_bytes: int = 64 * 1024,
        max_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        buffer = getattr(stream, "buffer", None)  # stdout's binary side: no re-encoding
        self._out = stream if buffer is None else buffer
        self._binary = buffer is not None or not isinstance(stream, io.TextIOBase)
        self.interval_s = interval_s
        self.flush_bytes = flush_bytes
        self.max_bytes = max_bytes
        self._lines: list[bytes] = []
        self._size = 0
        self._dropped = 0
        self._wake = threading.Event()
        self._closing = False
        self._writer = threading.Thread(target=self._run, name="aigw-log-writer", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        """Format ``record`` and buffer it (called under the handler's lock)."""
        try:
            formatter = self.formatter
            if isinstance(formatter, JsonFormatter):
                line = formatter.format_bytes(record)
            else:
                line = self.format(record).encode()
        except Exception:
            self.handleError(record)
            return
        self._buffer(line, record.levelno >= logging.WARNING)

    def _buffer(self, line: bytes, urgent: bool) -> None:
        # The writer is woken once: until it takes the buffer (it needs the interpreter
        # lock, which the loop holds for up to its switch interval), every line would
        # set the event again (~0.5 µs each: Event.set takes the condition's lock and
        # notifies). It clears the event before it takes the buffer, so a line added
        # after it took the buffer finds the event clear and wakes it again.
        if self._size + len(line) > self.max_bytes:
            self._dropped += 1
            if not self._wake.is_set():
                self._wake.set()
            return
        self._lines.append(line)
        self._size += len(line) + 1
        if (urgent or self._size >= self.flush_bytes) and not self._wake.is_set():
            self._wake.set()

    def access(self, request_id: str, fields: dict[str, Any]) -> None:
        """Buffer a request's access line: the line the access logger's record would give
        (:class:`JsonFormatter`), built without a ``LogRecord`` or the logging machinery
        (about 5 CPU µs per request where they cost 10-14: ``bench/partial-access-log.md``).
        Only for :func:`access_writer`'s answer, which checks that nothing else would see
        the record."""
        line: dict[str, Any] = {
            "ts": timestamp(time.time()),
            "level": "info",
            "logger": ACCESS_LOGGER,
            "message": "request",
            "request_id": request_id,
        }
        line.update(fields)
        data = orjson.dumps(line, default=str)
        with self.lock:  # type: ignore[union-attr]  # set by Handler.__init__
            self._buffer(data, False)

    def _take(self) -> bytes:
        with self.lock:  # type: ignore[union-attr]  # set by Handler.__init__
            lines, self._lines, self._size = self._lines, [], 0
            dropped, self._dropped = self._dropped, 0
        if dropped:
            note = logging.LogRecord(
                "gateway_app.observability",
                logging.ERROR,
                __file__,
                0,
                "dropped %d log lines: the log output was blocked and the buffer reached %d bytes",
                (dropped, self.max_bytes),
                None,
            )
            lines.append(JsonFormatter().format_bytes(note))
        if not lines:
            return b""
        lines.append(b"")
        return b"\n".join(lines)

    def _write(self, data: bytes) -> None:
        if not data:
            return
        try:
            self._out.write(data if self._binary else data.decode())
            self._out.flush()
        except Exception:  # a closed or broken stdout must not kill the writer
            pass

    def _run(self) -> None:
        while not self._closing:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            self._write(self._take())

    def flush(self) -> None:
        """Write what is buffered now (from any thread)."""
        self._write(self._take())

    def close(self) -> None:
        """Stop the writer and write the rest."""
        self._closing = True
        self._wake.set()
        if self._writer.is_alive() and threading.current_thread() is not self._writer:
            self._writer.join(5)
        self.flush()
        super().close()


def configure(stream: Any = None) -> None:
    """Send the ``gateway_app`` loggers' records as JSON lines to ``stream`` (stdout)."""
    global _configured
    if _configured:
        return
    _configured = True
    handler = BufferedLineHandler(stream or sys.stdout)
    atexit.register(handler.close)
    # Records need none of these (the JSON line has no thread, process or caller
    # fields); skipping them saves several µs per line.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger("gateway_app")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False


def access_writer(logger: logging.Logger) -> BufferedLineHandler | None:
    """The handler an access line may be given to directly (:meth:`BufferedLineHandler.access`),
    or None when the logging machinery must see the record: ``logger`` (the access logger)
    off at INFO, or with a handler or filter of its own (a test's, an operator's), or its
    parent not :func:`configure`'s alone. Cheap: checked per request, so a handler added
    at run time takes effect at once."""
    if logger.handlers or logger.filters or not logger.isEnabledFor(logging.INFO):
        return None
    parent = logger.parent
    if parent is None or not logger.propagate or parent.filters or parent.propagate:
        return None
    handlers = parent.handlers
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    if (
        type(handler) is not BufferedLineHandler
        or handler.filters
        or handler.level > logging.INFO
        or type(handler.formatter) is not JsonFormatter
    ):
        return None
    return handler


def access_fields(
    request: RequestContext,
    exchange: Exchange,
    now: float,
    include_prompts: bool,
    models: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The access-log fields of one finished request.

    A model name that is not configured, or a path that is not a route, is
    logged as "other": both are the client's free text and could carry anything.
    """
    model = request.model if request.model is None or request.model in models else "other"
    route = exchange.route
    fields: dict[str, Any] = {
        "endpoint": request.endpoint if request.endpoint in ENDPOINTS else "other",
        "model": model,
        "deployment": route.deployment if route is not None else None,
        "provider": route.provider if route is not None else None,
        "status": exchange.status,
        "stream": request.stream,
        "latency_ms": round((now - request.started) * 1000, 3),
        "upstream_ms": round((route.upstream_s if route is not None else 0.0) * 1000, 3),
        "cache": exchange.cache,
        "attempts": [f"{a.deployment}:{a.outcome}" for a in route.attempts] if route else [],
    }
    if exchange.overhead_s is not None:
        fields["overhead_ms"] = round(exchange.overhead_s * 1000, 3)
    if exchange.first_byte_s is not None:
        fields["ttfb_ms"] = round(exchange.first_byte_s * 1000, 3)
    caller = request.caller
    if caller is not None:
        fields["key_id"] = caller.key_id
        fields["team_id"] = caller.team_id
        fields["project_id"] = caller.project_id
    for name, value in (
        ("customer", request.customer),
        ("cost_usd", exchange.cost_usd),
        ("rejection", exchange.rejection),
    ):
        if value is not None:
            fields[name] = value
    semantic = exchange.semantic
    if semantic is not None:
        # The nearest cached request and what the guard decided: a wrong semantic
        # hit a user reports is found by request id, with why it was served.
        fields["semantic"] = {
            "similarity": round(semantic.similarity, 4),
            "decision": "accepted" if semantic.accepted else "refused",
            "reason": semantic.reason,
        }
        if semantic.judge is not None:
            # The judge's probability that the two prompts ask the same (it weighed them).
            fields["semantic"]["judge"] = round(semantic.judge, 4)
    if not exchange.served_from_cache:
        tokens = exchange.tokens  # (governance settled them: read once)
        if tokens is None:
            usage = exchange.usage
            # OpenAI's usage, or Anthropic's (Messages)
            tokens = Tokens.from_usage(usage) if usage else None
        if tokens is not None:
            fields["prompt_tokens"] = tokens.prompt
            fields["completion_tokens"] = tokens.completion
    if exchange.error is not None:
        fields["error"] = exchange.error.code or exchange.error.type
    if exchange.disconnected:
        fields["disconnected"] = True
    body = request.body
    if include_prompts and body is not None:
        fields["messages"] = body.get("messages", body.get("input"))
        result = route.result if route is not None else None
        if result is not None and request.api is CHAT_COMPLETIONS:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                fields["completion"] = [c.get("message") for c in result.data["choices"]]
    return fields
