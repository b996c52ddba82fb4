"""Token ids for the defender (content_arena.defender.token_ids): the lookup-table encoder must give
exactly the ids the Rust tokenizer gives, for every text, or the model sees other inputs than it
was trained on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from content_arena.data import load_seed_corpus
from content_arena.defender.token_ids import CharTableEncoder, RustEncoder, TokenIds, encoder_for
from content_arena.training.tokenizer import train_tokenizer

SEED_TEXTS = [e.text for e in load_seed_corpus()]
# Beyond the corpus: empty, unknown characters, emoji, a long text, whitespace of several kinds,
# compatibility and conjoining jamo, brackets, special tokens typed in the text (read as characters).
EDGE_TEXTS = ["", "a", "x" * 300, "\U0001f600 \u3146\u3163\ubc1c\u200b", "a\r\nb\t\u3000c", "\u1109\u1175\ubc1c",
              "[CLS hi SEP]", "[mask]", "\uff46\uff55\uff43\uff4b", "\x00\x01", "[SEP] [CLS]", "a[PAD]"]


@pytest.fixture(scope="module")
def char_tokenizer():
    return train_tokenizer(SEED_TEXTS, vocab_size=500, kind="char")


@pytest.fixture(scope="module")
def bpe_tokenizer():
    return train_tokenizer(SEED_TEXTS, vocab_size=600, kind="bpe")


def _reference(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=True)]


def test_char_tokenizer_gets_the_lookup_table_and_bpe_the_rust_tokenizer(char_tokenizer, bpe_tokenizer):
    assert isinstance(encoder_for(char_tokenizer, 128), CharTableEncoder)
    assert isinstance(encoder_for(bpe_tokenizer, 128), RustEncoder)
    assert CharTableEncoder.from_tokenizer(bpe_tokenizer, 128) is None


@pytest.mark.parametrize("max_length", [128, 16, 3])
def test_lookup_table_gives_the_tokenizers_ids(char_tokenizer, max_length):
    texts = SEED_TEXTS + EDGE_TEXTS
    encoder = CharTableEncoder.from_tokenizer(char_tokenizer, max_length)
    assert encoder is not None
    encoder._fallback = None  # these texts must not need it
    assert encoder.encode(texts).as_lists() == _reference(char_tokenizer, texts, max_length)


def test_special_tokens_typed_in_a_text_are_characters_read_through_the_table(char_tokenizer):
    encoder = CharTableEncoder.from_tokenizer(char_tokenizer, 64)
    assert encoder is not None
    encoder._fallback = None  # no text here may need it
    texts = ["보내기 [SEP] 끝", "[CLS][PAD][MASK]"]
    ids = encoder.encode(texts).as_lists()
    assert ids == _reference(char_tokenizer, texts, 64)
    # One [SEP] (the tokenizer's own, at the end), not the one the user typed.
    assert ids[0].count(char_tokenizer.token_to_id("[SEP]")) == 1
    assert ids[1].count(char_tokenizer.token_to_id("[CLS]")) == 1


def test_a_batch_with_a_non_special_added_token_goes_to_the_fallback():
    class Counting(RustEncoder):
        calls = 0

        def encode(self, texts):
            Counting.calls += 1
            return super().encode(texts)

    tokenizer = train_tokenizer(SEED_TEXTS, vocab_size=500, kind="char")
    tokenizer.add_tokens(["ㅋㅋㅋ"])  # an added token that is not special: the tokenizer matches it in text
    encoder = CharTableEncoder.from_tokenizer(tokenizer, 64)
    assert encoder is not None
    encoder._fallback = Counting(tokenizer, 64)
    encoder.encode(["씨발 뭐야", "좋은 하루"])
    assert Counting.calls == 0
    mixed = ["씨발 뭐야", "웃겨 ㅋㅋㅋ 끝"]
    ids = encoder.encode(mixed).as_lists()
    assert Counting.calls == 1
    assert ids == _reference(tokenizer, mixed, 64)
    assert tokenizer.token_to_id("ㅋㅋㅋ") in ids[1]
    # A token split across two texts of the batch is not a token: the table encodes that batch.
    encoder.encode(["ㅋ", "ㅋㅋ"])
    assert Counting.calls == 1


def test_bpe_rust_encoder_gives_the_tokenizers_ids(bpe_tokenizer):
    texts = SEED_TEXTS[:300] + EDGE_TEXTS
    assert RustEncoder(bpe_tokenizer, 32).encode(texts).as_lists() == _reference(bpe_tokenizer, texts, 32)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40), max_size=8))
def test_any_unicode_text_encodes_as_the_tokenizer_does(char_tokenizer, texts):
    encoder = CharTableEncoder.from_tokenizer(char_tokenizer, 24)
    assert encoder is not None
    encoder._fallback = None  # special tokens typed in a text are characters: no text needs the fallback
    assert encoder.encode(texts).as_lists() == _reference(char_tokenizer, texts, 24)


def test_padded_rows_are_the_texts_ids_then_padding():
    tokens = TokenIds(np.array([5, 6, 7, 8, 9, 10], dtype=np.int64), np.array([3, 1, 2], dtype=np.int64))
    assert tokens.as_lists() == [[5, 6, 7], [8], [9, 10]]
    assert tokens.padded(np.array([2, 0]), pad_id=0).tolist() == [[9, 10, 0], [5, 6, 7]]
    assert tokens.padded(np.array([1]), pad_id=-1).tolist() == [[8]]


def test_empty_batch_and_impossible_length():
    encoder = CharTableEncoder({"a": 5}, unk_id=1, cls_id=2, sep_id=3, max_length=8)
    empty = encoder.encode([])
    assert len(empty) == 0 and empty.as_lists() == []
    assert encoder.encode(["ab", ""]).as_lists() == [[2, 5, 1, 3], [2, 3]]
    with pytest.raises(ValueError, match="max_length"):
        CharTableEncoder({"a": 5}, unk_id=1, cls_id=2, sep_id=3, max_length=2)
