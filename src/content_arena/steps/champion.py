"""champion: the registered champion (the first one trained when there is none), and the attackers bound to it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from content_arena.attacks import AdaptiveStrategy, Strategy
from content_arena.attacks.adaptive import bind_adaptive
from content_arena.model_registry import CHAMPION
from content_arena.steps import aliases
from content_arena.steps.models import register_model
from content_arena.steps.workspace import Splits, Workspace
from content_arena.training import train_champion


@dataclass(frozen=True)
class ChampionResult:
    version: int
    uri: str
    bootstrapped: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ensure_champion(ws: Workspace, splits: Splits) -> ChampionResult:
    """The registered champion's version; trains and registers the first one when there is none.

    Args:
        ws: The workspace.
        splits: The loop's data (the first champion trains on ``fit``, picks its epoch on ``val``).

    Returns:
        The champion's version and URI, and whether this call trained it.
    """
    version = ws.registry.version_for(CHAMPION)
    if version is not None:
        return ChampionResult(version, ws.registry.uri(version), False)
    with ws.registry.run("bootstrap-champion", tags={"stage": "train", "mode": "full"}) as run:
        result = train_champion(splits.fit, ws.work_dir / "bootstrap-champion", ws.config, val_examples=splits.val,
                                tracker=run)
        version = register_model(ws, result, run)
    aliases.set_champion(ws, version)
    return ChampionResult(version, ws.registry.uri(version), True)


def needs_defender(strategies: Sequence[Strategy]) -> bool:
    """Whether some strategy (``adaptive``) searches a defender's scores and must be bound to one."""
    return any(isinstance(s, AdaptiveStrategy) for s in strategies)


def arm(strategies: Sequence[Strategy], champion: Any) -> list[Strategy]:
    """Bind the ``adaptive`` strategy (if configured) to the champion under attack.

    Every step that attacks text — the battle, the held-out adversarial set, augmentation, the
    challenger's robustness validation set — calls this with the same champion, so ``adaptive``
    searches the same model in one process and in separate pipeline steps.

    Args:
        strategies: The configured strategies.
        champion: The loaded champion defender (None only when no strategy needs one).

    Returns:
        The same strategies, ``adaptive`` bound.
    """
    if not needs_defender(strategies):
        return list(strategies)
    if champion is None:
        raise ValueError("the adaptive strategy needs the champion to attack: load it first")
    return bind_adaptive(strategies, champion)
