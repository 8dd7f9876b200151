"""The ASGI application: the request's path through the gateway, in one file.

    arrival ............ hooks of Stage.ARRIVAL (observability: the outermost frame)
    /v1 API ............ hooks of Stage.API (authentication), before the body is read
    read the body ...... 413 past the limit, before reading it whole
    parse + validate ... the wire API's parser (400 naming the field); model -> route
    model call ......... hooks of Stage.CALL (limits and budget, cache; may short-circuit)
    router ............. strategy, retries, failover, circuit breakers -> adapter
    answer ............. JSON, or the SSE stream frame by frame
    leave .............. ``after`` of every hook entered, in reverse order

Every wire API (:mod:`gateway_app.apis`) is served by the one ``_call`` handler;
the router picks the upstream calls by the API's operation.

Raw ASGI rather than a framework: the gateway has a handful of routes and every
microsecond on this path is overhead added to each LLM call. Nothing here
blocks the event loop; pydantic runs only at start-up.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import itertools
import logging
import os
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from gateway_app.apis import WIRE_APIS, WireApi
from gateway_app.config import GatewayConfig
from gateway_app.config import load as load_config
from gateway_app.context import Exchange, RequestContext, RouteOutcome
from gateway_app.environment import Environment
from gateway_app.errors import GatewayError, invalid
from gateway_app.health import Health
from gateway_app.hooks import Hook, HookChain, Passage, Response, Stage
from gateway_app.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway_app.observability.metrics import Metrics
from gateway_app.responses.store import ResponseStoreHook
from gateway_app.router import Router
from gateway_app.state.circuit import CircuitBreakerStore, InProcessCircuitBreakerStore
from gateway_app.state.governance import RESERVATION_PATHS
from gateway_app.transport import default_client

if TYPE_CHECKING:
    from gateway_app.cache.store import MemoryGuard
    from gateway_app.context import ResponseStream
    from gateway_app.governance.admin import AdminApi
    from gateway_app.governance.plane import GlobalPlane
    from gateway_app.identity.web import ConsoleApp

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


class _Http:
    """One HTTP exchange as the handlers see it: the ASGI triple, the request, what
    happened to it, and its passage through the hook chain."""

    __slots__ = ("exchange", "passage", "receive", "request", "scope", "send")

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, request: RequestContext, passage: Passage
    ) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.request = request
        self.exchange = Exchange()
        self.passage = passage


Handler = Callable[[_Http], Awaitable[None]]


class GatewayApp:
    """The gateway as an ASGI 3 application (``uvicorn gateway_app.app:create_app --factory``)."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        hooks: Sequence[Hook[Any]] | None = None,
        governance: Sequence[Hook[Any]] = (),
        breakers: CircuitBreakerStore | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        admin: AdminApi | None = None,
        console: ConsoleApp | None = None,
        internal: GlobalPlane | None = None,
        env: Environment | None = None,
    ) -> None:
        self.config = config
        # Where state lives and which secrets are set: read once by create_app (tests pass
        # their own; the default is an empty environment, everything in-process).
        self.env = env = env or Environment()
        self.max_body = config.server.max_body_bytes
        self._gc_threshold: tuple[int, int, int] | None = None  # the process's, while started
        # The admin API (``/admin/...``; the console and ``aigw admin`` call it), when
        # governance is on.
        self.admin = admin
        # People's sign-in (/auth/...) and the web console (/console/...), when configured.
        self.console = console
        # The global governance plane's internal endpoint (/internal/v1/...), peers only,
        # on its own listener: a request's listener is the port it arrived on.
        self.internal = internal
        plane = config.governance.global_
        self.internal_port = plane.port if internal is not None and plane is not None else None
        self.breakers = breakers or _circuit_store(config, env)
        self.router = Router(
            config, self.breakers, rng=rng, sleep=sleep, client=default_client(env.upstream_client)
        )
        self.metrics = _metrics(config)
        # None: the configured pipeline (observability, then governance's hooks, then the
        # cache). Tests pass their own list.
        self.hooks = HookChain(self._default_hooks(governance) if hooks is None else hooks)
        # Stored responses (GET/DELETE /v1/responses/{id}), kept by their hook.
        self.responses = next(
            (h.store for h in self.hooks.hooks if isinstance(h, ResponseStoreHook)), None
        )
        # The guards of the response stores in Redis (cache, stored responses): they read
        # its memory use for the aigw_redis_* metrics.
        self.redis_guards = _redis_guards(self.hooks.hooks)
        if self.metrics is not None:
            for name, guard in self.redis_guards:
                guard.on_skip = self.metrics.redis_skipped.labels(name).inc
            # The Redis governance state's settle batcher counts the audit events it drops.
            state = getattr(getattr(admin, "governance", None), "state", None)
            batcher = getattr(state, "batcher", None)
            if batcher is not None:
                batcher.on_drop = self.metrics.audit_dropped.inc
            # And its reservation script calls (Redis round trips), by path.
            if state is not None and hasattr(state, "on_reservation"):
                paths = {p: self.metrics.reservations.labels(p).inc for p in RESERVATION_PATHS}
                state.on_reservation = lambda path: paths[path]()
        # With governance on, readiness waits until its keys and limits were loaded once.
        self.health = Health(
            config, env, keys=admin.governance.registry if admin is not None else None
        )
        self._model_objects = {
            name: {"id": name, "object": "model", "created": 0, "owned_by": model.owned_by}
            for name, model in config.models.items()
        }
        self._models_body = orjson.dumps(
            {"object": "list", "data": list(self._model_objects.values())}
        )
        self._routes: dict[tuple[str, str], Handler] = {
            ("GET", "/v1/models"): self._models,
            ("GET", "/health/live"): self._live,
            ("GET", "/health/ready"): self._ready,
            ("GET", "/metrics"): self._metrics,
        }
        for api in WIRE_APIS:
            self._routes["POST", api.path] = functools.partial(self._call, api)
        self._paths = {path for _, path in self._routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def startup(self) -> None:
        """Open upstream connection pools and the hooks'; move start-up objects out of the
        GC's way."""
        await self.router.start()
        if self.console is not None:
            await self.console.start()
        await self.hooks.start()
        # Config, pydantic models and imported modules live forever: freezing them keeps
        # the cyclic GC from rescanning them during requests (fewer latency spikes).
        gc.collect()
        gc.freeze()
        # Requests free what they allocate by reference counts; the GC's young generation
        # only needs to outgrow what the requests in flight hold (server.gc_threshold).
        # The process's own is back at shutdown (an app embedded in another program).
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(self.config.server.gc_threshold, *self._gc_threshold[1:])

    async def shutdown(self) -> None:
        """Report not-ready, wait for shadow requests, stop the hooks, close pools; the
        GC's threshold back to what it was before :meth:`startup`."""
        self.health.shutting_down = True
        if self._gc_threshold is not None:
            if gc.get_threshold()[0] == self.config.server.gc_threshold:  # (still this app's)
                gc.set_threshold(*self._gc_threshold)
            self._gc_threshold = None
        await self.router.stop()
        await self.hooks.stop()
        await self.breakers.close()
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
        path = scope["path"]
        request = RequestContext(request_id=request_id, endpoint=path, headers=headers)
        http = _Http(scope, receive, send, request, self.hooks.passage())
        exchange = http.exchange
        try:
            if path in _UNOBSERVED or await self._enter(http, Stage.ARRIVAL):
                await self._dispatch(http)
        except GatewayError as error:
            await self._send_error(http, error)
        except asyncio.CancelledError:
            # Settle (audit, budgets) abandoned requests too: 499 as nginx logs a client
            # that left; 503 for a request cut by shutdown past its grace.
            exchange.status = exchange.status or (499 if exchange.disconnected else 503)
            if not exchange.disconnected:
                await self._leave(http)
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            log.info(
                "client disconnected; upstream request cancelled", extra={"request_id": request_id}
            )
        except Exception:  # never let one request take the worker down
            log.exception("unhandled error", extra={"request_id": request_id})
            await self._send_error(http, GatewayError(500, "internal gateway error"))
        await self._leave(http)

    async def _dispatch(self, http: _Http) -> None:
        scope = http.scope
        method, path = scope["method"], scope["path"]
        if self.internal is not None and _port(scope) == self.internal_port:
            # The internal listener answers the peers' calls and nothing else.
            if not self.internal.serves(path):
                raise GatewayError(
                    404, f"Unknown internal path {method} {path}.", code="unknown_url"
                )
            await self.internal(scope, http.receive, http.send)
            return
        handler = self._routes.get((method, path))
        if handler is None:
            if self.admin is not None and self.admin.serves(path):
                await self._admin(http)
                return
            if self.console is not None and self.console.serves(path):
                await self.console(scope, http.receive, http.send)
                return
            if method == "GET" and path.startswith("/v1/models/"):
                handler = self._model
            elif self.responses is not None and self.responses.serves(path):
                handler = self._stored_response
            elif path in self._paths:
                raise GatewayError(405, f"Method {method} is not allowed on {path}.")
            else:
                raise GatewayError(
                    404, f"Unknown path {path}; see GET /v1/models.", code="unknown_url"
                )
        await handler(http)

    async def _enter(self, http: _Http, stage: Stage) -> bool:
        """Enter the hooks of ``stage``; False when one answered instead (it is sent)."""
        response = await http.passage.enter(stage, http.request, http.exchange)
        if response is None:
            return True
        await self._send_short(http, response)
        return False

    async def _leave(self, http: _Http) -> None:
        """The entered hooks' ``after``, once the response is complete (or abandoned)."""
        try:
            await http.passage.leave(http.request, http.exchange)
        except Exception:
            log.exception("an after hook failed", extra={"request_id": http.request.request_id})

    async def _read_json(self, http: _Http) -> Any:
        length = http.request.headers.get("content-length")
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
            message = await http.receive()
            if message["type"] == "http.disconnect":
                http.exchange.disconnected = True
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

    def _base_headers(self, http: _Http) -> list[tuple[bytes, bytes]]:
        # Called once per response, just before its first byte: the overhead is
        # everything so far that was not waiting for the upstream.
        exchange = http.exchange
        route = exchange.route
        upstream_s = route.upstream_s if route is not None else 0.0
        overhead = time.perf_counter() - http.request.started - upstream_s
        exchange.overhead_s = overhead = overhead if overhead > 0 else 0.0
        headers = [
            (b"x-request-id", http.request.request_id.encode("latin-1")),
            (b"x-gateway-overhead-ms", b"%.3f" % (overhead * 1000)),
        ]
        deployment = exchange.deployment
        if deployment:
            headers.append((b"x-aigw-deployment", deployment.encode("latin-1")))
        if exchange.response_headers:
            headers.extend(exchange.response_headers)
        return headers

    async def _send_json(
        self,
        http: _Http,
        status: int,
        body: bytes,
        extra: Sequence[tuple[bytes, bytes]] = (),
        content_type: bytes = _JSON,
    ) -> None:
        http.exchange.status = status
        headers = self._base_headers(http)
        headers.append((b"content-type", content_type))
        headers.append((b"content-length", str(len(body)).encode()))
        headers.extend(extra)
        send = http.send
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await self._before_last_byte(http)
        http.exchange.responded = True
        await send({"type": "http.response.body", "body": body})

    async def _send_error(self, http: _Http, error: GatewayError) -> None:
        http.exchange.error = error
        extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
        api = http.request.api
        status, body = (
            api.errors.response(error) if api is not None else (error.status, error.to_bytes())
        )
        try:
            await self._send_json(http, status, body, extra)
        except Exception:  # the response had already started, or the client left
            log.debug("could not send error response", exc_info=True)

    async def _send_short(self, http: _Http, response: Response) -> None:
        status, body = response.status, response.body
        api = http.request.api
        if response.error is not None and api is not None:
            status, body = api.errors.response(response.error)  # the API's own error shape
        await self._send_json(http, status, body, response.headers, response.content_type)

    def _watch_disconnect(self, http: _Http) -> asyncio.Task[None] | None:
        """Cancel this request's task (and so its upstream call) if the client leaves.

        The gateway's own server calls back on disconnect (the ``aigw.disconnect``
        extension); other servers only report it through ``receive()``, so a task
        waits in it (a task per request: ~9% of the CPU of a plain request).
        """
        handler_task = asyncio.current_task()
        exchange = http.exchange
        extensions = http.scope.get("extensions")
        register = extensions.get("aigw.disconnect") if extensions else None
        if register is not None:

            def gone() -> None:
                if not exchange.responded:
                    exchange.disconnected = True
                    if handler_task is not None:
                        handler_task.cancel()

            register(gone)
            return None

        receive = http.receive

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    # Servers also report "disconnect" once the response is complete;
                    # only a client leaving mid-request cancels (after hooks must run).
                    if not exchange.responded:
                        exchange.disconnected = True
                        if handler_task is not None:
                            handler_task.cancel()
                    return

        return asyncio.get_running_loop().create_task(watch())

    # ----------------------------------------------------------------- routes

    async def _call(self, api: WireApi, http: _Http) -> None:
        """A model call of ``api``, whichever wire API it is."""
        request = http.request
        request.api = api  # set first: refusals are written in the API's error shape
        if not await self._enter(http, Stage.API):
            return
        body = await self._read_json(http)
        request.model, request.stream, request.include_usage = api.parse(body)
        request.body = body
        route = self.router.route(request.model)
        watcher = self._watch_disconnect(http)
        try:
            if not await self._enter(http, Stage.CALL):
                return
            # Handed to the router so that what was tried survives a cancelled call.
            outcome = http.exchange.route = RouteOutcome()
            try:
                await self.router.call(api, request, route, outcome)
            except GatewayError as error:
                await self._send_error(http, error)
                return
            if outcome.stream is not None:
                await self._stream(http, outcome.stream)
            elif outcome.result is not None:
                await self._send_json(http, 200, outcome.result.body)
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _stream(self, http: _Http, stream: ResponseStream) -> None:
        exchange = http.exchange
        exchange.status = 200
        headers = self._base_headers(http)
        headers.extend(_SSE_HEADERS)
        frames = stream.frames()
        started = False
        capture = exchange.stream_frames
        send = http.send
        try:
            async for batch in frames:
                if not started:
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    exchange.first_byte_s = time.perf_counter() - http.request.started
                    started = True
                if capture is not None:
                    capture.extend(batch)
                await send(
                    {"type": "http.response.body", "body": b"".join(batch), "more_body": True}
                )
        except GatewayError as error:
            # Bytes were sent: no retry, no failover. Tell the client in-stream, in the
            # API's shape (OpenAI's error chunk, Anthropic's `error` event).
            exchange.error = error
            log.warning("upstream stream failed after first byte: %s", error.message)
            api = http.request.api
            frame = api.errors.frame(error) if api is not None else b""
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        finally:
            await frames.aclose()
        await self._before_last_byte(http)
        exchange.responded = True
        await send({"type": "http.response.body", "body": b""})

    async def _before_last_byte(self, http: _Http) -> None:
        """The hooks' steps that must be done before the client has the whole answer."""
        for step in http.exchange.before_last_byte:
            try:
                await step()
            except Exception:  # the answer is the client's; a hook's failure is logged
                log.exception("a hook's step failed", extra={"request_id": http.request.request_id})

    async def _admin(self, http: _Http) -> None:
        assert self.admin is not None  # (dispatched here only when mounted)
        scope = http.scope
        if self.console is not None:
            # The console's calls (session cookie) come from its networks only.
            self.console.require_network(scope)
        body: Any = None
        if scope["method"] in ("POST", "PUT"):
            headers = http.request.headers
            empty = headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers
            body = {} if empty else await self._read_json(http)
        answer = await self.admin.answer(
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode(),
            http.request.headers,
            body,
        )
        await self._send_json(http, answer.status, answer.body, answer.headers)

    async def _models(self, http: _Http) -> None:
        if not await self._enter(http, Stage.API):
            return
        allowed = self._allowed_models(http.request)
        if allowed is None:
            await self._send_json(http, 200, self._models_body)
            return
        data = [m for name, m in self._model_objects.items() if name in allowed]
        await self._send_json(http, 200, orjson.dumps({"object": "list", "data": data}))

    async def _model(self, http: _Http) -> None:
        """``GET /v1/models/{id}`` (the SDKs' ``models.retrieve``)."""
        http.request.endpoint = "/v1/models"
        if not await self._enter(http, Stage.API):
            return
        name = http.scope["path"][len("/v1/models/") :]
        found = self._model_objects.get(name)
        allowed = self._allowed_models(http.request)
        if found is None or (allowed is not None and name not in allowed):
            raise GatewayError(
                404,
                f"The model `{name}` does not exist; GET /v1/models lists the models served here.",
                param="model",
                code="model_not_found",
            )
        await self._send_json(http, 200, orjson.dumps(found))

    async def _stored_response(self, http: _Http) -> None:
        """``GET``/``DELETE /v1/responses/{id}``, ``GET .../{id}/input_items``: the caller's
        team's stored responses."""
        assert self.responses is not None  # (dispatched here only when kept)
        http.request.endpoint = "/v1/responses/{id}"
        if not await self._enter(http, Stage.API):
            return
        scope = http.scope
        payload = await self.responses.serve(
            scope["method"], scope["path"], scope.get("query_string", b"").decode(), http.request
        )
        await self._send_json(http, 200, orjson.dumps(payload))

    @staticmethod
    def _allowed_models(request: RequestContext) -> tuple[str, ...] | None:
        """The models the caller's key may use (None: every one)."""
        return request.caller.models if request.caller is not None else None

    async def _live(self, http: _Http) -> None:
        await self._send_json(http, 200, b'{"status":"live"}')

    async def _ready(self, http: _Http) -> None:
        ready, report = await self.health.ready()
        await self._send_json(http, 200 if ready else 503, orjson.dumps(report))

    async def _metrics(self, http: _Http) -> None:
        metrics = self.metrics
        if metrics is None:
            raise GatewayError(404, "metrics are disabled (observability.metrics.enabled)")
        for deployment in {d.id for r in self.router.routes.values() for d in r.deployments}:
            metrics.set_circuit(deployment, str(self.breakers.state(deployment)))
        if self.admin is not None:
            try:
                metrics.audit_depth.set(await self.admin.audit_depth())
            except Exception:  # Redis down: readiness says so; keep the last value
                log.warning("could not read the audit buffer depth", exc_info=True)
            try:
                lag = await self.admin.audit_rollup_lag()
                if lag is not None:
                    metrics.rollup_lag.set(lag)
            except Exception:  # the database down: keep the last value
                log.warning("could not read the audit roll-up's progress", exc_info=True)
        if self.redis_guards:
            guard = self.redis_guards[0][1]  # (every store uses the same Redis)
            try:
                await guard.refresh()
                if guard.ratio is not None:
                    metrics.redis_memory.set(guard.ratio)
                if guard.evicted is not None:
                    metrics.redis_evicted.set(guard.evicted)
            except Exception:  # Redis down: readiness says so; keep the last values
                log.warning("could not read Redis' memory use", exc_info=True)
        if self.internal is not None:
            try:
                metrics.set_plane(await self.internal.status())
            except Exception:  # the database down: keep the last values
                log.warning("could not read the governance plane's status", exc_info=True)
        # Reading every worker's files takes milliseconds: off the event loop.
        body = await asyncio.get_running_loop().run_in_executor(None, metrics.render)
        await self._send_json(http, 200, body, content_type=METRICS_CONTENT_TYPE)

    def _default_hooks(self, governance: Sequence[Hook[Any]]) -> list[Hook[Any]]:
        from gateway_app.cache.hook import build as build_cache
        from gateway_app.observability.hook import ObservabilityHook
        from gateway_app.observability.logs import configure as configure_logs
        from gateway_app.observability.tracing import TimedHook, Tracer
        from gateway_app.responses.store import build as build_response_store

        config = self.config
        if config.observability.logs.enabled:
            configure_logs()
        tracer = Tracer(config) if self.env.tracing else None
        # Order: observability first (the outermost frame: entered on arrival, its after
        # runs last and sees every outcome); governance next (authentication before the
        # body is read; then limits and the budget reservation, whose team the cache keys
        # on), its limit check timed as "aigw.limits" when tracing is on; the cache last,
        # so a hit short-circuits only the upstream call.
        hooks: list[Hook[Any]] = [ObservabilityHook(config, self.metrics, self.breakers, tracer)]
        for hook in governance:
            timed = tracer is not None and hook.stage is Stage.CALL
            hooks.append(TimedHook(hook, "aigw.limits") if timed else hook)
        # The response store is entered before governance's limits, which count the whole
        # conversation a chained Responses call sends.
        credential = self.env.redis_credential()
        store = build_response_store(
            config, self.env.redis_url, self.env.redis_ca_file, credential=credential
        )
        at = next((i for i, h in enumerate(hooks) if h.stage is Stage.CALL), len(hooks))
        hooks.insert(at, store)
        cache = build_cache(
            config,
            self.env.redis_url,
            self.env.redis_ca_file,
            self.router,
            credential=credential,
        )
        if cache is not None:
            hooks.append(cache)
        return hooks


def _port(scope: Mapping[str, Any]) -> int | None:
    """The local port a request arrived on (ASGI ``server``): which listener it is."""
    server = scope.get("server")
    return server[1] if server else None


def _redis_guards(hooks: Sequence[Hook[Any]]) -> list[tuple[str, MemoryGuard]]:
    """The memory guards of the Redis stores among ``hooks``, by store (cache, responses)."""
    from gateway_app.cache.hook import CacheHook

    stores: list[tuple[str, Any]] = []
    for hook in hooks:
        if isinstance(hook, ResponseStoreHook):
            stores.append(("responses", hook.store.store))
        elif isinstance(hook, CacheHook):
            stores.append(("cache", hook.store))
    return [(name, store.guard) for name, store in stores if getattr(store, "guard", None)]


def _metrics(config: GatewayConfig) -> Metrics | None:
    if not config.observability.metrics.enabled:
        return None
    return Metrics(config)


def _circuit_store(config: GatewayConfig, env: Environment) -> CircuitBreakerStore:
    """Redis-backed (shared by replicas) when ``AIGW_REDIS_URL`` is set, else in-process."""
    if not env.redis_url:
        return InProcessCircuitBreakerStore(config.router.circuit_breaker)
    from gateway_app.state.circuit_redis import RedisCircuitBreakerStore

    return RedisCircuitBreakerStore.from_url(
        env.redis_url, config.router.circuit_breaker, env.redis_ca_file, env.redis_credential()
    )


def create_app(config: GatewayConfig | None = None, **kwargs: Any) -> GatewayApp:
    """The app for ``config`` (default: ``AIGW_CONFIG`` or the bundled example).

    Governance (keys, budgets, limits, audit) runs when enabled (``governance.enabled``,
    or ``AIGW_ADMIN_KEY`` set): its hooks join the chain and its admin API is mounted.
    """
    config = config or load_config()
    from gateway_app.governance.admin import AdminApi
    from gateway_app.governance.hooks import governance_hooks
    from gateway_app.governance.service import Governance, enabled

    # The one read of the process environment; everything below is handed this object.
    env = kwargs["env"] = kwargs.get("env") or Environment.from_environ()
    if enabled(config, env) and "admin" not in kwargs:
        governance = Governance.from_environment(config, env)
        kwargs["admin"] = admin = AdminApi(governance)
        if config.governance.global_ is not None:
            from gateway_app.governance.plane import GlobalPlane

            # One governance plane across clouds: started and stopped with governance.
            kwargs["internal"] = governance.plane = GlobalPlane.build(
                config.governance.global_, env, governance, admin
            )
        hooks = governance_hooks(governance)
        if kwargs.get("hooks") is not None:
            # An explicit hook list (tests): governance's hooks still come first in each stage.
            kwargs["hooks"] = sorted([*hooks, *kwargs["hooks"]], key=lambda hook: hook.stage)
        else:
            kwargs["governance"] = hooks
    if config.identity.enabled and "console" not in kwargs:
        from gateway_app.identity import build

        kwargs["console"] = build(config, kwargs.get("admin"), env)
    return GatewayApp(config, **kwargs)
