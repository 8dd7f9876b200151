"""Run the real Pulumi program in-process under mocks and record every resource.

The Pulumi CLI runs a program by giving it a resource monitor: every resource
the program registers goes to the monitor, which asks the providers to create
it and returns the outputs. :func:`record` gives the program a recording
monitor instead, built on Pulumi's own ``MockMonitor`` with ``preview=False``
(so every ``apply`` runs on concrete values):

* it applies the program's stack transforms, as the engine does (Pulumi's mock
  monitor does not), so the recorded inputs are what the engine would send to
  the providers;
* it records each resource's type, name, URN, parent, provider and inputs,
  with secret values kept wrapped in :class:`Secret`;
* it answers with realistic outputs from :mod:`infra.offline.fakes`, secret
  where the input was secret, as the engine would.

The result is a :class:`Plan`, which the tests assert on, ``aigw plan`` prints
and the policy gate evaluates.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import runpy
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from infra.offline import fakes, sdk_imports
from infra.offline.progress import Progress
from infra.offline.stackfile import (
    StackConfigFile,
    find_project_root,
    read_project,
    read_stack_file,
)

log = logging.getLogger("aigw.offline")

# The program imports whole provider SDKs' service packages; load only the
# modules it uses (see infra.offline.sdk_imports; AIGW_EAGER_SDK_IMPORTS=1 turns
# this off, to compare or to debug).
if os.environ.get("AIGW_EAGER_SDK_IMPORTS", "") not in ("1", "true"):
    sdk_imports.install()

PLAN_GC_THRESHOLD = 10_000
"""The collector's first threshold while a program runs (see :func:`_fewer_collections`)."""

SECRET_MARKER = "[secret]"
"""What a secret value is replaced by in JSON output."""


class ProgramError(RuntimeError):
    """The program failed (bad config, a bug, a provider check); the message says why."""


@dataclass(frozen=True)
class Secret:
    """A value the program marked secret; tests assert on this wrapper."""

    value: Any

    def __repr__(self) -> str:  # never print the value by accident
        return "Secret([secret])"


