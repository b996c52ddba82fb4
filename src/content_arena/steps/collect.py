"""collect: the battle's evasions, unique by normalised text, stored as training data."""

from __future__ import annotations

import logging

from content_arena.sample_collector import CollectionResult, collect_failures
from content_arena.steps.workspace import Workspace

log = logging.getLogger(__name__)


def collect_evasions(ws: Workspace, battle_id: str) -> CollectionResult:
    """Every evaded round of a battle, once per normalised text.

    Args:
        ws: The workspace.
        battle_id: The battle.

    Returns:
        The failures, and how many were new or duplicates.
    """
    collected = collect_failures(ws.store, battle_id)
    log.info("collected %d failures (%d duplicates)", len(collected.failures), collected.duplicates)
    return collected
