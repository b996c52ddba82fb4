"""Battles: attack toxic seed texts with strategies, classify the variants in batches, record rounds.

A battle's rounds follow a fixed plan (round r → strategy r mod S, seed text (r div S) mod N, attack
seed = battle seed + r div (S·N)), so a rerun after a crash or a stop regenerates exactly the rounds
that are missing and skips the ones already written. Each batch is written in one transaction.

Seed texts and variants are cut to ``max_text_length`` characters (``attack.max_text_length``): a
composite can grow a text several times over, and a round must stay cheap to attack, classify and store.

A failed battle's stored ``error`` is one of the fixed strings of :func:`battle_error` (clients read it);
the exception itself goes to the log with the battle id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from content_arena.attacks import Strategy
from content_arena.data import Example
from content_arena.defender import Defender
from content_arena.store import Store

log = logging.getLogger(__name__)

DEFAULT_MAX_TEXT_LENGTH = 5000
ERROR_STORE = "the database was unavailable"
ERROR_QUEUE = "the job queue was unavailable"
ERROR_MODEL = "the model could not be loaded"
ERROR_REGISTRY = "the model registry was unavailable"
ERROR_STRATEGY = "a strategy could not be built"
ERROR_INTERNAL = "internal error (see the server log)"
# Failures caused by an outage, not by the battle: the periodic recovery resumes them.
TRANSIENT_ERRORS = (ERROR_STORE, ERROR_QUEUE)

ProgressCallback = Callable[[int, int], None]


def battle_error(exc: BaseException) -> str:
    """The fixed, client-safe string recorded for a battle that failed with ``exc``.

    Never the exception's text: database errors carry SQL, parameters (seed texts) and the server's
    host, port and name. Callers log the exception itself.

    Args:
        exc: what the battle failed with.

    Returns:
        One of ERROR_STORE, ERROR_QUEUE, ERROR_REGISTRY, ERROR_MODEL, ERROR_STRATEGY, ERROR_INTERNAL.
    """
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

    from content_arena.attacks import StrategyUnavailable, UnknownStrategyError
    from content_arena.store import StoreUnavailable

    if isinstance(exc, (StoreUnavailable, OperationalError, InterfaceError, DisconnectionError)):
        return ERROR_STORE
    if isinstance(exc, (UnknownStrategyError, StrategyUnavailable)):
        return ERROR_STRATEGY
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"QueueUnavailable", "RedisError"}:
        return ERROR_QUEUE
    if "RegistryError" in names:
        return ERROR_REGISTRY
    if names & {"ModelNotFound", "ModelIntegrityError", "DefenderNotReady"}:
        return ERROR_MODEL
    return ERROR_INTERNAL


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


class BattleStopped(RuntimeError):
    """The battle was asked to stop; its written rounds stay."""


@dataclass
class BattleSummary:
    battle_id: str
    status: str
    rounds: int
    evaded: int
    per_strategy: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def evasion_rate(self) -> float:
        return self.evaded / self.rounds if self.rounds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "battle_id": self.battle_id,
            "status": self.status,
            "rounds": self.rounds,
            "evaded": self.evaded,
            "evasion_rate": self.evasion_rate,
            "per_strategy": self.per_strategy,
        }


class AttackRunner:
    def __init__(
        self,
        defender: Defender,
        store: Store,
        strategies: Sequence[Strategy],
        *,
        batch_size: int = 256,
        seed: int = 0,
        should_stop: Callable[[], bool] | None = None,
        on_progress: ProgressCallback | None = None,
        max_text_length: int = DEFAULT_MAX_TEXT_LENGTH,
    ):
        if not strategies:
            raise ValueError("a battle needs at least one strategy")
        self.defender = defender
        self.store = store
        self.strategies = list(strategies)
        self.batch_size = batch_size
        self.seed = seed
        self.should_stop = should_stop
        self.on_progress = on_progress
        if max_text_length < 1:
            raise ValueError("max_text_length must be at least 1")
        self.max_text_length = max_text_length

    def plan(self, round_number: int, n_seeds: int) -> tuple[Strategy, int, int]:
        """(strategy, seed text index, attack seed) of one round."""
        n_strategies = len(self.strategies)
        strategy = self.strategies[round_number % n_strategies]
        text_index = (round_number // n_strategies) % n_seeds
        attack_seed = self.seed + round_number // (n_strategies * n_seeds)
        return strategy, text_index, attack_seed

    def start(self, seeds: Sequence[Example], rounds: int, *, model_version: str | None = None,
              source: str = "seed") -> str:
        return self.store.create_battle(
            strategies=[s.name for s in self.strategies],
            rounds=rounds,
            model_version=model_version,
            seed=self.seed,
            source=source,
            params={"n_seed_texts": len(seeds), "batch_size": self.batch_size},
        )

    def run(self, battle_id: str, seeds: Sequence[Example]) -> BattleSummary:
        """Play the rounds of ``battle_id`` that are not written yet.

        The store's calls wait out a database outage for its ``retry_window_s`` (Store.long_retries).
        """
        long_retries = getattr(self.store, "long_retries", None)
        with long_retries() if long_retries is not None else nullcontext():
            return self._run(battle_id, seeds)

    def _run(self, battle_id: str, seeds: Sequence[Example]) -> BattleSummary:
        battle = self.store.get_battle(battle_id)
        if battle is None:
            raise KeyError(f"no battle {battle_id}")
        if not seeds:
            raise ValueError("a battle needs at least one seed text")
        if battle.status == "completed":
            return self.summarize(battle_id)
        done = self.store.done_round_numbers(battle_id)
        todo = [r for r in range(battle.rounds_planned) if r not in done]
        if done:
            log.info("battle %s: resuming, %d of %d rounds already written", battle_id, len(done), battle.rounds_planned)
        self.store.update_battle(battle_id, status="running", started=not done, error=None)
        try:
            for start in range(0, len(todo), self.batch_size):
                if self.should_stop is not None and self.should_stop():
                    self.store.update_battle(battle_id, status="stopped", finished=True)
                    raise BattleStopped(f"battle {battle_id} stopped after {len(done) + start} rounds")
                self._play(battle_id, todo[start : start + self.batch_size], seeds, battle.model_version)
                if self.on_progress is not None:
                    self.on_progress(len(done) + min(start + self.batch_size, len(todo)), battle.rounds_planned)
        except BattleStopped:
            raise
        except Exception as exc:
            log.error("battle %s failed: %s: %s", battle_id, type(exc).__name__, exc, extra={"battle_id": battle_id})
            try:  # with the short retry window: after a long outage, do not wait a second window
                long_retries = getattr(self.store, "long_retries", None)
                with long_retries(False) if long_retries is not None else nullcontext():
                    self.store.update_battle(battle_id, status="failed", error=battle_error(exc), finished=True)
            except Exception as again:  # e.g. the database is what failed: raise the first error, not this one
                log.warning("battle %s: could not record the failure: %s", battle_id, type(again).__name__)
            raise
        self.store.update_battle(battle_id, status="completed", finished=True)
        return self.summarize(battle_id)

    def _play(self, battle_id: str, round_numbers: list[int], seeds: Sequence[Example], model_version: str | None) -> None:
        planned = [self.plan(r, len(seeds)) for r in round_numbers]
        originals = [_cut(seeds[i].text, self.max_text_length) for _, i, _ in planned]
        # One attack_many call per (strategy, attack seed): rule strategies give exactly what attack()
        # gives, and the adaptive strategy searches all its rounds of the batch in lockstep.
        attacked = list(originals)
        groups: dict[tuple[int, int], list[int]] = {}
        for k, (strategy, _, attack_seed) in enumerate(planned):
            groups.setdefault((id(strategy), attack_seed), []).append(k)
        for members in groups.values():
            strategy, _, attack_seed = planned[members[0]]
            variants = strategy.attack_many([originals[k] for k in members], seed=attack_seed)
            for k, variant in zip(members, variants, strict=True):
                attacked[k] = _cut(variant, self.max_text_length)
        results = self.defender.classify(attacked)
        rows = [
            {
                "round_number": r,
                "strategy": strategy.name,
                "original_text": original,
                "attacked_text": variant,
                "true_label": int(seeds[i].label),
                "toxic_score": res["toxic_score"],
                "predicted_toxic": res["is_toxic"],
                "evaded": bool(seeds[i].label == 1 and not res["is_toxic"]),
            }
            for r, (strategy, i, _), original, variant, res in zip(
                round_numbers, planned, originals, attacked, results, strict=True
            )
        ]
        self.store.add_rounds(battle_id, rows)

    def summarize(self, battle_id: str) -> BattleSummary:
        battle = self.store.get_battle(battle_id)
        if battle is None:
            raise KeyError(f"no battle {battle_id}")
        per: dict[str, dict[str, float]] = {}
        offset = 0
        while True:
            page = self.store.list_rounds(battle_id, limit=5000, offset=offset)
            if not page:
                break
            for row in page:
                entry = per.setdefault(row.strategy, {"rounds": 0, "evaded": 0})
                entry["rounds"] += 1
                entry["evaded"] += int(row.evaded)
            offset += len(page)
        for entry in per.values():
            entry["evasion_rate"] = entry["evaded"] / entry["rounds"] if entry["rounds"] else 0.0
        rounds = sum(int(e["rounds"]) for e in per.values())
        evaded = sum(int(e["evaded"]) for e in per.values())
        return BattleSummary(battle_id, battle.status, rounds, evaded, per)
