"""Expand failures into a balanced challenger training set.

For each failure: the evading text itself, plus variants of its original made by the *other*
strategies (alone, or composed with the one that evaded), so the challenger learns the family and
not the single string. Attacked clean texts are added as negatives, garbled by the strategies that
evaded, so the challenger does not learn "garbled this way means toxic": ``augment.clean_negatives_ratio``
of them per toxic example.

With the ``adaptive`` strategy bound to the champion (it is in ``attack.strategies``), the adaptive
search gets its own share, since a rule variant teaches little about what a search finds:

* every adaptive failure gets ``variants_per_failure`` fresh searches of its original (other seeds);
* the search runs on every toxic text of the pool, ``augment.adaptive_pool_searches`` times (seeds);
* ``augment.adaptive_share`` of the toxic positives come from the search (rule variants are trimmed);
* each successful search's edits are *echoed* ``experimental.adaptive_echoes`` times: the same operators,
  as many moves, applied by
  :meth:`~content_arena.attacks.AdaptiveAttacker.random_edits` to another toxic text (a positive) and
  to a clean text (a negative), so the challenger learns the moves, not only the searched strings,
  and does not learn "an edited word means toxic".

A search is a batch per seed (lockstep), not one text at a time.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from content_arena.attacks import AdaptiveAttacker, AdaptiveStrategy, Strategy, get_strategy
from content_arena.attacks.registry import MAX_COMPOSITE_PARTS
from content_arena.config import AugmentConfig, ExperimentalConfig
from content_arena.data import Example
from content_arena.sample_collector import Failure, text_hash

log = logging.getLogger(__name__)

# Attack seeds of the augmentation's adaptive searches: apart from the battle's and the evaluation's.
_ADAPTIVE_SEED = 20_011


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
    experimental: ExperimentalConfig | None = None,
) -> AugmentedSet:
    """Toxic positives from the failures, attacked clean negatives, equal in number.

    Positives per failure: the evading text, then ``variants_per_failure`` new variants of its
    original: alternately the same strategy with a fresh seed and another strategy (alone or
    composed with the evading one). The strategies that evaded are also applied to other toxic
    texts from ``toxic_pool``, so the challenger learns the trick and not the handful of sentences.
    ``experimental`` gives the recipe's research choices (``adaptive_echoes``); None takes its defaults.
    """
    rng = random.Random(seed)
    by_name = {s.name: s for s in strategies}
    adaptive = _bound_adaptive(strategies)
    # The adaptive strategy is searched in batches below; the rule code paths leave it out (composed
    # with a rule, "adaptive+x" would be an unbound adaptive: a no-op).
    searched = {s.name for s in strategies if isinstance(s, AdaptiveStrategy)}
    rules = {name: s for name, s in by_name.items() if name not in searched}
    seen: set[str] = set()
    toxic: list[Example] = []
    negatives: list[Example] = []

    def add(bucket: list[Example], text: str, label: int, source: str) -> None:
        digest = text_hash(text)
        if digest not in seen:
            seen.add(digest)
            bucket.append(Example(text=text, label=label, source=source))

    def strategy_for(failed: str, k: int) -> Strategy | None:
        others = [name for name in rules if name != failed]
        if k % 2 == 0 and failed in rules:
            return rules[failed]
        if not others:
            return rules.get(failed)
        other = rng.choice(others)
        # Attackers stack tricks: half of the other-strategy variants keep the evading one too, when the
        # stack stays a buildable composite (bred strategies are composites already).
        stacked = f"{failed}+{other}"
        if failed in rules and stacked.count("+") < MAX_COMPOSITE_PARTS and rng.random() < 0.5:
            return get_strategy(stacked)
        return rules[other]

    adaptive_failures: list[Failure] = []
    for index, failure in enumerate(failures):
        add(toxic, failure.attacked_text, 1, "battle")
        if failure.strategy in searched:
            adaptive_failures.append(failure)
            continue
        for k in range(cfg.variants_per_failure):
            strategy = strategy_for(failure.strategy, k)
            if strategy is not None:
                add(toxic, strategy.attack(failure.original_text, seed=seed + 1 + index * 31 + k), 1, "augment")

    pool = [e for e in toxic_pool if e.label == 1]
    if pool:
        failed_names = [f.strategy for f in failures if f.strategy in rules]
        for k in range(len(failed_names) * cfg.variants_per_failure):
            example = pool[rng.randrange(len(pool))]
            add(toxic, rules[failed_names[k % len(failed_names)]].attack(example.text, seed=seed + 7 + k), 1, "augment")

    clean = [e for e in clean_pool if e.label == 0]
    if adaptive is not None:
        searched_toxic: list[Example] = []
        adaptive_examples(
            adaptive, [f.original_text for f in adaptive_failures], [e.text for e in pool], [e.text for e in clean],
            variants_per_failure=cfg.variants_per_failure, pool_searches=cfg.adaptive_pool_searches,
            echoes=(experimental or ExperimentalConfig()).adaptive_echoes, seed=seed, rng=rng,
            positive=lambda text: add(searched_toxic, text, 1, "augment"),
            negative=lambda text: add(negatives, text, 0, "augment"),
        )
        if searched_toxic:
            # The search's moves cover the rule families' edits; the rule variants get the rest. A
            # challenger trained on a fixed budget (``training.max_train_examples``) learns little about
            # the search from a few searched texts among many rule variants.
            keep = int(len(searched_toxic) * (1 - cfg.adaptive_share) / cfg.adaptive_share)
            if len(toxic) > keep:
                rng.shuffle(toxic)
                del toxic[keep:]
            toxic.extend(searched_toxic)

    if clean and rules:
        target = int(len(toxic) * cfg.clean_negatives_ratio)
        # Clean texts are garbled by the strategies that evaded, in proportion to their failures (by every
        # rule when only the adaptive search evaded). Half of them used to be garbled by every rule in turn:
        # the challenger then flagged more clean texts garbled the way it had just learnt. Attacked-clean
        # FPR rise, challenger over champion, on the README loop's split seeds 0, 1, 3, 5 and the adaptive
        # bench: +2.4, +1.5, +2.8, +5.0, +6.1 points before, +0.8, +1.8, +0.9, +3.9, +5.6 now.
        weighted = [rules[f.strategy] for f in failures if f.strategy in rules] or list(rules.values())
        for k in range(target * 2):
            if len(negatives) >= target:
                break
            example = clean[rng.randrange(len(clean))]
            strategy = weighted[rng.randrange(len(weighted))]
            add(negatives, strategy.attack(example.text, seed=seed + k), 0, "augment")
    # ``clean_negatives_ratio`` negatives per toxic example: the side over its share is trimmed. Short of
    # negatives (a small clean pool), toxic examples are trimmed only down to as many as there are negatives.
    ratio = cfg.clean_negatives_ratio
    size = min(len(toxic), max(len(negatives), int(len(negatives) / ratio))) if negatives and ratio else len(toxic)
    rng.shuffle(toxic)
    rng.shuffle(negatives)
    toxic, negatives = toxic[:size], negatives[: int(size * ratio)]
    examples = toxic + negatives
    rng.shuffle(examples)
    return AugmentedSet(examples, len(toxic), len(negatives))


def adaptive_examples(
    attacker: AdaptiveAttacker,
    failed_originals: Sequence[str],
    toxic_texts: Sequence[str],
    clean_texts: Sequence[str],
    *,
    variants_per_failure: int,
    pool_searches: int = 2,
    echoes: int = 1,
    seed: int,
    rng: random.Random,
    positive: Callable[[str], None],
    negative: Callable[[str], None],
) -> int:
    """What the adaptive search exploits in ``attacker``'s defender, as training examples.

    Positives: ``variants_per_failure`` fresh searches of each failed original, then
    ``pool_searches`` searches of every toxic text (successes only); then each success's
    edits echoed ``echoes`` times onto a random toxic text (positive) and a random clean
    text (negative) with :meth:`AdaptiveAttacker.random_edits`. Returns the successful searches.
    """
    successes = []
    runs = [(list(failed_originals), _ADAPTIVE_SEED + k) for k in range(variants_per_failure)]
    runs += [(list(toxic_texts), _ADAPTIVE_SEED + 1_000 + k) for k in range(pool_searches)]
    for texts, search_seed in runs:
        if not texts:
            continue
        for result in attacker.attack_batch(texts, seed=search_seed + seed):
            if result.success:
                positive(result.adversarial)
                successes.append(result)
    for index, result in enumerate(successes):
        operators, moves = set(result.edits), len(result.edits)
        for k in range(echoes):
            echo_seed = seed + index * 7 + k
            if toxic_texts:
                text = toxic_texts[rng.randrange(len(toxic_texts))]
                positive(attacker.random_edits(text, echo_seed, edits=moves, operators=operators)[0])
            if clean_texts:
                text = clean_texts[rng.randrange(len(clean_texts))]
                negative(attacker.random_edits(text, echo_seed, edits=moves, operators=operators)[0])
    log.info("adaptive augmentation: %d successful searches against %s, each echoed %d time(s)",
             len(successes), getattr(attacker.defender, "version", "the champion"), echoes)
    return len(successes)


def _bound_adaptive(strategies: Sequence[Strategy]) -> AdaptiveAttacker | None:
    for strategy in strategies:
        if isinstance(strategy, AdaptiveStrategy) and strategy.attacker is not None:
            return strategy.attacker
    return None


def with_rule_variants(
    examples: Sequence[Example], strategies: Sequence[Strategy], share: float, seed: int = 0
) -> list[Example]:
    """``examples`` plus one variant, label kept, of a ``share`` of them: the strategies take turns and
    each text gets its own attack seed. Variants equal to their original (nothing to attack) are dropped.

    Used to harden a first champion against obfuscations known in advance (``experimental.harden_strategies``);
    the loop's challengers learn from what the battle found instead.
    """
    if not strategies:
        return list(examples)
    rng = random.Random(seed)
    out = list(examples)
    turn = 0
    for index, example in enumerate(examples):
        if rng.random() >= share:
            continue
        strategy = strategies[turn % len(strategies)]
        turn += 1
        variant = strategy.attack(example.text, seed=seed + index)
        if variant != example.text:
            out.append(Example(text=variant, label=example.label, lang=example.lang, source=f"harden:{strategy.name}"))
    return out


def with_replay(augmented: Sequence[Example], original: Sequence[Example], ratio: float | None,
                seed: int = 0) -> list[Example]:
    """Mix in ``ratio`` × len(augmented) original examples (all of them when ``ratio`` is None) so the
    challenger keeps what it knew."""
    rng = random.Random(seed)
    count = len(original) if ratio is None else min(len(original), int(len(augmented) * ratio))
    mixed = list(augmented) + rng.sample(list(original), count)
    rng.shuffle(mixed)
    return mixed
