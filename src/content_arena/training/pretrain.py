"""Masked-language-model pretraining of a small base model on unlabelled comments.

Moderation teams have far more unlabelled comments than labelled ones. Pretraining the small
encoder on them (with a tokenizer trained on the same text) gives ``model.base_model`` a local
directory to start from, with no hub involved. The output loads with
``AutoModelForSequenceClassification.from_pretrained``.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from content_arena.config import ModelConfig
from content_arena.training.loop import encode
from content_arena.training.tokenizer import save_tokenizer, train_tokenizer

log = logging.getLogger(__name__)


@dataclass
class PretrainResult:
    model_dir: Path
    losses: list[float]
    seconds: float
    n_texts: int


def _mask(batch: torch.Tensor, special: torch.Tensor, mask_id: int, vocab: int, rate: float, gen: torch.Generator):
    """BERT masking: ``rate`` of the real tokens become targets; 80% [MASK], 10% random, 10% kept."""
    labels = batch.clone()
    chosen = (torch.rand(batch.shape, generator=gen) < rate) & ~special
    labels[~chosen] = -100
    inputs = batch.clone()
    replace = chosen & (torch.rand(batch.shape, generator=gen) < 0.8)
    inputs[replace] = mask_id
    randomize = chosen & ~replace & (torch.rand(batch.shape, generator=gen) < 0.5)
    inputs[randomize] = torch.randint(5, vocab, (int(randomize.sum()),), generator=gen)
    return inputs, labels


def pretrain_mlm(
    texts: Sequence[str],
    out_dir: str | Path,
    cfg: ModelConfig,
    *,
    epochs: int = 3,
    batch_size: int = 64,
    learning_rate: float = 5e-4,
    mask_rate: float = 0.15,
    seed: int = 0,
) -> PretrainResult:
    from transformers import BertConfig, BertForMaskedLM

    started = time.perf_counter()
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise ValueError("pretraining needs at least one non-empty text")
    from content_arena.defender.normalizer import normalize_many

    tokenizer = train_tokenizer(normalize_many(texts), vocab_size=cfg.vocab_size)
    pad_id, mask_id = tokenizer.token_to_id("[PAD]"), tokenizer.token_to_id("[MASK]")
    special_ids = torch.tensor([tokenizer.token_to_id(t) for t in ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]")])
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_length + 2,
        type_vocab_size=1,
        pad_token_id=pad_id,
    )
    torch.manual_seed(seed)
    model = BertForMaskedLM(config)
    ids = encode(tokenizer, texts, cfg.max_length)
    lengths = np.array([len(x) for x in ids])
    steps = max(1, math.ceil(len(ids) / batch_size) * epochs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / (0.06 * steps + 1), (steps - s) / steps))
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    losses = []
    model.train()
    for epoch in range(1, epochs + 1):
        order = sorted(range(len(ids)), key=lambda i: (lengths[i] + rng.random() * 8))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        rng.shuffle(batches)
        total = 0.0
        for index in batches:
            width = max(len(ids[i]) for i in index)
            batch = torch.full((len(index), width), pad_id, dtype=torch.long)
            for row, i in enumerate(index):
                batch[row, : len(ids[i])] = torch.tensor(ids[i])
            special = torch.isin(batch, special_ids)
            inputs, labels = _mask(batch, special, mask_id, config.vocab_size, mask_rate, gen)
            loss = model(input_ids=inputs, attention_mask=(batch != pad_id).long(), labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            total += loss.item()
        losses.append(total / len(batches))
        log.info("pretrain epoch %d/%d: MLM loss %.3f", epoch, epochs, losses[-1])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    save_tokenizer(tokenizer, out)
    return PretrainResult(out, losses, time.perf_counter() - started, len(texts))
