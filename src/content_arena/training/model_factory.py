"""Build the classifier from a config (the default, offline), and check a model against its tokenizer.

A pretrained ``model.base_model`` is loaded by :mod:`content_arena.training.backbones`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from content_arena.config import ExperimentalConfig, ModelConfig

log = logging.getLogger(__name__)

def build_small_classifier(
    cfg: ModelConfig, tokenizer: Tokenizer, experimental: ExperimentalConfig | None = None
) -> torch.nn.Module:
    """A BERT-style encoder of the configured size with a two-class head, randomly initialised.

    With ``ngram_buckets`` > 0 (the default) the model is a hashed token n-gram branch
    (:mod:`content_arena.defender.ngram_bert`), with an encoder on top only when ``cfg.encoder`` is set;
    with 0 buckets it is a plain ``BertForSequenceClassification``.

    Args:
        cfg: the model section (sizes, tokenizer, n-gram buckets).
        tokenizer: the trained tokenizer; its vocabulary and ``[PAD]`` id size the embeddings.
        experimental: the recipe's research choices (n-gram pooling, minimum document frequency,
            phonetic folding); None takes the recipe's defaults.

    Returns:
        The untrained classifier.
    """
    recipe = experimental if experimental is not None else ExperimentalConfig()
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
        if not cfg.encoder:
            # No transformer layers to train, save or adapt: the branch alone is the model.
            settings["num_hidden_layers"] = 0
        config = NgramBertConfig(
            ngram_buckets=cfg.ngram_buckets, ngram_dim=cfg.ngram_dim, ngram_orders=cfg.ngram_orders,
            ngram_pooling=recipe.ngram_pooling, ngram_fold=recipe.ngram_phonetic_fold,
            ngram_min_df=recipe.ngram_min_df, use_encoder=cfg.encoder, **settings
        )
        return NgramBertForSequenceClassification(config)
    return BertForSequenceClassification(BertConfig(**settings))


def _emittable_ids(tokenizer: Any) -> dict[str, int]:
    """Every token a tokenizer can emit with its id: vocabulary, added and special tokens."""
    if isinstance(tokenizer, Path):
        tokenizer = Tokenizer.from_file(str(tokenizer / "tokenizer.json" if tokenizer.is_dir() else tokenizer))
    if not isinstance(tokenizer, Tokenizer):  # a transformers tokenizer
        tokenizer = tokenizer.backend_tokenizer
    return tokenizer.get_vocab(with_added_tokens=True)


def check_token_ids_fit(model: torch.nn.Module, tokenizer: Any) -> None:
    """Refuse a model whose tokenizer can emit an id its token embedding has no row for.

    Such an id raises ``IndexError`` only when a text happens to contain that token, long after the
    model was saved and promoted; checked here, the mismatch is found when the model is built or saved.

    Args:
        model: the classifier (its ``get_input_embeddings()``).
        tokenizer: a ``tokenizers.Tokenizer``, a transformers tokenizer, or a directory/``tokenizer.json`` path.

    Raises:
        ValueError: naming the highest such id and token, and the embedding size.
    """
    embeddings = model.get_input_embeddings()
    rows = getattr(embeddings, "num_embeddings", None)
    if rows is None:
        return
    vocab = _emittable_ids(tokenizer)
    beyond = sorted(((index, token) for token, index in vocab.items() if index >= rows), reverse=True)
    if beyond:
        index, token = beyond[0]
        raise ValueError(
            f"the tokenizer can emit {len(beyond)} token id(s) the model has no embedding for: the highest is "
            f"{index} ({token!r}) but the embedding matrix has {rows} rows; use the tokenizer the model was "
            "trained with, or resize the model's embeddings before training"
        )
