"""The three clouds' kubeconfigs: one builder, unchanged output, loadable by the official client.

The kubeconfigs are secret outputs, so a plan comparison (``scripts/compare-plans``)
masks them; these tests read them directly. ``kubeconfigs.json`` holds each stack's
kubeconfigs (parsed) as the program produced them before the three clouds shared
:func:`infra.decisions.k8s.kubeconfig`; the stacks must still produce exactly these.

Each kubeconfig is then loaded by the Kubernetes Python client's ``KubeConfigLoader``,
which runs the exec credential plugin the way kubectl does ("client-go credential
plugins", Kubernetes docs: the plugin is looked up on ``PATH``, given the cluster in
``KUBERNETES_EXEC_INFO`` when ``provideClusterInfo`` is true, and answers an
``ExecCredential`` with a token). A fake plugin under each cloud's command name records
its command line, so a wrong command, argument, CA or server fails here.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from infra.decisions import aws, azure, gcp
from infra.decisions.k8s import ExecPlugin, kubeconfig
from infra.offline import Plan
from infra.offline.engine import reveal
from tests.conftest import ROOT, STACKS

GOLDEN = json.loads((Path(__file__).parent / "kubeconfigs.json").read_text())

AKS_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
"""kubelogin's ``--server-id`` for AKS: the "Azure Kubernetes Service AAD Server" application,
the same in every tenant ("Use kubelogin to authenticate users in AKS", Azure docs)."""

FAKE_PLUGIN = f"""#!{sys.executable}
import json, os, sys
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
with open(os.environ["PLUGIN_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv, "info": info,
                          "extra": os.environ.get("PLUGIN_EXTRA")}}) + "\\n")
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential",
                  "status": {{"token": "token-from-" + os.path.basename(sys.argv[0])}}}}))
"""


def _documents(plan: Plan) -> dict[str, dict[str, Any]]:
    """The stack's exported kubeconfigs, parsed (``{cloud: document}``)."""
    return {
        cloud: yaml.safe_load(text) for cloud, text in reveal(plan.outputs["kubeconfigs"]).items()
    }


@pytest.mark.parametrize("stack", STACKS)
def test_every_cloud_kubeconfig_is_what_it_was(plans: dict[str, Plan], stack: str) -> None:
    assert _documents(plans[stack]) == GOLDEN[stack]


