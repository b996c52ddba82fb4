"""Word recognition: read a garbled word back as the known word it sounds like.

An attacker who cannot hide a word from the normaliser garbles it instead: a swapped or doubled
letter, a look-alike, a vowel that sounds the same (``faggpts``, ``stup!d``, ``새끠``, ``뵹신``). Each
edit gives the character n-grams of a word the model never saw, and the insult disappears from the
pooled vector. The recogniser puts it back before the model runs, as Pruthi et al. (2019, "Combating
Adversarial Misspellings with Robust Word Recognition") do with a word-recognition front end:

* the **vocabulary** is every word (whitespace-separated, after normalisation) of the texts the
  champion was built from, with its count; it is saved beside the weights (``recognizer.json``);
* a word found in the vocabulary is left alone, so the texts the model trained on read exactly as
  they did, and so does most clean text;
* any other word is looked up by its reading key (:func:`~content_arena.attacks.readability.normalized_reading_key`:
  what a reader hears, with look-alikes, leet digits, sound classes and repeated letters folded).
  Vocabulary words seen at least ``min_count`` times whose key is within one edit of it (found by
  symmetric deletion, then checked to be one edit away, as SymSpell does) are candidates. The closest
  one replaces the word; among equally close ones, the most frequent. Ranking by frequency alone let a
  common word one edit away beat the word the key spells exactly (``cun😡t`` read as ``good`` rather than
  ``cunt``, ``suucks`` as ``looks``), and two deletions apart let in words two edits away (``치네`` read
  as ``있네``). Keys shorter than ``min_key`` letters are never matched: short words have too many
  neighbours.
  A candidate is written in the same script as the word (Hangul, or Latin): the key romanises Hangul, so
  a Korean word would otherwise sound like some English one, and the normaliser already reads Latin
  spellings of Korean back (keyboard typing, romanised syllables beside Hangul).

Challengers inherit their champion's vocabulary unchanged: their training texts are the battle's
evasions, and taking those in would teach the recogniser that a garbled word is a known one.
Lookups are cached per word, so a batch pays for each distinct unknown word once, and a batch's unknown
words are looked up together: their keys go to the one-edit search (:mod:`~content_arena.defender.edit_index`)
in one call.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from content_arena.defender.edit_index import MAX_LENGTH, OneEditIndex

__all__ = ["RECOGNIZER_FILE", "WordRecognizer"]

RECOGNIZER_FILE = "recognizer.json"
_FORMAT = 1
_WORD = re.compile(r"\S+")
_HANGUL = re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3131-\u318e]")
_LATIN = re.compile("[A-Za-z]")
_CACHE_LIMIT = 200_000
# No word is looked up past this many characters, nor is its key used past this many letters: real words
# are far shorter, and the one-edit index hashes one table row per position up to this length.
_MAX_WORD = MAX_LENGTH
_SCRIPT_GROUPS = {"k": 1, "l": 2}


def _script(word: str) -> str:
    """"k" for a word with any Hangul syllable or jamo, "l" for one with a Latin letter, else ""."""
    if _HANGUL.search(word):
        return "k"
    return "l" if _LATIN.search(word) else ""


class WordRecognizer:
    """Maps unknown words to the closest, then most frequent, known word within one edit of their reading key."""

    def __init__(self, counts: Mapping[str, int], *, min_count: int = 1, min_key: int = 3, novel_only: bool = False):
        if min_count < 1 or min_key < 1:
            raise ValueError("min_count and min_key must be at least 1")
        # The attacks package imports the defender's, so the key is imported here; words are normalised already.
        from content_arena.attacks.readability import normalized_reading_key

        self._key = normalized_reading_key
        self.counts = {word: int(count) for word, count in counts.items() if count > 0}
        self.min_count = min_count
        self.min_key = min_key
        # Script + key -> the most frequent word with that key (ties: the first in sorted order); the
        # one-edit index holds those keys, each in its script's group, ranked as their words are.
        self._words: dict[str, str] = {}
        for word in sorted(self.counts):
            count = self.counts[word]
            if count < min_count:
                continue
            key, script = self._key(word), _script(word)
            if not min_key <= len(key) <= _MAX_WORD or not script:
                continue
            best = self._words.get(script + key)
            if best is None or count > self.counts[best]:
                self._words[script + key] = word
        self._targets = list(self._words.values())
        order = sorted(range(len(self._targets)), key=lambda t: (-self.counts[self._targets[t]], self._targets[t]))
        ranks = [0] * len(order)
        for rank, target in enumerate(order):
            ranks[target] = rank
        self._edits = OneEditIndex([entry[1:] for entry in self._words], [_SCRIPT_GROUPS[entry[0]] for entry in self._words],
                                   ranks)
        # With ``novel_only``, a Korean word whose every pair of neighbouring characters (ends included) some
        # vocabulary word has is left alone: the model knows its n-grams, and reading it as a neighbour
        # replaces a rare genuine word (a slur compound) by a common wrong one.
        self.novel_only = novel_only
        self._pairs = ({f"\x02{w}\x03"[i : i + 2] for w in self.counts for i in range(len(w) + 1)} if novel_only
                       else frozenset())
        self._cache: dict[str, str] = {}

    @classmethod
    def build(cls, texts: Iterable[str], *, min_count: int = 1, min_key: int = 3,
              novel_only: bool = False) -> WordRecognizer:
        """From already normalised texts (the words are counted lowercased)."""
        counts = Counter(word.lower() for text in texts for word in text.split())
        return cls(counts, min_count=min_count, min_key=min_key, novel_only=novel_only)

    def __len__(self) -> int:
        return len(self.counts)

    def word(self, word: str) -> str:
        """The known word ``word`` reads as, or ``word`` itself."""
        cached = self._cache.get(word)
        if cached is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            cached = self._look_up((word,))[word]
        return cached

    def _look_up(self, words: Iterable[str]) -> dict[str, str]:
        """What each of ``words`` (distinct, not cached) reads as; also cached. The answer comes back rather
        than through the cache, which another thread may empty meanwhile."""
        counts, exact_words, key_of, min_key = self.counts, self._words, self._key, self.min_key
        attested = self._attested if self.novel_only else None
        read: dict[str, str] = {}
        pending: list[tuple[str, str, str]] = []
        for word in words:
            found = word
            if len(word) <= _MAX_WORD and word.lower() not in counts and not (attested and attested(word)):
                key = key_of(word)
                if min_key <= len(key) <= _MAX_WORD:
                    script = _script(word)
                    if script:
                        exact = exact_words.get(script + key)
                        if exact is None:
                            pending.append((word, key, script))
                            continue
                        found = exact
            read[word] = found
        if pending:
            for (word, _, _), found in zip(pending, self._closest_many(pending), strict=True):
                read[word] = found or word
        self._cache.update(read)
        return read

    def _attested(self, word: str) -> bool:
        if _HANGUL.search(word) is None:
            return False
        padded, pairs = f"\x02{word.lower()}\x03", self._pairs
        return all(padded[i : i + 2] in pairs for i in range(len(padded) - 1))

    def _closest_many(self, pending: Sequence[tuple[str, str, str]]) -> list[str | None]:
        """For each (word, key, script): the most frequent word whose key is one edit from ``key`` (ties: the
        first in sorted order), or None."""
        found = self._edits.nearest([key for _, key, _ in pending], [_SCRIPT_GROUPS[script] for _, _, script in pending])
        return [self._targets[t] if t >= 0 else None for t in found.tolist()]

    def clear_cache(self) -> None:
        """Forget every lookup (as a service meeting only new words)."""
        self._cache.clear()

    def __call__(self, text: str) -> str:
        """``text`` with every recognised word replaced; unchanged (same object) when none is."""
        return self.many((text,))[0]

    def many(self, texts: Sequence[str]) -> list[str]:
        """:meth:`__call__` over ``texts``, the unknown words of all of them looked up together."""
        split = [text.split() for text in texts]
        if len(self._cache) >= _CACHE_LIMIT:  # bounded: it can run over by one batch's new words
            self._cache.clear()
        cached = self._cache.get
        read_as: dict[str, str] = {}
        new: list[str] = []
        for word in set().union(*split):
            found = cached(word)
            if found is None:
                new.append(word)
            else:
                read_as[word] = found
        if new:
            read_as.update(self._look_up(new))
        out: list[str] = []
        for text, words in zip(texts, split, strict=True):
            read = list(map(read_as.__getitem__, words))
            if read == words:
                out.append(text)
            elif text == " ".join(words):  # normalised text: single spaces, nothing around
                out.append(" ".join(read))
            else:
                replacements = iter(read)
                out.append(_WORD.sub(lambda _, r=replacements: next(r), text))
        return out

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict:
        return {"format": _FORMAT, "min_count": self.min_count, "min_key": self.min_key, "novel_only": self.novel_only,
                "counts": self.counts}

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / RECOGNIZER_FILE
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True), encoding="utf-8")
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> WordRecognizer | None:
        """The recogniser saved in ``model_dir``, or None when the model has none (saved before it existed,
        or trained with ``experimental.word_recognition: false``)."""
        path = Path(model_dir) / RECOGNIZER_FILE
        if not path.is_file():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != _FORMAT or not isinstance(raw.get("counts"), dict):
            raise ValueError(f"{path}: not a word recogniser this version can read")
        return cls(raw["counts"], min_count=int(raw["min_count"]), min_key=int(raw["min_key"]),
                   novel_only=bool(raw.get("novel_only", False)))
