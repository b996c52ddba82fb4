"""Look-alike characters: Cyrillic/Greek for Latin, full-width ASCII, half-width Hangul jamo."""

from __future__ import annotations

import random

from content_arena.attacks.base import Strategy, check_rate, pick, pick_positions
from content_arena.attacks.registry import register
from content_arena.hangul import COMPAT_TO_HALFWIDTH, SYLLABLE_FIRST, SYLLABLE_LAST, syllable_to_compat

__all__ = ["LATIN_LOOKALIKES", "Homoglyph", "lookalikes"]

#: Latin letter -> Cyrillic/Greek/IPA characters that render (nearly) the same.
LATIN_LOOKALIKES: dict[str, tuple[str, ...]] = {
    "a": ("а", "α"), "c": ("с",), "d": ("ԁ",), "e": ("е",), "g": ("ɡ",), "h": ("һ",), "i": ("і", "ι"),
    "j": ("ј",), "k": ("κ",), "l": ("ӏ",), "o": ("о", "ο"), "p": ("р", "ρ"), "q": ("ԛ",), "s": ("ѕ",),
    "u": ("υ",), "v": ("ν",), "w": ("ԝ",), "x": ("х", "χ"), "y": ("у",),
    "A": ("А", "Α"), "B": ("В", "Β"), "C": ("С",), "E": ("Е", "Ε"), "H": ("Н", "Η"), "I": ("І", "Ι"),
    "J": ("Ј",), "K": ("К", "Κ"), "M": ("М",), "O": ("О", "Ο"), "P": ("Р", "Ρ"), "S": ("Ѕ",),
    "T": ("Т", "Τ"), "X": ("Х", "Χ"), "Y": ("У",),
}

_FULLWIDTH_OFFSET = 0xFF01 - 0x21


def _build_table() -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for code in range(0x21, 0x7F):
        char = chr(code)
        if char.isalnum():
            table[char] = (*LATIN_LOOKALIKES.get(char, ()), chr(code + _FULLWIDTH_OFFSET))
    for compat, half in COMPAT_TO_HALFWIDTH.items():
        table[compat] = (half,)
    return table


_TABLE = _build_table()


def lookalikes(char: str) -> tuple[str, ...]:
    """Replacements for one character that read the same; ``()`` when there are none."""
    options = _TABLE.get(char)
    if options is None and len(char) == 1 and SYLLABLE_FIRST <= ord(char) <= SYLLABLE_LAST:
        # Syllables are looked up lazily (11,172 of them) and remembered.
        options = _TABLE[char] = ("".join(COMPAT_TO_HALFWIDTH[jamo] for jamo in syllable_to_compat(char)),)
    return options or ()


@register
class Homoglyph(Strategy):
    """Swap about ``rate`` of the eligible characters for look-alikes.

    Latin letters become Cyrillic/Greek twins or full-width forms, digits full-width forms,
    compatibility jamo their half-width forms and Hangul syllables a run of half-width jamo
    (``발`` -> ``ﾲﾡﾩ``), which reads like the syllable spelled out.
    """

    name = "homoglyph"
    description = "look-alike characters: Cyrillic/Greek for Latin, full-width ASCII, half-width jamo"

    def __init__(self, rate: float = 0.5) -> None:
        self.rate = check_rate(rate)

    def transform(self, text: str, rng: random.Random) -> str:
        table = _TABLE
        positions = [index for index, char in enumerate(text) if char in table or "\uac00" <= char <= "\ud7a3"]
        if not positions:
            return text
        chars = list(text)
        for index in pick_positions(positions, self.rate, rng):
            chars[index] = pick(lookalikes(chars[index]), rng)
        return "".join(chars)
