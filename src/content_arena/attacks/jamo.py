"""Hangul jamo tricks: split syllables into typed letters (``ㅆㅣ발``) or into NFD conjoining jamo."""

from __future__ import annotations

import random
import re
import unicodedata

from content_arena.attacks.base import Strategy, check_rate, pick_positions
from content_arena.attacks.registry import register
from content_arena.hangul import compat_table, conjoining_table

__all__ = ["JamoSplit", "NFDJamo", "syllable_positions"]

_SYLLABLE = re.compile("[\uac00-\ud7a3]")
_JAMO_SPLIT_MODES = ("auto", "partial", "full")


def syllable_positions(text: str) -> list[int]:
    """Indices of the precomposed Hangul syllables in ``text``."""
    return [match.start() for match in _SYLLABLE.finditer(text)]


def replace_at(text: str, positions: list[int], table: dict[int, str]) -> str:
    """``text`` with the characters at ``positions`` translated through ``table``."""
    chars = list(text)
    for index in positions:
        chars[index] = table[ord(chars[index])]
    return "".join(chars)


@register
class JamoSplit(Strategy):
    """Write syllables as separate compatibility jamo: ``씨발`` -> ``ㅆㅣ발`` (partial) / ``ㅆㅣㅂㅏㄹ`` (full).

    ``mode="auto"`` picks partial or full per text; partial splits about ``rate`` of the syllables.
    """

    name = "jamo_split"
    description = "split Hangul syllables into compatibility jamo (ㅆㅣ발, ㅆㅣㅂㅏㄹ)"

    def __init__(self, rate: float = 0.5, mode: str = "auto") -> None:
        if mode not in _JAMO_SPLIT_MODES:
            raise ValueError(f"mode must be one of {_JAMO_SPLIT_MODES}, got {mode!r}")
        self.rate = check_rate(rate)
        self.mode = mode

    def transform(self, text: str, rng: random.Random) -> str:
        positions = syllable_positions(text)
        if not positions:
            return text
        mode = self.mode if self.mode != "auto" else ("partial", "full")[rng.random() < 0.5]
        if mode == "full" or len(positions) == 1:
            return text.translate(compat_table())
        return replace_at(text, pick_positions(positions, self.rate, rng), compat_table())


@register
class NFDJamo(Strategy):
    """Canonically decompose (NFD): Hangul becomes conjoining jamo, accents become combining marks.

    The text renders exactly as before, but its code points differ. With ``rate < 1`` only that
    share of the Hangul syllables is decomposed (other text is then left alone).
    """

    name = "nfd"
    description = "NFD: conjoining jamo / combining marks that render identically"

    def __init__(self, rate: float = 1.0) -> None:
        self.rate = check_rate(rate)

    def transform(self, text: str, rng: random.Random) -> str:
        if self.rate >= 1.0:
            return unicodedata.normalize("NFD", text)
        positions = syllable_positions(text)
        if not positions:
            return unicodedata.normalize("NFD", text)
        return replace_at(text, pick_positions(positions, self.rate, rng), conjoining_table())
