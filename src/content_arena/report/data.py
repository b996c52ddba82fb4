"""What the robustness report shows, read from the user's own store and MLflow registry.

- one :class:`VersionInfo` per registered model version: aliases, status (model_metadata), and the
  metrics the loop recorded on the held-out adversarial set (clean_f1, evasion_rate.<strategy>, …);
- the pipeline history: each ``evaluate-champion`` MLflow run is one pass of the loop (its ``gate`` tag),
  matched with the battle it evaluated and the ``evaluate-challenger`` run that followed it, if any;
- for each pair of versions N, N+1: the rounds that evaded version N in its battles and that version
  N+1 classifies as toxic (each version's defender loaded once, the texts scored in one batch);
- the champion's calibration on the loop's held-out clean texts: its policy threshold, the expected
  calibration error of its scores and the reliability curve.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from content_arena.config import ArenaConfig
from content_arena.store import BattleRecord, Store

log = logging.getLogger(__name__)

MAX_EVADED_PER_VERSION = 5000
EXAMPLES_PER_STRATEGY = 3
MAX_EXAMPLES = 18


@dataclass
class VersionInfo:
    version: int
    aliases: tuple[str, ...] = ()
    status: str | None = None
    mode: str | None = None
    created_at: datetime | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def metric(self, key: str) -> float | None:
        value = self.metrics.get(key)
        return float(value) if isinstance(value, (int, float)) else None


@dataclass
class HistoryEntry:
    """One pass of the loop: the champion it evaluated, the gate, and what happened to the challenger."""

    started_at: datetime | None
    champion_version: int | None
    gate: str | None
    battle_id: str | None = None
    battle_rounds: int | None = None
    battle_evasion: float | None = None
    challenger_version: int | None = None
    decision: str | None = None  # "promoted", "rejected" or None (no challenger)
    challenger_status: str | None = None


@dataclass
class LearnedExample:
    strategy: str
    original: str
    attacked: str
    score_before: float
    score_after: float


@dataclass
class Learned:
    """Evasions of version ``before`` (in its battles) that version ``after`` flags."""

    before: int
    after: int
    battles: list[str]
    evaded: int
    caught: int
    per_strategy: dict[str, tuple[int, int]] = field(default_factory=dict)  # strategy → (evaded, caught)
    examples: list[LearnedExample] = field(default_factory=list)
    error: str | None = None


@dataclass
class Calibration:
    """The champion's scores on the held-out clean texts: how well they read as probabilities."""

    version: int
    n: int
    threshold: float
    operating_point: dict[str, Any] | None
    calibration: str
    ece: float
    recall: float
    fpr: float
    bins: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass
class ReportData:
    model_name: str
    generated_at: datetime
    store_location: str
    tracking_uri: str
    versions: list[VersionInfo]
    strategies: list[str]
    history: list[HistoryEntry]
    battles: list[BattleRecord]
    learned: list[Learned]
    gate: dict[str, float]
    calibration: Calibration | None = None

    @property
    def champion(self) -> int | None:
        return next((v.version for v in self.versions if "champion" in v.aliases), None)


# -- reading --------------------------------------------------------------------------------------


def all_battles(store: Store, page: int = 500) -> list[BattleRecord]:
    """Every battle, oldest first."""
    out: list[BattleRecord] = []
    while True:
        chunk = store.list_battles(limit=page, offset=len(out))
        out.extend(chunk)
        if len(chunk) < page:
            break
    return sorted(out, key=lambda b: (_aware(b.created_at), b.id))


def read_versions(registry: Any, store: Store) -> list[VersionInfo]:
    """Registered versions, oldest first, merged with their model_metadata rows (only those when
    MLflow cannot be read)."""
    from content_arena.model_registry import RegistryError

    records = {r.version: r for r in store.list_models(registry.model_name)}
    found: dict[int, VersionInfo] = {}
    try:
        registered = registry.versions()
    except RegistryError as exc:
        log.warning("report: cannot read the registry: %s", exc)
        registered = []
    for info in registered:
        found[info.version] = VersionInfo(info.version, tuple(info.aliases), mode=info.tags.get("mode"))
    for version, record in records.items():
        entry = found.setdefault(version, VersionInfo(version))
        entry.status = record.status
        entry.created_at = record.created_at
        entry.metrics = {k: float(v) for k, v in (record.metrics or {}).items() if isinstance(v, (int, float))}
        entry.mode = entry.mode or (record.params or {}).get("mode")
        if not entry.aliases and record.alias:
            entry.aliases = (record.alias,)
    return [found[v] for v in sorted(found)]