@dataclass
class RecordedResource:
    """One resource as the engine would see it: what the program asked for."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    provider: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    protect: bool = False
    delete_before_replace: bool = False
    id: str | None = None

    @property
    def package(self) -> str:
        """``aws``, ``azure-native``, ``gcp``, ``kubernetes``, ``pulumi`` (providers) ..."""
        if self.type.startswith("pulumi:providers:"):
            return "pulumi"
        return self.type.split(":", 1)[0]

    def get(self, path: str, default: Any = None) -> Any:
        """An input by dotted path (``"settings.ipConfiguration.ipv4Enabled"``), secrets unwrapped."""
        node: Any = self.inputs
        for part in path.split("."):
            node = reveal(node)
            if isinstance(node, Mapping):
                node = node.get(part, default)
            elif isinstance(node, list) and part.isdigit():
                node = node[int(part)] if int(part) < len(node) else default
            else:
                return default
        return reveal(node)

    def to_json(self) -> dict[str, Any]:
        """The JSON form of ``aigw plan --json``: secrets replaced by ``[secret]``."""
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "provider": self.provider,
            "custom": self.custom,
            "inputs": mask(self.inputs),
            "dependencies": self.dependencies,
        }


@dataclass
class Plan:
    """Every resource a program run registered, in registration order, plus its exports."""

    project: str
    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    stack_urn: str

    def of_type(self, type_token: str) -> list[RecordedResource]:
        """All resources of one type."""
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> RecordedResource:
        """The single resource of a type (and name, if given); fails loudly otherwise."""
        found = [r for r in self.of_type(type_token) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.of_type(type_token)]
            raise LookupError(f"expected one {type_token} named {name!r}, found {names}")
        return found[0]

    def by_urn(self, urn: str) -> RecordedResource:
        """A resource by URN."""
        for r in self.resources:
            if r.urn == urn:
                return r
        raise LookupError(urn)

    def children(self, parent: RecordedResource) -> list[RecordedResource]:
        """Direct children of a resource."""
        return [r for r in self.resources if r.parent == parent.urn]

    def ancestors(self, resource: RecordedResource) -> Iterator[RecordedResource]:
        """Parents up to (not including) the stack."""
        urns = {r.urn: r for r in self.resources}
        current = urns.get(resource.parent or "")
        while current is not None:
            yield current
            current = urns.get(current.parent or "")

    def direct_dependencies(self, resource: RecordedResource) -> set[str]:
        """The URNs the engine must finish before ``resource``: what it waits on.

        Its explicit ``depends_on`` and the resources its inputs came from (as
        the SDK sends them), its provider (a resource waits for its provider,
        which waits for its own inputs) and a custom parent (whose URN resolves
        only once it exists). Component parents impose no order.
        """
        urns = set(resource.dependencies)
        for sources in resource.property_dependencies.values():
            urns.update(sources)
        if resource.provider:
            urns.add(resource.provider.rsplit("::", 1)[0])
        if resource.parent:
            parent = self._by_urn().get(resource.parent)
            if parent is not None and parent.custom:
                urns.add(parent.urn)
        urns.discard(resource.urn)
        return urns

    def dependency_closure(self, resource: RecordedResource) -> set[str]:
        """Every URN ``resource`` waits on, transitively (see :meth:`direct_dependencies`).

        ``depends_on=[component]`` arrives already expanded by the SDK to the
        component's resources registered by then, so components are not expanded
        again here (that would claim an order the engine never enforces).
        """
        by_urn = self._by_urn()
        seen: set[str] = set()
        stack = list(self.direct_dependencies(resource))
        while stack:
            urn = stack.pop()
            if urn in seen:
                continue
            seen.add(urn)
            node = by_urn.get(urn)
            if node is None:
                continue
            stack.extend(self.direct_dependencies(node))
        return seen

    def _by_urn(self) -> dict[str, RecordedResource]:
        cached = self.__dict__.get("_urn_index")
        if cached is None or len(cached) != len(self.resources):
            cached = self.__dict__["_urn_index"] = {r.urn: r for r in self.resources}
        return cached

    def to_json(self) -> list[dict[str, Any]]:
        """The recorded resources as plain JSON-able objects."""
        return [r.to_json() for r in self.resources]


# ------------------------------------------------------------------ secret helpers


def _from_rpc(value: Any) -> Any:
    """Turn the SDK's wrapped secrets into :class:`Secret`, recursively."""
    if rpc.is_rpc_secret(value):
        return Secret(_from_rpc(rpc.unwrap_rpc_secret(value)))
    if isinstance(value, dict):
        return {k: _from_rpc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_rpc(v) for v in value]
    return value


