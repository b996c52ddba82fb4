"""English obfuscations: character typos (DeepWordBug, Gao et al. 2018; Pruthi et al. 2019), leetspeak
and Hangul spelling of English insults.

=================  ===============  ===================================================
strategy           family           example
=================  ===============  ===================================================
``typo_swap``      typo             swap two adjacent inner letters: idiot→idoit
``typo_delete``    typo             drop an inner letter: stupid→stpid
``typo_insert``    typo             double a letter or add its keyboard neighbour: fuck→fucck
``typo_keyboard``  typo             an inner letter -> a QWERTY neighbour: bitch→bitxh
``en_typo``        typo             one of the four, one per word (as Pruthi et al.)
``en_leet``        iconological     leetspeak letters: shit→sh1t, ass→@$$
``en_hangul``      transliteration  English insult spelled in Hangul: fuck→퍽/뻑, shit→쉿
=================  ===============  ===================================================

Typos keep the first and last letter of words longer than three letters (Pruthi et al.: readers
recover such words, and word-recognition models are trained on exactly that).
"""

from __future__ import annotations

import re

from content_arena.attacks.leet import LEET
from content_arena.attacks.transform import Site, Transformation, rule_strategy

__all__ = [
    "HANGUL_SPELLINGS",
    "KEYBOARD_NEIGHBOURS",
    "CharDelete",
    "CharInsert",
    "CharSwap",
    "Hangulize",
    "KeyboardTypo",
    "Leet",
    "Typo",
]

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, str]:
    where = {char: (r, c) for r, row in enumerate(_ROWS) for c, char in enumerate(row)}
    out: dict[str, str] = {}
    for char, (r, c) in where.items():
        near = [
            _ROWS[rr][cc]
            for rr, cc in ((r, c - 1), (r, c + 1), (r - 1, c), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c))
            if 0 <= rr < 3 and 0 <= cc < len(_ROWS[rr])
        ]
        out[char] = "".join(near)
    return out


#: QWERTY neighbours of each lower-case letter (same row, and the row above/below).
KEYBOARD_NEIGHBOURS: dict[str, str] = _neighbours()
_LATIN_RUN = re.compile("[A-Za-z]{3,}")


def _same_case(model: str, char: str) -> str:
    return char.upper() if model.isupper() else char


def _inner(run_start: int, run_end: int) -> range:
    """Positions a typo may touch: all but the first and last letter of runs longer than three."""
    return range(run_start + 1, run_end - 1) if run_end - run_start > 3 else range(run_start, run_end)


class CharSwap(Transformation):
    """Swap two adjacent letters inside a word (idiot→idoit)."""

    name = "typo_swap"
    description = "swap two adjacent inner letters (idiot→idoit)"
    family, script, stage, max_sites = "typo", "en", 1, 1

    def find_sites(self, word: str) -> list[Site]:
        sites: list[Site] = []
        for match in _LATIN_RUN.finditer(word):
            inner = _inner(*match.span())
            for i in inner:
                if i + 1 in inner and word[i] != word[i + 1]:
                    sites.append((i, i + 2, (word[i + 1] + word[i],)))
        return sites


class CharDelete(Transformation):
    """Drop one inner letter (stupid→stpid)."""

    name = "typo_delete"
    description = "drop an inner letter (stupid→stpid)"
    family, script, stage, max_sites = "typo", "en", 1, 1

    def find_sites(self, word: str) -> list[Site]:
        return [(i, i + 1, ("",)) for m in _LATIN_RUN.finditer(word) if m.end() - m.start() > 3
                for i in _inner(*m.span())]


class CharInsert(Transformation):
    """Insert a letter after an inner letter: the same letter again or a keyboard neighbour (fuck→fucck)."""

    name = "typo_insert"
    description = "insert a doubled letter or a keyboard neighbour (fuck→fucck, fuck→fuxck)"
    family, script, stage, max_sites = "typo", "en", 1, 1

    def find_sites(self, word: str) -> list[Site]:
        sites: list[Site] = []
        for match in _LATIN_RUN.finditer(word):
            for i in range(match.start() + 1, match.end()):
                prev = word[i - 1]
                near = KEYBOARD_NEIGHBOURS.get(prev.lower(), "")[:2]
                sites.append((i, i, (prev, *(_same_case(prev, c) for c in near))))
        return sites


class KeyboardTypo(Transformation):
    """Replace an inner letter by a QWERTY neighbour (bitch→bitxh)."""

    name = "typo_keyboard"
    description = "an inner letter replaced by a keyboard neighbour (bitch→bitxh)"
    family, script, stage, max_sites = "typo", "en", 1, 1

    def find_sites(self, word: str) -> list[Site]:
        sites: list[Site] = []
        for match in _LATIN_RUN.finditer(word):
            for i in _inner(*match.span()):
                near = KEYBOARD_NEIGHBOURS.get(word[i].lower(), "")
                if near:
                    sites.append((i, i + 1, tuple(_same_case(word[i], c) for c in near)))
        return sites


