"""A simple human-readability proxy: does an obfuscated word still *read* like the original?

:func:`reading_key` maps a word to what a reader hears, as a short Latin string, in steps:

1. :func:`~content_arena.defender.normalizer.normalize` undoes the unicode tricks (invisible
   characters, NFD/split jamo, full-width and Cyrillic look-alikes) and lowercases;
2. inside Korean words (any Hangul or jamo), look-alike characters become the jamo they imitate
   (``l``/``1``/``|`` -> ``ㅣ``, ``7`` -> ``ㄱ``, ``H`` -> ``ㅐ``, ``人`` -> ``ㅅ`` ...); elsewhere leet digits
   and symbols become letters (``4`` -> ``a``, ``$`` -> ``s``, ``0`` -> ``o``);
3. Hangul is romanised by *sound class*: tense and aspirated consonants fold to the plain one
   (ㅅ/ㅆ -> s, ㅂ/ㅃ/ㅍ -> b), finals are neutralised (ㅅ/ㅈ/ㅊ/ㅌ/ㅎ -> d), confusable vowels merge
   (ㅐ/ㅔ -> e, ㅓ/ㅗ -> o, ㅕ/ㅛ -> yo), the silent ㅇ disappears - so ``씨발``, ``시빨``, ``ssibal`` and
   ``ㅅl발`` all give ``sibal``;
4. Latin letters fold into the same classes (f/p/v/b -> b, c/k/q/g -> g, t/d -> d, z -> s, ph -> b,
   eo -> o ...), so romanised Korean and Hangul-spelled English (``퍽`` ~ ``fuck``) meet;
5. everything that is not a letter goes (spaces, symbols, emoji), and repeated letters collapse
   (``씨이이발`` -> ``sibal``, ``fuuuck`` -> ``bug``).

:func:`reading_distance` is the optimal-string-alignment (Damerau) distance between two keys divided
by the length of the original key; :func:`is_readable` holds when it is at most
:data:`READABLE_DISTANCE` (0.5: at most one sound in two changed). Abbreviations (``ㅅㅂ``) and
keyboard typing (``tlqkf``) read through a reverse table instead - see :func:`recoverable`.
"""

from __future__ import annotations

import re
from functools import lru_cache, partial

__all__ = [
    "READABLE_DISTANCE",
    "edit_distance",
    "is_readable",
    "jamo_form",
    "letters",
    "reading_distance",
    "reading_key",
    "recoverable",
]

READABLE_DISTANCE = 0.5


@lru_cache(maxsize=1)
def _normalizer():
    # Imported on first use: importing content_arena.defender pulls in torch and transformers.
    from content_arena.defender.normalizer import normalize

    # Without reading keyboard-mode words back: recoverable() has its own reverse table for those.
    return partial(normalize, keyboard=False)


def _normalize(text: str) -> str:
    return _normalizer()(text)


_INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_MEDIALS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_FINALS = ("",) + tuple("ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ")

_ONSET = dict(zip(_INITIALS, ("g", "g", "n", "d", "d", "l", "m", "b", "b", "s", "s", "", "j", "j", "j", "g", "d",
                              "b", "h"), strict=True))
_VOWEL = dict(zip(_MEDIALS, ("a", "e", "ya", "ye", "o", "e", "yo", "ye", "o", "wa", "we", "we", "yo", "u", "wo",
                             "we", "wi", "yu", "u", "i", "i"), strict=True))
_CODA = dict(zip(_FINALS, ("", "g", "g", "g", "n", "n", "n", "d", "l", "g", "m", "l", "l", "l", "b", "l", "m", "b",
                           "b", "d", "d", "ng", "d", "d", "g", "d", "b", "d"), strict=True))
_COMPAT = {**_ONSET, **{f: _CODA[f] for f in _FINALS if f and f not in _ONSET}, **_VOWEL}

#: Look-alike characters read as jamo inside Korean words (after normalisation, so lower case).
_KO_LOOKALIKE = {
    "l": "ㅣ", "1": "ㅣ", "|": "ㅣ", "i": "ㅣ", "!": "ㅣ", "7": "ㄱ", "2": "ㄹ", "己": "ㄹ", "口": "ㅁ", "ロ": "ㅁ",
    "人": "ㅅ", "o": "ㅇ", "0": "ㅇ", "ス": "ㅈ", "匚": "ㄷ", "h": "ㅐ", "r": "ㅏ", "ト": "ㅏ", "┤": "ㅓ", "⊥": "ㅗ",
    "t": "ㅜ", "π": "ㅠ", "一": "ㅡ", "_": "ㅡ",
}
_FILLER_JAMO = frozenset("ㅋㅎㅠㅜ")
#: Characters that read as a vowel jamo (to tell a spelled-out syllable ㅋH from a filler ㅋ).
_VOWEL_OF = {**{v: v for v in _MEDIALS}, **{k: v for k, v in _KO_LOOKALIKE.items() if v in _MEDIALS}}
#: Leet digits/symbols read as letters elsewhere.
_LEET = {"4": "a", "@": "a", "3": "e", "1": "i", "!": "i", "0": "o", "5": "s", "$": "s", "7": "t", "+": "t",
         "8": "b", "9": "g", "|": "l", "2": "z"}
