"""Korean obfuscation families (after KOTOX, 2025): phonological, iconological, transliteration,
syntactic and pragmatic respellings of a toxic word that a Korean reader still reads at a glance.

=================  ===================  ==========================================================
strategy           family               example (``씨발``, ``병신아``, ``개새끼``, ``죽어``)
=================  ===================  ==========================================================
``ko_consonant``   phonological         tensing/aspiration/final neutralisation: 시발→씨발/시빨, 좆→좃
``ko_vowel``       phonological         ㅐ↔ㅔ, ㅣ→ㅢ/ㅟ, ㅓ↔ㅗ, ㅕ↔ㅛ, ㅜ↔ㅠ: 새끼→세끼, 시발→싀발, 놈→넘
``ko_pronounce``   phonological         spelled as pronounced: 죽어→주거, 병신아→병시나, 축하→추카
``ko_shape``       iconological         jamo written with look-alikes: 시→ㅅl/人ㅣ, 개→7H, 미→口l
``ko_roman``       transliteration      romanisation: 씨발→ssibal/si발, 병신→byungsin
``ko_keyboard``    transliteration      typed with the keyboard in English mode: 시발→tlqkf
``ko_chosung``     pragmatic            initial-consonant abbreviation: 씨발→ㅆㅂ, 병신→ㅂㅅ/ㅂ신
``repeat``         syntactic            lengthening: 씨발→씨이이발/씨바알, fuck→fuuuck
``symbol``         syntactic            symbols/spaces inside the word: 씨@발, 병#신, f!uck
``filler``         pragmatic            emoji and fillers inside/after it: 씨🤬발, 병ㅋ신, fu😡ck
=================  ===================  ==========================================================

Each is a :class:`~content_arena.attacks.transform.Transformation` (usable by the adaptive attacker)
wrapped in a registered :class:`~content_arena.attacks.transform.RuleStrategy`.
"""

from __future__ import annotations

import itertools
import re
from functools import cache

from content_arena.attacks.lexicon import ABBREVIATIONS, chosung
from content_arena.attacks.simple import letter_gaps
from content_arena.attacks.transform import RuleStrategy, Site, Transformation, rule_strategy
from content_arena.hangul import COMPAT_FINALS, COMPAT_INITIALS, COMPAT_MEDIALS, keyboard_decode

__all__ = [
    "KEYBOARD_KEYS",
    "SHAPES",
    "Chosung",
    "ConsonantSwap",
    "Filler",
    "KeyboardTyping",
    "Pronounce",
    "Repeat",
    "Romanize",
    "ShapeLookalike",
    "SymbolInsert",
    "VowelSwap",
    "keyboard_decode",
    "romanize",
]

_FIRST, _LAST = 0xAC00, 0xD7A3


def _is_syllable(char: str) -> bool:
    return _FIRST <= ord(char) <= _LAST


def _split(char: str) -> tuple[int, int, int]:
    code = ord(char) - _FIRST
    return code // 588, (code // 28) % 21, code % 28


def _join(initial: int, medial: int, final: int = 0) -> str:
    return chr(_FIRST + (initial * 21 + medial) * 28 + final)


def _index_map(table: str | tuple[str, ...], pairs: dict[str, str]) -> dict[int, tuple[int, ...]]:
    return {table.index(source): tuple(table.index(t) for t in targets) for source, targets in pairs.items()}


def _syllable_sites(word: str, options) -> list[Site]:
    return [(i, i + 1, options(char)) for i, char in enumerate(word) if _is_syllable(char)]


_I = COMPAT_INITIALS.index
_M = COMPAT_MEDIALS.index
_F = COMPAT_FINALS.index
_SILENT = _I("ㅇ")

# --------------------------------------------------------------------------- phonological

