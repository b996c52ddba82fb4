"""Token ids for a batch of texts, flat in one array, and the encoders that make them.

The default defender's tokenizer is character-level (``training.tokenizer``: a ``WordLevel`` model
over single characters, ``[CLS] … [SEP]`` around each text). For it, :class:`CharTableEncoder` maps
all the batch's characters through one lookup table in a few numpy calls, instead of building a
Rust ``Encoding`` object per text (with offsets, type ids and masks the defender never reads): on
512 BEEP! comments the Rust tokenizer encodes about 30,000-40,000 texts/s on this machine, a third of
the defender's time. Any other tokenizer (BPE, a ``base_model``'s WordPiece) goes through
:class:`RustEncoder`. Both give the same ids as ``tokenizer.encode_batch`` (tested on both kinds).

User text is never read as special tokens: ``</s>``, ``<|im_end|>`` or ``[SEP]`` typed in a comment are
split like any other text (:func:`literal_special_tokens`), so a user cannot end a sequence early,
inject a chat-template control token or reach an id the model never saw in that place. The special
tokens a tokenizer adds itself (``[CLS] … [SEP]``, a decoder's BOS) are added as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Protocol

import numpy as np
from tokenizers import Tokenizer

__all__ = [
    "CharTableEncoder", "RustEncoder", "TokenIds", "TokenEncoder", "encoder_for", "literal_special_tokens", "load_tokenizer",
]

_EACH_CHARACTER = "[\\s\\S]"


@dataclass(frozen=True)
class TokenIds:
    """Text ``i``'s ids are ``ids[offsets[i] : offsets[i] + lengths[i]]``."""

    ids: np.ndarray  # int64, every text's ids one after the other
    lengths: np.ndarray  # int64, one per text

    @property
    def offsets(self) -> np.ndarray:
        out = np.zeros(len(self.lengths), dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=out[1:])
        return out

    def __len__(self) -> int:
        return len(self.lengths)

    def padded(self, rows: np.ndarray, pad_id: int, offsets: np.ndarray | None = None) -> np.ndarray:
        """The texts ``rows`` as one ``(len(rows), longest)`` array, right-padded with ``pad_id``."""
        offsets = self.offsets if offsets is None else offsets
        lengths = self.lengths[rows]
        width = max(int(lengths.max(initial=0)), 1)
        out = np.full((len(rows), width), pad_id, dtype=np.int64)
        columns = np.arange(width)
        real = columns[None, :] < lengths[:, None]
        out[real] = self.ids[(offsets[rows][:, None] + columns[None, :])[real]]
        return out

    def as_lists(self) -> list[list[int]]:
        offsets = self.offsets
        return [self.ids[o : o + n].tolist() for o, n in zip(offsets.tolist(), self.lengths.tolist(), strict=True)]


def literal_special_tokens(tokenizer: Tokenizer) -> Tokenizer:
    """``tokenizer`` set to split special tokens found in the text as plain text; returns it.

    ``tokenizers`` does not save this setting in ``tokenizer.json``, so every place that loads a
    tokenizer sets it (:func:`load_tokenizer`, :class:`RustEncoder`); ``tokenizer_config.json`` carries
    it as ``split_special_tokens`` for transformers' own loaders.
    """
    tokenizer.encode_special_tokens = True
    return tokenizer


def load_tokenizer(path: str | Path) -> Tokenizer:
    """The ``tokenizer.json`` at ``path`` (a file or the model directory holding it), special tokens in
    text read literally (:func:`literal_special_tokens`)."""
    path = Path(path)
    return literal_special_tokens(Tokenizer.from_file(str(path / "tokenizer.json" if path.is_dir() else path)))


class TokenEncoder(Protocol):
    def encode(self, texts: Sequence[str]) -> TokenIds: ...


class RustEncoder:
    """Any ``tokenizers.Tokenizer``, truncated to ``max_length`` (special tokens included)."""

    def __init__(self, tokenizer: Tokenizer, max_length: int):
        self.tokenizer = literal_special_tokens(tokenizer)
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length)
        # encode_batch_fast (tokenizers >= 0.21) skips the character offsets nobody here reads.
        self._encode_batch = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)

    def encode(self, texts: Sequence[str]) -> TokenIds:
        encodings = self._encode_batch(list(texts), add_special_tokens=True)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        ids = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int64, count=int(lengths.sum()))
        return TokenIds(ids, lengths)


