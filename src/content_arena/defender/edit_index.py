"""One-edit search: for a batch of query strings, the best indexed string within one edit of each.

The word recogniser asks this of every unknown word's reading key: which known key is one insertion,
deletion, substitution or swap of neighbours away (an optimal-string-alignment distance of 1)? Symmetric
deletion answers it, as SymSpell does: two strings are within one edit when one of them, or one of them
less a letter, equals the other or the other less a letter. The index holds every indexed string and
each of its one-letter deletions; a query probes itself and each of its deletions.

The index holds 64-bit hashes in one sorted array rather than a dict of strings: a vocabulary of
140,000 words has over a million deletions, a dict of them does not fit in cache, and a batch's probes
are hashed, filtered and looked up by numpy together instead of one dict probe each. A hash is a sum of
random 64-bit numbers, one per (position, character) (tabulation hashing), so each deletion's hash comes
from the string's prefix and suffix sums, and two different strings share a hash with a chance of about
2**-64 per pair: over a batch's 20,000 probes against a million entries, about one in 10**9 batches. A
4 MiB bit filter of the hashes answers most probes (strings no indexed string has) without touching the
sorted array. Which deletion matched which says the edit, so no string is compared: the query against
an entry's deletion is an insertion, the query less a letter against an entry a deletion, the same
position deleted from both a substitution, and neighbouring positions a swap when the letters agree (an
equal string, which shares every deletion with the query, excepted).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MAX_LENGTH", "OneEditIndex"]

#: The longest string indexed or queried; longer ones are refused (a caller cuts them first).
MAX_LENGTH = 64
_FILTER_SHIFT = np.uint64(64 - 25)  # the filter reads a hash's top 25 bits: 2**25 bits, 4 MiB
_FILTER_BYTES = 1 << 22


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Fixed seed: the same strings hash alike in every process, so tests and benches repeat exactly.
    rng = np.random.default_rng(0x5EED)
    draw = lambda *shape: rng.integers(0, 2**64, size=shape, dtype=np.uint64, endpoint=False)  # noqa: E731
    # A character is split into its low 7 bits and the next 10, each drawn per position: ASCII, Hangul
    # and every other character below U+20000 hash independently.
    return draw(MAX_LENGTH, 128), draw(MAX_LENGTH, 1024), draw(256)


_LOW, _HIGH, _GROUP = _tables()


def _codes(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The strings' characters as one int64 array, with each string's start and length."""
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
    if lengths.size and lengths.max() > MAX_LENGTH:
        raise ValueError(f"strings longer than {MAX_LENGTH} characters cannot be indexed or queried")
    codes = np.frombuffer("".join(strings).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    return codes, starts, lengths


def _hash_at(positions: np.ndarray, codes: np.ndarray) -> np.ndarray:
    return _LOW[positions, codes & 127] + _HIGH[positions, (codes >> 7) & 1023]


def _deletion_hashes(codes: np.ndarray, starts: np.ndarray, lengths: np.ndarray, groups: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hashes of each string and of each of its one-letter deletions.

    Returns:
        (hashes, owner, deleted): per hash, the string it belongs to and the position deleted (-1: none).
    """
    owner_of_char = np.repeat(np.arange(len(lengths)), lengths)
    position = np.arange(codes.size) - np.repeat(starts, lengths)
    kept = np.concatenate(([np.uint64(0)], np.cumsum(_hash_at(position, codes), dtype=np.uint64)))
    # A character after the deleted one moves one place left; the first has no place to move to, and
    # its value is never used (it is after no deleted position).
    shifted = np.concatenate(([np.uint64(0)], np.cumsum(_hash_at(np.maximum(position - 1, 0), codes),
                                                         dtype=np.uint64)))
    ends = starts + lengths
    base = _GROUP[groups]
    whole = base + kept[ends] - kept[starts]
    char = np.arange(codes.size)
    owner_base, owner_start, owner_end = base[owner_of_char], starts[owner_of_char], ends[owner_of_char]
    deleted = owner_base + (kept[char] - kept[owner_start]) + (shifted[owner_end] - shifted[char + 1])
    hashes = np.concatenate((whole, deleted))
    owner = np.concatenate((np.arange(len(lengths)), owner_of_char))
    where = np.concatenate((np.full(len(lengths), -1), position))
    return hashes, owner, where


class OneEditIndex:
    """Strings, each in a group (a query matches only its own group), searched within one edit.

    Args:
        strings: the indexed strings, distinct within a group, at most :data:`MAX_LENGTH` long.
        groups: a group number (0-255) per string.
        ranks: a number per string; among strings within one edit of a query, the lowest rank wins.
    """

    def __init__(self, strings: Sequence[str], groups: Sequence[int], ranks: Sequence[int]):
        if not len(strings) == len(groups) == len(ranks):
            raise ValueError("one group and one rank per string")
        codes, starts, lengths = _codes(strings)
        group_array = np.asarray(groups, dtype=np.int64).reshape(-1)
        hashes, owner, deleted = _deletion_hashes(codes, starts, lengths, group_array)
        order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[order]
        self._owner = owner[order].astype(np.int32)
        self._deleted = deleted[order].astype(np.int8)
        self._codes, self._starts = codes.astype(np.uint32), starts
        self._ranks = np.asarray(ranks, dtype=np.int64).reshape(-1)
        self._whole = hashes[: len(strings)]  # each string's own hash, in the order given
        self._filter = np.zeros(_FILTER_BYTES, dtype=np.uint8)
        top = self._hashes >> _FILTER_SHIFT
        np.bitwise_or.at(self._filter, top >> np.uint64(3), np.left_shift(1, top & np.uint64(7)).astype(np.uint8))

    def __len__(self) -> int:
        return len(self._ranks)

    def nearest(self, queries: Sequence[str], groups: Sequence[int]) -> np.ndarray:
        """For each query, the lowest-ranked indexed string of its group one edit away from it.

        A string equal to the query is not one edit away from it.

        Returns:
            The position of that string in the index's ``strings``, or -1 for none, per query.
        """
        best = np.full(len(queries), -1, dtype=np.int64)
        if not len(queries):
            return best
        codes, starts, lengths = _codes(queries)
        hashes, owner, deleted = _deletion_hashes(codes, starts, lengths, np.asarray(groups, dtype=np.int64))
        top = hashes >> _FILTER_SHIFT
        maybe = np.flatnonzero((self._filter[top >> np.uint64(3)] >> (top & np.uint64(7)).astype(np.uint8)) & 1)
        low = np.searchsorted(self._hashes, hashes[maybe], side="left")
        count = np.searchsorted(self._hashes, hashes[maybe], side="right") - low
        hit = count > 0
        maybe, low, count = maybe[hit], low[hit], count[hit]
        if not maybe.size:
            return best
        probe = np.repeat(maybe, count)
        entry = np.repeat(low - (np.cumsum(count) - count), count) + np.arange(count.sum())
        query, i = owner[probe], deleted[probe].astype(np.int64)
        target, j = self._owner[entry].astype(np.int64), self._deleted[entry].astype(np.int64)
        # Both deleted at neighbouring places: a swap when the query's deleted letter is the one the
        # entry lost (the rest already agree), otherwise two substitutions.
        neighbours = (i >= 0) & (j >= 0) & (np.abs(i - j) == 1)
        swap = np.zeros(probe.size, dtype=bool)
        swap[neighbours] = (codes[starts[query[neighbours]] + i[neighbours]]
                            == self._codes[self._starts[target[neighbours]] + j[neighbours]])
        # An equal string shares every deletion with the query (the same place deleted from both): not an edit.
        same = hashes[query] == self._whole[target]
        one_edit = ((i < 0) != (j < 0)) | ((i >= 0) & (i == j) & ~same) | (swap & ~same)
        query, target = query[one_edit], target[one_edit]
        if query.size:
            rank = self._ranks[target]
            order = np.lexsort((rank, query))  # by query, then rank: each query's first is its best
            first = np.flatnonzero(np.r_[True, query[order][1:] != query[order][:-1]])
            best[query[order][first]] = target[order][first]
        return best
