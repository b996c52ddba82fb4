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
    keyed = []
    real_key = recognizer._key
    monkeypatch.setattr(recognizer, "_key", lambda word: keyed.append(word) or real_key(word))
    blob = "stupid" * 2_000
    assert recognizer.word(blob) == blob
    assert recognizer.word("stup!d" + "x" * 100) == "stup!d" + "x" * 100
    assert keyed == []
    # A 64-letter key whose letters do not collapse is the longest looked up.
    long_word = "abcdefgh" * 8
    recognizer.word(long_word)
    assert keyed == [long_word]


def _scan(counts: dict[str, int], word: str) -> str:
    """What the recogniser's rule gives for ``word``, found by comparing its key with every vocabulary word's."""
    from content_arena.attacks.readability import edit_distance, normalized_reading_key
    from content_arena.defender.recognizer import _script

    if word in counts:
        return word
    key, script = normalized_reading_key(word), _script(word)
    if len(key) < 3 or not script:
        return word
    best: dict[str, str] = {}  # each key's most frequent word (ties: the first in sorted order)
    for known in sorted(counts):
        if _script(known) == script and len(normalized_reading_key(known)) >= 3:
            held = best.setdefault(normalized_reading_key(known), known)
            if counts[known] > counts[held]:
                best[normalized_reading_key(known)] = known
    if key in best:
        return best[key]
    near = [w for k, w in best.items() if edit_distance(key, k) == 1]
    return min(near, key=lambda w: (-counts[w], w)) if near else word


def test_a_batch_reads_every_word_as_a_scan_of_the_whole_vocabulary_would():
    # The index's bit filter only skips lookups that would miss; with every bit set or as built, the
    # batch gives what comparing each key with every vocabulary key gives.
    import random

    rng = random.Random(3)
    letters = "abdegilmnosu"
    vocabulary = {"".join(rng.choice(letters) for _ in range(rng.randint(3, 7))): rng.randint(1, 9) for _ in range(300)}
    syllables = [chr(0xAC00 + rng.randrange(11172)) for _ in range(40)]
    vocabulary |= {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))): rng.randint(1, 9) for _ in range(200)}
    words = list(vocabulary)
    garbled = []
    for word in rng.sample(words, 200):
        i = rng.randrange(len(word))
        edit = rng.choice(("drop", "swap", "change", "add"))
        pool = syllables if "\uac00" <= word[0] <= "\ud7a3" else letters
        if edit == "drop":
            garbled.append(word[:i] + word[i + 1:])
        elif edit == "swap" and i + 1 < len(word):
            garbled.append(word[:i] + word[i + 1] + word[i] + word[i + 2:])
        elif edit == "add":
            garbled.append(word[:i] + rng.choice(pool) + word[i:])
        else:
            garbled.append(word[:i] + rng.choice(pool) + word[i + 1:])
    texts = [" ".join(garbled[i:i + 5]) for i in range(0, len(garbled), 5)]
    expected = [" ".join(_scan(vocabulary, w) for w in text.split()) for text in texts]
    assert sum(a != b for a, b in zip(texts, expected, strict=True)) > 20  # the garbles do get read back
    assert WordRecognizer(vocabulary).many(texts) == expected
    unfiltered = WordRecognizer(vocabulary)
    unfiltered._edits._filter[:] = 255  # every bit set: every probe goes to the sorted hashes
    assert unfiltered.many(texts) == expected
    one_at_a_time = WordRecognizer(vocabulary)
    assert [one_at_a_time(text) for text in texts] == expected


def test_a_full_cache_is_emptied_between_batches_without_losing_a_word(monkeypatch):
    import content_arena.defender.recognizer as module

    monkeypatch.setattr(module, "_CACHE_LIMIT", 3)
    recognizer = WordRecognizer.build(normalize_many(CORPUS))
    texts = ["you are a stupud idiiot", "shut up faggpts", "새끠야 꺼져 븅신"]
    assert recognizer.many(texts) == ["you are a stupid idiot", "shut up faggots", "새끼야 꺼져 병신"]
    assert recognizer.many(texts[:1]) == ["you are a stupid idiot"]
    assert len(recognizer._cache) <= 3 + len(" ".join(texts).split())


def test_a_cache_emptied_meanwhile_by_another_thread_loses_no_word(monkeypatch):
    recognizer = WordRecognizer.build(normalize_many(CORPUS))
    assert recognizer.many(["you are a stupid idiot"]) == ["you are a stupid idiot"]  # these words are cached
    real = recognizer._closest_many

    def emptying(pending):
        recognizer._cache.clear()  # what another thread's batch does when the cache is full
        return real(pending)

    monkeypatch.setattr(recognizer, "_closest_many", emptying)
    assert recognizer.many(["you are a stupud idiiot"]) == ["you are a stupid idiot"]
    assert recognizer.word("faggpts") == "faggots"


def test_with_novel_only_a_korean_word_of_known_character_pairs_is_left_as_written(tmp_path):
    counts = {"미투": 5, "이투년차": 2, "미친년": 5, "믿으면": 50, "새끼야": 9, "stupid": 3}
    plain, novel = WordRecognizer(counts), WordRecognizer(counts, novel_only=True)
    assert plain.word("미투년") == "믿으면"  # one key edit from a common word
    assert novel.word("미투년") == "미투년"  # every pair (^미, 미투, 투년, 년$) is in some known word
    assert novel.word("새끠야") == "새끼야"  # 새끠 is a pair no known word has
    assert novel.word("stupud") == "stupid"  # Latin words are always looked up
    novel.save(tmp_path)
    assert WordRecognizer.load(tmp_path).word("미투년") == "미투년"


def test_the_syllable_table_keys_a_word_as_the_character_walk_does():
    # Plain syllable words take the table path; _korean_key is the rule it must agree with.
    import random

    from content_arena.attacks.readability import _PLAIN_SYLLABLES, _key_of, _korean_key

    rng = random.Random(0)
    for _ in range(20_000):
        word = "".join(chr(0xAC00 + rng.randrange(11172)) for _ in range(rng.randint(1, 5)))
        word = rng.choice(("", ".", "'", "(")) + word + rng.choice(("", "?", "...", "~~", "♡"))
        assert _PLAIN_SYLLABLES.fullmatch(word) is not None
        assert _key_of(word) == _collapsed(_korean_key(word)), word


def _collapsed(key: str) -> str:
    return "".join(c for i, c in enumerate(key) if i == 0 or key[i - 1] != c)
