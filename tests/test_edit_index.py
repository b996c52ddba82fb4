"""The one-edit search finds what comparing a query with every indexed string finds."""

from __future__ import annotations

import random

import numpy as np
import pytest

from content_arena.attacks.readability import edit_distance
from content_arena.defender.edit_index import MAX_LENGTH, OneEditIndex, _codes, _deletion_hashes


def _scan(strings, groups, ranks, query, group):
    near = [n for n, (s, g) in enumerate(zip(strings, groups, strict=True)) if g == group and edit_distance(s, query) == 1]
    return min(near, key=lambda n: ranks[n]) if near else -1


def _hashes(strings, groups):
    codes, starts, lengths = _codes(strings)
    return _deletion_hashes(codes, starts, lengths, np.asarray(groups, dtype=np.int64))


@pytest.mark.parametrize("alphabet", ["abc", "abcdefgh", "가나다라마", "ab가é😡"])
def test_each_query_gets_the_best_ranked_string_one_edit_away_as_a_full_scan_would(alphabet):
    rng = random.Random(len(alphabet))
    strings = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(300)})
    groups = [rng.randint(1, 2) for _ in strings]
    ranks = rng.sample(range(len(strings)), len(strings))
    index = OneEditIndex(strings, groups, ranks)
    queries = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7))) for _ in range(600)]
    query_groups = [rng.randint(1, 2) for _ in queries]
    expected = [_scan(strings, groups, ranks, q, g) for q, g in zip(queries, query_groups, strict=True)]
    assert sum(e >= 0 for e in expected) > 100  # the search has something to find
    assert index.nearest(queries, query_groups).tolist() == expected


def test_a_deletion_hashes_as_the_shorter_string_it_leaves():
    hashes, owner, deleted = _hashes(["abcd"], [1])
    alone = {s: _hashes([s], [1])[0][0] for s in ("abcd", "bcd", "acd", "abd", "abc")}
    assert dict(zip(deleted.tolist(), hashes.tolist(), strict=True)) == {
        -1: alone["abcd"], 0: alone["bcd"], 1: alone["acd"], 2: alone["abd"], 3: alone["abc"]}
    assert owner.tolist() == [0] * 5
    # The group and every (position, character) count: no two of these share a hash.
    variants = ["abcd", "abdc", "bacd", "abc", "abcde", "aBcd", "가bcd"]
    assert len({_hashes([s], [1])[0][0] for s in variants} | {_hashes(["abcd"], [2])[0][0]}) == len(variants) + 1


def test_an_equal_string_is_not_one_edit_away_and_a_swap_is():
    index = OneEditIndex(["stupid", "stupdi", "idiot"], [1, 1, 1], [0, 1, 2])
    assert index.nearest(["stupid"], [1]).tolist() == [1]  # itself is skipped: the swap of its last two
    assert index.nearest(["idoit", "idiots", "dioti", "xyz"], [1, 1, 1, 1]).tolist() == [2, 2, -1, -1]
    assert index.nearest(["stupid"], [2]).tolist() == [-1]  # another group


def test_empty_inputs_and_long_strings():
    assert OneEditIndex([], [], []).nearest(["abc"], [1]).tolist() == [-1]
    assert OneEditIndex(["abc"], [1], [0]).nearest([], []).tolist() == []
    longest = "ab" * (MAX_LENGTH // 2)
    assert OneEditIndex([longest], [1], [0]).nearest([longest[:-1]], [1]).tolist() == [0]
    with pytest.raises(ValueError, match="longer than"):
        OneEditIndex([longest + "c"], [1], [0])
    with pytest.raises(ValueError, match="one group and one rank"):
        OneEditIndex(["abc"], [1, 2], [0])
