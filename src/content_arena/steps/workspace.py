"""What every step shares: the workspace (config, store, registry), the data splits, the strategies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from content_arena.attacks import Strategy, resolve_strategies
from content_arena.config import ArenaConfig
from content_arena.data import Example, load_examples, load_seed_corpus, split_examples
from content_arena.model_registry import ModelRegistry
from content_arena.store import Store, open_store

# Attack seed of the held-out adversarial set. It differs from the battle's (``attack.seed``), so the
# challenger never sees the exact evaluation variants.
EVAL_ATTACK_SEED = 10_007

# Share of the training data held back to choose the best epoch.
VALIDATION_FRACTION = 0.1


@dataclass
class Workspace:
    """The long-lived handles of a run: config, store, registry."""

    config: ArenaConfig
    store: Store
    registry: ModelRegistry

    @classmethod
    def open(cls, config: ArenaConfig) -> Workspace:
        """Open the store and the registry of ``config`` (creating ``config.home`` if needed).

        Args:
            config: The arena configuration.

        Returns:
            The workspace; :meth:`close` releases the store.
        """
        config.home_path.mkdir(parents=True, exist_ok=True)
        return cls(config, open_store(config.storage_url), ModelRegistry.from_config(config))

    @property
    def work_dir(self) -> Path:
        path = self.config.home_path / "work"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        self.store.close()


def load_dataset(cfg: ArenaConfig) -> tuple[list[Example], list[Example]]:
    """The configured labelled data (the shipped seed corpus by default), split train/test.

    Args:
        cfg: The configuration (``data.path``, ``data.format``, ``data.test_fraction``, ``data.split_seed``).

    Returns:
        (train, test).
    """
    examples = load_seed_corpus() if cfg.data.path is None else load_examples(cfg.data.path, cfg.data.format)
    return split_examples(examples, test_fraction=cfg.data.test_fraction, seed=cfg.data.split_seed)


def fit_val_split(examples: Sequence[Example], cfg: ArenaConfig) -> tuple[list[Example], list[Example]]:
    """Training data split into ``fit`` (gradient steps) and ``val`` (best epoch).

    Every entry point that trains (the loop, ``arena train``, the KFP steps) splits with this one
    function and seed, so a model trained by hand and one trained by the loop saw the same split.

    Args:
        examples: The training examples.
        cfg: The configuration (``data.split_seed``).

    Returns:
        (fit, val).
    """
    return split_examples(examples, test_fraction=VALIDATION_FRACTION, seed=cfg.data.split_seed + 1)


@dataclass
class Splits:
    """The loop's data: ``train`` is split again into ``fit`` (training, and the battle's seeds) and
    ``val`` (best epoch); ``test`` is held out for evaluation and the champion/challenger comparison."""

    train: list[Example]
    test: list[Example]
    fit: list[Example]
    val: list[Example]

    @property
    def seeds(self) -> list[Example]:
        """Toxic texts to attack: from ``fit`` only, so that no validation text comes back through the
        battle's failures into a challenger's training set."""
        return [e for e in self.fit if e.label == 1]


def load_splits(cfg: ArenaConfig) -> Splits:
    """The deterministic splits every entry point (loop, CLI, API battles, KFP steps) uses.

    Args:
        cfg: The configuration.

    Returns:
        The train/test/fit/val splits.
    """
    train, test = load_dataset(cfg)
    fit, val = fit_val_split(train, cfg)
    return Splits(train, test, fit, val)


def configured_strategies(cfg: ArenaConfig) -> list[Strategy]:
    """The strategies of ``attack.strategies``, unbound (see :func:`content_arena.steps.champion.arm`).

    Args:
        cfg: The configuration.

    Returns:
        One strategy object per configured name.
    """
    return resolve_strategies(cfg.attack.strategies, llm=cfg.llm_options())
