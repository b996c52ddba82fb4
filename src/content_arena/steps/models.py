"""Registered models: loading one, registering one, recording its metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from content_arena.defender import TransformerDefender, load_defender
from content_arena.evaluation import EvaluationReport
from content_arena.model_registry import RunTracker
from content_arena.steps.workspace import Workspace
from content_arena.training import TrainResult


def load_model(ws: Workspace, location: str | Path | int) -> TransformerDefender:
    """Load a defender once: a registered version, a ``models:/`` URI or a directory.

    Args:
        ws: The workspace (its config sets the batch size and the registry).
        location: A version number, a ``models:/`` URI or a model directory.

    Returns:
        The loaded defender; ``version`` is set when ``location`` is a version number.
    """
    if isinstance(location, int):
        defender = load_defender(ws.registry.uri(location), ws.config)
        defender.version = str(location)
        return defender
    return load_defender(location, ws.config)


def register_model(ws: Workspace, result: TrainResult, run: RunTracker, *, status: str = "registered",
                   alias: str | None = None) -> int:
    """Register a trained model in MLflow and record it in the store.

    Aliases are moved by :mod:`content_arena.steps.aliases` only (MLflow first, the store mirrors
    it); ``alias`` here only labels the store row, for fixtures that build a registry by hand.

    Args:
        ws: The workspace.
        result: The training result (model directory, metrics).
        run: The MLflow run the model was trained in.
        status: The store status of the new version.
        alias: A store-only alias label (see above).

    Returns:
        The new version number.
    """
    from content_arena.defender.artifacts import weights_sha256

    sha = weights_sha256(result.model_dir)
    version = ws.registry.register(result.model_dir, run, tags={"mode": result.mode, "sha256": sha})
    ws.store.upsert_model(
        name=ws.registry.model_name,
        version=version,
        uri=ws.registry.uri(version),
        run_id=run.run_id,
        alias=alias,
        sha256=sha,
        metrics=result.val_metrics,
        params={"mode": result.mode, "n_train": result.n_train, "best_epoch": result.best_epoch},
        status=status,
    )
    return version


def record_metrics(ws: Workspace, version: int, metrics: dict[str, float]) -> None:
    """Merge evaluation metrics into a version's model_metadata row, keeping its other fields.

    Args:
        ws: The workspace.
        version: The registered version.
        metrics: Flat metric names and values (see :func:`report_metrics`).
    """
    name = ws.registry.model_name
    record = ws.store.get_model(name, version)
    if record is None:
        ws.store.upsert_model(name=name, version=version, uri=ws.registry.uri(version), metrics=metrics)
        return
    ws.store.upsert_model(
        name=name, version=version, uri=record.uri, run_id=record.run_id, alias=record.alias, sha256=record.sha256,
        metrics={**(record.metrics or {}), **metrics}, params=record.params, status=record.status,
    )


def reference_f1(ws: Workspace, version: int) -> float | None:
    """The clean F1 first recorded for ``version`` (the gate's reference), or None.

    Args:
        ws: The workspace.
        version: The registered version.

    Returns:
        The recorded ``clean_f1``, or None when none is recorded.
    """
    record = ws.store.get_model(ws.registry.model_name, version)
    if record is None or not record.metrics:
        return None
    value = record.metrics.get("clean_f1")
    return float(value) if value is not None else None


def report_metrics(report: EvaluationReport) -> dict[str, float]:
    """An evaluation report as flat metric names (MLflow, model_metadata, KFP metrics).

    Args:
        report: The evaluation report.

    Returns:
        ``clean_*`` (AUROC, PR-AUC and ECE when known), ``threshold``, ``evasion_rate``, ``attacked_clean_fpr`` and their per-strategy ``name.strategy`` values.
    """
    metrics: dict[str, Any] = {
        "clean_f1": report.clean.f1,
        "clean_precision": report.clean.precision,
        "clean_recall": report.clean.recall,
        "clean_fpr": report.clean.fpr,
        "evasion_rate": report.evasion_rate,
        "attacked_clean_fpr": report.attacked_clean_fpr,
        "threshold": report.threshold,
    }
    for name in ("auroc", "pr_auc", "ece"):
        value = getattr(report.clean, name, None)
        if value is not None:
            metrics[f"clean_{name}"] = value
    for name, result in report.attacks.items():
        metrics[f"evasion_rate.{name}"] = result.evasion_rate
        metrics[f"attacked_clean_fpr.{name}"] = result.attacked_clean_fpr
    return metrics
