"""The config file is validated at start-up; errors name the key and the reason."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway_app.cli import main
from gateway_app.config import EXAMPLE_CONFIG, ConfigError, load, parse
from tests.conftest import imported_modules
from tests.fakes import FakeUpstream, slow
from tests.ports import kept_port

ROOT = Path(__file__).resolve().parents[2]


def _base(**models: Any) -> dict[str, Any]:
    return {
        "providers": {"p": {"type": "openai", "api_key": "k"}},
        "models": models or {"m": {"deployments": [{"provider": "p", "model": "x"}]}},
    }


@pytest.mark.parametrize(
    ("mutate", "key", "reason"),
    [
        (
            lambda c: c["models"]["m"]["deployments"][0].update(weight=-1),
            "models.m.deployments[0].weight",
            "greater than or equal to 0",
        ),
        (
            lambda c: c["models"]["m"]["deployments"][0].update(provider="nope"),
            "models.m.deployments[0].provider",
            "not a key of `providers`",
        ),
        (lambda c: c["models"]["m"].update(strategy="fastest"), "models.m.strategy", "failover"),
        (lambda c: c["models"]["m"].update(deployments=[]), "models.m.deployments", "at least 1"),
        (
            lambda c: c["providers"]["p"].update(type="cohere"),
            "providers.p",
            "unknown provider type 'cohere'",
        ),
        (lambda c: c["models"]["m"].update(retrys=3), "models.m.retrys", "unknown key"),
        (
            lambda c: c.update(router={"circuit_breaker": {"failure_rate": 2}}),
            "router.circuit_breaker.failure_rate",
            "less than or equal to 1",
        ),
        (
            lambda c: c.update(server={"gc_threshold": 100}),
            "server.gc_threshold",
            "greater than or equal to 700",
        ),
    ],
)
def test_config_errors_name_key_and_reason(mutate: Any, key: str, reason: str) -> None:
    raw = _base()
    mutate(raw)
    with pytest.raises(ConfigError) as raised:
        parse(raw, "gw.yaml")
    message = str(raised.value)
    assert message.startswith("gw.yaml: invalid config") and key in message and reason in message


@pytest.mark.parametrize(
    ("provider", "key"),
    [
        ({"apiKeyEnv": "OPENAI_API_KEY"}, "apiKeyEnv"),  # the README's old spelling
        ({"api_key_env": ["OPENAI_API_KEY"]}, "api_key_env"),  # the gateway's internal field
        ({"apiKey": "${OPENAI_API_KEY}"}, "apiKey"),
    ],
)
def test_other_key_spellings_are_refused_with_the_accepted_form(
    provider: dict[str, Any], key: str
) -> None:
    raw = _base()
    raw["providers"]["p"] = {"type": "openai", **provider}
    with pytest.raises(ConfigError) as raised:
        parse(raw, "gw.yaml")
    (problem,) = raised.value.problems
    assert problem.path == f"providers.p.{key}"
    assert 'api_key: "${OPENAI_API_KEY}"' in problem.message


def test_unknown_keys_list_the_known_ones_and_references_resolve_from_a_given_environment() -> None:
    raw = _base()
    raw["routes"] = []
    raw["models"]["m"]["deployments"][0]["wieght"] = 2
    with pytest.raises(ConfigError) as raised:
        parse(raw, "gw.yaml")
    found = {p.path: p.message for p in raised.value.problems}
    assert "known keys here: cache, governance, identity, models" in found["routes"]
    assert "known keys here: model, name, params" in found["models.m.deployments[0].wieght"]

    raw = _base()
    raw["providers"]["p"]["api_key"] = "${GROQ_API_KEY}"
    config = parse(raw, environ={"GROQ_API_KEY": "gsk-1"})
    assert config.providers["p"].api_key == "gsk-1"
    assert config.providers["p"].api_key_env == ("GROQ_API_KEY",)
    assert parse(raw, environ={}).providers["p"].api_key is None


def test_provider_types_are_the_adapter_folders() -> None:
    from gateway_app.config import provider_types
    from gateway_app.providers import ADAPTERS

    assert set(provider_types()) == set(ADAPTERS)


def test_config_module_imports_only_pydantic_yaml_and_the_standard_library() -> None:
    """infra validates stacks with this module: it must not pull in the gateway's runtime."""
    modules = imported_modules(
        "import gateway_app.config as c; c.parse({'providers': {'p': {'type': 'openai'}}, "
        "'models': {'m': {'deployments': [{'provider': 'p', 'model': 'x'}]}}})"
    )
    allowed_roots = {"pydantic", "pydantic_core", "typing_extensions", "annotated_types"}
    allowed_roots |= {"typing_inspection", "yaml", "_yaml", "cython_runtime"}
    # The governance and identity sections' models: pydantic only.
    ours = {"gateway_app", "gateway_app.config", "gateway_app.config.governance"}
    ours.add("gateway_app.config.identity")
    foreign = [
        name
        for name in modules
        if name.split(".")[0] not in sys.stdlib_module_names | allowed_roots
        and name not in ours
        and not name.startswith("_")
    ]
    assert foreign == [], foreign


