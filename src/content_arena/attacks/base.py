"""The evasion-strategy interface and the small helpers the rule strategies share."""

from __future__ import annotations

import abc
import hashlib
import logging
import random
from collections.abc import Sequence

logger = logging.getLogger(__name__)

__all__ = ["Composite", "Strategy", "StrategyUnavailable", "check_rate", "pick", "pick_positions", "seeded_rng"]


class StrategyUnavailable(RuntimeError):
    """The strategy cannot run in this environment (e.g. no LLM host configured)."""


def seeded_rng(name: str, seed: int, text: str) -> random.Random:
    """A ``random.Random`` that depends only on (name, seed, text) - the same in every process.

    Python's ``hash()`` is salted per process, so it is never used here.
    """
    key = f"{name}\x1f{seed}\x1f{text}".encode("utf-8", "surrogatepass")
    return random.Random(int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big"))


def pick_positions(
    positions: Sequence[int], rate: float, rng: random.Random, *, at_least_one: bool = True
) -> list[int]:
    """Each of ``positions`` kept with probability ``rate`` (order preserved).

    With ``at_least_one`` an empty draw falls back to one random position, so a text with anything
    eligible always changes. (Per-position coin flips are used instead of ``rng.sample``: they cost a
    C call each, which matters at tens of thousands of variants per second.)
    """
    if not positions:
        return []
    if rate >= 1.0:
        return list(positions)
    draw = rng.random
    chosen = [position for position in positions if draw() < rate]
    if not chosen and at_least_one:
        chosen = [positions[int(draw() * len(positions))]]
    return chosen


def pick(options: Sequence[str], rng: random.Random) -> str:
    """One of ``options`` (non-empty), uniformly; cheaper than ``rng.choice``."""
    return options[int(rng.random() * len(options))] if len(options) > 1 else options[0]


def check_rate(rate: float) -> float:
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rate must be in (0, 1], got {rate}")
    return float(rate)


class Strategy(abc.ABC):
    """An evasion strategy: turns a toxic text into a variant a human still reads the same way.

    Subclasses set ``name``/``description`` and implement :meth:`transform`. Callers use
    :meth:`attack`, which is deterministic in (strategy name, seed, text) and never raises.
    """

    name: str = ""
    description: str = ""

    @abc.abstractmethod
    def transform(self, text: str, rng: random.Random) -> str:
        """Return a variant of ``text`` using ``rng`` for every random choice."""

    def attack(self, text: str, seed: int = 0) -> str:
        """A variant of ``text``; the same (strategy, seed, text) always gives the same variant.

        Returns ``text`` unchanged when there is nothing to attack, and also (logged) if the
        transformation fails - an attack must never take a battle down.
        """
        if not text:
            return text
        try:
            return self.transform(text, seeded_rng(self.name, seed, text))
        except Exception:  # the contract is "never raise": keep the original instead
            logger.exception("strategy %s failed on a %d-character text; keeping it unchanged", self.name, len(text))
            return text

    def attack_many(self, texts: Sequence[str], seed: int = 0) -> list[str]:
        """:meth:`attack` on each text with the same seed."""
        return [self.attack(text, seed) for text in texts]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Composite(Strategy):
    """Several strategies applied one after the other; named ``"a+b"``.

    :meth:`attack` runs each part's own :meth:`Strategy.attack` with the same seed, so ``a+b`` on a
    text equals ``b.attack(a.attack(text, seed), seed)``.
    """

    def __init__(self, strategies: Sequence[Strategy]) -> None:
        if not strategies:
            raise ValueError("a composite needs at least one strategy")
        self.strategies: tuple[Strategy, ...] = tuple(strategies)
        self.name = "+".join(part.name for part in self.strategies)
        self.description = " then ".join(part.name for part in self.strategies)

    def transform(self, text: str, rng: random.Random) -> str:
        for part in self.strategies:
            text = part.transform(text, rng)
        return text

    def attack(self, text: str, seed: int = 0) -> str:
        for part in self.strategies:
            text = part.attack(text, seed)
        return text

    def __repr__(self) -> str:
        return f"Composite({list(self.strategies)!r})"
