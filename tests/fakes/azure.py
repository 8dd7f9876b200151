"""A fake Azure OpenAI resource and a fake Microsoft Entra token endpoint.

Chat completions and embeddings on ``/openai/deployments/{name}/...`` (an
``api-version`` query is required, as Azure requires it), authenticated by
``api-key`` or by a bearer token this fake's Entra endpoint issued. Responses are
OpenAI's shape plus Azure's filter results; streams start with Azure's
prompt-filter-only chunk; ``error(400, error_type="content_filter")`` sends
Azure's content-management error. The Entra endpoint
(``/{tenant}/oauth2/v2.0/token``) checks the client-assertion grant.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import responses
from tests.fakes.fakes import Behaviour
from tests.fakes.server import ScriptedServer, last_text

FILTER_OK = {
    name: {"filtered": False, "severity": "safe"}
    for name in ("hate", "self_harm", "sexual", "violence")
}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def jwt_shaped(claims: dict[str, Any]) -> str:
    """An unsigned JWT-shaped token carrying ``claims`` (what a client may read of one)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    return f"{part({'typ': 'JWT', 'alg': 'none'})}.{part(claims)}.fake-signature"


class FakeAzureOpenAI(ScriptedServer):
    """Azure OpenAI data plane plus Entra's token endpoint, on loopback."""

    name = "azure-openai"

    def __init__(self, api_key: str = "azure-key", client_id: str = "client-id") -> None:
        super().__init__()
        self.api_key = api_key
        self.client_id = client_id
        self.assertion = "federated-jwt"
        self.token_lifetime_s = 3600
        self.issued: list[str] = []
        self.token_requests: list[dict[str, str]] = []
        self.scopes: dict[str, str] = {}
        """Issued token -> the scope it was requested for."""
        self.object_id: str | None = None
        """Set: tokens are JWT-shaped with this ``oid`` claim, as Entra's are (Azure Managed
        Redis takes the ``oid`` as the user name)."""
        self.on_issue: list[Any] = []
        """Called with each issued token (a test's Redis learns it as the ACL password)."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self._embeddings)
        # The v1 surface, where Azure serves the Responses API (no api-version; the
        # deployment is the body's model).
        app.router.add_post("/openai/v1/responses", self._responses)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)

    # ------------------------------------------------------------ Entra

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        form["tenant"] = request.match_info["tenant"]
        self.token_requests.append(form)
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_assertion_type") != ASSERTION_TYPE
            or form.get("client_id") != self.client_id
            or form.get("client_assertion") != self.assertion
        ):
            return web.json_response(
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS700211: No matching federated identity record found",
                },
                status=401,
            )
        token = f"entra-token-{len(self.issued) + 1}"
        if self.object_id is not None:
            token = jwt_shaped({"oid": self.object_id, "scp": form.get("scope"), "n": token})
        self.issued.append(token)
        for callback in self.on_issue:
            callback(token)
        self.scopes[token] = form.get("scope", "")
        return web.json_response(
            {"token_type": "Bearer", "expires_in": self.token_lifetime_s, "access_token": token}
        )

    # ------------------------------------------------------------ data plane

    def _refuse(self, request: web.Request) -> web.Response | None:
        if not request.query.get("api-version") and "/openai/v1/" not in request.path:
            return self._azure_error(404, "404", "Resource not found")
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if request.headers.get("api-key") == self.api_key or bearer in self.issued:
            return None
        return self._azure_error(
            401,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
            "provide a valid key for an active subscription and use a correct regional API "
            "endpoint for your resource.",
        )

    async def _receive(
        self, request: web.Request, by_model: bool = False
    ) -> tuple[dict[str, Any], web.Response | None]:
        """The request's body, recorded; and Azure's refusal of its URL or key, if any.
        ``by_model``: the v1 surface names the deployment in the body's ``model``."""
        body = await request.json(loads=orjson.loads)
        deployment = body.get("model") if by_model else request.match_info["deployment"]
        self.requests.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "deployment": deployment,
                "headers": dict(request.headers),
                "json": body,
            }
        )
        return body, self._refuse(request)

    @staticmethod
    def _azure_error(status: int, code: str, message: str, **extra: Any) -> web.Response:
        return web.json_response(
            {"error": {"code": code, "message": message, **extra}}, status=status
        )

    def _scripted_error(self, behaviour: Behaviour) -> web.Response:
        headers = dict(behaviour.headers)
        if behaviour.retry_after is not None:
            headers["retry-after"] = behaviour.retry_after
        if behaviour.error_type == "content_filter":
            body = {
                "error": {
                    "message": "The response was filtered due to the prompt triggering Azure "
                    "OpenAI's content management policy.",
                    "type": None,
                    "param": "prompt",
                    "code": "content_filter",
                    "status": 400,
                    "innererror": {
                        "code": "ResponsibleAIPolicyViolation",
                        "content_filter_result": {
                            **FILTER_OK,
                            "violence": {"filtered": True, "severity": "high"},
                            "jailbreak": {"filtered": True, "detected": True},
                        },
                    },
                }
            }
        else:
            body = {
                "error": {
                    "code": behaviour.error_type or str(behaviour.status),
                    "message": behaviour.message or f"fake Azure error {behaviour.status}",
                }
            }
        return web.json_response(body, status=behaviour.status, headers=headers)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body, refused = await self._receive(request)
        if refused is not None:
            return refused
        behaviour = self.next_behaviour()
        if behaviour.status >= 300:
            return self._scripted_error(behaviour)
        texts = [
            m["content"]
            for m in body["messages"]
            if m.get("role") == "user" and isinstance(m.get("content"), str)
        ]
        text = behaviour.content if behaviour.content is not None else last_text(texts)
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
        prompt, completion = behaviour.usage
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        ident, created, model = "chatcmpl-azurefake", int(time.time()), "gpt-4o-mini-2024-07-18"
        prompt_filter = [{"prompt_index": 0, "content_filter_results": FILTER_OK}]
        if not body.get("stream"):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": None if calls else text,
                "refusal": None,
            }
            if calls:
                message["tool_calls"] = calls
            return web.json_response(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "prompt_filter_results": prompt_filter,
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "logprobs": None,
                            "finish_reason": finish,
                            "content_filter_results": FILTER_OK,
                        }
                    ],
                    "usage": usage,
                    "system_fingerprint": "fp_fake",
                }
            )

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            payload = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
            return b"data: " + orjson.dumps(payload) + b"\n\n"

        def delta(d: dict[str, Any], finish_reason: str | None = None) -> bytes:
            return chunk(
                [
                    {
                        "index": 0,
                        "delta": d,
                        "finish_reason": finish_reason,
                        "content_filter_results": {},
                    }
                ]
            )

        events = [
            # Azure's first chunk: no choices, only the prompt's filter results.
            b"data: "
            + orjson.dumps(
                {
                    "choices": [],
                    "created": 0,
                    "id": "",
                    "model": "",
                    "object": "",
                    "prompt_filter_results": prompt_filter,
                }
            )
            + b"\n\n",
            delta({"role": "assistant", "content": ""}),
        ]
        for i, call in enumerate(calls):
            events.append(
                delta(
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
            events.append(
                delta(
                    {
                        "tool_calls": [
                            {"index": i, "function": {"arguments": call["function"]["arguments"]}}
                        ]
                    }
                )
            )
        if not calls:
            for start in range(0, len(text), 6):
                events.append(delta({"content": text[start : start + 6]}))
        events.append(delta({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(chunk([], usage=usage))
        events.append(b"data: [DONE]\n\n")
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", **behaviour.headers}
        )
        await response.prepare(request)
        for event in events:
            await response.write(event)
        await response.write_eof()
        return response

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body, refused = await self._receive(request, by_model=True)
        if refused is not None:
            return refused
        behaviour = self.next_behaviour()
        if behaviour.status >= 300:
            return self._scripted_error(behaviour)
        refusal = responses.previous_response_error(body)
        if refusal is not None:
            return web.json_response(refusal, status=400)
        response, events = responses.reply(body, behaviour)
        if response is not None:
            # Azure adds its content filter verdicts to OpenAI's response object.
            response["content_filters"] = [{"blocked": False, "source_type": "prompt"}]
            return web.json_response(response)
        stream = web.StreamResponse(
            headers={"content-type": "text/event-stream", **behaviour.headers}
        )
        await stream.prepare(request)
        for event in events:
            await stream.write(event)
        await stream.write_eof()
        return stream

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body, refused = await self._receive(request)
        if refused is not None:
            return refused
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                    for i in range(len(inputs))
                ],
                "model": "text-embedding-3-small",
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            }
        )
