"""The one place that moves the ``champion`` and ``challenger`` aliases.

The rule: MLflow's alias is the truth and moves first; the store mirrors it only once MLflow has it.
If MLflow fails, nothing has changed anywhere; the trade-off is that a store write failing after
MLflow moved leaves the store one step behind until the next move, which a rerun repairs.
"""

from __future__ import annotations

import logging

from content_arena import model_promoter
from content_arena.model_registry import CHALLENGER, CHAMPION
from content_arena.steps.workspace import Workspace

log = logging.getLogger(__name__)


def set_champion(ws: Workspace, version: int, previous: int | None = None) -> None:
    """Make ``version`` the champion; ``previous`` (the champion before) is archived.

    Args:
        ws: The workspace.
        version: The new champion.
        previous: The version it replaces, if any.
    """
    model_promoter.promote(ws.registry, ws.store, challenger_version=version, champion_version=previous)


def set_challenger(ws: Workspace, version: int) -> None:
    """Point the ``challenger`` alias at ``version`` and mark it challenger in the store.

    Args:
        ws: The workspace.
        version: The new challenger.
    """
    ws.registry.set_alias(CHALLENGER, version)
    ws.store.set_model_status(ws.registry.model_name, version, "challenger", alias=CHALLENGER)


def reject(ws: Workspace, version: int) -> None:
    """Keep a challenger registered (for inspection) but mark it rejected.

    Args:
        ws: The workspace.
        version: The rejected challenger.
    """
    model_promoter.reject(ws.registry, ws.store, challenger_version=version)


def roll_back(ws: Workspace, version: int, previous: int) -> None:
    """A rolled-back version loses the champion alias to ``previous`` and is marked rejected.

    Args:
        ws: The workspace.
        version: The version the rollout rolled back.
        previous: The version served again.
    """
    name = ws.registry.model_name
    ws.registry.set_alias(CHAMPION, previous)
    ws.store.set_model_status(name, version, "rejected", clear_alias=True)
    ws.store.set_model_status(name, previous, "champion", alias=CHAMPION)
    log.info("rolled back %s v%s; v%s is champion again", name, version, previous)
