"""The ASGI application: the request's path through the gateway, in one file.

    read body (413 past the limit, before reading it whole) -> parse + validate
    (400 naming the field) -> before hooks (may short-circuit) -> router
    (strategy, retries, failover, circuit breakers) -> provider adapter ->
    response or SSE stream -> after hooks (reverse order)

Raw ASGI rather than a framework: the gateway has five routes and every
microsecond on this path is overhead added to each LLM call. Nothing here blocks
the event loop; pydantic runs only at start-up.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import os
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from gateway_app.config import GatewayConfig
from gateway_app.config import load as load_config
from gateway_app.errors import GatewayError, invalid
from gateway_app.health import Health
from gateway_app.hooks import Hook, HookChain, RequestContext, Response
from gateway_app.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway_app.observability.metrics import Metrics
from gateway_app.providers.base import ChatResult
from gateway_app.router import OpenStream, Router
from gateway_app.state.circuit import CircuitBreakerStore, InProcessCircuitBreakerStore
from gateway_app.validation import validate_chat, validate_embeddings

log = logging.getLogger("gateway_app")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON = b"application/json"
# Request ids: a random per-process prefix and a counter (no syscall per request).
_ID_PREFIX = f"req_{os.getpid():x}{secrets.token_hex(6)}"
_ID_COUNTER = itertools.count(1)


def _new_id_prefix() -> None:
    # Request ids are a per-process prefix plus a counter (no syscall per
    # request). A server that forks workers after importing this module must
    # give each child its own prefix, or ids would repeat across workers.
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX = f"req_{os.getpid():x}{secrets.token_hex(6)}"
    _ID_COUNTER = itertools.count(1)


os.register_at_fork(after_in_child=_new_id_prefix)
# Probes and scrapes: neither counted nor logged (they would drown the requests).
_UNOBSERVED = frozenset({"/health/live", "/health/ready", "/metrics"})
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class GatewayApp:
    """The gateway as an ASGI 3 application (``uvicorn gateway_app.app:create_app --factory``)."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        hooks: Sequence[Hook] | None = None,
        breakers: CircuitBreakerStore | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        admin: Any = None,
        governance: Hook | None = None,
        console: Any = None,
    ) -> None:
        self.config = config
        self.max_body = config.server.max_body_bytes
        # The governance admin API (``/admin/...``) and hook, when governance is on.
        self.admin = admin
        self._governance = governance
        # People's sign-in (/auth/...) and the web console (/console/...), when configured.
        self.console = console
        self.breakers = breakers or _circuit_store(config)
        self.router = Router(config, self.breakers, rng=rng, sleep=sleep)
        self.metrics = _metrics(config)
        # None: the configured pipeline (observability first, so its after hook runs
        # last and sees every outcome; then the cache). Tests pass their own.
        self._observer: Hook | None = None
        self.hooks = HookChain(self._default_hooks() if hooks is None else hooks)
        self.health = Health(config)
        self._model_objects = {
            name: {"id": name, "object": "model", "created": 0, "owned_by": model.owned_by}
            for name, model in config.models.items()
        }
        self._models_body = orjson.dumps(
            {"object": "list", "data": list(self._model_objects.values())}
        )
        # With governance on, every /v1 route authenticates the virtual key before it
        # reads or validates anything (no model list, no validation error for strangers).
        self._authenticator = getattr(admin, "authenticate", None)
        self._routes: dict[tuple[str, str], Callable[..., Awaitable[None]]] = {
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/embeddings"): self._embeddings,
            ("GET", "/v1/models"): self._models,
            ("GET", "/health/live"): self._live,
            ("GET", "/health/ready"): self._ready,
            ("GET", "/metrics"): self._metrics,
        }
        self._paths = {path for _, path in self._routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def startup(self) -> None:
        """Open upstream connection pools; move start-up objects out of the GC's way."""
        await self.router.start()
        if self.console is not None:
            await self.console.start()
        for hook in self.hooks.hooks:
            start = getattr(hook, "start", None)
            if start is not None:
                await start()
        # Config, pydantic models and imported modules live forever: freezing them keeps
        # the cyclic GC from rescanning them during requests (fewer latency spikes).
        gc.collect()
        gc.freeze()

    async def shutdown(self) -> None:
        """Report not-ready, wait for shadow requests, close pools."""
        self.health.shutting_down = True
        await self.router.stop()
        for hook in reversed(self.hooks.hooks):
            stop = getattr(hook, "stop", None)
            if stop is not None:
                await stop()
        close = getattr(self.breakers, "close", None)
        if close is not None:
            await close()
        if self.console is not None:
            await self.console.stop()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ----------------------------------------------------------------- plumbing

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers[name.decode("latin-1")] = value.decode("latin-1")
        request_id = headers.get("x-request-id")
        if not request_id or len(request_id) > 200 or not request_id.isprintable():
            request_id = f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"
        ctx = RequestContext(request_id=request_id, endpoint=scope["path"], headers=headers)
        handler = self._routes.get((scope["method"], scope["path"]))
        try:
            if handler is None and self.admin is not None and scope["path"].startswith("/admin/"):
                await self._admin(ctx, scope, receive, send)
                return
            if handler is None and self.console is not None and self.console.serves(scope["path"]):
                await self.console(scope, receive, send)
                return
            if (
                handler is None
                and scope["method"] == "GET"
                and scope["path"].startswith("/v1/models/")
            ):
                handler = self._model
            if handler is None:
                if scope["path"] in self._paths:
                    raise GatewayError(
                        405, f"Method {scope['method']} is not allowed on {scope['path']}."
                    )
                raise GatewayError(
                    404, f"Unknown path {scope['path']}; see GET /v1/models.", code="unknown_url"
                )
            await handler(ctx, scope, receive, send)
        except GatewayError as error:
            await self._send_error(ctx, send, error)
        except asyncio.CancelledError:
            if not ctx.disconnected:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            log.info(
                "client disconnected; upstream request cancelled", extra={"request_id": request_id}
            )
        except Exception:  # never let one request take the worker down
            log.exception("unhandled error", extra={"request_id": request_id})
            await self._send_error(ctx, send, GatewayError(500, "internal gateway error"))
        observer = self._observer
        if (
            observer is not None
            and "hooks_ran" not in ctx.extra
            and ctx.endpoint not in _UNOBSERVED
        ):
            # Refused before the hook chain (bad JSON, unknown model or path, 413):
            # still one metric sample and one log line, without the other hooks.
            await observer.after(ctx)

    async def _authenticated(self, ctx: RequestContext, send: Send) -> bool:
        """Governance on: check the key first; False when refused (the 401 is sent)."""
        authenticate = self._authenticator
        if authenticate is None:
            return True
        refusal = await authenticate(ctx)
        if refusal is None:
            return True
        await self._send_short(ctx, send, refusal)
        await self.admin.after(ctx)  # the refusal's audit event
        return False

    async def _read_json(self, ctx: RequestContext, receive: Receive) -> Any:
        length = ctx.headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise invalid(None, "Invalid Content-Length header.") from None
            if declared > self.max_body:
                raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                ctx.disconnected = True
                raise asyncio.CancelledError
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self.max_body:
                    raise self._too_large()
                chunks.append(chunk)
            if not message.get("more_body"):
                break
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if not raw:
            raise invalid(None, "The request body is empty; send a JSON object.", "invalid_json")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise invalid(
                None,
                f"We could not parse the JSON body of your request ({exc}). "
                "The body must be valid JSON.",
                "invalid_json",
            ) from None

    def _too_large(self) -> GatewayError:
        return GatewayError(
            413,
            f"The request body exceeds the gateway's limit of {self.max_body} bytes.",
            code="request_too_large",
        )

    def _base_headers(self, ctx: RequestContext) -> list[tuple[bytes, bytes]]:
        # Called once per response, just before its first byte: the overhead is
        # everything so far that was not waiting for the upstream.
        overhead = time.perf_counter() - ctx.started - ctx.upstream_s
        ctx.overhead_s = overhead = overhead if overhead > 0 else 0.0
        headers = [
            (b"x-request-id", ctx.request_id.encode("latin-1")),
            (b"x-gateway-overhead-ms", b"%.3f" % (overhead * 1000)),
        ]
        if ctx.deployment:
            headers.append((b"x-aigw-deployment", ctx.deployment.encode("latin-1")))
        if ctx.response_headers:
            headers.extend(ctx.response_headers)
        return headers

    async def _send_json(
        self,
        ctx: RequestContext,
        send: Send,
        status: int,
        body: bytes,
        extra: Sequence[tuple[bytes, bytes]] = (),
        content_type: bytes = _JSON,
    ) -> None:
        ctx.status = status
        headers = self._base_headers(ctx)
        headers.append((b"content-type", content_type))
        headers.append((b"content-length", str(len(body)).encode()))
        headers.extend(extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        ctx.responded = True
        await send({"type": "http.response.body", "body": body})

    async def _send_error(self, ctx: RequestContext, send: Send, error: GatewayError) -> None:
        ctx.error = error
        extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
        try:
            await self._send_json(ctx, send, error.status, error.to_bytes(), extra)
        except Exception:  # the response had already started, or the client left
            log.debug("could not send error response", exc_info=True)

    def _watch_disconnect(
        self, ctx: RequestContext, scope: Scope, receive: Receive
    ) -> asyncio.Task[None] | None:
        """Cancel this request's task (and so its upstream call) if the client leaves.

        The gateway's own server calls back on disconnect (the ``aigw.disconnect``
        extension); other servers only report it through ``receive()``, so a task
        waits in it (a task per request: ~9% of the CPU of a plain request).
        """
        handler_task = asyncio.current_task()
        extensions = scope.get("extensions")
        register = extensions.get("aigw.disconnect") if extensions else None
        if register is not None:

            def gone() -> None:
                if not ctx.responded:
                    ctx.disconnected = True
                    if handler_task is not None:
                        handler_task.cancel()

            register(gone)
            return None

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    # Servers also report "disconnect" once the response is complete;
                    # only a client leaving mid-request cancels (after hooks must run).
                    if not ctx.responded:
                        ctx.disconnected = True
                        if handler_task is not None:
                            handler_task.cancel()
                    return

        return asyncio.get_running_loop().create_task(watch())

    # ----------------------------------------------------------------- routes

    async def _chat(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        if not await self._authenticated(ctx, send):
            return
        body = await self._read_json(ctx, receive)
        ctx.model, ctx.stream, ctx.include_usage = validate_chat(body)
        ctx.body = body
        route = self.router.route(ctx.model)
        await self._serve(ctx, scope, receive, send, lambda: self.router.chat(ctx, route))

    async def _embeddings(
        self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if not await self._authenticated(ctx, send):
            return
        body = await self._read_json(ctx, receive)
        ctx.model = validate_embeddings(body)
        ctx.body = body
        route = self.router.route(ctx.model)
        await self._serve(ctx, scope, receive, send, lambda: self.router.embeddings(ctx, route))

    async def _serve(
        self,
        ctx: RequestContext,
        scope: Scope,
        receive: Receive,
        send: Send,
        call: Callable[[], Awaitable[ChatResult | OpenStream]],
    ) -> None:
        hooks = self.hooks.hooks
        ctx.extra["hooks_ran"] = True
        watcher = self._watch_disconnect(ctx, scope, receive)
        settled = False  # after hooks run exactly once, whatever happens
        try:
            if hooks:
                short = await self.hooks.before(ctx)
                if short is not None:
                    await self._send_short(ctx, send, short)
                    settled = True
                    await self.hooks.after(ctx)
                    return
            try:
                result = await call()
            except GatewayError as error:
                await self._send_error(ctx, send, error)
                if hooks:
                    settled = True
                    await self.hooks.after(ctx)
                return
            if isinstance(result, OpenStream):
                await self._stream(ctx, send, result)
            else:
                ctx.result = result
                await self._send_json(ctx, send, 200, result.body)
            if hooks:
                settled = True
                await self.hooks.after(ctx)
        except asyncio.CancelledError:
            if hooks and not settled:
                # Settle (audit, budgets) for abandoned requests too: 499 as nginx logs a
                # client that left; 503 for a request cut by shutdown past its grace.
                ctx.status = ctx.status or (499 if ctx.disconnected else 503)
                await self.hooks.after(ctx)
            raise
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _send_short(self, ctx: RequestContext, send: Send, response: Response) -> None:
        await self._send_json(
            ctx, send, response.status, response.body, response.headers, response.content_type
        )

    async def _stream(self, ctx: RequestContext, send: Send, stream: OpenStream) -> None:
        ctx.stream_state = stream.translator.state
        ctx.status = 200
        headers = self._base_headers(ctx)
        headers.extend(_SSE_HEADERS)
        frames = stream.frames()
        started = False
        capture = ctx.stream_capture
        try:
            async for batch in frames:
                if not started:
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    ctx.first_byte_s = time.perf_counter() - ctx.started
                    started = True
                if capture is not None:
                    capture.extend(batch)
                await send(
                    {"type": "http.response.body", "body": b"".join(batch), "more_body": True}
                )
        except GatewayError as error:
            # Bytes were sent: no retry, no failover. Tell the client in-stream, as OpenAI does.
            ctx.error = error
            log.warning("upstream stream failed after first byte: %s", error.message)
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + error.to_bytes() + b"\n\n",
                    "more_body": True,
                }
            )
        finally:
            await frames.aclose()
        ctx.responded = True
        await send({"type": "http.response.body", "body": b""})

    async def _admin(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        body: Any = None
        if scope["method"] in ("POST", "PUT"):
            empty = ctx.headers.get("content-length", "0") == "0" and (
                "transfer-encoding" not in ctx.headers
            )
            body = {} if empty else await self._read_json(ctx, receive)
        status, payload = await self.admin.admin(
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode(),
            ctx.headers,
            body,
        )
        await self._send_json(ctx, send, status, orjson.dumps(payload))

    async def _models(
        self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if not await self._authenticated(ctx, send):
            return
        allowed = self._allowed_models(ctx)
        if allowed is None:
            await self._send_json(ctx, send, 200, self._models_body)
            return
        data = [m for name, m in self._model_objects.items() if name in allowed]
        await self._send_json(ctx, send, 200, orjson.dumps({"object": "list", "data": data}))

    async def _model(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /v1/models/{id}`` (the SDKs' ``models.retrieve``)."""
        ctx.endpoint = "/v1/models"
        if not await self._authenticated(ctx, send):
            return
        name = scope["path"][len("/v1/models/") :]
        found = self._model_objects.get(name)
        allowed = self._allowed_models(ctx)
        if found is None or (allowed is not None and name not in allowed):
            raise GatewayError(
                404,
                f"The model `{name}` does not exist; GET /v1/models lists the models served here.",
                param="model",
                code="model_not_found",
            )
        await self._send_json(ctx, send, 200, orjson.dumps(found))

    def _allowed_models(self, ctx: RequestContext) -> tuple[str, ...] | None:
        allowed = getattr(self.admin, "allowed_models", None)
        return allowed(ctx) if allowed is not None else None

    async def _live(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        await self._send_json(ctx, send, 200, b'{"status":"live"}')

    async def _ready(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        ready, report = await self.health.ready()
        await self._send_json(ctx, send, 200 if ready else 503, orjson.dumps(report))

    async def _metrics(
        self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send
    ) -> None:
        metrics = self.metrics
        if metrics is None:
            raise GatewayError(404, "metrics are disabled (observability.metrics.enabled)")
        for deployment in {d.id for r in self.router.routes.values() for d in r.deployments}:
            metrics.set_circuit(deployment, str(self.breakers.state(deployment)))
        depth = getattr(self.admin, "audit_depth", None)
        if depth is not None:
            try:
                metrics.audit_depth.set(await depth())
            except Exception:  # Redis down: readiness says so; keep the last value
                log.warning("could not read the audit buffer depth", exc_info=True)
        # Reading every worker's files takes milliseconds: off the event loop.
        body = await asyncio.get_running_loop().run_in_executor(None, metrics.render)
        await self._send_json(ctx, send, 200, body, content_type=METRICS_CONTENT_TYPE)

    def _default_hooks(self) -> list[Hook]:
        from gateway_app.cache.hook import build as build_cache
        from gateway_app.observability.hook import ObservabilityHook
        from gateway_app.observability.logs import configure as configure_logs
        from gateway_app.observability.tracing import Tracer, configured

        config = self.config
        if config.observability.logs.enabled:
            configure_logs()
        tracer = Tracer(config) if configured() else None
        self._observer = ObservabilityHook(config, self.metrics, self.breakers, tracer)
        # Order: observability first (its after runs last, seeing every outcome);
        # governance next (auth, limits, budget reservation; the cache keys on the
        # ctx.team_id it sets), timed as "aigw.limits" when tracing is on; the cache
        # last, so a hit short-circuits only the upstream call.
        hooks: list[Hook] = [self._observer]
        if self._governance is not None:
            from gateway_app.observability.tracing import TimedHook

            governance = self._governance
            hooks.append(TimedHook(governance, "aigw.limits") if tracer else governance)
        cache = build_cache(
            config,
            os.environ.get("AIGW_REDIS_URL") or None,
            os.environ.get("AIGW_REDIS_CA_FILE") or None,
            self.router,
        )
        if cache is not None:
            hooks.append(cache)
        return hooks


def _metrics(config: GatewayConfig) -> Metrics | None:
    if not config.observability.metrics.enabled:
        return None
    return Metrics(config)


def _circuit_store(config: GatewayConfig) -> CircuitBreakerStore:
    """Redis-backed (shared by replicas) when ``AIGW_REDIS_URL`` is set, else in-process."""
    url = os.environ.get("AIGW_REDIS_URL")
    if not url:
        return InProcessCircuitBreakerStore(config.router.circuit_breaker)
    from gateway_app.state.circuit_redis import RedisCircuitBreakerStore

    return RedisCircuitBreakerStore.from_url(
        url, config.router.circuit_breaker, os.environ.get("AIGW_REDIS_CA_FILE") or None
    )


def create_app(config: GatewayConfig | None = None, **kwargs: Any) -> GatewayApp:
    """The app for ``config`` (default: ``AIGW_CONFIG`` or the bundled example).

    Governance (keys, budgets, limits, audit) runs first among the hooks when
    enabled (``governance.enabled``, or ``AIGW_ADMIN_KEY`` set).
    """
    config = config or load_config()
    from gateway_app.governance.service import Governance, enabled

    if enabled(config) and "admin" not in kwargs:
        governance = Governance.from_env(config)
        kwargs["admin"] = governance
        if kwargs.get("hooks") is not None:
            # An explicit hook list (tests): governance still runs first.
            kwargs["hooks"] = (governance, *kwargs["hooks"])
        else:
            kwargs["governance"] = governance
    if config.identity.enabled and "console" not in kwargs:
        from gateway_app.identity import build

        kwargs["console"] = build(config, kwargs.get("admin"))
    return GatewayApp(config, **kwargs)
