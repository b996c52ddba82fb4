"""Expand failures into a balanced challenger training set.

For each failure: the evading text itself, plus variants of its original made by the *other*
strategies (alone, or composed with the one that evaded), so the challenger learns the family and
not the single string. Attacked clean texts are added as negatives, so the challenger does not learn
"garbled means toxic". The result has as many clean as toxic examples.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from content_arena.attacks import Strategy, get_strategy
from content_arena.config import AugmentConfig
from content_arena.data import Example
from content_arena.sample_collector import Failure, text_hash


@dataclass
class AugmentedSet:
    examples: list[Example]
    n_toxic: int
    n_clean: int


def augment(
    failures: Sequence[Failure],
    clean_pool: Sequence[Example],
    strategies: Sequence[Strategy],
    cfg: AugmentConfig,
    *,
    toxic_pool: Sequence[Example] = (),
    seed: int = 0,
) -> AugmentedSet:
    """Toxic positives from the failures, attacked clean negatives, equal in number.

    Positives per failure: the evading text, then ``variants_per_failure`` new variants of its
    original: alternately the same strategy with a fresh seed and another strategy (alone or
    composed with the evading one). The strategies that evaded are also applied to other toxic
    texts from ``toxic_pool``, so the challenger learns the trick and not the handful of sentences.
    """
    rng = random.Random(seed)
    by_name = {s.name: s for s in strategies}
    seen: set[str] = set()
    toxic: list[Example] = []

    def add(bucket: list[Example], text: str, label: int, source: str) -> None:
        digest = text_hash(text)
        if digest not in seen:
            seen.add(digest)
            bucket.append(Example(text=text, label=label, source=source))

    def strategy_for(failed: str, k: int) -> Strategy | None:
        others = [name for name in by_name if name != failed]
        if k % 2 == 0 and failed in by_name:
            return by_name[failed]
        if not others:
            return by_name.get(failed)
        other = rng.choice(others)
        # Attackers stack tricks: half of the other-strategy variants keep the evading one too.
        if failed in by_name and rng.random() < 0.5:
            return get_strategy(f"{failed}+{other}")
        return by_name[other]

    for index, failure in enumerate(failures):
        add(toxic, failure.attacked_text, 1, "battle")
        for k in range(cfg.variants_per_failure):
            strategy = strategy_for(failure.strategy, k)
            if strategy is not None:
                add(toxic, strategy.attack(failure.original_text, seed=seed + 1 + index * 31 + k), 1, "augment")

    pool = [e for e in toxic_pool if e.label == 1]
    if pool:
        failed_names = [f.strategy for f in failures if f.strategy in by_name]
        for k in range(len(failed_names) * cfg.variants_per_failure):
            example = pool[rng.randrange(len(pool))]
            add(toxic, by_name[failed_names[k % len(failed_names)]].attack(example.text, seed=seed + 7 + k), 1, "augment")

    clean = [e for e in clean_pool if e.label == 0]
    negatives: list[Example] = []
    if clean and strategies:
        target = max(len(toxic), int(len(toxic) * cfg.clean_negatives_ratio))
        # Attack clean texts with the strategies that evaded as often as with all others together.
        weighted = list(strategies) + [by_name[f.strategy] for f in failures if f.strategy in by_name][: len(strategies) * 4]
        for k in range(target * 2):
            if len(negatives) >= target:
                break
            example = clean[rng.randrange(len(clean))]
            strategy = weighted[rng.randrange(len(weighted))]
            add(negatives, strategy.attack(example.text, seed=seed + k), 0, "augment")
    # Balance the classes by trimming the larger side.
    size = min(len(toxic), len(negatives)) if negatives else len(toxic)
    rng.shuffle(toxic)
    rng.shuffle(negatives)
    toxic, negatives = toxic[:size], negatives[:size]
    examples = toxic + negatives
    rng.shuffle(examples)
    return AugmentedSet(examples, len(toxic), len(negatives))


def with_replay(augmented: Sequence[Example], original: Sequence[Example], ratio: float, seed: int = 0) -> list[Example]:
    """Mix in ``ratio`` × len(augmented) original examples so the challenger keeps what it knew."""
    rng = random.Random(seed)
    count = min(len(original), int(len(augmented) * ratio))
    mixed = list(augmented) + rng.sample(list(original), count)
    rng.shuffle(mixed)
    return mixed
