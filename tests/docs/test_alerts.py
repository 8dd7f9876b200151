"""The shipped alert rules and their runbooks (docs/operations/alerts.md) stay in step."""

from __future__ import annotations

import re

import yaml

from docgen.reference import metric_families
from tests.conftest import ROOT

RULES = ROOT / "gateway_app" / "observability" / "prometheus" / "alerts.yaml"
RUNBOOKS = ROOT / "docs" / "operations" / "alerts.md"


def _rules() -> list[dict]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def test_every_rule_queries_metrics_the_gateway_exports() -> None:
    exported = {"up"}
    for name, kind, _labels, _help in metric_families():
        exported |= (
            {f"{name}_bucket", f"{name}_sum", f"{name}_count"} if kind == "histogram" else {name}
        )
    for rule in _rules():
        used = set(re.findall(r"\b(aigw_[a-z_]+|up)\b(?=\s*[{\[)]|\s*==)", rule["expr"]))
        assert used, rule["alert"]
        assert used <= exported, (rule["alert"], used - exported)


def test_every_rule_has_a_runbook_section_and_every_section_a_rule() -> None:
    page = RUNBOOKS.read_text()
    sections = set(re.findall(r"^### (Aigw[A-Za-z]+)$", page, re.M))
    rules = {rule["alert"] for rule in _rules()}
    assert sections == rules
    for rule in _rules():
        assert rule["labels"]["severity"] in ("page", "ticket", "info"), rule["alert"]
        anchor = rule["annotations"]["runbook"]
        assert anchor == f"docs/operations/alerts.md#{rule['alert'].lower()}", anchor
