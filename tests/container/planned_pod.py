"""The pod a plan describes, run under podman against local stand-ins for the cloud.

:class:`PodBench` holds what a cluster would provide: a TLS Redis that
requires AUTH (as ElastiCache, Memorystore and Azure Managed Redis do), a TLS
PostgreSQL that requires passwords, and fakes of every provider's wire format
(Bedrock with STS for IRSA, Azure OpenAI with Entra, Vertex AI with GKE's
metadata server, OpenAI, Anthropic). :meth:`PodBench.run_track` takes one
cluster's migration Job and Deployment from a plan and checks, as a kubelet
and a client would, that the pod does what the plan says:

1. the Job's container runs, as its own ServiceAccount's cloud identity, to
   completion against PostgreSQL: it reads the database owner from the fake
   of the cloud's secret store (Secrets Manager, Key Vault, Secret Manager)
   with that identity, migrates as the owner and creates the gateway's role;
2. the Deployment's container starts; its startup, readiness and liveness
   probes (the planned paths and ports) answer;
3. the cluster's HTTPS ``HTTPRoute`` is followed to the container as Envoy
   would (backendRef -> Service port -> targetPort -> container port, admitted
   by a NetworkPolicy), and every request below goes to that port; the route's
   health path (stable track only) answers ready there;
4. every environment variable the plan sets has an observable effect (an
   unread variable fails the test), every provider of the cluster's catalogue
   has credentials, and a request for every model of the catalogue reaches the
   fake of its first deployment; failing those over reaches the next one,
   with the planned provider key.

What the test substitutes, the way an operator testing a cluster would: the
image (the one built here), the Secret's endpoints and credentials (local
services), what the clouds' webhooks inject for workload identity, the
endpoints, through the ``${VARIABLE:-default}`` the catalogue reads them from,
and the host of the owner secret's URL (Key Vault, Secret Manager).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
import yaml
from openai import OpenAI

from gateway_app.governance.keys import hash_key, new_key
from infra.offline import Plan, RecordedResource
from tests.container.conftest import Podman
from tests.container.kubelet import (
    HOST_LOOPBACK,
    PlannedPod,
    RouteBackend,
    Substitutions,
    clean,
    planned_pod,
    podman_run_args,
    probe_once,
    probe_url,
    route_backend,
    wait_for_probe,
)
from tests.fakes.azure import FakeAzureOpenAI
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.fakes import FakeUpstream, error
from tests.fakes.secret_stores import FakeSecretStores
from tests.fakes.vertex import FakeVertex
from tests.gateway.governance.services import PostgresServer, RedisServer
from tests.ports import kept_port

REDIS_HOST = "redis.aigw.test"
POSTGRES_HOST = "postgres.aigw.test"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
IRSA_TOKEN = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
AZURE_TOKEN = "/var/run/secrets/azure/tokens/azure-identity-token"
AWS_REGION = "us-east-1"
OWNER = "gateway_admin"
"""The database owner the bench keeps in the secret store (the clouds' admin login)."""
_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}$")


def track_workloads(
    plan: Plan, cloud: str, track: str
) -> tuple[RecordedResource, RecordedResource]:
    """The migration Job and the Deployment of one track on one cloud's cluster."""

    def of(type_token: str) -> RecordedResource:
        (found,) = [
            r
            for r in plan.of_type(type_token)
            if r.get("metadata.labels", {}).get("ai-gateway/track") == track
            and any(
                a.type == "ai-gateway:k8s:GatewayDeployment" and a.name == f"gateway-{cloud}"
                for a in plan.ancestors(r)
            )
        ]
        return found

    return of(JOB), of(DEPLOYMENT)