def test_example_config_reads_sdk_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "AIGW_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)
    config = load()
    assert {"gpt-4o-mini", "claude-sonnet-4-6"} <= set(config.models)
    assert config.providers["openai"].api_key is None
    assert config.providers["openai"].base_url == "https://api.openai.com/v1"
    assert config.providers["anthropic"].api_key_env == ("ANTHROPIC_API_KEY",)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    config = load(EXAMPLE_CONFIG)
    assert config.providers["openai"].api_key == "sk-1"
    assert config.providers["openai"].base_url == "http://127.0.0.1:9/v1"


def test_serve_refuses_bad_config_and_migrate_is_a_clear_noop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"models": {"m": {"deployments": [{"provider": "ghost", "model": "x"}]}}})
    )
    # serve exports AIGW_CONFIG for its workers; setting it here makes monkeypatch restore it.
    monkeypatch.setenv("AIGW_CONFIG", str(EXAMPLE_CONFIG))
    assert main(["serve", "--config", str(bad), "--port", "0"]) == 2
    assert "models.m.deployments[0].provider" in capsys.readouterr().err
    monkeypatch.delenv("AIGW_DATABASE_URL", raising=False)
    assert main(["migrate"]) == 0
    assert "AIGW_DATABASE_URL is not set" in capsys.readouterr().out


def test_gateway_runtime_needs_no_pulumi() -> None:
    code = (
        "import sys, gateway_app.app, gateway_app.cli; gateway_app.app.create_app();"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pulumi', 'infra', 'policies', 'openai', 'anthropic', 'httpx'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_aigw_cli_has_serve_without_importing_pulumi() -> None:
    code = "import sys, infra.cli; infra.cli._parser(); print(any(m.startswith('pulumi') for m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.stdout.strip() == "False", result.stderr


def test_python_m_serve_ready_without_keys_and_graceful_sigterm(tmp_path: Path) -> None:
    with FakeUpstream("openai") as fake:
        fake.script(slow(1.0))
        env = {
            k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "AIGW_CONFIG"
        }
        env.update(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fake.url, NO_PROXY="*")
        port = kept_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway_app", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    ready = httpx.get(url + "/health/ready", timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and process.poll() is None
                    time.sleep(0.1)
            assert ready.status_code == 200
            assert ready.json()["providers_missing_credentials"] == ["anthropic"]
            results: dict[str, Any] = {}

            def in_flight() -> None:
                results["response"] = httpx.post(
                    url + "/v1/chat/completions",
                    json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                    timeout=10,
                )

            thread = threading.Thread(target=in_flight)
            thread.start()
            assert fake.wait_for(lambda: len(fake.requests) == 1)
            process.send_signal(signal.SIGTERM)
            thread.join(10)
            # uvicorn re-raises SIGTERM after its graceful shutdown: exit by the signal.
            assert process.wait(10) in (0, -signal.SIGTERM)
            assert results["response"].status_code == 200
            assert results["response"].json()["choices"][0]["message"]["content"] == "echo: hi"
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)


def test_the_gc_threshold_is_the_servers_from_start_up_to_shutdown() -> None:
    """``server.gc_threshold`` is the cyclic GC's generation-0 threshold while the app
    runs (a governed request in flight holds ~80 tracked objects: Python's 700 is reached
    by the requests in flight alone); the process's own is back after shutdown."""
    import gc

    from gateway_app.app import GatewayApp
    from tests.gateway.conftest import run_async

    ambient = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        app = GatewayApp(parse({**_base(), "server": {"gc_threshold": 12_345}}))
        run_async(app.startup())
        assert gc.get_threshold() == (12_345, 10, 10)
        run_async(app.shutdown())
        assert gc.get_threshold() == (700, 10, 10)
        # The default: 10,000.
        assert parse(_base()).server.gc_threshold == 10_000
    finally:
        gc.set_threshold(*ambient)
