"""A plain PyTorch fine-tuning loop: dynamic padding, linear warm-up/decay, best epoch kept."""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tokenizers import Tokenizer

from content_arena.defender.normalizer import normalize_many
from content_arena.metrics import binary_metrics

log = logging.getLogger(__name__)

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def encode(
    tokenizer: Tokenizer,
    texts: Sequence[str],
    max_length: int,
    *,
    normalized: bool = False,
    view: Callable[[list[str]], list[str]] | None = None,
) -> list[list[int]]:
    """Token ids of ``texts``, normalised first unless the caller already did (``normalized=True``), then
    passed through ``view`` (the word recogniser the defender will apply) when given."""
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    prepared = list(texts) if normalized else normalize_many(texts)
    if view is not None:
        prepared = view(prepared)
    return [e.ids for e in tokenizer.encode_batch(prepared)]


def _batches(lengths: np.ndarray, batch_size: int, rng: random.Random) -> list[np.ndarray]:
    """Shuffled batches of similar length: shuffle, sort inside windows of 50 batches, shuffle batches."""
    order = np.array(rng.sample(range(len(lengths)), len(lengths)), dtype=np.int64)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        block = order[start : start + window]
        block = block[np.argsort(lengths[block], kind="stable")]
        batches.extend(block[i : i + batch_size] for i in range(0, len(block), batch_size))
    rng.shuffle(batches)
    return batches


def _collate(ids: list[list[int]], index: np.ndarray, pad_id: int, device: torch.device):
    width = max(len(ids[i]) for i in index)
    batch = np.full((len(index), width), pad_id, dtype=np.int64)
    for row, i in enumerate(index):
        batch[row, : len(ids[i])] = ids[i]
    input_ids = torch.from_numpy(batch).to(device)
    return input_ids, (input_ids != pad_id).long()


@torch.inference_mode()
def predict_scores(
    model: torch.nn.Module, ids: list[list[int]], pad_id: int, device: torch.device, batch_size: int = 128
) -> np.ndarray:
    model.eval()
    lengths = np.array([len(x) for x in ids])
    order = np.argsort(lengths, kind="stable")
    out = np.empty(len(ids), dtype=np.float32)
    for start in range(0, len(ids), batch_size):
        index = order[start : start + batch_size]
        input_ids, mask = _collate(ids, index, pad_id, device)
        logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
        out[index] = torch.softmax(logits, dim=-1)[:, 1].cpu().numpy()
    return out


def _validation_metrics(model: torch.nn.Module, ids: list[list[int]], labels: Sequence[int], pad_id: int,
                        device: torch.device) -> dict[str, float]:
    m = binary_metrics(np.asarray(labels), predict_scores(model, ids, pad_id, device))
    row = {"val_f1": m.f1, "val_precision": m.precision, "val_recall": m.recall}
    if m.auroc is not None:
        row["val_auroc"] = m.auroc
    return row


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fit(
    model: torch.nn.Module,
    train_ids: list[list[int]],
    train_labels: Sequence[int],
    *,
    pad_id: int,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    weight_decay: float = 0.01,
    warmup_ratio: float = 0.06,
    seed: int = 0,
    val_ids: list[list[int]] | None = None,
    val_labels: Sequence[int] | None = None,
    device: torch.device | None = None,
    on_epoch: EpochCallback | None = None,
    keep_initial: bool = False,
    patience: int | None = None,
) -> FitResult:
    """Train ``model`` in place; with a validation set, the epoch with the best val F1 is restored.

    ``patience``: with a validation set, stop once that many epochs in a row have not beaten the
    best one (the learning-rate schedule is still planned over ``epochs``, so the epochs that ran
    are the same as without stopping).

    ``keep_initial``: the untrained state counts as epoch 0, so training that only makes the model
    worse on validation leaves it as it was (used when a stage builds on an already fitted branch).
    """
    device = device or next(model.parameters()).device
    rng = random.Random(seed)
    torch.manual_seed(seed)
    labels = torch.tensor(list(train_labels), dtype=torch.long)
    lengths = np.array([len(x) for x in train_ids])
    steps_per_epoch = math.ceil(len(train_ids) / batch_size)
    total_steps = max(1, steps_per_epoch * epochs)
    warmup = int(total_steps * warmup_ratio)
    sparse_ids = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) and m.sparse for p in m.parameters()}
    params = [p for p in model.parameters() if p.requires_grad and id(p) not in sparse_ids]
    sparse = [p for p in model.parameters() if p.requires_grad and id(p) in sparse_ids]
    optimizers: list[torch.optim.Optimizer] = []
    if params:
        optimizers.append(torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay))
    if sparse:  # large lookup tables (the n-gram buckets): only the rows a batch touched are updated
        optimizers.append(torch.optim.SparseAdam(sparse, lr=learning_rate))
    schedule = lambda step: (step + 1) / max(1, warmup) if step < warmup else max(0.0, (total_steps - step) / max(1, total_steps - warmup))  # noqa: E731
    schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, schedule) for opt in optimizers]
    result = FitResult()
    best_state: dict[str, torch.Tensor] | None = None
    best_f1 = -1.0
    started = time.perf_counter()
    has_val = val_ids is not None and val_labels is not None and len(val_ids) > 0
    if keep_initial and has_val:
        result.best_val = _validation_metrics(model, val_ids, val_labels, pad_id, device)
        best_f1, best_state = result.best_val["val_f1"], _snapshot(model)
    for epoch in range(1, epochs + 1):
        model.train()
        total_loss, seen = 0.0, 0
        for index in _batches(lengths, batch_size, rng):
            input_ids, mask = _collate(train_ids, index, pad_id, device)
            target = labels[torch.from_numpy(index)].to(device)
            logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
            loss = torch.nn.functional.cross_entropy(logits, target)
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            if params:
                torch.nn.utils.clip_grad_norm_(params, 1.0)
            for opt, sched in zip(optimizers, schedulers, strict=True):
                opt.step()
                sched.step()
            total_loss += loss.item() * len(index)
            seen += len(index)
        row: dict[str, float] = {"epoch": epoch, "train_loss": total_loss / max(1, seen)}
        if has_val:
            row.update(_validation_metrics(model, val_ids, val_labels, pad_id, device))
            if row["val_f1"] > best_f1:
                best_f1, result.best_epoch, best_state = row["val_f1"], epoch, _snapshot(model)
                result.best_val = {k: v for k, v in row.items() if k.startswith("val_")}
        result.history.append(row)
        log.info("epoch %d/%d %s", epoch, epochs, ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "epoch"))
        if on_epoch is not None:
            on_epoch(epoch, row)
        if has_val and patience is not None and epoch - result.best_epoch >= patience and epoch < epochs:
            log.info("stopping after epoch %d: no better validation F1 than epoch %d for %d epochs",
                     epoch, result.best_epoch, patience)
            break
    if best_state is not None:
        model.load_state_dict(copy.deepcopy(best_state))
    else:
        result.best_epoch = epochs
    model.eval()
    result.seconds = time.perf_counter() - started
    return result
