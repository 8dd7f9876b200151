"""Routing and resilience: which deployment serves a request, and what happens when it fails.

For each request the model's strategy orders its deployments; the router tries
them in that order. Each deployment gets up to ``max_retries`` retries on
retryable failures (connect errors, timeouts, 408/409/429/5xx) with full-jitter
exponential backoff, waiting at least ``Retry-After`` when the upstream sent
one; everything is bounded by the request's total ``deadline_s``. Other 4xx go
straight back to the client, except 401/403/404 (this deployment's key or model
name), which fail over. Deployments whose circuit is open are skipped. For
streams, the first upstream event is read before anything is sent to the
client: failures before it are retried and failed over; after it nothing is.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from gateway_app.apis import Operation, WireApi
from gateway_app.config import DeploymentConfig, GatewayConfig, ProviderConfig, RetryConfig
from gateway_app.context import Attempt, RequestContext, RouteOutcome
from gateway_app.errors import GatewayError, invalid
from gateway_app.protocols.anthropic_messages.upstream import (
    MessagesCall,
    count_tokens_request,
    estimated_count,
)
from gateway_app.providers import ADAPTERS, ProviderAdapter
from gateway_app.providers.base import (
    Capability,
    ChatResult,
    StreamDecoder,
    StreamState,
    StreamTranslator,
    UpstreamRequest,
)
from gateway_app.resilience import (
    CIRCUIT_STATUSES,
    FAILOVER_STATUSES,
    RETRYABLE_STATUSES,
    backoff_delay,
    retry_after_seconds,
)
from gateway_app.responses.call import ResponsesCall
from gateway_app.state.circuit import CircuitBreakerStore
from gateway_app.transport import (
    UpstreamClient,
    UpstreamConnectionError,
    UpstreamResponse,
    default_client,
)

log = logging.getLogger("gateway_app.router")

# A provider's error code (``AccessDeniedException``, ``invalid_api_key``): a word, no text.
_ERROR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
Built = TypeVar("Built")
# One try of one deployment within a timeout: the response, or an UpstreamFailure.
Attempter = Callable[["Deployment", float], Awaitable["ChatResult | OpenStream"]]


# How an upstream stream is read: its decoder and a translator into the client's frames.
StreamReader = tuple[StreamDecoder, StreamTranslator]


class Codec(Protocol):
    """One deployment's side of a request/response exchange in a client's wire format."""

    def request(self, stream: bool) -> UpstreamRequest:
        """The upstream request."""
        ...

    def response(self, raw: bytes) -> ChatResult:
        """The client's answer from a 2xx upstream body."""
        ...

    def stream_reader(self) -> StreamReader:
        """A fresh decoder and translator of the upstream stream into the client's frames."""
        ...


class _ChatCodec:
    """Chat completions through the deployment's adapter."""

    __slots__ = ("body", "deployment", "include_usage")

    def __init__(self, deployment: Deployment, body: dict[str, Any], include_usage: bool) -> None:
        self.deployment = deployment
        self.body = body
        self.include_usage = include_usage

    def request(self, stream: bool) -> UpstreamRequest:
        d = self.deployment
        return d.adapter.chat_request(self.body, d.config, d.provider, stream)

    def response(self, raw: bytes) -> ChatResult:
        return self.deployment.adapter.chat_response(raw, self.deployment.config)

    def stream_reader(self) -> StreamReader:
        d = self.deployment
        return d.adapter.stream_decoder(), d.adapter.stream_translator(d.config, self.include_usage)


class _MessagesCodec:
    """Anthropic Messages, natively or through chat, as the deployment serves them."""

    __slots__ = ("call", "deployment")

    def __init__(self, call: MessagesCall, deployment: Deployment) -> None:
        self.call = call
        self.deployment = deployment

    def request(self, stream: bool) -> UpstreamRequest:
        d = self.deployment
        return self.call.request(d.adapter, d.config, d.provider)

    def response(self, raw: bytes) -> ChatResult:
        return self.call.response(self.deployment.adapter, self.deployment.config, raw)

    def stream_reader(self) -> StreamReader:
        return self.call.stream_reader(self.deployment.adapter, self.deployment.config)


