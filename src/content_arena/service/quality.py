"""Defender quality over time: F1 and evasion per strategy and model version.

Two sources, both in the store: the held-out evaluation each model version got in the pipeline
(model_metadata.metrics: ``clean_f1``, ``evasion_rate``, ``evasion_rate.<strategy>``) and the battles
played against each version (per-strategy evasion counted from battle_rounds). The report is cached
(``metrics:quality``) for a short TTL so scrapes and dashboards do not recount rounds each time.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Integer, case, func, select

from content_arena.queue import QUALITY_CACHE, QueueBackend
from content_arena.store import Store
from content_arena.store.models import BattleRound

QUALITY_CACHE_TTL_S = 30.0
MAX_BATTLES = 50
STRATEGY_PREFIX = "evasion_rate."


def model_entries(store: Store, model_name: str) -> list[dict[str, Any]]:
    entries = []
    for record in sorted(store.list_models(model_name), key=lambda r: r.version):
        metrics = record.metrics or {}
        entries.append({
            "version": record.version,
            "status": record.status,
            "alias": record.alias,
            "recorded_at": record.updated_at.isoformat(),
            "f1": metrics.get("clean_f1", metrics.get("val_f1")),
            "evasion_rate": metrics.get("evasion_rate"),
            "per_strategy": {
                key[len(STRATEGY_PREFIX):]: value for key, value in metrics.items() if key.startswith(STRATEGY_PREFIX)
            },
        })
    return entries


def battle_strategy_counts(store: Store, battle_ids: list[str]) -> dict[str, dict[str, tuple[int, int]]]:
    """{battle_id: {strategy: (rounds, evaded)}} counted in the database."""
    if not battle_ids:
        return {}
    rounds = BattleRound.__table__
    query = (
        select(
            rounds.c.battle_id,
            rounds.c.strategy,
            func.count().label("rounds"),
            func.sum(case((rounds.c.evaded.is_(True), 1), else_=0)).cast(Integer).label("evaded"),
        )
        .where(rounds.c.battle_id.in_(battle_ids))
        .group_by(rounds.c.battle_id, rounds.c.strategy)
    )
    out: dict[str, dict[str, tuple[int, int]]] = {}
    with store.engine.connect() as connection:
        for battle_id, strategy, n_rounds, evaded in connection.execute(query):
            out.setdefault(battle_id, {})[strategy] = (int(n_rounds), int(evaded or 0))
    return out


def battle_entries(store: Store) -> list[dict[str, Any]]:
    battles = [b for b in store.list_battles(limit=MAX_BATTLES) if b.rounds_completed > 0]
    counts = battle_strategy_counts(store, [b.id for b in battles])
    entries = []
    for battle in sorted(battles, key=lambda b: b.finished_at or b.updated_at):
        per_strategy = {
            strategy: {"rounds": n, "evaded": evaded, "evasion_rate": evaded / n if n else 0.0}
            for strategy, (n, evaded) in sorted(counts.get(battle.id, {}).items())
        }
        entries.append({
            "battle_id": battle.id,
            "status": battle.status,
            "model_version": battle.model_version,
            "at": (battle.finished_at or battle.updated_at).isoformat(),
            "rounds": battle.rounds_completed,
            "evasion_rate": battle.evasion_rate,
            "per_strategy": per_strategy,
        })
    return entries


def quality_report(store: Store, model_name: str) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(timezone.utc).isoformat(),
        "model_name": model_name,
        "models": model_entries(store, model_name),
        "battles": battle_entries(store),
    }


def cached_quality_report(store: Store, backend: QueueBackend, model_name: str) -> dict[str, Any]:
    cached = backend.cache_get(QUALITY_CACHE)
    if cached is not None and cached.get("model_name") == model_name:
        return cached
    report = quality_report(store, model_name)
    backend.cache_set(QUALITY_CACHE, report, QUALITY_CACHE_TTL_S)
    return report


def invalidate_quality_report(backend: QueueBackend) -> None:
    backend.cache_delete(QUALITY_CACHE)
