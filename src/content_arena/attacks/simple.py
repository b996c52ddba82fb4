"""Insertion attacks: invisible characters and visible separators between letters."""

from __future__ import annotations

import random
import re

from content_arena.attacks.base import Strategy, check_rate, pick, pick_positions
from content_arena.attacks.registry import register

__all__ = ["INVISIBLE_INSERTS", "SEPARATORS", "InvisibleInsert", "Spacing", "inner_gaps", "insert_at", "letter_gaps"]

#: Characters that render as nothing (or only steer joining/line breaking).
INVISIBLE_INSERTS: tuple[str, ...] = (
    "\u200b",  # zero-width space
    "\u200c",  # zero-width non-joiner
    "\u200d",  # zero-width joiner
    "\u00ad",  # soft hyphen
    "\u2060",  # word joiner
    "\ufeff",  # zero-width no-break space
    "\ufe0f",  # variation selector-16
    "\ufe00",  # variation selector-1
)

#: Separators a reader skips over when they appear between the letters of a word.
SEPARATORS: tuple[str, ...] = (" ", ".", "*", "_", "-", ",", " . ", "·", "~", "/")

_NON_SPACE_RUN = re.compile(r"\S{2,}")
_LETTER_RUN = re.compile(r"[^\W_]{2,}")
_JAMO = re.compile("[\u3131-\u3163\u1160-\u11ff]")
# Between two letters/digits (Hangul included), but never inside one spelled-out syllable: not before
# a jamo vowel or a conjoining vowel/final, and not before a compatibility consonant that closes the
# syllable (a consonant after a vowel and not followed by a vowel), so "ㅂㅏㄹ" stays together.
_LETTER_GAP = re.compile(
    r"(?<=[^\W_])(?=[^\W_])"
    r"(?![\u314f-\u3163\u1160-\u11ff])"
    r"(?!(?<=[\u314f-\u3163])[\u3131-\u314e](?![\u314f-\u3163]))"
)


def inner_gaps(text: str, runs: re.Pattern[str]) -> list[int]:
    """Indices ``i`` with ``text[i-1]`` and ``text[i]`` inside one match of ``runs``."""
    gaps: list[int] = []
    for match in runs.finditer(text):
        gaps.extend(range(match.start() + 1, match.end()))
    return gaps


def letter_gaps(text: str) -> list[int]:
    """Gaps between two letters/digits that do not split a spelled-out syllable."""
    if _JAMO.search(text) is None:
        return inner_gaps(text, _LETTER_RUN)
    return [match.start() for match in _LETTER_GAP.finditer(text)]


def insert_at(text: str, gaps: list[int], pieces: list[str]) -> str:
    """Insert ``pieces[k]`` before ``text[gaps[k]]`` (``gaps`` ascending)."""
    out: list[str] = []
    previous = 0
    for gap, piece in zip(gaps, pieces, strict=True):
        out.append(text[previous:gap])
        out.append(piece)
        previous = gap
    out.append(text[previous:])
    return "".join(out)


@register
class InvisibleInsert(Strategy):
    """Insert zero-width characters, soft hyphens, word joiners or variation selectors inside words."""

    name = "invisible"
    description = "zero-width / soft hyphen / word joiner / variation selectors between characters"

    def __init__(self, rate: float = 0.5) -> None:
        self.rate = check_rate(rate)

    def transform(self, text: str, rng: random.Random) -> str:
        gaps = pick_positions(inner_gaps(text, _NON_SPACE_RUN), self.rate, rng)
        if not gaps:
            return text
        return insert_at(text, gaps, [pick(INVISIBLE_INSERTS, rng) for _ in gaps])


@register
class Spacing(Strategy):
    """Break words apart with spaces or symbols: ``시 발``, ``씨.발.놈``, ``f*u*c*k``.

    One separator is used per text. Half of the time every gap of one word is separated (the
    classic ``시 발 놈``), otherwise about ``rate`` of all letter gaps in the text.
    """

    name = "spacing"
    description = "spaces or symbols (. , * _ -) between syllables/letters"

    def __init__(self, rate: float = 0.5) -> None:
        self.rate = check_rate(rate)

    def transform(self, text: str, rng: random.Random) -> str:
        gaps = letter_gaps(text)
        if not gaps:
            return text
        separator = pick(SEPARATORS, rng)
        if rng.random() < 0.5:
            # Every gap of the word around one random gap (so the chosen word always has a gap).
            anchor = gaps[int(rng.random() * len(gaps))]
            start, end = next(m.span() for m in _LETTER_RUN.finditer(text) if m.start() < anchor < m.end())
            chosen = [gap for gap in gaps if start < gap < end]
        else:
            chosen = pick_positions(gaps, self.rate, rng)
        return insert_at(text, chosen, [separator] * len(chosen))
