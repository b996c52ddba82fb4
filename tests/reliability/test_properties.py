"""Hypothesis over arbitrary unicode: attack strategies, the normaliser and the champion never raise; the
normaliser is idempotent; every strategy is deterministic under its seed.

"Arbitrary" is every code point hypothesis draws by default (all planes, controls, combining marks,
private use, unassigned; lone surrogates excluded: the API refuses them before they reach the library),
plus an alphabet biased to Hangul syllables, compatibility and conjoining jamo, fullwidth forms, zero-width
characters and combining marks, where the Korean-specific code paths are.
Every strategy of ``available_strategies()`` except ``llm`` (needs a server) and ``adaptive`` (needs a
champion to search) is checked.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from content_arena.attacks import available_strategies, get_strategy
from content_arena.defender.normalizer import normalize, normalize_many

RULE_NAMES = [name for name in available_strategies() if name not in ("llm", "adaptive")]
EXAMPLES = 40

KOREANISH = st.one_of(
    st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3),  # Hangul syllables
    st.characters(min_codepoint=0x1100, max_codepoint=0x11FF),  # conjoining jamo
    st.characters(min_codepoint=0x3130, max_codepoint=0x318F),  # compatibility jamo
    st.characters(min_codepoint=0xFF00, max_codepoint=0xFFEF),  # half/fullwidth forms
    st.characters(min_codepoint=0x0300, max_codepoint=0x036F),  # combining marks
    st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", " ", "\t", "\n", "ㅋ", "놈", "x"]),
)
TEXTS = st.one_of(st.text(max_size=80), st.text(alphabet=KOREANISH, max_size=80))
SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def test_the_rule_strategies_are_all_here() -> None:
    assert len(RULE_NAMES) >= 20 and "jamo_split" in RULE_NAMES and "llm" not in RULE_NAMES


@pytest.mark.parametrize("name", RULE_NAMES)
@SETTINGS
@given(text=TEXTS, seed=SEEDS)
def test_strategy_never_raises_and_is_deterministic(name: str, text: str, seed: int) -> None:
    first = get_strategy(name).attack(text, seed=seed)
    assert isinstance(first, str)
    assert get_strategy(name).attack(text, seed=seed) == first, "same text and seed, different variant"
    assert get_strategy(name).attack_many([text, text], seed=seed) == [first, first]
    normalize(first)


@SETTINGS
@given(text=TEXTS)
def test_normaliser_never_raises_and_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert isinstance(once, str)
    assert normalize(once) == once
    assert normalize_many([text, once]) == [once, once]


@SETTINGS
@given(text=st.text(alphabet=KOREANISH, max_size=30), name=st.sampled_from(RULE_NAMES), seed=SEEDS)
def test_normaliser_is_idempotent_on_attacked_texts(text: str, name: str, seed: int) -> None:
    attacked = get_strategy(name).attack(text, seed=seed)
    once = normalize(attacked)
    assert normalize(once) == once


@pytest.fixture(scope="module")
def champion(trained_champion: Any) -> Any:
    from content_arena.defender.transformer import TransformerDefender

    return TransformerDefender(trained_champion.model_dir, batch_size=16).load()


def test_champion_never_raises_on_arbitrary_unicode(champion: Any) -> None:
    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(texts=st.lists(TEXTS, min_size=1, max_size=6))
    def check(texts: list[str]) -> None:
        results = champion.classify(texts)
        assert len(results) == len(texts)
        for result in results:
            assert 0.0 <= result["toxic_score"] <= 1.0 and math.isfinite(result["toxic_score"])
            assert isinstance(result["is_toxic"], bool)

    check()
    # Extremes hypothesis rarely draws: empty, whitespace only, very long, one huge grapheme cluster.
    extremes = ["", " ", "\n" * 500, "놈" * 5000, "a" + "\u0301" * 3000, "\U0010ffff" * 100, "\x00\x01\x7f"]
    assert len(champion.classify(extremes)) == len(extremes)
