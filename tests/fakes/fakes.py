"""Fake OpenAI and Anthropic servers, controllable per test.

A :class:`FakeUpstream` runs an aiohttp server on 127.0.0.1 in a background
thread. Each request consumes the next scripted :class:`Behaviour` (a reply, an
error with optional ``Retry-After``, a delay, a dropped connection, a stream that
breaks after N events); with an empty script it answers successfully, echoing
the last user text, so translation can be checked end to end. Every request is
recorded (path, headers, JSON body), and requests abandoned by the client are
counted in ``cancelled``.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web

from tests.fakes import responses


@dataclass
class Behaviour:
    """What the fake does with one request."""

    status: int = 200
    content: str | None = None  # None: echo the last user text
    tool_calls: list[dict[str, Any]] | None = None  # [{"name": ..., "arguments": {...}}]
    finish_reason: str | None = None
    error_type: str | None = None
    message: str | None = None
    retry_after: str | None = None
    delay: float = 0.0  # before the response starts
    chunk_delay: float = 0.0  # between stream events
    drop: bool = False  # close the connection without a response
    drop_after_events: int | None = None  # stream: close after this many events
    stream_error_after: int | None = None  # stream: send an in-stream error after N events
    usage: tuple[int, int] = (11, 7)  # prompt, completion tokens
    cached_tokens: int = 0  # OpenAI: of the prompt tokens, read from the prompt cache
    # Anthropic: prompt-cache (read, written) tokens, reported apart from ``input_tokens``.
    cache_tokens: tuple[int, int] = (0, 0)
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # send exactly this body with ``status`` (malformed upstreams)
    sse: bytes | None = None  # stream exactly these bytes (a recorded event stream)


def ok(content: str | None = None, **kwargs: Any) -> Behaviour:
    """A successful response (``content`` or the echo)."""
    return Behaviour(content=content, **kwargs)


def error(
    status: int, message: str | None = None, *, retry_after: str | None = None, **kwargs: Any
) -> Behaviour:
    """An error response in the provider's shape."""
    return Behaviour(status=status, message=message, retry_after=retry_after, **kwargs)


def slow(delay: float, **kwargs: Any) -> Behaviour:
    """A response that starts after ``delay`` seconds."""
    return Behaviour(delay=delay, **kwargs)


def drop(**kwargs: Any) -> Behaviour:
    """Close the connection without answering."""
    return Behaviour(drop=True, **kwargs)