class CharTableEncoder:
    """A character-level ``WordLevel`` tokenizer as one lookup table over code points.

    Text ``t`` becomes ``[CLS] + table[c] for c in t[: max_length - 2] + [SEP]``, exactly as the
    tokenizer encodes it: a character it has no id for is ``[UNK]``, and truncation keeps the first
    characters so that the special tokens fit in ``max_length``. Special tokens typed in a text are
    characters like any others (see the module docstring). A batch where some text spells out an added
    token that is not special goes to ``fallback``, since the tokenizer reads that as the token itself.
    """

    def __init__(self, char_ids: dict[str, int], *, unk_id: int, cls_id: int, sep_id: int, max_length: int,
                 added_tokens: Sequence[str] = (), fallback: TokenEncoder | None = None):
        if max_length < 3:
            raise ValueError(f"max_length {max_length} leaves no room for text between [CLS] and [SEP]")
        top = max((ord(c) for c in char_ids), default=0)
        # One more slot than the highest known code point: every unknown character lands on it.
        self.table = np.full(top + 2, unk_id, dtype=np.int64)
        for char, index in char_ids.items():
            self.table[ord(char)] = index
        self.cls_id, self.sep_id, self.max_chars = cls_id, sep_id, max_length - 2
        self._added = re.compile("|".join(map(re.escape, added_tokens))) if added_tokens else None
        if self._added is not None and fallback is None:
            raise ValueError("a tokenizer with added tokens needs a fallback encoder for texts that contain them")
        self._fallback = fallback

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer, max_length: int) -> CharTableEncoder | None:
        """The table for ``tokenizer`` if it is the character-level kind, else None."""
        literal_special_tokens(tokenizer)  # the table reads every character, "[SEP]" typed in a text too
        spec = json.loads(tokenizer.to_str())
        model, pre = spec.get("model") or {}, spec.get("pre_tokenizer") or {}
        if (
            model.get("type") != "WordLevel"
            or spec.get("normalizer") is not None
            or pre.get("type") != "Split"
            or (pre.get("pattern") or {}).get("Regex") != _EACH_CHARACTER
            or pre.get("behavior") != "Isolated"
            or pre.get("invert")
            or (spec.get("truncation") or {}).get("direction", "Right") != "Right"
        ):
            return None
        added = [t["content"] for t in spec.get("added_tokens", []) if not t.get("special")]
        special = {t["content"]: t["id"] for t in spec.get("added_tokens", []) if t.get("special")}
        post = spec.get("post_processor") or {}
        single = post.get("single") if post.get("type") == "TemplateProcessing" else None
        if single != [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "[SEP]", "type_id": 0}}]:
            return None
        vocab: dict[str, int] = model.get("vocab") or {}
        unk = model.get("unk_token")
        if unk not in vocab or "[CLS]" not in vocab or "[SEP]" not in vocab:
            return None
        chars = {token: index for token, index in vocab.items() if token not in special}
        if any(len(token) != 1 for token in chars):
            return None
        return cls(chars, unk_id=vocab[unk], cls_id=vocab["[CLS]"], sep_id=vocab["[SEP]"], max_length=max_length,
                   added_tokens=added, fallback=RustEncoder(tokenizer, max_length))

    def encode(self, texts: Sequence[str]) -> TokenIds:
        # One scan of the whole batch: "\x00" is in no added token, so none is found across two texts.
        if self._added is not None and self._added.search("\x00".join(texts)):
            assert self._fallback is not None
            return self._fallback.encode(texts)
        cut = self.max_chars
        kept = [text[:cut] for text in texts]
        chars = np.fromiter((len(text) for text in kept), dtype=np.int64, count=len(kept))
        # UTF-32 gives one 4-byte unit per character; surrogatepass keeps a lone surrogate one unit too.
        points = np.frombuffer("".join(kept).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        lengths = chars + 2
        ids = np.empty(int(lengths.sum()), dtype=np.int64)
        starts = np.zeros(len(kept), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        ids[starts] = self.cls_id
        ids[starts + chars + 1] = self.sep_id
        # Character k of text i sits after i texts' two special tokens and its own [CLS].
        owner = np.repeat(np.arange(len(kept), dtype=np.int64), chars)
        positions = np.arange(len(points), dtype=np.int64) + 2 * owner + 1
        ids[positions] = self.table[np.minimum(points, len(self.table) - 1)]
        return TokenIds(ids, lengths)


def encoder_for(tokenizer: Tokenizer, max_length: int) -> TokenEncoder:
    """The lookup-table encoder for a character-level tokenizer, the Rust tokenizer otherwise."""
    return CharTableEncoder.from_tokenizer(tokenizer, max_length) or RustEncoder(tokenizer, max_length)
