"""The adversarial loop as separate stages on plain parameters and files: what pipeline steps run.

Each function is one step of the loop (champion, attack, evaluate, gate, collect, augment, train,
compare, promote, rollout). It takes a configuration (``config``: a path to ``arena.yaml`` or YAML
text; ``overrides``: YAML merged over it), model versions or URIs, and the paths of the JSON /
JSONL files it reads and writes; it returns a small JSON-able dict. State that outlives a step —
battles, training samples, registered models and their aliases — lives in the configured store and
MLflow registry, exactly as when :func:`content_arena.orchestrator.run_pipeline` runs the loop in
one process: both call the same library functions.

The Kubeflow components in ``components/`` are thin wrappers over these functions; the ``arena``
CLI calls them too. Nothing here imports Kubernetes, Kubeflow or KServe at module level.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from content_arena.config import ArenaConfig, ConfigError, load_config

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


@contextmanager
def _workspace(cfg: ArenaConfig) -> Iterator[Any]:
    from content_arena.orchestrator import Workspace

    ws = Workspace.open(cfg)
    try:
        yield ws
    finally:
        ws.store.close()


def _splits(cfg: ArenaConfig) -> dict[str, list[Any]]:
    """The same deterministic splits the in-process loop uses, recomputed from the config."""
    from content_arena.orchestrator import load_splits

    splits = load_splits(cfg)
    return {"train": splits.train, "test": splits.test, "fit": splits.fit, "val": splits.val, "seeds": splits.seeds}


def _strategies(cfg: ArenaConfig) -> list[Any]:
    from content_arena.attacks import resolve_strategies

    return resolve_strategies(cfg.attack.strategies, llm=cfg.llm_options())


def _report_metrics(report: Any) -> dict[str, float]:
    from content_arena.orchestrator import report_metrics as flatten

    return flatten(report)


def read_report(payload: Mapping[str, Any]) -> Any:
    """An :class:`~content_arena.evaluation.EvaluationReport` back from an evaluate step's JSON."""
    from content_arena.evaluation import EvaluationReport, StrategyResult
    from content_arena.metrics import BinaryMetrics

    data = payload["report"]
    clean = BinaryMetrics(**{f.name: data[f.name] for f in dataclasses.fields(BinaryMetrics)})
    attacks = {name: StrategyResult(**values) for name, values in data["attacks"].items()}
    return EvaluationReport(clean=clean, attacks=attacks, threshold=float(payload.get("threshold", 0.5)))


# -- stages ---------------------------------------------------------------------------------------


def champion(config: str | None, overrides: str | None, out: str | os.PathLike[str]) -> dict[str, Any]:
    """The registered champion (trained and registered first when there is none), written to ``out``."""
    from content_arena.orchestrator import ensure_champion

    cfg = load_stage_config(config, overrides)
    splits = _splits(cfg)
    with _workspace(cfg) as ws:
        version, bootstrapped = ensure_champion(ws, splits["fit"], splits["val"])
        result = {"version": version, "uri": ws.registry.uri(version), "bootstrapped": bootstrapped}
    write_json(out, result)
    return result


