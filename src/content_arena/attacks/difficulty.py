"""Difficulty levels: stack 2, 3 or 4 different obfuscation rules on each toxic word.

``ko_level3`` on ``이 씨발놈아`` may give ``이 ㅆl바알🤬놈아``: tensing, a look-alike, lengthening and a
filler are candidates, three of them are drawn (deterministically from the seed) and applied in a
fixed order - sound changes, then one script change (look-alikes, romanisation, keyboard typing or
an abbreviation), then insertions - one site each, so the word stays readable. The rules act on
the toxic stem (the whole word when the stem alone offers fewer than ``level`` rules).

* at most one script change per word (``ㅅㅂ`` cannot also be romanised);
* table respellings (``ㅆㅂ``, ``퍽``) need the intact stem, so they never follow a sound change;
* the plan is drawn uniformly among the allowed ones; if one of its rules finds nothing to change,
  another plan is drawn.

``ko_level*`` edits Hangul words with the Korean families, ``en_level*`` Latin words with the
English ones; :class:`Difficulty` with ``language="auto"`` picks per word.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from typing import ClassVar

from content_arena.attacks.english import Hangulize, Leet, Typo
from content_arena.attacks.korean import (
    Chosung,
    ConsonantSwap,
    Filler,
    KeyboardTyping,
    Pronounce,
    Repeat,
    Romanize,
    ShapeLookalike,
    SymbolInsert,
    VowelSwap,
)
from content_arena.attacks.lexicon import Word
from content_arena.attacks.registry import register
from content_arena.attacks.transform import RuleStrategy, Transformation

__all__ = ["EN_POOL", "KO_POOL", "Difficulty", "chain", "plans"]

KO_POOL: tuple[type[Transformation], ...] = (
    Pronounce, ConsonantSwap, VowelSwap, ShapeLookalike, Romanize, KeyboardTyping, Chosung, Repeat, SymbolInsert,
    Filler,
)
EN_POOL: tuple[type[Transformation], ...] = (Typo, Leet, Hangulize, Repeat, SymbolInsert, Filler)
_SCRIPT_STAGE = 3
_HANGUL = re.compile("[\uac00-\ud7a3\u3131-\u318e]")
_LATIN = re.compile("[A-Za-z]")


def _stage(transformation: Transformation) -> int:
    return transformation.stage


def _compatible(plan: Sequence[Transformation]) -> bool:
    """At most one script change; table respellings only on the intact stem (no sound change first)."""
    if sum(t.stage == _SCRIPT_STAGE for t in plan) > 1:
        return False
    return not (any(t.lexical for t in plan) and any(t.stage < _SCRIPT_STAGE for t in plan))


_PLANS: dict[tuple[tuple[Transformation, ...], int], tuple[tuple[Transformation, ...], ...]] = {}


def plans(pool: Sequence[Transformation], level: int) -> tuple[tuple[Transformation, ...], ...]:
    """Every allowed choice of ``level`` different transformations of ``pool``, each in stage order."""
    key = (tuple(pool), level)
    found = _PLANS.get(key)
    if found is None:
        ordered = sorted(pool, key=_stage)
        found = _PLANS[key] = tuple(c for c in itertools.combinations(ordered, level) if _compatible(c))
    return found


def chain(
    word: str, focus: tuple[int, int] | None, pool: Sequence[Transformation], level: int, rng: random.Random,
    *, attempts: int = 4,
) -> tuple[str, list[tuple[str, str]]]:
    """``word`` with ``level`` different transformations of ``pool`` stacked (one site each).

    A plan is drawn uniformly from :func:`plans`; when one of its rules finds nothing to change, another
    plan is drawn (``attempts`` in all) and the longest result is kept. Returns the new word and the
    steps ``(transformation name, word after it)`` - fewer than ``level`` only when no drawn plan fit.
    """
    options = plans(pool, level)
    if not options:
        return word, []
    best: tuple[str, list[tuple[str, str]]] = (word, [])
    for _ in range(attempts):
        plan = options[int(rng.random() * len(options))]
        current, current_focus, steps = word, focus, []
        for step in plan:
            new, new_focus = step.apply(current, current_focus, rng, max_sites=1)
            if new == current:
                break
            current, current_focus = new, new_focus
            steps.append((step.name, current))
        if len(steps) == level:
            return current, steps
        if len(steps) > len(best[1]):
            best = (current, steps)
    return best


class Difficulty(RuleStrategy):
    """``level`` stacked rules per toxic word (see the module docstring).

    ``language``: ``"ko"`` edits Hangul words with :data:`KO_POOL`, ``"en"`` Latin words with
    :data:`EN_POOL`, ``"auto"`` each word with the pool of its script.
    """

    level: ClassVar[int] = 2
    language: ClassVar[str] = "ko"
    other_rate: ClassVar[float] = 0.0  # stacked rules go to the insult only

    def __init__(self, level: int | None = None, language: str | None = None) -> None:
        level = self.level if level is None else level
        language = self.language if language is None else language
        if not 1 <= level <= 4:
            raise ValueError(f"level must be between 1 and 4, got {level}")
        if language not in ("ko", "en", "auto"):
            raise ValueError(f"language must be 'ko', 'en' or 'auto', got {language!r}")
        self.level, self.language = level, language
        self.ko_pool = tuple(t() for t in KO_POOL)
        self.en_pool = tuple(t() for t in EN_POOL)
        super().__init__((*self.ko_pool, *self.en_pool))
        if not self.name:
            self.name = f"{'' if language == 'auto' else language + '_'}level{level}"
            self.description = f"{level} stacked rules per toxic word ({language})"

    def pool(self, word: str) -> tuple[Transformation, ...]:
        if self.language == "ko" or (self.language == "auto" and _HANGUL.search(word)):
            return self.ko_pool if _HANGUL.search(word) else ()
        return self.en_pool if _LATIN.search(word) else ()

    def eligible(self, word: str) -> bool:
        return any(t.sites(word) for t in self.pool(word))

    def edit_word(self, word: Word, rng: random.Random) -> str:
        pool = self.pool(word.text)
        if word.focus is None:
            return chain(word.text, None, pool, self.level, rng)[0]
        # Stack the rules on the stem itself (few distinct strings, so the site caches hit) and keep
        # the rest of the word; if the stem alone offers too little, work on the whole word.
        start, end = word.focus
        stem, steps = chain(word.text[start:end], None, pool, self.level, rng)
        if len(steps) < self.level:
            return chain(word.text, word.focus, pool, self.level, rng)[0]
        return word.text[:start] + stem + word.text[end:]


def _level(level: int, language: str) -> type[Difficulty]:
    cls = type(
        f"{language.capitalize()}Level{level}",
        (Difficulty,),
        {
            "name": f"{language}_level{level}",
            "description": f"{level} stacked {'Korean' if language == 'ko' else 'English'} rules per toxic word",
            "level": level,
            "language": language,
            "__module__": __name__,
        },
    )
    return register(cls)


STRATEGIES = {f"{lang}_level{n}": _level(n, lang) for lang in ("ko", "en") for n in (2, 3, 4)}
