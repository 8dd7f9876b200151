"""The policy gate: evaluate the real policy pack over a recorded :class:`Plan`.

Two transports, one protocol. The gate speaks the Analyzer protocol the Pulumi
CLI speaks to a policy pack, with the same requests, either

* ``"grpc"`` (what ``aigw plan`` uses): it starts ``policies/__main__.py`` as
  the CLI does (``python -u -m pulumi.policy <engine address> .`` in the pack
  directory, with the pack's virtualenv from ``PulumiPolicy.yaml``), reads the
  port the pack prints on its first stdout line, and calls ``GetAnalyzerInfo``,
  ``Configure``, ``ConfigureStack``, ``Analyze`` per resource and
  ``AnalyzeStack`` over gRPC; or
* ``"in-process"``: the same calls on the policy SDK's own analyzer servicer,
  built from the same policy list, without a subprocess (fast, for tests).

A resource policy reports its violations without a URN (the engine knows which
resource it asked about); the gate attaches each resource's URN, as the engine
does. Pack config (enforcement levels and parameters per policy, or ``"all"``)
is reconciled as the CLI does for ``--policy-pack-config``: unknown policies
or parameters are errors, schema defaults are filled in.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2 as proto
from pulumi.runtime.proto import analyzer_pb2_grpc

from infra.offline.engine import Plan, RecordedResource, Secret

Transport = Literal["grpc", "in-process"]

SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
"""The engine's marker for a secret value inside a property map."""

# The Python policy runtime never dials the engine (it logs to stderr without
# one); the CLI passes its own address here, the gate has none to offer.
ENGINE_ADDRESS = "127.0.0.1:0"
START_TIMEOUT_SECONDS = 120.0
CALL_TIMEOUT_SECONDS = 120.0

_LEVELS = {
    "advisory": proto.ADVISORY,
    "mandatory": proto.MANDATORY,
    "remediate": proto.REMEDIATE,
    "disabled": proto.DISABLED,
}
_LEVEL_NAMES = {v: k for k, v in _LEVELS.items()}


class PolicyGateError(RuntimeError):
    """The pack could not run or its config is invalid; the message says what to fix."""


@dataclass(frozen=True, order=True)
class Violation:
    """One diagnostic of one policy, attached to the resource it concerns."""

    policy: str
    urn: str
    level: str
    message: str

    @property
    def resource_name(self) -> str:
        """The resource's logical name (the last URN segment); the stack for stack-wide ones."""
        return self.urn.rsplit("::", 1)[-1] if self.urn else "(stack)"

    @property
    def resource_type(self) -> str:
        """The resource's type token, from its URN."""
        if not self.urn:
            return ""
        return self.urn.rsplit("::", 2)[-2].rsplit("$", 1)[-1]


@dataclass(frozen=True)
class Verdict:
    """What the pack said about a plan."""

    pack: str
    policies: tuple[str, ...]
    violations: tuple[Violation, ...]

    @property
    def mandatory(self) -> tuple[Violation, ...]:
        """Violations that block the deployment."""
        return tuple(v for v in self.violations if v.level == "mandatory")

    @property
    def passed(self) -> bool:
        """True when no mandatory policy failed."""
        return not self.mandatory

    def summary(self) -> str:
        """One line: how many policies ran and what they found."""
        if not self.violations:
            return f"{len(self.policies)} policies, compliant"
        return (
            f"{len(self.policies)} policies, {len(self.violations)} violations "
            f"({len(self.mandatory)} mandatory)"
        )

    def render(self) -> str:
        """Violations grouped by policy, each with the resource's name and type."""
        if not self.violations:
            return (
                f"Policies: compliant ({len(self.policies)} policies of {self.pack}, no violations)"
            )
        advisory = len(self.violations) - len(self.mandatory)
        lines = [
            f"Policies: {len(self.violations)} violations ({len(self.mandatory)} mandatory, "
            f"{advisory} advisory) from {len(self.policies)} policies of {self.pack}"
        ]
        grouped: dict[tuple[str, str], list[Violation]] = defaultdict(list)
        for violation in self.violations:
            grouped[(violation.level, violation.policy)].append(violation)
        order = {"mandatory": 0, "remediate": 1, "advisory": 2}
        for (level, policy), found in sorted(
            grouped.items(), key=lambda i: (order.get(i[0][0], 3), i[0][1])
        ):
            lines.append("")
            lines.append(f"  [{level}] {policy} ({len(found)})")
            for v in found:
                label = f"{v.resource_name} ({v.resource_type})" if v.urn else "(stack)"
                lines.append(f"    {label}: {v.message}")
        return "\n".join(lines)


