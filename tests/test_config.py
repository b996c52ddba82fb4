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


# The research toggles and the product section each one left (issue 26).
MOVED = {
    "model": ("ngram_pooling", "ngram_min_df", "ngram_phonetic_fold", "word_recognition", "recognizer_min_count",
              "recognizer_min_key"),
    "training": ("min_encoder_gain", "ngram_solver", "harden_share", "harden_strategies"),
    "augment": ("adaptive_echoes",),
}


def _clear_arena_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("ARENA_"):
            monkeypatch.delenv(key)


def test_a_research_toggle_set_at_its_old_place_loads_into_experimental_with_a_warning_naming_the_new_key(
        tmp_path, monkeypatch, caplog):
    _clear_arena_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "arena.yaml"
    path.write_text("model:\n  ngram_pooling: mean\n  hidden_size: 64\n  word_recognition: false\n"
                    "training:\n  epochs: 3\n  harden_strategies: [spacing]\n  harden_share: 0.5\n"
                    "augment:\n  adaptive_echoes: 3\n  variants_per_failure: 2\n")
    monkeypatch.setenv("ARENA_MODEL__NGRAM_MIN_DF", "4")  # an environment variable at the old place too
    with caplog.at_level("WARNING", logger="content_arena.config"):
        cfg = load_config(path, training={"min_encoder_gain": None})  # and an override
    ex = cfg.experimental
    assert (ex.ngram_pooling, ex.word_recognition, ex.harden_strategies, ex.harden_share) == ("mean", False,
                                                                                               ["spacing"], 0.5)
    assert (ex.adaptive_echoes, ex.ngram_min_df, ex.min_encoder_gain) == (3, 4, None)
    # Keys not set keep the recipe's defaults; the product settings beside them are untouched.
    assert (ex.ngram_solver, ex.recognizer_min_key, ex.ngram_phonetic_fold) == ("lbfgs", 3, False)
    assert (cfg.model.hidden_size, cfg.training.epochs, cfg.augment.variants_per_failure) == (64, 3, 2)
    messages = [r.getMessage() for r in caplog.records]
    for old in ("model.ngram_pooling", "model.word_recognition", "model.ngram_min_df", "training.harden_strategies",
                "training.harden_share", "training.min_encoder_gain", "augment.adaptive_echoes"):
        key = old.split(".")[1]
        naming = [m for m in messages if m.startswith(f"{old} ") and f"experimental.{key}" in m]
        assert len(naming) == 1, (old, messages)
    assert len(messages) == 7

    # At its new place a toggle loads without a warning; a bad value at the old place names the new key.
    caplog.clear()
    monkeypatch.delenv("ARENA_MODEL__NGRAM_MIN_DF")
    path.unlink()
    with caplog.at_level("WARNING", logger="content_arena.config"):
        assert load_config(None, experimental={"ngram_pooling": "mean"}).experimental.ngram_pooling == "mean"
    assert not caplog.records
    with pytest.raises(ConfigError, match="experimental.ngram_min_df"):
        load_config(None, model={"ngram_min_df": -1})
    with pytest.raises(ConfigError, match="experimental.ngram_solver"):
        load_config(None, training={"ngram_solver": "sgd"})


def test_the_product_sections_no_longer_carry_research_toggles(tmp_path, monkeypatch, caplog):
    from content_arena.config import AugmentConfig, ExperimentalConfig, ModelConfig, TrainingConfig

    sections = {"model": ModelConfig, "training": TrainingConfig, "augment": AugmentConfig}
    for section, keys in MOVED.items():
        for key in keys:
            assert key not in sections[section].model_fields, f"{section}.{key}"
            assert key in ExperimentalConfig.model_fields, key
    # The section's defaults are the recipe.
    ex = ExperimentalConfig()
    assert (ex.ngram_pooling, ex.ngram_min_df, ex.ngram_phonetic_fold, ex.word_recognition) == ("idf", 1, False, True)
    assert (ex.recognizer_min_count, ex.recognizer_min_key, ex.min_encoder_gain, ex.ngram_solver) == (1, 3, 0.005,
                                                                                                      "lbfgs")
    assert (ex.harden_strategies, ex.harden_share, ex.adaptive_echoes) == ([], 1.0, 1)
    # The project's own tiny test config sets none of them at a former place.
    from support.configs import TINY

    _clear_arena_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    with caplog.at_level("WARNING", logger="content_arena.config"):
        load_config(None, **TINY)
    assert not caplog.records


def test_a_list_toggle_in_an_environment_variable_at_its_old_place_loads_as_a_list(tmp_path, monkeypatch):
    _clear_arena_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARENA_TRAINING__HARDEN_STRATEGIES", '["spacing", "nfd"]')
    assert load_config().experimental.harden_strategies == ["spacing", "nfd"]
    monkeypatch.setenv("ARENA_EXPERIMENTAL__HARDEN_STRATEGIES", '["homoglyph"]')
    monkeypatch.delenv("ARENA_TRAINING__HARDEN_STRATEGIES")
    assert load_config().experimental.harden_strategies == ["homoglyph"]
