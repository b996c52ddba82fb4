"""Hangul helpers: syllable <-> jamo arithmetic, jamo splitting and jamo re-composition.

Modern Hangul syllables (U+AC00..U+D7A3) are laid out arithmetically::

    syllable = 0xAC00 + (initial * 21 + medial) * 28 + final

with 19 initials, 21 medials and 28 finals (final 0 = no final consonant). Jamo exist in two
encodings that matter for moderation:

* compatibility jamo (U+3131..U+3163, e.g. ``ㅅ``, ``ㅣ``) - what people type when they write
  ``ㅅㅂ`` or split a word letter by letter (``ㅆㅣㅂㅏㄹ``); they do not join visually;
* conjoining jamo (U+1100..U+11FF) - what NFD produces; a font renders ``ᄉ ᅵ`` as one syllable.

All bulk conversions use ``str.translate`` with precomputed tables, so per-character work happens
in C. :func:`recompose_jamo` only runs Python code on the (short) jamo runs a regex finds.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

SYLLABLE_FIRST = 0xAC00
SYLLABLE_LAST = 0xD7A3
INITIAL_COUNT = 19
MEDIAL_COUNT = 21
FINAL_COUNT = 28  # including "no final"

CONJOINING_INITIAL_BASE = 0x1100  # U+1100..U+1112
CONJOINING_MEDIAL_BASE = 0x1161  # U+1161..U+1175
CONJOINING_FINAL_BASE = 0x11A7  # final index 1 -> U+11A8 .. 27 -> U+11C2

#: Compatibility jamo for each initial index (0..18).
COMPAT_INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
#: Compatibility jamo for each medial index (0..20); contiguous U+314F..U+3163.
COMPAT_MEDIALS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
#: Compatibility jamo for each final index (0..27); index 0 is the empty final.
COMPAT_FINALS: tuple[str, ...] = ("",) + tuple("ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ")

#: Two simple vowels typed one after the other that a Hangul keyboard merges into one medial.
COMPOUND_MEDIALS: dict[tuple[int, int], int] = {
    (COMPAT_MEDIALS.index(a), COMPAT_MEDIALS.index(b)): COMPAT_MEDIALS.index(ab)
    for a, b, ab in ("ㅗㅏㅘ", "ㅗㅐㅙ", "ㅗㅣㅚ", "ㅜㅓㅝ", "ㅜㅔㅞ", "ㅜㅣㅟ", "ㅡㅣㅢ")
}
#: Two final consonants that merge into one compound final (ㄹ + ㄱ -> ㄺ ...).
COMPOUND_FINALS: dict[tuple[int, int], int] = {
    (COMPAT_FINALS.index(a), COMPAT_FINALS.index(b)): COMPAT_FINALS.index(ab)
    for a, b, ab in (
        "ㄱㅅㄳ", "ㄴㅈㄵ", "ㄴㅎㄶ", "ㄹㄱㄺ", "ㄹㅁㄻ", "ㄹㅂㄼ", "ㄹㅅㄽ", "ㄹㅌㄾ", "ㄹㅍㄿ", "ㄹㅎㅀ", "ㅂㅅㅄ",
    )
}

#: Modern compatibility jamo, consonants then vowels (U+3131..U+3163).
COMPAT_JAMO = "".join(chr(cp) for cp in range(0x3131, 0x3164))
#: Half-width Hangul jamo (U+FFA1..) in the same order as :data:`COMPAT_JAMO`.
HALFWIDTH_JAMO = (
    "".join(chr(cp) for cp in range(0xFFA1, 0xFFBF))  # 30 consonants
    + "".join(chr(cp) for cp in (*range(0xFFC2, 0xFFC8), *range(0xFFCA, 0xFFD0),
                                 *range(0xFFD2, 0xFFD8), *range(0xFFDA, 0xFFDD)))  # 21 vowels
)
COMPAT_TO_HALFWIDTH: dict[str, str] = dict(zip(COMPAT_JAMO, HALFWIDTH_JAMO, strict=True))
HALFWIDTH_TO_COMPAT: dict[str, str] = dict(zip(HALFWIDTH_JAMO, COMPAT_JAMO, strict=True))


def is_syllable(char: str) -> bool:
    """True for one precomposed modern Hangul syllable (가..힣)."""
    return len(char) == 1 and SYLLABLE_FIRST <= ord(char) <= SYLLABLE_LAST


def has_hangul_syllable(text: str) -> bool:
    """True when ``text`` contains at least one precomposed syllable."""
    return _SYLLABLE_RE.search(text) is not None


def decompose_syllable(char: str) -> tuple[int, int, int]:
    """``'발' -> (7, 0, 8)``: (initial, medial, final) indices; final 0 means no final consonant."""
    if not is_syllable(char):
        raise ValueError(f"not a precomposed Hangul syllable: {char!r}")
    offset = ord(char) - SYLLABLE_FIRST
    return offset // (MEDIAL_COUNT * FINAL_COUNT), (offset // FINAL_COUNT) % MEDIAL_COUNT, offset % FINAL_COUNT


def compose_syllable(initial: int, medial: int, final: int = 0) -> str:
    """Inverse of :func:`decompose_syllable`."""
    if not (0 <= initial < INITIAL_COUNT and 0 <= medial < MEDIAL_COUNT and 0 <= final < FINAL_COUNT):
        raise ValueError(f"jamo indices out of range: {(initial, medial, final)}")
    return chr(SYLLABLE_FIRST + (initial * MEDIAL_COUNT + medial) * FINAL_COUNT + final)


# The vowel a reader hears at the end of each vowel, which a drawn-out syllable repeats after a silent ㅇ
# (벼어엉신, 새애끼, 와아): ㅕ ends in ㅓ, ㅘ in ㅏ, ㅟ and ㅢ in ㅣ; ㅐ and ㅔ sound alike, so each echoes both.
_ECHO_VOWELS: dict[str, str] = {
    "ㅏ": "ㅏ", "ㅐ": "ㅐㅔ", "ㅑ": "ㅏ", "ㅒ": "ㅐㅔ", "ㅓ": "ㅓ", "ㅔ": "ㅔㅐ", "ㅕ": "ㅓ", "ㅖ": "ㅔㅐ", "ㅗ": "ㅗ",
    "ㅘ": "ㅏ", "ㅙ": "ㅐㅔ", "ㅚ": "ㅔㅐ", "ㅛ": "ㅗ", "ㅜ": "ㅜ", "ㅝ": "ㅓ", "ㅞ": "ㅔㅐ", "ㅟ": "ㅣ", "ㅠ": "ㅜ",
    "ㅡ": "ㅡ", "ㅢ": "ㅣ", "ㅣ": "ㅣ",
}
_ECHOES: tuple[frozenset[int], ...] = tuple(
    frozenset(COMPAT_MEDIALS.index(v) for v in _ECHO_VOWELS[m]) for m in COMPAT_MEDIALS
)
_SILENT_INITIAL = COMPAT_INITIALS.index("ㅇ")


def _echo_pair_pattern() -> re.Pattern[str]:
    """Two syllables that fold (an open syllable, then a silent-ㅇ syllable repeating its vowel): one
    alternative per echoed vowel, each two character classes, so a scan costs what a search for any
    syllable would, and most texts (with no such pair) never reach the per-syllable fold."""
    alternatives = []
    for echo in sorted({m for medials in _ECHO_VOWELS.values() for m in medials}):
        echo_medial = COMPAT_MEDIALS.index(echo)
        before = "".join(compose_syllable(i, m) for i in range(len(COMPAT_INITIALS))
                         for m in range(len(COMPAT_MEDIALS)) if echo_medial in _ECHOES[m])
        after = "".join(compose_syllable(_SILENT_INITIAL, echo_medial, f) for f in range(len(COMPAT_FINALS)))
        alternatives.append(f"[{before}][{after}]")
    return re.compile("|".join(alternatives))


_ECHO_PAIR_RE = _echo_pair_pattern()
# A run of syllables holding such a pair: only these reach the per-syllable fold.
_FOLDABLE_RUN_RE = re.compile(f"[\uac00-\ud7a3]*?(?:{_ECHO_PAIR_RE.pattern})[\uac00-\ud7a3]*")


def _collapse_run(run: str) -> str:
    """:func:`collapse_elongation` of a run of syllables."""
    out: list[str] = []
    for char in run:
        if out:
            initial, medial, final = decompose_syllable(out[-1])
            echo_initial, echo_medial, echo_final = decompose_syllable(char)
            if not final and echo_initial == _SILENT_INITIAL and echo_medial in _ECHOES[medial]:
                out[-1] = compose_syllable(initial, medial, echo_final)
                continue
        out.append(char)
    return "".join(out)


def collapse_elongation(text: str) -> str:
    """Fold drawn-out syllables back: an open syllable followed by silent-ㅇ syllables that only repeat
    the vowel it ends in takes the last one's final consonant (``벼어엉신`` -> ``병신``, ``씨이이발`` ->
    ``씨발``, ``새애애끼`` -> ``새끼``, ``주우욱어어`` -> ``죽어``).

    Clean words that spell such a pair change too (``나아가다`` -> ``나가다``, ``아아`` -> ``아``); on text that
    is folded the same way in training and in use, that costs a few merged words. Idempotent.
    """
    if _ECHO_PAIR_RE.search(text) is None:
        return text
    return _FOLDABLE_RUN_RE.sub(lambda match: _collapse_run(match.group()), text)


# Respellings that keep how a word sounds to a reader swap these: a tense or aspirated initial for the
# plain one (씨발/시발, 꺼져/거져, 쳐/져), and vowels that most speakers no longer tell apart (ㅐ/ㅔ:
# 새끼/세끼) or that slang swaps (ㅛ/ㅕ, ㅢ ㅟ/ㅣ, ㅠ/ㅜ). Each class maps to one representative.
_PLAIN_INITIAL = {"ㄲ": "ㄱ", "ㅋ": "ㄱ", "ㄸ": "ㄷ", "ㅌ": "ㄷ", "ㅃ": "ㅂ", "ㅍ": "ㅂ", "ㅆ": "ㅅ", "ㅉ": "ㅈ",
                  "ㅊ": "ㅈ"}
_PLAIN_MEDIAL = {"ㅐ": "ㅔ", "ㅒ": "ㅖ", "ㅙ": "ㅞ", "ㅚ": "ㅞ", "ㅛ": "ㅕ", "ㅢ": "ㅣ", "ㅟ": "ㅣ", "ㅠ": "ㅜ"}
_INITIAL_KEY = [COMPAT_INITIALS.index(_PLAIN_INITIAL.get(j, j)) for j in COMPAT_INITIALS]
_MEDIAL_KEY = [COMPAT_MEDIALS.index(_PLAIN_MEDIAL.get(j, j)) for j in COMPAT_MEDIALS]


def phonetic_key(char: str) -> str:
    """The syllable with its initial made plain and its vowel merged with its near-homophones:
    ``'씨' -> '시'``, ``'깨' -> '게'``, ``'쳐' -> '져'``, ``'븅' -> '붕'``. Any other character is returned as
    it is. Lossy on purpose (``'빵'`` and ``'방'`` share a key): a view of a text in which the phonetic
    respellings of the leet_phonetic family no longer differ from the word they respell.
    """
    if not is_syllable(char):
        return char
    initial, medial, final = decompose_syllable(char)
    return compose_syllable(_INITIAL_KEY[initial], _MEDIAL_KEY[medial], final)


def syllable_to_compat(char: str) -> str:
    """``'발' -> 'ㅂㅏㄹ'``."""
    initial, medial, final = decompose_syllable(char)
    return COMPAT_INITIALS[initial] + COMPAT_MEDIALS[medial] + COMPAT_FINALS[final]


def syllable_to_conjoining(char: str) -> str:
    """``'발' -> 'ᄇ ᅡ ᆯ'`` (without the spaces): the canonical (NFD) decomposition."""
    initial, medial, final = decompose_syllable(char)
    out = chr(CONJOINING_INITIAL_BASE + initial) + chr(CONJOINING_MEDIAL_BASE + medial)
    return out + chr(CONJOINING_FINAL_BASE + final) if final else out


def _all_syllables() -> range:
    return range(SYLLABLE_FIRST, SYLLABLE_LAST + 1)


@lru_cache(maxsize=1)
def compat_table() -> dict[int, str]:
    """``str.translate`` table: every syllable -> its compatibility jamo."""
    return {cp: syllable_to_compat(chr(cp)) for cp in _all_syllables()}


@lru_cache(maxsize=1)
def conjoining_table() -> dict[int, str]:
    """``str.translate`` table: every syllable -> its conjoining jamo (NFD of the syllable)."""
    return {cp: syllable_to_conjoining(chr(cp)) for cp in _all_syllables()}


def to_compat_jamo(text: str) -> str:
    """Split every syllable into compatibility jamo: ``'씨발' -> 'ㅆㅣㅂㅏㄹ'``; other text unchanged."""
    return text.translate(compat_table())


def to_conjoining_jamo(text: str) -> str:
    """Split every syllable into conjoining jamo (like NFD, but leaves non-Hangul untouched)."""
    return text.translate(conjoining_table())


# --------------------------------------------------------------------------- recomposition


class _Jamo(NamedTuple):
    initial: int  # initial index or -1 when this jamo cannot start a syllable
    medial: int  # medial index or -1 when not a vowel
    final: int  # final index (>0) or 0 when it cannot close a syllable
    compat: bool  # compatibility jamo (role decided by context) vs conjoining (role fixed)


def _build_jamo_info() -> dict[str, _Jamo]:
    info: dict[str, _Jamo] = {}
    for char in COMPAT_JAMO:
        if char in COMPAT_MEDIALS:
            info[char] = _Jamo(-1, COMPAT_MEDIALS.index(char), 0, True)
        else:
            initial = COMPAT_INITIALS.index(char) if char in COMPAT_INITIALS else -1
            final = COMPAT_FINALS.index(char) if char in COMPAT_FINALS else 0
            info[char] = _Jamo(initial, -1, final, True)
    for index in range(INITIAL_COUNT):
        info[chr(CONJOINING_INITIAL_BASE + index)] = _Jamo(index, -1, 0, False)
    for index in range(MEDIAL_COUNT):
        info[chr(CONJOINING_MEDIAL_BASE + index)] = _Jamo(-1, index, 0, False)
    for index in range(1, FINAL_COUNT):
        info[chr(CONJOINING_FINAL_BASE + index)] = _Jamo(-1, -1, index, False)
    return info


_JAMO_INFO = _build_jamo_info()
_JAMO_CLASS = "\u3131-\u3163\u1100-\u1112\u1161-\u1175\u11a8-\u11c2"
# An optional syllable directly followed by a conjoining final (NFC would merge those), then a jamo run.
_JAMO_RUN_RE = re.compile(f"(?:[\uac00-\ud7a3](?=[\u11a8-\u11c2]))?[{_JAMO_CLASS}]+")
# Any jamo at all: a plain class scans a text several times faster than the pattern above, which
# tries its lookahead at every syllable.
_ANY_JAMO_RE = re.compile(f"[{_JAMO_CLASS}]")
_SYLLABLE_RE = re.compile("[\uac00-\ud7a3]")


def _starts_syllable(run: list[_Jamo], pos: int) -> bool:
    """A consonant directly followed by a vowel always begins a new syllable."""
    return run[pos].initial >= 0 and pos + 1 < len(run) and run[pos + 1].medial >= 0


def _can_close(chars: str, run: list[_Jamo], pos: int, compat_vowel: bool) -> bool:
    """Can ``run[pos]`` become the final consonant of the syllable before it?

    * a consonant directly followed by a vowel starts the next syllable instead;
    * a compatibility consonant only closes a syllable spelled with a compatibility vowel, so NFD text
      followed by a typed jamo (``가`` + ``ㄹ``) keeps the jamo apart, exactly as precomposed text does;
    * a compatibility consonant that is immediately repeated (``ㅋㅋ``, ``ㅎㅎ``) reads as laughter or
      an abbreviation, not as a final: ``ㅂㅏㅋㅋ`` gives ``바ㅋㅋ`` (but ``ㄱㅏㄱㄱㅏ`` gives ``각가``,
      because there the second ``ㄱ`` opens a syllable).
    """
    jamo = run[pos]
    if jamo.final <= 0 or _starts_syllable(run, pos):
        return False
    if not jamo.compat:
        return True
    nxt = pos + 1
    return compat_vowel and not (nxt < len(run) and chars[nxt] == chars[pos] and not _starts_syllable(run, nxt))


def _compose_run(chars: str) -> str:
    run = [_JAMO_INFO[char] for char in chars]
    size = len(run)
    out: list[str] = []
    pos = 0
    while pos < size:
        if not _starts_syllable(run, pos):
            out.append(chars[pos])
            pos += 1
            continue
        initial = run[pos].initial
        vowel = run[pos + 1]
        medial = vowel.medial
        pos += 2
        # Compound vowels/finals are only merged from typed (compatibility) jamo: NFD never splits them.
        if vowel.compat and pos < size and run[pos].compat and run[pos].medial >= 0:
            merged = COMPOUND_MEDIALS.get((medial, run[pos].medial))
            if merged is not None:
                medial = merged
                pos += 1
        final = 0
        if pos < size and _can_close(chars, run, pos, vowel.compat):
            first = run[pos]
            final = first.final
            pos += 1
            if first.compat and pos < size and run[pos].compat and _can_close(chars, run, pos, vowel.compat):
                merged = COMPOUND_FINALS.get((final, run[pos].final))
                if merged is not None:
                    final = merged
                    pos += 1
        out.append(chr(SYLLABLE_FIRST + (initial * MEDIAL_COUNT + medial) * FINAL_COUNT + final))
    return "".join(out)


def _recompose_match(match: re.Match[str]) -> str:
    chars = match.group()
    if is_syllable(chars[0]):
        head = chars[0]
        if decompose_syllable(head)[2]:  # already has a final: leave it, parse the rest on its own
            return head + _compose_run(chars[1:])
        chars = syllable_to_conjoining(head) + chars[1:]
    return _compose_run(chars)


def recompose_jamo(text: str) -> str:
    """Turn runs of compatibility and/or conjoining jamo back into syllables where they spell one.

    ``'ㅆㅣ발' -> '씨발'``, ``'ㅆㅣㅂㅏㄹ' -> '씨발'``, NFD ``'씨발'`` -> ``'씨발'``, ``'ㄷㅏㄹㄱㅏ' -> '달가'``
    (a consonant followed by a vowel opens a new syllable), ``'ㄷㅏㄺ' -> '닭'``. Jamo that spell no
    syllable stay as they are (``'ㅋㅋㅋ'``, ``'ㅅㅂ'``, ``'ㅠㅠ'``). Compatibility jamo are never glued
    onto an existing precomposed syllable (``'아ㅋㅋ'`` stays), conjoining finals are (as NFC does).
    The function is idempotent.
    """
    if _ANY_JAMO_RE.search(text) is None:
        return text
    return _JAMO_RUN_RE.sub(_recompose_match, text)


#: The key of the standard 2-set (dubeolsik) Korean keyboard -> the compatibility jamo it types;
#: with Shift, Q W E R T O P give the tense consonants and the two ㅖ/ㅒ vowels.
KEYBOARD_JAMO: dict[str, str] = {
    **dict(zip("qwertyuiopasdfghjklzxcvbnm", "ㅂㅈㄷㄱㅅㅛㅕㅑㅐㅔㅁㄴㅇㄹㅎㅗㅓㅏㅣㅋㅌㅊㅍㅠㅜㅡ", strict=True)),
    "Q": "ㅃ", "W": "ㅉ", "E": "ㄸ", "R": "ㄲ", "T": "ㅆ", "O": "ㅒ", "P": "ㅖ",
}


def keyboard_decode(keys: str) -> str:
    """The Hangul that ``keys`` types in Korean keyboard mode (``'tlqkf'`` -> ``'시발'``, ``'Tlqkf'`` -> ``'씨발'``).

    Other characters pass through; keys that spell no syllable stay as jamo (``'rr'`` -> ``'ㄱㄱ'``).
    """
    return recompose_jamo("".join(KEYBOARD_JAMO.get(k, KEYBOARD_JAMO.get(k.lower(), k)) for k in keys))


# Revised Romanization of Korean (2000), plus l for ㄹ and gg, dd, bb for the tense initials, as
# readers also write them. An initial k, t or p is RR's aspirate (ㅋ ㅌ ㅍ); as a final it is read as
# ㄱ, ㅅ, ㅂ.
_ROMAN_INITIALS: dict[str, int] = {
    roman: COMPAT_INITIALS.index(jamo) for roman, jamo in (
        ("kk", "ㄲ"), ("tt", "ㄸ"), ("pp", "ㅃ"), ("ss", "ㅆ"), ("jj", "ㅉ"), ("gg", "ㄲ"), ("dd", "ㄸ"),
        ("bb", "ㅃ"), ("ch", "ㅊ"), ("g", "ㄱ"),
        ("n", "ㄴ"), ("d", "ㄷ"), ("r", "ㄹ"), ("l", "ㄹ"), ("m", "ㅁ"), ("b", "ㅂ"), ("s", "ㅅ"), ("j", "ㅈ"),
        ("k", "ㅋ"), ("t", "ㅌ"), ("p", "ㅍ"), ("h", "ㅎ"),
    )
}
_ROMAN_MEDIALS: dict[str, int] = {
    roman: COMPAT_MEDIALS.index(jamo) for roman, jamo in (
        ("yae", "ㅒ"), ("yeo", "ㅕ"), ("wae", "ㅙ"), ("ae", "ㅐ"), ("ya", "ㅑ"), ("eo", "ㅓ"), ("ye", "ㅖ"),
        ("wa", "ㅘ"), ("oe", "ㅚ"), ("yo", "ㅛ"), ("wo", "ㅝ"), ("we", "ㅞ"), ("wi", "ㅟ"), ("yu", "ㅠ"),
        ("eu", "ㅡ"), ("ui", "ㅢ"), ("a", "ㅏ"), ("e", "ㅔ"), ("o", "ㅗ"), ("u", "ㅜ"), ("i", "ㅣ"),
    )
}
_ROMAN_FINALS: dict[str, int] = {
    roman: COMPAT_FINALS.index(jamo) for roman, jamo in (
        ("ng", "ㅇ"), ("k", "ㄱ"), ("g", "ㄱ"), ("n", "ㄴ"), ("t", "ㅅ"), ("d", "ㄷ"), ("l", "ㄹ"), ("m", "ㅁ"),
        ("p", "ㅂ"), ("b", "ㅂ"),
    )
}


def _longest(table: dict[str, int], text: str, pos: int) -> str:
    for size in (3, 2, 1):
        if text[pos : pos + size] in table:
            return text[pos : pos + size]
    return ""


_DOUBLED = frozenset(("kk", "tt", "pp", "ss", "jj", "gg", "dd", "bb"))


def read_romanized(word: str) -> str | None:
    """Hangul for a lower-case romanised run (``sseuregi`` -> ``쓰레기``, ``nya`` -> ``냐``), or None
    when the run does not split into romanised syllables (``pc``, ``tv``: no vowel to carry them).

    Greedy, left to right: optional initial, a vowel (required), and a final consonant only when no
    vowel follows it (then it starts the next syllable: ``sibal`` is 시발, not 싑알; a doubled consonant
    before a vowel is the next tense initial: ``saekki`` is 새끼). Ambiguous
    spellings read one way (RR ``t`` as a final is ㅅ, the commonest final pronounced [t]).
    """
    out: list[str] = []
    pos = 0
    while pos < len(word):
        initial = _longest(_ROMAN_INITIALS, word, pos)
        medial = _longest(_ROMAN_MEDIALS, word, pos + len(initial))
        if not medial:
            return None
        pos += len(initial) + len(medial)
        final = ""
        doubled = word[pos : pos + 2] in _DOUBLED and _longest(_ROMAN_MEDIALS, word, pos + 2)
        for size in () if doubled else (2, 1):
            candidate = word[pos : pos + size]
            if len(candidate) == size and candidate in _ROMAN_FINALS and not _longest(_ROMAN_MEDIALS, word, pos + size):
                final = candidate
                break
        pos += len(final)
        out.append(compose_syllable(_ROMAN_INITIALS[initial] if initial else COMPAT_INITIALS.index("ㅇ"),
                                    _ROMAN_MEDIALS[medial], _ROMAN_FINALS[final] if final else 0))
    return "".join(out) or None