def reveal(value: Any) -> Any:
    """A value with every :class:`Secret` unwrapped (for assertions on the content)."""
    if isinstance(value, Secret):
        return reveal(value.value)
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def mask(value: Any) -> Any:
    """A value with every :class:`Secret` replaced by ``[secret]``."""
    if isinstance(value, Secret):
        return SECRET_MARKER
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def unknown_paths(value: Any, path: str = "") -> list[str]:
    """Paths inside ``value`` that are still unknown (the engine's unknown sentinel)."""
    if isinstance(value, Secret):
        return unknown_paths(value.value, path)
    if value == rpc.UNKNOWN:
        return [path or "<root>"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in unknown_paths(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in unknown_paths(v, f"{path}[{i}]")]
    return []


# ------------------------------------------------------------------------- mocks


class _Mocks(pulumi.runtime.Mocks):
    """Answers resources and data sources with the fakes of :mod:`infra.offline.fakes`."""

    def __init__(self, context: fakes.FakeContext, provider_inputs: Mapping[str, dict[str, Any]]):
        self.context = context
        self._provider_inputs = provider_inputs

    def _context_for(self, provider_ref: str | None) -> fakes.FakeContext:
        if not provider_ref:
            return self.context
        urn = provider_ref.rsplit("::", 1)[0]
        inputs = self._provider_inputs.get(urn, {})
        changes: dict[str, str] = {}
        if isinstance(inputs.get("region"), str) and ":providers:aws::" in urn:
            changes["aws_region"] = inputs["region"]
        if ":providers:gcp::" in urn:
            if isinstance(inputs.get("project"), str):
                changes["gcp_project"] = inputs["project"]
            if isinstance(inputs.get("region"), str):
                changes["gcp_region"] = inputs["region"]
        return dataclasses.replace(self.context, **changes) if changes else self.context

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if not args.custom:
            return (None, {})
        ctx = self._context_for(args.provider)
        if args.typ.startswith("pulumi:providers:"):
            return (f"provider-{fakes.fake_hex(args.typ, args.name, length=8)}", dict(args.inputs))
        package = args.typ.split(":", 1)[0]
        fake = fakes.RESOURCES.get(args.typ)
        generic = fakes.GENERIC.get(package)
        outputs: dict[str, Any] = {}
        if generic is not None:
            outputs.update(generic(ctx, args.typ, args.name, dict(args.inputs)))
        if fake is not None:
            outputs.update(fake(ctx, args.typ, args.name, dict(args.inputs)))
        resource_id = (
            outputs.pop("id", None)
            or f"{args.name}-{fakes.fake_hex(args.typ, args.name, length=8)}"
        )
        return (resource_id, {**args.inputs, **outputs})

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        fake = fakes.FUNCTIONS.get(args.token)
        if fake is None:
            raise ProgramError(
                f"the offline engine has no fake for the data source {args.token}; add one "
                "with @function(...) in infra/offline/fakes/<provider>.py"
            )
        return (fake(self._context_for(args.provider), dict(args.args)), [])


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """Pulumi's mock monitor, plus what the real engine does that it skips."""

    def __init__(self, mocks: _Mocks, provider_inputs: dict[str, dict[str, Any]]):
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        self.resource_outputs: dict[str, dict[str, Any]] = {}
        self.stack_urn = ""
        self._provider_inputs = provider_inputs
        self._lock = threading.Lock()

    def _transform(self, request: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        transforms = [*pulumi_mocks._resolve_callbacks(request.transforms), *self._stack_transforms]
        for transform in transforms:
            result = transform(
                pulumi.ResourceTransformArgs(
                    custom=request.custom,
                    type_=request.type,
                    name=request.name,
                    props=inputs,
                    opts=pulumi.ResourceOptions(),
                )
            )
            if hasattr(result, "__await__"):
                result = _sync_await(result)
            if result is not None:
                inputs = dict(result.props)
        return inputs

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = urn
            return resource_pb2.RegisterResourceResponse(urn=urn)

        pulumi_mocks._ensure_event_loop()
        inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        inputs = self._transform(request, inputs)
        recorded_inputs = _from_rpc(inputs)
        plain = reveal(recorded_inputs)
        if request.type.startswith("pulumi:providers:"):
            self._provider_inputs[urn] = plain

        resource_id, state = self.mocks.new_resource(
            pulumi.runtime.MockResourceArgs(
                typ=request.type,
                name=request.name,
                inputs=plain,
                provider=request.provider,
                resource_id=request.importId,
                custom=request.custom or False,
            )
        )
        # Outputs stay secret where the input was, and where the SDK asked.
        secret_keys = {k for k, v in inputs.items() if rpc.is_rpc_secret(v)}
        secret_keys |= set(request.additionalSecretOutputs)
        state = {k: (rpc.wrap_rpc_secret(v) if k in secret_keys else v) for k, v in state.items()}
        obj_proto = _sync_await(rpc.serialize_properties(state, {}))

        with self._lock:
            # A component has no id: the SDK's own mock monitor stores None for it too.
            self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(
                urn,
                resource_id,  # type: ignore[arg-type]
                state,
            )
            self.recorded.append(
                RecordedResource(
                    urn=urn,
                    type=request.type,
                    name=request.name,
                    custom=bool(request.custom),
                    parent=request.parent or None,
                    provider=request.provider or None,
                    inputs=recorded_inputs,
                    outputs=_from_rpc(state),
                    dependencies=list(request.dependencies),
                    property_dependencies={
                        k: list(v.urns) for k, v in request.propertyDependencies.items()
                    },
                    protect=bool(request.protect),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    id=resource_id,
                )
            )
        return resource_pb2.RegisterResourceResponse(
            urn=urn, id=resource_id or "", object=obj_proto
        )

    def RegisterResourceOutputs(self, request: Any) -> Any:
        pulumi_mocks._ensure_event_loop()
        outputs = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
        with self._lock:
            self.resource_outputs[request.urn] = _from_rpc(outputs)
        return super().RegisterResourceOutputs(request)


# ----------------------------------------------------------------------- running

_RUN_LOCK = threading.Lock()


def record(
    stack: str,
    *,
    project_dir: Path | None = None,
    stack_file: Path | None = None,
    program: Path | None = None,
    config: Mapping[str, Any] | None = None,
    secret_config: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> Plan:
    """Run the program for one stack under mocks and return every registered resource.

    ``stack`` names ``Pulumi.<stack>.yaml`` in the project directory (found from
    the working directory when not given). ``stack_file`` reads another file
    instead; ``program`` runs another program (the tests' fixture programs);
    ``config`` overrides or adds config keys (``"ai-gateway:aws"`` -> value);
    ``secret_config`` adds keys marked secret, as ``pulumi config set --secret``
    (``"ai-gateway:providerKeys"`` -> ``{"openai": "sk-..."}``).
    ``progress`` is told the run's stages (see :class:`_StageTracker`).

    Raises :class:`ProgramError` with the program's message when it fails, for
    example on a bad config value.
    """
    stages = _StageTracker(progress or Progress())
    stages.start("config")
    root = (project_dir or find_project_root()).resolve()
    project = read_project(root)
    file = read_stack_file(stack_file or root / f"Pulumi.{stack}.yaml", stack)
    stages.detail = file.path.name
    values = dict(file.values)
    secret_keys = list(file.secret_keys)
    for key, value in (config or {}).items():
        values[key] = value if isinstance(value, str) else _json(value)
    for key, value in (secret_config or {}).items():
        values[key] = value if isinstance(value, str) else _json(value)
        secret_keys = [*(k for k in secret_keys if k != key), key]
    file = StackConfigFile(file.stack, file.path, values, secret_keys)
    main = (program or project.main).resolve()

    fakes.load_all()
    provider_inputs: dict[str, dict[str, Any]] = {}
    mocks = _Mocks(fakes.FakeContext(project=project.name, stack=stack), provider_inputs)
    monitor = _RecordingMonitor(mocks, provider_inputs)

    with _RUN_LOCK, _program_path(main.parent), _fewer_collections():
        # The SDK asks the calling thread for its event loop while resources register. A
        # caller that ran ``asyncio.run`` before (which leaves the thread with no loop)
        # would fail with "There is no current event loop": give the thread one.
        pulumi_mocks._ensure_event_loop()
        pulumi.runtime.set_all_config(file.values, file.secret_keys)
        settings.ROOT.set(None)
        pulumi.runtime.set_mocks(
            mocks, project=project.name, stack=stack, preview=False, monitor=monitor
        )
        settings.ROOT.set(None)

        def run_program() -> None:
            if progress is not None:
                pulumi.runtime.register_stack_transformation(stages.observe)
            runpy.run_path(str(main), run_name="__main__")
            # The program's last line ran; the engine now answers what is left.
            stages.start("register")

        try:
            _sync_await(run_in_stack(run_program))
        except ProgramError:
            raise
        except Exception as exc:
            raise ProgramError(_describe(exc)) from exc
        finally:
            settings.ROOT.set(None)
            settings.SETTINGS.rpc_manager.clear()
            settings.SETTINGS.outputs.clear()

    resources = monitor.recorded
    for resource in resources:
        resource.outputs = monitor.resource_outputs.get(resource.urn, resource.outputs)
    plan = Plan(
        project=project.name,
        stack=stack,
        resources=resources,
        outputs=monitor.resource_outputs.get(monitor.stack_urn, {}),
        stack_urn=monitor.stack_urn,
    )
    unknown = [
        f"{r.type} {r.name}: {', '.join(paths)}"
        for r in resources
        if (paths := unknown_paths(r.inputs))
    ]
    if unknown:
        raise ProgramError(
            "inputs still unknown after the program finished (a fake output is missing): "
            + "; ".join(unknown)
        )
    stages.detail = f"{sum(r.custom for r in resources)} resources"
    stages.finish()
    return plan


class _StageTracker:
    """Tells a :class:`Progress` which part of the program is running, as it runs.

    The stages follow the program's top-level components: it builds the global
    layer under ``ai-gateway:global:*`` and each cloud under one
    ``ai-gateway:<cloud>:Footprint``, so a top-level component of another
    group (the middle of its type token) starts that group's stage, which
    counts the resources constructed until the next. The hook is a stack
    transformation: the SDK calls it synchronously, in program order, when each
    resource is constructed, and it changes nothing (it returns ``None``).
    """

    def __init__(self, progress: Progress):
        self.progress = progress
        self.detail = ""
        self._group: str | None = None
        self._resources = 0
        self._components = 0

    def start(self, group: str) -> None:
        """End the running stage and start ``group``'s."""
        self.finish()
        self._group = group
        self._resources = self._components = 0
        self.progress.begin(group)

    def finish(self) -> None:
        """End the running stage with what it constructed (or its :attr:`detail`)."""
        if self._group is None:
            return
        counted = [
            f"{count} {noun}{'' if count == 1 else 's'}"
            for count, noun in ((self._resources, "resource"), (self._components, "component"))
            if count
        ]
        self.progress.end(", ".join(filter(None, [self.detail, *counted])))
        self._group = None
        self.detail = ""

    def observe(self, args: pulumi.ResourceTransformationArgs) -> None:
        """The stack transformation: note the resource, start a stage on a new group."""
        custom = isinstance(args.resource, pulumi.CustomResource)
        parent = args.opts.parent if args.opts is not None else None
        if not custom and (parent is None or parent is settings.get_root_resource()):
            parts = args.type_.split(":")
            group = parts[1] if len(parts) == 3 else args.type_
            if group != self._group:
                self.start(group)
        if custom:
            self._resources += 1
        else:
            self._components += 1
        return None


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def _describe(exc: BaseException) -> str:
    """The message to show for a failed run: a ConfigError's own text, else type and message.

    The SDK's RPC layer may wrap the program's exception; walk the chain (it
    can be cyclic) for the error the user should read.
    """
    from infra.config import ConfigError

    seen: set[int] = set()
    inner: BaseException | None = exc
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        if isinstance(inner, ConfigError):
            return str(inner)
        inner = inner.__cause__ or inner.__context__
    return f"{type(exc).__name__}: {exc}"


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often while the program runs.

    A plan builds about 900,000 long-lived objects (the SDK classes it
    imports, their typing aliases, the resources' outputs); at Python's
    default thresholds (700, 10, 10) the collector walks all of them nine
    times in a prod plan, a sixth of its CPU (bench/plan-profile.md). At
    (10,000, 10, 10) it walks them none; garbage cycles are still collected,
    in bigger batches (peak memory +1 MB). The previous thresholds come back
    after.
    """
    previous = gc.get_threshold()
    gc.set_threshold(PLAN_GC_THRESHOLD, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


class _program_path:
    """Put the program's directory first on ``sys.path``, as the Pulumi CLI does."""

    def __init__(self, directory: Path):
        self.directory = str(directory)

    def __enter__(self) -> None:
        sys.path.insert(0, self.directory)
        self._cwd = os.getcwd()

    def __exit__(self, *exc: object) -> None:
        if self.directory in sys.path:
            sys.path.remove(self.directory)
        os.chdir(self._cwd)
