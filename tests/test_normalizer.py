from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from content_arena.defender.normalizer import (
    HOMOGLYPH_FOLDS,
    INVISIBLE_CHARACTERS,
    Normalizer,
    normalize,
    normalize_many,
)
from content_arena.hangul import HALFWIDTH_TO_COMPAT


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # invisible / format characters
        ("씨\u200b발", "씨발"),
        ("f\u200cu\u200dc\u00adk", "fuck"),
        ("\ufeff병\u2060신\ufe0f", "병신"),
        ("바\u202e보", "바보"),
        ("ㅅ\U000e0041ㅂ", "ㅅㅂ"),
        # NFKC: full-width letters and digits, half-width jamo
        ("ｆｕｃｋ １８", "fuck 18"),
        ("ﾶￜﾲￂﾩ", "씨발"),
        # jamo recomposition (compatibility jamo are kept away from NFKC)
        ("ㅆㅣㅂㅏㄹ", "씨발"),
        ("ㅂㅏㄹ", "발"),
        (unicodedata.normalize("NFD", "개새끼"), "개새끼"),
        ("ㅋㅋㅋ", "ㅋㅋㅋ"),
        ("ㅅㅂ 진짜", "ㅅㅂ 진짜"),
        # homoglyphs and case
        ("ѕһіt", "shit"),
        ("FυСΚ YOU", "fuck you"),
        ("Idiot", "idiot"),
        # whitespace
        ("  너\t\t진짜\n\n바보  ", "너 진짜 바보"),
        ("a\u3000b", "a b"),
        # spaced-out words
        ("시 발 놈", "시발놈"),
        ("씨 . 발 . 놈", "씨발놈"),
        ("씨.발.놈.아 꺼져", "씨발놈아 꺼져"),
        ("병*신*새*끼", "병신새끼"),
        ("f.u.c.k you", "fuck you"),
        ("f u c k you", "fuck you"),
        ("a*s*s", "ass"),
        # ... but normal text keeps its spaces
        ("안녕 하세요 여러분", "안녕 하세요 여러분"),
        ("시 발", "시 발"),  # two single syllables are left alone
        ("I am a boy", "i am a boy"),
        ("e.g. this", "eg. this"),  # a symbol between two letters goes; the last dot ends the word
        ("가 나.다", "가 나다"),  # different separators: no spaced run, but step 8 joins 나.다
        # separator symbols inside a Hangul word; a space inside a word stays
        ("이 씨_발_놈아 꺼져", "이 씨발놈아 꺼져"),
        ("씨발/놈/아 꺼/져", "씨발놈아 꺼져"),
        ("병·신 ~ 같은", "병신 ~ 같은"),
        ("국 정감사", "국 정감사"),
        ("1,000원 a.b", "1,000원 ab"),  # digits keep their separators
        ("tlqkf·놈", "시발놈"),  # read back by step 7, then joined by step 8
        # keyboard-mode words in Korean texts; Latin words that spell no common syllables stay
        ("이 tlqkf 놈아", "이 시발 놈아"),
        ("qudtls같은 소리", "병신같은 소리"),
        ("ㅈrkxdms 패치", "ㅈ같은 패치"),
        ("Tlqkf 진짜", "시발 진짜"),  # case is gone by step 7: ㅆ comes back as ㅅ
        ("가 나 다 t l q k f", "가나다 시발"),  # joined by step 6, then read back
        ("update 했음 blog.naver.com", "웁다테 했음 blognavercom"),  # read as romanised Korean when it splits
        ("rkr 정도", "rkr 정도"),  # fewer than 4 letters
        ("tlqkf you", "tlqkf you"),  # no Hangul in the text: English is left alone
        # symbols, emoji and drawn-out letters inside words
        ("씨@발 병♡신%같은 새끼🤬네", "씨발 병신같은 새끼네"),
        ("f!uck off, s#h#i#t", "fuck off, shit"),
        ("fuuuck yoooou", "fuck you"),
        ("good book", "good book"),  # a letter written twice stays
        # romanised words of their own, in Korean texts
        ("ssibal 진짜 byungsin", "씨발 진짜 븅신"),
        ("ggeojyeo 이 saekki야", "꺼져 이 새끼야"),
        ("go 해", "go 해"),  # one syllable: as likely an English word
        # drawn-out syllables
        ("벼어엉신 새애애끼", "병신 새끼"),
        ("주우욱어어어라", "죽어라"),
        ("씨baa😂l", "씨발"),  # the emoji goes, the Latin is read back, the echo folds
        ("아이 좋아", "아이 좋아"),  # different vowels, or a final before the echo: nothing to fold
        # characters drawn like jamo, beside jamo
        ("ㅈ⊥ㅎ은 하ㄹT", "좋은 하루"),
        ("보내人ㅔ0ㅛ 똑같Lㅔ", "보내세요 똑같네"),
        ("ㅋㅋㅋ! ㅎㅎ", "ㅋㅋㅋ! ㅎㅎ"),  # a symbol after laughter ends the word
        ("", ""),
    ],
)
def test_normalize_examples(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_every_invisible_character_is_removed() -> None:
    for char in INVISIBLE_CHARACTERS:
        assert normalize(f"씨{char}발") == "씨발", hex(ord(char))


def test_every_halfwidth_jamo_becomes_its_compatibility_jamo() -> None:
    for half, compat in HALFWIDTH_TO_COMPAT.items():
        assert normalize(f"ㅋ{half}ㅋ") == normalize(f"ㅋ{compat}ㅋ"), hex(ord(half))


@pytest.mark.parametrize("space", [" ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\xa0", "\u2028",
                                   "\u3000", "\u2003", "\u1680", " \t\u3000 "])
def test_every_kind_of_whitespace_run_becomes_one_space(space: str) -> None:
    assert normalize(f"{space}hello{space}world{space}") == "hello world"
    assert normalize(f"{space}좋은{space}하루{space}") == "좋은 하루"


def test_every_homoglyph_fold_reaches_latin() -> None:
    for glyph, latin in HOMOGLYPH_FOLDS.items():
        assert normalize(glyph) == latin


def test_batch_and_class_api() -> None:
    texts = ["ＡＢＣ", "ㅆㅣ발", "x  y"]
    assert normalize_many(texts) == ["abc", "씨발", "x y"]
    assert normalize_many(iter(texts)) == ["abc", "씨발", "x y"]
    normalizer = Normalizer()
    assert normalizer("ＡＢＣ") == normalizer.normalize("ＡＢＣ") == "abc"
    assert normalizer.normalize_many(texts) == normalize_many(texts)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_idempotent_on_any_text(text: str) -> None:
    once = normalize(text)
    assert isinstance(once, str)
    assert normalize(once) == once


_TRICKY = (
    list("ㄱㄲㄳㄴㄷㄹㄺㅂㅄㅅㅆㅇㅋㅎㅏㅐㅗㅘㅜㅡㅢㅣ가각갈나고그")
    + [chr(cp) for cp in (0x1100, 0x1105, 0x1161, 0x1169, 0x11A8, 0x11AF, 0x115F, 0x1160, 0x3164)]
    + [chr(cp) for cp in range(0xFFA0, 0xFFDD, 3)]
    + list(" .*_-·\t\n\u3000abcksuxyzABΣΑΪνсеоＦ\u0301\u0308\u0345\u200b\u00adİßﬁſK①㉠㈀")
)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.one_of(st.sampled_from(_TRICKY), st.characters()), max_size=30))
def test_idempotent_on_jamo_separator_and_homoglyph_mixes(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


def test_vowel_lookalikes_after_a_consonant_jamo_are_read_as_the_syllable():
    assert normalize("ㅅ1발 진짜") == "시발 진짜"
    assert normalize("ㅇl미 ㄴr가") == "이미 나가"
    # Not a lone look-alike: the start of a Latin word, or punctuation, stays.
    assert normalize("ㅋㅋㅋlol") == "ㅋㅋㅋlol"
    assert normalize("ㅋㅋㅋ!") == "ㅋㅋㅋ!"


def test_romanised_runs_are_read_back_only_in_hangul_texts():
    assert normalize("누구ya 도대체 누구nya고") == "누구야 도대체 누구냐고"
    assert normalize("sseuregi nyu스임") == "쓰레기 뉴스임"  # a word of its own, when it reads as 2+ syllables
    assert normalize("nyu 스임") == "nyu 스임"  # one syllable apart from Hangul stays
    assert normalize("pc방 가자") == "pc방 가자"  # no vowel: not romanised Korean
    assert normalize("sibal") == "sibal"  # no Hangul in the text: English is never rewritten
    assert normalize("시bal", romanized=False) == "시bal"