# ------------------------------------------------------------------ pack config


def load_policy_config(path: Path | None) -> dict[str, Any]:
    """The pack config file (JSON, as ``pulumi preview --policy-pack-config``), or ``{}``."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise PolicyGateError(f"policy pack config {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise PolicyGateError(f"policy pack config {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyGateError(f"policy pack config {path} must be a JSON object of policy names")
    return data


def reconcile_config(
    info: proto.AnalyzerInfo, config: Mapping[str, Any]
) -> dict[str, proto.PolicyConfig]:
    """Every policy's effective level and parameters, as the CLI computes them.

    ``config`` maps ``"all"`` or a policy name to a level (``"advisory"``) or
    to an object of parameters with an optional ``"enforcementLevel"``.
    """
    policies = {p.name: p for p in info.policies}
    unknown = sorted(set(config) - set(policies) - {"all"})
    if unknown:
        raise PolicyGateError(
            f"policy pack config names unknown policies {unknown}; the pack has: "
            f"{', '.join(sorted(policies))}"
        )
    all_level = _level(config.get("all"), "all") if "all" in config else None
    result: dict[str, proto.PolicyConfig] = {}
    for name, policy in policies.items():
        entry = config.get(name)
        level = all_level if all_level is not None else policy.enforcementLevel
        schema = json_format.MessageToDict(policy.configSchema.properties)
        properties: dict[str, Any] = {
            key: spec["default"] for key, spec in schema.items() if "default" in spec
        }
        if isinstance(entry, str):
            level = _level(entry, name)
        elif isinstance(entry, dict):
            if "enforcementLevel" in entry:
                level = _level(entry["enforcementLevel"], name)
            allowed = set(schema)
            extra = sorted(set(entry) - allowed - {"enforcementLevel"})
            if extra:
                raise PolicyGateError(
                    f"policy pack config for {name} has unknown parameters {extra}; "
                    f"it takes {sorted(allowed) or 'none'}"
                )
            properties.update({k: v for k, v in entry.items() if k != "enforcementLevel"})
        elif entry is not None:
            raise PolicyGateError(
                f"policy pack config for {name} is {entry!r}: use a level such as "
                '"advisory" or an object of parameters'
            )
        _check_schema(name, schema, properties)
        # The generated stubs type the field as the enum's ValueType (an int at runtime).
        message = proto.PolicyConfig(enforcementLevel=level)  # type: ignore[arg-type]
        message.properties.update({k: v for k, v in properties.items() if v is not None})
        result[name] = message
    return result


def _check_schema(name: str, schema: Mapping[str, Any], properties: Mapping[str, Any]) -> None:
    """Validate a policy's parameters against its config schema, as the CLI does."""
    import jsonschema

    validator = jsonschema.Draft7Validator({"type": "object", "properties": dict(schema)})
    errors = sorted(validator.iter_errors(dict(properties)), key=lambda e: list(e.path))
    if errors:
        error = errors[0]
        where = ".".join(str(p) for p in error.path) or "(config)"
        raise PolicyGateError(
            f"policy pack config for {name}: {where}: {error.message}; see the policy's "
            "config schema (an exemption needs a reason and exactly one of urn or type)"
        )


def _level(value: Any, where: str) -> int:
    if not isinstance(value, str) or value not in _LEVELS:
        raise PolicyGateError(
            f"policy pack config for {where}: enforcement level {value!r} is not one of "
            f"{sorted(_LEVELS)}"
        )
    return _LEVELS[value]


# --------------------------------------------------------------------- requests


def _wire(value: Any) -> Any:
    """A recorded value in the engine's property encoding (secrets keep their marker)."""
    if isinstance(value, Secret):
        return {**SECRET_SIG, "value": _wire(value.value)}
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wire(v) for v in value]
    return value


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(_wire(dict(values)))
    return message


def _options(resource: RecordedResource) -> proto.AnalyzerResourceOptions:
    return proto.AnalyzerResourceOptions(
        parent=resource.parent or "",
        protect=resource.protect,
        deleteBeforeReplace=resource.delete_before_replace,
        deleteBeforeReplaceDefined=True,
    )