class Typo(Transformation):
    """One typo per word, of any of the four kinds (the Pruthi et al. attack set)."""

    name = "en_typo"
    description = "one swap/delete/insert/keyboard typo per word (Pruthi et al. 2019)"
    family, script, stage, max_sites = "typo", "en", 1, 1
    kinds: tuple[type[Transformation], ...] = (CharSwap, CharDelete, CharInsert, KeyboardTypo)

    def __init__(self, rate: float | None = None) -> None:
        super().__init__(rate)
        self._kinds = tuple(kind() for kind in self.kinds)

    def find_sites(self, word: str) -> list[Site]:
        return [site for kind in self._kinds for site in kind.sites(word)]


class Leet(Transformation):
    """Leetspeak letters: a→4/@, e→3, i→1/!, o→0, s→5/$, t→7 (shit→sh1t, ass→@$$)."""

    name = "en_leet"
    description = "leetspeak letters in the insult (shit→sh1t, ass→@$$)"
    family, script, stage = "iconological", "en", 2

    def find_sites(self, word: str) -> list[Site]:
        return [(i, i + 1, LEET[c]) for i, c in enumerate(word) if c in LEET]


#: English insult -> Hangul spellings a Korean reader pronounces back to it (the reverse table).
HANGUL_SPELLINGS: dict[str, tuple[str, ...]] = {
    "motherfucker": ("마더퍼커", "마더뻐커"), "motherfucking": ("마더퍼킹", "마더뻐킹"),
    "fucking": ("퍼킹", "뻐킹", "퍼낑"), "fucker": ("퍼커", "뻐커"), "fuck": ("퍽", "뻑", "퍼크"),
    "shit": ("쉿", "싯", "쉣"), "shitty": ("쉬티", "쉿티"), "bitch": ("빗치", "비치", "빗취"), "bitches": ("빗치스",),
    "asshole": ("애스홀", "에스홀"), "ass": ("애스", "에스"), "bastard": ("배스터드", "배스타드"), "damn": ("댐", "뎀"),
    "dick": ("딕",), "dickhead": ("딕헤드",), "cunt": ("컨트",), "stupid": ("스투피드", "스튜핏"),
    "idiot": ("이디엇", "이디어트"), "moron": ("모론", "모롱"), "whore": ("호어",), "slut": ("슬럿",),
    "retard": ("리타드", "리타아드"), "retarded": ("리타디드",), "loser": ("루저",), "kill": ("킬",), "die": ("다이",),
    "hate": ("헤이트", "헤잇"), "suck": ("썩", "서크"), "sucks": ("썩스",), "ugly": ("어글리",), "dumb": ("덤",),
    "dumbass": ("덤애스",), "trash": ("트래쉬", "트레시"), "garbage": ("가비지",), "jerk": ("저크",),
    "freak": ("프릭",), "faggot": ("패곳", "페곳"), "fag": ("패그",), "scum": ("스컴",), "pathetic": ("퍼세틱",),
    "crap": ("크랩",), "piss": ("피스",), "hell": ("헬",), "useless": ("유즐리스",), "imbecile": ("임베실",),
    "douche": ("두쉬",), "prick": ("프릭",), "twat": ("트왓",),
}
_HANGUL_RE = re.compile(
    "(?<![a-z])(?:" + "|".join(sorted(HANGUL_SPELLINGS, key=len, reverse=True)) + ")(?![a-z])", re.IGNORECASE
)
# Inside longer words: a known word at the start (dickheads), or a strong stem anywhere (bullshit).
_PREFIX_RE = re.compile(
    "(?<![a-z])(?:" + "|".join(sorted(HANGUL_SPELLINGS, key=len, reverse=True)) + ")|(?:fuck|shit|bitch|dick|cunt)",
    re.IGNORECASE,
)


class Hangulize(Transformation):
    """An English insult spelled in Hangul, the way Korean users write it: fuck→퍽/뻑, shit→쉿, bitch→빗치.

    Whole known words are replaced (``fucking``→``퍼킹``); inside a longer word the known part is
    (``dickheads``→``딕heads``). :data:`HANGUL_SPELLINGS` is the reverse table.
    """

    name = "en_hangul"
    description = "English insults spelled in Hangul (fuck→퍽/뻑, shit→쉿, bitch→빗치)"
    family, script, stage, lexical = "transliteration", "en", 3, True

    def find_sites(self, word: str) -> list[Site]:
        found = list(_HANGUL_RE.finditer(word)) or list(_PREFIX_RE.finditer(word))
        return [(m.start(), m.end(), HANGUL_SPELLINGS[m.group().lower()]) for m in found]


ENGLISH_TRANSFORMATIONS: tuple[type[Transformation], ...] = (
    CharSwap, CharDelete, CharInsert, KeyboardTypo, Typo, Leet, Hangulize,
)
STRATEGIES = {t.name: rule_strategy(t) for t in ENGLISH_TRANSFORMATIONS}
