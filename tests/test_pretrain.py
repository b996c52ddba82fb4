"""MLM pretraining on unlabelled text, then a champion fine-tuned from it via model.base_model."""

from __future__ import annotations

import pytest

from content_arena.config import load_config
from content_arena.data import load_seed_corpus, split_examples
from content_arena.defender import TransformerDefender
from content_arena.training import train_champion
from content_arena.training.pretrain import pretrain_mlm
from support.configs import TINY

pytestmark = pytest.mark.slow


def test_pretrained_base_model_is_a_local_directory_a_champion_can_start_from(tmp_path):
    examples = load_seed_corpus()
    unlabelled = [e.text for e in examples[:600]]
    cfg = load_config(None, home=str(tmp_path / ".arena"), **TINY)
    base = pretrain_mlm(unlabelled, tmp_path / "base", cfg.model, epochs=2, batch_size=32)
    assert len(base.losses) == 2 and base.losses[1] < base.losses[0]
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in base.model_dir.iterdir()}

    train, test = split_examples(examples[600:1400], test_fraction=0.2, seed=0)
    cfg = load_config(None, home=str(tmp_path / ".arena"), **{**TINY, "model": {**TINY["model"], "base_model": str(base.model_dir)}})
    result = train_champion(train, tmp_path / "champion", cfg, val_examples=test)
    assert result.mode == "full"
    defender = TransformerDefender(result.model_dir).load()
    scores = defender.scores([e.text for e in test])
    assert scores.shape == (len(test),)
    # It started from the base: the base's tokenizer (trained on the unlabelled texts) came along,
    # where a from-config champion would have trained its own on the labelled ones.
    import json

    vocab = json.loads((result.model_dir / "tokenizer.json").read_text())["model"]["vocab"]
    base_vocab = json.loads((base.model_dir / "tokenizer.json").read_text())["model"]["vocab"]
    assert vocab == base_vocab


def test_pretraining_needs_text(tmp_path):
    cfg = load_config(None, home=str(tmp_path / ".arena"), **TINY)
    with pytest.raises(ValueError, match="non-empty text"):
        pretrain_mlm(["", "   "], tmp_path / "base", cfg.model)
