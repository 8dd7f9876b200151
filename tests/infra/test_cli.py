"""``aigw plan`` and ``aigw config-reference`` as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.cli import EXIT_ERROR, EXIT_OK, main
from infra.offline import Plan
from policies.pack import all_policies
from tests.infra.conftest import ROOT
from tests.ports import kept_port


def _aigw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _stages(stderr: str, stack: str) -> list[tuple[str, str]]:
    """The progress log's (stage, detail) pairs, in order."""
    prefix = f"aigw plan {stack}: "
    found = []
    for line in stderr.splitlines():
        if line.startswith(prefix):
            match = re.fullmatch(r"(.+?) +\d+\.\ds(?:  (.*))?", line.removeprefix(prefix))
            assert match, line
            found.append((match.group(1), match.group(2) or ""))
    return found


def _check_progress(stderr: str, plan: Plan) -> None:
    stages = _stages(stderr, plan.stack)
    names = [name for name, _ in stages]
    # config first; then the program's top-level groups in the order it builds
    # them: each enabled cloud once, the global layer (DNS, records) around them.
    assert names[0] == "config"
    assert names[-3:] == ["register", "policy gate", "total"]
    groups = names[1:-3]
    clouds = plan.outputs["enabledClouds"]
    assert [g for g in groups if g != "global"] == clouds
    assert set(groups) == {"global", *clouds}
    assert stages[0][1] == f"Pulumi.{plan.stack}.yaml"
    # Each stage counts the resources the program built in it; together, all of them.
    built = [int(m.group(1)) for _, d in stages[1:-3] if (m := re.match(r"(\d+) resources?", d))]
    custom = sum(r.custom for r in plan.resources)
    assert sum(built) == custom
    assert stages[-3][1] == f"{custom} resources"
    assert stages[-2][1] == f"{len(all_policies())} policies, compliant"
    assert stages[-1][1] == "compliant"


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_plan_prints_every_stack_and_quiet_prints_only_the_results(
    stack: str,
    capsys: pytest.CaptureFixture[str],
    plans: dict[str, Plan],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The session's plans of the stacks (the program's run through the CLI is
    # the test below): what is printed for each, and nothing else with --quiet.
    monkeypatch.setattr("infra.offline.engine.record", lambda *a, **k: plans[stack])
    args = ["plan", "--stack", stack, "--project-dir", str(ROOT), "--quiet"]
    assert main([*args, "--policy-transport", "in-process"]) == EXIT_OK
    captured = capsys.readouterr()
    assert captured.out.startswith(f"Plan for stack {stack} of ai-gateway:")
    assert f'environment: "{stack}"' in captured.out
    assert captured.out.rstrip().endswith("no violations)")
    assert captured.err == ""


def test_plan_json_is_the_recorded_plan_on_a_clean_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from infra.offline import record

    assert main(["plan", "--stack", "prod", "--project-dir", str(ROOT), "--json"]) == EXIT_OK
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # nothing but the JSON on stdout
    # The real run: the program through the CLI, the pack over gRPC, and the
    # stages on stderr as plain lines (not a terminal). The session's `plans` carry
    # the deployer's provider keys; the CLI reads the stack file alone, as recorded here.
    for item in data:
        assert {"type", "name", "parent", "provider", "inputs"} <= set(item)
    expected = record("prod", project_dir=ROOT)
    assert _canonical(data) == _canonical(expected.to_json())
    _check_progress(captured.err, expected)
    assert "Policies: compliant" in captured.err


def _canonical(resources: list[dict[str, Any]]) -> list[str]:
    # Registration order and dependency order vary between runs (the SDK registers
    # concurrently and keeps dependencies in sets); the content must not.
    return sorted(
        json.dumps({**r, "dependencies": sorted(r["dependencies"])}, sort_keys=True)
        for r in resources
    )


def test_a_failed_program_stops_the_pack_started_beside_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.offline import policy_gate
    from infra.offline.engine import ProgramError

    started: list[policy_gate.PackServer] = []
    real_init = policy_gate.PackServer.__init__

    def spy(self: policy_gate.PackServer, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        started.append(self)

    def failing_program(*args: Any, **kwargs: Any) -> Plan:
        assert started, "the pack starts before the program runs"
        raise ProgramError("ai-gateway:aws.nodeCount: -1 is not allowed")

    monkeypatch.setattr(policy_gate.PackServer, "__init__", spy)
    monkeypatch.setattr("infra.offline.engine.record", failing_program)
    assert main(["plan", "--stack", "dev", "--project-dir", str(ROOT)]) == EXIT_ERROR
    assert started[0]._process.poll() is not None, "the pack process was left running"
    captured = capsys.readouterr()
    assert "error: stack dev: ai-gateway:aws.nodeCount: -1 is not allowed" in captured.err
    assert captured.out == ""


def test_bad_config_exits_two_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "Pulumi.dev.yaml"
    bad.write_text(
        (ROOT / "Pulumi.dev.yaml")
        .read_text()
        .replace("region: us-east-1", "region: us-east-1\n    nodeCount: -1", 1)
    )
    result = _aigw("plan", "--stack", "dev", "--stack-file", str(bad))
    assert result.returncode == EXIT_ERROR
    assert (
        "ai-gateway:aws.nodeCount: -1 is not allowed; use an integer from 1 to 100" in result.stderr
    )
    assert result.stdout == ""


def test_bad_app_config_exits_two_naming_the_key_path(tmp_path: Path) -> None:
    """The gateway's own model judges appConfig before any resource is registered."""
    bad = tmp_path / "Pulumi.dev.yaml"
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    assert "{provider: openai, model: gpt-4o, priority: 1}" in text
    bad.write_text(
        text.replace(
            "{provider: openai, model: gpt-4o, priority: 1}",
            "{provider: openia, model: gpt-4o, priority: first}",
        )
    )
    result = _aigw("plan", "--stack", "dev", "--stack-file", str(bad))
    assert result.returncode == EXIT_ERROR, result.stderr
    assert (
        "ai-gateway:gateway.appConfig.models.chat.deployments[3].priority: Input should be a "
        "valid integer, unable to parse string as an integer (got 'first')" in result.stderr
    )
    assert result.stdout == ""


def test_missing_stack_file_exits_two() -> None:
    result = _aigw("plan", "--stack", "nosuchstack")
    assert result.returncode == EXIT_ERROR
    assert "Pulumi.nosuchstack.yaml does not exist" in result.stderr


def test_the_config_reference_page_is_current() -> None:
    from docgen.pages import escape_markup
    from infra.docs import config_reference

    page = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    match = re.search(
        r"<!-- generated:stack-config:start -->\n(.*)<!-- generated:stack-config:end -->",
        page,
        re.S,
    )
    assert match, "docs/reference/configuration.md lacks the stack-config markers"
    assert match.group(1) == escape_markup(config_reference()), (
        "the config reference is stale: run `python -m docgen --write`"
    )


def test_readme_quick_start_has_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_section = readme.split("\n## ")[1]
    commands = re.findall(r"```(?:sh|bash)\n(.*?)```", first_section, re.S)
    lines = [line for block in commands for line in block.strip().splitlines()]
    assert lines == ["./scripts/plan", "./scripts/test"]
    for line in lines:
        assert (ROOT / line.removeprefix("./")).stat().st_mode & 0o111


def test_the_console_script_exempts_its_objects_from_the_last_collections() -> None:
    # In a fresh interpreter: the gateway's app freezes its own start-up objects
    # when the gateway tests run in this one.
    check = (
        "import contextlib, gc, io, sys\n"
        "from infra.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['config-reference'])\n"
        "    print(gc.get_freeze_count(), file=sys.stderr)\n"
        "    sys.argv = ['aigw', 'config-reference']\n"
        "    main()\n"
        "    print(gc.get_freeze_count(), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    with_arguments, as_the_command = map(int, result.stderr.split())
    assert with_arguments == 0  # called with arguments (tests): nothing frozen
    assert as_the_command > 10_000  # as the command, the process exits next


def test_the_gateway_commands_are_the_gateways_own_entry_point(tmp_path: Path) -> None:
    """``aigw serve|migrate|models|admin`` run ``python -m gateway_app``, never an import."""
    import os
    import signal
    import time
    import urllib.request

    listed = " ".join(_aigw("--help").stdout.split())  # argparse wraps the lines
    assert all(f"python -m gateway_app {name}" in listed for name in ("serve", "admin"))
    helped = _aigw("serve", "--help")
    assert helped.returncode == 0 and "usage: python -m gateway_app serve" in helped.stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGW_")}
    migrate = subprocess.run(
        [sys.executable, "-m", "infra.cli", "migrate"], cwd=ROOT, env=env, capture_output=True
    )
    assert migrate.returncode == 0 and b"AIGW_DATABASE_URL is not set" in migrate.stdout
    # Called as a function (tests, tools), the command runs as a child: its status returns.
    assert main(["models", "--config", "no/such/file.yaml"]) == 2
    # The aigw process becomes the server (exec): the same pid serves and gets SIGTERM.
    port = kept_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env={**env, "OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-test"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1:4] == [b"-m", b"gateway_app", b"serve"]
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        server.kill()


def test_the_pulumi_side_of_aigw_never_imports_the_gateway() -> None:
    code = (
        "import sys, infra.cli; infra.cli._parser(); "
        "print(sorted(m for m in sys.modules if m.startswith('gateway_app')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stderr
