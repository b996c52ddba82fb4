"""The word recogniser: garbled words read back as known ones, known words and short words left alone."""

from __future__ import annotations

import json

import pytest

from content_arena.attacks.readability import reading_key
from content_arena.defender.normalizer import normalize_many
from content_arena.defender.recognizer import RECOGNIZER_FILE, WordRecognizer

CORPUS = [
    "you are a stupid idiot",
    "what a stupid game",
    "the striker should be fired",
    "shut up faggots",
    "go kill yourself",
    "씨발 새끼야 꺼져",
    "병신 새끼야",
    "오늘 경기 정말 좋았다",
    "the game was great",
    "a great stream today",
]


@pytest.fixture(scope="module")
def recognizer():
    return WordRecognizer.build(normalize_many(CORPUS))


@pytest.mark.parametrize(
    ("garbled", "known"),
    [
        ("stup!d", "stupid"),  # leet
        ("stuupid", "stupid"),  # repeated letter
        ("stupud", "stupid"),  # one letter changed
        ("faggpts", "faggots"),  # keyboard neighbour
        ("yourselff", "yourself"),  # insertion
        ("새끠야", "새끼야"),  # vowel swap
        ("쌔끼야", "새끼야"),  # tensed initial
        ("븅신", "병신"),  # vowel swap
    ],
)
def test_garbled_words_read_back_as_the_known_word(recognizer, garbled, known):
    assert recognizer.word(garbled) == known
    assert recognizer(f"you {garbled} lol") == f"you {known} lol"


def test_known_and_unmatched_words_are_left_alone(recognizer):
    text = "the game was great"
    assert recognizer(text) is text  # nothing recognised: the same object back, no copy
    # "fired" is known: a clean word one edit from an insult is never "corrected" while it is in the vocabulary.
    assert recognizer.word("fired") == "fired"
    assert recognizer.word("xylophone") == "xylophone"  # nothing within one edit of its key


def test_short_keys_are_never_matched(recognizer):
    assert len(reading_key("ab")) < recognizer.min_key
    assert recognizer.word("ab") == "ab"
    assert recognizer.word("gp") == "gp"  # "go" is one edit away, but two-letter keys have too many neighbours


def test_the_most_frequent_candidate_wins_and_min_count_limits_targets():
    counts = {"stupid": 5, "stupor": 1}
    assert WordRecognizer(counts).word("stupjd") == "stupid"
    # Below min_count a word is known (left alone) but never a target.
    rare = WordRecognizer({"stupid": 1, "game": 3}, min_count=2)
    assert rare.word("stuupid") == "stuupid"
    assert rare.word("stupid") == "stupid"
    assert rare.word("gaame") == "game"


def test_the_word_the_key_spells_beats_a_more_frequent_neighbour():
    # Seen on the attack bench: "cun😡t" has the key of "cunt" exactly, "good" is one edit away and
    # commoner; "suucks" reads as "sucks", not as the commoner "looks".
    assert reading_key("cun😡t") == reading_key("cunt") and reading_key("suucks") == reading_key("sucks")
    recognizer = WordRecognizer({"good": 40, "cunt": 2, "looks": 30, "sucks": 3})
    assert recognizer("stupid cun😡t") == "stupid cunt"
    assert recognizer.word("suucks") == "sucks"
    # Among candidates equally close (keys sags -> sogs, sugs: one substitution each), the most frequent wins.
    assert WordRecognizer({"sucks": 3, "socks": 30}).word("sacks") == "socks"
    assert WordRecognizer({"sucks": 30, "socks": 3}).word("sacks") == "sucks"


def test_words_two_key_edits_away_are_not_candidates():
    # "치네" and "있네" share a key once one letter is deleted from each: a substitution plus a shift, two edits.
    first, second = reading_key("치네"), reading_key("있네")
    assert first[1:] == second[:1] + second[2:]
    assert WordRecognizer({"있네": 50}).word("치네") == "치네"
    assert WordRecognizer({"있네": 50}).word("잇네") == "있네"


def test_whitespace_and_word_order_are_kept(recognizer):
    assert recognizer("a  stup!d\nidi0t\tgame") == "a  stupid\nidiot\tgame"


def test_reading_back_is_idempotent(recognizer):
    texts = normalize_many(["stup!d faggpts", "쌔끼야 꺼져라", "a great stream", "go kiil yoursellf"])
    once = recognizer.many(texts)
    assert recognizer.many(once) == once


def test_save_and_load_round_trip(recognizer, tmp_path):
    path = recognizer.save(tmp_path)
    assert path.name == RECOGNIZER_FILE
    loaded = WordRecognizer.load(tmp_path)
    assert loaded is not None and loaded.counts == recognizer.counts
    words = ["stup!d", "새끠야", "gp", "fired", "xylophone"]
    assert [loaded.word(w) for w in words] == [recognizer.word(w) for w in words]


def test_load_without_a_file_is_none_and_a_foreign_file_is_refused(tmp_path):
    assert WordRecognizer.load(tmp_path) is None
    (tmp_path / RECOGNIZER_FILE).write_text(json.dumps({"format": 99, "counts": {}}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a word recogniser"):
        WordRecognizer.load(tmp_path)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        WordRecognizer({"a": 1}, min_count=0)


def test_a_word_is_only_read_as_a_word_of_its_own_script():
    # The key romanises Hangul: 시발 and "sibal" sound alike, but a Korean word is not replaced by an English
    # one (nor the other way round); the normaliser reads Latin spellings of Korean itself.
    assert reading_key("시발") == reading_key("sibal")
    assert WordRecognizer({"sibal": 3}).word("시발") == "시발"
    assert WordRecognizer({"시발": 3}).word("sibal") == "sibal"
    assert WordRecognizer({"시발": 3}).word("씨발") == "시발"
    assert WordRecognizer({"123": 3, "?!?": 3}).word("1234") == "1234"  # no letters: nothing to read


def test_overlong_words_are_not_looked_up(recognizer, monkeypatch):
    # A key's deletions cost its length squared: a pasted blob must not be one (it is no word anyone reads).
    import content_arena.defender.recognizer as module

    keyed = []
    real_key = module._key
    monkeypatch.setattr(module, "_key", lambda word: keyed.append(word) or real_key(word))
    blob = "stupid" * 2_000
    assert recognizer.word(blob) == blob
    assert recognizer.word("stup!d" + "x" * 100) == "stup!d" + "x" * 100
    assert keyed == []
    # A 64-letter key whose letters do not collapse is the longest looked up.
    long_word = "abcdefgh" * 8
    recognizer.word(long_word)
    assert keyed == [long_word]


def test_the_one_edit_check_agrees_with_the_edit_distance():
    import random

    from content_arena.attacks.readability import edit_distance
    from content_arena.defender.recognizer import _one_swap_apart

    rng = random.Random(0)
    for _ in range(20_000):
        size = rng.randint(1, 6)
        a, b = ("".join(rng.choice("abc") for _ in range(size)) for _ in range(2))
        if a != b:
            assert _one_swap_apart(a, b) == (edit_distance(a, b) == 1), (a, b)
