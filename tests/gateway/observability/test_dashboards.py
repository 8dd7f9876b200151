"""The shipped Grafana dashboard and scrape config match the metrics the gateway exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from gateway_app.config import parse
from gateway_app.observability.metrics import Metrics

HERE = Path(__file__).resolve().parents[3] / "gateway_app" / "observability"


def _exported() -> set[str]:
    config = parse(
        {
            "providers": {"o": {"type": "openai", "api_key": "x"}},
            "models": {"m": {"deployments": [{"provider": "o", "model": "m"}]}},
            "observability": {"metrics": {"per_key_labels": True}},
        }
    )
    names = set()
    for family in Metrics(config).registry.collect():
        for sample_suffix in ("", "_total", "_bucket", "_count", "_sum"):
            names.add(family.name + sample_suffix)
    return names


def test_every_dashboard_query_uses_exported_metrics() -> None:
    dashboard = json.loads((HERE / "grafana" / "ai-gateway.json").read_text())
    exported = _exported()
    used = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used |= set(re.findall(r"\b(aigw_[a-z_]+)\b", target["expr"]))
    assert used, "the dashboard queries nothing"
    assert used <= exported, used - exported
    # Every family the issue lists is on the dashboard.
    for family in (
        "aigw_requests_total",
        "aigw_gateway_overhead_seconds_bucket",
        "aigw_upstream_latency_seconds_bucket",
        "aigw_time_to_first_token_seconds_bucket",
        "aigw_tokens_total",
        "aigw_cost_usd_total",
        "aigw_cache_lookups_total",
        "aigw_rejections_total",
        "aigw_circuit_state",
        "aigw_audit_buffer_depth",
        "aigw_semantic_cache_decisions_total",
        "aigw_semantic_cache_similarity_bucket",
    ):
        assert family in used, family


def test_scrape_config_follows_the_pod_annotations() -> None:
    config = yaml.safe_load((HERE / "prometheus" / "scrape.yaml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "ai-gateway")
    assert job["metrics_path"] == "/metrics"
    keep = job["relabel_configs"][0]
    assert keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    assert keep["action"] == "keep"
