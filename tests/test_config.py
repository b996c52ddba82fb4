from __future__ import annotations

import pytest

from content_arena.config import ConfigError, load_config


def test_defaults_match_the_design(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config()
    assert cfg.quality_gate.max_evasion_rate == 0.15
    assert cfg.quality_gate.min_f1_score == 0.85
    assert cfg.quality_gate.min_f1_drop == 0.05
    assert cfg.storage_url == "sqlite:///.arena/arena.db"
    assert cfg.tracking_uri == "sqlite:///.arena/mlflow.db"
    assert cfg.queue.url is None
    assert cfg.model.base_model is None


def test_yaml_file_then_environment_override(tmp_path, monkeypatch):
    path = tmp_path / "arena.yaml"
    path.write_text("home: /tmp/x\nquality_gate:\n  max_evasion_rate: 0.2\n  min_f1_score: 0.7\n")
    monkeypatch.setenv("ARENA_QUALITY_GATE__MAX_EVASION_RATE", "0.1")
    cfg = load_config(path)
    assert cfg.quality_gate.max_evasion_rate == 0.1  # environment wins
    assert cfg.quality_gate.min_f1_score == 0.7  # file value kept
    assert cfg.storage_url == "sqlite:////tmp/x/arena.db"


def test_arena_config_env_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "custom.yaml"
    path.write_text("attack:\n  rounds: 12\n")
    monkeypatch.setenv("ARENA_CONFIG", str(path))
    assert load_config().attack.rounds == 12


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("quality_gate:\n  max_evasion_rate: 1.5\n", "quality_gate.max_evasion_rate"),
        ("training:\n  epochs: many\n", "training.epochs"),
        ("model:\n  hidden_size: 130\n  num_heads: 4\n", "model"),
        ("attack:\n  strategies: []\n", "attack.strategies"),
        ("unknown_section: 1\n", "unknown_section"),
    ],
)
def test_bad_values_fail_with_key_and_reason(tmp_path, text, key):
    path = tmp_path / "arena.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert key in str(info.value)
    assert str(path) in str(info.value)


def test_bad_env_value_names_the_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARENA_QUALITY_GATE__MIN_F1_SCORE", "-3")
    with pytest.raises(ConfigError, match="quality_gate.min_f1_score"):
        load_config()


def test_missing_or_malformed_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listing)


def test_the_default_policy_is_an_fpr_of_ten_percent_with_isotonic_calibration_and_env_can_change_it(tmp_path,
                                                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config()
    assert (cfg.defender.operating_point.metric, cfg.defender.operating_point.value) == ("fpr", 0.10)
    assert cfg.defender.calibration == "isotonic" and cfg.quality_gate.min_recall == 0.60
    monkeypatch.setenv("ARENA_DEFENDER__OPERATING_POINT__METRIC", "recall")
    monkeypatch.setenv("ARENA_DEFENDER__OPERATING_POINT__VALUE", "0.8")
    assert load_config().defender.operating_point.describe() == "recall >= 0.80"


def test_a_bad_operating_point_names_the_key(tmp_path):
    path = tmp_path / "arena.yaml"
    path.write_text("defender:\n  operating_point: {metric: f1, value: 0.5}\n")
    with pytest.raises(ConfigError, match="defender.operating_point.metric"):
        load_config(path)
    path.write_text("defender:\n  operating_point: {metric: fpr, value: 0}\n")
    with pytest.raises(ConfigError, match="defender.operating_point.value"):
        load_config(path)


def test_an_old_file_with_the_retired_threshold_keys_still_loads_with_a_warning(tmp_path, caplog):
    path = tmp_path / "arena.yaml"
    path.write_text("training:\n  tune_threshold: true\n  challenger_threshold: mapped\n  refit_on_validation: true\n"
                    "  epochs: 3\n")
    with caplog.at_level("WARNING", logger="content_arena.config"):
        cfg = load_config(path)
    assert cfg.training.epochs == 3 and not hasattr(cfg.training, "tune_threshold")
    assert "training.challenger_threshold, training.refit_on_validation, training.tune_threshold" in caplog.text
    assert "defender.operating_point" in caplog.text
