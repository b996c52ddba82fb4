"""Build the classifier: from a config (default, offline) or from a pretrained ``base_model``."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from tokenizers import Tokenizer

from content_arena.config import ModelConfig

log = logging.getLogger(__name__)

# LoRA targets by architecture family: BERT-like names first, Llama/Mistral-like second.
LORA_TARGET_FAMILIES = (("query", "value", "key", "dense", "word_embeddings", "ngram_embeddings"), ("q_proj", "v_proj", "k_proj", "o_proj", "embed_tokens"))


def build_small_classifier(cfg: ModelConfig, tokenizer: Tokenizer) -> torch.nn.Module:
    """A BERT-style encoder of the configured size with a two-class head, randomly initialised.

    With ``ngram_buckets`` > 0 (the default) the model also carries a hashed token n-gram branch
    (:mod:`content_arena.defender.ngram_bert`); with 0 it is a plain ``BertForSequenceClassification``.
    """
    from transformers import BertConfig, BertForSequenceClassification

    from content_arena.defender.ngram_bert import NgramBertConfig, NgramBertForSequenceClassification

    settings = dict(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_length + 2,
        type_vocab_size=1,
        pad_token_id=tokenizer.token_to_id("[PAD]"),
        num_labels=2,
        id2label={0: "clean", 1: "toxic"},
        label2id={"clean": 0, "toxic": 1},
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    if cfg.ngram_buckets:
        config = NgramBertConfig(
            ngram_buckets=cfg.ngram_buckets, ngram_dim=cfg.ngram_dim, ngram_orders=cfg.ngram_orders,
            ngram_pooling=cfg.ngram_pooling, ngram_fold=cfg.ngram_phonetic_fold,
            ngram_min_df=cfg.ngram_min_df, **settings
        )
        return NgramBertForSequenceClassification(config)
    return BertForSequenceClassification(BertConfig(**settings))


def load_pretrained_classifier(base_model: str) -> tuple[torch.nn.Module, Tokenizer]:
    """A local directory (or a hub id, for users with a hub) with a fast tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(base_model).expanduser()
    source = str(path) if path.exists() else base_model
    log.info("loading base model %s", source)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=2, id2label={0: "clean", 1: "toxic"}, label2id={"clean": 0, "toxic": 1}
    )
    fast = AutoTokenizer.from_pretrained(source, use_fast=True)
    if not getattr(fast, "is_fast", False):
        raise ValueError(f"base model {base_model} has no fast tokenizer (tokenizer.json)")
    tokenizer: Tokenizer = fast.backend_tokenizer
    if tokenizer.token_to_id("[PAD]") is None and fast.pad_token is None:
        raise ValueError(f"base model {base_model}: its tokenizer defines no padding token")
    return model, tokenizer


def lora_target_modules(model: torch.nn.Module) -> list[str]:
    """The linear (and token-embedding) layers LoRA should adapt, found by name in ``model``.

    The token embeddings are adapted too: evasions arrive as token sequences the champion rarely
    saw (leetspeak, romanisation), and attention-only adapters cannot give those tokens new meaning.
    """
    if not getattr(model.config, "use_encoder", True):
        # A champion saved without its encoder: only the n-gram table is in the forward pass.
        return ["ngram_embeddings"]
    adaptable = (torch.nn.Linear, torch.nn.Embedding)
    linear_names = {name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, adaptable)}
    for family in LORA_TARGET_FAMILIES:
        found = [name for name in family if name in linear_names]
        if found:
            return found
    raise ValueError(f"no known LoRA target modules among {sorted(linear_names)}")