_INITIAL_SWAPS = _index_map(COMPAT_INITIALS, {
    "ㄱ": "ㄲㅋ", "ㄲ": "ㄱ", "ㄷ": "ㄸㅌ", "ㄸ": "ㄷ", "ㅂ": "ㅃㅍ", "ㅃ": "ㅂ", "ㅅ": "ㅆ", "ㅆ": "ㅅ",
    "ㅈ": "ㅉㅊ", "ㅉ": "ㅈ", "ㅊ": "ㅉ", "ㅋ": "ㄲ", "ㅌ": "ㄸ", "ㅍ": "ㅃ",
})
# Finals that sound the same at the end of a syllable (neutralisation), plus the 닥쳐→닭쳐 pun.
_FINAL_SWAPS = {
    _F(a): tuple(_F(b) for b in bs)
    for a, bs in {
        "ㄱ": ("ㅋ", "ㄲ", "ㄺ"), "ㄲ": ("ㄱ",), "ㅋ": ("ㄱ",), "ㄷ": ("ㅅ",), "ㅅ": ("ㄷ", "ㅈ"), "ㅆ": ("ㅅ",),
        "ㅈ": ("ㅅ", "ㄷ"), "ㅊ": ("ㅅ",), "ㅌ": ("ㅅ",), "ㅂ": ("ㅍ",), "ㅍ": ("ㅂ",),
    }.items()
}
_MEDIAL_SWAPS = _index_map(COMPAT_MEDIALS, {
    "ㅐ": "ㅔ", "ㅔ": "ㅐ", "ㅒ": "ㅖ", "ㅖ": "ㅒ", "ㅙ": "ㅞㅚ", "ㅚ": "ㅙㅞ", "ㅞ": "ㅙㅚ", "ㅣ": "ㅢㅟ",
    "ㅢ": "ㅣ", "ㅟ": "ㅣ", "ㅗ": "ㅓ", "ㅓ": "ㅗ", "ㅕ": "ㅛ", "ㅛ": "ㅕ", "ㅜ": "ㅠ", "ㅠ": "ㅜ",
})
# After ㅈ/ㅉ/ㅊ, ㅕ and ㅓ sound the same (꺼져 = 꺼저, 닥쳐 = 닥처).
_PALATAL = {_I("ㅈ"), _I("ㅉ"), _I("ㅊ")}
_YEO, _EO = _M("ㅕ"), _M("ㅓ")


@cache
def _consonant_options(char: str) -> tuple[str, ...]:
    initial, medial, final = _split(char)
    out = [_join(other, medial, final) for other in _INITIAL_SWAPS.get(initial, ())]
    out += [_join(initial, medial, other) for other in _FINAL_SWAPS.get(final, ())]
    return tuple(out)


@cache
def _vowel_options(char: str) -> tuple[str, ...]:
    initial, medial, final = _split(char)
    out = [_join(initial, other, final) for other in _MEDIAL_SWAPS.get(medial, ())]
    if initial == _SILENT and medial == _M("ㅣ"):
        out = [_join(initial, _M("ㅢ"), final)]  # 이→의 reads alike, 이→위 does not
    if initial in _PALATAL and medial in (_YEO, _EO):
        out.insert(0, _join(initial, _EO if medial == _YEO else _YEO, final))
    return tuple(dict.fromkeys(out))


class ConsonantSwap(Transformation):
    """Tensing, de-tensing and aspiration of initials (시→씨, 발→빨/팔) and final neutralisation (좆→좃)."""

    name = "ko_consonant"
    description = "consonant tensing/aspiration and final neutralisation (시발→씨발/시빨, 좆→좃)"
    family, script, stage = "phonological", "ko", 1

    def find_sites(self, word: str) -> list[Site]:
        return _syllable_sites(word, _consonant_options)


class VowelSwap(Transformation):
    """Vowels that sound (nearly) alike or are common slang spellings: 새→세, 시→싀/쉬, 놈→넘, 져→저."""

    name = "ko_vowel"
    description = "vowel swaps ㅐ↔ㅔ, ㅣ→ㅢ/ㅟ, ㅓ↔ㅗ, ㅕ↔ㅛ, ㅜ↔ㅠ (새끼→세끼, 놈→넘)"
    family, script, stage = "phonological", "ko", 2

    def find_sites(self, word: str) -> list[Site]:
        return _syllable_sites(word, _vowel_options)


