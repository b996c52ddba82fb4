"""The loop's steps on plain parameters and files: what the Kubeflow components call.

Each function turns one step's inputs — a configuration (``config``: a path to ``arena.yaml`` or
YAML text; ``overrides``: YAML merged over it), model versions or URIs, the paths of JSON / JSONL
files — into a call of the same step function :func:`content_arena.orchestrator.run_pipeline`
calls (:mod:`content_arena.steps`), and its result back into files and a small JSON-able dict.
State that outlives a step — battles, training samples, registered models and their aliases —
lives in the configured store and MLflow registry. Behaviour belongs in :mod:`content_arena.steps`,
never here: this module only translates.

The Kubeflow components in ``components/`` are thin wrappers over these functions; the ``arena``
CLI calls them too. Nothing here imports Kubernetes, Kubeflow or KServe at module level.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from content_arena import steps
from content_arena.config import ArenaConfig, ConfigError, load_config
from content_arena.model_registry import CHAMPION
from content_arena.steps import Workspace, publish_model, storage_uri_for

log = logging.getLogger(__name__)

__all__ = [
    "augment",
    "attack",
    "champion",
    "collect",
    "compare",
    "evaluate",
    "gate",
    "load_stage_config",
    "promote",
    "publish_model",
    "read_report",
    "rollout",
    "storage_uri_for",
    "train",
]

# $(NAME) references in ``overrides`` are filled from the environment, the syntax Kubernetes uses
# for dependent environment variables: the pipeline's in-cluster overrides name $(DB_PASSWORD),
# which a Secret provides to the step's container.
_ENV_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


# -- configuration and files ----------------------------------------------------------------------


def expand_env_references(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace every ``$(NAME)`` whose NAME is set in the environment; leave the others as they are."""
    env = os.environ if environ is None else environ
    return _ENV_REFERENCE.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def load_stage_config(config: str | os.PathLike[str] | None = None, overrides: str | None = None) -> ArenaConfig:
    """The configuration of one step.

    ``config`` is a path to an ``arena.yaml``, the YAML text of one, or empty for the usual lookup
    (``$ARENA_CONFIG``, then ``./arena.yaml``, then the defaults). ``overrides`` is YAML text of a
    mapping merged over it after ``$(NAME)`` references are filled from the environment. ``ARENA_*``
    environment variables win over both, as everywhere else.
    """
    extra: dict[str, Any] = {}
    if overrides and overrides.strip():
        try:
            loaded = yaml.safe_load(expand_env_references(overrides))
        except yaml.YAMLError as exc:
            raise ConfigError(f"cannot parse the config overrides: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config overrides must be a mapping, got {type(loaded).__name__}")
        extra = loaded or {}
    text = os.fspath(config) if config else ""
    if not text.strip():
        return load_config(None, **extra)
    if "\n" not in text and Path(text).is_file():
        return load_config(text, **extra)
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ConfigError(f"config is neither a readable file nor YAML text of a mapping: {text[:200]!r}")
    # Through a file, so a bad value is reported exactly as load_config reports one.
    with tempfile.TemporaryDirectory(prefix="arena-config-") as tmp:
        path = Path(tmp) / "arena.yaml"
        path.write_text(text, encoding="utf-8")
        return load_config(path, **extra)


def write_json(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=_json_default) + "\n", encoding="utf-8")


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> int:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with target.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
            count += 1
    return count


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


# -- shared pieces --------------------------------------------------------------------------------


def _configure(config: str | os.PathLike[str] | None, overrides: str | None) -> ArenaConfig:
    """The step's configuration, with torch's threads sized for the pod (the CPU quota unless configured)."""
    from content_arena.threads import set_torch_threads

    cfg = load_stage_config(config, overrides)
    set_torch_threads(cfg.inference.torch_threads or cfg.training.torch_threads)
    return cfg


@contextmanager
def _workspace(cfg: ArenaConfig) -> Iterator[Workspace]:
    ws = Workspace.open(cfg)
    try:
        yield ws
    finally:
        ws.close()


