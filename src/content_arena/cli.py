"""The ``arena`` command line. Each command is a thin call into the library.

Logs and progress go to stderr; with ``--json`` the last line of stdout is one JSON object.
Known failures (bad config, unknown strategy, missing model, unreadable data, the store or MLflow
unreachable) exit with code 2 and one line on stderr starting with ``error:`` (``ARENA_DEBUG=1`` shows
the traceback instead).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True)
pipeline_app = typer.Typer(no_args_is_help=True, help="Run the whole adversarial loop.")
app.add_typer(pipeline_app, name="pipeline")
review_app = typer.Typer(no_args_is_help=True, help="Label live texts the service kept for review.")
app.add_typer(review_app, name="review")


def _print_version(value: bool) -> None:
    if value:
        from content_arena import __version__

        print(f"arena {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Content Arena: adversarial MLOps for content moderation.

    State (the SQLite store, MLflow runs and models, work files) lives under ARENA_HOME (default ./.arena);
    the configuration is read from --config, $ARENA_CONFIG or ./arena.yaml, and ARENA_* variables override it.
    """

stderr = Console(stderr=True)
stdout = Console()

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="arena.yaml (default: $ARENA_CONFIG or ./arena.yaml)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last stdout line.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]


def _expected_errors() -> tuple[type[BaseException], ...]:
    from content_arena.attacks import StrategyUnavailable, UnknownStrategyError
    from content_arena.config import ConfigError
    from content_arena.data import DataError
    from content_arena.defender import ModelIntegrityError, ModelNotFound
    from content_arena.model_registry import RegistryError
    from content_arena.store import StoreUnavailable

    return (
        ConfigError, DataError, FileNotFoundError, ModelNotFound, ModelIntegrityError, UnknownStrategyError,
        StrategyUnavailable, StoreUnavailable, RegistryError, ValueError, KeyError,
    )


