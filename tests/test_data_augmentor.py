"""The augmentor's rule path (content_arena.data_augmentor.augment): balance, labels, and which
strategies garble the clean negatives. (The adaptive path is tested in test_adaptive.py.)"""

from __future__ import annotations

from content_arena.attacks import get_strategy
from content_arena.config import AugmentConfig
from content_arena.data import Example
from content_arena.data_augmentor import augment
from content_arena.defender.normalizer import INVISIBLE_CHARACTERS
from content_arena.sample_collector import Failure

TOXIC = ["씨발 진짜 짜증나", "병신 같은 소리 하네", "꺼져 이 미친놈아", "you are a fucking idiot"]
CLEAN = ["오늘 날씨가 정말 좋네요", "이 영화 진짜 재밌어요", "내일 같이 점심 먹어요", "thanks for the help",
         "좋은 하루 보내세요", "노래가 너무 좋아요"]


def _failures(strategy: str) -> list[Failure]:
    attack = get_strategy(strategy)
    return [Failure(text, attack.attack(text, seed=3), strategy, "b1") for text in TOXIC[:3]]


def test_negatives_at_the_configured_ratio_labelled_and_deterministic():
    strategies = [get_strategy("invisible"), get_strategy("filler")]
    clean = [Example(t, 0) for t in CLEAN * 5]
    pool = [Example(t, 1) for t in TOXIC]
    result = augment(_failures("invisible"), clean, strategies, AugmentConfig(), toxic_pool=pool, seed=0)
    toxic = [e for e in result.examples if e.label == 1]
    negatives = [e for e in result.examples if e.label == 0]
    assert result.n_toxic == len(toxic) > 0 and result.n_clean == len(negatives)
    # At least one negative per toxic example (toxic ones are trimmed to as many), at most the ratio.
    assert len(toxic) <= len(negatives) <= int(len(toxic) * AugmentConfig().clean_negatives_ratio)
    assert {e.source for e in toxic} <= {"battle", "augment"} and {e.source for e in negatives} == {"augment"}
    again = augment(_failures("invisible"), clean, strategies, AugmentConfig(), toxic_pool=pool, seed=0)
    assert [e.text for e in again.examples] == [e.text for e in result.examples]


def test_clean_negatives_ratio_sets_negatives_per_toxic_example():
    strategies = [get_strategy("invisible"), get_strategy("filler"), get_strategy("spacing")]
    clean = [Example(f"{t} {i}", 0) for i, t in enumerate(CLEAN * 20)]
    pool = [Example(t, 1) for t in TOXIC]
    sizes = {}
    for ratio in (0.0, 0.5, 1.0, 1.5, 2.0):
        result = augment(_failures("invisible"), clean, strategies, AugmentConfig(clean_negatives_ratio=ratio),
                         toxic_pool=pool, seed=0)
        assert result.n_toxic == sum(e.label for e in result.examples) > 0
        assert result.n_clean == int(result.n_toxic * ratio), (ratio, result.n_toxic, result.n_clean)
        sizes[ratio] = result.n_toxic
    # More negatives asked for than the clean pool yields: the toxic side is trimmed no further than to as
    # many examples as there are negatives, so failures are not thrown away for want of clean texts.
    few = [Example(t, 0) for t in CLEAN[:2]]
    result = augment(_failures("invisible"), few, strategies, AugmentConfig(clean_negatives_ratio=2.0),
                     toxic_pool=pool, seed=0)
    assert 0 < result.n_clean < int(sizes[2.0] * 2.0)
    assert result.n_toxic == min(sizes[2.0], result.n_clean)


def test_negatives_are_garbled_by_the_strategies_that_evaded():
    # Only invisible evaded: every clean negative carries invisible characters (filler, the other
    # strategy, garbles none of them on its own).
    strategies = [get_strategy("invisible"), get_strategy("filler")]
    clean = [Example(t, 0) for t in CLEAN * 5]
    result = augment(_failures("invisible"), clean, strategies, AugmentConfig(), seed=0)
    negatives = [e.text for e in result.examples if e.label == 0]
    assert len(negatives) >= 3  # deduplicated by normalised text: one per clean text at most
    assert all(any(c in INVISIBLE_CHARACTERS for c in text) for text in negatives)
    # The positives still include the other strategy's variants of the failures' originals.
    positives = [e.text for e in result.examples if e.label == 1]
    assert any(not any(c in INVISIBLE_CHARACTERS for c in text) for text in positives)
