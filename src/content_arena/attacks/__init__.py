"""Evasion strategies: turn a known-toxic text into a variant a human still reads the same way.

Public API (stable)::

    RULE_STRATEGIES                      # the six rule-based names, in this order
    available_strategies() -> list[str]  # rule names + "llm" (+ anything added with @register)
    get_strategy("jamo_split+spacing", llm={...}) -> Strategy   # "+" builds a Composite
    resolve_strategies("all" | "a,b" | ["a", "b+c"], llm={...}) -> list[Strategy]
    register(cls)                        # class decorator for new strategies

Every strategy has ``name``, ``description``, ``transform(text, rng)`` and the deterministic,
never-raising ``attack(text, seed=0)`` / ``attack_many(texts, seed=0)``.
"""

from __future__ import annotations

from content_arena.attacks.base import Composite, Strategy, StrategyUnavailable
from content_arena.attacks.homoglyph import Homoglyph
from content_arena.attacks.jamo import JamoSplit, NFDJamo
from content_arena.attacks.leet import LeetPhonetic
from content_arena.attacks.llm import LLMParaphrase
from content_arena.attacks.registry import (
    UnknownStrategyError,
    available_strategies,
    get_strategy,
    mark_rule_strategies,
    register,
    resolve_strategies,
)
from content_arena.attacks.simple import InvisibleInsert, Spacing

RULE_STRATEGIES: tuple[str, ...] = ("jamo_split", "nfd", "homoglyph", "invisible", "spacing", "leet_phonetic")
mark_rule_strategies(RULE_STRATEGIES)

__all__ = [
    "RULE_STRATEGIES",
    "Composite",
    "Homoglyph",
    "InvisibleInsert",
    "JamoSplit",
    "LLMParaphrase",
    "LeetPhonetic",
    "NFDJamo",
    "Spacing",
    "Strategy",
    "StrategyUnavailable",
    "UnknownStrategyError",
    "available_strategies",
    "get_strategy",
    "register",
    "resolve_strategies",
]
