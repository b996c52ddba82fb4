from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from content_arena.hangul import (
    COMPAT_TO_HALFWIDTH,
    HALFWIDTH_TO_COMPAT,
    compose_syllable,
    decompose_syllable,
    has_hangul_syllable,
    is_syllable,
    phonetic_key,
    recompose_jamo,
    syllable_to_compat,
    syllable_to_conjoining,
    to_compat_jamo,
    to_conjoining_jamo,
)

ALL_SYLLABLES = [chr(cp) for cp in range(0xAC00, 0xD7A4)]
# Syllables, Latin letters, digits, spaces and punctuation - no standalone jamo.
syllable_text = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3),
        st.sampled_from(list("abcXYZ019 .,!?~")),
    ),
    max_size=25,
)


def test_decompose_and_compose_known_syllables() -> None:
    assert decompose_syllable("가") == (0, 0, 0)
    assert decompose_syllable("발") == (7, 0, 8)
    assert decompose_syllable("힣") == (18, 20, 27)
    assert compose_syllable(10, 20) == "씨"
    assert compose_syllable(7, 0, 8) == "발"


def test_every_syllable_round_trips_through_indices_and_both_jamo_forms() -> None:
    for char in ALL_SYLLABLES:
        assert compose_syllable(*decompose_syllable(char)) == char
        assert syllable_to_conjoining(char) == unicodedata.normalize("NFD", char)
        assert unicodedata.normalize("NFC", syllable_to_conjoining(char)) == char
        assert recompose_jamo(syllable_to_compat(char)) == char


@pytest.mark.parametrize("bad", ["a", "", "가나", "ㄱ", "\u1100"])
def test_decompose_rejects_non_syllables(bad: str) -> None:
    assert not is_syllable(bad)
    with pytest.raises(ValueError):
        decompose_syllable(bad)


@pytest.mark.parametrize("indices", [(19, 0, 0), (0, 21, 0), (0, 0, 28), (-1, 0, 0)])
def test_compose_rejects_out_of_range(indices: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError):
        compose_syllable(*indices)


def test_to_compat_jamo() -> None:
    assert to_compat_jamo("씨발") == "ㅆㅣㅂㅏㄹ"
    assert to_compat_jamo("닭 dak!") == "ㄷㅏㄺ dak!"
    assert to_compat_jamo("ㅋㅋ ok") == "ㅋㅋ ok"
    assert to_compat_jamo("") == ""


def test_to_conjoining_jamo_matches_nfd_on_hangul() -> None:
    assert to_conjoining_jamo("씨발 놈") == unicodedata.normalize("NFD", "씨발 놈")
    assert to_conjoining_jamo("café") == "café"  # only Hangul is touched


def test_halfwidth_tables_are_inverse() -> None:
    assert len(COMPAT_TO_HALFWIDTH) == 51
    assert {v: k for k, v in COMPAT_TO_HALFWIDTH.items()} == HALFWIDTH_TO_COMPAT
    for half, compat in HALFWIDTH_TO_COMPAT.items():
        assert unicodedata.name(half).replace("HALFWIDTH ", "") == unicodedata.name(compat)


def test_has_hangul_syllable() -> None:
    assert has_hangul_syllable("hi 안녕")
    assert not has_hangul_syllable("ㅋㅋ hi")


@pytest.mark.parametrize(
    ("jamo", "expected"),
    [
        ("ㅆㅣ발", "씨발"),
        ("ㅆㅣㅂㅏㄹ", "씨발"),
        (unicodedata.normalize("NFD", "씨발"), "씨발"),
        ("ㅆㅣ" + unicodedata.normalize("NFD", "발"), "씨발"),
        ("ㅋㅋㅋ", "ㅋㅋㅋ"),
        ("ㅅㅂ", "ㅅㅂ"),
        ("ㅠㅠ", "ㅠㅠ"),
        ("ㄷㅏㄹㄱㅏ", "달가"),  # a consonant before a vowel opens the next syllable
        ("ㄷㅏㄺ", "닭"),
        ("ㄷㅏㄹㄱ", "닭"),  # two finals typed separately merge into a compound final
        ("ㅇㅓㅂㅅㄷㅏ", "없다"),
        ("ㄱㅏㅂㅅㅇㅣ", "값이"),
        ("ㄱㅗㅏㅇ", "광"),  # two vowels typed separately merge into a compound vowel
        ("ㅂㅏㅋㅋ", "바ㅋㅋ"),  # a doubled consonant reads as laughter, not as a final
        ("ㄱㅏㄱㄱㅏ", "각가"),
        ("아ㅋㅋ", "아ㅋㅋ"),  # typed jamo are never glued onto an existing syllable
        ("가\u11a8", "각"),  # ...but a conjoining final is (as NFC does)
        ("ㅏㄱㅏ", "ㅏ가"),
        ("ㄱㅐㅅㅐㄲㅣㅇㅑ ㅋㅋ", "개새끼야 ㅋㅋ"),
        ("hello ㅎㅏㅇㅣ", "hello 하이"),
    ],
)
def test_recompose_jamo(jamo: str, expected: str) -> None:
    assert recompose_jamo(jamo) == expected
    assert recompose_jamo(expected) == expected


@settings(max_examples=200, deadline=None)
@given(syllable_text)
def test_split_then_recompose_is_lossless(text: str) -> None:
    assert recompose_jamo(to_compat_jamo(text)) == text
    assert recompose_jamo(unicodedata.normalize("NFD", text)) == text


jamo_heavy_text = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x3131, max_codepoint=0x318E),
        st.characters(min_codepoint=0x1100, max_codepoint=0x11FF),
        st.sampled_from(list("가각나 a")),
        st.characters(),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(jamo_heavy_text)
def test_recompose_is_idempotent(text: str) -> None:
    once = recompose_jamo(text)
    assert recompose_jamo(once) == once


@pytest.mark.parametrize(
    ("roman", "hangul"),
    [("sseuregi", "쓰레기"), ("sibal", "시발"), ("ssibal", "씨발"), ("saekki", "새끼"), ("gaesaekki", "개새끼"),
     ("jonna", "존나"), ("nya", "냐"), ("eun", "은"), ("geup", "급"), ("byeongsin", "병신"), ("gwan", "관")],
)
def test_read_romanized_reads_revised_romanization(roman: str, hangul: str) -> None:
    from content_arena.hangul import read_romanized

    assert read_romanized(roman) == hangul


def test_read_romanized_refuses_runs_without_syllables() -> None:
    from content_arena.hangul import read_romanized

    for word in ("pc", "tv", "kbs", "xyz", ""):
        assert read_romanized(word) is None


@pytest.mark.parametrize(("respelled", "plain"), [("씨발", "시발"), ("꺼져", "거져"), ("쳐", "져"), ("새끼", "세기"),
                                                 ("븅신", "붕신"), ("뇬", "년"), ("싀발", "시발")])
def test_phonetic_key_gives_respellings_their_words_key(respelled: str, plain: str) -> None:
    assert "".join(map(phonetic_key, respelled)) == "".join(map(phonetic_key, plain))


def test_phonetic_key_keeps_non_syllables_and_finals_and_is_idempotent() -> None:
    for char in "ㅋa1 !ㅆ":
        assert phonetic_key(char) == char
    assert phonetic_key("닭") == "닭" and phonetic_key("빵") == "방"  # finals are kept as they are
    keys = {phonetic_key(s) for s in ALL_SYLLABLES}
    assert all(phonetic_key(k) == k for k in keys)
    assert len(keys) < len(ALL_SYLLABLES) / 2  # a real merge, not a relabelling
