"""Fakes of the three clouds' secret stores, on loopback, each checking its caller's identity.

* AWS Secrets Manager ``GetSecretValue`` (JSON 1.1 protocol, ``X-Amz-Target``),
  SigV4-signed for ``secretsmanager`` with keys the Bedrock fake's STS issued
  (IRSA) or configured; errors as ``{"__type": ..., "message": ...}``.
* Azure Key Vault "Get Secret" (``GET /secrets/{name}[/{version}]?api-version=``)
  with a bearer token the Azure fake's Entra endpoint issued for
  ``https://vault.azure.net/.default``; answers ``{"value", "id", "attributes"}``.
* Google Secret Manager ``AccessSecretVersion``
  (``GET /v1/projects/{p}/secrets/{s}/versions/{v}:access``) with a token the
  Vertex fake's metadata server or token endpoint issued; answers
  ``{"name", "payload": {"data": base64}}``.

The shapes are those of each service's API reference; ``tests/gateway/governance/test_owner_secret.py``
checks the AWS one with boto3 itself.
"""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from tests.fakes.azure import FakeAzureOpenAI
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.server import ScriptedServer
from tests.fakes.vertex import FakeVertex

KEY_VAULT_SCOPE = "https://vault.azure.net/.default"


class FakeSecretStores(ScriptedServer):
    """One loopback server answering as Secrets Manager, Key Vault and Secret Manager.

    ``secrets`` maps a reference (an ARN, or the path of a Key Vault or Secret
    Manager URL) to the secret's text; ``reads`` records ``(store, reference)``
    of every successful read, ``refused`` the reasons of the others.
    """

    name = "secret-stores"

    def __init__(self, bedrock: FakeBedrock, azure: FakeAzureOpenAI, vertex: FakeVertex) -> None:
        super().__init__()
        self.bedrock, self.azure, self.vertex = bedrock, azure, vertex
        self.secrets: dict[str, str] = {}
        self.reads: list[tuple[str, str]] = []
        self.refused: list[str] = []

    def put(self, reference: str, value: str) -> None:
        """Store ``value`` under an ARN or a Key Vault / Secret Manager URL (its path)."""
        key = reference if reference.startswith("arn:") else urlsplit(reference).path
        self.secrets[key] = value

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/", self._secrets_manager)
        app.router.add_get("/secrets/{name}", self._key_vault)
        app.router.add_get("/secrets/{name}/{version}", self._key_vault)
        app.router.add_get("/v1/projects/{project}/secrets/{secret}/versions/{rest}", self._google)

    # ------------------------------------------------------- AWS Secrets Manager

    async def _secrets_manager(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if request.headers.get("x-amz-target") != "secretsmanager.GetSecretValue":
            return self._aws_error(400, "InvalidAction", "only GetSecretValue is faked")
        secret_id = str(orjson.loads(raw).get("SecretId", ""))
        # Secrets Manager signs in the secret's region (botocore takes it from the ARN here).
        region = secret_id.split(":")[3] if secret_id.count(":") >= 6 else None
        problem = self.bedrock.verify(
            request, raw, service_name="secretsmanager", region_name=region
        )
        if problem:
            self.refused.append(f"aws: {problem}")
            return self._aws_error(400, problem, "The security token included is invalid.")
        if secret_id not in self.secrets:
            self.refused.append(f"aws: no secret {secret_id}")
            return self._aws_error(
                400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret."
            )
        self.reads.append(("aws", secret_id))
        name = secret_id.split(":secret:", 1)[-1]
        return web.json_response(
            {
                "ARN": secret_id,
                "Name": name,
                "VersionId": "c3c2b5e6-0000-4000-8000-000000000001",
                "SecretString": self.secrets[secret_id],
                "VersionStages": ["AWSCURRENT"],
                "CreatedDate": time.time(),
            },
            content_type="application/x-amz-json-1.1",
        )

    @staticmethod
    def _aws_error(status: int, kind: str, message: str) -> web.Response:
        return web.json_response(
            {"__type": kind, "message": message},
            status=status,
            content_type="application/x-amz-json-1.1",
        )

    # ------------------------------------------------------------ Key Vault

    async def _key_vault(self, request: web.Request) -> web.Response:
        if not request.query.get("api-version"):
            return self._google_or_vault_error(400, "BadParameter", "api-version is required")
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.azure.scopes.get(token) != KEY_VAULT_SCOPE:
            self.refused.append(f"azure: token for {self.azure.scopes.get(token)!r}")
            return self._google_or_vault_error(401, "Unauthorized", "AKV10022: Invalid audience")
        path = request.path
        if path not in self.secrets:
            self.refused.append(f"azure: no secret {path}")
            return self._google_or_vault_error(404, "SecretNotFound", "A secret was not found")
        self.reads.append(("azure", path))
        name = request.match_info["name"]
        version = request.match_info.get("version") or "4387e9f3d6e14c459867679a90fd0f79"
        return web.json_response(
            {
                "value": self.secrets[path],
                "id": f"https://{request.host}/secrets/{name}/{version}",
                "attributes": {
                    "enabled": True,
                    "created": 1493938410,
                    "updated": 1493938410,
                    "recoveryLevel": "Recoverable",
                },
            }
        )

    # ------------------------------------------------------ Google Secret Manager

    async def _google(self, request: web.Request) -> web.Response:
        if not request.match_info["rest"].endswith(":access"):
            return self._google_or_vault_error(404, "NOT_FOUND", "only :access is faked")
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.vertex.issued:
            self.refused.append("gcp: unknown token")
            return self._google_or_vault_error(401, "UNAUTHENTICATED", "invalid credentials")
        path = request.path
        if path not in self.secrets:
            self.refused.append(f"gcp: no secret {path}")
            return self._google_or_vault_error(404, "NOT_FOUND", "Secret Version not found")
        self.reads.append(("gcp", path))
        name = path.removeprefix("/v1/").removesuffix(":access")
        data = base64.b64encode(self.secrets[path].encode()).decode()
        return web.json_response({"name": name, "payload": {"data": data}})

    @staticmethod
    def _google_or_vault_error(status: int, code: str, message: str) -> web.Response:
        # Both answer {"error": {"code", "message"}} (Google adds "status").
        body: dict[str, Any] = {"error": {"code": code, "message": message}}
        return web.json_response(body, status=status)
