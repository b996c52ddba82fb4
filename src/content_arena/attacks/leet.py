"""Respellings a reader decodes at a glance: leetspeak, sound-alike syllables, romanisation.

Two layers, both table driven:

* whole words: a curated table of Korean and English insults with their common respellings
  (``시발`` -> ``18`` / ``시bal`` / ``ㅅ1발`` / ``C발`` / ``씌발``, ``fuck`` -> ``phuck`` / ``fvck``);
* single characters: Latin letters -> leet digits/symbols (a->4/@, e->3, i->1/!, o->0, s->5/$, t->7),
  Hangul syllables -> variants derived from their jamo (tensing ``시``->``씨``, aspiration ``발``->``팔``,
  vowel swaps ``새``->``세``, ``시``->``싀``, jamo+digit look-alikes ``시``->``ㅅ1``, ``개``->``7H``,
  number/letter sound-alikes ``팔``->``8``, ``지``->``G``, and romanisation ``발``->``bal``).

Per-syllable variants are derived once per syllable and cached.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

from content_arena.attacks.base import Strategy, check_rate, pick, pick_positions
from content_arena.attacks.registry import register
from content_arena.hangul import COMPAT_INITIALS, compose_syllable, decompose_syllable

__all__ = ["ENGLISH_RESPELLINGS", "KOREAN_RESPELLINGS", "LEET", "LeetPhonetic", "syllable_respellings"]

KOREAN_RESPELLINGS: dict[str, tuple[str, ...]] = {
    "시발": ("18", "씨발", "시bal", "ㅅ1발", "C발", "씌발", "쉬발", "시8", "십팔", "sibal", "ㅅㅂ"),
    "씨발": ("18", "시발", "ssibal", "ㅆ1발", "C발", "씌발", "쒸발", "씨8", "씨bal", "ㅆㅂ"),
    "시팔": ("18", "시8", "C팔", "ㅅ1팔", "sipal"),
    "씨팔": ("18", "씨8", "C팔", "ㅆ1팔", "ssipal"),
    "씹": ("씝", "ssip", "ㅆ1ㅂ"),
    "병신": ("븅신", "빙신", "병sin", "byungsin", "ㅂㅅ", "병1신", "뵹신", "병쉰"),
    "개새끼": ("개섀끼", "개새기", "7H새끼", "개색기", "개쌔끼", "gaesaekki", "개새77", "ㄱㅅㄲ", "개섀기"),
    "새끼": ("섀끼", "새기", "색기", "쌔끼", "saekki", "새77", "ㅅㄲ"),
    "미친": ("미췬", "밋친", "michin", "ㅁㅊ", "미1친", "믜친"),
    "지랄": ("G랄", "ㅈㄹ", "지럴", "jiral", "즤랄", "지1랄"),
    "좆": ("좃", "조옷", "jot", "졷"),
    "존나": ("졸라", "존내", "jonna", "ㅈㄴ", "죤나", "존1나"),
    "닥쳐": ("닥처", "닭쳐", "dakchyeo", "ㄷㅊ", "닥1쳐"),
    "꺼져": ("꺼저", "ㄲㅈ", "kkeojyeo", "꺼졍"),
    "등신": ("등sin", "뜽신", "ㄷㅅ", "등1신"),
    "찐따": ("jjinta", "ㅉㄸ", "찐타"),
    "애미": ("에미", "ㅇㅁ", "aemi", "앰"),
    "엠창": ("M창", "엠챵"),
    "놈": ("넘", "늠", "nom"),
    "년": ("뇬", "nyeon", "련"),
    "죽어": ("주거", "쥬거", "jugeo"),
    "죽여": ("주겨", "쥬겨", "jugyeo"),
    "바보": ("바부", "babo", "빠보"),
    "멍청이": ("멍청2", "멍충이", "멍청1", "멍칭이"),
    "또라이": ("또라2", "ㄸㄹㅇ", "또롸이", "또라1"),
    "쓰레기": ("쓰렉", "쓰래기", "sseuregi", "ㅆㄹㄱ"),
    "걸레": ("걸래", "ㄱㄹ", "geolle"),
    "염병": ("염뱅", "ㅇㅂ", "yeombyeong"),
}

ENGLISH_RESPELLINGS: dict[str, tuple[str, ...]] = {
    "fuck": ("fuk", "phuck", "fvck", "fcuk", "fook", "fuq", "fukk", "phuk"),
    "fucking": ("fukin", "fkn", "fuckin", "phucking", "fcking", "effing"),
    "fucker": ("fukker", "phucker", "fuker"),
    "shit": ("shyt", "sh1t", "shiit", "sht", "shite", "$hit"),
    "bitch": ("biatch", "bytch", "b1tch", "beotch", "biotch", "bish"),
    "asshole": ("a$$hole", "azzhole", "ashole", "a-hole", "arsehole", "assh0le"),
    "ass": ("azz", "a$$", "arse"),
    "bastard": ("basterd", "bastid", "b@stard"),
    "damn": ("dayum", "dang", "d@mn"),
    "dick": ("dik", "d1ck", "dikk", "dic"),
    "cunt": ("kunt", "cvnt", "c*nt"),
    "stupid": ("stoopid", "stupit", "stewpid"),
    "idiot": ("idiat", "idjit", "id10t", "eediot"),
    "moron": ("moran", "m0r0n"),
    "whore": ("hoar", "h0re", "hore"),
    "slut": ("slutt", "sl00t", "slvt"),
    "retard": ("retart", "tard", "ret@rd"),
    "loser": ("looser", "luzer", "l0ser"),
    "kill": ("kil", "k1ll", "keel"),
    "die": ("dye", "d1e"),
    "hate": ("h8", "h8te"),
    "suck": ("suk", "sux", "sukk"),
    "sucks": ("sux", "suckz"),
    "ugly": ("ugli", "fugly", "ug1y"),
    "dumb": ("dum", "dumm", "dvmb"),
    "piss": ("pi$$", "pis"),
    "crap": ("krap", "crp"),
    "trash": ("tr@sh", "trsh"),
    "garbage": ("garbaj", "g@rbage"),
    "hell": ("hel", "h3ll"),
    "pathetic": ("pathetik", "p@thetic"),
    "jerk": ("jurk", "j3rk"),
    "freak": ("freek", "phreak"),
    "you": ("u", "yu", "yoo"),
    "your": ("ur", "yur", "yor"),
    "are": ("r",),
}

#: Latin letter -> leetspeak replacements (upper-case letters map like their lower-case forms).
LEET: dict[str, tuple[str, ...]] = {
    "a": ("4", "@"), "b": ("8",), "e": ("3",), "g": ("9",), "i": ("1", "!"), "l": ("1", "|"),
    "o": ("0",), "s": ("5", "$"), "t": ("7", "+"), "z": ("2",),
}
LEET.update({letter.upper(): options for letter, options in list(LEET.items())})

# --------------------------------------------------------------------------- syllable respellings

_INITIAL_ROMAN = ("g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p", "h")
_MEDIAL_ROMAN = (
    "a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo", "we", "wi", "yu",
    "eu", "ui", "i",
)
_FINAL_ROMAN = (
    "", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m", "p", "p", "t", "t",
    "ng", "t", "t", "k", "t", "p", "t",
)


def _jamo_index_map(table: str, pairs: Iterable[tuple[str, str]]) -> dict[int, tuple[int, ...]]:
    out: dict[int, tuple[int, ...]] = {}
    for source, targets in pairs:
        out[table.index(source)] = tuple(table.index(target) for target in targets)
    return out


_MEDIALS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
# Tensing (ㅅ->ㅆ), de-tensing (ㅆ->ㅅ) and aspiration (ㅂ->ㅍ) of the initial consonant.
_INITIAL_SWAPS = _jamo_index_map(COMPAT_INITIALS, [
    ("ㄱ", "ㄲㅋ"), ("ㄲ", "ㄱ"), ("ㄷ", "ㄸㅌ"), ("ㄸ", "ㄷ"), ("ㅂ", "ㅃㅍ"), ("ㅃ", "ㅂ"), ("ㅅ", "ㅆ"),
    ("ㅆ", "ㅅ"), ("ㅈ", "ㅉㅊ"), ("ㅉ", "ㅈ"), ("ㅊ", "ㅉ"), ("ㅋ", "ㄲ"), ("ㅌ", "ㄸ"), ("ㅍ", "ㅃ"),
])
# Vowels that sound (nearly) alike or are common slang spellings (놈->넘, 년->뇬, 시->싀/쉬, 새->세).
_MEDIAL_SWAPS = _jamo_index_map(_MEDIALS, [
    ("ㅐ", "ㅔㅒ"), ("ㅔ", "ㅐ"), ("ㅒ", "ㅖ"), ("ㅖ", "ㅒ"), ("ㅙ", "ㅞㅚ"), ("ㅚ", "ㅙㅞ"), ("ㅞ", "ㅙ"),
    ("ㅕ", "ㅛ"), ("ㅛ", "ㅕ"), ("ㅣ", "ㅢㅟ"), ("ㅢ", "ㅣ"), ("ㅗ", "ㅓ"), ("ㅜ", "ㅠ"),
])
# Medial (in a syllable without final) -> Latin/digit look-alikes written after the initial jamo.
_MEDIAL_LOOKALIKES = {_MEDIALS.index("ㅣ"): ("1", "l"), _MEDIALS.index("ㅏ"): ("r",), _MEDIALS.index("ㅐ"): ("H",)}
_INITIAL_LOOKALIKES = {COMPAT_INITIALS.index("ㄱ"): "7"}
# Syllables that sound like a digit or a Latin letter name.
_SOUND_ALIKES: dict[str, tuple[str, ...]] = {
    "시": ("C",), "씨": ("C",), "지": ("G",), "쥐": ("G",), "비": ("B",), "디": ("D",), "피": ("P",),
    "티": ("T",), "엠": ("M",), "엔": ("N",), "큐": ("Q",), "유": ("U",),
    "일": ("1",), "이": ("2",), "삼": ("3",), "사": ("4",), "오": ("5",), "육": ("6",), "칠": ("7",),
    "팔": ("8",), "발": ("8",), "빨": ("8",), "구": ("9",), "십": ("10",), "공": ("0",), "빵": ("0",),
}

_SYLLABLE_CACHE: dict[str, tuple[str, ...]] = {}


def _derive_syllable_respellings(char: str) -> tuple[str, ...]:
    initial, medial, final = decompose_syllable(char)
    options: list[str] = list(_SOUND_ALIKES.get(char, ()))
    options += [compose_syllable(other, medial, final) for other in _INITIAL_SWAPS.get(initial, ())]
    options += [compose_syllable(initial, other, final) for other in _MEDIAL_SWAPS.get(medial, ())]
    if final == 0 and medial in _MEDIAL_LOOKALIKES:
        head = _INITIAL_LOOKALIKES.get(initial, COMPAT_INITIALS[initial])
        options += [head + tail for tail in _MEDIAL_LOOKALIKES[medial]]
    roman = _INITIAL_ROMAN[initial] + _MEDIAL_ROMAN[medial] + _FINAL_ROMAN[final]
    options.append(roman)
    return tuple(dict.fromkeys(option for option in options if option and option != char))


def syllable_respellings(char: str) -> tuple[str, ...]:
    """Readable respellings of one Hangul syllable (cached): ``'시'`` -> ``('C', '씨', '싀', '쉬', 'ㅅ1', ...)``."""
    options = _SYLLABLE_CACHE.get(char)
    if options is None:
        options = _SYLLABLE_CACHE[char] = _derive_syllable_respellings(char)
    return options


# --------------------------------------------------------------------------- word matching


def _trie_pattern(words: Iterable[str]) -> str:
    """A regex alternation for ``words`` factored as a trie (first characters are tried once)."""
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def render(node: dict[str, dict]) -> str:
        branches = [re.escape(char) + render(child) for char, child in sorted(node.items()) if char]
        optional = "" in node
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 and not optional else "(?:" + "|".join(branches) + ")"
        if optional:  # the word may end here; prefer the longer match first
            body = body + "?" if body.startswith("(?:") else "(?:" + body + ")?"
        return body

    return render(trie)


def _first_characters(words: Iterable[str]) -> str:
    return "".join(re.escape(char) for char in sorted({c for word in words for c in (word[0], word[0].upper())}))


# The leading character-class lookahead lets the regex engine skip most positions cheaply; ASCII-only
# case folding keeps oddities such as "ſ" or the Kelvin sign from matching English keys.
_WORDS_RE = re.compile(
    f"(?=[{_first_characters([*KOREAN_RESPELLINGS, *ENGLISH_RESPELLINGS])}])"
    f"(?:(?P<ko>{_trie_pattern(KOREAN_RESPELLINGS)})"
    f"|(?<![A-Za-z])(?P<en>{_trie_pattern(ENGLISH_RESPELLINGS)})(?![A-Za-z]))",
    re.IGNORECASE | re.ASCII,
)


def _match_case(original: str, replacement: str) -> str:
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


@register
class LeetPhonetic(Strategy):
    """Leetspeak and phonetic respellings (``시bal``, ``ㅅ1발``, ``씌발``, ``18``, ``C발``, ``fvck``, ``sh1t``).

    Each known insult is respelled with probability ``word_rate``; then about ``rate`` of the other
    Hangul syllables / leet-able Latin letters are respelled (at least one change per text when
    anything is eligible).
    """

    name = "leet_phonetic"
    description = "leetspeak and phonetic respellings (시bal, ㅅ1발, 씌발, 18, C발, fvck, sh1t)"

    def __init__(self, rate: float = 0.3, word_rate: float = 0.6) -> None:
        self.rate = check_rate(rate)
        if not 0.0 <= word_rate <= 1.0:
            raise ValueError(f"word_rate must be in [0, 1], got {word_rate}")
        self.word_rate = float(word_rate)

    def transform(self, text: str, rng: random.Random) -> str:
        chars = list(text)
        protected: set[int] = set()
        for match in _WORDS_RE.finditer(text):
            if rng.random() >= self.word_rate:
                continue
            word = match.group()
            table = KOREAN_RESPELLINGS if match.lastgroup == "ko" else ENGLISH_RESPELLINGS
            options = table.get(word.lower())
            if not options:
                continue
            start, end = match.span()
            chars[start] = _match_case(word, pick(options, rng))
            for index in range(start + 1, end):
                chars[index] = ""
            protected.update(range(start, end))
        leet = LEET
        positions = [index for index, char in enumerate(text) if char in leet or "\uac00" <= char <= "\ud7a3"]
        if protected:
            positions = [index for index in positions if index not in protected]
        # A respelled word already changed the text; otherwise make sure at least one character does.
        for index in pick_positions(positions, self.rate, rng, at_least_one=not protected):
            char = text[index]
            chars[index] = pick(leet.get(char) or syllable_respellings(char), rng)
        return "".join(chars)