# Compound finals split into (stays, moves); ㅎ never moves (it is dropped: 않아→아나, 싫어→시러).
_COMPOUND_SPLIT = {
    _F(c): (_F(a), b) for c, a, b in (
        ("ㄳ", "ㄱ", "ㅅ"), ("ㄵ", "ㄴ", "ㅈ"), ("ㄶ", "", "ㄴ"), ("ㄺ", "ㄹ", "ㄱ"), ("ㄻ", "ㄹ", "ㅁ"),
        ("ㄼ", "ㄹ", "ㅂ"), ("ㄽ", "ㄹ", "ㅅ"), ("ㄾ", "ㄹ", "ㅌ"), ("ㄿ", "ㄹ", "ㅍ"), ("ㅀ", "", "ㄹ"), ("ㅄ", "ㅂ", "ㅅ"),
    )
}
_ASPIRATED = {_I("ㄱ"): _I("ㅋ"), _I("ㄷ"): _I("ㅌ"), _I("ㅂ"): _I("ㅍ"), _I("ㅈ"): _I("ㅊ")}
_FINAL_ASPIRABLE = {_F("ㄱ"): _I("ㄱ"), _F("ㄷ"): _I("ㄷ"), _F("ㅂ"): _I("ㅂ"), _F("ㅈ"): _I("ㅈ")}
_NASAL = {
    **dict.fromkeys((_F("ㄱ"), _F("ㄲ"), _F("ㅋ"), _F("ㄺ")), _F("ㅇ")),
    **dict.fromkeys((_F("ㄷ"), _F("ㅅ"), _F("ㅆ"), _F("ㅈ"), _F("ㅊ"), _F("ㅌ")), _F("ㄴ")),
    **dict.fromkeys((_F("ㅂ"), _F("ㅍ"), _F("ㅄ")), _F("ㅁ")),
}
_TENSE = {_I("ㄱ"): _I("ㄲ"), _I("ㄷ"): _I("ㄸ"), _I("ㅂ"): _I("ㅃ"), _I("ㅅ"): _I("ㅆ"), _I("ㅈ"): _I("ㅉ")}
_OBSTRUENT_FINALS = set(_NASAL)
_H_INITIAL, _H_FINAL = _I("ㅎ"), _F("ㅎ")
_NASAL_INITIALS = {_I("ㄴ"), _I("ㅁ")}


def _pronounced(first: str, second: str) -> str | None:
    """The two syllables spelled as they are pronounced, or ``None`` when no rule applies."""
    i1, m1, f1 = _split(first)
    i2, m2, f2 = _split(second)
    if not f1:
        return None
    if i2 == _SILENT:  # liaison: 죽어→주거; ㅎ drops: 좋아→조아
        if f1 == _F("ㅇ"):
            return None
        if f1 == _H_FINAL:
            return _join(i1, m1, 0) + second
        if f1 in _COMPOUND_SPLIT:
            stays, moves = _COMPOUND_SPLIT[f1]
            return _join(i1, m1, stays) + _join(_I(moves), m2, f2)
        return _join(i1, m1, 0) + _join(_I(COMPAT_FINALS[f1]), m2, f2)
    if i2 == _H_INITIAL and f1 in _FINAL_ASPIRABLE:  # 축하→추카
        return _join(i1, m1, 0) + _join(_ASPIRATED[_FINAL_ASPIRABLE[f1]], m2, f2)
    if f1 == _H_FINAL and i2 in _ASPIRATED:  # 좋다→조타
        return _join(i1, m1, 0) + _join(_ASPIRATED[i2], m2, f2)
    if i2 in _NASAL_INITIALS and f1 in _NASAL:  # 먹는→멍는
        return _join(i1, m1, _NASAL[f1]) + second
    if i2 in _TENSE and f1 in _OBSTRUENT_FINALS:  # 학교→학꾜
        return first + _join(_TENSE[i2], m2, f2)
    return None


class Pronounce(Transformation):
    """Spell two syllables as they sound: liaison (죽어→주거, 병신아→병시나), aspiration (축하→추카),
    nasalisation (먹는→멍는), tensification (학교→학꾜) and the silent ㅎ (좋아→조아)."""

    name = "ko_pronounce"
    description = "spelled as pronounced: 죽어→주거, 병신아→병시나, 축하→추카, 먹는→멍는"
    family, script, stage = "phonological", "ko", 0
    default_rate = 0.7

    def find_sites(self, word: str) -> list[Site]:
        sites: list[Site] = []
        for i in range(len(word) - 1):
            if _is_syllable(word[i]) and _is_syllable(word[i + 1]):
                spelled = _pronounced(word[i], word[i + 1])
                if spelled is not None:
                    sites.append((i, i + 2, (spelled,)))
        return sites


# --------------------------------------------------------------------------- iconological

