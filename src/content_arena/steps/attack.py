"""attack: a battle of adversarial rounds against the champion."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from content_arena.attack_runner import AttackRunner, BattleSummary
from content_arena.attacks import Strategy
from content_arena.data import Example
from content_arena.defender import Defender
from content_arena.steps.workspace import Workspace

log = logging.getLogger(__name__)


def run_battle(
    ws: Workspace,
    champion: Defender,
    strategies: Sequence[Strategy],
    seeds: Sequence[Example],
    champion_version: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> BattleSummary:
    """Attack the toxic seeds; resumes this model's unfinished battle with the same plan if there is one.

    Args:
        ws: The workspace.
        champion: The defender under attack.
        strategies: The strategies, ``adaptive`` bound to ``champion`` (see :func:`~content_arena.steps.champion.arm`).
        seeds: The toxic texts to attack.
        champion_version: The champion's registry version (recorded on the battle).
        on_progress: Called with (rounds done, rounds planned).

    Returns:
        The battle's summary: id, rounds, evasions per strategy.
    """
    cfg = ws.config
    runner = AttackRunner(
        champion, ws.store, strategies, batch_size=cfg.attack.batch_size, seed=cfg.attack.seed, on_progress=on_progress,
        max_text_length=cfg.attack.max_text_length,
    )
    names = [s.name for s in strategies]
    battle_id = None
    for battle in ws.store.list_battles(limit=20):
        if (
            battle.status in ("pending", "running", "failed")
            and battle.model_version == str(champion_version)
            and list(battle.strategies) == names
            and battle.rounds_planned == cfg.attack.rounds
            and battle.source == "pipeline"
        ):
            battle_id = battle.id
            log.info("resuming unfinished battle %s", battle_id)
            break
    if battle_id is None:
        battle_id = runner.start(seeds, cfg.attack.rounds, model_version=str(champion_version), source="pipeline")
    return runner.run(battle_id, seeds)
