"""The whole loop on a tiny config (real training, real SQLite store, real MLflow sqlite registry)."""

from __future__ import annotations

import numpy as np
import pytest

from content_arena.attack_runner import ERROR_INTERNAL, AttackRunner, BattleStopped
from content_arena.attacks import get_strategy
from content_arena.data import Example, split_examples
from content_arena.defender import Defender
from content_arena.model_registry import CHAMPION
from content_arena.orchestrator import Workspace, load_dataset, load_splits, run_pipeline
from content_arena.store import open_store

pytestmark = pytest.mark.slow


def test_loop_bootstraps_attacks_gates_retrains_and_decides(tiny_config):
    cfg = tiny_config()
    summary = run_pipeline(cfg)
    result = summary.to_dict()

    assert result["bootstrapped"] is True
    assert result["gate"]["decision"] in ("PASS", "FAIL")
    before = result["champion_before"]
    assert set(before["per_strategy"]) == set(cfg.attack.strategies)
    assert 0.0 <= before["evasion_rate"] <= 1.0 and 0.0 <= before["f1"] <= 1.0

    ws = Workspace.open(cfg)
    battle = ws.store.get_battle(result["battle"]["battle_id"])
    assert battle.status == "completed" and battle.rounds_completed == cfg.attack.rounds
    assert ws.store.count_rounds(battle.id) == cfg.attack.rounds
    # The battle attacks training texts only: the validation split picks the challenger's best epoch,
    # so its texts must not come back as collected failures in the challenger's training data.
    train, _ = load_dataset(cfg)
    fit_set, val = split_examples(train, test_fraction=0.1, seed=cfg.data.split_seed + 1)
    assert load_splits(cfg).seeds == [e for e in fit_set if e.label == 1]
    attacked = {r.original_text for r in ws.store.list_rounds(battle.id, limit=None)}
    assert attacked <= {e.text for e in fit_set}, sorted(attacked - {e.text for e in fit_set})[:5]

    if result["gate"]["decision"] == "FAIL":
        # The tiny model cannot reach F1 0.85, so it must retrain.
        assert result["challenger"] is not None
        assert result["challenger"]["version"] == 2
        assert set(result["challenger"]["per_strategy"]) == set(before["per_strategy"])
        assert ws.store.count_training_samples(source="battle") == battle.evaded_count or battle.evaded_count > 0
        assert result["promoted"] == result["comparison"]["promote"]
        expected = 2 if result["promoted"] else 1
        assert result["champion_version"] == expected
        assert ws.registry.version_for(CHAMPION) == expected
        statuses = {m.version: m.status for m in ws.store.list_models()}
        assert statuses[2] == ("champion" if result["promoted"] else "rejected")
        assert statuses[1] == ("archived" if result["promoted"] else "champion")
    else:
        assert result["challenger"] is None

    # A second run reuses the registered champion instead of training a new one.
    again = run_pipeline(cfg).to_dict()
    assert again["bootstrapped"] is False
    assert again["champion_before"]["version"] == result["champion_version"]


class FlakyDefender(Defender):
    """Flags everything containing '놈'; raises on the call number ``fail_on``."""

    def __init__(self, fail_on: int | None = None):
        super().__init__()
        self.calls = 0
        self.fail_on = fail_on
        self.ready = True

    def load(self):
        return self

    def predict(self, texts):
        self.calls += 1
        if self.fail_on is not None and self.calls == self.fail_on:
            raise RuntimeError("simulated crash mid-battle")
        return np.array([0.9 if "놈" in t else 0.1 for t in texts], dtype=np.float32)


SEEDS = [Example("이 미친놈아", 1), Example("개같은 놈", 1), Example("나쁜 놈들", 1)]


def test_crash_mid_battle_keeps_written_rounds_and_rerun_resumes(tmp_path, caplog):
    store = open_store(f"sqlite:///{tmp_path}/arena.db")
    strategies = [get_strategy("spacing"), get_strategy("jamo_split")]
    runner = AttackRunner(FlakyDefender(fail_on=3), store, strategies, batch_size=10, seed=1)
    battle_id = runner.start(SEEDS, rounds=50)
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner.run(battle_id, SEEDS)
    crashed = store.get_battle(battle_id)
    # The stored error is a fixed string a client may see; the cause goes to the log.
    assert crashed.status == "failed" and crashed.error == ERROR_INTERNAL
    assert "simulated crash" in caplog.text
    assert store.count_rounds(battle_id) == 20  # two batches committed before the crash

    resumed = AttackRunner(FlakyDefender(), store, strategies, batch_size=10, seed=1)
    summary = resumed.run(battle_id, SEEDS)
    assert summary.status == "completed" and summary.rounds == 50
    assert store.done_round_numbers(battle_id) == set(range(50))
    # The plan is deterministic: a fresh battle from scratch writes the same variants.
    fresh = AttackRunner(FlakyDefender(), store, strategies, batch_size=50, seed=1)
    other = fresh.start(SEEDS, rounds=50)
    fresh.run(other, SEEDS)
    first = [r.attacked_text for r in store.list_rounds(battle_id, limit=50)]
    second = [r.attacked_text for r in store.list_rounds(other, limit=50)]
    assert first == second


def test_stop_request_leaves_battle_stopped(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/arena.db")
    calls = {"n": 0}

    def stop_after_two():
        calls["n"] += 1
        return calls["n"] > 2

    runner = AttackRunner(FlakyDefender(), store, [get_strategy("nfd")], batch_size=5, should_stop=stop_after_two)
    battle_id = runner.start(SEEDS, rounds=30)
    with pytest.raises(BattleStopped):
        runner.run(battle_id, SEEDS)
    assert store.get_battle(battle_id).status == "stopped"
    assert store.count_rounds(battle_id) == 10


def test_gate_failing_without_evasions_still_trains_a_challenger(tiny_config, monkeypatch):
    """The gate fails on F1 while the battle yields nothing to learn from.

    A real battle against a tiny model always has some misses, so collection is replaced by an
    empty result here: the test is about the branch that follows, not about collection.
    """
    import content_arena.steps.collect as collect_step
    from content_arena.sample_collector import CollectionResult

    monkeypatch.setattr(collect_step, "collect_failures", lambda store, battle_id: CollectionResult())
    cfg = tiny_config(attack={"strategies": ["nfd"], "rounds": 40}, quality_gate={"min_f1_score": 0.999})
    result = run_pipeline(cfg).to_dict()
    assert result["gate"]["decision"] == "FAIL"
    assert any("min_f1_score" in reason for reason in result["gate"]["reasons"])
    assert result["challenger"] is not None and result["challenger"]["version"] == 2
