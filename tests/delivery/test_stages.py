"""content_arena.stages: configuration of a step, its files, and the pieces that need no model."""

from __future__ import annotations

import pytest
import yaml

from content_arena import stages
from content_arena.config import ConfigError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    import os

    for key in list(os.environ):
        if key.startswith("ARENA_") and not key.startswith("ARENA_TEST"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_config_from_a_path_from_yaml_text_and_from_defaults(tmp_path):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "arena.yaml"
    path.write_text("attack: {rounds: 7}\n", encoding="utf-8")
    assert stages.load_stage_config(str(path)).attack.rounds == 7
    assert stages.load_stage_config("attack:\n  rounds: 9\n").attack.rounds == 9
    assert stages.load_stage_config("{attack: {rounds: 11}}").attack.rounds == 11
    assert stages.load_stage_config("").attack.rounds == 600  # no ./arena.yaml here: the defaults
    assert stages.load_stage_config(None, "attack: {rounds: 3}").attack.rounds == 3


def test_overrides_win_over_the_file_and_the_environment_wins_over_both(tmp_path, monkeypatch):
    path = tmp_path / "arena.yaml"
    path.write_text("attack: {rounds: 7, seed: 1}\n", encoding="utf-8")
    cfg = stages.load_stage_config(str(path), "{attack: {rounds: 8}}")
    assert (cfg.attack.rounds, cfg.attack.seed) == (8, 1)
    monkeypatch.setenv("ARENA_ATTACK__ROUNDS", "12")
    assert stages.load_stage_config(str(path), "{attack: {rounds: 8}}").attack.rounds == 12


def test_overrides_fill_kubernetes_style_references_from_the_environment(monkeypatch):
    monkeypatch.setenv("DB_PASSWORD", "pa55")
    cfg = stages.load_stage_config("", "{storage: {url: 'postgresql+psycopg://arena:$(DB_PASSWORD)@db:5432/arena'}}")
    assert cfg.storage_url == "postgresql+psycopg://arena:pa55@db:5432/arena"
    assert stages.expand_env_references("$(UNSET_NAME) $(DB_PASSWORD) $HOME", {"DB_PASSWORD": "x"}) == "$(UNSET_NAME) x $HOME"


@pytest.mark.parametrize(
    ("config", "overrides", "message"),
    [
        ("/no/such/arena.yaml", None, "neither a readable file nor YAML text"),
        ("attack: [", None, "neither a readable file nor YAML text"),
        ("attack: {rounds: 0}", None, "attack.rounds"),
        (None, "[1, 2]", "overrides must be a mapping"),
        (None, "{attack: {rounds: -1}}", "attack.rounds"),
        (None, "a: [", "cannot parse the config overrides"),
    ],
)
def test_bad_configuration_is_a_config_error_naming_the_problem(config, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", "\\[")):
        stages.load_stage_config(config, overrides)


def test_evaluation_report_survives_its_json_form(tmp_path):
    from content_arena.evaluation import EvaluationReport, StrategyResult
    from content_arena.metrics import BinaryMetrics

    report = EvaluationReport(
        clean=BinaryMetrics(n=10, f1=0.8, precision=0.75, recall=0.9, auroc=None, fpr=0.1, accuracy=0.85),
        attacks={"nfd": StrategyResult(0.25, 0.05, 4, 1, 6), "spacing": StrategyResult(0.5, 0.0, 4, 2, 6)},
        threshold=0.6,
    )
    path = tmp_path / "report.json"
    stages.write_json(path, {"report": report.to_dict(), "threshold": report.threshold})
    again = stages.read_report(stages.read_json(path))
    assert again == report
    assert again.evasion_rate == report.evasion_rate == 3 / 8


def test_jsonl_round_trip_keeps_unicode(tmp_path):
    rows = [{"text": "씨\u200b발", "label": 1}, {"text": "hello", "label": 0}]
    assert stages.write_jsonl(tmp_path / "x.jsonl", rows) == 2
    assert list(stages.read_jsonl(tmp_path / "x.jsonl")) == rows
    assert "씨" in (tmp_path / "x.jsonl").read_text(encoding="utf-8")


def test_storage_locations_and_their_versions():
    from content_arena.rollout import version_from_storage_uri

    cfg = stages.load_stage_config("", yaml.safe_dump({"serving": {"storage_uri_prefix": "s3://bucket/content-filter/"}}))
    assert stages.storage_uri_for(cfg, 12) == "s3://bucket/content-filter/v12"
    assert version_from_storage_uri("s3://bucket/content-filter", "s3://bucket/content-filter/v12") == 12
    assert version_from_storage_uri("s3://bucket/content-filter", "s3://bucket/content-filter/champion") is None
    assert version_from_storage_uri("s3://bucket/content-filter", "s3://bucket/content-filter-v2/v3") is None


def test_publishing_to_a_claim_needs_it_mounted(tmp_path):
    cfg = stages.load_stage_config("", "{serving: {storage_uri_prefix: 'pvc://models/content-filter'}}")
    with pytest.raises(ValueError, match="give the directory where claims are mounted"):
        stages.publish_model(cfg, 2)
    with pytest.raises(FileNotFoundError, match="claim 'models' is not mounted at"):
        stages.publish_model(cfg, 2, pvc_root=tmp_path)


def test_rollout_refuses_a_canary_share_outside_1_to_99():
    with pytest.raises(ValueError, match="between 1 and 99"):
        stages.rollout("", None, 2, canary_percent=100, dry_run=True)
