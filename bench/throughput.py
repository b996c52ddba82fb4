"""Timing sections of the harness: defender, attack generation, battle, classify API, one full loop.

Each ``bench_<section>(ctx)`` returns rows made by :func:`bench.harness.row`, every figure beside a
baseline measured in the same call; :class:`bench.harness.Skip` says why a section cannot run here.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.common import median_rate
from bench.harness import Context, Skip, is_user_arena_var, row

POSTGRES_URL = os.environ.get(
    "ARENA_BENCH_POSTGRES_URL",
    os.environ.get("ARENA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
)


# -- defender throughput --------------------------------------------------------------------------


def hf_pipeline(model_dir: Path, max_length: int) -> Callable[[Sequence[str], int], list[float]]:
    """transformers' text-classification pipeline over the same weights and tokenizer: toxic probability."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    import content_arena.defender.ngram_bert  # noqa: F401  registers the default architecture

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, use_safetensors=True,
                                                               local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    toxic = model.config.id2label.get(1, "LABEL_1")

    def run(texts: Sequence[str], batch_size: int) -> list[float]:
        out = pipe(list(texts), batch_size=batch_size, top_k=None, truncation=True, max_length=max_length)
        return [next(item["score"] for item in scores if item["label"] == toxic) for scores in out]

    return run


def cold_scoring_rate(defender: Any, texts: Sequence[str], repeats: int, batch_size: int = 64) -> float:
    """Median texts/s of ``defender.scores(texts)`` at ``batch_size`` with the word caches emptied before
    every run (the recogniser's and the reading keys'), so every unknown word is looked up again."""
    from content_arena.attacks.readability import reading_key

    chosen = list(texts)
    saved = defender.batch_size
    defender.batch_size = batch_size

    def cold() -> int:
        if defender.recognizer is not None:
            defender.recognizer.clear_cache()
        reading_key.cache_clear()
        return len(defender.scores(chosen))

    try:
        return median_rate(cold, repeats)
    finally:
        defender.batch_size = saved


def bench_defender(ctx: Context) -> list[dict[str, Any]]:
    defender = ctx.defender(64)
    pipe = hf_pipeline(defender.model_dir, defender.max_length)
    rows = []
    for batch in (1, 16, 64):
        texts = ctx.texts(ctx.sizes.texts_batch1 if batch == 1 else ctx.sizes.texts)
        defender.batch_size = batch
        ours = median_rate(lambda texts=texts: len(defender.scores(texts)), ctx.sizes.repeats)
        theirs = median_rate(lambda texts=texts, batch=batch: len(pipe(texts, batch)), ctx.sizes.repeats)
        rows.append(row("defender", f"scores(), batch {batch}", "texts/s", ours,
                        "transformers pipeline", theirs,
                        note=f"{len(texts)} texts; the default recipe: n-gram branch, no encoder"))
    # Same weights: on the same preprocessed texts (normaliser and word recogniser) both must give the same
    # probabilities.
    sample = defender.preprocess(ctx.texts(32))
    defender.batch_size = 64
    delta = max(abs(a - b) for a, b in zip(defender.predict(sample).tolist(), pipe(sample, 16), strict=True))
    ctx.details["defender"] = {"max_abs_prob_difference_vs_pipeline": delta,
                               "note": "scores() includes the normaliser and the word recogniser; the pipeline gets raw text"}
    rows[-1]["note"] += f"; max |Δp| vs pipeline {delta:.1e}"
    # The word recogniser caches each word it has looked up, so the rows above (the same texts scored again)
    # pay for unknown words once. Here every run starts with both caches empty: the cost of texts whose
    # words were never seen, a floor for a service that keeps meeting new words.
    if defender.recognizer is not None:
        texts = ctx.texts(ctx.sizes.texts)
        rows.append(row("defender", "scores(), batch 64, word caches emptied", "texts/s",
                        cold_scoring_rate(defender, texts, ctx.sizes.repeats), "transformers pipeline",
                        rows[-1]["baseline_value"], note=f"{len(texts)} texts; every unknown word looked up again"))
    rows.extend(signal_rows(ctx, defender))
    # The same architecture with its encoder kept: what the champion would cost where the encoder earns
    # its place on validation (experimental.min_encoder_gain).
    with_encoder = ctx.defender(64, encoder=True)
    encoder_pipe = hf_pipeline(with_encoder.model_dir, with_encoder.max_length)
    texts = ctx.texts(ctx.sizes.texts)
    ours = median_rate(lambda: len(with_encoder.scores(texts)), ctx.sizes.repeats)
    theirs = median_rate(lambda: len(encoder_pipe(texts, 64)), ctx.sizes.repeats)
    rows.append(row("defender", "scores(), batch 64, encoder kept", "texts/s", ours, "transformers pipeline",
                    theirs, note=f"{len(texts)} texts; hidden {with_encoder.model.config.hidden_size} x "
                                 f"{with_encoder.model.config.num_hidden_layers} layers run"))
    rows.extend(backbone_int8_rows(ctx))
    return rows


