"""``aigw``: the project's command line.

``aigw plan --stack dev`` runs the Pulumi program offline (no CLI, no cloud
account, no network) and prints what it would deploy, grouped by cloud and
component, followed by the policy verdict. Exit codes:

* 0: planned and compliant;
* 1: a mandatory policy failed;
* 2: bad configuration or a program error (the message names the key and the fix).

``aigw bootstrap-state aws --bucket NAME --region R`` creates (idempotently) a
self-managed state backend: an S3 bucket and a KMS key for ``awskms://``.

``aigw serve``, ``migrate``, ``audit-maintain``, ``models`` and ``admin`` are the gateway's own
commands: ``python -m gateway_app`` is their entry point (the image's too), and
``aigw`` hands them over to it in a fresh interpreter without importing the
gateway (infra reaches the gateway only through its config contract; the
import contracts in pyproject.toml check it).

Heavy imports (Pulumi SDKs) happen inside the subcommands, so ``aigw --help``
is instant and the gateway image needs no Pulumi SDK.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.offline.engine import Plan, RecordedResource
    from infra.offline.policy_gate import PackServer

EXIT_OK = 0
EXIT_POLICY = 1
EXIT_ERROR = 2

_CLOUDS = ("aws", "azure", "gcp")
# The gateway's commands, handed to ``python -m gateway_app`` (their help is the gateway's).
GATEWAY_COMMANDS = {
    "serve": "run the gateway (OpenAI-compatible API)",
    "migrate": "apply the gateway's database schema migrations",
    "audit-maintain": "make the audit table's day partitions ahead, drop the days past retention",
    "models": "list the gateway's models, their deployments and where prices come from",
    "admin": "manage keys, limits, spend, audit and sessions on a running gateway",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aigw`` console script (``argv``: arguments, for tests)."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments and arguments[0] in GATEWAY_COMMANDS:
        return _gateway(arguments, replace_process=argv is None)
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_ERROR
    code = int(args.handler(args))
    if argv is None:
        # The console script (or `python -m infra.cli`): the process exits next.
        # A plan leaves about a million objects; the interpreter's last garbage
        # collections would walk them all (1.2-1.5 s of a prod plan's exit, see
        # bench/plan-profile.md) only to free what the OS frees anyway.
        gc.freeze()
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aigw", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    plan = sub.add_parser("plan", help="run the Pulumi program offline and print the plan")
    plan.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    plan.add_argument("--stack-file", type=Path, help="read this stack file instead")
    plan.add_argument("--project-dir", type=Path, help="directory holding Pulumi.yaml")
    plan.add_argument("--json", action="store_true", help="print the recorded resources as JSON")
    plan.add_argument(
        "--policy-pack",
        type=Path,
        help="policy pack directory (default: policies/ of the project)",
    )
    plan.add_argument(
        "--policy-pack-config",
        type=Path,
        help="JSON config of the pack's enforcement levels, parameters and exemptions "
        "(the file `pulumi preview --policy-pack-config` takes; default: the project's "
        "policy-config.json when it exists)",
    )
    plan.add_argument(
        "--policy-transport",
        choices=("grpc", "in-process"),
        default="grpc",
        help="run the pack as the Pulumi CLI does (its gRPC server, the default) or in-process",
    )
    plan.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="show no progress on stderr (the plan, verdict and errors still print)",
    )
    plan.set_defaults(handler=_plan)

    bootstrap = sub.add_parser(
        "bootstrap-state",
        help="create a self-managed Pulumi state backend (idempotent)",
        description="Create or converge a self-managed Pulumi state backend. Re-running "
        "changes nothing; settings weaker than the baseline are reported and fixed, "
        "nothing is ever deleted. Azure Blob and GCS backends: see docs/getting-started/azure.md and gcp.md.",
    )
    clouds = bootstrap.add_subparsers(dest="cloud", metavar="CLOUD", required=True)
    aws = clouds.add_parser(
        "aws",
        help="S3 bucket (versioned, SSE-KMS, private, TLS-only) and a KMS key for awskms://",
    )
    aws.add_argument("--bucket", required=True, help="S3 bucket name (globally unique)")
    aws.add_argument("--region", required=True, help="AWS region, for example us-east-1")
    aws.add_argument(
        "--kms-alias",
        help="alias of the KMS key for state encryption and the awskms:// secrets provider "
        "(default: alias/pulumi-<bucket>)",
    )
    aws.add_argument(
        "--noncurrent-version-days",
        type=int,
        default=90,
        help="days old state versions are kept before they expire (default 90)",
    )
    aws.add_argument(
        "--stacks",
        nargs="+",
        default=["dev", "staging", "prod"],
        help="stacks to print `pulumi stack init` lines for (default dev staging prod)",
    )
    aws.set_defaults(handler=_bootstrap_state_aws)

    reference = sub.add_parser(
        "config-reference", help="print the stack config reference (Markdown)"
    )
    reference.set_defaults(handler=_config_reference)

    for name, summary in GATEWAY_COMMANDS.items():
        # Listed here for --help; main() hands them over before argparse sees them.
        sub.add_parser(name, help=f"{summary} (python -m gateway_app {name})", add_help=False)
    return parser


def _gateway(arguments: list[str], *, replace_process: bool) -> int:
    """Run a gateway command with ``python -m gateway_app``.

    From the console script the process is replaced (``exec``): the server keeps
    the PID, receives SIGTERM itself and exits with its own status. Called as a
    function (tests, other tools) it runs as a child and its exit status is returned.
    """
    command = [sys.executable, "-m", "gateway_app", *arguments]
    if replace_process:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, command)
    return subprocess.call(command)


PROJECT_POLICY_CONFIG = "policy-config.json"
"""The project's reviewed pack config (exemptions with reasons), next to ``Pulumi.yaml``."""


