"""train: the challenger, fine-tuned from the champion's weights, registered with the challenger alias."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from content_arena.attacks import Strategy
from content_arena.data import Example
from content_arena.evaluation import AdversarialSet
from content_arena.steps import aliases
from content_arena.steps.models import register_model
from content_arena.steps.workspace import EVAL_ATTACK_SEED, Splits, Workspace
from content_arena.training import TrainResult, train_challenger


@dataclass
class Trained:
    version: int
    uri: str
    result: TrainResult


def robustness_validation_set(val: Sequence[Example], strategies: Sequence[Strategy]) -> list[Example]:
    """Validation texts plus one attacked copy of each per strategy: the challenger's best epoch is
    the one that classifies attacked text best, not only clean text.

    Args:
        val: The validation examples.
        strategies: The strategies, ``adaptive`` bound to the champion.

    Returns:
        The clean and attacked validation examples.
    """
    attacked = AdversarialSet.build(val, strategies, seed=EVAL_ATTACK_SEED + 1)
    out = list(val)
    for variants in attacked.variants.values():
        out.extend(Example(text, e.label) for text, e in zip(variants, val, strict=True))
    return out


def fit_challenger(ws: Workspace, champion_dir: Path, examples: Sequence[Example], splits: Splits,
          strategies: Sequence[Strategy], out_dir: Path, *, battle_id: str | None = None) -> Trained:
    """LoRA / QLoRA challenger from the champion's weights, saved to ``out_dir`` and registered.

    Args:
        ws: The workspace.
        champion_dir: The champion's model directory.
        examples: The challenger's training set.
        splits: The loop's data (``val`` picks the best epoch, with attacked copies).
        strategies: The strategies, ``adaptive`` bound to the champion.
        out_dir: Where the challenger is saved.
        battle_id: The battle its data came from (an MLflow run tag).

    Returns:
        The challenger's version, URI and training result.
    """
    if not examples:
        raise ValueError("no training examples for the challenger")
    with ws.registry.run("challenger", tags={"stage": "train", "battle_id": battle_id or ""}) as run:
        result = train_challenger(
            champion_dir, list(examples), out_dir, ws.config,
            val_examples=robustness_validation_set(splits.val, strategies), policy_examples=splits.val, tracker=run,
        )
        version = register_model(ws, result, run)
        aliases.set_challenger(ws, version)
    return Trained(version, ws.registry.uri(version), result)