#: Compatibility jamo -> characters of (nearly) the same shape.
SHAPES: dict[str, tuple[str, ...]] = {
    "ㄱ": ("7",), "ㄲ": ("77",), "ㄴ": ("L",), "ㄷ": ("匚",), "ㄹ": ("2", "己"), "ㅁ": ("口", "ロ"),
    "ㅅ": ("人",), "ㅆ": ("人人",), "ㅇ": ("o", "0"), "ㅈ": ("ス",),
    "ㅏ": ("ト", "r"), "ㅐ": ("H",), "ㅓ": ("┤",), "ㅗ": ("⊥",), "ㅜ": ("T",), "ㅠ": ("π",),
    "ㅡ": ("一", "_"), "ㅣ": ("l", "1", "|"), "ㅢ": ("一l",), "ㅟ": ("Tl",), "ㅚ": ("⊥l",),
}
_MAX_SHAPES = 6


@cache
def _shape_options(char: str) -> tuple[str, ...]:
    initial, medial, final = _split(char)
    jamo = [COMPAT_INITIALS[initial], COMPAT_MEDIALS[medial]] + ([COMPAT_FINALS[final]] if final else [])
    choices = [(j, *SHAPES.get(j, ())) for j in jamo]
    # Keep a Hangul jamo or a non-letter look-alike in the spelling, so it still reads as Korean
    # (이 -> 0l or oㅣ, never the English-looking "ol").
    combos = [
        c for c in itertools.product(*choices)
        if any(a != b for a, b in zip(c, jamo, strict=True)) and not all(part.isascii() and part.isalpha() for part in c)
    ]
    # Fewest look-alikes first: those read best.
    combos.sort(key=lambda c: sum(a != b for a, b in zip(c, jamo, strict=True)))
    return tuple("".join(c) for c in combos[:_MAX_SHAPES])


class ShapeLookalike(Transformation):
    """Write a syllable as its jamo with look-alike characters: 시→ㅅl/人ㅣ, 개→7H, 미→口l, 발→ㅂト2."""

    name = "ko_shape"
    description = "jamo written with look-alike characters (시→ㅅl, 개→7H, 미→口l)"
    family, script, stage, max_sites = "iconological", "ko", 3, 2
    default_rate = 0.4

    def find_sites(self, word: str) -> list[Site]:
        sites = _syllable_sites(word, _shape_options)
        if len(sites) == 1 and not _HANGUL_OR_JAMO.search(word[: sites[0][0]] + word[sites[0][1] :]):
            # A lone syllable needs a jamo or a non-Latin look-alike left to still look Korean (이 -> oㅣ, not o1).
            start, end, options = sites[0]
            kept = tuple(o for o in options if _HANGUL_OR_JAMO.search(o) or any(ord(c) > 0x2000 for c in o))
            sites = [(start, end, kept)] if kept else []
        return sites


# --------------------------------------------------------------------------- transliteration

_INITIAL_ROMAN = (
    ("g", "k"), ("kk", "gg"), ("n",), ("d", "t"), ("tt", "dd"), ("r", "l"), ("m",), ("b", "p"), ("pp", "bb"),
    ("s",), ("ss", "s"), ("",), ("j",), ("jj",), ("ch",), ("k",), ("t",), ("p",), ("h",),
)
_MEDIAL_ROMAN = (
    ("a",), ("ae", "e"), ("ya",), ("yae",), ("eo", "u"), ("e",), ("yeo", "yu"), ("ye",), ("o",), ("wa",),
    ("wae",), ("oe", "we"), ("yo",), ("u", "oo"), ("wo",), ("we",), ("wi",), ("yu",), ("eu", "u"),
    ("ui", "eui"), ("i",),
)
_FINAL_ROMAN = (
    ("",), ("k", "g"), ("k",), ("k",), ("n",), ("n",), ("n",), ("t",), ("l",), ("k",), ("m",), ("l",), ("l",),
    ("l",), ("p",), ("l",), ("m",), ("p", "b"), ("p",), ("t", "s"), ("t", "ss"), ("ng",), ("t",), ("t",),
    ("k",), ("t",), ("p",), ("t",),
)


def romanize(char: str, variant: int = 0) -> str:
    """Romanisation of one syllable: ``variant`` 0 is the revised romanisation (병 -> byeong), 1 the
    common net spelling of the vowel and final (byung), 2 the other spelling of the initial (pyeong)."""
    initial, medial, final = _split(char)
    choice = ((0, 0, 0), (0, 1, 1), (1, 0, 0))[variant]
    parts = (_INITIAL_ROMAN[initial], _MEDIAL_ROMAN[medial], _FINAL_ROMAN[final])
    return "".join(p[min(c, len(p) - 1)] for p, c in zip(parts, choice, strict=True))


