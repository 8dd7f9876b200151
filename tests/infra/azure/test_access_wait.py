"""The wait for the deployer's AKS access: the script itself, run against a fake kubectl.

Azure RBAC grants reach the API server minutes after ARM reports them ("It can
take up to five minutes for role assignments to be propagated", Microsoft
Learn: "Use Azure role-based access control for Kubernetes Authorization"),
so the kube provider waits for this command, which asks the API server.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from infra.k8s.access import KUBECONFIG_ENV, wait_script
from infra.offline import Plan, Secret
from infra.offline.engine import reveal

KUBECONFIG = "apiVersion: v1\nkind: Config\ncurrent-context: aks\n"


def fake_kubectl(directory: Path, answers: list[str]) -> Path:
    """A kubectl answering `auth can-i` with ``answers`` in turn (then the last one forever)."""
    state = directory / "calls"
    state.write_text("0")
    script = directory / "kubectl"
    lines = "\n".join(f'  {i}) answer="{a}";;' for i, a in enumerate(answers))
    script.write_text(
        f"""#!/bin/sh
n=$(cat {state}); echo $((n + 1)) > {state}
cp "$KUBECONFIG" {directory}/seen-kubeconfig
echo "$@" > {directory}/args
case $n in
{lines}
  *) answer="{answers[-1]}";;
esac
echo "$answer"
[ "$answer" = yes ]
"""
    )
    script.chmod(0o755)
    return state


def run(tmp_path: Path, script: str, with_kubectl: bool = True) -> subprocess.CompletedProcess[str]:
    # Only the tools the script needs (this machine may have a real kubectl on PATH).
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    for tool in ("date", "mktemp", "rm", "sleep", "cat", "cp"):
        found = shutil.which(tool)
        assert found, tool
        if not (tools / tool).exists():
            (tools / tool).symlink_to(found)
    path = f"{tmp_path}:{tools}" if with_kubectl else str(tools)
    return subprocess.run(
        ["/bin/sh", "-c", script],
        env={"PATH": path, KUBECONFIG_ENV: KUBECONFIG, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_waits_until_the_api_server_admits_the_deployer(tmp_path: Path) -> None:
    state = fake_kubectl(tmp_path, ["no", "no", "yes"])
    result = run(tmp_path, wait_script(timeout_seconds=30, interval_seconds=1))
    assert result.returncode == 0, result.stderr
    assert state.read_text().strip() == "3"
    assert (tmp_path / "args").read_text().split() == [
        "auth",
        "can-i",
        "*",
        "*",
        "--all-namespaces",
    ]
    # kubectl read the kubeconfig from a private file that is gone afterwards.
    assert (tmp_path / "seen-kubeconfig").read_text() == KUBECONFIG
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("tmp.")]
    assert oct((tmp_path / "seen-kubeconfig").stat().st_mode & 0o077) == "0o0"


def test_gives_up_with_a_message_that_says_what_to_check(tmp_path: Path) -> None:
    fake_kubectl(tmp_path, ["no"])
    result = run(tmp_path, wait_script(timeout_seconds=2, interval_seconds=1))
    assert result.returncode == 1
    assert "still refuses the deployer after 2s (no)" in result.stderr
    assert "RBAC Cluster Admin" in result.stderr


def test_says_how_to_install_kubectl_when_missing(tmp_path: Path) -> None:
    result = run(tmp_path, wait_script(), with_kubectl=False)
    assert result.returncode == 1
    assert "az aks install-cli" in result.stderr


def test_rejects_an_interval_longer_than_the_timeout() -> None:
    with pytest.raises(ValueError, match="timeout"):
        wait_script(timeout_seconds=5, interval_seconds=10)


def test_the_plan_runs_the_wait_after_the_grant_with_the_kubeconfig_as_a_secret(
    plans: dict[str, Plan],
) -> None:
    for plan in plans.values():
        (wait,) = plan.of_type("command:local:Command")
        grant = plan.one(
            "azure-native:authorization:RoleAssignment", "azure-cluster-deployer-admin"
        )
        assert wait.get("create") == wait_script()
        environment = wait.inputs["environment"]
        assert isinstance(environment, Secret) or isinstance(environment[KUBECONFIG_ENV], Secret)
        assert "kubelogin" in reveal(environment)[KUBECONFIG_ENV]
        assert wait.get("triggers") == [grant.id]
        assert grant.urn in wait.dependencies