_DIGRAPHS = (("ph", "b"), ("ck", "g"), ("sh", "s"), ("ch", "j"), ("th", "d"), ("eo", "o"), ("ae", "e"),
             ("eu", "u"), ("oo", "u"), ("ee", "i"), ("ui", "i"))
_LATIN_CLASS = str.maketrans({"f": "b", "p": "b", "v": "b", "c": "g", "k": "g", "q": "g", "t": "d", "z": "s",
                              "r": "l", "x": "gs"})


def _is_syllable(char: str) -> bool:
    return "\uac00" <= char <= "\ud7a3"


def _is_jamo(char: str) -> bool:
    return "\u3131" <= char <= "\u3163"


def _syllable_key(char: str) -> str:
    code = ord(char) - 0xAC00
    return _ONSET[_INITIALS[code // 588]] + _VOWEL[_MEDIALS[(code // 28) % 21]] + _CODA[_FINALS[code % 28]]


#: Each Hangul syllable's key, for str.translate.
_SYLLABLE_KEYS = {code: _syllable_key(chr(code)) for code in range(0xAC00, 0xD7A4)}
_VOWEL_DIGRAPHS = tuple((d, sound) for d, sound in _DIGRAPHS if not set(d) - set("aeiouwy"))
#: Marks that never read as a sound, nor as a look-alike jamo, nor make a neighbour read as one.
_SILENT_MARKS = "".join(c for c in ".,?~\"'()[]{}<>^:;*#%&=/\\-♡♥…·" if c not in _KO_LOOKALIKE and c not in _LEET)
_PLAIN_SYLLABLES = re.compile(f"[{re.escape(_SILENT_MARKS)}]*([\uac00-\ud7a3]+)[{re.escape(_SILENT_MARKS)}]*")
_LEET_TABLE = str.maketrans(_LEET)
_NOT_LATIN = re.compile("[^A-Za-z]+")
_REPEATS = re.compile(r"(.)\1+")


def _anchors(char: str) -> bool:
    """Characters that make neighbouring Latin look-alikes read as jamo (ㅅl, 7H, ㅂr2)."""
    return _is_syllable(char) or _is_jamo(char) or (char in _KO_LOOKALIKE and not char.isalpha())


def _latin_lookalike(char: str) -> bool:
    return char in _KO_LOOKALIKE and char.isalpha()


def _korean_key(text: str) -> str:
    out: list[str] = []
    previous_vowel = False
    size = len(text)
    as_jamo_until = -1  # end of the current run of Latin look-alikes that read as jamo
    for index, char in enumerate(text):
        if _is_syllable(char):
            out.append(_syllable_key(char))
            previous_vowel = False
            continue
        jamo = char if _is_jamo(char) else _KO_LOOKALIKE.get(char)
        if jamo is not None and _latin_lookalike(char) and index >= as_jamo_until:
            # A run of Latin look-alikes (l, H, r, o ...) imitates jamo only between Hangul or other
            # look-alikes on both sides (the text's ends count as neutral): ㅅl발, 7H, ㅂr2 but not kkeo져.
            end = index
            while end < size and _latin_lookalike(text[end]):
                end += 1
            left = text[index - 1] if index else None
            right = text[end] if end < size else None
            neutral_or_anchor = all(side is None or _anchors(side) for side in (left, right))
            if neutral_or_anchor and (left is not None or right is not None):
                as_jamo_until = end
        if jamo is not None and _latin_lookalike(char) and index >= as_jamo_until:
            jamo = None
        if jamo in _FILLER_JAMO and (index + 1 >= size or _VOWEL_OF.get(text[index + 1]) is None):
            previous_vowel = False  # laughter/crying fillers (ㅋㅋ, ㅎㅎ, ㅠㅠ) are not read as sounds
            continue
        if jamo is not None:
            if jamo == "ㅇ" and previous_vowel:
                out.append("ng")  # a spelled-out final ㅇ (ㅂㅕo -> byong)
            else:
                out.append(_COMPAT.get(jamo, ""))
            previous_vowel = jamo in _VOWEL
        elif char.isascii() and char.isalpha():
            out.append(char)
            previous_vowel = char in "aeiouy"
        else:
            previous_vowel = False
    return _latin_fold("".join(out))


def _latin_fold(text: str) -> str:
    for digraph, sound in _DIGRAPHS:
        text = text.replace(digraph, sound)
    return text.translate(_LATIN_CLASS)


@lru_cache(maxsize=65_536)
def reading_key(text: str) -> str:
    """What a reader hears in ``text``, as a short Latin key (see the module docstring)."""
    return _key_of(_normalize(text))


def normalized_reading_key(text: str) -> str:
    """:func:`reading_key` of a text that has been through the defender's normaliser already (the word
    recogniser's words): the same key without normalising it a second time. Not cached: the recogniser
    caches what each word reads as, so a cache here would only hold the same words twice."""
    return _key_of(text)


def _key_of(text: str) -> str:
    # Most words are whole syllables with at most punctuation around them; their key is a table lookup
    # per syllable, the same key the character walk of _korean_key gives.
    syllables = _PLAIN_SYLLABLES.fullmatch(text)
    if syllables is not None:
        key = syllables[1].translate(_SYLLABLE_KEYS)
        # Syllable keys hold none of the letters _LATIN_CLASS moves; only vowels meeting across a silent ㅇ
        # (게어 -> geo) make a digraph.
        for digraph, sound in _VOWEL_DIGRAPHS:
            if digraph in key:
                key = key.replace(digraph, sound)
    elif any(_is_syllable(c) or _is_jamo(c) for c in text):
        key = _korean_key(text)
    else:
        key = _latin_fold(_NOT_LATIN.sub("", text.translate(_LEET_TABLE)))
    # Most keys have no repeated letter, and searching costs a fraction of substituting.
    return key if _REPEATS.search(key) is None else _REPEATS.sub(r"\1", key)


def edit_distance(a: str | tuple, b: str | tuple) -> int:
    """Optimal-string-alignment distance (Levenshtein plus adjacent transpositions)."""
    if a == b:
        return 0
    if not a or not b:
        return max(len(a), len(b))
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        ai = a[i - 1]
        for j in range(1, len(b) + 1):
            cost = 0 if ai == b[j - 1] else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ai == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
        previous2, previous = previous, current
    return previous[-1]


@lru_cache(maxsize=65_536)
def letters(text: str) -> str:
    """The letters and digits of the normalised text (``f!u-ck`` -> ``fuck``)."""
    return "".join(c for c in _normalize(text) if c.isalnum())


def reading_distance(original: str, variant: str) -> float:
    """How differently ``variant`` reads, relative to ``original`` (0 = the same).

    The smaller of the distances between the reading keys (sound) and between the plain letters
    (spelling: a typo that the sound folding exaggerates, ``bitch`` -> ``bitxh``), each divided by the
    original's length.
    """
    a, b = reading_key(original), reading_key(variant)
    by_sound = edit_distance(a, b) / max(len(a), 1)
    if by_sound == 0:
        return 0.0
    a, b = letters(original), letters(variant)
    return min(by_sound, edit_distance(a, b) / max(len(a), 1))


def is_readable(original: str, variant: str, bound: float = READABLE_DISTANCE) -> bool:
    """True when ``variant`` reads like ``original`` (:func:`reading_distance` at most ``bound``)."""
    return reading_distance(original, variant) <= bound


@lru_cache(maxsize=65_536)
def jamo_form(text: str) -> str:
    """``text`` with Hangul syllables written as compatibility jamo (no other change)."""
    out: list[str] = []
    for char in text:
        if _is_syllable(char):
            code = ord(char) - 0xAC00
            out.append(_INITIALS[code // 588] + _MEDIALS[(code // 28) % 21] + _FINALS[code % 28])
        else:
            out.append(char)
    return "".join(out)


@lru_cache(maxsize=1)
def _reverse_tables() -> tuple[tuple[str, str], ...]:
    """(respelling, original) pairs of the table-driven rules, longest respelling first."""
    from content_arena.attacks.english import HANGUL_SPELLINGS
    from content_arena.attacks.lexicon import ABBREVIATIONS, chosung

    pairs: set[tuple[str, str]] = set()
    for stems in ABBREVIATIONS.values():
        for stem in stems:
            pairs.add((chosung(stem), stem))
            if len(stem) > 1:
                pairs.add((chosung(stem[0]) + stem[1:], stem))
    for english, spellings in HANGUL_SPELLINGS.items():
        pairs.update((spelling, english) for spelling in spellings)
    return tuple(sorted(pairs, key=lambda pair: -len(pair[0])))


def recoverable(original: str, variant: str, bound: float = READABLE_DISTANCE) -> bool:
    """True when ``variant`` reads like ``original``, directly or through a reverse table.

    Reverse tables: initial-consonant abbreviations (``ㅂㅅ은`` -> ``병신은``), Hangul spellings of
    English words (``퍼킹`` -> ``fucking``) and keyboard typing (``tlqkf`` -> ``시발``).
    """
    if is_readable(original, variant, bound):
        return True
    from content_arena.attacks.korean import keyboard_decode

    if any(c.isascii() and c.isalpha() for c in variant) and keyboard_decode(variant) == original:
        return True
    lowered = original.lower()
    for respelling, source in _reverse_tables():
        if respelling in variant and variant.replace(respelling, source).lower() == lowered:
            return True
    return False