@dataclass
class Fakes:
    """One fake per provider type, on the host's loopback."""

    bedrock: FakeBedrock
    azure_openai: FakeAzureOpenAI
    vertex: FakeVertex
    openai: FakeUpstream
    anthropic: FakeUpstream

    def of(self, provider_type: str) -> Any:
        return getattr(self, provider_type)

    def url_for_pod(self, provider_type: str) -> str:
        """The fake's base URL (the one its SDK would use) as the pod reaches it."""
        return self.of(provider_type).url.replace("127.0.0.1", HOST_LOOPBACK)

    def reset(self) -> None:
        for fake in (self.bedrock, self.azure_openai, self.vertex, self.openai, self.anthropic):
            fake.reset()


@dataclass
class PodReport:
    """What a run observed (for the assertions of a caller)."""

    models: list[str]
    served: dict[str, str]
    """Model -> the deployment id that answered it (``x-aigw-deployment``)."""
    failovers: list[str]
    """Deployment ids reached by failing the ones before them over, in order."""
    observed: set[str]
    """The planned environment variables whose effect was seen."""


class PodBench:
    """Local Redis, PostgreSQL and provider fakes, and the runs of planned pods on them."""

    def __init__(self, podman: Podman, image: str) -> None:
        self.podman = podman
        self.image = image
        self._stack = ExitStack()
        self.redis_password = secrets.token_hex(16)
        self.redis = RedisServer(tls=True, names=[REDIS_HOST], password=self.redis_password)
        self._stack.callback(self.redis.stop)
        self.postgres = PostgresServer(tls=True, names=[POSTGRES_HOST])
        self._stack.callback(self.postgres.destroy)
        self.fakes = Fakes(
            bedrock=self._stack.enter_context(FakeBedrock({})),
            azure_openai=self._stack.enter_context(FakeAzureOpenAI()),
            vertex=self._stack.enter_context(FakeVertex()),
            openai=self._stack.enter_context(FakeUpstream("openai")),
            anthropic=self._stack.enter_context(FakeUpstream("anthropic")),
        )
        self.stores = self._stack.enter_context(
            FakeSecretStores(self.fakes.bedrock, self.fakes.azure_openai, self.fakes.vertex)
        )
        self.ca_pem = Path(self.redis.ca_file or "").read_text()
        # Azure Managed Redis without keys: the identity's object id is the Redis user and
        # each Entra token it is issued a password (valid until it expires, as Entra's are).
        self.entra_object_id = str(uuid.uuid4())
        self.fakes.azure_openai.object_id = self.entra_object_id
        self.fakes.azure_openai.on_issue.append(self._accept_token)
        self.provider_keys: dict[str, str] = {}
        self._owner_secret: str | None = None

    def close(self) -> None:
        self._stack.close()

    # ------------------------------------------------------------ substitution

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.postgres.port}/postgres", autocommit=True
        )

    def _local_postgres(self, url: str) -> str:
        """The planned DSN with the local server, a fresh database and a new password.

        When the migration Job reads an owner secret, the database belongs to
        :data:`OWNER` (a password login that may create roles, as the clouds' admins),
        whose credential goes into the secret store, and the DSN's own role does not
        exist: the Job must create it. Otherwise the DSN's role owns the database.
        """
        parts = urlsplit(url)
        user, database = parts.username or "postgres", parts.path.lstrip("/") or "postgres"
        password = secrets.token_hex(12)
        with self._admin() as db:
            db.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            owner, owner_password = user, password
            if self._owner_secret is not None:
                db.execute(f'DROP ROLE IF EXISTS "{user}"')
                owner, owner_password = OWNER, secrets.token_hex(12)
                self.stores.put(
                    self._owner_secret,
                    json.dumps({"username": OWNER, "password": owner_password}),
                )
            exists = db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            power = "SUPERUSER" if self._owner_secret is None else "CREATEROLE"
            db.execute(f"{verb} ROLE \"{owner}\" LOGIN {power} PASSWORD '{owner_password}'")
            db.execute(f'CREATE DATABASE "{database}" OWNER "{owner}"')
        netloc = f"{user}:{password}@{POSTGRES_HOST}:{self.postgres.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    def _admin_redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis.url, ssl_ca_certs=self.redis.ca_file)

    def _accept_token(self, token: str) -> None:
        if "redis.azure.com" not in _token_scope(token):
            return
        with self._admin_redis() as admin:
            admin.execute_command(
                "ACL", "SETUSER", self.entra_object_id, "on", f">{token}", "~*", "&*", "+@all"
            )

    def _local_redis(self, url: str, entra: bool) -> str:
        """The planned URL on the local Redis: with its password, or (Entra) none at all."""
        parts = urlsplit(url)
        assert parts.scheme == "rediss", f"the planned Redis URL is not TLS: {parts.scheme}://"
        if entra:
            assert not parts.password, "the plan puts a Redis key next to Entra authentication"
            netloc = f"{REDIS_HOST}:{self.redis.port}"
        else:
            user = parts.username or ""
            netloc = f"{user}:{self.redis_password}@{REDIS_HOST}:{self.redis.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    def local_secret(self, planned: dict[str, str], entra: bool = False) -> dict[str, str]:
        """The planned Secret's keys with local values for everything that points at the cloud."""
        data = {}
        for key, value in planned.items():
            if value.startswith(("postgresql://", "postgres://")):
                data[key] = self._local_postgres(value)
            elif value.startswith(("redis://", "rediss://")):
                data[key] = self._local_redis(value, entra)
            elif "BEGIN CERTIFICATE" in value:
                data[key] = self.ca_pem
            elif key.endswith("-api-key"):
                data[key] = self.provider_keys.setdefault(
                    key, f"sk-pod-{key}-{secrets.token_hex(4)}"
                )
            else:
                data[key] = value  # generated by the plan (admin key, hash secret): kept
        return data

    def _followed_key(self, env: dict[str, str]) -> dict[str, Any]:
        """A virtual key written to the pod's database as the home's change feed applies it."""
        key_id, key = new_key()
        key_hash = hash_key(env["AIGW_KEY_HASH_SECRET"].encode(), key)
        with self._connect(env["AIGW_DATABASE_URL"]) as db:
            db.execute(
                "INSERT INTO virtual_keys (id, key_hash, name, team_id, project_id, role, "
                "metadata, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (key_id, key_hash, "pod-test", "pod-test", "p", "member", "{}", time.time()),
            )
        return {"id": key_id, "key": key}

    def cloud_environment(self, pod: PlannedPod, catalogue: dict[str, Any]) -> Substitutions:
        """What the cloud's webhooks inject and the endpoint overrides, as an operator sets them."""
        annotations = pod.service_account_annotations
        env: dict[str, str] = {}
        files: dict[str, str] = {}
        if "eks.amazonaws.com/role-arn" in annotations:
            # The EKS pod identity webhook: role, projected token, region.
            env.update(
                AWS_ROLE_ARN=annotations["eks.amazonaws.com/role-arn"],
                AWS_WEB_IDENTITY_TOKEN_FILE=IRSA_TOKEN,
                AWS_REGION=AWS_REGION,
                AWS_DEFAULT_REGION=AWS_REGION,
                AWS_STS_REGIONAL_ENDPOINTS="regional",
                AWS_ENDPOINT_URL_STS=self.fakes.url_for_pod("bedrock"),
                AWS_ENDPOINT_URL_SECRETS_MANAGER=self._for_pod(self.stores.url),
                AWS_EC2_METADATA_DISABLED="true",
            )
            files[IRSA_TOKEN] = "eks-projected-token"
        if (
            "azure.workload.identity/client-id" in annotations
            and pod.labels.get("azure.workload.identity/use") == "true"
        ):
            # Azure Workload Identity's webhook acts only on pods with the label.
            self.fakes.azure_openai.client_id = annotations["azure.workload.identity/client-id"]
            env.update(
                AZURE_CLIENT_ID=annotations["azure.workload.identity/client-id"],
                AZURE_TENANT_ID="00000000-0000-4000-8000-00000000a11d",
                AZURE_FEDERATED_TOKEN_FILE=AZURE_TOKEN,
                AZURE_AUTHORITY_HOST=self.fakes.url_for_pod("azure_openai") + "/",
            )
            files[AZURE_TOKEN] = self.fakes.azure_openai.assertion
        if "iam.gke.io/gcp-service-account" in annotations:
            # GKE's metadata server answers for the bound Google service account.
            self.fakes.vertex.metadata_email = annotations["iam.gke.io/gcp-service-account"]
            metadata = self.fakes.url_for_pod("vertex").removeprefix("http://")
            env.update(GCE_METADATA_HOST=metadata, GCE_METADATA_IP=metadata)
        for name, provider in catalogue["providers"].items():
            reference = _REFERENCE.match(str(provider.get("base_url") or ""))
            if reference is None:
                raise AssertionError(
                    f"providers.{name}.base_url is not ${{VARIABLE:-default}}: an operator "
                    "cannot point this cluster at a test endpoint"
                )
            env[reference.group(1)] = self.fakes.url_for_pod(provider["type"])
        return Substitutions(image=self.image, secrets={}, extra_env=env, extra_files=files)

    # -------------------------------------------------------------- the run

    @staticmethod
    def _for_pod(url: str) -> str:
        return url.replace("127.0.0.1", HOST_LOOPBACK)

    def _substitutions(
        self, pod: PlannedPod, catalogue: dict[str, Any], local: dict[str, dict[str, str]]
    ) -> Substitutions:
        """Everything the test puts in place of the cloud for one planned pod."""
        subs = self.cloud_environment(pod, catalogue)
        subs.secrets = local
        planned_env = {e["name"] for e in pod.container.get("env") or []}
        if "AIGW_REDIS_CA_FILE" not in planned_env:
            # The cloud's Redis has a publicly trusted certificate; ours is signed by our CA.
            subs.extra_env["SSL_CERT_FILE"] = "/var/run/aigw-test/ca.crt"
            subs.extra_files["/var/run/aigw-test/ca.crt"] = self.ca_pem
        subs.hosts = {REDIS_HOST: HOST_LOOPBACK, POSTGRES_HOST: HOST_LOOPBACK}
        migrates = "AIGW_MIGRATION_SECRET" in planned_env
        if migrates and self._owner_secret and not self._owner_secret.startswith("arn:"):
            # Key Vault and Secret Manager: the planned URL, on the fake's host.
            parts = urlsplit(self._owner_secret)
            local_url = urlsplit(self._for_pod(self.stores.url))
            subs.endpoints["AIGW_MIGRATION_SECRET"] = urlunsplit(
                (local_url.scheme, local_url.netloc, parts.path, parts.query, "")
            )
        return subs

    def run_track(self, plan: Plan, cloud: str, track: str = "stable") -> PodReport:
        """Run one cluster's migration Job, then its Deployment's pod, and check it."""
        job_resource, deployment_resource = track_workloads(plan, cloud, track)
        job = planned_pod(plan, job_resource)
        pod = planned_pod(plan, deployment_resource)
        backend = route_backend(plan, deployment_resource, pod)
        assert job.container["image"] == pod.container["image"], "Job and pod differ in image"
        (config_volume,) = [v for v in pod.spec["volumes"] if "configMap" in v]
        config_text = pod.config_maps[config_volume["configMap"]["name"]]["config.yaml"]
        catalogue = yaml.safe_load(config_text)

        self.fakes.reset()
        self.stores.reads.clear()
        with self._admin_redis() as admin:
            admin.flushall()
            admin.execute_command("ACL", "DELUSER", self.entra_object_id)
        job_env = {e["name"]: e.get("value") for e in job.container.get("env") or []}
        self._owner_secret = job_env.get("AIGW_MIGRATION_SECRET")
        pod_env = {e["name"]: e.get("value") for e in pod.container.get("env") or []}
        entra = pod_env.get("AIGW_REDIS_AUTH") == "entra"
        local = {name: self.local_secret(data, entra) for name, data in pod.secrets.items()}

        work = Path(tempfile.mkdtemp(prefix=f"aigw-pod-{cloud}-"))
        try:
            # The Job first, as its own identity (the fakes then admit that identity).
            self._run_job(job, self._substitutions(job, catalogue, local), work / "job")
            subs = self._substitutions(pod, catalogue, local)
            planned_env = {e["name"] for e in pod.container.get("env") or []}
            with self._running(pod, subs, work / "pod") as ports:
                return self._check(pod, subs, catalogue, ports, planned_env, backend)
        finally:
            clean(work)

    def _run_job(self, job: PlannedPod, subs: Substitutions, work: Path) -> None:
        assert job.spec.get("restartPolicy") == "Never"
        name = f"aigw-job-{secrets.token_hex(4)}"
        args = podman_run_args(job, subs, work, {})
        result = self.podman.run("run", "--name", name, *args, check=False, timeout=300)
        self.podman.run("rm", "--force", name, check=False)
        assert result.returncode == 0, f"migration Job failed:\n{result.stdout}\n{result.stderr}"
        with self._connect(_secret_env(job, subs)["AIGW_DATABASE_URL"]) as db:
            applied = db.execute("SELECT count(*) FROM schema_migrations").fetchone()
            owner = db.execute(
                "SELECT tableowner FROM pg_tables WHERE tablename = 'schema_migrations'"
            ).fetchone()
        assert applied and applied[0] >= 1, "the migration Job applied nothing"
        if self._owner_secret is not None:
            # The Job read the owner with its own identity, migrated as the owner, and
            # created the gateway's role, which the pod then logs in as.
            assert self.stores.reads, f"the Job never read its owner secret: {self.stores.refused}"
            assert owner == (OWNER,), owner
            assert "app role gateway_app: created" in result.stdout, result.stdout

    def _connect(self, url: str) -> psycopg.Connection[Any]:
        """The pod's DSN, from the host (TLS and password, as the pod connects)."""
        return psycopg.connect(
            url.replace(POSTGRES_HOST, "127.0.0.1"), autocommit=True, connect_timeout=5
        )

    @contextmanager
    def _running(
        self, pod: PlannedPod, subs: Substitutions, work: Path
    ) -> Iterator[dict[int, int]]:
        ports = {int(p["containerPort"]): kept_port() for p in pod.container.get("ports") or []}
        name = f"aigw-pod-{secrets.token_hex(4)}"
        args = podman_run_args(pod, subs, work, ports)
        self.podman.run("run", "--detach", "--name", name, *args)
        try:
            yield ports
            stop = self.podman.run("stop", "--time=20", name, check=False, timeout=60)
            state = json.loads(
                self.podman.run("inspect", "--format", "{{json .State}}", name).stdout
            )
            assert stop.returncode == 0 and state["ExitCode"] == 0, f"not a graceful stop: {state}"
        except BaseException:
            logs = self.podman.run("logs", name, check=False)
            print(f"--- pod logs ---\n{logs.stdout[-4000:]}\n{logs.stderr[-4000:]}")
            raise
        finally:
            self.podman.run("rm", "--force", "--time=0", name, check=False)

    def _check(
        self,
        pod: PlannedPod,
        subs: Substitutions,
        catalogue: dict[str, Any],
        ports: dict[int, int],
        planned_env: set[str],
        backend: RouteBackend,
    ) -> PodReport:
        container = pod.container
        # Where Envoy delivers the route's requests: the published port of the container
        # port the route's backendRef resolves to.
        assert backend.container_port in ports, (
            f"the route reaches container port {backend.container_port}, which the pod does "
            "not declare"
        )
        base = f"http://127.0.0.1:{ports[backend.container_port]}"
        startup, readiness, liveness = (
            container[k] for k in ("startupProbe", "readinessProbe", "livenessProbe")
        )
        wait_for_probe(probe_url(container, startup, ports), startup)
        for probe in (readiness, liveness):
            url = probe_url(container, probe, ports)
            status = probe_once(url, float(probe.get("timeoutSeconds", 1)))
            if not (status is not None and 200 <= status < 400):
                # Readiness may trail liveness by a Redis round trip: poll as the kubelet would.
                wait_for_probe(url, probe)
        env = _secret_env(pod, subs)
        observed: set[str] = set()

        ready = _json(f"{base}{backend.health_path}")
        assert ready["status"] == "ready", ready
        # Every provider has credentials, except those whose key the stack does not set.
        keyless = sorted(n for n, p in catalogue["providers"].items() if not _has_key(p, env))
        assert sorted(ready["providers_missing_credentials"]) == keyless, ready["providers"]
        if "AIGW_REDIS_URL" in env:
            assert ready["checks"]["redis"] == {"status": "ok"}, ready
            assert ready["checks"]["state"]["backend"] == "redis"
            observed.add("AIGW_REDIS_URL")
            if "AIGW_REDIS_CA_FILE" in env:
                # No other CA in the pod trusts our Redis: the mounted file is what verified it.
                observed.add("AIGW_REDIS_CA_FILE")
            if env.get("AIGW_REDIS_AUTH") == "entra":
                # The pod's connections are the identity's (its object id, a token for Redis):
                # the URL carried no password and the default user's is not the pod's.
                with self._admin_redis() as admin:
                    users = {c["user"] for c in admin.client_list()}
                assert self.entra_object_id in users, users
                observed.add("AIGW_REDIS_AUTH")
        admin_key = env["AIGW_ADMIN_KEY"]
        refused = _request(f"{base}/admin/keys", "POST", {"team_id": "t"}, "not-the-admin-key")
        assert refused[0] == 401, refused
        status, created = _request(
            f"{base}/admin/keys", "POST", {"team_id": "pod-test", "project_id": "p"}, admin_key
        )
        plane = (catalogue.get("governance") or {}).get("global")
        if plane is not None and plane.get("cloud") != plane["home"]:
            # A follower of the global plane forwards admin writes to its home cloud, which
            # this test does not run: the write is refused naming the home (retryable), and
            # the pod serves the keys it knows. The key then arrives as the home's change
            # feed would apply it: a row in this cloud's database, found on first use.
            assert status == 503, created
            assert created["error"]["code"] == "governance_home_unreachable", created
            assert plane["home"] in created["error"]["message"], created
            created = self._followed_key(env)
        else:
            assert status in (200, 201), created
        virtual_key = created["key"]
        observed.add("AIGW_ADMIN_KEY")
        with self._connect(env["AIGW_DATABASE_URL"]) as db:
            (stored,) = db.execute(
                "SELECT key_hash FROM virtual_keys WHERE id = %s", (created["id"],)
            ).fetchone()
        secret = env["AIGW_KEY_HASH_SECRET"].encode()
        assert stored == hmac.new(secret, virtual_key.encode(), hashlib.sha256).hexdigest()
        observed |= {"AIGW_DATABASE_URL", "AIGW_KEY_HASH_SECRET"}

        client = OpenAI(base_url=f"{base}/v1", api_key=virtual_key, max_retries=0, timeout=60)
        # The pod has the admin key, so governance is on: a client lists the models with its
        # virtual key, and nothing answers without one.
        anonymous = _request(f"{base}/v1/models", "GET", None, None)
        assert anonymous[0] == 401, anonymous
        models = [m.id for m in client.models.list()]
        assert models == list(catalogue["models"]), models
        observed.add("AIGW_CONFIG")
        served = {}
        for model in models:
            first = _usable(catalogue, model, env)[0]
            served[model] = self._call(client, model, catalogue, first, observed, env)
        failovers = self._failover(client, catalogue, models[0], observed, env)
        unobserved = planned_env - observed
        assert not unobserved, (
            f"the plan sets {sorted(unobserved)} on the container, and nothing the pod does "
            "shows it is read; drop it from the plan or give the pod test a check for it"
        )
        return PodReport(models=models, served=served, failovers=failovers, observed=observed)

    def _call(
        self,
        client: OpenAI,
        model: str,
        catalogue: dict[str, Any],
        deployment: dict[str, Any],
        observed: set[str],
        env: dict[str, str],
    ) -> str:
        """One request for ``model``: ``deployment`` must answer it, with its provider's key."""
        provider = catalogue["providers"][deployment["provider"]]
        fake = self.fakes.of(provider["type"])
        before = len(fake.requests)
        if "embed" in deployment["model"]:
            raw = client.embeddings.with_raw_response.create(model=model, input=["pod test"])
            assert raw.parse().data[0].embedding
        else:
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": f"pod test {model}"}]
            )
            assert raw.parse().choices[0].message.content
        answered = raw.headers["x-aigw-deployment"]
        expected = deployment.get("name") or f"{deployment['provider']}/{deployment['model']}"
        assert answered == expected, (model, answered, expected)
        upstream = fake.requests[before:]
        assert upstream, f"{model}: the {provider['type']} fake saw no request"
        seen = upstream[-1]
        assert deployment["model"] in json.dumps(
            {k: seen.get(k) for k in ("path", "model", "deployment", "json")}
        ), seen
        reference = _REFERENCE.match(str(provider.get("api_key") or ""))
        if reference:
            headers = {k.lower(): v for k, v in seen["headers"].items()}
            sent = headers.get("authorization", "").removeprefix("Bearer ")
            sent = headers.get("x-api-key") or headers.get("api-key") or sent
            assert sent == env[reference.group(1)], f"{deployment['provider']} sent another key"
            observed.add(reference.group(1))
        return answered

    def _failover(
        self,
        client: OpenAI,
        catalogue: dict[str, Any],
        model: str,
        observed: set[str],
        env: dict[str, str],
    ) -> list[str]:
        """Fail each deployment in turn: the next one answers."""
        deployments = _usable(catalogue, model, env)
        reached = []
        for index, deployment in enumerate(deployments):
            for earlier in deployments[:index]:
                provider_type = catalogue["providers"][earlier["provider"]]["type"]
                self.fakes.of(provider_type).script(*[error(503)] * 20)
            reached.append(self._call(client, model, catalogue, deployment, observed, env))
            self.fakes.reset()
        return reached