def _provider(plan: Plan, resource: RecordedResource) -> proto.AnalyzerProviderResource | None:
    if not resource.provider:
        return None
    urn = resource.provider.rsplit("::", 1)[0]
    try:
        provider = plan.by_urn(urn)
    except LookupError:
        return None
    return proto.AnalyzerProviderResource(
        type=provider.type, properties=_struct(provider.inputs), urn=urn, name=provider.name
    )


def analyze_requests(plan: Plan) -> list[proto.AnalyzeRequest]:
    """One ``Analyze`` request per recorded resource: its inputs, as preview sends them."""
    return [
        proto.AnalyzeRequest(
            type=r.type,
            properties=_struct(r.inputs),
            urn=r.urn,
            name=r.name,
            options=_options(r),
            provider=_provider(plan, r),
        )
        for r in plan.resources
    ]


def analyze_stack_request(plan: Plan) -> proto.AnalyzeStackRequest:
    """The ``AnalyzeStack`` request: every resource's outputs, parent and dependencies."""
    resources = []
    for r in plan.resources:
        message = proto.AnalyzerResource(
            type=r.type,
            properties=_struct(r.outputs or r.inputs),
            urn=r.urn,
            name=r.name,
            options=_options(r),
            provider=_provider(plan, r),
            parent=r.parent or "",
            dependencies=r.dependencies,
        )
        for key, urns in r.property_dependencies.items():
            message.propertyDependencies[key].urns.extend(urns)
        resources.append(message)
    return proto.AnalyzeStackRequest(resources=resources)


# ------------------------------------------------------------------- transports


class _InProcess:
    """The policy SDK's analyzer servicer, called directly (no subprocess, no socket)."""

    def __init__(self, pack_dir: Path):
        from pulumi_policy.policy import _PolicyAnalyzerServicer

        pack = _import_pack(pack_dir)
        self._servicer = _PolicyAnalyzerServicer(
            pack.PACK_NAME, "0.0.1", pack.all_policies(), pack.PACK_LEVEL
        )

    def __getattr__(self, method: str) -> Any:
        call = getattr(self._servicer, method)
        return lambda request, timeout=None: call(request, None)


def _import_pack(pack_dir: Path) -> Any:
    import importlib

    parent = str(pack_dir.resolve().parent)
    added = parent not in sys.path
    if added:
        sys.path.insert(0, parent)
    try:
        return importlib.import_module(f"{pack_dir.resolve().name}.pack")
    finally:
        if added:
            sys.path.remove(parent)


def pack_python(pack_dir: Path) -> str:
    """The interpreter the CLI would use: the virtualenv named in ``PulumiPolicy.yaml``."""
    manifest = pack_dir / "PulumiPolicy.yaml"
    if not manifest.exists():
        raise PolicyGateError(f"{pack_dir} is not a policy pack: PulumiPolicy.yaml is missing")
    spec = yaml.safe_load(manifest.read_text()) or {}
    runtime = spec.get("runtime") or {}
    options = runtime.get("options") if isinstance(runtime, dict) else None
    venv = (options or {}).get("virtualenv")
    if venv:
        # Not resolved: a virtualenv's python is a symlink, and only its own path
        # makes the interpreter pick up the virtualenv's site-packages.
        python = Path(os.path.abspath(pack_dir / venv / "bin" / "python"))
        if python.exists():
            return str(python)
    return sys.executable


class PackServer:
    """The pack's gRPC server, started as the Pulumi CLI starts it; stopped on exit.

    The process starts at construction and :meth:`port` waits for the port it
    prints, so a caller can start the pack first and do other work (run the
    program) while it boots: ``aigw plan`` does, and the pack's start-up costs
    no wall time on a second core.
    """

    def __init__(self, pack_dir: Path, *, project: str, stack: str):
        self.pack_dir = Path(pack_dir)
        self.project = project
        self.stack = stack
        env = {
            **os.environ,
            "PULUMI_PROJECT": project,
            "PULUMI_STACK": stack,
            "PULUMI_DRY_RUN": "true",
            "PULUMI_CONFIG": "{}",
        }
        python = pack_python(self.pack_dir)
        # Kept open for the server's life (its stderr explains a failed start);
        # closed by stop().
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                [python, "-u", "-m", "pulumi.policy", ENGINE_ADDRESS, "."],
                cwd=self.pack_dir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                start_new_session=True,
            )
        except BaseException:
            self._stderr.close()
            raise
        self._port: int | None = None

    def port(self) -> int:
        """The port the pack serves on (waits for the pack to print it)."""
        if self._port is None:
            self._port = _read_port(self._process, self._stderr)
        return self._port

    def stop(self) -> None:
        """Stop the pack (terminate, then kill after 10 s) and release its pipes."""
        process = self._process
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self._stderr.close()

    def __enter__(self) -> PackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_port(process: subprocess.Popen[bytes], stderr: Any) -> int:
    lines: queue.Queue[bytes] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=START_TIMEOUT_SECONDS)
    except queue.Empty:
        line = b""
    try:
        return int(line.strip())
    except ValueError:
        process.poll()
        stderr.seek(0)
        detail = stderr.read().decode(errors="replace").strip()[-2000:]
        raise PolicyGateError(
            f"the policy pack did not start (exit code {process.returncode}); it printed "
            f"{line!r} instead of its port. Its stderr:\n{detail}"
        ) from None


