"""promote: the comparison's decision applied to the registry and the store."""

from __future__ import annotations

from content_arena.steps import aliases
from content_arena.steps.workspace import Workspace


def apply_decision(ws: Workspace, decision: bool, *, challenger_version: int, champion_version: int | None) -> bool:
    """Move the ``champion`` alias to the challenger, or mark the challenger rejected.

    Args:
        ws: The workspace.
        decision: The comparison's ``promote``.
        challenger_version: The challenger.
        champion_version: The champion it would replace.

    Returns:
        Whether the challenger is now the champion.
    """
    if decision:
        aliases.set_champion(ws, challenger_version, champion_version)
    else:
        aliases.reject(ws, challenger_version)
    return bool(decision)