@cache
def _roman_options(char: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(romanize(char, variant) for variant in range(3)))


class Romanize(Transformation):
    """Romanise syllables: 씨발→ssibal / si발, 병신→byeongsin / byungsin."""

    name = "ko_roman"
    description = "romanised syllables (씨발→ssibal/si발, 병신→byungsin)"
    family, script, stage = "transliteration", "ko", 3
    default_rate = 0.8

    def find_sites(self, word: str) -> list[Site]:
        return _syllable_sites(word, _roman_options)


#: Compatibility jamo -> the key that types it on the standard (2-set) Korean keyboard.
KEYBOARD_KEYS: dict[str, str] = {
    **dict(zip("ㅂㅈㄷㄱㅅㅛㅕㅑㅐㅔㅁㄴㅇㄹㅎㅗㅓㅏㅣㅋㅌㅊㅍㅠㅜㅡ", "qwertyuiopasdfghjklzxcvbnm", strict=True)),
    "ㅃ": "Q", "ㅉ": "W", "ㄸ": "E", "ㄲ": "R", "ㅆ": "T", "ㅒ": "O", "ㅖ": "P",
    "ㅘ": "hk", "ㅙ": "ho", "ㅚ": "hl", "ㅝ": "nj", "ㅞ": "np", "ㅟ": "nl", "ㅢ": "ml",
    "ㄳ": "rt", "ㄵ": "sw", "ㄶ": "sg", "ㄺ": "fr", "ㄻ": "fa", "ㄼ": "fq", "ㄽ": "ft", "ㄾ": "fx", "ㄿ": "fv",
    "ㅀ": "fg", "ㅄ": "qt",
}


def _keyboard(char: str) -> str:
    initial, medial, final = _split(char)
    keys = KEYBOARD_KEYS[COMPAT_INITIALS[initial]] + KEYBOARD_KEYS[COMPAT_MEDIALS[medial]]
    return keys + KEYBOARD_KEYS[COMPAT_FINALS[final]] if final else keys


class KeyboardTyping(Transformation):
    """The stem as typed with the keyboard left in English mode: 시발→tlqkf, 병신→qudtls.

    Korean users read these back by the keyboard layout (:func:`content_arena.hangul.keyboard_decode`
    is the reverse table; the defender's normaliser applies it to Korean texts).
    """

    name = "ko_keyboard"
    description = "typed in English keyboard mode (시발→tlqkf, 병신→qudtls)"
    family, script, stage, lexical = "transliteration", "ko", 3, True

    def find_sites(self, word: str) -> list[Site]:
        runs = [match.span() for match in re.finditer("[\uac00-\ud7a3]+", word)]
        return [(s, e, ("".join(_keyboard(c) for c in word[s:e]),)) for s, e in runs]

    def focus_sites(self, word: str, focus):
        # One site per syllable run; narrowed to the focus so only the stem is typed out.
        if focus is None:
            return self.sites(word)
        s, e = focus
        stem = word[s:e]
        if stem and all(_is_syllable(c) for c in stem):
            return ((s, e, ("".join(_keyboard(c) for c in stem),)),)
        return super().focus_sites(word, focus)


# --------------------------------------------------------------------------- pragmatic: abbreviation

_ABBREVIATED_RE = re.compile("|".join(sorted((s for v in ABBREVIATIONS.values() for s in v), key=len, reverse=True)))


class Chosung(Transformation):
    """Initial-consonant abbreviation of a known stem: 씨발→ㅆㅂ, 병신→ㅂㅅ/ㅂ신, 개새끼→ㄱㅅ끼.

    Only stems Korean readers know abbreviated are changed (the reverse table
    :data:`~content_arena.attacks.lexicon.ABBREVIATIONS`).
    """

    name = "ko_chosung"
    description = "initial-consonant abbreviation of known insults (씨발→ㅆㅂ, 병신→ㅂㅅ)"
    family, script, stage, lexical = "pragmatic", "ko", 3, True

    def find_sites(self, word: str) -> list[Site]:
        sites: list[Site] = []
        for match in _ABBREVIATED_RE.finditer(word):
            stem = match.group()
            options = [chosung(stem)]
            if len(stem) > 1:
                options.append(chosung(stem[0]) + stem[1:])
            sites.append((match.start(), match.end(), tuple(options)))
        return sites