def cli_command(func):
    """Turn expected failures into one ``error:`` line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except _expected_errors() as exc:
            if os.environ.get("ARENA_DEBUG"):
                raise  # the full traceback, for reporting a bug behind a one-line error
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            stderr.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def _setup(config: Path | None, verbose: bool, **overrides: Any):
    from content_arena.config import load_config

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=stderr, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    quiet_third_party_output()
    cfg = load_config(config, **overrides)
    from content_arena.threads import set_torch_threads

    set_torch_threads(cfg.inference.torch_threads or cfg.training.torch_threads)  # None: the CPU quota
    return cfg


def quiet_third_party_output() -> None:
    """Keep our progress readable: no per-file progress bars or deprecation chatter from dependencies."""
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\..*")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(torch|mlflow|sqlalchemy)\..*")
    for noisy in ("alembic", "mlflow", "httpx", "urllib3", "transformers", "peft", "bitsandbytes"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _emit_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


# -- pipeline -------------------------------------------------------------------------------------


@pipeline_app.command("run")
@cli_command
def pipeline_run(
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
    cycles: Annotated[int, typer.Option("--cycles", min=1, max=100,
                                        help="Run the loop N times, each cycle attacking the current champion; "
                                             "the attacker evolves between cycles.")] = 1,
    until_pass: Annotated[bool, typer.Option("--until-pass", help="Stop once the gate passes twice in a row.")] = False,
) -> None:
    """attack → evaluate → gate → collect → augment → train → compare → promote (N times with --cycles)."""
    from content_arena.coevolution import run_cycles
    from content_arena.report import build_report

    cfg = _setup(config, verbose)
    result = run_cycles(cfg, cycles, until_pass, console=stderr)
    _print_summary(result.runs[-1].to_dict())
    if len(result.cycles) > 1:
        for c in result.cycles:
            stderr.print(f"cycle {c.cycle}: gate {c.gate}, evasion {c.evasion_rate:.3f}, "
                         f"{'promoted' if c.promoted else 'kept'} v{c.champion_version}"
                         + (f", born {', '.join(c.born)}" if c.born else ""), highlight=False)
    stderr.print(f"report: {build_report(cfg)}", highlight=False)
    if json_out:
        _emit_json(result.to_dict())


def _print_summary(s: dict[str, Any]) -> None:
    gate = s["gate"]
    stderr.print(f"\n[bold]quality gate:[/] {gate['decision']}")
    for reason in gate["reasons"]:
        stderr.print(f"  • {reason}", highlight=False)
    before, after = s["champion_before"], s["challenger"]
    table = Table(title="per-strategy evasion rate (held-out adversarial set)")
    table.add_column("strategy")
    table.add_column(f"champion v{before['version']}", justify="right")
    if after:
        table.add_column(f"challenger v{after['version']}", justify="right")
    for name, rate in before["per_strategy"].items():
        row = [name, _fmt(rate)]
        if after:
            row.append(_fmt(after["per_strategy"].get(name)))
        table.add_row(*row)
    # Every figure is at each model's own policy threshold (defender.operating_point).
    for label, key in (("overall evasion", "evasion_rate"), ("threshold", "threshold"), ("clean recall", "recall"),
                       ("clean FPR", "fpr"), ("clean F1", "f1"), ("clean AUROC", "auroc"), ("clean ECE", "ece"),
                       ("attacked-clean FPR", "attacked_clean_fpr")):
        row = [f"[bold]{label}", _fmt(before.get(key))]
        if after:
            row.append(_fmt(after.get(key)))
        table.add_row(*row)
    stderr.print(table)
    verdict = "promoted" if s["promoted"] else ("not promoted" if after else "no retraining needed")
    stderr.print(f"challenger {verdict}; champion is version {s['champion_version']} ({s['seconds']:.0f}s)")


# -- train / evaluate -----------------------------------------------------------------------------


@app.command()
@cli_command
def train(
    data: Annotated[Path, typer.Option(help="Labelled data file.")],
    format: Annotated[str, typer.Option("--format", "-f", help="beep|unsmile|jigsaw|csv|tsv|jsonl|seed")] = "csv",
    base_model: Annotated[str | None, typer.Option(help="Local directory (or hub id) of a pretrained model.")] = None,
    out: Annotated[Path | None, typer.Option(help="Where to save the defender.")] = None,
    register: Annotated[bool, typer.Option(help="Register in MLflow (champion if there is none).")] = False,
    epochs: Annotated[int | None, typer.Option(help="Override training.epochs.")] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Train a defender by full fine-tuning on a labelled file."""
    from content_arena.data import load_examples
    from content_arena.model_registry import CHAMPION
    from content_arena.steps import Workspace, aliases, fit_val_split, register_model
    from content_arena.training import train_champion

    overrides: dict[str, Any] = {}
    if base_model:
        overrides["model"] = {"base_model": base_model}
    if epochs:
        overrides["training"] = {"epochs": epochs}
    cfg = _setup(config, verbose, **overrides)
    examples = load_examples(data, format)
    fit_set, val = fit_val_split(examples, cfg)
    out_dir = out or cfg.home_path / "models" / "trained" / data.stem
    payload: dict[str, Any] = {"model_dir": str(out_dir), "n_train": len(fit_set), "n_val": len(val)}
    if register:
        ws = Workspace.open(cfg)
        with ws.registry.run(f"train-{data.stem}", tags={"stage": "train", "data": str(data)}) as run:
            result = train_champion(fit_set, out_dir, cfg, val_examples=val, tracker=run)
            is_first = ws.registry.version_for(CHAMPION) is None
            version = register_model(ws, result, run)
        if is_first:
            aliases.set_champion(ws, version)
        payload.update(version=version, champion=is_first)
    else:
        result = train_champion(fit_set, out_dir, cfg, val_examples=val)
    payload.update(val_metrics=result.val_metrics, seconds=round(result.seconds, 2))
    stderr.print(f"defender saved to {out_dir} (val {result.val_metrics})", highlight=False)
    if json_out:
        _emit_json(payload)