# Upstream calls one embeddings request may have in flight (Titan embeds one text per call).
EMBEDDINGS_CONCURRENCY = 8


@dataclass(slots=True)
class Deployment:
    """A configured deployment with its provider and adapter resolved."""

    config: DeploymentConfig
    provider_name: str
    provider: ProviderConfig
    adapter: ProviderAdapter
    id: str = ""  # unique id: circuit breaker and latency key

    def __post_init__(self) -> None:
        self.id = self.config.id

    def require(self, capability: Capability, what: str, param: str = "model") -> None:
        """A 400 naming ``param`` when this deployment's provider cannot serve ``what``."""
        if capability not in self.adapter.capabilities:
            raise invalid(param, f"this model's provider ({self.adapter.title}) has no {what}")

    @property
    def has_credentials(self) -> bool:
        """False when the provider's key is unset (the deployment is skipped)."""
        return bool(self.provider.api_key) or not self.provider.api_key_env

    @property
    def unit_cost(self) -> float:
        """Price of a million input plus a million output tokens (lowest-cost order)."""
        price = self.config.price
        return price.input_per_mtok + price.output_per_mtok if price else float("inf")


@dataclass(slots=True)
class Route:
    """A public model name's deployments, strategy and retry policy."""

    name: str
    strategy: str
    deployments: list[Deployment]
    retry: RetryConfig
    shadow: Deployment | None
    shadow_share: float
    static_order: list[Deployment] | None = None  # strategies that need no per-request work

    def __post_init__(self) -> None:
        if self.strategy == "failover" or len(self.deployments) == 1:
            self.static_order = sorted(self.deployments, key=lambda d: d.config.priority)
        elif self.strategy == "lowest_cost":
            self.static_order = sorted(
                self.deployments, key=lambda d: (d.unit_cost, d.config.priority)
            )