# --------------------------------------------------------------------------- syntactic / pragmatic insertions

# The vowel a lengthened syllable repeats (ㅇ + the last simple vowel it ends on): 씨→씨이, 죠→죠오.
_ECHO = {_M(m): _join(_SILENT, _M(e)) for m, e in zip(
    "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ", "ㅏㅐㅏㅐㅓㅔㅓㅔㅗㅏㅐㅣㅗㅜㅓㅔㅣㅜㅡㅣㅣ", strict=True
)}
_LATIN_VOWELS = frozenset("aeiouyAEIOUY")


@cache
def _lengthen(char: str) -> tuple[str, ...]:
    initial, medial, final = _split(char)
    echo = _ECHO[medial]
    if not final:
        return (char + echo, char + echo + echo)
    open_syllable = _join(initial, medial, 0)
    _, echo_medial, _ = _split(echo)
    return (open_syllable + _join(_SILENT, echo_medial, final), open_syllable + echo + _join(_SILENT, echo_medial, final))


class Repeat(Transformation):
    """Lengthen a syllable or letter: 씨발→씨이이발/씨바알, 죽어→주욱어, fuck→fuuuck/fuckkk."""

    name = "repeat"
    description = "repeated vowels/letters (씨발→씨이이발, 발→바알, fuck→fuuuck)"
    family, stage, max_sites = "syntactic", 4, 2

    def find_sites(self, word: str) -> list[Site]:
        sites: list[Site] = []
        last = len(word) - 1
        for i, char in enumerate(word):
            if _is_syllable(char):
                sites.append((i, i + 1, _lengthen(char)))
            elif char.isascii() and char.isalpha() and (char in _LATIN_VOWELS or i == last):
                sites.append((i, i + 1, (char * 2, char * 3)))
        return sites


#: Symbols (and spaces) inserted inside a word; most are not separators the normaliser removes.
SYMBOLS: tuple[str, ...] = ("@", "#", "!", "^", "♡", "☆", "%", "&", " ", ".")
#: Emoji and Korean fillers (laughter ㅋ/ㅎ, tilde) inserted inside or after a word.
FILLERS_KO: tuple[str, ...] = ("ㅋ", "ㅋㅋ", "ㅎ", "~", "🤬", "😡", "💢", "🖕", "😂", "🔥", "💩")
FILLERS_EN: tuple[str, ...] = ("🤬", "😡", "💢", "🖕", "😂", "🔥", "💩", "~")
_HANGUL_OR_JAMO = re.compile("[\uac00-\ud7a3\u3131-\u318e]")


class SymbolInsert(Transformation):
    """Symbols or spaces between the letters of a word: 씨@발, 병#신, f!uck, s h i t."""

    name = "symbol"
    description = "symbols or spaces between the letters of a word (씨@발, f!uck)"
    family, stage, max_sites = "syntactic", 5, 2

    def find_sites(self, word: str) -> list[Site]:
        return [(gap, gap, SYMBOLS) for gap in letter_gaps(word)]


class Filler(Transformation):
    """Emoji and fillers inside or right after a word: 씨🤬발, 병ㅋ신, 꺼져ㅋㅋ, fu😡ck."""

    name = "filler"
    description = "emoji and fillers inside/after a word (씨🤬발, 병ㅋ신, fu😡ck)"
    family, stage, max_sites = "pragmatic", 6, 1

    def find_sites(self, word: str) -> list[Site]:
        fillers = FILLERS_KO if _HANGUL_OR_JAMO.search(word) else FILLERS_EN
        gaps = letter_gaps(word)
        if not gaps and not any(c.isalnum() for c in word):
            return []
        return [(gap, gap, fillers) for gap in gaps] + [(len(word), len(word), fillers)]


# --------------------------------------------------------------------------- registered strategies


KOREAN_TRANSFORMATIONS: tuple[type[Transformation], ...] = (
    ConsonantSwap, VowelSwap, Pronounce, ShapeLookalike, Romanize, KeyboardTyping, Chosung,
)
SHARED_TRANSFORMATIONS: tuple[type[Transformation], ...] = (Repeat, SymbolInsert, Filler)
STRATEGIES: dict[str, type[RuleStrategy]] = {
    t.name: rule_strategy(t) for t in (*KOREAN_TRANSFORMATIONS, *SHARED_TRANSFORMATIONS)
}