@app.command()
@cli_command
def pretrain(
    data: Annotated[Path, typer.Option(help="Unlabelled texts, one per line (UTF-8).")],
    out: Annotated[Path, typer.Option(help="Directory for the base model; use it as model.base_model.")],
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the texts.")] = 3,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Masked-language-model pretraining of the small encoder on unlabelled comments."""
    from content_arena.training.pretrain import pretrain_mlm

    cfg = _setup(config, verbose)
    if not data.is_file():
        raise FileNotFoundError(f"data file not found: {data}")
    try:
        texts = data.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{data}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    result = pretrain_mlm(texts, out, cfg.model, epochs=epochs)
    stderr.print(f"base model saved to {result.model_dir} (MLM loss {result.losses[0]:.3f} → {result.losses[-1]:.3f})")


@app.command()
@cli_command
def evaluate(
    model: Annotated[str, typer.Option(help="Defender directory or models:/content-filter@champion.")],
    data: Annotated[Path, typer.Option(help="Labelled data file.")],
    format: Annotated[str, typer.Option("--format", "-f")] = "csv",
    attacks: Annotated[str, typer.Option(help="Comma-separated strategy names, or all: every rule strategy `arena strategies` lists, plus llm when llm.host is set (adaptive only when named).")] = "all",
    seed: Annotated[int, typer.Option(help="Attack seed.")] = 1,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Clean metrics and per-strategy evasion of a defender on a labelled file, at its policy threshold."""
    from content_arena.attacks import resolve_strategies
    from content_arena.data import load_examples
    from content_arena.defender import load_defender
    from content_arena.evaluation import AdversarialSet
    from content_arena.evaluation import evaluate as run_evaluation

    cfg = _setup(config, verbose)
    strategies = resolve_strategies(attacks, llm=cfg.llm_options())
    examples = load_examples(data, format)
    defender = load_defender(model, cfg)
    report = run_evaluation(defender, AdversarialSet.build(examples, strategies, seed=seed))
    result = report.to_dict()
    table = Table(title=f"{model} on {data.name} (n={report.clean.n})")
    table.add_column("strategy")
    table.add_column("evasion rate", justify="right")
    table.add_column("attacked-clean FPR", justify="right")
    table.add_column("detected", justify="right")
    for name, r in report.attacks.items():
        table.add_row(name, _fmt(r.evasion_rate), _fmt(r.attacked_clean_fpr), str(r.n_detected))
    stderr.print(table)
    stderr.print(
        f"at threshold {_fmt(report.threshold)} ({_policy(report.operating_point)}): "
        f"recall {_fmt(report.clean.recall)}  precision {_fmt(report.clean.precision)}  FPR {_fmt(report.clean.fpr)}"
        f"  F1 {_fmt(report.clean.f1)}  AUROC {_fmt(report.clean.auroc)}  PR-AUC {_fmt(report.clean.pr_auc)}"
        f"  ECE {_fmt(report.clean.ece)}"
    )
    if json_out:
        _emit_json(result)


# -- battles and models ---------------------------------------------------------------------------


@app.command()
@cli_command
def battle(
    rounds: Annotated[int, typer.Option(min=1, help="Rounds to play.")] = 100,
    strategy: Annotated[str, typer.Option(help="A strategy name, a comma list, an a+b composite, or all: every rule strategy `arena strategies` lists, plus llm when llm.host is set (adaptive only when named).")] = "all",
    model: Annotated[str, typer.Option(help="Defender directory or model URI.")] = "models:/content-filter@champion",
    resume: Annotated[str | None, typer.Option(help="Resume this battle id.")] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Attack the champion with toxic seed texts and record every round."""
    from content_arena.attack_runner import AttackRunner
    from content_arena.attacks import resolve_strategies
    from content_arena.defender import load_defender
    from content_arena.steps import Workspace, arm, load_splits
    from content_arena.steps.attack import publish_battle

    cfg = _setup(config, verbose)
    strategies = resolve_strategies(strategy, llm=cfg.llm_options())
    ws = Workspace.open(cfg)
    defender = load_defender(model, cfg)
    seeds = load_splits(cfg).seeds
    if resume:
        existing = ws.store.get_battle(resume)
        if existing is None:
            raise KeyError(f"no battle {resume}")
        strategies = resolve_strategies(list(existing.strategies), llm=cfg.llm_options())
    strategies = arm(strategies, defender)  # "adaptive" searches the defender under attack
    runner = AttackRunner(defender, ws.store, strategies, batch_size=cfg.attack.batch_size, seed=cfg.attack.seed,
                          max_text_length=cfg.attack.max_text_length)
    battle_id = resume or runner.start(seeds, rounds, model_version=defender.version, source="cli")
    stderr.print(f"battle {battle_id}", highlight=False)
    summary = runner.run(battle_id, seeds)
    publish_battle(ws, summary, defender.version)
    table = Table(title=f"battle {battle_id[:8]}: {summary.rounds} rounds")
    table.add_column("strategy")
    table.add_column("rounds", justify="right")
    table.add_column("evasion rate", justify="right")
    for name, entry in summary.per_strategy.items():
        table.add_row(name, str(int(entry["rounds"])), _fmt(entry["evasion_rate"]))
    stderr.print(table)
    if json_out:
        _emit_json(summary.to_dict())


@app.command()
@cli_command
def models(config: ConfigOpt = None, json_out: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """List registered defender versions: aliases, threshold and the policy that chose it, recorded metrics."""
    from content_arena.steps import Workspace

    cfg = _setup(config, verbose)
    ws = Workspace.open(cfg)
    versions = ws.registry.versions()
    rows = []
    table = Table(title=f"registered model {ws.registry.model_name}")
    for column in ("version", "aliases", "status", "mode", "threshold", "policy", "clean F1", "evasion"):
        table.add_column(column)
    for info in versions:
        record = ws.store.get_model(ws.registry.model_name, info.version)
        metrics = (record.metrics if record else None) or {}
        manifest = _registered_manifest(ws.registry, info.run_id)
        decision = {
            "threshold": manifest.threshold if manifest else None,
            "operating_point": manifest.operating_point if manifest else None,
            "calibration": (manifest.calibration or {}).get("kind", "identity") if manifest else None,
            "validation": manifest.validation if manifest else None,
        }
        rows.append({**info.to_dict(), "status": record.status if record else None, **decision, "metrics": metrics})
        table.add_row(str(info.version), ",".join(info.aliases) or "—", record.status if record else "—",
                      info.tags.get("mode", "—"), _fmt(decision["threshold"]),
                      _policy(decision["operating_point"]) if manifest else "—",
                      _fmt(metrics.get("clean_f1")), _fmt(metrics.get("evasion_rate")))
    stderr.print(table)
    if json_out:
        _emit_json({"name": ws.registry.model_name, "versions": rows})


def _policy(point: dict[str, Any] | None) -> str:
    """``fpr <= 0.10`` for an operating point; ``stored threshold`` for a model without one."""
    if not point:
        return "stored threshold"
    from content_arena.operating_point import OperatingPoint

    return OperatingPoint.from_dict(point).describe()


def _registered_manifest(registry: Any, run_id: str | None) -> Any:
    """The manifest of a registered version, read from its run's artifacts (one small file); None if unreadable."""
    import tempfile

    from content_arena.defender.artifacts import MANIFEST_FILE, read_manifest

    if not run_id:
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="arena-manifest-") as tmp:
            path = Path(registry.client.download_artifacts(run_id, f"model/{MANIFEST_FILE}", tmp))
            return read_manifest(path.parent)
    except Exception as exc:  # a listing goes on without one version's manifest
        logging.getLogger(__name__).warning("cannot read the manifest of run %s: %s", run_id, exc)
        return None


@app.command()
def strategies() -> None:
    """List the attack strategies."""
    from content_arena.attacks import available_strategies, get_strategy

    for name in available_strategies():
        description = getattr(get_strategy(name), "description", "") if name != "llm" else "LLM paraphrase (needs llm.host)"
        stdout.print(f"{name:15s} {description}", highlight=False)


# -- review -----------------------------------------------------------------------------------------


def _review_store(cfg: Any) -> Any:
    from content_arena.live_samples import LiveSampleStore
    from content_arena.store import open_store

    cfg.home_path.mkdir(parents=True, exist_ok=True)
    return LiveSampleStore(open_store(cfg.storage_url))


@review_app.command("list")
@cli_command
def review_list(
    status: Annotated[str, typer.Option(help="pending (unlabelled), labelled or all.")] = "pending",
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, oldest first.")] = 50,
    config: ConfigOpt = None, json_out: JsonOpt = False, verbose: VerboseOpt = False,
) -> None:
    """Live texts kept for review: near the threshold, or changed heavily by the normaliser."""
    cfg = _setup(config, verbose)
    samples = _review_store(cfg)
    try:
        rows = samples.list(status=status, limit=limit)
    finally:
        samples.store.close()
    table = Table(title=f"review samples ({status})")
    for column in ("id", "score", "reason", "kinds", "version", "label", "text"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row.id), _fmt(row.score), row.reason, ",".join(row.kinds) or "—", row.model_version or "—",
                      _fmt(row.label), row.text if len(row.text) <= 120 else row.text[:119] + "…")
    stderr.print(table)
    if json_out:
        _emit_json({"status": status, "samples": [row.to_dict() for row in rows]})


@review_app.command("label")
@cli_command
def review_label(
    sample_id: Annotated[int, typer.Argument(help="The sample's id (arena review list).")],
    label: Annotated[str, typer.Argument(help="toxic (1) or clean (0).")],
    by: Annotated[str | None, typer.Option(help="Who labels (default: the login name).")] = None,
    config: ConfigOpt = None, json_out: JsonOpt = False, verbose: VerboseOpt = False,
) -> None:
    """Label a kept text; it joins the next challenger's training set (training_data, source=live)."""
    import getpass

    labels = {"toxic": 1, "1": 1, "clean": 0, "0": 0}
    if label.lower() not in labels:
        raise ValueError(f"label must be toxic, clean, 1 or 0, not {label!r}")
    cfg = _setup(config, verbose)
    samples = _review_store(cfg)
    try:
        row = samples.label(sample_id, labels[label.lower()], by=by or f"cli:{getpass.getuser()}")
    finally:
        samples.store.close()
    stderr.print(f"sample {row.id} labelled {'toxic' if row.label else 'clean'}", highlight=False)
    if json_out:
        _emit_json(row.to_dict())


def _mount_commands() -> None:
    """Commands that live beside their code (service, delivery): each module's register(app, pipeline_app)."""
    import importlib

    for name in ("content_arena.service.commands", "content_arena.delivery.commands", "content_arena.report.commands"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that part of the project is not there
            raise
        module.register(app, pipeline_app)


_mount_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
