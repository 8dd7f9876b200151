"""Wait, from the deployer's machine, until the cluster admits the deployer.

Azure RBAC role assignments reach the AKS API server minutes after ARM reports
them created ("It can take up to five minutes for role assignments to be
propagated", Microsoft Learn: "Use Azure role-based access control for
Kubernetes Authorization"); a first ``pulumi up`` that deploys at once gets
403 on Namespaces and Helm releases. :func:`wait_script` is the shell the
``command:local:Command`` runs after the grant: it asks the API server itself
(``kubectl auth can-i``, a SelfSubjectAccessReview every identity may make)
until the answer is yes, and fails with a message saying what to check when
it never is.
"""

from __future__ import annotations

KUBECONFIG_ENV = "AIGW_WAIT_KUBECONFIG"
"""The environment variable carrying the kubeconfig (a secret) into the wait command."""


def wait_script(timeout_seconds: int = 900, interval_seconds: int = 10) -> str:
    """A POSIX shell script that polls ``kubectl auth can-i '*' '*' --all-namespaces``.

    Exit 0 once the API server says yes; exit 1 after ``timeout_seconds`` with
    the last answer. The kubeconfig comes from :data:`KUBECONFIG_ENV` and goes
    to a private temporary file that is removed on exit.
    """
    if timeout_seconds < interval_seconds or interval_seconds < 1:
        raise ValueError(
            f"timeout {timeout_seconds}s must be at least the interval {interval_seconds}s (>= 1s)"
        )
    return f"""set -u
command -v kubectl >/dev/null 2>&1 || {{
  echo "kubectl is not on PATH: install it (az aks install-cli) to deploy into AKS" >&2; exit 1; }}
umask 077
KUBECONFIG="$(mktemp)"; export KUBECONFIG
trap 'rm -f "$KUBECONFIG"' EXIT
printf '%s' "${KUBECONFIG_ENV}" > "$KUBECONFIG"
deadline=$(( $(date +%s) + {timeout_seconds} ))
while :; do
  answer="$(kubectl auth can-i '*' '*' --all-namespaces 2>&1)" && exit 0
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "the cluster still refuses the deployer after {timeout_seconds}s ($answer); check the \\
deployer's Azure Kubernetes Service RBAC Cluster Admin assignment on the cluster" >&2
    exit 1
  fi
  sleep {interval_seconds}
done
"""