def _has_key(provider: dict[str, Any], env: dict[str, str]) -> bool:
    """Whether a provider's key reference (if any) names a variable the pod has."""
    reference = _REFERENCE.match(str(provider.get("api_key") or ""))
    return reference is None or reference.group(1) in env


def _usable(catalogue: dict[str, Any], model: str, env: dict[str, str]) -> list[dict[str, Any]]:
    """The model's deployments in failover order, without those whose key is not set."""
    deployments = sorted(
        catalogue["models"][model]["deployments"], key=lambda d: d.get("priority", 0)
    )
    return [d for d in deployments if _has_key(catalogue["providers"][d["provider"]], env)]


def _token_scope(token: str) -> str:
    """The ``scp`` claim the fake Entra puts in its JWT-shaped tokens ("" for others)."""
    try:
        payload = token.split(".")[1]
        padded = payload + "=" * (-len(payload) % 4)
        return str(json.loads(base64.urlsafe_b64decode(padded)).get("scp") or "")
    except (IndexError, ValueError):
        return ""


def _secret_env(pod: PlannedPod, subs: Substitutions) -> dict[str, str]:
    """The container's planned environment with secretKeyRefs resolved (what it runs with)."""
    env = {}
    for item in pod.container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = subs.secrets[ref["name"]][ref["key"]]
    return env


def _json(url: str) -> Any:
    status, body = _request(url, "GET", None, None)
    assert status in (200, 503), (url, status, body)
    return body


def _request(url: str, method: str, body: Any, token: str | None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