def backbone_checkpoint(ctx: Context) -> Path:
    """A MiniLM-sized BERT backbone (hidden 384, 6 layers, WordPiece over the texts), saved as a defender.

    Random weights: the timing is what this measures. Its scores barely spread (a random encoder
    gives every text nearly the same pooled vector), so the int8-vs-float32 difference printed here is
    no evidence about a trained classifier's.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    from content_arena.defender.artifacts import ModelManifest, write_manifest

    out = ctx.workdir / "backbone-minilm"
    if (out / "arena_model.json").is_file():
        return out
    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wordpiece.train_from_iterator(ctx.texts(4000), trainers.WordPieceTrainer(
        vocab_size=8000, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False))
    tokenizer = BertTokenizer(vocab=wordpiece.get_vocab())
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=len(tokenizer), hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
        intermediate_size=1536, max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id, num_labels=2,
        id2label={0: "clean", 1: "toxic"}, label2id={"clean": 0, "toxic": 1}))
    # Wider than at initialisation, so that scores leave 0.5 (their spread is printed beside |Δp|).
    torch.nn.init.normal_(model.classifier.weight, std=0.1)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    write_manifest(out, ModelManifest(threshold=0.5, max_length=128, info={"pad_id": tokenizer.pad_token_id}))
    return out


def backbone_int8_rows(ctx: Context) -> list[dict[str, Any]]:
    """A transformer backbone served on CPU: the defender with dynamic int8 Linear layers, and in float32,
    each against transformers' pipeline over the same weights at batch 64; max |Δp| int8 vs float32."""
    import numpy as np

    from content_arena.defender import TransformerDefender

    model_dir = backbone_checkpoint(ctx)
    full = TransformerDefender(model_dir, batch_size=64, device="cpu").load()
    int8 = TransformerDefender(model_dir, batch_size=64, device="cpu", quantize=True).load()
    pipe = hf_pipeline(model_dir, full.max_length)
    texts = ctx.texts(ctx.sizes.texts)
    theirs = median_rate(lambda: len(pipe(texts, 64)), ctx.sizes.repeats)
    ours_full = median_rate(lambda: len(full.scores(texts)), ctx.sizes.repeats)
    ours_int8 = median_rate(lambda: len(int8.scores(texts)), ctx.sizes.repeats)
    prepared = full.preprocess(texts)
    reference = full.predict(prepared)
    delta = float(np.abs(int8.predict(prepared) - reference).max())
    ctx.details["backbone_int8"] = {"max_abs_prob_difference_vs_float32": delta,
                                    "float32_score_std": float(reference.std()), "texts": len(texts)}
    shape = "BERT hidden 384 x 6 layers, random weights"
    return [
        row("defender", "backbone scores(), batch 64, int8 dynamic", "texts/s", ours_int8, "transformers pipeline",
            theirs, note=f"{len(texts)} texts; {shape}; max |Δp| vs float32 {delta:.1e} "
                         f"(float32 scores' std {reference.std():.2f})"),
        row("defender", "backbone scores(), batch 64, float32", "texts/s", ours_full, "transformers pipeline", theirs,
            note=f"{len(texts)} texts; {shape}; length-sorted batches, no int8"),
    ]


# Texts per block of the signals rows: on and off alternate block by block, so both sides of a repeat are
# timed over the same stretch of time. Shorter blocks pair them more closely; each block still spans
# many calls, so the switch between the two costs nothing measurable.
SIGNAL_BLOCK_TEXTS = 32


