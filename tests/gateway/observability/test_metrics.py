"""/metrics: summed across worker processes, bounded labels, nothing secret in them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway_app.context import Caller, Exchange, RequestContext
from gateway_app.hooks import Hook
from tests.fakes import FakeUpstream
from tests.gateway.conftest import Running
from tests.ports import kept_port

SECRET_KEY = "sk-live-do-not-leak-0123456789"
PROMPT = "my secret prompt about the zebra migration"


def _samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric in the exposition text."""
    found = {}
    for line in text.splitlines():
        match = re.match(rf"^{name}(\{{.*\}})? (\S+)$", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


@pytest.fixture
def two_workers(fake_openai: FakeUpstream, tmp_path: Path) -> Any:
    config = {
        "providers": {
            "openai": {"type": "openai", "api_key": "sk-up", "base_url": fake_openai.url}
        },
        "models": {
            "gpt-4o-mini": {"deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]}
        },
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    port = kept_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway_app", "serve", "--config", str(path), "--port", str(port),
         "--workers", "2", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)


def test_counters_are_summed_over_two_worker_processes(two_workers: str) -> None:
    pids: dict[str, int] = {}
    sent = 0
    deadline = time.monotonic() + 60
    # Fresh connections until both workers have answered (request ids carry the pid).
    while len(pids) < 2 or sent < 20:
        assert time.monotonic() < deadline, f"only saw workers {pids}"
        with httpx.Client(base_url=two_workers, timeout=10) as client:
            response = client.post(
                "/v1/chat/completions",
                headers={"authorization": f"Bearer {SECRET_KEY}"},
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]},
            )
        assert response.status_code == 200
        sent += 1
        worker = response.headers["x-request-id"][4:12]
        pids[worker] = pids.get(worker, 0) + 1
    with httpx.Client(base_url=two_workers, timeout=10) as client:
        text = client.get("/metrics").text
    requests = _samples(text, "aigw_requests_total")
    ok = [v for labels, v in requests.items() if 'status="200"' in labels and "chat" in labels]
    assert sum(ok) == sent, (pids, requests)
    tokens = _samples(text, "aigw_tokens_total")
    assert sum(tokens.values()) == sent * (11 + 7)  # the fake reports 11 in, 7 out
    overhead = _samples(text, "aigw_gateway_overhead_seconds_count")
    assert sum(overhead.values()) == sent
    assert SECRET_KEY not in text and "zebra" not in text


def test_no_label_value_holds_a_key_or_a_prompt(standard: Running) -> None:
    client = httpx.Client(base_url=standard.url, timeout=10)
    headers = {"authorization": f"Bearer {SECRET_KEY}", "x-api-key": SECRET_KEY}
    bodies = [
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "user": PROMPT},
        {"model": PROMPT, "messages": [{"role": "user", "content": PROMPT}]},  # unknown model
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "stream": True},
        {"model": "text-embedding-3-small", "input": PROMPT},
    ]
    for body in bodies:
        path = "/v1/embeddings" if "input" in body else "/v1/chat/completions"
        client.post(path, headers=headers, json=body)
    client.post(f"/v1/{PROMPT.replace(' ', '-')}", headers=headers, json={})  # unknown path
    text = client.get("/metrics").text
    values = re.findall(r'="([^"]*)"', text)
    assert values, "no labelled samples"
    for value in values:
        assert SECRET_KEY not in value and "zebra" not in value and "Bearer" not in value
    models = {v for v in re.findall(r'model="([^"]*)"', text)}
    assert models <= {"gpt-4o-mini", "claude-sonnet-4-6", "text-embedding-3-small", "other", ""}
    assert "other" in models  # the unknown model was folded, not echoed
    endpoints = set(re.findall(r'endpoint="([^"]*)"', text))
    assert endpoints <= {"/v1/chat/completions", "/v1/embeddings", "/v1/models", "other"}


def test_metrics_cover_streams_cache_and_circuits(standard: Running) -> None:
    client = standard.client()
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    list(stream)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert float(raw.headers["x-gateway-overhead-ms"]) >= 0
    text = httpx.get(standard.url + "/metrics").text
    assert sum(_samples(text, "aigw_time_to_first_token_seconds_count").values()) == 1
    upstream = _samples(text, "aigw_upstream_latency_seconds_count")
    assert sum(v for k, v in upstream.items() if 'outcome="ok"' in k) == 2
    circuit = _samples(text, "aigw_circuit_state")
    assert circuit['{deployment="openai/gpt-4o-mini"}'] == 0.0


class Identity(Hook[None]):
    """Stands in for governance's auth hook."""

    async def before(self, request: RequestContext, exchange: Exchange) -> None:
        request.caller = Caller("key_123", "team-a", "project-a")
        request.customer = "cust-9"

    async def after(self, request: RequestContext, exchange: Exchange, state: None) -> None:
        return None


@pytest.mark.parametrize("per_key", [False, True])
def test_per_key_labels_only_when_enabled(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream, per_key: bool
) -> None:
    from gateway_app.config import parse
    from gateway_app.observability.hook import ObservabilityHook
    from gateway_app.observability.metrics import Metrics
    from tests.gateway.conftest import providers, serve

    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": {
            "gpt-4o-mini": {"deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]}
        },
        "observability": {"metrics": {"per_key_labels": per_key}},
    }
    config = parse(raw)
    metrics = Metrics(config)
    with serve(raw, hooks=[ObservabilityHook(config, metrics), Identity()]) as running:
        running.client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    text = metrics.render().decode()  # the hook's own registry (the app's is another)
    by_key = _samples(text, "aigw_requests_by_key_total")
    if per_key:
        assert by_key == {
            '{customer="cust-9",key_id="key_123",project="project-a",team="team-a"}': 1.0
        }
    else:
        assert by_key == {} and "key_123" not in text and "cust-9" not in text


def test_a_request_outcomes_children_are_bound_once_and_created_on_first_use() -> None:
    """``Metrics.record`` binds the children of a request outcome once (one lookup per
    request); a family the request leaves untouched (no cost, no cache) gets no series,
    as with the per-family lookups: the first cost creates it."""
    from gateway_app.apis import CHAT_COMPLETIONS
    from gateway_app.config import parse
    from gateway_app.observability.metrics import Metrics

    metrics = Metrics(
        parse(
            {
                "providers": {"openai": {"type": "openai", "api_key": "sk-up"}},
                "models": {"m": {"deployments": [{"provider": "openai", "model": "m"}]}},
            }
        )
    )

    def finish(cost: float | None) -> str:
        request = RequestContext("r", CHAT_COMPLETIONS.path, {}, CHAT_COMPLETIONS, {})
        request.model = "m"
        exchange = Exchange()
        exchange.status = 200
        exchange.overhead_s = 0.0004
        exchange.cost_usd = cost
        metrics.record(request, exchange, time.perf_counter())
        return metrics.render().decode()

    text = finish(None)
    assert _samples(text, "aigw_requests_total") == {
        '{cache="",deployment="",endpoint="/v1/chat/completions",model="m",provider="",'
        'status="200"}': 1.0
    }
    assert _samples(text, "aigw_cost_usd_total") == {}  # no cost yet: no series
    assert _samples(text, "aigw_cache_total") == {}
    text = finish(0.25)
    assert list(_samples(text, "aigw_requests_total").values()) == [2.0]
    assert _samples(text, "aigw_cost_usd_total") == {'{deployment="",model="m"}': 0.25}
    assert _samples(text, "aigw_gateway_overhead_seconds_count") == {
        '{endpoint="/v1/chat/completions"}': 2.0
    }