def strategies_of(versions: Sequence[VersionInfo], battles: Sequence[BattleRecord]) -> list[str]:
    """Strategy names in the order the battles used them, then any others the metrics mention."""
    names: list[str] = []
    for battle in battles:
        names.extend(s for s in battle.strategies if s not in names)
    for info in versions:
        for key in info.metrics:
            if key.startswith("evasion_rate."):
                name = key.split(".", 1)[1]
                if name not in names:
                    names.append(name)
    return names


def mlflow_runs(registry: Any) -> list[Any]:
    """The experiment's runs, oldest first (empty when the experiment does not exist yet)."""
    from mlflow.exceptions import MlflowException

    try:
        experiment = registry.client.get_experiment_by_name(registry.experiment)
        if experiment is None:
            return []
        runs = registry.client.search_runs([experiment.experiment_id], max_results=5000,
                                           order_by=["attributes.start_time ASC"])
    except MlflowException as exc:
        log.warning("report: cannot read MLflow runs: %s", exc)
        return []
    return sorted(runs, key=lambda r: r.info.start_time or 0)


def pipeline_history(runs: Sequence[Any], battles: Sequence[BattleRecord],
                     versions: Sequence[VersionInfo]) -> list[HistoryEntry]:
    """One entry per ``evaluate-champion`` run, with its battle and the challenger's fate."""
    status = {v.version: v.status for v in versions}
    history: list[HistoryEntry] = []
    current: HistoryEntry | None = None
    for run in runs:
        tags = run.data.tags or {}
        name = run.info.run_name or tags.get("mlflow.runName", "")
        version = _int(tags.get("model_version"))
        started = _from_ms(run.info.start_time)
        if name == "evaluate-champion":
            current = HistoryEntry(started, version, tags.get("gate"))
            battle = _battle_before(battles, version, started)
            if battle is not None:
                current.battle_id = battle.id
                current.battle_rounds = battle.rounds_completed
                current.battle_evasion = battle.evasion_rate
            history.append(current)
        elif name == "evaluate-challenger" and current is not None and current.challenger_version is None:
            current.challenger_version = version
            promote = tags.get("promote")
            current.decision = "promoted" if promote == "True" else "rejected" if promote == "False" else None
            current.challenger_status = status.get(version) if version is not None else None
    return history


def _battle_before(battles: Sequence[BattleRecord], version: int | None, moment: datetime | None) -> BattleRecord | None:
    """The latest pipeline battle on ``version`` created before ``moment``."""
    chosen = None
    for battle in battles:
        if battle.source != "pipeline" or battle.model_version != str(version):
            continue
        if moment is not None and _aware(battle.created_at) > moment:
            continue
        chosen = battle
    return chosen


# -- what each version learned --------------------------------------------------------------------


def learned_examples(cfg: ArenaConfig, registry: Any, store: Store, versions: Sequence[VersionInfo],
                     battles: Sequence[BattleRecord]) -> list[Learned]:
    """For each version N with battles and a version N+1: N's evasions that N+1 flags."""
    from content_arena.defender import load_defender

    known = {v.version for v in versions}
    out: list[Learned] = []
    for info in versions:
        after = info.version + 1
        ids = [b.id for b in battles if b.model_version == str(info.version)]
        if after not in known or not ids:
            continue
        rounds = _evaded_rounds(store, ids)
        entry = Learned(info.version, after, ids, evaded=len(rounds), caught=0)
        out.append(entry)
        if not rounds:
            continue
        try:
            defender = load_defender(registry.uri(after), cfg)
            scores = defender.scores([r.attacked_text for r in rounds])
        except Exception as exc:  # a version whose artifacts are gone must not break the report
            entry.error = f"could not score with v{after}: {type(exc).__name__}: {exc}"
            log.warning("report: %s", entry.error)
            continue
        caught = scores >= defender.threshold
        entry.caught = int(caught.sum())
        for r, hit in zip(rounds, caught.tolist(), strict=True):
            evaded, got = entry.per_strategy.get(r.strategy, (0, 0))
            entry.per_strategy[r.strategy] = (evaded + 1, got + int(hit))
        entry.examples = _pick_examples(rounds, scores.tolist(), caught.tolist())
    return out


