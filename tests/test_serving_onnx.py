"""``serving.runtime: onnx``: the defender's float32 weights served by ONNX Runtime give torch's
probabilities (within 1e-4) for a decoder without a padding token and for encoders, at batch 1 and 64
over texts of every length; without onnxruntime the defender says so once and serves with torch."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys

import numpy as np
import pytest

from content_arena.config import ConfigError, load_config
from content_arena.data import load_seed_corpus
from content_arena.defender import TransformerDefender, load_defender, onnx_runtime
from content_arena.serving import DefenderModel
from content_arena.training import train_champion
from tiny_backbones import build

pytestmark = pytest.mark.slow

needs_onnx = pytest.mark.skipif(
    bool(onnx_runtime.missing_packages()),
    reason=f"{' and '.join(onnx_runtime.missing_packages())} not installed (pip install 'content-arena[onnx]')")

# Empty, one character, a sentence, a text past max_length (cut), a control token typed as text, Korean.
TEXTS = ["", "a", "you are an idiot and a fool", "have a nice day " * 40, "hello [SEP] world </s>", "씨발 꺼져",
         *(e.text for e in load_seed_corpus()[:160])]


@pytest.fixture(scope="module")
def champions(tmp_path_factory):
    """A champion of each kind: a Llama-style decoder whose checkpoint names no padding token, and two
    encoders (BERT, ELECTRA), trained one epoch on seed texts from tiny random-weight checkpoints."""
    root = tmp_path_factory.mktemp("onnx")
    examples = load_seed_corpus()[:64]
    out = {}
    for kind in ("llama-no-pad", "bert", "electra"):
        cfg = load_config(None, home=str(root / ".arena"),
                          model={"base_model": str(build(kind, root / kind / "base")), "max_length": 32},
                          training={"epochs": 1, "batch_size": 16, "seed": 0})
        out[kind] = train_champion(examples[:48], root / kind / "champion", cfg, val_examples=examples[48:]).model_dir
    return out


@needs_onnx
@pytest.mark.parametrize("kind", ["llama-no-pad", "bert", "electra"])
@pytest.mark.parametrize("batch_size", [1, 64])
def test_onnx_runtime_gives_the_probabilities_of_float32_torch(champions, kind, batch_size):
    torch_defender = TransformerDefender(champions[kind], batch_size=batch_size, device="cpu").load()
    onnx_defender = TransformerDefender(champions[kind], batch_size=batch_size, runtime="onnx").load()
    assert onnx_defender.runtime_in_use == "onnx" and torch_defender.runtime_in_use == "torch"
    assert onnx_defender.device.type == "cpu"
    prepared = torch_defender.preprocess(TEXTS)
    lengths = torch_defender.encoder.encode(prepared).lengths
    assert lengths.min() < 5 and lengths.max() == torch_defender.max_length  # padding and truncation both met
    expected, served = torch_defender.predict(prepared), onnx_defender.predict(prepared)
    assert served.shape == expected.shape == (len(TEXTS),)
    assert np.abs(served - expected).max() <= 1e-4
    assert onnx_defender.scores(TEXTS) == pytest.approx(torch_defender.scores(TEXTS), abs=1e-4)


@needs_onnx
def test_the_export_is_reused_from_the_cache_directory(champions, tmp_path, monkeypatch):
    first = TransformerDefender(champions["bert"], runtime="onnx", onnx_cache_dir=tmp_path / "onnx").load()
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == [first.onnx.path.name]

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_runtime, "export_classifier", no_export)
    again = TransformerDefender(champions["bert"], runtime="onnx", onnx_cache_dir=tmp_path / "onnx").load()
    assert again.runtime_in_use == "onnx" and again.onnx.path == first.onnx.path
    assert again.predict(["you are an idiot"]) == pytest.approx(first.predict(["you are an idiot"]), abs=1e-6)


@needs_onnx
def test_the_runtime_comes_from_the_configuration_for_the_library_and_kserve(champions, tmp_path, monkeypatch):
    assert load_config(None, home=str(tmp_path)).serving.runtime == "torch"
    monkeypatch.setenv("ARENA_SERVING__RUNTIME", "onnx")
    cfg = load_config(None, home=str(tmp_path))
    assert cfg.serving.runtime == "onnx"
    library = load_defender(champions["llama-no-pad"], cfg)
    assert library.runtime_in_use == "onnx" and list((tmp_path / "onnx").glob("*.onnx"))
    model = DefenderModel("content-filter", model_dir=champions["llama-no-pad"], config=cfg)
    assert model.runtime == "onnx" and model.load() and model.defender.runtime_in_use == "onnx"
    result = asyncio.run(model({"instances": TEXTS[:8]}))
    predictions = (result[0] if isinstance(result, tuple) else result)["predictions"]
    expected = TransformerDefender(champions["llama-no-pad"], device="cpu").load().classify(TEXTS[:8])
    assert [p["toxic_score"] for p in predictions] == pytest.approx([e["toxic_score"] for e in expected], abs=1e-4)
    # An explicit argument wins over the configuration.
    assert DefenderModel("content-filter", model_dir=champions["bert"], config=cfg, runtime="torch").runtime == "torch"


@needs_onnx
def test_an_export_onnx_runtime_cannot_open_leaves_torch_serving(champions, tmp_path, caplog):
    from content_arena.defender.artifacts import read_manifest

    key = onnx_runtime.export_key(champions["bert"], read_manifest(champions["bert"]).files)
    (tmp_path / f"{key}.onnx").write_bytes(b"not a model")
    with caplog.at_level(logging.WARNING, logger="content_arena.defender.transformer"):
        defender = TransformerDefender(champions["bert"], runtime="onnx", onnx_cache_dir=tmp_path).load()
    assert defender.runtime_in_use == "torch" and "could not open" in caplog.text
    assert defender.predict(["you are an idiot"]).shape == (1,)


def test_without_onnxruntime_the_defender_warns_once_and_serves_with_torch(champions, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now fails, as when not installed
    assert importlib.util.find_spec("onnxruntime") is None
    with caplog.at_level(logging.WARNING, logger="content_arena.defender.transformer"):
        defender = TransformerDefender(champions["llama-no-pad"], runtime="onnx").load()
    warnings = [r.getMessage() for r in caplog.records if "runtime onnx" in r.getMessage()]
    assert len(warnings) == 1 and "onnxruntime" in warnings[0] and "serving with torch" in warnings[0]
    assert defender.runtime == "onnx" and defender.runtime_in_use == "torch" and defender.onnx is None
    expected = TransformerDefender(champions["llama-no-pad"], device="cpu").load()
    assert defender.predict(TEXTS) == pytest.approx(expected.predict(TEXTS), abs=1e-6)


def test_onnx_and_int8_together_are_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="runtime onnx"):
        load_config(None, home=str(tmp_path), serving={"runtime": "onnx", "quantize": "int8"})
    with pytest.raises(ConfigError, match="runtime"):
        load_config(None, home=str(tmp_path), serving={"runtime": "tensorrt"})
    with pytest.raises(ValueError, match="does not combine"):
        TransformerDefender(tmp_path, runtime="onnx", quantize=True)
    with pytest.raises(ValueError, match="runtime must be one of torch, onnx, got 'tvm'"):
        DefenderModel("content-filter", model_dir=tmp_path, runtime="tvm")