@pytest.mark.parametrize("stack", STACKS)
def test_every_kube_provider_uses_its_cloud_kubeconfig(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    used = [
        yaml.safe_load(r.get("kubeconfig"))
        for r in plan.of_type("pulumi:providers:kubernetes")
        if r.get("kubeconfig")
    ]
    exported = list(_documents(plan).values())
    assert sorted(map(json.dumps, used)) == sorted(map(json.dumps, exported))


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake ``aws``, ``kubelogin`` and ``gke-gcloud-auth-plugin`` alone on ``PATH``; their log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for command in ("aws", "kubelogin", "gke-gcloud-auth-plugin"):
        path = bin_dir / command
        path.write_text(FAKE_PLUGIN)
        path.chmod(0o755)
    log = tmp_path / "plugin.log"
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("PLUGIN_LOG", str(log))
    return log


def _load(document: dict[str, Any], tmp_path: Path) -> client.Configuration:
    configuration = client.Configuration()
    config.load_kube_config_from_dict(
        document, client_configuration=configuration, temp_file_path=str(tmp_path)
    )
    return configuration


def _calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _expected_argv(cloud: str, document: dict[str, Any], stack: str) -> list[str]:
    cluster = document["clusters"][0]["name"]
    if cloud == "aws":
        stack_config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        region = stack_config["ai-gateway:aws"]["region"]
        return ["eks", "get-token", "--cluster-name", cluster, "--region", region, "--output", "json"]  # fmt: skip
    if cloud == "azure":
        return ["get-token", "--login", "azurecli", "--server-id", AKS_SERVER_APP_ID]
    return []


COMMANDS = {"aws": "aws", "azure": "kubelogin", "gcp": "gke-gcloud-auth-plugin"}


@pytest.mark.parametrize("cloud", sorted(COMMANDS))
def test_the_official_client_loads_the_kubeconfig_and_runs_its_plugin(
    plans: dict[str, Plan], plugins: Path, tmp_path: Path, cloud: str
) -> None:
    document = _documents(plans["dev"])[cloud]
    cluster = document["clusters"][0]["cluster"]

    configuration = _load(document, tmp_path)

    assert configuration.host == cluster["server"]
    assert configuration.api_key["BearerToken"] == f"Bearer token-from-{COMMANDS[cloud]}"
    assert configuration.ssl_ca_cert, "no CA: the client would not verify the API server"
    ca = Path(configuration.ssl_ca_cert).read_bytes()
    assert ca == base64.b64decode(cluster["certificate-authority-data"])
    assert ca.startswith(b"-----BEGIN CERTIFICATE-----")
    [call] = _calls(plugins)
    assert Path(call["argv"][0]).name == COMMANDS[cloud]
    assert call["argv"][1:] == _expected_argv(cloud, document, "dev")
    # Only GKE's plugin reads the cluster from KUBERNETES_EXEC_INFO (provideClusterInfo).
    given = call["info"]["spec"].get("cluster")
    assert (given["server"] if given else None) == (cluster["server"] if cloud == "gcp" else None)


def test_the_builder_writes_the_plugin_env_and_a_verifiable_cluster(
    plugins: Path, tmp_path: Path
) -> None:
    plugin = ExecPlugin(command="aws", args=("eks", "get-token"), env={"PLUGIN_EXTRA": "on"})
    text = kubeconfig("c1", "https://c1.example:443", "Q0E=", plugin, user="u1")

    configuration = _load(yaml.safe_load(text), tmp_path)

    assert configuration.host == "https://c1.example:443"
    assert Path(configuration.ssl_ca_cert).read_bytes() == b"CA"
    [call] = _calls(plugins)
    assert call["argv"][1:] == ["eks", "get-token"]
    assert call["extra"] == "on"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "kubeconfig name is empty"),
        ("server", "", "kubeconfig server is empty"),
        ("server", "http://c1:80", "'http://c1:80' is not an https URL"),
        ("ca_data", "", "kubeconfig ca_data is empty"),
        ("ca_data", "not base64!", "certificate authority data 'not base64!'... is not base64"),
    ],
)
def test_the_builder_rejects_a_kubeconfig_that_could_not_verify_the_server(
    field: str, value: str, message: str
) -> None:
    parts = {"name": "c1", "server": "https://c1:443", "ca_data": "Q0E=", field: value}
    with pytest.raises(ValueError, match=message):
        kubeconfig(**parts, plugin=ExecPlugin(command="aws"), user="u1")


def test_a_plugin_without_a_command_is_rejected() -> None:
    with pytest.raises(ValueError, match="exec plugin command is empty"):
        kubeconfig("c1", "https://c1:443", "Q0E=", ExecPlugin(command=""), user="u1")


@pytest.mark.parametrize(
    ("text", "command"),
    [
        (aws.kubeconfig("gw-eks", "https://e.eks.amazonaws.com", "Q0E=", "eu-west-1"), "aws"),
        (azure.kubeconfig("aks-x", "https://aks-x.hcp.azmk8s.io:443", "Q0E="), "kubelogin"),
        (gcp.kubeconfig("gw-gke", "34.118.1.2", "Q0E="), "gke-gcloud-auth-plugin"),
    ],
)
def test_each_cloud_stores_no_credential_only_its_plugin(text: str, command: str) -> None:
    document = yaml.safe_load(text)
    user = document["users"][0]
    assert user["user"] == {"exec": user["user"]["exec"]}  # no token, no client certificate
    assert user["user"]["exec"]["command"] == command
    assert document["contexts"][0]["context"] == {
        "cluster": document["clusters"][0]["name"],
        "user": user["name"],
    }
    assert document["current-context"] == document["contexts"][0]["name"]