def _armed(ws: Workspace, champion_version: int | None, champion: Any = None) -> tuple[list[Any], Any]:
    """The configured strategies bound to the champion (loaded only when a strategy needs it)."""
    strategies = steps.configured_strategies(ws.config)
    if champion is None and steps.needs_defender(strategies):
        if champion_version is None:
            champion_version = ws.registry.version_for(CHAMPION)
        if champion_version is None:
            raise ValueError("the adaptive strategy attacks the champion, and the registry has none")
        champion = steps.load_model(ws, int(champion_version))
    return steps.arm(strategies, champion), champion


def read_report(payload: Mapping[str, Any]) -> Any:
    """An :class:`~content_arena.evaluation.EvaluationReport` back from an evaluate step's JSON."""
    return steps.report_from_dict(payload)


# -- stages ---------------------------------------------------------------------------------------


def champion(config: str | None, overrides: str | None, out: str | os.PathLike[str]) -> dict[str, Any]:
    """The registered champion (trained and registered first when there is none), written to ``out``."""
    cfg = _configure(config, overrides)
    with _workspace(cfg) as ws:
        result = steps.ensure_champion(ws, steps.load_splits(cfg)).to_dict()
    write_json(out, result)
    return result


def attack(config: str | None, overrides: str | None, champion_version: int, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Attack the champion with the toxic training texts (resuming its unfinished battle); summary to ``out``."""
    cfg = _configure(config, overrides)
    with _workspace(cfg) as ws:
        defender = steps.load_model(ws, int(champion_version))
        strategies, _ = _armed(ws, champion_version, defender)
        battle = steps.run_battle(ws, defender, strategies, steps.load_splits(cfg).seeds, int(champion_version))
    result = {**battle.to_dict(), "champion_version": champion_version}
    write_json(out, result)
    return result


def evaluate(
    config: str | None,
    overrides: str | None,
    model: str,
    out: str | os.PathLike[str],
    *,
    version: int | None = None,
    role: str = "champion",
    champion_version: int | None = None,
) -> dict[str, Any]:
    """Clean and per-strategy metrics of ``model`` (a directory or ``models:/`` URI) on the held-out sets.

    The held-out adversarial set is rebuilt from the config with the loop's evaluation seed, its
    ``adaptive`` variants searched against the champion (``model`` itself for the champion;
    ``champion_version``, or the registry's champion, for a challenger), so both are measured on
    the same texts. For the champion the F1 recorded earlier (the gate's reference) is read before
    this run's metrics are recorded, as the loop does.
    """
    if role not in steps.evaluate.ROLES:
        raise ValueError(f"role must be champion or challenger, got {role!r}")
    cfg = _configure(config, overrides)
    with _workspace(cfg) as ws:
        defender = steps.load_model(ws, model)
        strategies, champion_model = _armed(ws, champion_version, defender if role == "champion" else None)
        adversarial = steps.adversarial_set(steps.load_splits(cfg).test, strategies, champion_model)
        evaluation = steps.evaluate_model(ws, defender, adversarial, version=version, role=role)
    result = {"model": model, **evaluation.to_dict()}
    write_json(out, result)
    return result


def gate(config: str | None, overrides: str | None, champion_report: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """The quality gate on the champion's evaluation: PASS, or FAIL with every reason."""
    cfg = _configure(config, overrides)
    evaluation = steps.Evaluation.from_dict(read_json(champion_report))
    with _workspace(cfg) as ws:
        decision = steps.judge_champion(ws, evaluation)
    result = {**decision.to_dict(), "champion_version": evaluation.version}
    write_json(out, result)
    return result


def collect(config: str | None, overrides: str | None, battle: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """The battle's evasions, unique by normalised text, stored as training data and written as JSONL."""
    cfg = _configure(config, overrides)
    battle_id = read_json(battle)["battle_id"]
    with _workspace(cfg) as ws:
        collected = steps.collect_evasions(ws, battle_id)
    count = write_jsonl(out, (dataclasses.asdict(f) for f in collected.failures))
    return {"battle_id": battle_id, "failures": count, "inserted": collected.inserted, "duplicates": collected.duplicates}


def augment(config: str | None, overrides: str | None, failures: str | os.PathLike[str], battle: str | os.PathLike[str],
            out: str | os.PathLike[str]) -> dict[str, Any]:
    """The challenger's training set: augmented failures plus replayed original examples, as JSONL.

    With no failures to learn from it is the training set itself, as in the loop.
    """
    from content_arena.sample_collector import Failure

    cfg = _configure(config, overrides)
    summary = read_json(battle)
    found = [Failure(**row) for row in read_jsonl(failures)]
    with _workspace(cfg) as ws:
        strategies, _ = _armed(ws, summary.get("champion_version"))
        made = steps.training_set(ws, found, steps.load_splits(cfg), strategies, summary["battle_id"])
    count = write_jsonl(out, (dataclasses.asdict(e) for e in made.examples))
    return {"examples": count, "toxic": made.n_toxic, "clean": made.n_clean, "battle_id": summary["battle_id"],
            "from_failures": made.from_failures}


def train(
    config: str | None,
    overrides: str | None,
    champion_version: int,
    examples: str | os.PathLike[str],
    model_dir: str | os.PathLike[str],
    *,
    battle_id: str | None = None,
) -> dict[str, Any]:
    """LoRA / QLoRA challenger from the champion's weights, saved to ``model_dir`` and registered.

    The challenger gets the ``challenger`` alias and status; its best epoch is the one that scores
    best on the validation texts plus attacked copies of them.
    """
    from content_arena.data import Example
    from content_arena.defender import resolve_model_dir

    cfg = _configure(config, overrides)
    rows = [Example(**row) for row in read_jsonl(examples)]
    if not rows:
        raise ValueError(f"{examples}: no training examples")
    with _workspace(cfg) as ws:
        strategies, _ = _armed(ws, champion_version)
        champion_dir = resolve_model_dir(ws.registry.uri(int(champion_version)), cfg)
        trained = steps.fit_challenger(ws, champion_dir, rows, steps.load_splits(cfg), strategies, Path(model_dir),
                                       battle_id=battle_id)
    result = trained.result
    return {
        "version": trained.version,
        "uri": trained.uri,
        "champion_version": int(champion_version),
        "mode": result.mode,
        "n_train": result.n_train,
        "best_epoch": result.best_epoch,
        "val_metrics": result.val_metrics,
        "seconds": round(result.seconds, 2),
    }


def compare(config: str | None, overrides: str | None, champion_report: str | os.PathLike[str],
            challenger_report: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Champion vs challenger on the same sets: should the challenger be promoted, and why."""
    cfg = _configure(config, overrides)
    before = steps.Evaluation.from_dict(read_json(champion_report))
    after = steps.Evaluation.from_dict(read_json(challenger_report))
    with _workspace(cfg) as ws:
        comparison = steps.compare_models(ws, before, after)
    result = {**comparison.to_dict(), "champion_version": before.version, "challenger_version": after.version}
    write_json(out, result)
    return result


def promote(config: str | None, overrides: str | None, comparison: str | os.PathLike[str]) -> dict[str, Any]:
    """Move the ``champion`` alias to the challenger, or mark the challenger rejected."""
    cfg = _configure(config, overrides)
    decision = read_json(comparison)
    challenger_version = int(decision["challenger_version"])
    champion_version = decision.get("champion_version")
    champion_version = int(champion_version) if champion_version is not None else None
    with _workspace(cfg) as ws:
        promoted = steps.apply_decision(ws, bool(decision["promote"]), challenger_version=challenger_version,
                                        champion_version=champion_version)
    return {
        "promoted": promoted,
        "champion_version": challenger_version if promoted else champion_version,
        "challenger_version": challenger_version,
        "previous_version": champion_version,
    }


# -- rollout --------------------------------------------------------------------------------------


def rollout(
    config: str | None,
    overrides: str | None,
    version: int,
    *,
    previous_version: int | None = None,
    canary_percent: int | None = None,
    dry_run: bool = False,
    publish: bool = True,
    pvc_root: str | os.PathLike[str] | None = None,
    api_client: Any = None,
    sleep: Any = None,
    out: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Canary rollout of registered ``version`` (see :func:`content_arena.steps.rollout.roll_out`); result to ``out``."""
    cfg = load_stage_config(config, overrides)  # no model work: torch's threads stay as they are
    result = steps.roll_out(cfg, version, previous_version=previous_version, canary_percent=canary_percent,
                            dry_run=dry_run, publish=publish, pvc_root=pvc_root, api_client=api_client, sleep=sleep)
    if out is not None:
        write_json(out, result)
    return result
