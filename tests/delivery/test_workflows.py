"""The users' GitHub workflows: actionlint-clean and shaped as the delivery design says.

PR: an offline ``aigw plan`` per stack file needing no secret, and a ``pulumi
preview --policy-pack policies`` per stack commented on the PR, with OIDC
credentials. Main: ``pulumi up --policy-pack policies`` on dev, then staging,
then prod, in GitHub environments, one update per stack at a time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONS = ROOT / ".github" / "actions"
STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))
CLOUD_LOGIN = "./.github/actions/cloud-login"
SETUP = "./.github/actions/setup-project"
PULUMI_ACTION = "pulumi/actions"
UP_WORKFLOW = "./.github/workflows/pulumi-up.yml"

# Inputs of each third-party action at the pinned commit (from its action.yml).
# actionlint knows the inputs of popular actions only by major tag, not by SHA,
# so a misspelled input of a SHA-pinned action would pass it silently.
ACTION_INPUTS: dict[str, set[str]] = {
    "actions/checkout": {
        "repository", "ref", "token", "ssh-key", "ssh-known-hosts", "ssh-strict", "ssh-user",
        "persist-credentials", "path", "clean", "filter", "sparse-checkout",
        "sparse-checkout-cone-mode", "fetch-depth", "fetch-tags", "show-progress", "lfs",
        "submodules", "set-safe-directory", "github-server-url", "allow-unsafe-pr-checkout",
    },
    "astral-sh/setup-uv": {
        "version", "version-file", "python-version", "activate-environment", "venv-path",
        "no-project", "working-directory", "checksum", "github-token", "enable-cache",
        "cache-dependency-glob", "restore-cache", "save-cache", "cache-suffix",
        "cache-local-path", "prune-cache", "cache-python", "ignore-nothing-to-cache",
        "ignore-empty-workdir", "tool-dir", "tool-bin-dir", "manifest-file",
        "download-from-astral-mirror", "add-problem-matchers", "quiet", "resolution-strategy",
    },
    "pulumi/actions": {
        "command", "stack-name", "pulumi-version", "pulumi-version-file", "work-dir",
        "comment-on-pr", "comment-on-pr-number", "comment-on-summary", "github-token",
        "cloud-url", "secrets-provider", "parallel", "message", "config-map",
        "expect-no-changes", "diff", "replace", "exclude", "exclude-dependents", "target",
        "target-dependents", "policyPacks", "policyPackConfigs", "refresh", "upsert", "remove",
        "edit-pr-comment", "color", "exclude-protected", "plan", "suppress-outputs",
        "suppress-progress", "always-include-summary", "continue-on-error", "log-verbosity",
        "log-flow", "debug",
    },
    "pulumi/auth-actions": {
        "organization", "requested-token-type", "scope", "token-expiration",
        "export-environment-variables", "cloud-url",
    },
    "aws-actions/configure-aws-credentials": {
        "aws-region", "aws-profile", "overwrite-aws-profile", "role-to-assume",
        "aws-access-key-id", "aws-secret-access-key", "aws-session-token",
        "web-identity-token-file", "role-chaining", "audience", "http-proxy", "no-proxy",
        "mask-aws-account-id", "role-duration-seconds", "role-external-id", "role-session-name",
        "role-skip-session-tagging", "transitive-tag-keys", "inline-session-policy",
        "managed-session-policies", "output-credentials", "output-env-credentials",
        "unset-current-credentials", "disable-retry",
    },
    "azure/login": {
        "creds", "client-id", "tenant-id", "subscription-id", "environment",
        "allow-no-subscriptions", "audience", "auth-type",
    },
    "google-github-actions/auth": {
        "project_id", "workload_identity_provider", "service_account", "audience",
        "credentials_json", "create_credentials_file", "export_environment_variables",
        "token_format", "delegates", "universe", "request_reason", "cleanup_credentials",
        "access_token_lifetime", "access_token_scopes", "access_token_subject",
        "id_token_audience", "id_token_include_email",
    },
    "google-github-actions/setup-gcloud": {
        "version", "project_id", "install_components", "skip_install", "cache",
    },
}  # fmt: skip

# Inputs that carry a long-lived credential: never used, OIDC only.
LONG_LIVED_KEY_INPUTS = {
    "aws-access-key-id",
    "aws-secret-access-key",
    "aws-session-token",
    "creds",
    "credentials_json",
}


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the bare key `on` as the boolean true.
    if True in data:
        data["on"] = data.pop(True)
    return data


def _workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))


def _action_files() -> list[Path]:
    return sorted(ACTIONS.glob("*/action.yml"))


WORKFLOW_FILES = _workflow_files()
PR = _load(WORKFLOWS / "pull-request.yml")
DEPLOY = _load(WORKFLOWS / "deploy.yml")
UP = _load(WORKFLOWS / "pulumi-up.yml")


def _steps_everywhere() -> list[tuple[str, dict[str, Any]]]:
    """(file:job, step) for every step of every workflow job and composite action."""
    found = []
    for path in WORKFLOW_FILES:
        for job_id, job in _load(path)["jobs"].items():
            found += [(f"{path.name}:{job_id}", step) for step in job.get("steps", [])]
    for path in _action_files():
        found += [(str(path.relative_to(ROOT)), s) for s in _load(path)["runs"].get("steps", [])]
    return found


def _action(step: dict[str, Any]) -> str | None:
    uses = step.get("uses")
    return uses.split("@")[0] if uses else None


def _pulumi_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if _action(s) == PULUMI_ACTION]


def _matrix_stacks(job: dict[str, Any]) -> list[str]:
    return sorted(job["strategy"]["matrix"]["stack"])


# --- actionlint ---------------------------------------------------------------------


def _actionlint() -> str:
    found = Path(sys.executable).parent / "actionlint"
    path = str(found) if found.exists() else shutil.which("actionlint")
    assert path, "actionlint is a dev dependency: run `uv sync`"
    return path


def test_actionlint_passes_on_every_workflow() -> None:
    assert {p.name for p in WORKFLOW_FILES} >= {"pull-request.yml", "deploy.yml", "pulumi-up.yml"}
    result = subprocess.run(
        [_actionlint(), "-color=false", *map(str, WORKFLOW_FILES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_really_rejects_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: pull_request\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.event.pull_request.title.nope( }}\n"
    )
    result = subprocess.run(
        [_actionlint(), "-color=false", str(bad)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "bad.yml:6" in result.stdout


# --- triggers -----------------------------------------------------------------------


def test_triggers() -> None:
    assert set(PR["on"]) == {"pull_request"}
    assert PR["on"]["pull_request"]["branches"] == ["main"]
    assert DEPLOY["on"]["push"]["branches"] == ["main"]
    assert set(UP["on"]) == {"workflow_call"}
    assert UP["on"]["workflow_call"]["inputs"]["stack"]["required"] is True


def test_no_workflow_runs_untrusted_code_with_secrets() -> None:
    # pull_request_target and workflow_run run fork code with the base repo's token.
    for path in WORKFLOW_FILES:
        assert not {"pull_request_target", "workflow_run"} & set(_load(path)["on"]), path.name


# --- the PR gate --------------------------------------------------------------------


def test_plan_job_covers_every_stack_file_without_secrets() -> None:
    job = PR["jobs"]["plan"]
    assert STACKS == ["dev", "prod", "staging"]
    assert _matrix_stacks(job) == STACKS
    assert job["permissions"] == {"contents": "read"}
    assert "environment" not in job
    assert "if" not in job, "fork PRs must run the offline gate too"
    text = yaml.safe_dump(job)
    assert "secrets." not in text and "vars." not in text
    assert not [s for s in job["steps"] if _action(s) in {CLOUD_LOGIN, PULUMI_ACTION}]
    run = next(s for s in job["steps"] if "aigw plan" in s.get("run", ""))
    assert run["run"] == '.venv/bin/aigw plan --stack "$STACK"'
    assert run["env"] == {"STACK": "${{ matrix.stack }}"}


def test_preview_job_per_stack_with_pack_and_pr_comment() -> None:
    job = PR["jobs"]["preview"]
    assert _matrix_stacks(job) == STACKS
    assert job["needs"] == "plan"
    assert job["if"] == (
        "github.event.pull_request.head.repo.full_name == github.repository"
        " && github.actor != 'dependabot[bot]'"
    )
    assert job["environment"] == "${{ matrix.stack }}-preview"
    assert job["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "pull-requests": "write",
    }
    (pulumi,) = _pulumi_steps(job)
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["stack-name"] == "${{ matrix.stack }}"
    assert pulumi["with"]["policyPacks"] == "policies"
    assert pulumi["with"]["comment-on-pr"] is True
    steps = [_action(s) for s in job["steps"]]
    assert steps.index(CLOUD_LOGIN) < steps.index(PULUMI_ACTION)


# --- deploy on main -----------------------------------------------------------------


def test_deploy_promotes_dev_then_staging_then_prod() -> None:
    jobs = DEPLOY["jobs"]
    assert list(jobs) == ["dev", "staging", "prod"]
    for stack, job in jobs.items():
        assert job["uses"] == UP_WORKFLOW
        assert job["with"] == {"stack": stack}
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert "needs" not in jobs["dev"]
    assert jobs["staging"]["needs"] == "dev"
    assert jobs["prod"]["needs"] == "staging"
    assert set(jobs) == set(STACKS)


def test_up_runs_in_the_stacks_environment_one_at_a_time_with_the_pack() -> None:
    (job,) = UP["jobs"].values()
    assert job["environment"] == "${{ inputs.stack }}"
    assert job["concurrency"] == {
        "group": "pulumi-up-${{ inputs.stack }}",
        "cancel-in-progress": False,
    }
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    (pulumi,) = _pulumi_steps(job)
    assert pulumi["with"]["command"] == "up"
    assert pulumi["with"]["stack-name"] == "${{ inputs.stack }}"
    assert pulumi["with"]["policyPacks"] == "policies"
    assert "comment-on-pr" not in pulumi["with"]
    steps = [s.get("run", "") for s in job["steps"]]
    assert any("aigw plan --stack" in run for run in steps), "the offline gate runs before up"


def test_every_pulumi_command_runs_the_policy_pack() -> None:
    commands = []
    for where, step in _steps_everywhere():
        if _action(step) == PULUMI_ACTION:
            commands.append(step["with"]["command"])
            assert step["with"].get("policyPacks") == "policies", where
        for line in step.get("run", "").splitlines():
            if re.search(r"\bpulumi (preview|up)\b", line):
                assert "--policy-pack policies" in line, f"{where}: {line}"
    assert sorted(commands) == ["preview", "up"]


# --- permissions and credentials ----------------------------------------------------


def test_least_privilege_permissions() -> None:
    for path in WORKFLOW_FILES:
        workflow = _load(path)
        assert workflow["permissions"] == {"contents": "read"}, path.name
        for job_id, job in workflow["jobs"].items():
            permissions = job.get("permissions")
            assert permissions is not None, f"{path.name}:{job_id} must state its permissions"
            assert permissions.get("contents") == "read"
            assert set(permissions.values()) <= {"read", "write"}
            uses_oidc = job.get("uses") == UP_WORKFLOW or any(
                _action(s) == CLOUD_LOGIN for s in job.get("steps", [])
            )
            assert (permissions.get("id-token") == "write") == uses_oidc, f"{path.name}:{job_id}"
            comments = any(s["with"].get("comment-on-pr") for s in _pulumi_steps(job))
            assert (permissions.get("pull-requests") == "write") == comments, job_id
            writes = {k for k, v in permissions.items() if v == "write"}
            assert writes <= {"id-token", "pull-requests"}, f"{path.name}:{job_id}"


def test_cloud_credentials_come_from_oidc_only() -> None:
    login = _load(ACTIONS / "cloud-login" / "action.yml")
    by_action = {_action(s): s for s in login["runs"]["steps"] if "uses" in s}
    assert by_action["aws-actions/configure-aws-credentials"]["with"]["role-to-assume"] == (
        "${{ inputs.aws-role-arn }}"
    )
    assert set(by_action["azure/login"]["with"]) == {"client-id", "tenant-id", "subscription-id"}
    assert by_action["google-github-actions/auth"]["with"]["workload_identity_provider"] == (
        "${{ inputs.gcp-workload-identity-provider }}"
    )
    for where, step in _steps_everywhere():
        assert not LONG_LIVED_KEY_INPUTS & set(step.get("with") or {}), where
    for path in [*WORKFLOW_FILES, *_action_files()]:
        assert "secrets." not in path.read_text(), f"{path.name} reads a stored secret"


def test_checkout_never_persists_the_token() -> None:
    checkouts = [(w, s) for w, s in _steps_everywhere() if _action(s) == "actions/checkout"]
    assert checkouts
    for where, step in checkouts:
        assert step["with"]["persist-credentials"] is False, where


# --- pinning ------------------------------------------------------------------------

_PINNED = re.compile(
    r"uses:\s*(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]+)\s*#\s*(?P<tag>v\d+\.\d+\.\d+)\s*$",
    re.MULTILINE,
)


@pytest.mark.parametrize(
    "path",
    [*WORKFLOW_FILES, *_action_files()],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_third_party_actions_are_pinned_to_a_commit_with_its_version(path: Path) -> None:
    for line in path.read_text().splitlines():
        if "uses:" not in line or line.split("uses:", 1)[1].strip().startswith("./"):
            continue
        match = _PINNED.search(line)
        assert match, f"{path.name}: not pinned to a full commit SHA with a version: {line}"
        assert len(match["sha"]) == 40, line


def test_each_action_is_pinned_to_one_commit_everywhere() -> None:
    pins: dict[str, set[str]] = {}
    for path in [*WORKFLOW_FILES, *_action_files()]:
        for match in _PINNED.finditer(path.read_text()):
            pins.setdefault(match["action"], set()).add(f"{match['sha']} {match['tag']}")
    assert set(pins) == set(ACTION_INPUTS), "every pinned action needs its inputs listed here"
    assert all(len(p) == 1 for p in pins.values()), pins


def test_inputs_passed_to_actions_exist() -> None:
    local = {
        f"./.github/actions/{p.parent.name}": set(_load(p).get("inputs") or {})
        for p in _action_files()
    }
    for where, step in _steps_everywhere():
        action = _action(step)
        if not action:
            continue
        known = local.get(action, ACTION_INPUTS.get(action))
        assert known is not None, f"{where}: unknown action {action}"
        assert set(step.get("with") or {}) <= known, f"{where}: {action}"


def test_pulumi_cli_version_matches_the_locked_sdk() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    sdk = next(p["version"] for p in lock["package"] if p["name"] == "pulumi")
    assert (ROOT / ".pulumi.version").read_text().strip() == sdk


# --- the CI/CD guide tells the user every value the workflows read -------------------


def test_the_ci_guide_lists_every_variable_and_environment_the_workflows_read() -> None:
    deploy = (ROOT / "docs" / "how-to" / "github-ci.md").read_text()
    names = set()
    for path in WORKFLOW_FILES:
        names |= set(re.findall(r"vars\.([A-Z0-9_]+)", path.read_text()))
    assert names >= {"AWS_ROLE_ARN", "AZURE_CLIENT_ID", "GCP_WORKLOAD_IDENTITY_PROVIDER"}
    for name in sorted(names):
        assert f"`{name}`" in deploy, f"docs/how-to/github-ci.md does not explain {name}"
    for stack in STACKS:
        assert f"`{stack}`" in deploy and f"`{stack}-preview`" in deploy


def test_cloud_login_skips_each_cloud_whose_inputs_are_empty() -> None:
    login = _load(ACTIONS / "cloud-login" / "action.yml")
    gate = {
        "pulumi/auth-actions": "inputs.pulumi-organization != ''",
        "aws-actions/configure-aws-credentials": "inputs.aws-role-arn != ''",
        "azure/login": "inputs.azure-client-id != ''",
        "google-github-actions/auth": "inputs.gcp-workload-identity-provider != ''",
        "google-github-actions/setup-gcloud": "inputs.gcp-workload-identity-provider != ''",
    }
    steps = login["runs"]["steps"]
    assert {_action(s) for s in steps if "uses" in s} == set(gate)
    for step in steps:
        expected = gate.get(_action(step) or "", "inputs.azure-client-id != ''")
        assert step["if"] == expected, step.get("name")


def test_jobs_pass_every_cloud_login_input_from_a_variable() -> None:
    inputs = set(_load(ACTIONS / "cloud-login" / "action.yml")["inputs"])
    callers = [(f, s) for f, s in _steps_everywhere() if _action(s) == CLOUD_LOGIN]
    assert len(callers) == 2  # the PR preview and the reusable up
    for where, step in callers:
        passed = step["with"]
        assert set(passed) == inputs - {"aws-session-seconds"}, where
        assert all(value.startswith("${{ vars.") for value in passed.values()), where
