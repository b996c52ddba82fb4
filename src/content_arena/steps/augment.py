"""augment: the challenger's training set, from the battle's failures."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from content_arena.attacks import Strategy
from content_arena.data import Example
from content_arena.data_augmentor import augment as expand
from content_arena.data_augmentor import with_replay
from content_arena.live_samples import with_reviewed
from content_arena.sample_collector import Failure, text_hash
from content_arena.steps.workspace import Splits, Workspace

log = logging.getLogger(__name__)


@dataclass
class TrainingSet:
    """The challenger's examples; ``from_failures`` is False when there was nothing to learn from."""

    examples: list[Example]
    n_toxic: int
    n_clean: int
    from_failures: bool


def training_set(ws: Workspace, failures: Sequence[Failure], splits: Splits, strategies: Sequence[Strategy],
                 battle_id: str) -> TrainingSet:
    """Failures expanded into variants and attacked clean negatives, plus replayed original examples and the
    live texts a person labelled (``arena review``).

    With no evasions to learn from (the gate failed on F1 or on attacked-clean FPR), the challenger
    trains on the ``fit`` set alone: a retraining that cannot target attacks still refreshes the
    model, where refusing would leave a failing champion in place.

    Args:
        ws: The workspace (the new variants are stored as training samples of ``battle_id``).
        failures: The collected failures.
        splits: The loop's data.
        strategies: The strategies, ``adaptive`` bound to the champion.
        battle_id: The battle the failures came from.

    Returns:
        The training set.
    """
    cfg = ws.config
    augmented = expand(failures, splits.fit, strategies, cfg.augment, toxic_pool=splits.seeds, seed=cfg.attack.seed,
                       experimental=cfg.experimental)
    if not augmented.examples:
        log.info("no evasions to learn from: the challenger trains on the training set alone")
        return TrainingSet(with_reviewed(list(splits.fit), ws.store), 0, 0, False)
    examples = with_replay(augmented.examples, splits.fit, cfg.augment.replay_ratio, seed=cfg.attack.seed)
    examples = with_reviewed(examples, ws.store)  # live texts a person labelled
    ws.store.add_training_samples(
        [
            {"text": e.text, "label": e.label, "source": "augment", "battle_id": battle_id, "text_hash": text_hash(e.text)}
            for e in augmented.examples
            if e.source == "augment"
        ]
    )
    return TrainingSet(examples, augmented.n_toxic, augmented.n_clean, True)
