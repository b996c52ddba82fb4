"""Text normalisation in front of the defender model: undo the cheap unicode tricks attackers use.

:func:`normalize` runs these steps, in this order:

1. **strip invisibles** - zero-width space/joiner/non-joiner, soft hyphen, word joiner, BOM, bidi
   controls, variation selectors, tag characters and the Hangul filler characters are deleted; at the
   same time half-width Hangul jamo (U+FFA0 block) become compatibility jamo;
2. **NFKC**, except on compatibility jamo (``ㅋ``, ``ㅅ`` ...): NFKC would turn those into *conjoining*
   jamo (initial-consonant form), which breaks ``ㅂㅏㄹ`` (NFKC: ``바`` + initial ``ᄅ``) and makes
   ``ㅋㅋ`` render badly. Full-width letters/digits and other compatibility forms are folded here;
3. **jamo recomposition** (:func:`content_arena.hangul.recompose_jamo`): ``ㅆㅣㅂㅏㄹ`` / NFD -> ``씨발``;
4. **lowercase**, then **homoglyph folding**: Cyrillic/Greek letters that look like Latin ones become
   those Latin letters (``рһ`` -> ``ph``). This also rewrites genuine Cyrillic/Greek words; the
   defender targets Korean/English, where such letters are nearly always an evasion;
   **look-alike jamo**: where a character drawn like a jamo stands beside a jamo, it is read as that
   jamo and the jamo are recomposed (``ㅈ⊥ㅎ은`` -> ``좋은``, ``ㄹT`` -> ``루``, ``Lㅔ`` -> ``네``, ``0ㅛ`` ->
   ``요``, ``人ㅔ`` -> ``세``): a vowel reading after a consonant jamo, inside a word for a digit or
   symbol (``ㅋㅋㅋ!`` stays); a consonant reading beside a vowel jamo; a Latin letter only when it stands
   alone (``ㅈrkxdms`` is keys typed in Korean mode, step 7). This step repeats with steps 5-8;
5. **whitespace**: every run of whitespace becomes one space, ends are trimmed;
6. **spaced-out words** (conservative): separators are removed only *between single characters* -
   a run of at least 3 single Hangul syllables all separated by the same separator (``시 발 놈``,
   ``씨.발.놈``, ``씨 . 발 . 놈``) becomes ``시발놈``; Latin single letters are joined for at least 3 letters
   with the same symbol separator (``f.u.c.k``, ``a*s*s``) or at least 4 letters separated by spaces
   (``f u c k``). A separator is 1-3 characters from space and ``. , * _ - ~ · • / | + ^ = : ;``.
   Normal text keeps its spaces; a sentence of single-syllable words (``너 좀 잘 해``) is joined too,
   which is the price of this step;
7. **keyboard-mode words**, in texts that contain Hangul: a Latin word of 4 or more letters that a
   2-set Korean keyboard turns into 2 or more common syllables (KS X 1001) is replaced by them:
   ``tlqkf`` -> ``시발``, ``qudtls`` -> ``병신`` (typing with the keyboard left in English mode). Case
   is gone by then, so tense consonants come back plain (``Tlqkf`` -> ``시발``). English words that
   happen to spell syllables are rewritten too: in 42k BEEP! comments, 24 of 2,049 Latin words were
   (``always``, ``girl``, ``rock``); texts without Hangul are never touched;
8. **symbols inside words**: 1-3 characters that are neither letters, digits nor spaces (punctuation,
   symbols, emoji, stray combining marks) written directly between two letters of a word (Hangul,
   jamo or Latin) are removed: ``씨@발`` -> ``씨발``, ``병♡신`` -> ``병신``, ``f!uck`` -> ``fuck``; a Latin
   letter written three or more times in a row is written once (``fuuuck`` -> ``fuck``). Clean text pays
   a little: ``don't`` becomes ``dont``, ``했다.그리고`` becomes ``했다그리고``, ``a...b`` keeps its dots
   only because there are more than three. A space splitting a word (``국 정감사``) is beyond this step:
   undoing it needs a dictionary;
9. **Latin inside Hangul words**, in texts that contain Hangul: a consonant jamo followed by one
   Latin or digit look-alike of a vowel becomes the syllable a reader sees (``ㅅ1발`` -> ``시발``,
   ``ㄴr`` -> ``나``; ``1 l i |`` read as ``ㅣ``, ``r`` as ``ㅏ``), and a Latin run written directly
   against a syllable is read back as romanised Korean when it splits into romanised syllables
   (:func:`content_arena.hangul.read_romanized`: ``시bal`` -> ``시발``, ``누구nya`` -> ``누구냐``), as is a
   Latin word of its own that reads as two syllables or more (``ssibal`` -> ``씨발``, ``byungsin`` ->
   ``븅신``). Runs that do not split (``pc방``, ``tv를``) stay; an English word in a Korean text is read
   as Korean too when it splits (``game을`` -> ``가메을``): the same word is read the same way in
   training and in use, so it costs a little clean signal, beside the respellings recovered;
10. **drawn-out syllables**, in texts that contain Hangul (:func:`content_arena.hangul.collapse_elongation`):
    an open syllable followed by silent-ㅇ syllables that repeat its vowel is folded back
    (``벼어엉신`` -> ``병신``, ``새애애끼`` -> ``새끼``); a few clean words fold too (``나아가다`` -> ``나가다``).

Steps 5-10 repeat until the text stops changing: a word read back can complete a spaced-out run, a
removed symbol can join a drawn-out syllable. Every change shortens the text or turns Latin into
Hangul, so the repetition ends, usually after one pass.

The result is idempotent (``normalize(normalize(x)) == normalize(x)``) for every string, and
:func:`normalize` never raises on ``str`` input.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from content_arena.hangul import (
    COMPAT_FINALS,
    COMPAT_INITIALS,
    COMPAT_MEDIALS,
    HALFWIDTH_TO_COMPAT,
    collapse_elongation,
    compose_syllable,
    has_hangul_syllable,
    is_syllable,
    keyboard_decode,
    read_romanized,
    recompose_jamo,
)

__all__ = ["INVISIBLE_CHARACTERS", "HOMOGLYPH_FOLDS", "NORMALIZATION_KINDS", "Normalizer", "normalize",
           "normalize_many", "normalize_many_with_kinds"]

_INVISIBLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # arabic letter mark
    (0x115F, 0x1160),  # hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),  # khmer inherent vowels (render as nothing)
    (0x180B, 0x180F),  # mongolian variation selectors and vowel separator
    (0x200B, 0x200F),  # zero-width space, non-joiner, joiner, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x2064),  # word joiner, invisible operators
    (0x2066, 0x206F),  # bidi isolates, deprecated format characters
    (0x3164, 0x3164),  # hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # zero-width no-break space / BOM
    (0xFFA0, 0xFFA0),  # half-width hangul filler
    (0xFFF9, 0xFFFB),  # interlinear annotation controls
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format controls
    (0xE0000, 0xE007F),  # tag characters
    (0xE0100, 0xE01EF),  # variation selectors supplement
)

#: Characters deleted by :func:`normalize` (they render as nothing or only steer rendering).
INVISIBLE_CHARACTERS: frozenset[str] = frozenset(
    chr(cp) for first, last in _INVISIBLE_RANGES for cp in range(first, last + 1)
)

#: Lowercase look-alike (Cyrillic, Greek, a few Latin/Armenian variants) -> Latin letter. Applied after
#: ``str.lower``, so uppercase look-alikes are covered through their lowercase forms.
HOMOGLYPH_FOLDS: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "ё": "e", "һ": "h", "н": "h", "і": "i", "ї": "i",
    "ј": "j", "к": "k", "ӏ": "l", "м": "m", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t",
    "ԝ": "w", "х": "x", "у": "y", "ү": "y",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "h", "ι": "i", "κ": "k", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "ν": "v", "χ": "x",
    # Latin / Armenian variants NFKC keeps
    "ɑ": "a", "ɡ": "g", "ɩ": "i", "ı": "i", "ȷ": "j", "օ": "o", "ս": "u", "ց": "g",
}

_PRE_TABLE: dict[int, str | None] = {ord(char): None for char in INVISIBLE_CHARACTERS}
_PRE_TABLE.update({ord(half): compat for half, compat in HALFWIDTH_TO_COMPAT.items()})
_FOLD_TABLE: dict[int, str] = {ord(glyph): latin for glyph, latin in HOMOGLYPH_FOLDS.items()}


def _any_of(table: dict[int, str | None]) -> re.Pattern[str]:
    """A pattern that finds any character ``table`` maps, so that str.translate runs only when it has
    work: translate looks every character up in the dict (about 5 µs for a 40-character comment on
    this machine), a scan for a character class about 0.3-0.7 µs."""
    codes, ranges = sorted(table), []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return re.compile("[" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges) + "]")


_PRE_CHARS = _any_of(_PRE_TABLE)
_FOLD_CHARS = _any_of(_FOLD_TABLE)

#: What :func:`normalize_many_with_kinds` reports a step changed; bit ``i`` of a kind mask is ``NORMALIZATION_KINDS[i]``.
#: ``invisible``: step 1 deleted characters; ``conjoining_jamo``: conjoining (NFD) jamo were composed;
#: ``jamo``: compatibility or half-width jamo were recomposed; ``homoglyph``: look-alikes folded (step 4) or
#: compatibility forms folded by NFKC (full-width, mathematical letters); ``separators``: steps 6 and 8;
#: ``keyboard``: step 7; ``romanized``: step 9 and the look-alike jamo of step 4; ``elongation``: drawn-out
#: letters or syllables (steps 8 and 10).
NORMALIZATION_KINDS: tuple[str, ...] = (
    "invisible", "conjoining_jamo", "jamo", "homoglyph", "separators", "keyboard", "romanized", "elongation",
)
_KIND_BIT = {kind: 1 << i for i, kind in enumerate(NORMALIZATION_KINDS)}
(_INVISIBLE, _CONJOINING_JAMO, _JAMO, _HOMOGLYPH, _SEPARATORS, _KEYBOARD, _ROMANIZED, _ELONGATION) = (
    _KIND_BIT[kind] for kind in NORMALIZATION_KINDS)
_CONJOINING = re.compile("[\u1100-\u11ff\ua960-\ua97f\ud7b0-\ud7ff]")
_COMPAT_OR_HALFWIDTH_JAMO = re.compile("[\u3131-\u318e\uffa1-\uffdc]")
_HALFWIDTH_JAMO = re.compile("[\uffa1-\uffdc]")


_COMPAT_JAMO_SPLIT = re.compile("([\u3131-\u318e]+)")
_LATIN_LETTER = re.compile("[a-z]")
_SEPARATOR = r"[ .,*_\-~·•/|+^=:;]{1,3}"
_SPACED_HANGUL = re.compile(
    rf"(?<![\uac00-\ud7a3])[\uac00-\ud7a3](?P<sep>{_SEPARATOR})[\uac00-\ud7a3]"
    rf"(?:(?P=sep)[\uac00-\ud7a3])+(?![\uac00-\ud7a3])"
)
_SPACED_LATIN_SYMBOL = re.compile(
    r"(?<![0-9a-z])[a-z](?P<sep>[.,*_\-~·•/|+^=:;]{1,3})[a-z](?:(?P=sep)[a-z])+(?![0-9a-z])"
)
_SPACED_LATIN_BLANK = re.compile(r"(?<![0-9a-z])[a-z](?: [a-z]){3,}(?![0-9a-z])")


def _join_singles(match: re.Match[str]) -> str:
    return match.group().replace(match.group("sep"), "")


def _join_blank(match: re.Match[str]) -> str:
    return match.group().replace(" ", "")


# Step 6b: 1-3 characters that are neither letters, digits nor spaces (punctuation, symbols, emoji,
# stray combining marks), written directly between two letters of one word.
_WORD_LETTER = "a-z\uac00-\ud7a3\u3131-\u318e"
_SYMBOLS_IN_WORD = re.compile(rf"(?<=[{_WORD_LETTER}])(?:[^\w\s]|_){{1,3}}(?=[{_WORD_LETTER}])")
# Step 6c: a Latin letter written three or more times in a row (no English word has one).
_LATIN_RUN = re.compile(r"([a-z])\1{2,}")
_KEYBOARD_WORD = re.compile(r"(?<![0-9a-z])[a-z]{4,}(?![0-9a-z])")


# Step 9: a lone vowel look-alike (not the start of a Latin word) after a consonant jamo; Latin runs
# touching a syllable on either side.
_VOWEL_LOOKALIKES = {"1": "ㅣ", "l": "ㅣ", "i": "ㅣ", "|": "ㅣ", "r": "ㅏ"}
_JAMO_LOOKALIKE = re.compile(f"([{COMPAT_INITIALS}])([{re.escape(''.join(_VOWEL_LOOKALIKES))}])(?![a-z])")
_LATIN_BY_SYLLABLE = re.compile("(?<=[\uac00-\ud7a3])[a-z]+|[a-z]+(?=[\uac00-\ud7a3])")
_LATIN_WORD = re.compile("(?<![0-9a-z\uac00-\ud7a3])[a-z]{3,}(?![0-9a-z\uac00-\ud7a3])")


def _read_lookalike(match: re.Match[str]) -> str:
    initial, vowel = match.groups()
    return compose_syllable(COMPAT_INITIALS.index(initial), COMPAT_MEDIALS.index(_VOWEL_LOOKALIKES[vowel]))


def _read_latin_run(match: re.Match[str]) -> str:
    return read_romanized(match.group()) or match.group()


def _read_latin_word(match: re.Match[str]) -> str:
    # Two syllables at least: a one-syllable reading is as likely an English word (go, man, son).
    hangul = read_romanized(match.group())
    return hangul if hangul is not None and len(hangul) >= 2 else match.group()


def _common_syllables(text: str) -> bool:
    """2 or more syllables, all among the 2,350 of KS X 1001 (the ones EUC-KR can encode)."""
    if len(text) < 2 or not all(is_syllable(char) for char in text):
        return False
    try:
        text.encode("euc-kr")
    except UnicodeEncodeError:
        return False
    return True


def _decode_keyboard_word(match: re.Match[str]) -> str:
    keys = match.group()
    hangul = keyboard_decode(keys)
    return hangul if _common_syllables(hangul) else keys


def _nfkc_keeping_compat_jamo(text: str) -> str:
    if unicodedata.is_normalized("NFKC", text):
        return text
    parts = _COMPAT_JAMO_SPLIT.split(text)
    if len(parts) == 1:
        return unicodedata.normalize("NFKC", text)
    # split() with a capturing group alternates: other text, jamo run, other text, ...
    parts[::2] = [unicodedata.normalize("NFKC", part) for part in parts[::2]]
    return "".join(parts)


# Step 4b: characters drawn like a jamo, read as that jamo where they stand beside one (after lowercasing,
# so L is l and T is t). A vowel reading applies after a consonant jamo (ㅅl, ㅈ⊥, ㄹt); a consonant
# reading before a vowel jamo (lㅔ, 0ㅛ, 人ㅔ) or after one (ㅇㅕo).
_SHAPE_VOWELS = {
    "ト": "ㅏ", "├": "ㅏ", "┣": "ㅏ", "r": "ㅏ", "┤": "ㅓ", "┫": "ㅓ", "⊥": "ㅗ", "丄": "ㅗ", "t": "ㅜ", "┬": "ㅜ",
    "丅": "ㅜ", "π": "ㅠ", "一": "ㅡ", "ー": "ㅡ", "—": "ㅡ", "l": "ㅣ", "1": "ㅣ", "|": "ㅣ", "i": "ㅣ", "!": "ㅣ",
    "h": "ㅐ",
}
_SHAPE_CONSONANTS = {
    "7": "ㄱ", "l": "ㄴ", "2": "ㄹ", "己": "ㄹ", "口": "ㅁ", "ロ": "ㅁ", "人": "ㅅ", "ス": "ㅈ", "0": "ㅇ", "o": "ㅇ",
}
_CONSONANT_JAMO = frozenset(COMPAT_INITIALS) | frozenset(f for f in COMPAT_FINALS if f)
_VOWEL_JAMO = frozenset(COMPAT_MEDIALS)
_SHAPES = "".join(sorted(set(_SHAPE_VOWELS) | set(_SHAPE_CONSONANTS)))
_ANY_COMPAT_JAMO = re.compile("[\u3131-\u318e]")
_HANGUL_CHAR = re.compile("[\u3131-\u318e\uac00-\ud7a3]")
_SHAPE_BY_JAMO = re.compile(f"(?<=[\u3131-\u318e])[{re.escape(_SHAPES)}]|[{re.escape(_SHAPES)}](?=[\u3131-\u318e])")


def _read_shape(match: re.Match[str]) -> str:
    char, text, at = match.group(), match.string, match.start()
    left = text[at - 1] if at else ""
    right = text[at + 1] if at + 1 < len(text) else ""
    if char.isascii() and char.isalpha() and (left.isascii() and left.isalpha() or right.isascii() and right.isalpha()):
        return char  # a letter of a Latin word (ㅈrkxdms: keys typed in Korean mode), not a lone look-alike
    vowel, consonant = _SHAPE_VOWELS.get(char), _SHAPE_CONSONANTS.get(char)
    # A digit or symbol ends a word often (ㅋㅋㅋ!, ㅎㅎ1): read as a vowel only inside a Hangul word.
    inside = char.isalpha() or _HANGUL_CHAR.match(right) is not None
    if vowel and left in _CONSONANT_JAMO and inside:
        return vowel
    if consonant and (right in _VOWEL_JAMO or left in _VOWEL_JAMO):
        return consonant
    return char


def _read_shapes(text: str, recompose: bool) -> str:
    """Step 4b on a lowercased text: look-alikes beside jamo read as jamo, then the jamo recomposed when
    any was read or ``recompose`` says an earlier step may have brought jamo together (ㄱ-ㅡ -> 그)."""
    if _ANY_COMPAT_JAMO.search(text) is None:
        return text
    read = _SHAPE_BY_JAMO.sub(_read_shape, text)
    if read is text and not recompose:
        return text
    read = recompose_jamo(read)
    return text if read == text else read


def _finish(text: str, latin: bool, mask: int = 0) -> tuple[str, int]:
    """Steps 5, 6 and 8, repeated until nothing changes (a join can make a new run of three letters,
    a removed symbol a new drawn-out letter). ``latin``: ``text`` has a-z. Returns the text and ``mask``
    with the kinds of change made."""
    # str.split() and regex \s agree on what whitespace is (both Py_UNICODE_ISSPACE).
    text = " ".join(text.split())
    again = False  # jamo are composed before this step; only a change made here can bring new ones together
    while True:
        before = text
        read = _read_shapes(text, again)
        if read is not text:
            mask |= _ROMANIZED  # look-alikes read back, as step 9 reads them
            text = read
        if " " in text or not text.isalnum():
            joined = _SPACED_HANGUL.sub(_join_singles, text)
            if latin:
                joined = _SPACED_LATIN_SYMBOL.sub(_join_singles, joined)
                joined = _SPACED_LATIN_BLANK.sub(_join_blank, joined)
            joined = _SYMBOLS_IN_WORD.sub("", joined)
            if joined != text:
                mask |= _SEPARATORS
                text = joined
        if latin:
            collapsed = _LATIN_RUN.sub(r"\1", text)
            if collapsed is not text and collapsed != text:
                mask |= _ELONGATION
                text = collapsed
        if text == before:
            return text, mask
        again = True


def _hangul_steps(text: str, latin: bool, keyboard: bool, romanized: bool, mask: int) -> tuple[str, int]:
    """Steps 7, 9 and 10, in that order, on a text with Hangul (see the module docstring)."""
    if keyboard and latin:
        decoded = _KEYBOARD_WORD.sub(_decode_keyboard_word, text)
        if decoded != text:
            mask |= _KEYBOARD
            text = decoded
    if romanized:
        read = _JAMO_LOOKALIKE.sub(_read_lookalike, text)
        if latin:
            read = _LATIN_BY_SYLLABLE.sub(_read_latin_run, read)
            read = _LATIN_WORD.sub(_read_latin_word, read)
        if read != text:
            mask |= _ROMANIZED
            text = read
    # A word read back can put a symbol between two syllables (tlqkf·놈 -> 시발·놈): the next pass of
    # step 8 removes it.
    collapsed = collapse_elongation(text)
    if collapsed != text:
        mask |= _ELONGATION
        text = collapsed
    return text, mask


def _normalize(text: str, keyboard: bool, romanized: bool) -> tuple[str, int]:
    """:func:`normalize` and the bit mask of the kinds of change it made (:data:`NORMALIZATION_KINDS`)."""
    if text.isascii():
        lowered = text.lower()
        return _finish(lowered, _LATIN_LETTER.search(lowered) is not None)
    mask = 0
    if _PRE_CHARS.search(text):
        stripped = text.translate(_PRE_TABLE)
        if len(stripped) != len(text):  # half-width jamo map one to one: a shorter text lost invisibles
            mask |= _INVISIBLE
        if _HALFWIDTH_JAMO.search(text):
            mask |= _JAMO
        text = stripped
    folded = _nfkc_keeping_compat_jamo(text)
    recomposed = recompose_jamo(folded)
    if folded is not text or recomposed is not folded:  # the scans below run only for texts that changed
        conjoining = _CONJOINING.search(text) is not None
        if folded != text:
            if conjoining:
                mask |= _CONJOINING_JAMO
            if unicodedata.normalize("NFC", text) != folded:
                mask |= _HOMOGLYPH
        if recomposed != folded:
            if conjoining:
                mask |= _CONJOINING_JAMO
            if _COMPAT_OR_HALFWIDTH_JAMO.search(text):
                mask |= _JAMO
    text = recomposed.lower()
    if _FOLD_CHARS.search(text):
        text = text.translate(_FOLD_TABLE)
        mask |= _HOMOGLYPH
    if not unicodedata.is_normalized("NFC", text):
        # Lowercasing or folding can make a letter compose with the combining mark after it
        # (Cyrillic с + U+0301 -> Latin ć, Ϊ + U+0301 -> ΐ); compose now so a second pass changes nothing.
        text = unicodedata.normalize("NFC", text)
    # Most Korean comments have no Latin letter: the steps that only rewrite Latin are skipped for them.
    latin = _LATIN_LETTER.search(text) is not None
    text, mask = _finish(text, latin, mask)
    if not has_hangul_syllable(text):
        return text, mask
    # Steps 7-10 read words back as Hangul and shorten them, which can make new work for steps 5-8
    # (a word read back can complete a spaced-out run): both repeat until the text stops changing.
    # Every change shortens the text or turns Latin letters into Hangul, so this ends.
    while True:
        changed, mask = _hangul_steps(text, latin, keyboard, romanized, mask)
        if changed == text:
            return text, mask
        latin = _LATIN_LETTER.search(changed) is not None
        text, mask = _finish(changed, latin, mask)


def normalize(text: str, *, keyboard: bool = True, romanized: bool = True) -> str:
    """Normalise one text (see the module docstring for the steps). Idempotent, never raises.

    ``keyboard=False`` skips step 7 (the attacks' readability proxy compares keyboard-mode words
    through its own reverse table); ``romanized=False`` skips step 9.
    """
    return _normalize(text, keyboard, romanized)[0]


def normalize_many(texts: Iterable[str]) -> list[str]:
    """:func:`normalize` over many texts."""
    return [normalize(text) for text in texts]


def normalize_with_kinds(text: str) -> tuple[str, int]:
    """:func:`normalize` and a bit mask of the kinds of change it made (see :data:`NORMALIZATION_KINDS`)."""
    return _normalize(text, True, True)


def normalize_many_with_kinds(texts: Iterable[str]) -> tuple[list[str], list[int]]:
    """:func:`normalize_many`, plus for each text the bit mask of the kinds of change made to it
    (:data:`NORMALIZATION_KINDS`): what the live monitoring counts.

    Args:
        texts: raw texts.

    Returns:
        The normalised texts (equal to ``normalize_many(texts)``) and one mask per text.
    """
    normalized: list[str] = []
    masks: list[int] = []
    add_text, add_mask = normalized.append, masks.append
    for text in texts:
        out, mask = normalize_with_kinds(text)
        add_text(out)
        add_mask(mask)
    return normalized, masks


class Normalizer:
    """Callable wrapper around :func:`normalize` (for pipelines that expect an object)."""

    def __call__(self, text: str) -> str:
        return normalize(text)

    def normalize(self, text: str) -> str:
        return normalize(text)

    def normalize_many(self, texts: Iterable[str]) -> list[str]:
        return normalize_many(texts)
