"""A fake Vertex AI (Gemini ``generateContent``/``streamGenerateContent``) and OAuth token endpoint.

Requests need a bearer token this fake's ``/token`` endpoint issued (the
JWT-bearer grant a service-account ADC file performs; the assertion's RS256
signature is verified against the key of :meth:`service_account_file`) or one
of ``static_tokens``. ``ok(finish_reason="SAFETY")`` sends a Gemini finish reason;
``error(200, error_type="prompt_blocked")`` a blocked prompt (no candidates,
``promptFeedback.blockReason``); ``error(status)`` Google's error shape.
Streams are SSE (``alt=sse``) of whole ``GenerateContentResponse`` objects.
Claude on Vertex (publisher ``anthropic``) answers ``:rawPredict``,
``:streamRawPredict`` (SSE of Messages events) and ``count-tokens:rawPredict``
with the Anthropic fake's answers, requiring the body's ``anthropic_version``
and the model in the URL only.
``:predict`` serves the text-embedding models (``instances`` of ``content``, up
to 250, ``parameters.outputDimensionality``), rejecting what Vertex AI rejects.

It also plays the metadata server GKE Workload Identity gives a pod (what
google-auth asks when ``GCE_METADATA_HOST``/``GCE_METADATA_IP`` point here): the
``Metadata-Flavor: Google`` ping, the project id, and the bound service
account's email and access tokens (``metadata_email``, ``metadata_project``).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.fakes.fakes import Behaviour, anthropic_events, anthropic_message, fake_token_count
from tests.fakes.server import ScriptedServer, fake_vector, last_text, token_count

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


INSTANCE_FIELDS = {"content", "task_type", "title"}
PARAMETER_FIELDS = {"outputDimensionality", "autoTruncate"}
MAX_INSTANCES = 250


def predict_problem(body: Any) -> str | None:
    """Why Vertex AI would reject an embeddings ``:predict`` body (None: it is valid)."""
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
        return "Invalid JSON payload: `instances` is required and must be a list."
    instances = body["instances"]
    if not instances:
        return "The instances field is empty."
    if len(instances) > MAX_INSTANCES:
        return f"Number of instances ({len(instances)}) exceeds the limit of {MAX_INSTANCES}."
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict) or not isinstance(instance.get("content"), str):
            return f"instances[{index}].content is required and must be a string."
        extra = sorted(set(instance) - INSTANCE_FIELDS)
        if extra:
            return f"instances[{index}]: unknown field {extra[0]!r}."
    parameters = body.get("parameters") or {}
    extra = sorted(set(parameters) - PARAMETER_FIELDS)
    if extra:
        return f"parameters: unknown field {extra[0]!r}."
    size = parameters.get("outputDimensionality")
    if size is not None and (not isinstance(size, int) or not 1 <= size <= 768):
        return f"outputDimensionality must be between 1 and 768, got {size}."
    return None


class FakeVertex(ScriptedServer):
    """Vertex AI's Gemini endpoints plus Google's OAuth token endpoint, on loopback."""

    name = "vertex"

    def __init__(self) -> None:
        super().__init__()
        self.token_lifetime_s = 3600
        self.issued: list[str] = []
        self.static_tokens = {"test-token"}
        self.token_requests: list[dict[str, str]] = []
        self.service_account_key: Any = None  # an RSA public key: JWT assertions must verify
        self.metadata_email = "gateway@proj-1.iam.gserviceaccount.com"
        self.metadata_project = "proj-1"
        self.metadata_requests: list[str] = []

    def service_account_file(self, email: str = "gateway@proj-1.iam.gserviceaccount.com") -> str:
        """A service-account key file (JSON) whose ``token_uri`` is this fake's."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.service_account_key = key.public_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return orjson.dumps(
            {
                "type": "service_account",
                "project_id": "proj-1",
                "private_key_id": "fake-key-1",
                "private_key": pem,
                "client_email": email,
                "client_id": "1234567890",
                "token_uri": self.url + "/token",
            }
        ).decode()

    def _assertion_ok(self, assertion: str) -> bool:
        import base64

        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        if self.service_account_key is None or assertion.count(".") != 2:
            return False
        signed, _, signature = assertion.rpartition(".")
        try:
            self.service_account_key.verify(
                base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
                signed.encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            return False
        claims = orjson.loads(base64.urlsafe_b64decode(signed.split(".")[1] + "=="))
        # google-auth addresses every assertion to Google's token audience, whatever token_uri is.
        return claims.get("aud") == "https://oauth2.googleapis.com/token" and bool(
            claims.get("scope")
        )

    def routes(self, app: web.Application) -> None:
        app.router.add_post(
            "/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{call}",
            self._generate,
        )
        app.router.add_post("/token", self._token)
        app.router.add_get("/", self._metadata_ping)
        app.router.add_route("*", "/computeMetadata/v1/{path:.*}", self._metadata)

    # ------------------------------------------------------ metadata server

    @staticmethod
    async def _metadata_ping(request: web.Request) -> web.Response:
        return web.Response(text="ok", headers={"Metadata-Flavor": "Google"})

    async def _metadata(self, request: web.Request) -> web.Response:
        """The GKE metadata server's answers for the pod's bound service account."""
        path = request.match_info["path"]
        self.metadata_requests.append(path)
        if request.headers.get("Metadata-Flavor") != "Google":
            return web.Response(status=403, text="Missing Metadata-Flavor:Google header.")
        flavor = {"Metadata-Flavor": "Google"}
        account = path.removeprefix("instance/service-accounts/").split("/", 1)[0]
        if path == "project/project-id":
            return web.Response(text=self.metadata_project, headers=flavor)
        if not path.startswith("instance/service-accounts/") or account not in (
            "default",
            self.metadata_email,
        ):
            return web.Response(status=404, text="not found", headers=flavor)
        rest = path.removeprefix(f"instance/service-accounts/{account}").strip("/")
        if rest == "" and request.query.get("recursive") == "true":
            info = {
                "aliases": ["default"],
                "email": self.metadata_email,
                "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            }
            return web.json_response(info, headers=flavor)
        if rest == "email":
            return web.Response(text=self.metadata_email, headers=flavor)
        if rest == "token":
            token = f"ya29.metadata-{len(self.issued) + 1}"
            self.issued.append(token)
            answer = {
                "access_token": token,
                "expires_in": self.token_lifetime_s,
                "token_type": "Bearer",
            }
            return web.json_response(answer, headers=flavor)
        return web.Response(status=404, text="not found", headers=flavor)

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.token_requests.append(form)
        if form.get(
            "grant_type"
        ) != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not self._assertion_ok(
            form.get("assertion", "")
        ):
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Bad Request"}, status=400
            )
        token = f"ya29.fake-{len(self.issued) + 1}"
        self.issued.append(token)
        return web.json_response(
            {
                "access_token": token,
                "expires_in": self.token_lifetime_s,
                "token_type": "Bearer",
                "scope": "https://www.googleapis.com/auth/cloud-platform",
            }
        )

    @staticmethod
    def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        name = STATUS_NAMES.get(status, "UNKNOWN")
        return web.json_response(
            {"error": {"code": status, "message": message, "status": name}},
            status=status,
            headers=headers,
        )

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = await request.json(loads=orjson.loads)
        model, _, method = request.match_info["call"].partition(":")
        self.requests.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "project": request.match_info["project"],
                "location": request.match_info["location"],
                "model": model,
                "method": method,
                "headers": dict(request.headers),
                "json": body,
            }
        )
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.issued and token not in self.static_tokens:
            return self._error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            )
        behaviour: Behaviour = self.next_behaviour()
        if behaviour.status >= 300:
            headers = dict(behaviour.headers)
            if behaviour.retry_after is not None:
                headers["retry-after"] = behaviour.retry_after
            return self._error(behaviour.status, behaviour.message or "fake error", headers)
        if request.match_info["publisher"] == "anthropic":
            return await self._claude(request, model, method, body, behaviour)
        if method == "predict":
            return self._predict(model, body)
        prompt, completion = behaviour.usage
        usage = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": completion,
            "totalTokenCount": prompt + completion,
            "trafficType": "ON_DEMAND",
        }
        if behaviour.error_type == "prompt_blocked":
            blocked = {
                "promptFeedback": {"blockReason": "SAFETY", "blockReasonMessage": "blocked"},
                "usageMetadata": usage,
                "modelVersion": model,
            }
            return await self._send(request, method, [blocked])
        texts = [
            part["text"]
            for content in body.get("contents", [])
            if content.get("role") == "user"
            for part in content.get("parts", [])
            if "text" in part
        ]
        text = behaviour.content if behaviour.content is not None else last_text(texts)
        calls = [
            {"functionCall": {"name": c["name"], "args": c.get("arguments", {})}}
            for c in behaviour.tool_calls or []
        ]
        finish = behaviour.finish_reason or "STOP"
        candidates = (body.get("generationConfig") or {}).get("candidateCount", 1)
        if method == "generateContent":
            response = {
                "candidates": [
                    {
                        "index": i,
                        "content": {
                            "role": "model",
                            "parts": calls or [{"text": text if i == 0 else f"{text} #{i}"}],
                        },
                        "finishReason": finish,
                        "safetyRatings": [
                            {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}
                        ],
                    }
                    for i in range(candidates)
                ],
                "usageMetadata": usage,
                "modelVersion": model,
                "createTime": "2026-01-01T00:00:00.000000Z",
                "responseId": "fake-response-id",
            }
            return await self._send(request, method, [response])
        chunks: list[dict[str, Any]] = []
        pieces = [text[i : i + 6] for i in range(0, len(text), 6)] if not calls else []
        for piece in pieces:
            chunks.append(
                {"candidates": [{"content": {"role": "model", "parts": [{"text": piece}]}}]}
            )
        if calls:
            chunks.append({"candidates": [{"content": {"role": "model", "parts": calls}}]})
        chunks.append(
            {
                "candidates": [
                    {"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": finish}
                ],
                "usageMetadata": usage,
            }
        )
        for chunk in chunks:
            chunk["modelVersion"] = model
            chunk["responseId"] = "fake-response-id"
        return await self._send(request, method, chunks, behaviour.drop_after_events)

    async def _claude(
        self, request: web.Request, model: str, method: str, body: Any, behaviour: Behaviour
    ) -> web.StreamResponse:
        """Claude on Vertex: the Messages API behind rawPredict
        (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude)."""
        if not isinstance(body.get("anthropic_version"), str):
            return self._error(400, "anthropic_version: Field required")
        if model == "count-tokens":
            if not isinstance(body.get("model"), str):
                return self._error(400, "model: Field required")
            prompt = [body.get("system"), body.get("messages"), body.get("tools")]
            return web.json_response({"input_tokens": fake_token_count(prompt)})
        if "model" in body:
            return self._error(400, "model: Extra inputs are not permitted")
        if not isinstance(body.get("max_tokens"), int):
            return self._error(400, "max_tokens: Field required")
        message = anthropic_message(body, behaviour, "msg_vrtx_fake", model)
        if method == "rawPredict":
            return web.json_response(message)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for name, payload in anthropic_events(message):
            await response.write(
                b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
            )
        await response.write_eof()
        return response

    def _predict(self, model: str, body: Any) -> web.Response:
        """``:predict`` of a text-embedding model, validated as Vertex AI does."""
        problem = predict_problem(body)
        if problem:
            return self._error(400, problem)
        size = (body.get("parameters") or {}).get("outputDimensionality") or 768
        predictions = [
            {
                "embeddings": {
                    "values": fake_vector(instance["content"], size),
                    "statistics": {
                        "token_count": token_count(instance["content"]),
                        "truncated": False,
                    },
                }
            }
            for instance in body["instances"]
        ]
        characters = sum(len(i["content"]) for i in body["instances"])
        return web.json_response(
            {"predictions": predictions, "metadata": {"billableCharacterCount": characters}}
        )

    @staticmethod
    async def _send(
        request: web.Request,
        method: str,
        chunks: list[dict[str, Any]],
        drop_after: int | None = None,
    ) -> web.StreamResponse:
        if method == "generateContent":
            return web.json_response(chunks[0])
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for index, chunk in enumerate(chunks):
            if drop_after is not None and index >= drop_after:
                assert request.transport is not None
                request.transport.abort()
                return response
            await response.write(b"data: " + orjson.dumps(chunk) + b"\r\n\r\n")
        await response.write_eof()
        return response