class LatencyTracker:
    """EWMA of each deployment's observed latency (per process; a local observation)."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.ewma: dict[str, float] = {}

    def observe(self, key: str, seconds: float) -> None:
        """Fold one observation in."""
        previous = self.ewma.get(key)
        self.ewma[key] = (
            seconds if previous is None else previous + self.alpha * (seconds - previous)
        )


def order_deployments(
    route: Route,
    rng: random.Random,
    latency: LatencyTracker,
    is_open: Callable[[str], bool],
) -> list[Deployment]:
    """The order in which to try a route's deployments under its strategy.

    * ``failover``: by ``priority`` (lower first), then config order;
    * ``weighted``: weighted random without replacement (A/B splits, canaries);
    * ``lowest_cost``: by configured price, then priority;
    * ``lowest_latency``: by latency EWMA; never-measured deployments first (so
      they get measured), deployments whose circuit is open last.
    """
    if route.static_order is not None:  # failover, lowest_cost: fixed at start-up
        return route.static_order
    deployments = route.deployments
    if route.strategy == "weighted":
        pool = [d for d in deployments if d.config.weight > 0]
        ordered: list[Deployment] = []
        while pool:
            total = sum(d.config.weight for d in pool)
            point = rng.random() * total
            for index, candidate in enumerate(pool):
                point -= candidate.config.weight
                if point < 0 or index == len(pool) - 1:
                    ordered.append(pool.pop(index))
                    break
        # Zero-weight deployments are fallbacks only, in priority order.
        ordered.extend(
            sorted(
                (d for d in deployments if d.config.weight <= 0), key=lambda d: d.config.priority
            )
        )
        return ordered
    # lowest_latency
    return sorted(
        deployments,
        key=lambda d: (is_open(d.id), latency.ewma.get(d.id, -1.0), d.config.priority),
    )


class UpstreamFailure(Exception):
    """One failed try; ``error`` is what the client sees if it is the last one."""

    def __init__(
        self,
        outcome: str,
        error: GatewayError,
        *,
        retryable: bool,
        failover: bool,
        counts: bool,
        retry_after: float | None = None,
        trip: bool = False,
    ) -> None:
        super().__init__(error.message)
        self.outcome = outcome
        self.error = error
        self.retryable = retryable
        self.failover = failover
        self.counts = counts
        self.retry_after = retry_after
        self.trip = trip  # open the deployment's circuit now (its credential was refused)

    @classmethod
    def from_status(
        cls, deployment: Deployment, status: int, raw: bytes, headers: Any
    ) -> UpstreamFailure:
        """Classify an upstream HTTP error."""
        lowered = {k.lower(): v for k, v in headers.items()}
        error = deployment.adapter.error(status, raw, lowered)
        if status in (401, 403):
            return cls.credential_refused(deployment, status, error.code)
        retry_after = retry_after_seconds(lowered.get("retry-after"))
        if retry_after is None and "retry-after-ms" in lowered:
            try:
                retry_after = float(lowered["retry-after-ms"]) / 1000
            except ValueError:
                retry_after = None
        return cls(
            f"http_{status}",
            error,
            retryable=status in RETRYABLE_STATUSES,
            failover=status in FAILOVER_STATUSES,
            counts=status in CIRCUIT_STATUSES,
            retry_after=retry_after,
        )

    @classmethod
    def credential_refused(
        cls, deployment: Deployment, status: int, code: str | None = None
    ) -> UpstreamFailure:
        """The provider refused the gateway's own credential or role (401/403): the
        gateway's fault, not the client's. Only the provider's error code is kept (its
        message may echo part of the key); the deployment's circuit opens until an
        operator fixes it."""
        env = " or ".join(deployment.provider.api_key_env) or "the provider's credentials"
        reason = f"HTTP {status}"
        if code and _ERROR_CODE.fullmatch(code):
            reason += f" {code}"
        return cls(
            f"http_{status}",
            GatewayError(
                502,
                f"deployment {deployment.id}: provider {deployment.provider_name!r} refused the "
                f"gateway's credential ({reason}); the gateway's operator must fix "
                f"providers.{deployment.provider_name} ({env}).",
                code="upstream_auth_failed",
                type="server_error",
            ),
            retryable=False,
            failover=True,
            counts=True,
            trip=True,
        )

    @classmethod
    def timeout(cls, deployment: Deployment, seconds: float) -> UpstreamFailure:
        """The per-try timeout expired."""
        return cls(
            "timeout",
            GatewayError(
                504,
                f"deployment {deployment.id} did not answer within {seconds:.3g}s",
                type="timeout_error",
                code="upstream_timeout",
            ),
            retryable=True,
            failover=True,
            counts=True,
        )

    @classmethod
    def bad_response(cls, deployment: Deployment, exc: BaseException) -> UpstreamFailure:
        """A 2xx whose body is not what the provider's API returns."""
        return cls(
            "bad_response",
            GatewayError(
                502,
                f"deployment {deployment.id} returned an unreadable response ({type(exc).__name__})",
                code="upstream_bad_response",
            ),
            retryable=False,
            failover=True,
            counts=True,
        )

    @classmethod
    def connection(cls, deployment: Deployment, exc: BaseException) -> UpstreamFailure:
        """Could not connect, or the connection dropped before a complete response."""
        return cls(
            "connect",
            GatewayError(
                502,
                f"deployment {deployment.id}: upstream connection failed ({type(exc).__name__})",
                code="upstream_connection_error",
            ),
            retryable=True,
            failover=True,
            counts=True,
        )