# ----------------------------------------------------------------- evaluation


def evaluate(
    plan: Plan,
    *,
    pack_dir: Path,
    config: Mapping[str, Any] | None = None,
    transport: Transport = "grpc",
    server: PackServer | None = None,
) -> Verdict:
    """Run the pack over the plan and return its verdict.

    ``server`` is a :class:`PackServer` started earlier for the same pack,
    project and stack (``"grpc"`` only); without it the pack is started here
    and stopped after.
    """
    pack_dir = Path(pack_dir)
    if transport == "in-process":
        return _evaluate(_InProcess(pack_dir), plan, config or {})
    if transport != "grpc":
        raise ValueError(f"unknown transport {transport!r}")
    if server is None:
        with PackServer(pack_dir, project=plan.project, stack=plan.stack) as started:
            return _evaluate_over_grpc(started, plan, config or {})
    if (server.pack_dir.resolve(), server.project, server.stack) != (
        pack_dir.resolve(),
        plan.project,
        plan.stack,
    ):
        raise ValueError(
            f"the pack server was started for {server.pack_dir} ({server.project}/"
            f"{server.stack}), not for {pack_dir} ({plan.project}/{plan.stack})"
        )
    return _evaluate_over_grpc(server, plan, config or {})


def _evaluate_over_grpc(server: PackServer, plan: Plan, config: Mapping[str, Any]) -> Verdict:
    import grpc

    port = server.port()
    channel = grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)]
    )
    try:
        grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT_SECONDS)
        return _evaluate(analyzer_pb2_grpc.AnalyzerStub(channel), plan, config)
    except grpc.FutureTimeoutError as exc:
        raise PolicyGateError(
            f"the policy pack printed port {port} but did not answer there within "
            f"{START_TIMEOUT_SECONDS:.0f}s"
        ) from exc
    except grpc.RpcError as exc:
        raise PolicyGateError(f"the policy pack failed: {exc}") from exc
    finally:
        channel.close()


def _evaluate(analyzer: Any, plan: Plan, config: Mapping[str, Any]) -> Verdict:
    timeout = CALL_TIMEOUT_SECONDS
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=timeout)
    analyzer.Configure(
        proto.ConfigureAnalyzerRequest(policyConfig=reconcile_config(info, config)),
        timeout=timeout,
    )
    analyzer.ConfigureStack(
        proto.AnalyzerStackConfigureRequest(stack=plan.stack, project=plan.project, dry_run=True),
        timeout=timeout,
    )
    descriptions = {p.name: p.description for p in info.policies}
    violations: list[Violation] = []
    for request in analyze_requests(plan):
        response = analyzer.Analyze(request, timeout=timeout)
        violations += [_violation(d, request.urn, descriptions) for d in response.diagnostics]
    response = analyzer.AnalyzeStack(analyze_stack_request(plan), timeout=timeout)
    violations += [_violation(d, "", descriptions) for d in response.diagnostics]
    return Verdict(
        pack=info.name,
        policies=tuple(sorted(descriptions)),
        violations=tuple(sorted(violations)),
    )


def _violation(diagnostic: Any, urn: str, descriptions: Mapping[str, str]) -> Violation:
    # The SDK prefixes each message with the policy's description; keep the message.
    message = diagnostic.message
    prefix = descriptions.get(diagnostic.policyName, "") + "\n"
    if message.startswith(prefix):
        message = message[len(prefix) :]
    return Violation(
        policy=diagnostic.policyName,
        urn=diagnostic.urn or urn,
        level=_LEVEL_NAMES.get(diagnostic.enforcementLevel, "advisory"),
        message=message,
    )
