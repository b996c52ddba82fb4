"""The alert rules: promtool checks and unit-tests them, and the chart and the kustomize base ship the
same groups. Needs ``promtool`` (Debian package ``prometheus``; scripts/test.sh installs it); skips,
saying so, without it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from tests.k8s.helpers import by_kind, kustomize, render_chart

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "charts" / "content-arena" / "files" / "arena-alerts.rules.yaml"
RULE_TESTS = Path(__file__).with_name("arena-alerts.test.yaml")
RUNBOOK = REPO / "docs" / "runbook.md"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install -y prometheus)")


def alert_names() -> list[str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in done.stdout


@needs_promtool
def test_the_rules_pass_their_promtool_unit_tests() -> None:
    done = subprocess.run([PROMTOOL, "test", "rules", RULE_TESTS.name], capture_output=True, text=True, timeout=120,
                          cwd=RULE_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_unit_tested_and_has_a_runbook_section() -> None:
    tested = {case["alertname"] for test in yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
              for case in test.get("alert_rule_test", [])}
    runbook = RUNBOOK.read_text(encoding="utf-8")
    for name in alert_names():
        assert name in tested, f"{name} has no promtool test"
        assert f"\n## {name}\n" in runbook, f"{name} has no section in docs/runbook.md"


def test_the_chart_and_the_kustomize_base_ship_the_same_rules() -> None:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    chart = by_kind(render_chart(), "PrometheusRule")["content-arena-alerts"]
    base = by_kind(kustomize("base"), "PrometheusRule")["content-arena-alerts"]
    assert chart["apiVersion"] == base["apiVersion"] == "monitoring.coreos.com/v1"
    assert chart["spec"] == groups
    assert base["spec"] == groups
    assert "PrometheusRule" not in {o["kind"] for o in render_chart({"prometheusRule": {"enabled": False}})}


def test_the_dashboard_has_a_panel_per_signal_by_model_version() -> None:
    import json

    for path in (REPO / "charts/content-arena/files/arena-dashboard.json", REPO / "manifests/base/grafana/arena-dashboard.json"):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
        for metric in ("arena_live_score_psi", "arena_live_flagged_total", "arena_live_normalized_total",
                       "arena_live_unknown_words_total", "arena_live_text_length_chars_bucket"):
            assert any(metric in e and "model_version" in e for e in exprs), metric
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids))
