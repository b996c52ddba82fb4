"""Where the insult is: a small Korean/English lexicon of toxic stems and the words of a text.

Rule attacks obfuscate the word a reader's eye lands on - the insult - not a random particle. The
lexicon finds it; every new rule family edits the *focus* (the stem inside its word) when one is
found and falls back to whole words otherwise::

    locate("이 씨발놈아 꺼져") -> (Word("이", 0, 1, None), Word("씨발놈아", 2, 6, (0, 2)), Word("꺼져", 7, 9, (0, 2)))

The stems are deliberately broad (``놈`` also matches ``놈들``); a false hit only means a clean
word gets obfuscated, which is exactly what attacked-clean FPR measures.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = [
    "ABBREVIATIONS",
    "ENGLISH_STEMS",
    "ENGLISH_WORD_STEMS",
    "KOREAN_STEMS",
    "Word",
    "chosung",
    "find_stems",
    "locate",
]

#: Korean stems, matched anywhere (Korean writes compounds without spaces: 병신새끼야).
KOREAN_STEMS: tuple[str, ...] = (
    "시발", "씨발", "씨팔", "시팔", "씨바", "시바", "씹", "썅", "병신", "븅신", "빙신", "새끼", "섀끼", "색기",
    "개새끼", "개새", "개같", "개돼지", "개소리", "미친", "미췬", "지랄", "좆", "좃", "존나", "졸라", "닥쳐", "닥치",
    "꺼져", "꺼지", "등신", "찐따", "애미", "애비", "느금", "엠창", "놈", "년", "죽어", "죽여", "뒤져", "뒈져",
    "디져", "바보", "멍청", "또라이", "쓰레기", "걸레", "염병", "김치녀", "된장녀", "틀딱", "급식충", "맘충",
    "한남충", "빡대가리", "돌대가리", "대가리", "호로", "버러지", "벌레", "역겹", "꼴통", "짱깨", "쪽바리",
    "정신병", "찌질", "한심", "머저리", "저능", "주둥이", "아가리", "꼬라지", "재수없", "꼴페미", "애자",
)

#: English stems matched anywhere in a word (motherfucking, dickheads, shitty).
ENGLISH_STEMS: tuple[str, ...] = (
    "fuck", "shit", "bitch", "asshole", "bastard", "dick", "cunt", "whore", "slut", "retard", "idiot",
    "moron", "imbecile", "stupid", "faggot", "douche", "twat", "scum", "dumbass",
)
#: English stems matched only at the start of a word (``ass`` must not hit ``class``).
ENGLISH_WORD_STEMS: tuple[str, ...] = (
    "ass", "damn", "kill", "die", "hate", "suck", "ugly", "dumb", "piss", "crap", "trash", "garbage",
    "pathetic", "jerk", "freak", "loser", "fag", "prick", "cock", "kys", "gfy", "stfu", "useless",
    "disgusting", "worthless", "hell",
)

_COMPAT_INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"


def chosung(word: str) -> str:
    """The initial consonants of the Hangul syllables in ``word`` (``'병신' -> 'ㅂㅅ'``); others kept."""
    out = []
    for char in word:
        code = ord(char) - 0xAC00
        out.append(_COMPAT_INITIALS[code // 588] if 0 <= code < 11172 else char)
    return "".join(out)


#: Abbreviation by initial consonants -> the stems it stands for. Only stems Korean readers know in this
#: form are listed (ㅅㅂ, ㅂㅅ, ㅈㄴ ...): this is the reverse table that makes ``ko_chosung`` readable.
ABBREVIATIONS: dict[str, tuple[str, ...]] = {}
for _stem in ("시발", "씨발", "씨팔", "시팔", "병신", "새끼", "개새끼", "미친", "지랄", "존나", "닥쳐", "꺼져",
              "등신", "찐따", "애미", "또라이", "쓰레기", "걸레", "염병", "좆", "씹", "썅"):
    ABBREVIATIONS.setdefault(chosung(_stem), ())
    ABBREVIATIONS[chosung(_stem)] += (_stem,)
del _stem


def _alternation(words: tuple[str, ...]) -> str:
    return "|".join(re.escape(word) for word in sorted(set(words), key=len, reverse=True))


_STEMS_RE = re.compile(
    f"(?:{_alternation(KOREAN_STEMS)})"
    f"|(?:{_alternation(ENGLISH_STEMS)})"
    f"|(?<![A-Za-z])(?:{_alternation(ENGLISH_WORD_STEMS)})",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"\S+")


class Word(NamedTuple):
    """One whitespace-separated word: its text, span in the text and the toxic stem inside it.

    ``focus`` is ``(start, end)`` relative to the word (the first stem to the end of the last one),
    or ``None`` when the word holds no known stem.
    """

    text: str
    start: int
    end: int
    focus: tuple[int, int] | None


def find_stems(text: str) -> list[tuple[int, int]]:
    """Spans of the lexicon stems in ``text``."""
    return [match.span() for match in _STEMS_RE.finditer(text)]


def locate(text: str) -> tuple[Word, ...]:
    """The words of ``text`` with the toxic stem of each (see :class:`Word`)."""
    stems = find_stems(text)
    words: list[Word] = []
    index = 0
    for match in _WORD_RE.finditer(text):
        start, end = match.span()
        focus = None
        while index < len(stems) and stems[index][1] <= start:
            index += 1
        probe = index
        while probe < len(stems) and stems[probe][0] < end:
            first = stems[probe][0] - start if focus is None else focus[0]
            focus = (max(first, 0), min(stems[probe][1], end) - start)
            probe += 1
        words.append(Word(match.group(), start, end, focus))
    return tuple(words)