def signal_rows(ctx: Context, defender: Any) -> list[dict[str, Any]]:
    """The classify path with the live-traffic signals (``monitoring.enabled``, the default:
    :meth:`LiveMonitor.score`, review candidates picked but not stored) beside the same batches scored
    with the signals off (``defender.scores``); batch 64 is the micro-batcher's full batch, batch 1 a
    lone request.

    The cost is a few microseconds a call, well below how much a shared machine's speed moves from one
    second to the next, so the two sides are paired: within each repeat on and off alternate block by
    block (:data:`SIGNAL_BLOCK_TEXTS` texts, the side that goes first alternating too) and the repeat's
    cost is 1 − on/off of its two totals. The row gives the median rates; its note the costs' mean ±
    standard deviation and range over the repeats (``details["live_signals"]`` has every cost).
    """
    import statistics

    from content_arena.config import MonitoringConfig
    from content_arena.monitoring import LiveMonitor

    monitor = LiveMonitor(MonitoringConfig(), on_candidates=lambda picked: None)
    defender.batch_size = 64
    sides: dict[str, Callable[[list[str]], Any]] = {
        "off": defender.scores, "on": lambda chunk: monitor.score(defender, chunk)}
    repeats = max(5, ctx.sizes.repeats * 3)
    rows, details = [], {}
    for batch in (1, 64):
        texts = ctx.texts(ctx.sizes.texts_batch1 if batch == 1 else ctx.sizes.texts)
        chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
        per_block = max(1, SIGNAL_BLOCK_TEXTS // batch)
        blocks = [chunks[i : i + per_block] for i in range(0, len(chunks), per_block)]
        for score in sides.values():  # warm-up: word caches, first-call costs
            for chunk in chunks:
                score(chunk)
        rates: dict[str, list[float]] = {"off": [], "on": []}
        costs = []
        for repeat in range(repeats):
            seconds = {"off": 0.0, "on": 0.0}
            for index, block in enumerate(blocks):
                order = ("off", "on") if (index + repeat) % 2 == 0 else ("on", "off")
                for name in order:
                    score = sides[name]
                    start = time.perf_counter()
                    for chunk in block:
                        score(chunk)
                    seconds[name] += time.perf_counter() - start
            for name in rates:
                rates[name].append(len(texts) / seconds[name])
            costs.append(1 - seconds["off"] / seconds["on"])
        mean, sd = statistics.mean(costs), statistics.stdev(costs)
        details[f"batch_{batch}"] = {"costs": [round(c, 5) for c in costs], "mean": mean, "sd": sd,
                                     "texts": len(texts), "repeats": repeats}
        rows.append(row("defender", f"classify path with live signals, batch {batch}", "texts/s",
                        statistics.median(rates["on"]), "signals off (defender.scores)",
                        statistics.median(rates["off"]),
                        note=f"{len(texts)} texts in batches of {batch}; cost {mean:+.1%} ± {sd:.1%} (mean ± sd of "
                             f"{repeats} paired repeats), range {min(costs):+.1%} to {max(costs):+.1%}"))
    ctx.details["live_signals"] = details
    return rows


# -- attack generation ----------------------------------------------------------------------------


def bench_attacks(ctx: Context) -> list[dict[str, Any]]:
    from content_arena.attacks import resolve_strategies

    texts = ctx.texts(ctx.sizes.attack_texts)
    scoring = ctx.scoring_rate(texts)
    rows = []
    for strategy in resolve_strategies("all"):
        rate = median_rate(lambda s=strategy: len(s.attack_many(texts, seed=0)), ctx.sizes.repeats)
        rows.append(row("attacks", f"generate: {strategy.name}", "variants/s", rate,
                        "defender scoring, batch 64", scoring, note=f"{len(texts)} texts"))
    return rows


# -- battle throughput ----------------------------------------------------------------------------


class MemoryStore:
    """The part of ``Store`` that ``AttackRunner`` uses, in memory: the battle with nothing persisted."""

    def __init__(self) -> None:
        self.battles: dict[str, dict[str, Any]] = {}
        self.rounds: dict[str, dict[int, Any]] = {}

    def create_battle(self, *, strategies: list[str], rounds: int, **kwargs: Any) -> str:
        battle_id = uuid.uuid4().hex
        self.battles[battle_id] = {"status": "pending", "rounds_planned": rounds, "strategies": strategies,
                                   "model_version": kwargs.get("model_version")}
        self.rounds[battle_id] = {}
        return battle_id

    def get_battle(self, battle_id: str) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(id=battle_id, **self.battles[battle_id]) if battle_id in self.battles else None

    def update_battle(self, battle_id: str, *, status: str | None = None, **_: Any) -> None:
        if status is not None:
            self.battles[battle_id]["status"] = status

    def done_round_numbers(self, battle_id: str) -> set[int]:
        return set(self.rounds[battle_id])

    def add_rounds(self, battle_id: str, rounds: Sequence[dict[str, Any]]) -> int:
        stored = self.rounds[battle_id]
        new = [r for r in rounds if r["round_number"] not in stored]
        for item in new:
            stored[item["round_number"]] = item
        return len(new)

    def list_rounds(self, battle_id: str, *, limit: int | None = 100, offset: int = 0, **_: Any) -> list[Any]:
        from types import SimpleNamespace

        ordered = [SimpleNamespace(**self.rounds[battle_id][k]) for k in sorted(self.rounds[battle_id])]
        return ordered[offset: None if limit is None else offset + limit]


def battle_rate(defender: Any, store: Any, seeds: Sequence[Any], rounds: int, repeats: int) -> float:
    """Median rounds/s of complete battles (plan, attack, classify, persist, summarise) on ``store``."""
    from content_arena.attack_runner import AttackRunner
    from content_arena.attacks import resolve_strategies

    runner = AttackRunner(defender, store, resolve_strategies("all"), batch_size=256, seed=0)

    def once() -> int:
        battle_id = runner.start(seeds, rounds, model_version="bench", source="bench")
        summary = runner.run(battle_id, seeds)
        assert summary.rounds == rounds, summary
        return rounds

    return median_rate(once, repeats)


@contextlib.contextmanager
def postgres_store(url: str = POSTGRES_URL) -> Iterator[Any]:
    """A store in a throwaway schema of the PostgreSQL database at ``url``; the schema is dropped after."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from content_arena.store import Store, StoreUnavailable, normalize_url

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        store = Store(url, schema=schema)
    except (StoreUnavailable, ImportError) as exc:
        where = normalize_url(url).render_as_string(hide_password=True)
        raise Skip(f"PostgreSQL unreachable at {where}: {exc}") from exc
    try:
        yield store
    finally:
        store.close()
        engine = create_engine(normalize_url(url), poolclass=NullPool, connect_args={"connect_timeout": 5})
        try:
            with engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            engine.dispose()


def bench_battle(ctx: Context) -> list[dict[str, Any]]:
    from content_arena.data import load_seed_corpus
    from content_arena.store import Store

    defender = ctx.defender(256)
    seeds = [e for e in load_seed_corpus() if e.label == 1]
    rounds, repeats = ctx.sizes.battle_rounds, ctx.sizes.battle_repeats
    memory = battle_rate(defender, MemoryStore(), seeds, rounds, repeats)
    note = f"{rounds} rounds, 6 strategies"
    sqlite_store = Store(f"sqlite:///{ctx.workdir / 'battle.db'}")
    try:
        sqlite = battle_rate(defender, sqlite_store, seeds, rounds, repeats)
    finally:
        sqlite_store.close()
    rows = [row("battle", "battle on SQLite", "rounds/s", sqlite, "in-memory (not persisted)", memory, note=note)]
    try:
        with postgres_store() as pg_store:
            pg = battle_rate(defender, pg_store, seeds, rounds, repeats)
        rows.append(row("battle", "battle on PostgreSQL", "rounds/s", pg, "in-memory (not persisted)", memory,
                        others={"SQLite": sqlite}, note=note + "; throwaway schema"))
    except Skip as exc:
        rows.append(row("battle", "battle on PostgreSQL", "rounds/s", None, None, None, note=f"skipped: {exc}",
                        status="skipped"))
    return rows


# -- classify API -----------------------------------------------------------------------------------

API_ENTRY_POINT = "run_benchmark"


def find_api_entry() -> Callable[..., Any]:
    """``bench/bench_api.py``'s entry point for the harness, or :class:`Skip` with the reason."""
    path = Path(__file__).with_name("bench_api.py")
    if not path.is_file():
        raise Skip("bench/bench_api.py is not there")
    try:
        import bench.bench_api as module
    except Exception as exc:  # its imports (httpx, the service extras…) may be missing here
        raise Skip(f"bench/bench_api.py does not import: {type(exc).__name__}: {exc}") from exc
    func = getattr(module, API_ENTRY_POINT, None)
    if not callable(func):
        raise Skip(f"bench/bench_api.py has no {API_ENTRY_POINT}() for the harness")
    return func


def api_rows(result: dict[str, Any], note: str = "") -> list[dict[str, Any]]:
    """bench_api's rows (one per server configuration × load mode) as harness rows: the micro-batched
    server's figures beside the unbatched server's, mode by mode."""
    rows = result.get("rows") or []
    baseline_name = next((r["server"] for r in rows if "baseline" in str(r.get("server", ""))), None)
    if baseline_name is None:
        raise Skip("bench_api returned no baseline (unbatched) server rows")
    base = {r["mode"]: r for r in rows if r["server"] == baseline_name}
    out = []
    for r in rows:
        if r["server"] == baseline_name or r["mode"] not in base:
            continue
        b = base[r["mode"]]
        label = f"{r['server']}, {r['mode']}"
        extra = f"errors {r.get('errors', 0)} vs {b.get('errors', 0)}; mean batch {r.get('mean_batch')}"
        out.append(row("api", f"classify API {label}", "req/s", r["throughput_rps"], baseline_name,
                       b["throughput_rps"], note="; ".join(x for x in (extra, "" if out else note) if x)))
        for key in ("p50_ms", "p99_ms"):
            out.append(row("api", f"classify API {label} {key[:3]}", "ms", r[key], baseline_name, b[key]))
    if not out:
        raise Skip("bench_api returned no rows to compare")
    return out


def bench_api(ctx: Context) -> list[dict[str, Any]]:
    func = find_api_entry()
    offered = {"seconds": ctx.sizes.api_seconds, "max_requests": ctx.sizes.api_max_requests,
               "home": ctx.workdir / "api-home"}
    params = inspect.signature(func).parameters
    result = func(**{k: v for k, v in offered.items() if k in params})
    ctx.details["api"] = result
    settings = result.get("settings", {})
    note = (f"bench_api.{API_ENTRY_POINT}(): server torch threads {settings.get('server_torch_threads', '?')}, "
            f"{settings.get('seconds', '?')} s per phase")
    return api_rows(result, note)


# -- one full loop ----------------------------------------------------------------------------------

_CHILD = r"""
import json, os, resource, sys, time
import torch
torch.set_num_threads(int(os.environ["ARENA_BENCH_THREADS"]))
from content_arena.config import load_config
mode, home, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
cfg = load_config(None, home=home, **overrides)
started = time.perf_counter()
summary = {}
if mode == "loop":
    from content_arena.orchestrator import run_pipeline
    summary = run_pipeline(cfg).to_dict()
else:
    from content_arena.data import split_examples
    from content_arena.orchestrator import load_dataset
    from content_arena.training import train_champion
    train, _ = load_dataset(cfg)
    fit, val = split_examples(train, test_fraction=0.1, seed=cfg.data.split_seed + 1)
    train_champion(fit, os.path.join(home, "champion"), cfg, val_examples=val)
# VmHWM is this process's own peak: ru_maxrss would also count the parent's RSS at fork (Linux keeps it
# across exec), which is the harness's, not the loop's.
try:
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"inner_seconds": time.perf_counter() - started, "peak_rss_kib": peak, "summary": summary}))
"""


def run_child(mode: str, home: Path, overrides: dict[str, Any], threads: int, timeout: float = 3600) -> dict[str, Any]:
    """Run ``mode`` ("loop" or "train") in a fresh interpreter; wall seconds and its peak RSS."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not is_user_arena_var(k)}
    env.update(ARENA_BENCH_THREADS=str(threads), TQDM_DISABLE="1", TRANSFORMERS_VERBOSITY="error",
               HF_HUB_DISABLE_PROGRESS_BARS="1", MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, mode, str(home), json.dumps(overrides)], cwd=home, env=env,
                          capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} child failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    result["peak_rss_mib"] = result["peak_rss_kib"] / 1024
    return result


def bench_loop(ctx: Context) -> list[dict[str, Any]]:
    overrides = {"training": {"torch_threads": ctx.threads}, "inference": {"torch_threads": ctx.threads}}
    for key, value in ctx.sizes.loop_overrides.items():
        overrides[key] = {**overrides.get(key, {}), **value}
    which = "default config" if not ctx.sizes.loop_overrides else "reduced config, not the default"
    loop = run_child("loop", ctx.workdir / "loop-home", overrides, ctx.threads)
    train = run_child("train", ctx.workdir / "train-home", overrides, ctx.threads)
    summary = loop["summary"]
    ctx.details["loop"] = {"config": which, "overrides": overrides, "loop": loop,
                           "train_only": {k: v for k, v in train.items() if k != "summary"}}
    decision = summary.get("gate", {}).get("decision")
    note = (f"{which}; gate {decision}, {'promoted' if summary.get('promoted') else 'not promoted'}; "
            "child process, wall incl. imports")
    return [
        row("loop", "run_pipeline wall time", "s", loop["wall_seconds"], "train_champion alone",
            train["wall_seconds"], note=note),
        row("loop", "run_pipeline peak RSS", "MiB", loop["peak_rss_mib"], "train_champion alone",
            train["peak_rss_mib"], note="VmHWM of the child process"),
    ]
