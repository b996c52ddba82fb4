"""The rule families (Korean phonological / iconological / transliteration / syntactic / pragmatic,
English typos / leet / Hangul spelling), difficulty levels and the readability proxy."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from content_arena.attacks import (
    RULE_STRATEGIES,
    RuleStrategy,
    available_strategies,
    get_strategy,
    resolve_strategies,
)
from content_arena.attacks.difficulty import KO_POOL, Difficulty, chain
from content_arena.attacks.english import (
    HANGUL_SPELLINGS,
    KEYBOARD_NEIGHBOURS,
    CharDelete,
    CharInsert,
    CharSwap,
    Hangulize,
    KeyboardTypo,
    Leet,
)
from content_arena.attacks.korean import (
    FILLERS_EN,
    FILLERS_KO,
    SYMBOLS,
    Chosung,
    ConsonantSwap,
    KeyboardTyping,
    Pronounce,
    Repeat,
    Romanize,
    ShapeLookalike,
    VowelSwap,
    keyboard_decode,
    romanize,
)
from content_arena.attacks.leet import LEET
from content_arena.attacks.lexicon import ABBREVIATIONS, chosung, locate
from content_arena.attacks.readability import (
    edit_distance,
    is_readable,
    reading_distance,
    reading_key,
    recoverable,
)
from content_arena.defender.normalizer import normalize

KOREAN = ["이 씨발 개새끼야 꺼져", "병신 같은 새끼 ㅋㅋ", "미친놈아 닥쳐", "존나 못생겼네", "시발놈아 죽어라",
          "살다 살다 이런 병신은 처음 봄", "감독 빠는 머저리들 수준 ㅋㅋ", "운영진 개같네..."]
ENGLISH = ["you are a fucking idiot", "Shut up, you stupid bitch", "go kill yourself loser", "what a dumb asshole",
           "the mods here are power-tripping dickheads", "hey dumbass, learn the rules"]
FAMILIES = [name for name in available_strategies() if name not in (*RULE_STRATEGIES, "llm", "adaptive")]
LEVELS = [name for name in FAMILIES if "_level" in name]
SINGLE = [name for name in FAMILIES if name not in LEVELS]
KO_ONLY = {"ko_consonant", "ko_vowel", "ko_pronounce", "ko_shape", "ko_roman", "ko_keyboard", "ko_chosung",
           "ko_level2", "ko_level3", "ko_level4"}
EN_ONLY = {"typo_swap", "typo_delete", "typo_insert", "typo_keyboard", "en_typo", "en_leet", "en_hangul",
           "en_level2", "en_level3", "en_level4"}
# Families whose examples need a word they know (a stem with a known abbreviation / English spelling).
TABLE_DRIVEN = {"ko_chosung", "ko_pronounce", "ko_keyboard", "en_hangul"}


def _examples(name: str) -> list[str]:
    if name in KO_ONLY:
        return KOREAN
    if name in EN_ONLY:
        return ENGLISH
    return KOREAN + ENGLISH


def _changed_words(text: str, variant: str) -> list[tuple[str, str]]:
    """(original word, new word) pairs, when both split into the same number of words."""
    before, after = text.split(), variant.split()
    if len(before) != len(after):
        return [(text, variant)]
    return [(a, b) for a, b in zip(before, after, strict=True) if a != b]


# --------------------------------------------------------------------------- every family


def test_families_are_registered_with_descriptions() -> None:
    assert len(SINGLE) == 17 and LEVELS == ["ko_level2", "ko_level3", "ko_level4", "en_level2", "en_level3", "en_level4"]
    for name in FAMILIES:
        strategy = get_strategy(name)
        assert isinstance(strategy, RuleStrategy) and strategy.name == name and strategy.description
    # "all" still means the six original rules: the loop's defaults depend on them.
    assert [s.name for s in resolve_strategies("all")] == list(RULE_STRATEGIES)


@pytest.mark.parametrize("name", FAMILIES)
def test_family_is_deterministic_and_varies(name: str) -> None:
    strategy = get_strategy(name)
    examples = _examples(name)
    changed = varied = 0
    for text in examples:
        variants = [strategy.attack(text, seed) for seed in range(8)]
        assert variants == [strategy.attack(text, seed) for seed in range(8)]
        changed += sum(v != text for v in variants)
        varied += len(set(variants)) > 1
    assert changed >= 0.7 * 8 * len(examples), name
    if name not in TABLE_DRIVEN:
        assert varied >= 0.6 * len(examples), name
    assert strategy.attack_many(examples, seed=5) == [strategy.attack(t, 5) for t in examples]
    assert strategy.attack("") == "" and strategy.attack("   ") == "   "


@pytest.mark.parametrize("name", [n for n in SINGLE if n not in EN_ONLY])
def test_korean_families_edit_the_insult(name: str) -> None:
    strategy = get_strategy(name)
    for seed in range(10):
        words = strategy.attack("좋은 아침 씨발놈아 안녕", seed).split()
        assert words[2] != "씨발놈아", (name, words)  # the word holding the stem is always edited


@pytest.mark.parametrize("name", SINGLE)
def test_every_changed_word_stays_readable(name: str) -> None:
    """The readability proxy (reading key within 0.5, or a reverse table) holds for every edit."""
    strategy = get_strategy(name)
    for text in _examples(name):
        for seed in range(12):
            for before, after in _changed_words(text, strategy.attack(text, seed)):
                assert recoverable(before, after), (name, before, after, reading_distance(before, after))


@pytest.mark.parametrize("name", ["ko_shape", "ko_roman", "ko_chosung", "ko_consonant", "en_hangul"])
def test_families_survive_the_normaliser(name: str) -> None:
    """Unlike the unicode tricks, these change what the model sees after normalisation. The
    normaliser reads romanised Korean back (step 9), so many ko_roman variants (``병sin``, ``ssibal``)
    and ko_shape's ``ㄴr`` come back whole; the families still change at least half the texts (an
    irregular spelling such as ``byungsin`` or ``juku`` reads back as another word)."""
    strategy = get_strategy(name)
    changed = survived = 0
    for text in _examples(name):
        for seed in range(3):
            variant = strategy.attack(text, seed)
            if variant != text:
                changed += 1
                survived += normalize(variant) != normalize(text)
                if name not in ("ko_roman", "ko_shape"):
                    assert normalize(variant) != normalize(text), (text, variant)
    assert changed >= len(_examples(name))
    assert survived >= 0.5 * changed, (name, survived, changed)


def test_normaliser_reads_back_latin_written_against_hangul() -> None:
    assert normalize("이런 병sin은") == normalize("이런 병신은")
    assert normalize("존ㄴr 못생겼네") == normalize("존나 못생겼네")
    assert normalize("michinnom아 dak쳐") == normalize("미친놈아 닥쳐")
    # A Latin run apart from Hangul, or one that does not split into romanised syllables, stays.
    assert normalize("michin nom") == "michin nom"  # no Hangul in the text
    assert normalize("pc방 tv를") == "pc방 tv를"


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=30), st.integers(min_value=0, max_value=2**32))
def test_families_never_raise(text: str, seed: int) -> None:
    for name in FAMILIES:
        strategy = get_strategy(name)
        assert isinstance(strategy.transform(text, random.Random(seed)), str)


# --------------------------------------------------------------------------- phonological


def test_consonant_tensing_aspiration_and_final_neutralisation() -> None:
    t = ConsonantSwap()
    assert {"씨발", "시빨", "시팔"} <= set(t.neighbours("시발"))
    assert "좃" in t.neighbours("좆") and "닭쳐" in t.neighbours("닥쳐")
    assert "쌔끼" in t.neighbours("새끼")
    assert t.neighbours("아") == []


def test_vowel_swaps() -> None:
    t = VowelSwap()
    assert "세끼" in t.neighbours("새끼")
    assert {"싀발", "쉬발"} <= set(t.neighbours("시발"))
    assert "넘" in t.neighbours("놈") and "꺼저" in t.neighbours("꺼져") and "닥처" in t.neighbours("닥쳐")
    assert t.neighbours("이") == ["의"]  # 이→위 would read as another word


@pytest.mark.parametrize(
    ("word", "spelled"),
    [("죽어", "주거"), ("병신아", "병시나"), ("축하", "추카"), ("먹는", "멍는"), ("좋아", "조아"), ("않아", "아나"),
     ("좋다", "조타"), ("학교", "학꾜"), ("닭이", "달기")],
)
def test_spelled_as_pronounced(word: str, spelled: str) -> None:
    assert spelled in Pronounce().neighbours(word)


# --------------------------------------------------------------------------- iconological / transliteration


def test_shape_lookalikes() -> None:
    t = ShapeLookalike()
    assert {"ㅅl", "人ㅣ", "ㅅ1"} <= set(t.neighbours("시"))
    assert "7ㅐ" in t.neighbours("개") and "ㄱH" in t.neighbours("개")
    assert "ol" not in t.neighbours("이") and "o1" not in t.neighbours("이")  # a lone syllable must look Korean
    assert all(reading_key(v) == reading_key("시발") for v in t.neighbours("시발") if "|" not in v)


def test_romanisation_and_keyboard_typing() -> None:
    assert romanize("씨") == "ssi" and romanize("병", 1) == "byung" and romanize("병", 2) == "pyeong"
    assert {"ssi발", "si발", "씨bal", "씨pal"} == set(Romanize().neighbours("씨발"))
    assert "byung신" in Romanize().neighbours("병신")
    assert "ssibal" in {get_strategy("ko_roman").attack("씨발", seed) for seed in range(20)}
    assert KeyboardTyping().neighbours("시발") == ["tlqkf"]
    assert KeyboardTyping().neighbours("병신") == ["qudtls"]
    assert keyboard_decode("tlqkf") == "시발" and keyboard_decode("Tlqkf") == "씨발" and keyboard_decode("qudtls") == "병신"
    strategy = get_strategy("ko_keyboard")
    assert strategy.attack("이 병신아") == "이 qudtls아"  # only the stem is typed


def test_abbreviation_by_initial_consonants() -> None:
    assert chosung("병신") == "ㅂㅅ"
    assert set(Chosung().neighbours("씨발")) == {"ㅆㅂ", "ㅆ발"}
    assert "ㅂㅅ아" in Chosung().neighbours("병신아")
    assert Chosung().neighbours("바나나") == []
    assert "병신" in ABBREVIATIONS["ㅂㅅ"]


def test_english_in_hangul() -> None:
    t = Hangulize()
    assert set(t.neighbours("fuck")) == {"퍽", "뻑", "퍼크"}
    assert t.neighbours("Fucking") == list(HANGUL_SPELLINGS["fucking"])
    assert t.neighbours("dickheads") == ["딕헤드s"]
    assert t.neighbours("class") == [] and t.neighbours("bullshit") == ["bull쉿", "bull싯", "bull쉣"]


# --------------------------------------------------------------------------- syntactic / pragmatic


def test_repetition() -> None:
    t = Repeat()
    assert {"씨이발", "씨이이발", "씨바알"} <= set(t.neighbours("씨발"))
    assert "주우거" in t.neighbours("주거") and "fuuck" in t.neighbours("fuck") and "fuckkk" in t.neighbours("fuck")


@pytest.mark.parametrize(("name", "inserts"), [("symbol", SYMBOLS), ("filler", FILLERS_KO + FILLERS_EN)])
def test_insertions_only_insert(name: str, inserts: tuple[str, ...]) -> None:
    def strip(text: str) -> str:
        for piece in sorted(inserts, key=len, reverse=True):
            text = text.replace(piece, "")
        return text.replace(" ", "")

    strategy = get_strategy(name)
    for text in KOREAN + ENGLISH:
        for seed in range(6):
            variant = strategy.attack(text, seed)
            assert variant != text and strip(variant) == strip(text)
            if len(variant.split()) == len(text.split()):
                for before, after in _changed_words(text, variant):
                    assert len(after) - len(before) <= 2 * max(len(p) for p in inserts)  # at most two per word


def test_typos_follow_pruthi() -> None:
    word = "stupid"
    for transformation in (CharSwap(), CharDelete(), CharInsert(), KeyboardTypo()):
        for variant in transformation.neighbours(word):
            assert variant[0] == "s" and variant[-1] == "d"  # first and last letters kept
            assert edit_distance(word, variant) == 1
    assert "idoit" in CharSwap().neighbours("idiot") and "stpid" in CharDelete().neighbours("stupid")
    assert all(v[3] in KEYBOARD_NEIGHBOURS["c"] for v in KeyboardTypo().neighbours("fuck") if v[3] != "k")
    assert "fucck" in CharInsert().neighbours("fuck")
    for variant in get_strategy("en_typo").attack_many(ENGLISH, seed=2):
        assert variant.count(" ") >= 1


def test_leet_letters() -> None:
    variants = set(Leet().neighbours("shit"))
    assert {"5hit", "$hit", "sh1t", "sh!t", "shi7", "shi+"} == variants
    assert all(len(v) == 4 for v in variants)
    assert set(LEET["a"]) == {"4", "@"}


# --------------------------------------------------------------------------- difficulty levels


def test_levels_stack_distinct_rules_and_each_step_is_readable() -> None:
    pool = [t() for t in KO_POOL]
    for level in (2, 3, 4):
        lengths = []
        for seed in range(40):
            word = "씨발놈아"
            result, steps = chain(word, (0, 2), pool, level, random.Random(seed))
            names = [name for name, _ in steps]
            assert len(set(names)) == len(names)  # distinct rules
            assert sum(name in ("ko_shape", "ko_roman", "ko_keyboard", "ko_chosung") for name in names) <= 1
            lengths.append(len(steps))
            previous = word
            for _, after in steps:
                assert recoverable(previous, after), (steps,)
                previous = after
            assert result == previous
        assert min(lengths) == level, (level, lengths)


@pytest.mark.parametrize("name", LEVELS)
def test_levels_are_harder_than_single_rules(name: str) -> None:
    strategy = get_strategy(name)
    texts = KOREAN if name.startswith("ko") else ENGLISH
    distance = sum(edit_distance(t, strategy.attack(t, s)) for t in texts for s in range(5))
    single = get_strategy("ko_vowel" if name.startswith("ko") else "en_typo")
    base = sum(edit_distance(t, single.attack(t, s)) for t in texts for s in range(5))
    assert distance > base


def test_difficulty_parameter_and_languages() -> None:
    auto = Difficulty(level=3, language="auto")
    assert auto.name == "level3"
    mixed = "시발 fuck you"
    variants = {auto.attack(mixed, seed) for seed in range(10)}
    assert all(v.split()[0] != "시발" for v in variants)
    assert get_strategy("en_level2").attack("병신 같은 새끼") == "병신 같은 새끼"  # English pool, Korean text
    with pytest.raises(ValueError):
        Difficulty(level=0)
    with pytest.raises(ValueError):
        Difficulty(language="fr")


# --------------------------------------------------------------------------- lexicon and readability proxy


def test_lexicon_locates_the_insult() -> None:
    words = locate("이 씨발놈아 ass class")
    assert [w.text for w in words] == ["이", "씨발놈아", "ass", "class"]
    assert words[0].focus is None and words[1].focus == (0, 3) and words[2].focus == (0, 3) and words[3].focus is None


@pytest.mark.parametrize(
    "variant", ["씨발", "시빨", "ssibal", "ㅅl발", "人ㅣ발", "씨이이발", "씨바알", "씨@발", "씨🤬발", "싀발", "ㅆ1발"]
)
def test_reading_key_hears_the_same_word(variant: str) -> None:
    assert reading_key(variant) == reading_key("시발") == "sibal"


def test_readability_proxy_bounds() -> None:
    assert reading_key("fuuuck") == reading_key("phuck") == "bug"
    assert is_readable("fuck", "퍽") and is_readable("죽어", "주거") and is_readable("bitch", "bitxh")
    assert is_readable("개새끼", "7H새끼") and is_readable("병신", "byungsin")
    assert not is_readable("시발", "바보") and not is_readable("idiot", "potato")
    assert recoverable("병신", "ㅂㅅ") and recoverable("병신은", "ㅂ신은") and recoverable("시발", "tlqkf")
    assert recoverable("fucking", "퍼킹") and not recoverable("시발", "ㅂㅅ")
    assert edit_distance("idiot", "idoit") == 1 and edit_distance("", "abc") == 3


def test_the_normaliser_reads_keyboard_mode_words_back() -> None:
    """ko_keyboard is undone by the defender's normaliser (step 7), up to tense consonants (ㅆ -> ㅅ)."""
    strategy = get_strategy("ko_keyboard")
    for text, stem in (("이 시발 놈아 꺼져", "시발"), ("병신 같은 소리 하네", "병신"), ("지랄하지 마라 진짜", "지랄")):
        variant = strategy.attack(text, 0)
        assert stem not in variant and any(c.isascii() and c.isalpha() for c in variant)
        assert stem in normalize(variant), (text, variant, normalize(variant))
    assert normalize("쓰레기 같은 놈") != normalize(strategy.attack("쓰레기 같은 놈", 0))  # 쓰 comes back as 스