class OpenStream:
    """An upstream stream whose first frames arrived; the rest is read lazily."""

    def __init__(
        self,
        router: Router,
        deployment: Deployment,
        response: UpstreamResponse,
        decoder: StreamDecoder,
        translator: StreamTranslator,
        first: list[bytes],
    ) -> None:
        self.router = router
        self.deployment = deployment
        self.response = response
        self.decoder = decoder
        self.translator = translator
        self.first = first

    @property
    def state(self) -> StreamState:
        """What the translator learned so far (usage, finish reason)."""
        return self.translator.state

    async def frames(self) -> AsyncGenerator[list[bytes], None]:
        """Batches of client frames, the first batch included; raises GatewayError mid-stream."""
        translator = self.translator
        ok: bool | None = None  # None: abandoned (client left), not the deployment's fault
        try:
            yield self.first
            response = self.response
            while not translator.done():
                try:
                    chunk = await response.read_chunk()
                except (TimeoutError, UpstreamConnectionError) as exc:
                    raise GatewayError(
                        502, f"upstream stream of {self.deployment.id} broke: {type(exc).__name__}"
                    ) from None
                if not chunk:
                    events = self.decoder.close()
                    frames = [f for ev, data in events for f in translator.feed(ev, data)]
                    if frames:
                        yield frames
                    if not translator.done():
                        raise GatewayError(
                            502, f"upstream stream of {self.deployment.id} ended early"
                        )
                    break
                frames = []
                for event, data in self.decoder.feed(chunk):
                    frames.extend(translator.feed(event, data))
                if frames:
                    yield frames
            yield translator.finish()
            ok = True
        except GatewayError:
            ok = False
            raise
        finally:
            await self.close(ok)

    async def close(self, ok: bool | None) -> None:
        """Release (complete) or drop (broken, abandoned) the upstream connection."""
        if ok:
            self.response.release()
            await self.router.breakers.record(self.deployment.id, True)
        else:
            self.response.close()
            if ok is False:
                await self.router.breakers.record(self.deployment.id, False)
            else:
                await self.router.breakers.release(self.deployment.id)


class ShadowLog:
    """Recent shadow-traffic results (bounded), for comparison with primary responses."""

    def __init__(self, size: int = 1000) -> None:
        self.results: deque[dict[str, Any]] = deque(maxlen=size)

    def record(self, entry: dict[str, Any]) -> None:
        """Keep one result and log it."""
        self.results.append(entry)
        log.info("shadow result", extra={"shadow": entry})


