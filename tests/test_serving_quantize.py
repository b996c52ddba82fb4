"""``serving.quantize``: the KServe runtime serves a transformer backbone with int8 weights when told to,
and its probabilities stay near full precision on a trained model (97 % of texts within 0.01)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

from content_arena.config import ConfigError, load_config
from content_arena.data import load_seed_corpus, split_examples
from content_arena.serving import DefenderModel

pytestmark = pytest.mark.slow

TEXTS = [e.text for e in load_seed_corpus("en")][:200]


def _english_bert(out):
    """A small BERT whose WordPiece vocabulary covers the English seed texts (random weights, no hub)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, BertTokenizer

    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wordpiece.train_from_iterator([e.text.lower() for e in load_seed_corpus("en")], trainers.WordPieceTrainer(
        vocab_size=2000, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False))
    tokenizer = BertTokenizer(vocab=wordpiece.get_vocab())
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=128, max_position_embeddings=64,
                         pad_token_id=tokenizer.pad_token_id)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def trained_backbone(tmp_path_factory):
    """A small BERT backbone fine-tuned until its scores spread (an explicit learning rate wins over the
    recipe's, which would leave a model this small near 0.5 after a few epochs)."""
    from content_arena.training import train_champion

    root = tmp_path_factory.mktemp("quantize")
    train, val = split_examples(load_seed_corpus("en"), test_fraction=0.15, seed=0)
    cfg = load_config(None, home=str(root / ".arena"),
                      model={"base_model": str(_english_bert(root / "base")), "max_length": 32},
                      training={"epochs": 4, "batch_size": 16, "seed": 0, "learning_rate": 1e-3})
    return train_champion(train, root / "champion", cfg, val_examples=val).model_dir


def _served(model_dir, quantize, tmp_path):
    cfg = load_config(None, home=str(tmp_path / ".arena"), serving={"quantize": quantize})
    model = DefenderModel("content-filter", model_dir=model_dir, config=cfg, max_batch_size=256)
    assert model.load()
    result = asyncio.run(model({"instances": TEXTS}))
    predictions = (result[0] if isinstance(result, tuple) else result)["predictions"]
    return model, np.array([p["toxic_score"] for p in predictions]), [p["is_toxic"] for p in predictions]


def test_int8_serving_stays_near_full_precision_on_a_trained_model(trained_backbone, tmp_path):
    full, full_scores, full_flags = _served(trained_backbone, "none", tmp_path)
    int8, int8_scores, int8_flags = _served(trained_backbone, "int8", tmp_path)

    quantized = [m for m in int8.defender.model.modules() if "quantized" in type(m).__module__]
    assert quantized and not any("quantized" in type(m).__module__ for m in full.defender.model.modules())
    assert int8.defender.device == torch.device("cpu")
    # Trained: the scores spread, so a difference between the two is a difference that matters.
    assert full_scores.std() > 0.15 and full_scores.min() < 0.2 and full_scores.max() > 0.8, full_scores.std()
    prepared = full.defender.preprocess(TEXTS)
    raw = np.abs(int8.defender.predict(prepared) - full.defender.predict(prepared))
    served = np.abs(int8_scores - full_scores)
    print(f"int8 vs float32: max |Δp| {raw.max():.4f} raw, {served.max():.4f} served (float32 std {full_scores.std():.3f})")
    # Per-tensor dynamic int8 holds 0.01 for nearly every text; on a model this narrow (64 channels) a
    # few texts go past it, how many and by how much depend on the training run, which differs between
    # CPUs (0.013-0.055 measured, see docs/experiments/2026-12-07-backbones.md): the 0.01 bound
    # on the maximum does not hold, so the bound is on the share of texts past it.
    assert (raw > 0.01).mean() <= 0.03 and raw.max() <= 0.1, np.sort(raw)[-8:]
    # Served scores go through the model's calibration, whose slope can widen a difference a little.
    assert (served > 0.015).mean() <= 0.03 and served.max() <= 0.1, np.sort(served)[-8:]
    # Verdicts move only for texts whose score sits next to the threshold.
    assert sum(a != b for a, b in zip(int8_flags, full_flags, strict=True)) <= max(2, 0.03 * len(full_flags))


def test_quantize_comes_from_the_configuration_and_the_environment(trained_backbone, tmp_path, monkeypatch):
    assert load_config(None, home=str(tmp_path)).serving.quantize == "none"
    monkeypatch.setenv("ARENA_SERVING__QUANTIZE", "int8")
    cfg = load_config(None, home=str(tmp_path))
    assert cfg.serving.quantize == "int8"
    model = DefenderModel("content-filter", model_dir=trained_backbone, config=cfg)
    assert model.quantize == "int8" and model.load() and model.defender.quantize
    # An explicit argument wins over the configuration.
    assert DefenderModel("content-filter", model_dir=trained_backbone, config=cfg, quantize="none").quantize == "none"


def test_int8_is_refused_for_a_decoder_backbone(tmp_path):
    from content_arena.training import train_champion
    from tiny_backbones import build

    examples = load_seed_corpus("en")[:64]
    cfg = load_config(None, home=str(tmp_path / ".arena"),
                      model={"base_model": str(build("llama", tmp_path / "base")), "max_length": 32},
                      training={"epochs": 1, "batch_size": 16, "seed": 0})
    champion = train_champion(examples[:48], tmp_path / "champion", cfg, val_examples=examples[48:]).model_dir
    with pytest.raises(ValueError, match="decoder"):
        DefenderModel("content-filter", model_dir=champion, quantize="int8").load()
    assert DefenderModel("content-filter", model_dir=champion, quantize="none").load()


def test_an_unknown_quantize_mode_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="quantize"):
        load_config(None, home=str(tmp_path), serving={"quantize": "fp16"})
    with pytest.raises(ValueError, match="quantize must be one of none, int8, got 'int4'"):
        DefenderModel("content-filter", model_dir=tmp_path, quantize="int4")