def _project_policy_config(args: argparse.Namespace) -> Path | None:
    from infra.offline.stackfile import find_project_root

    path = (args.project_dir or find_project_root()) / PROJECT_POLICY_CONFIG
    return path if path.is_file() else None


def _plan(args: argparse.Namespace) -> int:
    from infra.offline.engine import ProgramError, record
    from infra.offline.policy_gate import PolicyGateError, Verdict, evaluate, load_policy_config
    from infra.offline.progress import reporter
    from infra.offline.stackfile import StackFileError, find_project_root

    progress = reporter(sys.stderr, quiet=args.quiet, title=f"plan {args.stack}")
    with contextlib.ExitStack() as cleanup:
        # Whatever stops the plan, the status line is cleared (closing twice is harmless).
        cleanup.callback(progress.close)
        # Before the program: the pack boots on another core while the program runs.
        server = _start_pack(args)
        if server is not None:
            cleanup.enter_context(server)
        try:
            plan = record(
                args.stack,
                project_dir=args.project_dir,
                stack_file=args.stack_file,
                progress=progress,
            )
        except (ProgramError, StackFileError) as exc:
            progress.close()
            print(f"error: stack {args.stack}: {exc}", file=sys.stderr)
            return EXIT_ERROR
        pack_dir = args.policy_pack or (args.project_dir or find_project_root()) / "policies"
        progress.begin("policy gate")
        verdict: Verdict | None
        gate_error: PolicyGateError | None
        try:
            verdict = evaluate(
                plan,
                pack_dir=pack_dir,
                config=load_policy_config(args.policy_pack_config or _project_policy_config(args)),
                transport=args.policy_transport,
                server=server,
            )
        except PolicyGateError as exc:
            verdict, gate_error = None, exc
            progress.close("the policy pack failed")
        else:
            gate_error = None
            progress.end(verdict.summary())
            mandatory = len(verdict.mandatory)
            progress.close(f"blocked by {mandatory} mandatory" if mandatory else "compliant")
    # The results after the progress lines, in the order they always came: the
    # plan, then the verdict (or why the pack could not give one).
    if args.json:
        json.dump(plan.to_json(), sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
    else:
        print(render_plan(plan))
    sys.stdout.flush()
    if verdict is None:
        print(f"error: policy pack {pack_dir}: {gate_error}", file=sys.stderr)
        return EXIT_ERROR
    # With --json, stdout stays machine-readable; the verdict goes to stderr.
    print("\n" + verdict.render(), file=sys.stderr if args.json else sys.stdout)
    return EXIT_OK if verdict.passed else EXIT_POLICY


def _start_pack(args: argparse.Namespace) -> PackServer | None:
    """The policy pack's gRPC server, started now; ``None`` when it cannot start here.

    Then :func:`~infra.offline.policy_gate.evaluate` starts it after the
    program and reports why it fails, where it always did.
    """
    if args.policy_transport != "grpc":
        return None
    from infra.offline.policy_gate import PackServer, PolicyGateError
    from infra.offline.stackfile import StackFileError, find_project_root, read_project

    try:
        root = (args.project_dir or find_project_root()).resolve()
        project = read_project(root).name
        return PackServer(args.policy_pack or root / "policies", project=project, stack=args.stack)
    except (StackFileError, PolicyGateError, OSError):
        return None


def cloud_of(plan: Plan, resource: RecordedResource) -> str:
    """The cloud a resource belongs to: its own package, or its cloud component's.

    Kubernetes objects and random passwords are grouped under the cloud whose
    component owns them, so a cloud's section shows everything deployed for it.
    """
    lineage = (resource, *plan.ancestors(resource))
    # The global layer runs on AWS (Route 53) but serves every cloud: show it apart.
    if any(c.type.startswith("ai-gateway:global:") for c in lineage):
        return "global"
    for candidate in lineage:
        parts = candidate.type.split(":")
        if parts[0] == "ai-gateway" and len(parts) == 3 and parts[1] in _CLOUDS:
            return parts[1]
        if parts[0] in {"aws", "gcp"}:
            return parts[0]
        if parts[0] == "azure-native":
            return "azure"
    return "global" if not resource.type.startswith("pulumi:providers:") else "providers"


def render_plan(plan: Plan) -> str:
    """The human-readable plan: resources grouped by cloud, then component, with counts."""
    custom = [r for r in plan.resources if r.custom]
    lines = [
        f"Plan for stack {plan.stack} of {plan.project}: {len(custom)} resources in "
        f"{len(plan.resources) - len(custom)} components"
    ]
    by_cloud: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for resource in custom:
        owner = next((a for a in plan.ancestors(resource) if not a.custom), None)
        label = f"{owner.type} {owner.name}" if owner else "(stack)"
        by_cloud[cloud_of(plan, resource)][label][resource.type] += 1
    order = [*_CLOUDS, "global", "providers"]
    for cloud in sorted(by_cloud, key=lambda c: order.index(c) if c in order else len(order)):
        components = by_cloud[cloud]
        total = sum(sum(c.values()) for c in components.values())
        lines.append("")
        lines.append(f"{cloud} ({total} resources)")
        for label, counts in components.items():
            lines.append(f"  {label}")
            for type_token, count in sorted(counts.items()):
                lines.append(f"    {count:>3}  {type_token}")
    if plan.outputs:
        lines.append("")
        lines.append("Outputs")
        for key, value in sorted(plan.outputs.items()):
            lines.append(f"  {key}: {_show(value)}")
    return "\n".join(lines)


def _show(value: Any) -> str:
    from infra.offline.engine import mask

    return json.dumps(mask(value))


def _bootstrap_state_aws(args: argparse.Namespace) -> int:
    from infra.bootstrap.state import BootstrapError, bootstrap_aws

    try:
        result = bootstrap_aws(
            args.bucket,
            args.region,
            kms_alias=args.kms_alias,
            noncurrent_version_days=args.noncurrent_version_days,
        )
    except BootstrapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for change in result.changes:
        print(change.line())
    print()
    if result.unchanged:
        print(f"unchanged: s3://{result.bucket} and {result.kms_alias} already meet the baseline")
    else:
        changed = sum(change.action != "unchanged" for change in result.changes)
        print(f"done: {changed} setting(s) created or fixed; nothing was deleted")
    print()
    print("Next, from the repository root:")
    for line in result.next_steps(args.stacks):
        print(f"  {line}")
    return EXIT_OK


def _config_reference(args: argparse.Namespace) -> int:
    from infra.docs import config_reference

    print(config_reference(), end="")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
