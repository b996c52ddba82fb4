"""The loop run in one process and as the compiled Kubeflow pipeline gives the same run.

The same tiny config, with ``adaptive`` among the strategies, runs twice from an empty workspace:
once through :func:`content_arena.orchestrator.run_pipeline`, once as the pipeline under
``kfp.local`` (``SubprocessRunner(use_venv=False)``: every step a subprocess of this Python). Both
must reach the same gate decision with the same reasons, play the same battle (rounds and evasions
per strategy), and take the same promotion decision — and ``adaptive`` must evade in both, which it
only can when each step binds it to the champion.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

from .conftest import REPO

PARITY_LOOP = {
    "model": {"vocab_size": 600, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
              "ngram_buckets": 4096, "ngram_dim": 16, "max_length": 64},
    "training": {"epochs": 2, "challenger_epochs": 1, "batch_size": 32, "learning_rate": 3e-3, "seed": 3,
                 "torch_threads": 1, "max_train_examples": 400},
    "inference": {"torch_threads": 1},
    "attack": {"rounds": 30, "batch_size": 64, "strategies": ["spacing", "adaptive"]},
    "augment": {"variants_per_failure": 1},
    # Out of reach for the tiny model: the gate fails and the retraining branch runs in both.
    "quality_gate": {"min_f1_score": 0.99},
}


@pytest.fixture
def parity_workspace(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("ARENA_") and not key.startswith("ARENA_TEST"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "arena.yaml"
    config.write_text(yaml.safe_dump(PARITY_LOOP), encoding="utf-8")
    return tmp_path, config


def _per_strategy(battle: dict) -> dict[str, tuple[int, int]]:
    return {name: (int(s["rounds"]), int(s["evaded"])) for name, s in battle["per_strategy"].items()}


@pytest.mark.slow
def test_in_process_loop_and_compiled_pipeline_take_the_same_decisions(parity_workspace):
    import kfp.local

    from content_arena.config import load_config
    from content_arena.delivery.commands import load_pipeline_module
    from content_arena.orchestrator import run_pipeline

    root, config = parity_workspace
    local = run_pipeline(load_config(config, home=str(root / "in-process"))).to_dict()

    pipeline = load_pipeline_module(REPO)
    kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False), pipeline_root=str(root / "outputs"))
    decision = pipeline.adversarial_loop(
        config=str(config), overrides=pipeline.local_overrides(root / "kfp"), rollout_dry_run=True
    ).output
    (run,) = (root / "outputs").iterdir()
    gate = json.loads((run / "quality-gate" / "gate").read_text(encoding="utf-8"))
    battle = json.loads((run / "attack" / "battle").read_text(encoding="utf-8"))
    comparison = json.loads((run / "compare" / "comparison").read_text(encoding="utf-8"))

    assert decision == gate["decision"] == local["gate"]["decision"] == "FAIL"
    assert gate["reasons"] == local["gate"]["reasons"]
    assert battle["rounds"] == local["battle"]["rounds"] == PARITY_LOOP["attack"]["rounds"]
    assert _per_strategy(battle) == _per_strategy(local["battle"])
    assert _per_strategy(battle)["adaptive"][1] >= 1, "adaptive never evaded: it was not bound to the champion"
    assert comparison["promote"] == local["promoted"]
    assert comparison["reasons"] == local["comparison"]["reasons"]
