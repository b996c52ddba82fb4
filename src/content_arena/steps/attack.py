"""attack: a battle of adversarial rounds against the champion.

A finished battle publishes ``battle_completed`` and its detection rate (:func:`publish_battle`,
through :func:`content_arena.monitoring.state_keys`), wherever it ran: the loop, a KFP step, ``arena
battle``. The API's own battles publish on the API's queue (``service.jobs``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from content_arena.attack_runner import AttackRunner, BattleSummary
from content_arena.attacks import Strategy
from content_arena.data import Example
from content_arena.defender import Defender
from content_arena.model_registry import CHAMPION
from content_arena.monitoring import safely, state_keys
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
    summary = runner.run(battle_id, seeds)
    publish_battle(ws, summary, str(champion_version), champion_version=str(champion_version))
    return summary


def publish_battle(ws: Workspace, summary: BattleSummary, model_version: str | None, *,
                   champion_version: str | None = None) -> None:
    """Publish ``battle_completed`` for a finished battle and add its detection rate to
    ``metrics:detection_rate:history`` (and ``:current`` when it attacked the champion). Never raises.

    Args:
        ws: The workspace.
        summary: The battle's summary.
        model_version: The version the battle attacked.
        champion_version: The champion's version; None looks it up in the registry (only when there is a
            backend to publish on).
    """

    def publish() -> None:
        with state_keys(ws.config) as keys:
            if keys is None:
                return
            champion = champion_version
            if champion is None:
                found = ws.registry.version_for(CHAMPION)
                champion = None if found is None else str(found)
            keys.battle_finished(summary.to_dict(), model_version, champion_version=champion)

    safely(publish, "publish battle_completed")