class Router:
    """Tries deployments for a request, with retries, failover and circuit breakers."""

    def __init__(
        self,
        config: GatewayConfig,
        breakers: CircuitBreakerStore,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        client: UpstreamClient | None = None,
    ) -> None:
        self.config = config
        self.breakers = breakers
        self.rng = rng or random.Random(config.router.seed)
        self.sleep = sleep
        self.latency = LatencyTracker(config.router.latency_ewma_alpha)
        self.shadow_log = ShadowLog()
        self.client: UpstreamClient = client or default_client()
        self._background: set[asyncio.Task[None]] = set()
        # How each operation tries one deployment (a new wire API adds its operation here).
        self._attempts: dict[Operation, Callable[[RequestContext, Route], Attempter]] = {
            Operation.CHAT: self._chat,
            Operation.EMBEDDINGS: self._embeddings,
            Operation.RESPONSES: self._responses,
            Operation.MESSAGES: self._messages,
            Operation.COUNT_TOKENS: self._count_tokens,
        }
        self.routes: dict[str, Route] = {}
        for name, model in config.models.items():
            self.routes[name] = Route(
                name=name,
                strategy=model.strategy,
                deployments=[self._deployment(d) for d in model.deployments],
                retry=config.retry_for(name),
                shadow=self._deployment(model.shadow.deployment) if model.shadow else None,
                shadow_share=model.shadow.share if model.shadow else 0.0,
            )

    def _deployment(self, config: DeploymentConfig) -> Deployment:
        provider = self.config.providers[config.provider]
        return Deployment(config, config.provider, provider, ADAPTERS[provider.type])

    async def start(self) -> None:
        """Open the pooled upstream HTTP client (keep-alive, no per-request DNS)."""
        await self.client.start()

    async def stop(self) -> None:
        """Wait briefly for shadow requests, then close the client."""
        if self._background:
            await asyncio.wait(self._background, timeout=5)
        await self.client.close()

    def route(self, model: str) -> Route:
        """The route of a public model name, or a 400 naming ``model``."""
        route = self.routes.get(model)
        if route is None:
            raise GatewayError(
                400,
                f"The model `{model}` does not exist; GET /v1/models lists the models served here.",
                param="model",
                code="model_not_found",
            )
        return route

    # ------------------------------------------------------------------ calls

    async def call(
        self,
        api: WireApi,
        request: RequestContext,
        route: Route,
        outcome: RouteOutcome | None = None,
    ) -> RouteOutcome:
        """Serve a model call of ``api``: the RouteOutcome (the answering deployment, every
        attempt, upstream time, and the complete result or the open stream); a GatewayError
        when no deployment answered.

        A caller that must know what was tried even when the call is cancelled (the
        client left mid-retry) passes its own ``outcome``: it is the one filled and
        returned."""
        outcome = outcome if outcome is not None else RouteOutcome()
        attempt = self._attempts[api.operation](request, route)
        response = await self._run(request, route, outcome, attempt)
        if isinstance(response, OpenStream):
            outcome.stream = response
        else:
            outcome.result = response
        return outcome

    def _chat(self, request: RequestContext, route: Route) -> Attempter:
        """Tries of a chat completion: a complete result, or an open stream."""
        body = request.body
        assert body is not None
        include_usage = request.include_usage
        if route.shadow is not None and self.rng.random() < route.shadow_share:
            self._spawn(self._shadow(request, route))
        return self._exchange(request, lambda d: _ChatCodec(d, body, include_usage))

    def _responses(self, request: RequestContext, route: Route) -> Attempter:
        """Tries of a Responses API call: native where the provider serves it."""
        call = ResponsesCall.of(request)
        return self._exchange(request, call.codec)

    def _exchange(
        self, request: RequestContext, codec_for: Callable[[Deployment], Codec]
    ) -> Attempter:
        """Tries of one request/response (or stream) exchange in a wire format's codec."""
        stream = request.stream

        async def attempt(deployment: Deployment, timeout: float) -> ChatResult | OpenStream:
            if stream:
                deployment.require(Capability.STREAMING, "streaming", "stream")
            codec = self._build(deployment, lambda: codec_for(deployment))
            upstream = self._build(deployment, lambda: codec.request(stream))
            if deployment.adapter.authorizes:
                upstream = await self._authorize(deployment, upstream)
            if stream:
                return await self._open_stream(deployment, upstream, timeout, codec.stream_reader)
            raw = await self._post(deployment, upstream, timeout)
            try:
                return codec.response(raw)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise UpstreamFailure.bad_response(deployment, exc) from None

        return attempt

    def _messages(self, request: RequestContext, route: Route) -> Attempter:
        """Tries of an Anthropic Messages request: native or translated per deployment."""
        assert request.body is not None and request.model is not None
        call = MessagesCall(
            request.request_id, request.model, request.body, request.headers, request.stream
        )
        return self._exchange(request, lambda d: _MessagesCodec(call, d))

    def _count_tokens(self, request: RequestContext, route: Route) -> Attempter:
        """Tries of a Messages token count: the provider's own count, else the estimate."""
        body = request.body
        assert body is not None

        async def attempt(deployment: Deployment, timeout: float) -> ChatResult:
            upstream = self._build(
                deployment,
                lambda: count_tokens_request(
                    body,
                    request.headers,
                    deployment.adapter,
                    deployment.config,
                    deployment.provider,
                ),
            )
            if upstream is None:
                return estimated_count(body)
            if deployment.adapter.authorizes:
                upstream = await self._authorize(deployment, upstream)
            raw = await self._post(deployment, upstream, timeout)
            try:
                return deployment.adapter.count_tokens_response(raw)
            except (ValueError, KeyError, TypeError) as exc:
                raise UpstreamFailure.bad_response(deployment, exc) from None

        return attempt

    def _embeddings(self, request: RequestContext, route: Route) -> Attempter:
        """Tries of an embeddings request."""
        body = request.body
        assert body is not None

        async def attempt(deployment: Deployment, timeout: float) -> ChatResult:
            deployment.require(Capability.EMBEDDINGS, "embeddings API")
            return await self._embed(deployment, body, timeout)

        return attempt

    async def _embed(
        self, deployment: Deployment, body: dict[str, Any], timeout: float
    ) -> ChatResult:
        """One try of an embeddings request: the adapter's upstream call(s), its answer.

        Several calls (Titan embeds one text per call) run concurrently, at most
        :data:`EMBEDDINGS_CONCURRENCY` at once, all within ``timeout``; the first
        failure cancels the rest and is the try's outcome (so it is retried and failed
        over like a single call).
        """
        adapter = deployment.adapter
        requests = self._build(
            deployment,
            lambda: adapter.embeddings_requests(body, deployment.config, deployment.provider),
        )
        if adapter.authorizes:
            requests = [await self._authorize(deployment, r) for r in requests]
        if len(requests) == 1:
            responses = [await self._post_with_headers(deployment, requests[0], timeout)]
        else:
            responses = await self._post_all(deployment, requests, timeout)
        try:
            return adapter.embeddings_response(responses, body, deployment.config)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UpstreamFailure.bad_response(deployment, exc) from None

    async def _post_all(
        self, deployment: Deployment, requests: list[UpstreamRequest], timeout: float
    ) -> list[tuple[bytes, Any]]:
        limit = asyncio.Semaphore(EMBEDDINGS_CONCURRENCY)

        async def one(request: UpstreamRequest) -> tuple[bytes, Any]:
            async with limit:
                return await self._post_with_headers(deployment, request, timeout)

        tasks = [asyncio.ensure_future(one(r)) for r in requests]
        try:
            async with asyncio.timeout(timeout):
                responses = list(await asyncio.gather(*tasks))
        except TimeoutError:
            raise UpstreamFailure.timeout(deployment, timeout) from None
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return responses

    async def _run(
        self, request: RequestContext, route: Route, outcome: RouteOutcome, attempt: Attempter
    ) -> ChatResult | OpenStream:
        # (The monotonic clock, not the loop's time: get_running_loop() is a getpid()
        # system call on Python 3.11, and these times are compared with each other only.)
        clock = time.monotonic
        deadline = clock() + route.retry.deadline_s
        retry = route.retry
        breakers = self.breakers
        last: UpstreamFailure | None = None
        skipped_credentials: list[Deployment] = []
        open_for: float | None = None  # soonest an open circuit lets a probe through
        ordered = order_deployments(route, self.rng, self.latency, breakers.is_open)
        for position, deployment in enumerate(ordered):
            if position and not request.allow_fallbacks:
                break
            if not deployment.has_credentials:
                skipped_credentials.append(deployment)
                continue
            tries = 0
            while True:
                remaining = deadline - clock()
                if remaining <= 0:
                    raise self._final(last, deadline_passed=True)
                if not await breakers.acquire(deployment.id):
                    outcome.attempts.append(Attempt(deployment.id, "circuit_open", 0.0))
                    wait = breakers.retry_in(deployment.id)
                    open_for = wait if open_for is None else min(open_for, wait)
                    if last is None:
                        last = UpstreamFailure(
                            "circuit_open",
                            GatewayError(
                                503,
                                f"every deployment of model {route.name!r} is failing (circuit open); retry later",
                                code="circuit_open",
                            ),
                            retryable=False,
                            failover=True,
                            counts=False,
                        )
                    break
                timeout = min(deployment.config.timeout_s, remaining)
                started = time.perf_counter()
                try:
                    result = await attempt(deployment, timeout)
                except UpstreamFailure as failure:
                    elapsed = time.perf_counter() - started
                    outcome.attempts.append(
                        Attempt(deployment.id, failure.outcome, elapsed, started)
                    )
                    if failure.trip:
                        log.error(
                            "deployment %s: provider %s refused the gateway's credential (%s); "
                            "circuit opened, failing over",
                            deployment.id,
                            deployment.provider_name,
                            failure.outcome,
                        )
                        await breakers.trip(deployment.id)
                    elif failure.counts:
                        await breakers.record(deployment.id, False)
                    else:
                        await breakers.release(deployment.id)
                    last = failure
                    if not failure.failover:
                        raise failure.error from None
                    if not failure.retryable or tries >= retry.max_retries:
                        break
                    delay = backoff_delay(
                        tries, retry.backoff_base_s, retry.backoff_max_s, self.rng
                    )
                    if failure.retry_after is not None:
                        delay = max(delay, failure.retry_after)
                    if clock() + delay >= deadline:
                        break  # cannot wait that long here; the next deployment may answer
                    tries += 1
                    await self.sleep(delay)
                    continue
                except BaseException:
                    await breakers.release(deployment.id)
                    raise
                elapsed = time.perf_counter() - started
                outcome.attempts.append(Attempt(deployment.id, "ok", elapsed, started))
                outcome.upstream_s += elapsed
                outcome.deployment = deployment.id
                outcome.provider = deployment.provider_name
                self.latency.observe(deployment.id, elapsed)
                if not isinstance(result, OpenStream):
                    await breakers.record(deployment.id, True)
                return result
        if last is None and skipped_credentials:
            names = sorted({d.provider_name for d in skipped_credentials})
            env = sorted({e for d in skipped_credentials for e in d.provider.api_key_env})
            raise GatewayError(
                503,
                f"model {route.name!r} has no deployment with credentials: provider(s) "
                f"{', '.join(names)} lack an API key; set {' or '.join(env) or 'api_key'}",
                code="missing_credentials",
            )
        error = self._final(last, deadline_passed=False)
        if error.code == "circuit_open":
            # When to come back: as soon as the first circuit lets a probe through.
            error = GatewayError(
                error.status,
                error.message,
                code=error.code,
                type=error.type,
                headers={"retry-after": str(max(1, math.ceil(open_for or 0.0)))},
            )
        raise error

    @staticmethod
    def _final(last: UpstreamFailure | None, *, deadline_passed: bool) -> GatewayError:
        if last is None or (
            deadline_passed
            and last.outcome != "timeout"
            and last.error.status < 500
            and last.error.status != 429
        ):
            return GatewayError(
                504,
                "the request's deadline passed before any deployment answered",
                type="timeout_error",
                code="deadline_exceeded",
            )
        error = last.error
        if error.status >= 500 and error.status not in (502, 503, 504):
            # The client talks to the gateway: an upstream 500/529 is a bad gateway.
            error = GatewayError(
                502, error.message, type=error.type, code=error.code, param=error.param
            )
        return error

    @staticmethod
    def _build(deployment: Deployment, build: Callable[[], Built]) -> Built:
        try:
            return build()
        except GatewayError as error:
            if error.status < 500:
                raise  # the request is at fault (a 400 naming the field)
            # The deployment's settings are incomplete (no region, endpoint, project): fail over.
            raise UpstreamFailure(
                "config", error, retryable=False, failover=True, counts=False
            ) from None

    async def _authorize(self, deployment: Deployment, request: UpstreamRequest) -> UpstreamRequest:
        try:
            return await deployment.adapter.authorize(
                request, deployment.config, deployment.provider, self.client
            )
        except GatewayError as error:
            # No usable credential is about this deployment, not the request: fail over.
            raise UpstreamFailure(
                "credentials",
                error,
                retryable=error.status >= 500,
                failover=True,
                counts=error.status >= 500,
            ) from None

    async def _post(
        self, deployment: Deployment, request: UpstreamRequest, timeout: float
    ) -> bytes:
        return (await self._post_with_headers(deployment, request, timeout))[0]

    async def _post_with_headers(
        self, deployment: Deployment, request: UpstreamRequest, timeout: float
    ) -> tuple[bytes, Any]:
        """POST; the body and headers of a 2xx answer, else an UpstreamFailure."""
        try:
            status, headers, raw = await self.client.post(
                request.url, request.headers, request.body, timeout=timeout
            )
        except TimeoutError:
            raise UpstreamFailure.timeout(deployment, timeout) from None
        except UpstreamConnectionError as exc:
            raise UpstreamFailure.connection(deployment, exc) from None
        if status >= 300:
            raise UpstreamFailure.from_status(deployment, status, raw, headers)
        return raw, headers

    async def _open_stream(
        self,
        deployment: Deployment,
        request: UpstreamRequest,
        timeout: float,
        reader: Callable[[], StreamReader],
    ) -> OpenStream:
        """Open a stream and read its first frames through the wire API's ``reader`` (its
        decoder and translator, made once the upstream answered 2xx)."""
        headers = dict(request.headers)
        headers["accept"] = deployment.adapter.stream_accept
        response: UpstreamResponse | None = None
        try:
            response = await self.client.open(request.url, headers, request.body, timeout=timeout)
            if response.status >= 300:
                raw = await response.read()
                response.release()
                raise UpstreamFailure.from_status(
                    deployment, response.status, raw, response.headers
                )
            decoder, translator = reader()
            first: list[bytes] = []
            async with asyncio.timeout(timeout):
                while not first:
                    chunk = await response.read_chunk()
                    if not chunk:
                        raise UpstreamFailure.connection(
                            deployment, EOFError("stream ended before any event")
                        )
                    for event, data in decoder.feed(chunk):
                        try:
                            first.extend(translator.feed(event, data))
                        except GatewayError as error:
                            raise UpstreamFailure(
                                f"stream_{error.status}",
                                error,
                                retryable=error.status in RETRYABLE_STATUSES,
                                failover=error.status in FAILOVER_STATUSES or error.status >= 500,
                                counts=error.status in CIRCUIT_STATUSES,
                            ) from None
            return OpenStream(self, deployment, response, decoder, translator, first)
        except TimeoutError:
            if response is not None:
                response.close()
            raise UpstreamFailure.timeout(deployment, timeout) from None
        except UpstreamConnectionError as exc:
            if response is not None:
                response.close()
            raise UpstreamFailure.connection(deployment, exc) from None
        except BaseException:
            if response is not None:
                response.close()
            raise

    # ------------------------------------------------------------------ shadow

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _shadow(self, request: RequestContext, route: Route) -> None:
        deployment = route.shadow
        assert deployment is not None and request.body is not None
        body = {k: v for k, v in request.body.items() if k not in ("stream", "stream_options")}
        entry: dict[str, Any] = {
            "request_id": request.request_id,
            "model": route.name,
            "shadow_deployment": deployment.id,
        }
        started = time.perf_counter()
        try:
            upstream = deployment.adapter.chat_request(
                body, deployment.config, deployment.provider, False
            )
            if deployment.adapter.authorizes:
                upstream = await self._authorize(deployment, upstream)
            raw = await self._post(deployment, upstream, deployment.config.timeout_s)
            result = deployment.adapter.chat_response(raw, deployment.config)
            entry.update(status="ok", response=result.data)
        except UpstreamFailure as failure:
            entry.update(status=failure.outcome, error=failure.error.message)
        except Exception as exc:  # a shadow must never take the worker down
            entry.update(status="error", error=repr(exc))
        entry["latency_s"] = time.perf_counter() - started
        self.shadow_log.record(entry)
