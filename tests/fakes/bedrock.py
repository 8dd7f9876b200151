"""A fake Bedrock Runtime: Converse, ConverseStream and InvokeModel, verifying SigV4 like AWS.

InvokeModel serves the embeddings models (Titan Text Embeddings V1/V2, Cohere
Embed), rejecting bodies those models reject (unknown keys, bad ``dimensions``,
missing ``input_type``) with a ``ValidationException``, and Claude models through
the Messages API (InvokeModel, InvokeModelWithResponseStream whose ``chunk``
events carry each Messages event base64-encoded, and CountTokens).

Every request's signature is recomputed with botocore from the headers it
lists as signed, the raw path and the body, with the secret of the access key
it names (``credentials``); a wrong or missing signature gets AWS's 403
(``InvalidSignatureException`` / ``UnrecognizedClientException``). Streams use
the binary event-stream framing (prelude, string headers, payload, CRCs).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from tests.fakes.fakes import Behaviour, anthropic_events, anthropic_message, fake_token_count
from tests.fakes.server import ScriptedServer, fake_vector, last_text, token_count

EXCEPTIONS_BY_STATUS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message (all headers strings, type 7)."""
    encoded = b""
    for name, value in headers.items():
        key, raw = name.encode(), value.encode()
        encoded += bytes([len(key)]) + key + b"\x07" + struct.pack(">H", len(raw)) + raw
    prelude = struct.pack(">II", 16 + len(encoded) + len(payload), len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(kind: str, payload: dict[str, Any]) -> bytes:
    """A ConverseStream event message."""
    return event_message(
        {":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
        orjson.dumps(payload),
    )


def exception(kind: str, message: str) -> bytes:
    """An in-stream exception message (``kind`` in lower camel case, as AWS sends it)."""
    return event_message(
        {
            ":exception-type": kind,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        orjson.dumps({"message": message}),
    )


TITAN_V2_FIELDS = {"inputText", "dimensions", "normalize", "embeddingTypes"}
COHERE_FIELDS = {"texts", "images", "input_type", "truncate", "embedding_types"}
COHERE_INPUT_TYPES = {"search_document", "search_query", "classification", "clustering"}


def titan_problem(body: dict[str, Any], v2: bool) -> str | None:
    """Why Titan Text Embeddings would reject ``body`` (None: it is valid)."""
    allowed = TITAN_V2_FIELDS if v2 else {"inputText"}
    extra = sorted(set(body) - allowed)
    if extra:
        return f"extraneous key [{extra[0]}] is not permitted"
    text = body.get("inputText")
    if not isinstance(text, str) or not text:
        return (
            "required key [inputText] not found"
            if text is None
            else "#/inputText: expected minLength: 1"
        )
    if "dimensions" in body and body["dimensions"] not in (256, 512, 1024):
        return f"#/dimensions: {body['dimensions']} is not a valid enum value"
    if "normalize" in body and not isinstance(body["normalize"], bool):
        return "#/normalize: expected type: Boolean"
    return None


def cohere_problem(body: dict[str, Any]) -> str | None:
    """Why Cohere Embed on Bedrock would reject ``body`` (None: it is valid)."""
    extra = sorted(set(body) - COHERE_FIELDS)
    if extra:
        return f"extraneous key [{extra[0]}] is not permitted"
    texts = body.get("texts")
    if not isinstance(texts, list) or not texts or len(texts) > 96:
        return "#/texts: expected 1 to 96 items"
    if not all(isinstance(t, str) for t in texts):
        return "#/texts: expected type: String"
    if body.get("input_type") not in COHERE_INPUT_TYPES:
        return "#/input_type: is not a valid enum value"
    return None


def claude_problem(body: dict[str, Any], *, max_tokens: bool = True) -> str | None:
    """Why Bedrock would reject a Claude InvokeModel body (None: it is valid)."""
    if not isinstance(body.get("anthropic_version"), str):
        return "#: required key [anthropic_version] not found"
    if "model" in body:
        return "#: extraneous key [model] is not permitted"
    if max_tokens and not isinstance(body.get("max_tokens"), int):
        return "#: required key [max_tokens] not found"
    if not isinstance(body.get("messages"), list):
        return "#: required key [messages] not found"
    return None


class FakeBedrock(ScriptedServer):
    """Bedrock Runtime's Converse API on loopback, checking every SigV4 signature."""

    name = "bedrock"

    def __init__(self, credentials: dict[str, str] | None = None, region: str = "us-east-1"):
        super().__init__()
        self.credentials = dict(credentials or {"AKIDFAKE": "fake-secret"})
        self.region = region
        self.rejected: list[str] = []
        self.sts_lifetime_s = 3600
        self.web_identity_tokens: list[str] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/model/{model}/converse", self._converse)
        app.router.add_post("/model/{model}/converse-stream", self._converse)
        app.router.add_post("/model/{model}/invoke", self._invoke)
        app.router.add_post("/model/{model}/invoke-with-response-stream", self._invoke)
        app.router.add_post("/model/{model}/count-tokens", self._count_tokens)
        app.router.add_post("/", self._sts)

    # ------------------------------------------------------------ STS (IRSA)

    async def _sts(self, request: web.Request) -> web.Response:
        """AssumeRoleWithWebIdentity: new temporary keys the Converse routes then accept."""
        form = await request.post()
        if form.get("Action") != "AssumeRoleWithWebIdentity":
            return web.Response(status=400, text="unsupported action")
        token = str(form.get("WebIdentityToken"))
        self.web_identity_tokens.append(token)
        number = len(self.web_identity_tokens)
        key, secret, session = f"ASIAFAKE{number}", f"sts-secret-{number}", f"sts-session-{number}"
        self.credentials[key] = secret
        expiry = datetime.now(UTC) + timedelta(seconds=self.sts_lifetime_s)
        xml = f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>{key}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>{session}</SessionToken>
      <Expiration>{expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>system:serviceaccount:aigw:gateway</SubjectFromWebIdentityToken>
    <AssumedRoleUser>
      <Arn>{form.get("RoleArn")}/{form.get("RoleSessionName")}</Arn>
      <AssumedRoleId>AROAFAKE:{form.get("RoleSessionName")}</AssumedRoleId>
    </AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>fake-sts</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"""
        return web.Response(text=xml, content_type="text/xml")

    # ------------------------------------------------------------ SigV4

    def verify(
        self,
        request: web.Request,
        body: bytes,
        service_name: str = "bedrock",
        region_name: str | None = None,
    ) -> str | None:
        """None if the signature (for ``service_name`` in ``region_name``, default the fake's
        region) is right, else the AWS exception name."""
        auth = request.headers.get("authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return "MissingAuthenticationTokenException"
        fields = dict(
            part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 ") :].split(",")
        )
        access_key, date, region, service, _ = fields["Credential"].split("/")
        secret = self.credentials.get(access_key)
        if secret is None:
            return "UnrecognizedClientException"
        stamp = request.headers.get("x-amz-date", "")
        if (
            region != (region_name or self.region)
            or service != service_name
            or not stamp.startswith(date)
        ):
            return "InvalidSignatureException"
        content_hash = request.headers.get("x-amz-content-sha256")
        if content_hash and content_hash != hashlib.sha256(body).hexdigest():
            return "InvalidSignatureException"
        signed = fields["SignedHeaders"].split(";")
        headers = {name: request.headers.get(name, "") for name in signed}
        recomputed = AWSRequest(
            method=request.method,
            url=f"http://{request.headers['host']}{request.raw_path}",
            headers=headers,
            data=body,
        )
        recomputed.context["timestamp"] = stamp
        token = request.headers.get("x-amz-security-token")
        signer = SigV4Auth(ReadOnlyCredentials(access_key, secret, token), service, region)
        canonical = signer.canonical_request(recomputed)
        expected = signer.signature(signer.string_to_sign(recomputed, canonical), recomputed)
        return None if expected == fields["Signature"] else "InvalidSignatureException"

    # ------------------------------------------------------------ Converse

    async def _admit(self, request: web.Request) -> tuple[Any, Any, web.Response | None]:
        """Record the request, check its signature and play the scripted behaviour.

        (parsed JSON body or None, the behaviour, the error response to send if any)
        """
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        self.requests.append(
            {
                "path": request.raw_path,
                "model": request.match_info["model"],
                "headers": dict(request.headers),
                "json": body,
            }
        )
        problem = self.verify(request, raw)
        if problem:
            self.rejected.append(problem)
            error = self._error(403, problem, "The request signature we calculated does not match")
            return body, None, error
        behaviour = self.next_behaviour()
        if behaviour.status >= 300:
            name = behaviour.error_type or EXCEPTIONS_BY_STATUS.get(
                behaviour.status, "InternalServerException"
            )
            error = self._error(
                behaviour.status, name, behaviour.message or f"fake {name}", behaviour.headers
            )
            return body, behaviour, error
        return body, behaviour, None

    async def _converse(self, request: web.Request) -> web.StreamResponse:
        body, behaviour, error = await self._admit(request)
        if error is not None:
            return error
        if not isinstance(body, dict):
            return self._error(400, "ValidationException", "Malformed input request")
        stream = request.path.endswith("/converse-stream")
        texts = [
            block["text"]
            for message in body.get("messages", [])
            if message.get("role") == "user"
            for block in message.get("content", [])
            if "text" in block
        ]
        text = behaviour.content if behaviour.content is not None else last_text(texts)
        calls = behaviour.tool_calls or []
        stop = behaviour.finish_reason or ("tool_use" if calls else "end_turn")
        prompt, completion = behaviour.usage
        usage = {
            "inputTokens": prompt,
            "outputTokens": completion,
            "totalTokens": prompt + completion,
        }
        if not stream:
            content: list[dict[str, Any]] = [{"text": text}] if text and not calls else []
            content += [
                {
                    "toolUse": {
                        "toolUseId": f"tooluse_fake{i}",
                        "name": c["name"],
                        "input": c.get("arguments", {}),
                    }
                }
                for i, c in enumerate(calls)
            ]
            return web.json_response(
                {
                    "output": {"message": {"role": "assistant", "content": content}},
                    "stopReason": stop,
                    "usage": usage,
                    "metrics": {"latencyMs": 12},
                },
                headers={"x-amzn-RequestId": "fake-request-id"},
            )
        events = [event("messageStart", {"role": "assistant"})]
        block = 0
        if text and not calls:
            pieces = [text[i : i + 5] for i in range(0, len(text), 5)] or [""]
            for piece in pieces:
                events.append(
                    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
                )
            events.append(event("contentBlockStop", {"contentBlockIndex": 0}))
            block = 1
        for i, call in enumerate(calls):
            index = block + i
            arguments = orjson.dumps(call.get("arguments", {})).decode()
            events.append(
                event(
                    "contentBlockStart",
                    {
                        "contentBlockIndex": index,
                        "start": {
                            "toolUse": {"toolUseId": f"tooluse_fake{i}", "name": call["name"]}
                        },
                    },
                )
            )
            half = len(arguments) // 2
            for part in (arguments[:half], arguments[half:]):
                events.append(
                    event(
                        "contentBlockDelta",
                        {"contentBlockIndex": index, "delta": {"toolUse": {"input": part}}},
                    )
                )
            events.append(event("contentBlockStop", {"contentBlockIndex": index}))
        events.append(event("messageStop", {"stopReason": stop}))
        events.append(event("metadata", {"usage": usage, "metrics": {"latencyMs": 12}}))
        response = web.StreamResponse(
            headers={
                "content-type": "application/vnd.amazon.eventstream",
                "x-amzn-RequestId": "fake-request-id",
                **behaviour.headers,
            }
        )
        await response.prepare(request)
        for index, message in enumerate(events):
            if behaviour.stream_error_after is not None and index == behaviour.stream_error_after:
                await response.write(
                    exception(behaviour.error_type or "throttlingException", "slow down")
                )
                break
            if behaviour.drop_after_events is not None and index >= behaviour.drop_after_events:
                assert request.transport is not None
                request.transport.abort()
                return response
            if behaviour.chunk_delay and index:
                await asyncio.sleep(behaviour.chunk_delay)
            await response.write(message)
        await response.write_eof()
        return response

    # ------------------------------------------------------------ InvokeModel (embeddings)

    async def _invoke(self, request: web.Request) -> web.StreamResponse:
        """InvokeModel for Titan Text Embeddings and Cohere Embed, validated like Bedrock."""
        body, behaviour, error = await self._admit(request)
        if error is not None:
            return error
        model = request.match_info["model"]
        if not isinstance(body, dict):
            return self._error(400, "ValidationException", "Malformed input request")
        if "anthropic.claude" in model:
            return await self._claude(request, model, body, behaviour)
        if "cohere.embed" in model:
            invalid = cohere_problem(body)
        elif "amazon.titan-embed-text" in model:
            invalid = titan_problem(body, v2="-v1" not in model)
        else:
            return self._error(
                400, "ValidationException", f"The provided model identifier is invalid: {model}"
            )
        if invalid:
            return self._error(400, "ValidationException", f"Malformed input request: {invalid}")
        headers = {"x-amzn-RequestId": "fake-request-id", "X-Amzn-Bedrock-Invocation-Latency": "9"}
        if "cohere.embed" in model:
            tokens = sum(token_count(t) for t in body["texts"])
            headers["X-Amzn-Bedrock-Input-Token-Count"] = str(tokens)
            return web.json_response(
                {
                    "embeddings": [fake_vector(t, 1024) for t in body["texts"]],
                    "id": "fake-embed-id",
                    "response_type": "embeddings_floats",
                    "texts": body["texts"],
                },
                headers=headers,
            )
        tokens = token_count(body["inputText"])
        headers["X-Amzn-Bedrock-Input-Token-Count"] = str(tokens)
        size = body.get("dimensions", 1024) if "-v1" not in model else 1536
        return web.json_response(
            {
                "embedding": fake_vector(body["inputText"], size),
                "embeddingsByType": {"float": fake_vector(body["inputText"], size)},
                "inputTextTokenCount": tokens,
            },
            headers=headers,
        )

    # ------------------------------------------------------------ Claude (Messages API)

    async def _claude(
        self, request: web.Request, model: str, body: dict[str, Any], behaviour: Any
    ) -> web.StreamResponse:
        """InvokeModel[WithResponseStream] of a Claude model: the Messages API body with
        ``anthropic_version`` and no ``model``; the stream's ``chunk`` events carry each
        Messages event as base64 ``bytes``."""
        problem = claude_problem(body)
        if problem:
            return self._error(400, "ValidationException", f"Malformed input request: {problem}")
        message = anthropic_message(body, behaviour, "msg_bdrk_fake", model)
        headers = {"x-amzn-RequestId": "fake-request-id"}
        if not request.path.endswith("/invoke-with-response-stream"):
            return web.json_response(message, headers=headers)
        response = web.StreamResponse(
            headers={"content-type": "application/vnd.amazon.eventstream", **headers}
        )
        await response.prepare(request)
        for index, (_, payload) in enumerate(anthropic_events(message)):
            if behaviour.stream_error_after is not None and index == behaviour.stream_error_after:
                kind = behaviour.error_type or "throttlingException"
                await response.write(exception(kind, "slow down"))
                break
            if behaviour.chunk_delay and index:
                await asyncio.sleep(behaviour.chunk_delay)
            data = base64.b64encode(orjson.dumps(payload)).decode()
            await response.write(event("chunk", {"bytes": data}))
        await response.write_eof()
        return response

    async def _count_tokens(self, request: web.Request) -> web.Response:
        """CountTokens: ``{"input": {"invokeModel": {"body": base64(InvokeModel body)}}}``."""
        body, _, error = await self._admit(request)
        if error is not None:
            return error
        try:
            invoke = orjson.loads(base64.b64decode(body["input"]["invokeModel"]["body"]))
        except (KeyError, TypeError, ValueError):
            return self._error(400, "ValidationException", "input.invokeModel.body is required")
        problem = claude_problem(invoke, max_tokens=False)
        if problem:
            return self._error(400, "ValidationException", f"Malformed input request: {problem}")
        prompt = [invoke.get("system"), invoke.get("messages"), invoke.get("tools")]
        return web.json_response({"inputTokens": fake_token_count(prompt)})

    @staticmethod
    def _error(
        status: int, name: str, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.Response(
            status=status,
            body=orjson.dumps({"message": message}),
            content_type="application/json",
            headers={
                "x-amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/",
                "x-amzn-RequestId": "fake-request-id",
                **(headers or {}),
            },
        )


__all__ = [
    "Behaviour",
    "FakeBedrock",
    "event",
    "event_message",
    "exception",
    "fake_vector",
    "token_count",
]
