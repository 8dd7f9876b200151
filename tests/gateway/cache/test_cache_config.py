"""Cache config, the provider embedder, and what the hot path imports."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from gateway_app.cache.guard import PROFILES
from gateway_app.cache.hook import CacheHook, build, check_semantic_runtime, policies
from gateway_app.cache.semantic import ProviderEmbedder
from gateway_app.cli import main
from gateway_app.config import ConfigError, parse
from tests.fakes import FakeUpstream
from tests.gateway.conftest import providers, run_async, serve

ROOT = Path(__file__).resolve().parents[3]


def _raw(fake_openai: FakeUpstream, fake_anthropic: FakeUpstream, **cache: Any) -> dict[str, Any]:
    return {
        "providers": providers(fake_openai, fake_anthropic),
        "models": {
            "gpt-4o-mini": {
                "deployments": [{"provider": "openai", "model": "gpt-4o-mini"}],
                "cache": {"ttl_s": 5, "semantic": True, "threshold": 0.9},
            },
            "text-embedding-3-small": {
                "deployments": [{"provider": "openai", "model": "text-embedding-3-small"}]
            },
        },
        "cache": {"enabled": True, "ttl_s": 60, **cache},
    }


def test_model_settings_override_the_defaults(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    config = parse(_raw(fake_openai, fake_anthropic))
    chosen = policies(config)
    assert (chosen["gpt-4o-mini"].ttl_s, chosen["gpt-4o-mini"].semantic) == (5, True)
    # A model's threshold replaces its profile's cosine floor; the judge's stays.
    assert chosen["gpt-4o-mini"].guard == replace(PROFILES["strict"], floor=0.9)
    assert chosen["text-embedding-3-small"].ttl_s == 60
    assert chosen["text-embedding-3-small"].guard == PROFILES["strict"]


def test_the_guard_profile_is_chosen_per_model_or_for_all(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    raw = _raw(fake_openai, fake_anthropic, semantic={"guard": "loose", "threshold": 0.8})
    raw["models"]["gpt-4o-mini"]["cache"] = {"guard": "strict"}
    chosen = policies(parse(raw))
    assert chosen["gpt-4o-mini"].guard == replace(PROFILES["strict"], floor=0.8)
    assert chosen["text-embedding-3-small"].guard == replace(PROFILES["loose"], floor=0.8)
    # Loose asks less of the judge (opt-in: more hits, more wrong ones).
    assert PROFILES["loose"].judge < PROFILES["strict"].judge
    with pytest.raises(ConfigError, match=r"cache\.semantic\.guard"):
        parse(_raw(fake_openai, fake_anthropic, semantic={"guard": "lenient"}))


def test_an_unknown_embedder_fails_at_start(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    with pytest.raises(ConfigError, match=r"cache\.semantic\.embedder: 'nope'"):
        parse(_raw(fake_openai, fake_anthropic, semantic={"embedder": "nope"}))


def test_semantic_caching_without_the_semantic_extra_fails_at_start(
    fake_openai: FakeUpstream,
    fake_anthropic: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A model opts into semantic hits with the default local embedder; the extra is
    # installed here, so hide one of its modules as a plain `pip install` would lack it.
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(_raw(fake_openai, fake_anthropic)))
    monkeypatch.setenv("AIGW_CONFIG", str(path))  # serve sets it; monkeypatch restores it
    monkeypatch.setitem(sys.modules, "tokenizers", None)

    def bind(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the server started with semantic caching unable to work")

    monkeypatch.setattr("gateway_app.server.run", bind)
    assert main(["serve", "--config", str(path), "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert "cache.semantic.embedder: 'local'" in error
    assert "tokenizers cannot be imported" in error and "gpt-4o-mini" in error
    assert "ai-gateway[semantic]" in error
    # The judge runs the local model whichever embedder finds candidates: one of
    # the gateway's embeddings models as the embedder needs the extra too.
    raw = _raw(fake_openai, fake_anthropic, semantic={"embedder": "text-embedding-3-small"})
    with pytest.raises(ConfigError, match=r"the judge .* runs all-MiniLM-L6-v2 in-process"):
        check_semantic_runtime(parse(raw))
    # With no model opting in (only a request header can), it is not an error.
    raw = _raw(fake_openai, fake_anthropic)
    raw["models"]["gpt-4o-mini"]["cache"]["semantic"] = False
    check_semantic_runtime(parse(raw))


def test_cache_disabled_builds_no_hook(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    config = parse(_raw(fake_openai, fake_anthropic, enabled=False))
    assert build(config, None, None, None) is None


def test_provider_embedder_uses_the_gateways_own_embeddings_model(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    raw = _raw(fake_openai, fake_anthropic, semantic={"embedder": "text-embedding-3-small"})
    with serve(raw) as running:
        hooks = [h for h in running.app.hooks.hooks if isinstance(h, CacheHook)]
        assert hooks and isinstance(hooks[0].semantic.embedder, ProviderEmbedder)  # type: ignore[union-attr]
        client = running.client()
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}]
        )
    embedded = [r for r in fake_openai.requests if r["path"].endswith("/embeddings")]
    assert [r["json"] for r in embedded] == [
        {"model": "text-embedding-3-small", "input": "hello there"}
    ]


def test_provider_embedder_failure_is_a_miss_not_an_error() -> None:
    async def broken(text: str) -> bytes:
        raise ConnectionError("down")

    async def fine(text: str) -> bytes:
        return b'{"data": [{"embedding": [3.0, 4.0]}]}'

    assert run_async(ProviderEmbedder(broken).embed("x")) is None
    vector = run_async(ProviderEmbedder(fine).embed("x"))
    assert np.allclose(vector, [0.6, 0.8])


def test_hot_path_imports_neither_otel_nor_the_embedding_stack() -> None:
    code = (
        "import sys, gateway_app.app as a, gateway_app.config as c;"
        "a.create_app(c.load('gateway_app/example.yaml'));"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'opentelemetry', 'numpy', 'tokenizers', 'safetensors'}))"
    )
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60, env=env
    )
    assert result.stdout.strip() == "[]", result.stderr
