"""Training defenders: the first champion by full fine-tuning, challengers by LoRA / QLoRA."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from content_arena.config import ArenaConfig
from content_arena.data import Example
from content_arena.defender.artifacts import TOKENIZER_FILE, ModelManifest, write_manifest
from content_arena.defender.normalizer import normalize_many
from content_arena.defender.recognizer import RECOGNIZER_FILE, WordRecognizer
from content_arena.defender.token_ids import load_tokenizer
from content_arena.monitoring import write_score_reference
from content_arena.training.backbones import challenger_learning_rate, champion_learning_rate, load_backbone
from content_arena.training.calibration import PolicyFit, fit_policy
from content_arena.training.loop import EpochCallback, FitResult, encode, fit, predict_scores
from content_arena.training.lora import (
    choose_adapter_mode,
    load_for_adapter,
    lora_config,
    lora_targets,
    merge_adapter,
)
from content_arena.training.model_factory import build_small_classifier, check_token_ids_fit
from content_arena.training.ngram_solver import fit_ngram_branch_linear
from content_arena.training.tokenizer import phonetic_fold_ids, save_tokenizer, train_tokenizer

if TYPE_CHECKING:
    from content_arena.defender.ngram_bert import NgramBertForSequenceClassification

log = logging.getLogger(__name__)

__all__ = ["TrainResult", "Tracker", "train_champion", "train_challenger"]


class Tracker(Protocol):
    def log_params(self, params: dict[str, Any]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...


@dataclass
class TrainResult:
    model_dir: Path
    mode: str  # "full", "lora" or "qlora"
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    val_metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    n_train: int = 0
    #: The saved model's calibration and policy threshold (see training/calibration.py).
    policy: PolicyFit | None = None


def _set_threads(n: int | None) -> None:
    from content_arena.threads import set_torch_threads  # None: the container's CPU quota

    set_torch_threads(n)


def _epoch_logger(tracker: Tracker | None, prefix: str) -> EpochCallback | None:
    if tracker is None:
        return None

    def on_epoch(epoch: int, row: dict[str, float]) -> None:
        tracker.log_metrics({f"{prefix}{k}": v for k, v in row.items() if k != "epoch"}, step=epoch)

    return on_epoch


def _pad_id(model: torch.nn.Module, tokenizer: Any) -> int:
    configured = getattr(getattr(model, "config", None), "pad_token_id", None)
    if configured is not None:
        return int(configured)
    return tokenizer.token_to_id("[PAD]") or 0


def _texts_labels(examples: Sequence[Example], limit: int | None) -> tuple[list[str], list[int]]:
    chosen = list(examples)[:limit] if limit else list(examples)
    if not chosen:
        raise ValueError("no training examples")
    labels = [int(e.label) for e in chosen]
    if len(set(labels)) < 2:
        raise ValueError("training needs both toxic and clean examples")
    return [e.text for e in chosen], labels


@dataclass
class EncodedSets:
    """Training and validation texts tokenised once, for every stage that reads them."""

    train_ids: list[list[int]]
    train_labels: list[int]
    val_ids: list[list[int]] | None = None
    val_labels: list[int] | None = None

    @classmethod
    def build(cls, tokenizer: Any, texts: list[str], labels: list[int], val_examples: Sequence[Example] | None,
              max_length: int, recognizer: WordRecognizer | None = None) -> EncodedSets:
        view = recognizer.many if recognizer is not None else None
        sets = cls(encode(tokenizer, texts, max_length, view=view), list(labels))
        if val_examples:
            sets.val_ids = encode(tokenizer, [e.text for e in val_examples], max_length, view=view)
            sets.val_labels = [int(e.label) for e in val_examples]
        return sets


def _fit(
    model: torch.nn.Module,
    data: EncodedSets,
    cfg: ArenaConfig,
    tracker: Tracker | None,
    *,
    pad_id: int,
    epochs: int,
    learning_rate: float,
    weight_decay: float,
    metric_prefix: str = "",
    keep_initial: bool = False,
):
    """Run the loop over the encoded sets with the configured batch and schedule."""
    return fit(
        model,
        data.train_ids,
        data.train_labels,
        pad_id=pad_id,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=cfg.training.batch_size,
        weight_decay=weight_decay,
        warmup_ratio=cfg.training.warmup_ratio,
        seed=cfg.training.seed,
        val_ids=data.val_ids,
        val_labels=data.val_labels,
        on_epoch=_epoch_logger(tracker, metric_prefix),
        keep_initial=keep_initial,
        patience=cfg.training.patience,
    )


def _save(
    model: torch.nn.Module, tokenizer_source: Path | Any, out_dir: Path, cfg: ArenaConfig, info: dict, policy: PolicyFit,
    recognizer: WordRecognizer | None = None,
) -> None:
    """Weights, tokenizer (copied from a champion directory, with its word recogniser, or saved), and the
    manifest with the policy threshold, the operating point, the calibration and the validation figures."""
    check_token_ids_fit(model, tokenizer_source)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    if recognizer is not None:
        recognizer.save(out_dir)
    if isinstance(tokenizer_source, Path):
        for name in (TOKENIZER_FILE, "tokenizer_config.json", "special_tokens_map.json", RECOGNIZER_FILE):
            if (tokenizer_source / name).is_file():
                shutil.copy2(tokenizer_source / name, out_dir / name)
    else:
        save_tokenizer(tokenizer_source, out_dir)
    write_manifest(out_dir, ModelManifest(
        threshold=policy.threshold, max_length=cfg.model.max_length, info=info,
        operating_point=policy.operating_point.to_dict() if policy.applied else None,
        calibration=policy.calibrator.to_dict(),
        validation=policy.validation_record(),
    ))


def _policy(
    model: torch.nn.Module, ids: list[list[int]] | None, labels: list[int] | None, cfg: ArenaConfig, pad_id: int,
    tracker: Tracker | None,
) -> PolicyFit:
    """Calibration and threshold from the final weights' raw scores of the validation texts
    (``defender.operating_point``, ``defender.calibration``); ``model.threshold`` without them."""
    scores = None
    if ids:
        scores = predict_scores(model, ids, pad_id, next(model.parameters()).device)
    policy = fit_policy(labels if ids else None, scores, cfg.defender.operating_point,
                        calibration=cfg.defender.calibration, fallback_threshold=cfg.model.threshold)
    if tracker:
        tracker.log_params({"threshold": round(policy.threshold, 6), "operating_point": policy.operating_point.describe(),
                            "calibration": policy.calibrator.kind, "threshold_source":
                            policy.validation_record()["threshold_source"]})
        if policy.choice is not None:
            tracker.log_metrics({"val_point_fpr": policy.choice.fpr, "val_point_recall": policy.choice.recall,
                                 "val_point_precision": policy.choice.precision})
    return policy


def _fit_ngram_branch(
    model: NgramBertForSequenceClassification,
    data: EncodedSets,
    cfg: ArenaConfig,
    tracker: Tracker | None,
    fit_args: dict[str, Any],
) -> tuple[list[dict[str, float]], dict[str, float], float | None]:
    """Stage 1 of the n-gram model: fit the n-gram branch alone, then freeze it for stage 2.

    Returns the stage's history, the branch's validation metrics and, with the L-BFGS solver, the
    regularisation strength it chose (None with Adam).

    Without an encoder (``model.encoder`` false, the default) this stage is the whole training. With
    one, stage 2 (the caller) trains the encoder with the branch frozen and keeps only epochs that
    improve on where it started: trained jointly from the start, an encoder memorises a few thousand
    texts within two epochs and the branch, which generalises better from few examples, stops learning.
    """
    chosen_c: float | None = None
    if cfg.experimental.ngram_solver == "lbfgs":
        solved = fit_ngram_branch_linear(model, data.train_ids, data.train_labels, data.val_ids, data.val_labels)
        chosen_c, best_val = solved.c, dict(solved.val)
        history = [{"stage": 1.0, "epoch": 1.0, "c": solved.c, **best_val}]
        if tracker:
            tracker.log_params({"ngram_solver": "lbfgs", "ngram_c": solved.c})
            tracker.log_metrics({f"ngram_{k}": v for k, v in best_val.items()}, step=1)
    else:
        model.branches = "ngram"
        try:
            first = _fit(model, data, cfg, tracker, **fit_args, metric_prefix="ngram_")
        finally:
            model.branches = "both"
        history, best_val = [{"stage": 1.0, **row} for row in first.history], dict(first.best_val)
    for name, param in model.named_parameters():
        if name.startswith("ngram_"):
            param.requires_grad_(False)
    # The encoder's head starts at zero, so stage 2 starts from exactly the stage-1 model (the
    # untrained encoder would otherwise add random logits) and learns only a correction to it.
    torch.nn.init.zeros_(model.classifier.weight)
    torch.nn.init.zeros_(model.classifier.bias)
    log.info("n-gram branch fitted (%s, %s)%s", cfg.experimental.ngram_solver,
             ", ".join(f"{k}={v:.4f}" for k, v in best_val.items()),
             "; training the encoder on top" if model.config.use_encoder else "")
    return history, best_val, chosen_c


def train_champion(
    examples: Sequence[Example],
    out_dir: str | Path,
    cfg: ArenaConfig,
    *,
    val_examples: Sequence[Example] | None = None,
    tokenizer_texts: Sequence[str] | None = None,
    tracker: Tracker | None = None,
) -> TrainResult:
    """Full fine-tune: a small model built from config (tokenizer trained here) or ``model.base_model``."""
    _set_threads(cfg.training.torch_threads)
    torch.manual_seed(cfg.training.seed)
    if cfg.experimental.harden_strategies:
        from content_arena.attacks import resolve_strategies
        from content_arena.data_augmentor import with_rule_variants

        before = len(examples)
        examples = with_rule_variants(examples, resolve_strategies(cfg.experimental.harden_strategies),
                                      cfg.experimental.harden_share, seed=cfg.training.seed)
        log.info("hardening with %s: %d rule variants added to %d examples",
                 ", ".join(cfg.experimental.harden_strategies), len(examples) - before, before)
    texts, labels = _texts_labels(examples, cfg.training.max_train_examples)
    started = time.perf_counter()
    raw_corpus = [*(tokenizer_texts or []), *texts]
    corpus = normalize_many(raw_corpus)
    backbone = load_backbone(cfg.model.base_model, cfg) if cfg.model.base_model else None
    if backbone is not None:
        model, tokenizer = backbone.model, backbone.tokenizer
        source = f"pretrained:{cfg.model.base_model}"
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"max_length": backbone.recipe.max_length})})
    else:
        tokenizer = train_tokenizer(corpus, vocab_size=cfg.model.vocab_size, kind=cfg.model.tokenizer)
        model = build_small_classifier(cfg.model, tokenizer, cfg.experimental)
        if getattr(model.config, "ngram_fold", False):
            model.set_ngram_fold(phonetic_fold_ids(tokenizer))
        if getattr(model.config, "ngram_pooling", None) == "idf":
            # Document frequencies from every text the tokenizer saw: unlabelled comments count too.
            model.set_ngram_idf(encode(tokenizer, corpus, cfg.model.max_length, normalized=True))
        source = "built-from-config"
    pad_id = _pad_id(model, tokenizer)
    # Rule variants added by hardening are garbled on purpose: their words must not become known ones.
    hardened = {e.text for e in examples if (e.source or "").startswith("harden:")}
    recognizer = None if backbone else _build_recognizer(  # a backbone reads its own vocabulary
        [t for t, raw in zip(corpus, raw_corpus, strict=True) if raw not in hardened], cfg)
    data = EncodedSets.build(tokenizer, texts, labels, val_examples, cfg.model.max_length, recognizer)
    learning_rate = champion_learning_rate(backbone.recipe if backbone else None, cfg.training)
    params = {
        "mode": "full",
        "model_source": source,
        "n_train": len(texts),
        "epochs": cfg.training.epochs,
        "learning_rate": learning_rate,
        "batch_size": cfg.training.batch_size,
        "vocab_size": tokenizer.get_vocab_size(),
        "hidden_size": cfg.model.hidden_size,
        "num_layers": cfg.model.num_layers,
        "harden_strategies": ",".join(cfg.experimental.harden_strategies) or "none",
        "word_recognition_vocabulary": len(recognizer) if recognizer is not None else 0,
        **(backbone.params() if backbone else {}),
    }
    if tracker:
        tracker.log_params(params)
    fit_args = dict(
        pad_id=pad_id, epochs=cfg.training.epochs, learning_rate=learning_rate,
        weight_decay=cfg.training.weight_decay,
    )
    history: list[dict[str, float]] = []
    branch_val: dict[str, float] = {}
    if hasattr(model, "ngram_embeddings"):  # the default architecture: fit its n-gram branch first
        history, branch_val, _ = _fit_ngram_branch(model, data, cfg, tracker, fit_args)
        # Kept to fall back on if the encoder does not earn its place (no copy when it always stays).
        branch_state = ({k: v.detach().clone() for k, v in model.state_dict().items()}
                        if model.config.use_encoder and cfg.experimental.min_encoder_gain is not None else {})
    if history and not model.config.use_encoder:
        fitted = FitResult(history=history, best_epoch=0, best_val=branch_val)  # the branch is the model: no second stage
    else:
        fitted = _fit(model, data, cfg, tracker, **fit_args, keep_initial=bool(history))
    if history and model.config.use_encoder:
        fitted.history = history + [{"stage": 2.0, **row} for row in fitted.history]
        # AUROC, not F1: threshold-free, so a couple of validation texts crossing 0.5 do not decide.
        gain = (fitted.best_val.get("val_auroc") or 0.0) - (branch_val.get("val_auroc") or 0.0)
        min_gain = cfg.experimental.min_encoder_gain
        if branch_val and min_gain is not None and gain < min_gain:
            # The encoder costs most of the forward pass: without a clear gain the n-gram branch
            # alone is the champion, and the saved model never runs the encoder.
            model.load_state_dict(branch_state)
            model.config.use_encoder = False
            fitted.best_val, fitted.best_epoch = branch_val, 0
            log.info("encoder dropped: validation AUROC %+.4f over the n-gram branch alone (experimental.min_encoder_gain "
                     "%.3f); the champion is the branch", gain, min_gain)
    uses_encoder = bool(getattr(model.config, "use_encoder", True))
    if tracker:
        tracker.log_params({"use_encoder": uses_encoder})
    # Validation texts never reach the weights, so the calibration and the threshold fitted on their
    # scores describe the saved model as it will meet unseen texts.
    policy = _policy(model, data.val_ids, data.val_labels, cfg, pad_id, tracker)
    out = Path(out_dir)
    _save(model, backbone.hf_tokenizer if backbone else tokenizer, out, cfg,
          {"mode": "full", "source": source, "pad_id": pad_id, "use_encoder": uses_encoder,
           "learning_rate": learning_rate, **({"backbone": backbone.recipe.to_dict()} if backbone else {}),
           **fitted.best_val}, policy, recognizer)
    # The score distribution live traffic is compared with (content_arena.monitoring: drift).
    write_score_reference(out, [e.text for e in val_examples or []])
    log.info("champion trained in %.1fs (%d examples) → %s", time.perf_counter() - started, len(texts), out)
    return TrainResult(out, "full", fitted.history, fitted.best_epoch, fitted.best_val, time.perf_counter() - started,
                       len(texts), policy)


def _build_recognizer(normalized: Sequence[str], cfg: ArenaConfig) -> WordRecognizer | None:
    """The champion's word recogniser (``experimental.word_recognition``): its vocabulary is every word of the
    (normalised) training texts and of the unlabelled texts the tokenizer reads. Validation texts stay out of
    it, so the threshold is tuned on texts the recogniser treats as it will treat unseen ones."""
    if not cfg.experimental.word_recognition:
        return None
    recognizer = WordRecognizer.build(normalized, min_count=cfg.experimental.recognizer_min_count,
                                      min_key=cfg.experimental.recognizer_min_key,
                                      novel_only=cfg.experimental.recognizer_novel_only)
    log.info("word recogniser: %d known words", len(recognizer))
    return recognizer


def _open_ngram_idf(model: torch.nn.Module, data: EncodedSets) -> torch.Tensor | None:
    """The n-grams of the challenger's training texts that its champion never saw get their IDF weight
    (see ``NgramBertConfig.ngram_min_df``), so the adapter can learn the evasions' n-grams. Returns the
    new IDF table, or None for a model without one (mean pooling, a pretrained base, ``ngram_min_df`` 0)."""
    config = getattr(model, "config", None)
    if getattr(config, "ngram_pooling", None) != "idf" or getattr(config, "ngram_min_df", 0) <= 0:
        return None
    opened = model.extend_ngram_idf(data.train_ids)
    log.info("n-gram IDF: %d buckets unseen by the champion found in the challenger's training texts", opened)
    return model.ngram_idf.detach().clone().cpu()


def train_challenger(
    champion_dir: str | Path,
    examples: Sequence[Example],
    out_dir: str | Path,
    cfg: ArenaConfig,
    *,
    val_examples: Sequence[Example] | None = None,
    policy_examples: Sequence[Example] | None = None,
    tracker: Tracker | None = None,
) -> TrainResult:
    """LoRA (QLoRA on CUDA) from the champion's weights, merged and saved as plain safetensors.

    Args:
        champion_dir: the champion the adapter starts from (its tokenizer and word recogniser are kept).
        examples: the challenger's training examples.
        out_dir: where the merged challenger is saved.
        cfg: the configuration.
        val_examples: texts that pick the best epoch (the loop passes clean validation texts plus
            attacked copies of them).
        policy_examples: the clean validation texts its calibration and policy threshold are fitted on, the
            champion's; None uses ``val_examples``.
        tracker: MLflow-like parameter and metric logger.

    Returns:
        The saved challenger, its history and its policy fit.
    """
    from peft import get_peft_model

    _set_threads(cfg.training.torch_threads)
    torch.manual_seed(cfg.training.seed)
    champion_dir = Path(champion_dir)
    texts, labels = _texts_labels(examples, cfg.training.max_train_examples)
    started = time.perf_counter()
    mode = choose_adapter_mode(cfg.training)
    tokenizer = load_tokenizer(champion_dir)
    model = load_for_adapter(champion_dir, mode)
    backbone = getattr(model.config, "arena_backbone", None)  # the champion's recipe, when pretrained
    if backbone:
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"max_length": backbone["max_length"]})})
    for module in model.modules():
        # LoRA trains small dense factors beside frozen tables; sparse lookups would hand them sparse
        # gradients, which peft's embedding adapter cannot use.
        if isinstance(module, torch.nn.Embedding):
            module.sparse = False
    pad_id = _pad_id(model, tokenizer)
    # The champion's recogniser, unchanged (see defender/recognizer.py); _save copies its file.
    recognizer = WordRecognizer.load(champion_dir)
    data = EncodedSets.build(tokenizer, texts, labels, val_examples, cfg.model.max_length, recognizer)
    idf = _open_ngram_idf(model, data)
    targets = lora_targets(model).summary()
    learning_rate = challenger_learning_rate(backbone, cfg.training)
    model = get_peft_model(model, lora_config(model, cfg.training))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info("%s adapter: %d of %d parameters trainable (%.1f%%)", mode, trainable, total, 100 * trainable / total)
    if tracker:
        tracker.log_params(
            {
                "mode": mode,
                "n_train": len(texts),
                "epochs": cfg.training.challenger_epochs,
                "learning_rate": learning_rate,
                "lora_targets": ",".join(targets)[:500],
                "lora_r": cfg.training.lora_r,
                "lora_alpha": cfg.training.lora_alpha,
                "trainable_params": trainable,
            }
        )
    fitted = _fit(
        model, data, cfg, tracker, pad_id=pad_id,
        epochs=cfg.training.challenger_epochs, learning_rate=learning_rate, weight_decay=0.0,
    )
    with tempfile.TemporaryDirectory(prefix="arena-adapter-") as tmp:
        model.save_pretrained(tmp)
        merged = merge_adapter(champion_dir, Path(tmp))
    if idf is not None:  # a buffer, not a weight: the adapter does not carry it
        merged.ngram_idf.copy_(idf)
    out = Path(out_dir)
    # Its own calibration and threshold, by the champion's policy on the same clean validation texts.
    if policy_examples is None:
        policy_ids, policy_labels = data.val_ids, data.val_labels
    else:
        policy_ids = encode(tokenizer, [e.text for e in policy_examples], cfg.model.max_length,
                            view=recognizer.many if recognizer is not None else None)
        policy_labels = [int(e.label) for e in policy_examples]
    policy = _policy(merged, policy_ids, policy_labels, cfg, pad_id, tracker)
    _save(merged, champion_dir, out, cfg, {"mode": mode, "parent": str(champion_dir), "pad_id": pad_id,
                                           "learning_rate": learning_rate, "lora_targets": targets,
                                           **({"backbone": backbone} if backbone else {}), **fitted.best_val},
          policy)
    write_score_reference(out, [e.text for e in (policy_examples if policy_examples is not None else val_examples) or []])
    log.info("challenger (%s) trained in %.1fs (%d examples) → %s", mode, time.perf_counter() - started, len(texts), out)
    return TrainResult(out, mode, fitted.history, fitted.best_epoch, fitted.best_val, time.perf_counter() - started,
                       len(texts), policy)