def _evaded_rounds(store: Store, battle_ids: Sequence[str]) -> list[Any]:
    """Evaded rounds of these battles, one per distinct attacked text."""
    seen: set[str] = set()
    rounds = []
    for battle_id in battle_ids:
        for r in store.list_rounds(battle_id, limit=MAX_EVADED_PER_VERSION, evaded=True):
            if r.attacked_text not in seen:
                seen.add(r.attacked_text)
                rounds.append(r)
    return rounds[:MAX_EVADED_PER_VERSION]


def _pick_examples(rounds: Sequence[Any], scores: Sequence[float], caught: Sequence[bool]) -> list[LearnedExample]:
    """A few caught evasions per strategy, the most confidently caught first."""
    by_strategy: dict[str, list[LearnedExample]] = {}
    for r, score, hit in zip(rounds, scores, caught, strict=True):
        if hit:
            by_strategy.setdefault(r.strategy, []).append(
                LearnedExample(r.strategy, r.original_text, r.attacked_text, float(r.toxic_score), float(score))
            )
    picked: list[LearnedExample] = []
    for name in sorted(by_strategy):
        ranked = sorted(by_strategy[name], key=lambda e: e.score_after - e.score_before, reverse=True)
        picked.extend(ranked[:EXAMPLES_PER_STRATEGY])
    return picked[:MAX_EXAMPLES]


def champion_calibration(cfg: ArenaConfig, registry: Any, champion: int | None) -> Calibration | None:
    """The champion scored on the loop's held-out clean texts: ECE, reliability bins, figures at its threshold.
    None without a champion; an entry with ``error`` set when it cannot be scored."""
    from content_arena.defender import load_defender
    from content_arena.metrics import binary_metrics, reliability_bins
    from content_arena.orchestrator import load_splits

    if champion is None:
        return None
    try:
        test = load_splits(cfg).test
        defender = load_defender(registry.uri(champion), cfg)
        labels = [e.label for e in test]
        scores = defender.scores([e.text for e in test])
    except Exception as exc:  # a champion whose artifacts or data are gone must not break the report
        log.warning("report: cannot score the champion's calibration: %s", exc)
        return Calibration(champion, 0, 0.0, None, "—", 0.0, 0.0, 0.0, error=f"{type(exc).__name__}: {exc}")
    metrics = binary_metrics(labels, scores, defender.threshold)
    return Calibration(
        version=champion, n=metrics.n, threshold=float(defender.threshold), operating_point=defender.operating_point,
        calibration=defender.calibrator.kind, ece=float(metrics.ece or 0.0), recall=metrics.recall, fpr=metrics.fpr,
        bins=[b.to_dict() for b in reliability_bins(labels, scores)],
    )


# -- all of it ------------------------------------------------------------------------------------


def collect(cfg: ArenaConfig, *, with_examples: bool = True) -> ReportData:
    from content_arena.model_registry import ModelRegistry
    from content_arena.store import open_store

    cfg.home_path.mkdir(parents=True, exist_ok=True)
    store = open_store(cfg.storage_url)
    try:
        registry = ModelRegistry.from_config(cfg)
        versions = read_versions(registry, store)
        battles = all_battles(store)
        history = pipeline_history(mlflow_runs(registry), battles, versions)
        learned = learned_examples(cfg, registry, store, versions, battles) if with_examples else []
        champion = next((v.version for v in versions if "champion" in v.aliases), None)
        calibration = champion_calibration(cfg, registry, champion) if with_examples else None
        return ReportData(
            model_name=registry.model_name,
            generated_at=datetime.now(timezone.utc),
            store_location=store.location,
            tracking_uri=_hide_password(cfg.tracking_uri),
            versions=versions,
            strategies=strategies_of(versions, battles),
            history=history,
            battles=battles,
            learned=learned,
            gate=cfg.quality_gate.model_dump(),
            calibration=calibration,
        )
    finally:
        store.close()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _from_ms(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc) if ms else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _hide_password(uri: str) -> str:
    return re.sub(r"(//[^/:@]+):[^/@]*@", r"\1:***@", uri)