def attack(config: str | None, overrides: str | None, champion_version: int, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Attack the champion with the toxic training texts (resuming its unfinished battle); summary to ``out``."""
    from content_arena.defender import load_defender
    from content_arena.orchestrator import run_battle

    cfg = load_stage_config(config, overrides)
    splits = _splits(cfg)
    with _workspace(cfg) as ws:
        defender = load_defender(ws.registry.uri(champion_version), cfg)
        defender.version = str(champion_version)
        battle = run_battle(ws, defender, _strategies(cfg), splits["seeds"], champion_version)
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
) -> dict[str, Any]:
    """Clean and per-strategy metrics of ``model`` (a directory or ``models:/`` URI) on the held-out sets.

    The held-out adversarial set is rebuilt from the config with the loop's evaluation seed, so the
    champion and the challenger are measured on the same texts. For the champion the F1 recorded
    earlier (the gate's reference) is read before this run's metrics are recorded, as the loop does.
    """
    from content_arena.defender import load_defender
    from content_arena.evaluation import AdversarialSet
    from content_arena.evaluation import evaluate as run_evaluation
    from content_arena.orchestrator import EVAL_ATTACK_SEED, champion_reference_f1, record_metrics

    if role not in ("champion", "challenger"):
        raise ValueError(f"role must be champion or challenger, got {role!r}")
    cfg = load_stage_config(config, overrides)
    splits = _splits(cfg)
    with _workspace(cfg) as ws:
        defender = load_defender(model, cfg)
        adversarial = AdversarialSet.build(splits["test"], _strategies(cfg), seed=EVAL_ATTACK_SEED)
        report = run_evaluation(defender, adversarial)
        metrics = _report_metrics(report)
        reference = None
        if version is not None:
            if role == "champion":
                reference = champion_reference_f1(ws, version)
                if reference is None:
                    record_metrics(ws, version, metrics)
            else:
                record_metrics(ws, version, metrics)
    labels = adversarial.labels
    positives = int(labels.sum())
    negatives = int(len(labels) - positives)
    tp = round(report.clean.recall * positives)
    fp = round(report.clean.fpr * negatives)
    result = {
        "model": model,
        "version": version,
        "role": role,
        "threshold": report.threshold,
        "reference_f1": reference,
        "summary": report.summary(),
        "metrics": metrics,
        "report": report.to_dict(),
        # rows: true label clean/toxic; columns: predicted clean/toxic (clean held-out set)
        "confusion_matrix": {"labels": ["clean", "toxic"], "matrix": [[negatives - fp, fp], [positives - tp, tp]]},
    }
    write_json(out, result)
    return result


def gate(config: str | None, overrides: str | None, champion_report: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """The quality gate on the champion's evaluation: PASS, or FAIL with every reason."""
    from content_arena.quality_gate import check_quality

    cfg = load_stage_config(config, overrides)
    payload = read_json(champion_report)
    result_gate = check_quality(read_report(payload), cfg.quality_gate, reference_f1=payload.get("reference_f1"))
    log.info("quality gate: %s %s", result_gate.decision.value, "; ".join(result_gate.reasons))
    with _workspace(cfg) as ws:
        tags = {"stage": "evaluate", "model_version": payload.get("version")}
        with ws.registry.run("evaluate-champion", tags=tags) as run:
            run.log_metrics(payload["metrics"])
            run.set_tags({"gate": result_gate.decision.value})
    result = {**result_gate.to_dict(), "champion_version": payload.get("version")}
    write_json(out, result)
    return result


def collect(config: str | None, overrides: str | None, battle: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """The battle's evasions, unique by normalised text, stored as training data and written as JSONL."""
    from content_arena.sample_collector import collect_failures

    cfg = load_stage_config(config, overrides)
    battle_id = read_json(battle)["battle_id"]
    with _workspace(cfg) as ws:
        collected = collect_failures(ws.store, battle_id)
    count = write_jsonl(out, (dataclasses.asdict(f) for f in collected.failures))
    result = {"battle_id": battle_id, "failures": count, "inserted": collected.inserted, "duplicates": collected.duplicates}
    log.info("collected %d failures (%d duplicates)", count, collected.duplicates)
    return result


def augment(config: str | None, overrides: str | None, failures: str | os.PathLike[str], battle: str | os.PathLike[str],
            out: str | os.PathLike[str]) -> dict[str, Any]:
    """The challenger's training set: augmented failures plus replayed original examples, as JSONL."""
    from content_arena.data_augmentor import augment as expand
    from content_arena.data_augmentor import with_replay
    from content_arena.sample_collector import Failure, text_hash

    cfg = load_stage_config(config, overrides)
    splits = _splits(cfg)
    battle_id = read_json(battle)["battle_id"]
    found = [Failure(**row) for row in read_jsonl(failures)]
    augmented = expand(found, splits["fit"], _strategies(cfg), cfg.augment, toxic_pool=splits["seeds"], seed=cfg.attack.seed)
    examples = with_replay(augmented.examples, splits["fit"], cfg.augment.replay_ratio, seed=cfg.attack.seed)
    with _workspace(cfg) as ws:
        from content_arena.live_samples import with_reviewed

        examples = with_reviewed(examples, ws.store)  # live texts a person labelled
        ws.store.add_training_samples(
            [
                {"text": e.text, "label": e.label, "source": "augment", "battle_id": battle_id, "text_hash": text_hash(e.text)}
                for e in augmented.examples
                if e.source == "augment"
            ]
        )
    count = write_jsonl(out, (dataclasses.asdict(e) for e in examples))
    return {"examples": count, "toxic": augmented.n_toxic, "clean": augmented.n_clean, "battle_id": battle_id}


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
    from content_arena.orchestrator import register_model, robustness_validation_set
    from content_arena.registry import CHALLENGER
    from content_arena.training import train_challenger

    cfg = load_stage_config(config, overrides)
    splits = _splits(cfg)
    rows = [Example(**row) for row in read_jsonl(examples)]
    if not rows:
        raise ValueError(f"{examples}: no training examples (the battle produced no evasions to learn from)")
    with _workspace(cfg) as ws:
        champion_dir = resolve_model_dir(ws.registry.uri(champion_version), cfg)
        with ws.registry.run("challenger", tags={"stage": "train", "battle_id": battle_id or ""}) as run:
            result = train_challenger(
                champion_dir, rows, model_dir, cfg,
                val_examples=robustness_validation_set(splits["val"], _strategies(cfg)), tracker=run,
            )
            version = register_model(ws, result, run, status="challenger", alias=CHALLENGER)
            ws.registry.set_alias(CHALLENGER, version)
        uri = ws.registry.uri(version)
    return {
        "version": version,
        "uri": uri,
        "mode": result.mode,
        "n_train": result.n_train,
        "best_epoch": result.best_epoch,
        "val_metrics": result.val_metrics,
        "seconds": round(result.seconds, 2),
    }


def compare(config: str | None, overrides: str | None, champion_report: str | os.PathLike[str],
            challenger_report: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Champion vs challenger on the same sets: should the challenger be promoted, and why."""
    from content_arena.model_promoter import compare as decide

    cfg = load_stage_config(config, overrides)
    before, after = read_json(champion_report), read_json(challenger_report)
    comparison = decide(read_report(before), read_report(after), cfg.quality_gate)
    with _workspace(cfg) as ws:
        tags = {"stage": "compare", "model_version": after.get("version")}
        with ws.registry.run("evaluate-challenger", tags=tags) as run:
            run.log_metrics(after["metrics"])
            run.set_tags({"promote": comparison.promote})
    result = {**comparison.to_dict(), "champion_version": before.get("version"), "challenger_version": after.get("version")}
    write_json(out, result)
    return result


def promote(config: str | None, overrides: str | None, comparison: str | os.PathLike[str]) -> dict[str, Any]:
    """Move the ``champion`` alias to the challenger, or mark the challenger rejected."""
    from content_arena.model_promoter import promote as make_champion
    from content_arena.model_promoter import reject

    cfg = load_stage_config(config, overrides)
    decision = read_json(comparison)
    challenger_version = int(decision["challenger_version"])
    champion_version = decision.get("champion_version")
    champion_version = int(champion_version) if champion_version is not None else None
    with _workspace(cfg) as ws:
        if decision["promote"]:
            make_champion(ws.registry, ws.store, challenger_version=challenger_version, champion_version=champion_version)
        else:
            reject(ws.registry, ws.store, challenger_version=challenger_version)
    promoted = bool(decision["promote"])
    return {
        "promoted": promoted,
        "champion_version": challenger_version if promoted else champion_version,
        "challenger_version": challenger_version,
        "previous_version": champion_version,
    }


# -- rollout --------------------------------------------------------------------------------------


def storage_uri_for(cfg: ArenaConfig, version: int) -> str:
    """Where a published version lives for KServe: ``<serving.storage_uri_prefix>/v<version>``."""
    return f"{cfg.serving.storage_uri_prefix.rstrip('/')}/v{int(version)}"


def publish_model(cfg: ArenaConfig, version: int, *, pvc_root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Copy a registered version to the storage KServe's storage-initializer reads.

    ``pvc://<claim>/<path>`` prefixes are written through the claim mounted at
    ``<pvc_root>/<claim>`` (the pipeline's rollout step mounts it); other URIs (``s3://``, ``gs://``,
    ``file://``...) through MLflow's artifact repositories. Already published versions are kept.
    """
    from content_arena.defender import resolve_model_dir
    from content_arena.defender.artifacts import verify_model_dir

    uri = storage_uri_for(cfg, version)
    registered = f"models:/{cfg.mlflow.model_name}/{int(version)}"
    if uri.startswith("pvc://"):
        if pvc_root is None:
            raise ValueError(f"{uri} is on a PersistentVolumeClaim: give the directory where claims are mounted (pvc_root)")
        claim, _, sub_path = uri[len("pvc://") :].partition("/")
        mount = Path(pvc_root) / claim
        if not mount.is_dir():
            raise FileNotFoundError(f"claim {claim!r} is not mounted at {mount}")
        target = mount / sub_path
        if target.is_dir():
            verify_model_dir(target)
            return {"storage_uri": uri, "path": str(target), "copied": False}
        local = resolve_model_dir(registered, cfg)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            for item in local.iterdir():
                if item.is_file():
                    shutil.copy2(item, staging / item.name)
            verify_model_dir(staging)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return {"storage_uri": uri, "path": str(target), "copied": True}
    local = resolve_model_dir(registered, cfg)
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    get_artifact_repository(uri).log_artifacts(str(local))
    return {"storage_uri": uri, "path": None, "copied": True}


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
    """Canary rollout of registered ``version`` to the defender InferenceService, judged on live metrics.

    Publishes the version to ``<serving.storage_uri_prefix>/v<version>``, patches the
    InferenceService to it with ``canaryTrafficPercent`` (``serving.canary_traffic_percent`` unless
    ``canary_percent``), waits for the canary revision, judges it on Prometheus, then promotes or
    rolls back (see :mod:`content_arena.rollout`). The registry follows the outcome: promoted, the
    version is champion; rolled back, the ``champion`` alias returns to ``previous_version`` (given,
    or read from the storage URI the service served) and the version is marked rejected.
    ``dry_run`` contacts nothing and returns the patch that would be sent.
    """
    from content_arena import rollout as canary

    cfg = load_stage_config(config, overrides)
    percent = int(canary_percent if canary_percent is not None else cfg.serving.canary_traffic_percent)
    if not 0 < percent < 100:
        raise ValueError(f"canary percent must be between 1 and 99, got {percent}")
    uri = storage_uri_for(cfg, version)
    if dry_run:
        result = {
            "outcome": "dry_run",
            "version": int(version),
            "storage_uri": uri,
            "namespace": cfg.serving.namespace,
            "inference_service": cfg.serving.inference_service,
            "canary_traffic_percent": percent,
            "patch": canary.canary_patch(None, uri, percent),
        }
        if out is not None:
            write_json(out, result)
        return result
    published = publish_model(cfg, version, pvc_root=pvc_root) if publish else None
    api = canary.custom_objects_api(api_client)
    prometheus = canary.PrometheusClient(cfg.serving.prometheus_url) if cfg.serving.prometheus_url else None
    judge = canary.CanaryJudge(
        prometheus,
        namespace=cfg.serving.namespace,
        max_error_rate=cfg.serving.max_canary_error_rate,
        max_toxic_rate_drift=cfg.serving.max_toxic_rate_drift,
        window_s=cfg.serving.canary_observation_s,
    )
    runner = canary.CanaryRollout(
        api,
        judge,
        namespace=cfg.serving.namespace,
        name=cfg.serving.inference_service,
        canary_percent=percent,
        ready_timeout_s=cfg.serving.ready_timeout_s,
        observation_s=cfg.serving.canary_observation_s,
        **({"sleep": sleep} if sleep is not None else {}),
        alert_check=canary.prometheus_alert_check(prometheus) if prometheus is not None else None,
    )
    outcome = runner.run(uri)
    if previous_version is None and outcome.previous_storage_uri:
        previous_version = canary.version_from_storage_uri(cfg.serving.storage_uri_prefix, outcome.previous_storage_uri)
    registry_changes = _follow_outcome(cfg, int(version), previous_version, outcome.promoted)
    result = {**outcome.to_dict(), "version": int(version), "previous_version": previous_version,
              "published": published, "registry": registry_changes}
    if out is not None:
        write_json(out, result)
    return result


def _follow_outcome(cfg: ArenaConfig, version: int, previous_version: int | None, promoted: bool) -> dict[str, Any]:
    """Aliases and statuses after a rollout: the served model and the ``champion`` alias agree."""
    from content_arena.model_promoter import promote as make_champion
    from content_arena.registry import CHAMPION

    with _workspace(cfg) as ws:
        name = ws.registry.model_name
        if promoted:
            if ws.registry.version_for(CHAMPION) != version:
                make_champion(ws.registry, ws.store, challenger_version=version, champion_version=previous_version)
            return {"champion": version}
        ws.registry.set_version_tag(version, "rollout", "rolled_back")
        if previous_version is None:
            message = (f"the service is back on its previous model, but which registered version that is is unknown: "
                       f"the registry is unchanged (champion v{ws.registry.version_for(CHAMPION)}); pass previous_version")
            log.warning(message)
            return {"champion": ws.registry.version_for(CHAMPION), "warning": message}
        ws.store.set_model_status(name, version, "rejected", clear_alias=True)
        ws.registry.set_alias(CHAMPION, previous_version)
        ws.store.set_model_status(name, previous_version, "champion", alias=CHAMPION)
        return {"champion": previous_version, "rejected": version}
