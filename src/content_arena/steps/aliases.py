"""The one place that moves the ``champion`` and ``challenger`` aliases.

The rule: MLflow's alias is the truth and moves first; the store mirrors it only once MLflow has it.
If MLflow fails, nothing has changed anywhere; the trade-off is that a store write failing after
MLflow moved leaves the store one step behind until the next move, which a rerun repairs.

Each champion move then records ``model:champion:path`` and ``model:champion:f1``
(:func:`content_arena.monitoring.state_keys`: the API's queue inside a pipeline run it executes, the
Redis queue of ``queue.url`` elsewhere, nothing without one). Failing to record them is logged and
never undoes the move: the registry is the record, the keys are a convenience.
"""

from __future__ import annotations

import logging

from content_arena import model_promoter
from content_arena.model_registry import CHALLENGER, CHAMPION
from content_arena.monitoring import champion_f1, safely, state_keys
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
    publish_champion(ws, version)


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
    publish_champion(ws, previous)


def publish_champion(ws: Workspace, version: int) -> None:
    """Record ``version`` as the champion in ``model:champion:path`` and ``model:champion:f1`` (its
    recorded clean F1, else validation F1). Never raises.

    Args:
        ws: The workspace.
        version: The champion's registry version.
    """

    def publish() -> None:
        with state_keys(ws.config) as keys:
            if keys is None:
                return
            record = ws.store.get_model(ws.registry.model_name, version)
            keys.champion_changed(ws.registry.uri(version), champion_f1(record.metrics if record is not None else {}))

    safely(publish, "record the champion's keys")
