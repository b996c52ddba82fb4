"""Evasion strategies: turn a known-toxic text into a variant a human still reads the same way.

Public API (stable)::

    RULE_STRATEGIES                      # the six rule-based names, in this order
    available_strategies() -> list[str]  # rule names + "llm" (+ anything added with @register)
    get_strategy("jamo_split+spacing", llm={...}) -> Strategy   # "+" builds a Composite
    resolve_strategies("all" | "a,b" | ["a", "b+c"], llm={...}) -> list[Strategy]
    register(cls)                        # class decorator for new strategies

Every strategy has ``name``, ``description``, ``transform(text, rng)`` and the deterministic,
never-raising ``attack(text, seed=0)`` / ``attack_many(texts, seed=0)``.

Beyond the six unicode/respelling rules (which ``"all"`` still means), the package registers:

* rule families built from word-level :class:`Transformation` parts (:mod:`.korean`, :mod:`.english`):
  ``ko_consonant``, ``ko_vowel``, ``ko_pronounce``, ``ko_shape``, ``ko_roman``, ``ko_keyboard``,
  ``ko_chosung``, ``repeat``, ``symbol``, ``filler``, ``typo_swap``, ``typo_delete``, ``typo_insert``,
  ``typo_keyboard``, ``en_typo``, ``en_leet``, ``en_hangul``;
* difficulty levels stacking 2-4 families per toxic word (:mod:`.difficulty`): ``ko_level2..4``,
  ``en_level2..4``;
* ``adaptive``: :class:`AdaptiveAttacker`, a black-box search against a defender's scores
  (:mod:`.adaptive`); unbound until ``bind(defender)``.

:mod:`.readability` defines the human-readability proxy the families are tested against, and
:mod:`.llm_backends` the Ollama / OpenAI-compatible clients of ``llm``.
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

# The rule families below register themselves on import (after the six rule strategies and "llm").
from content_arena.attacks import korean as _korean  # noqa: E402,F401  isort: skip
from content_arena.attacks import english as _english  # noqa: E402,F401  isort: skip
from content_arena.attacks import difficulty as _difficulty  # noqa: E402,F401  isort: skip
from content_arena.attacks.adaptive import AdaptiveAttacker, AdaptiveResult, AdaptiveStrategy  # noqa: E402  isort: skip
from content_arena.attacks.transform import RuleStrategy, Transformation  # noqa: E402  isort: skip

RULE_STRATEGIES: tuple[str, ...] = ("jamo_split", "nfd", "homoglyph", "invisible", "spacing", "leet_phonetic")
mark_rule_strategies(RULE_STRATEGIES)

__all__ = [
    "RULE_STRATEGIES",
    "AdaptiveAttacker",
    "AdaptiveResult",
    "AdaptiveStrategy",
    "Composite",
    "Homoglyph",
    "InvisibleInsert",
    "JamoSplit",
    "LLMParaphrase",
    "LeetPhonetic",
    "NFDJamo",
    "RuleStrategy",
    "Spacing",
    "Strategy",
    "StrategyUnavailable",
    "Transformation",
    "UnknownStrategyError",
    "available_strategies",
    "get_strategy",
    "register",
    "resolve_strategies",
]
