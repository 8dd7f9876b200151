"""The console on the route table of each cluster's edge, and its client secret (issue 28).

Sources the edge's rules are checked against:

* Envoy Gateway v1.9, "IP Allowlist/Denylist"
  (https://gateway.envoyproxy.io/v1.9/tasks/security/restrict-ip-access/): a
  SecurityPolicy attached to an HTTPRoute, ``authorization.defaultAction: Deny`` and
  an ``Allow`` rule whose ``principal.clientCIDRs`` must hold the client's address;
  "the IP address used for allowlist/denylist is the original source IP address of
  the request", which the ClientTrafficPolicy's ``clientIPDetection`` defines.
* Envoy Gateway v1.9 release notes and API reference (ClientIPDetectionSettings):
  ``directSourceIP`` uses "the downstream TCP connection source address as the
  client IP", for layer-4 load balancers that keep the client's source address
  (each cloud's here: the NLB with ``preserve_client_ip.enabled=true``, AKS's
  Standard Load Balancer and GKE's passthrough NLB with ``externalTrafficPolicy:
  Local``), so no client-written ``X-Forwarded-For`` is believed.
* Gateway API, HTTPRoute "Matching precedence": across the rules of every route of a
  listener, the longest matching path prefix wins, so ``/console`` and ``/auth``
  leave the catch-all ``/`` rule for the console's route.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import ConfigError, parse
from infra.offline import Plan, Secret
from infra.offline.engine import ProgramError, reveal
from tests.infra.k8s.conftest import (
    CONSOLE_NETWORKS,
    OIDC_SECRET,
    console_app_config,
    gateway_config,
    record_fixture,
)
from tests.infra.k8s.test_gateway import (
    CLIENT_POLICY,
    CLOUDS,
    CONFIG_MAP,
    DEPLOYMENT,
    GATEWAY,
    ROUTE,
    SECRET,
    SERVICE,
    one,
    owned,
    plain_strings,
)
from tests.infra.k8s.test_gateway_api_schemas import manifests, run_judge

SECURITY_POLICY = "kubernetes:gateway.envoyproxy.io/v1alpha1:SecurityPolicy"
POD_RANGES = {"aws": "10.10.0.0/16", "azure": "10.244.0.0/16", "gcp": "10.32.0.0/14"}
"""The clouds' default pod ranges (the fixture's stack leaves them unset)."""


def test_the_client_secret_reaches_every_cluster_only_through_its_secret(
    console_plan: Plan,
) -> None:
    value = OIDC_SECRET["ai-gateway:oidcClientSecret"]
    for cloud in CLOUDS:
        secret = one(console_plan, cloud, SECRET, "ai-gateway-secrets")
        assert isinstance(secret.inputs["stringData"], Secret)
        assert reveal(secret.inputs["stringData"])["oidc-client-secret"] == value
        (deployment,) = [
            d
            for d in owned(console_plan, cloud, DEPLOYMENT)
            if d.get("metadata.name") == "ai-gateway"
        ]
        env = {e["name"]: e for e in deployment.get("spec.template.spec.containers")[0]["env"]}
        assert env["AIGW_OIDC_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == (
            "oidc-client-secret"
        )
        assert "value" not in env["AIGW_OIDC_CLIENT_SECRET"]
    # Never in a ConfigMap, a plain input, the state's plain outputs or the exports.
    for resource in console_plan.resources:
        assert value not in "\n".join(plain_strings(resource.inputs)), resource.name
        assert value not in "\n".join(plain_strings(resource.outputs)), resource.name
    assert value not in "\n".join(plain_strings(console_plan.outputs))


def test_the_cluster_config_judges_the_console_networks_behind_the_pods(
    console_plan: Plan,
) -> None:
    for cloud in CLOUDS:
        config_map = one(console_plan, cloud, CONFIG_MAP, "ai-gateway-config")
        identity = yaml.safe_load(config_map.get("data")["config.yaml"])["identity"]
        assert identity["console_allowed_cidrs"] == CONSOLE_NETWORKS
        assert identity["trusted_proxies"] == [POD_RANGES[cloud]]
        assert "client_secret" not in identity["oidc"]


def test_console_and_auth_have_their_own_route_on_the_one_entry_point(
    console_plan: Plan,
) -> None:
    for cloud in CLOUDS:
        (gateway,) = owned(console_plan, cloud, GATEWAY)  # no second Gateway ...
        assert [
            s for s in owned(console_plan, cloud, SERVICE) if s.get("spec.type") != "ClusterIP"
        ] == []
        main = one(console_plan, cloud, ROUTE, "ai-gateway")
        console = one(console_plan, cloud, ROUTE, "ai-gateway-console")
        assert console.get("spec.parentRefs") == main.get("spec.parentRefs")
        assert console.get("spec.parentRefs")[0]["sectionName"] == "https"
        assert console.get("spec.parentRefs")[0]["name"] == gateway.get("metadata.name")
        assert console.get("spec.hostnames") == main.get("spec.hostnames")
        (rule,) = console.get("spec.rules")
        assert rule["matches"] == [
            {"path": {"type": "PathPrefix", "value": "/console"}},
            {"path": {"type": "PathPrefix", "value": "/auth"}},
        ]
        # ... and the same gateway behind it (the canary's weights too).
        catch_all = main.get("spec.rules")[-1]
        assert rule["backendRefs"] == catch_all["backendRefs"]
        assert [b["weight"] for b in rule["backendRefs"]] == [90, 10]


def test_the_console_route_admits_only_the_allowed_networks_by_client_address(
    console_plan: Plan,
) -> None:
    for cloud in CLOUDS:
        (policy,) = owned(console_plan, cloud, SECURITY_POLICY)
        assert policy.get("spec.targetRefs") == [
            {
                "group": "gateway.networking.k8s.io",
                "kind": "HTTPRoute",
                "name": "ai-gateway-console",
            }
        ]
        assert policy.get("spec.authorization") == {
            "defaultAction": "Deny",
            "rules": [
                {
                    "name": "console-networks",
                    "action": "Allow",
                    "principal": {"clientCIDRs": CONSOLE_NETWORKS},
                }
            ],
        }
        # The route exists only once its policy does: never an unrestricted moment.
        route = one(console_plan, cloud, ROUTE, "ai-gateway-console")
        assert policy.urn in route.dependencies
        (client,) = owned(console_plan, cloud, CLIENT_POLICY)
        assert client.get("spec.clientIPDetection") == {"directSourceIP": {}}


def test_no_console_route_without_an_allow_list(k8s_plan: Plan) -> None:
    for cloud in CLOUDS:
        assert owned(k8s_plan, cloud, SECURITY_POLICY) == []
        assert {r.get("metadata.name") for r in owned(k8s_plan, cloud, ROUTE)} == {
            "ai-gateway",
            "ai-gateway-https-redirect",
        }


def test_the_console_route_passes_the_gateway_api_judge(
    judge: Path, console_plan: Plan, tmp_path: Path
) -> None:
    objects = [m for m in manifests(console_plan) if m["kind"] in {"HTTPRoute", "Gateway"}]
    assert {m["metadata"]["name"] for m in objects} >= {"ai-gateway-console"}
    code, verdict = run_judge(judge, objects, tmp_path)
    assert verdict["errors"] == [] and code == 0


# ------------------------------------------------------------------ plan-time refusals


def _stack(app_config: dict[str, Any], secret: bool = True, **gateway: Any) -> dict[str, Any]:
    stack = yaml.safe_load(
        (Path(__file__).parent.parent / "fixtures" / "k8s_program" / "Pulumi.k8s.yaml").read_text()
    )["config"]
    values = {k.split(":", 1)[1]: v for k, v in stack.items()}
    values["gateway"] = {**values["gateway"], "appConfig": app_config, **gateway}
    values["providerKeys"] = {"openai": "sk-1", "anthropic": "sk-2"}
    if secret:
        values["oidcClientSecret"] = "s3cret"
    return values


def _problems(values: dict[str, Any]) -> str:
    secret_keys = {f"ai-gateway:{k}" for k in ("providerKeys", "oidcClientSecret") if k in values}
    with pytest.raises(ConfigError) as error:
        parse(values, secret_keys)
    return str(error.value)


def test_a_confidential_client_without_the_stack_secret_is_refused() -> None:
    message = _problems(_stack(console_app_config(), secret=False))
    assert "ai-gateway:gateway.appConfig.identity.oidc: is a confidential client" in message
    assert "pulumi config set --secret ai-gateway:oidcClientSecret VALUE" in message
    # A public client (PKCE only) needs none; with the secret set the stack is accepted.
    public = console_app_config()
    public["identity"]["oidc"]["token_auth_method"] = "none"
    values = _stack(public, secret=False)
    parse(values, {"ai-gateway:providerKeys"})
    parse(_stack(console_app_config()), {"ai-gateway:providerKeys", "ai-gateway:oidcClientSecret"})


def test_the_stack_secret_in_plain_text_is_refused() -> None:
    values = _stack(console_app_config())
    with pytest.raises(ConfigError, match=r"ai-gateway:oidcClientSecret: is stored in plain text"):
        parse(values, {"ai-gateway:providerKeys"})


@pytest.mark.parametrize(
    ("oidc", "identity", "expected"),
    [
        (
            {"client_secret": "written-in-the-config"},
            {},
            "identity.oidc.client_secret: is secret material in the config file (a ConfigMap); "
            "remove it and run `pulumi config set --secret ai-gateway:oidcClientSecret VALUE`",
        ),
        (
            {"client_secret_env": "MY_OIDC_SECRET"},
            {},
            "identity.oidc.client_secret_env: 'MY_OIDC_SECRET': on Kubernetes the client "
            "secret reaches the pods as AIGW_OIDC_CLIENT_SECRET",
        ),
        (
            {},
            {"console_allowed_cidrs": ["10.0.0.0/8"]},
            "identity.console_allowed_cidrs: is not set here on Kubernetes: set "
            "ai-gateway:gateway.consoleAllowedCidrs instead",
        ),
        (
            {},
            {"trusted_proxies": ["0.0.0.0/0"]},
            "identity.trusted_proxies: is not set here on Kubernetes",
        ),
    ],
)
def test_what_the_config_file_must_not_hold(
    oidc: dict[str, Any], identity: dict[str, Any], expected: str
) -> None:
    app_config = console_app_config()
    app_config["identity"]["oidc"].update(oidc)
    app_config["identity"].update(identity)
    assert expected in _problems(_stack(app_config))


@pytest.mark.parametrize(
    ("cidrs", "expected"),
    [
        (["10.0.0.1/8"], "'10.0.0.1/8' is not a network in CIDR notation"),
        (["intranet"], "'intranet' is not a network in CIDR notation"),
        (["0.0.0.0/0"], "0.0.0.0/0 admits every address"),
    ],
)
def test_bad_console_networks_are_refused(cidrs: list[str], expected: str) -> None:
    message = _problems(_stack(console_app_config(), consoleAllowedCidrs=cidrs))
    assert "ai-gateway:gateway.consoleAllowedCidrs" in message and expected in message


def test_the_program_refuses_the_console_without_its_secret() -> None:
    """Through the program, as `aigw plan` runs it."""
    with pytest.raises(ProgramError, match=r"ai-gateway:oidcClientSecret VALUE"):
        record_fixture({"ai-gateway:gateway": gateway_config(None, appConfig=console_app_config())})


def test_the_policy_pack_accepts_the_console_only_with_its_allow_list(console_plan: Plan) -> None:
    """The pack's console rule on what the program plans (the fixture's stack is production)."""
    from dataclasses import replace

    from tests.policies.conftest import verdict

    rule = "kubernetes-gateway-console-allowed-cidrs"
    assert [v for v in verdict(console_plan).violations if v.policy == rule] == []
    without = replace(
        console_plan,
        resources=[r for r in console_plan.resources if r.type != SECURITY_POLICY],
    )
    flagged = [v for v in verdict(without).violations if v.policy == rule]
    assert sorted(v.resource_name for v in flagged) == [
        f"gateway-{cloud}-config" for cloud in CLOUDS
    ]