_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    429: "requests",
    500: "server_error",
    502: "server_error",
    503: "server_error",
}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class FakeUpstream:
    """One fake provider server (``kind`` = ``openai`` or ``anthropic``)."""

    def __init__(self, kind: Literal["openai", "anthropic"] = "openai") -> None:
        self.kind = kind
        self.requests: list[dict[str, Any]] = []
        self.cancelled = 0
        self.completed = 0
        self._script: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------ control

    @property
    def url(self) -> str:
        """The base URL the official SDK would use (``.../v1`` for OpenAI)."""
        root = f"http://127.0.0.1:{self.port}"
        return root + "/v1" if self.kind == "openai" else root

    def script(self, *behaviours: Behaviour) -> FakeUpstream:
        """Queue behaviours for the next requests (then default successes)."""
        with self._lock:
            self._script.extend(behaviours)
        return self

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.cancelled = 0
            self.completed = 0

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> bool:
        """Poll ``predicate()`` until true or ``timeout`` (for background effects)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.01)
        return bool(predicate())

    def _next(self) -> Behaviour:
        with self._lock:
            return self._script.popleft() if self._script else Behaviour()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FakeUpstream:
        """Start serving in a background thread."""
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application(client_max_size=64 * 1024 * 1024)
            if self.kind == "openai":
                app.router.add_post("/v1/chat/completions", self._openai_chat)
                app.router.add_post("/v1/embeddings", self._openai_embeddings)
                app.router.add_post("/v1/responses", self._openai_responses)
                app.router.add_get("/v1/models", self._openai_models)
            else:
                app.router.add_post("/v1/messages", self._anthropic_messages)
                app.router.add_post("/v1/messages/count_tokens", self._anthropic_count_tokens)
            self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-{self.kind}", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Stop the server and its thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ shared

    async def _begin(self, request: web.Request) -> tuple[Behaviour, dict[str, Any]]:
        body = await request.json(loads=orjson.loads)
        self.requests.append({"path": request.path, "headers": dict(request.headers), "json": body})
        behaviour = self._next()
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        return behaviour, body

    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.completed += 1
        return response

    def _failure(self, request: web.Request, behaviour: Behaviour) -> web.StreamResponse | None:
        """A scripted dropped connection, malformed body or error response, else None."""
        if behaviour.drop:
            return self._drop(request)
        if behaviour.raw is not None:
            return self._raw(behaviour)
        if behaviour.status >= 300:
            return self._error_response(behaviour)
        return None

    @staticmethod
    def _raw(behaviour: Behaviour) -> web.Response:
        return web.Response(
            status=behaviour.status, body=behaviour.raw, content_type="application/json"
        )

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response(status=500)

    @staticmethod
    def _last_user_text(messages: list[dict[str, Any]]) -> str:
        for message in reversed(messages):
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                for part in content or []:
                    if part.get("type") == "text":
                        return str(part.get("text"))
        return ""

    async def _sse(
        self,
        request: web.Request,
        behaviour: Behaviour,
        events: list[bytes],
        error_event: bytes | None = None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", **behaviour.headers}
        )
        await response.prepare(request)
        for index, event in enumerate(events):
            if behaviour.drop_after_events is not None and index >= behaviour.drop_after_events:
                assert request.transport is not None
                request.transport.abort()
                return response
            if behaviour.stream_error_after is not None and index == behaviour.stream_error_after:
                await response.write(error_event or self._stream_error())
                await response.write_eof()
                return response
            if behaviour.chunk_delay and index:
                await asyncio.sleep(behaviour.chunk_delay)
            await response.write(event)
        await response.write_eof()
        return response

    def _stream_error(self) -> bytes:
        if self.kind == "openai":
            return b'data: {"error":{"message":"stream broke","type":"server_error","param":null,"code":null}}\n\n'
        return b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'

    def _error_response(self, behaviour: Behaviour) -> web.Response:
        status = behaviour.status
        headers = dict(behaviour.headers)
        if behaviour.retry_after is not None:
            headers["retry-after"] = behaviour.retry_after
        if self.kind == "openai":
            body = {
                "error": {
                    "message": behaviour.message or f"fake error {status}",
                    "type": behaviour.error_type or _OPENAI_ERROR_TYPES.get(status, "server_error"),
                    "param": None,
                    "code": "rate_limit_exceeded" if status == 429 else None,
                }
            }
        else:
            headers["request-id"] = f"req_fake{next(self._ids)}"
            body = {
                "type": "error",
                "error": {
                    "type": behaviour.error_type or _ANTHROPIC_ERROR_TYPES.get(status, "api_error"),
                    "message": behaviour.message or f"fake error {status}",
                },
            }
        return web.Response(
            status=status, body=orjson.dumps(body), headers=headers, content_type="application/json"
        )

    # ------------------------------------------------------------ OpenAI

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._guard(request, self._openai_chat_inner)

    async def _openai_chat_inner(self, request: web.Request) -> web.StreamResponse:
        behaviour, body = await self._begin(request)
        failure = self._failure(request, behaviour)
        if failure is not None:
            return failure
        text = (
            behaviour.content
            if behaviour.content is not None
            else "echo: " + self._last_user_text(body["messages"])
        )
        model = body.get("model", "gpt-fake")
        ident = f"chatcmpl-fake{next(self._ids)}"
        created = int(time.time())
        prompt, completion = behaviour.usage
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        calls = [
            {
                "id": f"call_fake{i}",
                "type": "function",
                "function": {
                    "name": c["name"],
                    "arguments": orjson.dumps(c.get("arguments", {})).decode(),
                },
            }
            for i, c in enumerate(behaviour.tool_calls or [])
        ]
        finish = behaviour.finish_reason or ("tool_calls" if calls else "stop")
        if not body.get("stream"):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": None if calls else text,
                "refusal": None,
                "annotations": [],
            }
            if calls:
                message["tool_calls"] = calls
            return web.json_response(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
                    ],
                    "usage": usage,
                    "service_tier": "default",
                    "system_fingerprint": "fp_fake",
                },
                dumps=lambda o: orjson.dumps(o).decode(),
                headers=behaviour.headers,
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            payload: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if include_usage:
                payload["usage"] = None
            return b"data: " + orjson.dumps(payload) + b"\n\n"

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if calls:
            for i, call in enumerate(calls):
                events.append(
                    chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": i,
                                    "id": call["id"],
                                    "type": "function",
                                    "function": {"name": call["function"]["name"], "arguments": ""},
                                }
                            ]
                        }
                    )
                )
                arguments = call["function"]["arguments"]
                half = len(arguments) // 2
                for piece in (arguments[:half], arguments[half:]):
                    events.append(
                        chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
                    )
        else:
            for word in _pieces(text):
                events.append(chunk({"content": word}))
        events.append(chunk({}, finish))
        if include_usage:
            events.append(
                b"data: "
                + orjson.dumps(
                    {
                        "id": ident,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "system_fingerprint": "fp_fake",
                        "choices": [],
                        "usage": usage,
                    }
                )
                + b"\n\n"
            )
        events.append(b"data: [DONE]\n\n")
        return await self._sse(request, behaviour, events)

    async def _openai_responses(self, request: web.Request) -> web.StreamResponse:
        return await self._guard(request, self._openai_responses_inner)

    async def _openai_responses_inner(self, request: web.Request) -> web.StreamResponse:
        behaviour, body = await self._begin(request)
        failure = self._failure(request, behaviour)
        if failure is not None:
            return failure
        refusal = responses.previous_response_error(body)
        if refusal is not None:
            return web.json_response(refusal, status=400)
        response, events = responses.reply(body, behaviour)
        if response is not None:
            return web.json_response(
                response, dumps=lambda o: orjson.dumps(o).decode(), headers=behaviour.headers
            )
        return await self._sse(request, behaviour, events, responses.STREAM_ERROR)

    async def _openai_embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._guard(request, self._openai_embeddings_inner)

    async def _openai_embeddings_inner(self, request: web.Request) -> web.StreamResponse:
        behaviour, body = await self._begin(request)
        failure = self._failure(request, behaviour)
        if failure is not None:
            return failure
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(str(text))), 0.5, -0.25]}
            for i, text in enumerate(inputs)
        ]
        tokens = sum(len(str(t).split()) for t in inputs)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _openai_models(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": "gpt-fake", "object": "model", "created": 0, "owned_by": "fake"}],
            }
        )

    # ------------------------------------------------------------ Anthropic

    async def _anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        return await self._guard(request, self._anthropic_inner)

    async def _anthropic_inner(self, request: web.Request) -> web.StreamResponse:
        behaviour, body = await self._begin(request)
        if behaviour.drop:
            return self._drop(request)
        if behaviour.raw is not None:
            return self._raw(behaviour)
        # Enforce what the real API enforces, so translation mistakes surface as 400s.
        problem = None
        if not isinstance(body.get("max_tokens"), int):
            problem = "max_tokens: Field required"
        elif any(m.get("role") not in ("user", "assistant") for m in body.get("messages", [])):
            problem = (
                "messages: roles must be user or assistant; use the top-level system parameter"
            )
        elif not request.headers.get("anthropic-version"):
            problem = "anthropic-version: header is required"
        if problem:
            return self._error_response(Behaviour(status=400, message=problem))
        if behaviour.status >= 300:
            return self._error_response(behaviour)
        if behaviour.sse is not None:
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            await response.write(behaviour.sse)
            await response.write_eof()
            return response
        ident = f"msg_fake{next(self._ids)}"
        message = anthropic_message(body, behaviour, ident, body.get("model", "claude-fake"))
        if not body.get("stream"):
            return web.json_response(message, headers=behaviour.headers)
        events = [
            b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
            for name, payload in anthropic_events(message)
        ]
        return await self._sse(request, behaviour, events)

    async def _anthropic_count_tokens(self, request: web.Request) -> web.StreamResponse:
        return await self._guard(request, self._anthropic_count_inner)

    async def _anthropic_count_inner(self, request: web.Request) -> web.StreamResponse:
        behaviour, body = await self._begin(request)
        if behaviour.raw is not None:
            return self._raw(behaviour)
        if behaviour.status >= 300:
            return self._error_response(behaviour)
        if not isinstance(body.get("messages"), list) or not body.get("model"):
            return self._error_response(Behaviour(status=400, message="messages: Field required"))
        # A deterministic count the tests can recompute: one token per 4 bytes of the prompt.
        prompt = [body.get("system"), body["messages"], body.get("tools")]
        return web.json_response({"input_tokens": fake_token_count(prompt)})


def anthropic_message(
    body: dict[str, Any], behaviour: Behaviour, ident: str, model: str
) -> dict[str, Any]:
    """The Messages API answer a fake gives ``body`` under ``behaviour`` (echo by default)."""
    text = (
        behaviour.content
        if behaviour.content is not None
        else "echo: " + FakeUpstream._last_user_text(body["messages"])
    )
    prompt, completion = behaviour.usage
    calls = [
        {
            "type": "tool_use",
            "id": f"toolu_fake{i}",
            "name": c["name"],
            "input": c.get("arguments", {}),
        }
        for i, c in enumerate(behaviour.tool_calls or [])
    ]
    stop = behaviour.finish_reason or ("tool_use" if calls else "end_turn")
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text or not calls else []
    content.extend(calls)
    cache_read, cache_write = behaviour.cache_tokens
    return {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": prompt,
            "output_tokens": completion,
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
        },
    }


def anthropic_events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The stream events (type, payload) of ``message``, as the Messages API streams it."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            for piece in _pieces(block["text"]):
                delta = {"type": "text_delta", "text": piece}
                events.append(
                    (
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                )
        else:
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {**block, "input": {}},
                    },
                )
            )
            arguments = orjson.dumps(block["input"]).decode()
            half = len(arguments) // 2
            for piece in (arguments[:half], arguments[half:]):
                delta = {"type": "input_json_delta", "partial_json": piece}
                events.append(
                    (
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def fake_token_count(prompt: Any) -> int:
    """What the fake's count_tokens answers for ``[system, messages, tools]``."""
    return len(orjson.dumps(prompt)) // 4 + 1


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)] or [""]
