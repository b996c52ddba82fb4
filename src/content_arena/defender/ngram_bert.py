"""The default defender architecture: a hashed token n-gram branch, optionally under a small BERT encoder.

A BERT-style encoder trained from scratch on a few thousand labelled comments memorises them within two
epochs and generalises no better than a bag of character n-grams; a linear bag of n-grams is the part
that generalises from little data. So the model is one: the token ids are hashed into unigram, bigram
and trigram buckets, their embeddings are pooled and a linear head turns the pooled vector into logits.
With a character tokenizer (the default) or a small byte-level BPE vocabulary the tokens are close to
characters, so the branch is a character n-gram model.

Pooling (``ngram_pooling``): "idf" weights each n-gram by its inverse document frequency in the
training corpus and L2-normalises, as a TF-IDF vector is built (the IDF table is saved with the
weights); "mean" averages, as models saved before pooling was configurable do. N-grams found in fewer
than ``ngram_min_df`` texts of that corpus weigh nothing (see :class:`NgramBertConfig`), so garbling a
text cannot dilute the n-grams the model knows; a challenger gives weight to its own training texts'
n-grams (:meth:`~NgramBertForSequenceClassification.extend_ngram_idf`).

Because the n-grams are computed from ``input_ids`` inside ``forward``, the model keeps the plain
``input_ids``/``attention_mask`` interface: the defender, ``transformers.pipeline()``, the KServe
runtime and LoRA (which adapts ``ngram_embeddings`` like the token embeddings) need nothing new.

``use_encoder`` says whether a BERT encoder adds its logits to the branch's. Built from config without
one (``model.encoder`` false, the default), the model has no transformer layers at all. With one,
training runs in two stages (see :func:`content_arena.training.train_champion`): the branch alone first
(``branches = "ngram"``), then the encoder with the branch frozen, learning what the bag of n-grams
misses; an encoder that does not earn its cost on validation is switched off (``use_encoder`` false)
and its weights, kept in the file, never run.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
)
from transformers.modeling_outputs import SequenceClassifierOutput

__all__ = ["NgramBertConfig", "NgramBertForSequenceClassification", "hash_ngrams", "ngram_document_frequency",
           "pad_id_lists", "register_auto_classes"]

MODEL_TYPE = "arena-ngram-bert"
_MODULUS = 2_147_483_647  # a prime: rolling hash kept below 2**31 so int64 never overflows
_MULTIPLIER = 1_000_003
POOLINGS = ("mean", "idf")


class NgramBertConfig(BertConfig):
    model_type = MODEL_TYPE

    def __init__(
        self,
        ngram_buckets: int = 131_072,
        ngram_dim: int = 64,
        ngram_orders: list[int] | tuple[int, ...] = (1, 2, 3),
        ngram_dropout: float = 0.1,
        ngram_pooling: str = "mean",
        use_encoder: bool = True,
        ngram_fold: bool = False,
        ngram_min_df: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if ngram_pooling not in POOLINGS:
            raise ValueError(f"ngram_pooling must be one of {', '.join(POOLINGS)}, not {ngram_pooling!r}")
        self.ngram_buckets = int(ngram_buckets)
        self.ngram_dim = int(ngram_dim)
        self.ngram_orders = [int(n) for n in ngram_orders]
        self.ngram_dropout = float(ngram_dropout)
        # "mean" (models saved before pooling was configurable) or "idf" (see the module docstring).
        self.ngram_pooling = ngram_pooling
        # False: the encoder's weights are kept in the file but never run (see the module docstring).
        self.use_encoder = bool(use_encoder)
        # True: the n-gram branch hashes each token through a fold table first (set_ngram_fold), so
        # tokens that the table maps together share their n-grams. The encoder sees the tokens as they are.
        self.ngram_fold = bool(ngram_fold)
        # With "idf" pooling: buckets found in fewer than this many texts of the IDF corpus get weight 0,
        # so n-grams the model never saw add nothing to a text's vector and, above all, nothing to its
        # norm. Otherwise every garbled character adds unseen n-grams at the highest IDF, which dilute
        # the known ones: a bag of n-grams then reads "garbled" as "less toxic". 0 (models saved before
        # this setting): every bucket counts.
        if int(ngram_min_df) < 0:
            raise ValueError(f"ngram_min_df must be >= 0, not {ngram_min_df!r}")
        self.ngram_min_df = int(ngram_min_df)


def hash_ngrams(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, orders: list[int], buckets: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bucket ids ``(batch, n_grams)`` of every n-gram of the given orders, and which are real.

    An n-gram is real when all its tokens are (not padding). Each order gets its own hash offset so
    the bigram (a, b) and the trigram (a, b, 0) land in different buckets.
    """
    batch, width = input_ids.shape
    ids = input_ids.long()
    real = attention_mask.bool()
    hashes, masks = [], []
    for n in orders:
        if width < n:
            continue
        span = width - n + 1
        h = torch.full((batch, span), n * 7_919, dtype=torch.long, device=ids.device)
        m = torch.ones((batch, span), dtype=torch.bool, device=ids.device)
        for k in range(n):
            h = torch.remainder(h * _MULTIPLIER + ids[:, k : k + span], _MODULUS)
            m = m & real[:, k : k + span]
        hashes.append(torch.remainder(h, buckets))
        masks.append(m)
    if not hashes:
        empty = torch.zeros((batch, 1), dtype=torch.long, device=ids.device)
        return empty, torch.zeros((batch, 1), dtype=torch.bool, device=ids.device)
    return torch.cat(hashes, dim=1), torch.cat(masks, dim=1)


def pad_id_lists(id_lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` for token id lists, padded with 0 (an empty list is all padding)."""
    width = max((len(ids) for ids in id_lists), default=0) or 1
    input_ids = torch.zeros((len(id_lists), width), dtype=torch.long)
    mask = torch.zeros((len(id_lists), width), dtype=torch.long)
    for row, ids in enumerate(id_lists):
        if ids:
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[row, : len(ids)] = 1
    return input_ids, mask


def ngram_document_frequency(
    id_lists: list[list[int]], orders: list[int], buckets: int, chunk: int = 512, fold: torch.Tensor | None = None
) -> tuple[torch.Tensor, int]:
    """How many of the texts (token id lists) contain each bucket at least once, and how many texts
    (``fold``: each token id is looked up in it first, as the model's fold table does)."""
    counts = torch.zeros(buckets, dtype=torch.float64)
    for start in range(0, len(id_lists), chunk):
        rows = [ids for ids in id_lists[start : start + chunk] if ids]
        if not rows:
            continue
        input_ids, mask = pad_id_lists(rows)
        if fold is not None:
            input_ids = fold[input_ids]
        hashed, real = hash_ngrams(input_ids, mask, orders, buckets)
        # One count per (text, bucket): offset each row's buckets so a single unique() dedups per row.
        row_offset = torch.arange(len(rows), dtype=torch.long).unsqueeze(1) * buckets
        present = torch.unique((hashed + row_offset)[real]) % buckets
        counts += torch.bincount(present, minlength=buckets).to(torch.float64)
    return counts, sum(1 for ids in id_lists if ids)


class NgramBertForSequenceClassification(BertForSequenceClassification):
    """``BertForSequenceClassification`` whose logits add a fastText-style bag of hashed n-grams."""

    config_class = NgramBertConfig

    def __init__(self, config: NgramBertConfig):
        super().__init__(config)
        # Sparse gradients: a batch touches a few thousand of the buckets, so the optimiser updates
        # only those rows (SparseAdam in the training loop) instead of the whole table every step.
        self.ngram_embeddings = nn.Embedding(config.ngram_buckets, config.ngram_dim, sparse=True)
        self.ngram_dropout = nn.Dropout(config.ngram_dropout)
        self.ngram_classifier = nn.Linear(config.ngram_dim, config.num_labels)
        if config.ngram_pooling == "idf":
            # Saved with the weights; all ones until set_ngram_idf() sees the training corpus.
            self.register_buffer("ngram_idf", torch.ones(config.ngram_buckets), persistent=True)
        if config.ngram_fold:
            # Saved with the weights; the identity until set_ngram_fold() is given a table.
            self.register_buffer("ngram_fold_ids", torch.arange(config.vocab_size, dtype=torch.long), persistent=True)
        # "both" (inference, second training stage), "ngram" (first training stage): a runtime switch.
        # Whether a saved model has an encoder at all is config (use_encoder).
        self.branches = "both"
        self.post_init()

    def set_ngram_idf(self, id_lists: list[list[int]]) -> None:
        """Smoothed inverse document frequency of every bucket over ``id_lists`` (as scikit-learn's); 0 for
        the buckets found in fewer than ``config.ngram_min_df`` of them."""
        idf, known = self._idf(id_lists)
        self.ngram_idf.copy_(torch.where(known, idf, 0.0).to(self.ngram_idf.dtype))

    def extend_ngram_idf(self, id_lists: list[list[int]]) -> int:
        """Give the buckets that carry no weight yet (unseen by :meth:`set_ngram_idf`'s corpus) their IDF
        over ``id_lists``; the others keep theirs. A challenger calls it with its training texts, so the
        n-grams of the evasions it learns from count in its pooled vector. Returns the buckets opened."""
        idf, known = (t.to(self.ngram_idf.device) for t in self._idf(id_lists))
        opened = known & (self.ngram_idf == 0)
        self.ngram_idf[opened] = idf[opened].to(self.ngram_idf.dtype)
        return int(opened.sum())

    def _idf(self, id_lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Each bucket's IDF over ``id_lists``, and whether it is found often enough to count."""
        if self.config.ngram_pooling != "idf":
            raise ValueError("an IDF table needs ngram_pooling='idf'")
        fold = self.ngram_fold_ids if self.config.ngram_fold else None
        df, n = ngram_document_frequency(id_lists, self.config.ngram_orders, self.config.ngram_buckets, fold=fold)
        idf = torch.log((1.0 + n) / (1.0 + df)) + 1.0
        return idf, df >= self.config.ngram_min_df

    def set_ngram_fold(self, folded: list[int]) -> None:
        """Token id -> the id the n-gram branch hashes in its place (one entry per vocabulary id).
        Call it before :meth:`set_ngram_idf`, whose document frequencies are counted on folded ids."""
        if not self.config.ngram_fold:
            raise ValueError("set_ngram_fold needs ngram_fold=True")
        table = torch.as_tensor(folded, dtype=torch.long)
        if table.shape != self.ngram_fold_ids.shape or int(table.min()) < 0 or int(table.max()) >= len(table):
            raise ValueError(f"a fold table needs one id in 0..{len(self.ngram_fold_ids) - 1} per vocabulary id")
        self.ngram_fold_ids.copy_(table)

    def ngram_pooling_weights(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Bucket ids ``(batch, n_grams)`` and the weight each occurrence has in its text's pooled vector
        (0 for padding): :meth:`ngram_features` is the weighted sum of their embeddings.

        "mean": 1 over the number of n-grams. "idf": the bucket's IDF over the L2 norm of those IDFs,
        as a TF-IDF vector is normalised: frequent n-grams (particles, spaces) no longer drown the rare
        ones that carry the insult, and long texts are not averaged flat.
        """
        if self.config.ngram_fold:
            input_ids = self.ngram_fold_ids[input_ids]
        buckets, real = hash_ngrams(input_ids, attention_mask, self.config.ngram_orders, self.config.ngram_buckets)
        weights = real.to(self.ngram_embeddings.weight.dtype)
        if self.config.ngram_pooling == "idf":
            weights = weights * self.ngram_idf[buckets].to(weights.dtype)
            norm = weights.pow(2).sum(dim=1, keepdim=True).sqrt().clamp(min=1e-6)
        else:
            norm = weights.sum(dim=1, keepdim=True).clamp(min=1.0)
        return buckets, weights / norm

    def _plain_branch(self) -> bool:
        """Whether the table and the head are plain modules (not wrapped by an adapter being trained)."""
        return type(self.ngram_embeddings) is nn.Embedding and type(self.ngram_classifier) is nn.Linear

    def _branch_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The branch's logits at inference, from :meth:`_bucket_rows` (the same numbers as the head applied
        to :meth:`ngram_features` with dropout off)."""
        if self.config.ngram_pooling != "idf" or self.config.ngram_fold:
            buckets, weights = self.ngram_pooling_weights(input_ids, attention_mask)
            return nn.functional.embedding_bag(buckets, self._bucket_rows()[:, 1:], per_sample_weights=weights,
                                               mode="sum") + self.ngram_classifier.bias
        buckets, real = hash_ngrams(input_ids, attention_mask, self.config.ngram_orders, self.config.ngram_buckets)
        # One fused gather-and-sum of (IDF squared, IDF-weighted logits) per text: the L2 norm and the
        # pooled logits together, with no (batch, n_grams, columns) tensor in between.
        rows = self._bucket_rows()
        summed = nn.functional.embedding_bag(buckets, rows, per_sample_weights=real.to(rows.dtype), mode="sum")
        return summed[:, 1:] / summed[:, :1].sqrt().clamp(min=1e-6) + self.ngram_classifier.bias

    def _bucket_rows(self) -> torch.Tensor:
        """``(buckets, 1 + num_labels)``: each bucket's squared IDF (1 with mean pooling), then its IDF times
        its embedding through the head's weights.

        The head is linear and dropout is off at inference, so pooling these rows gives the same logits as
        pooling the embeddings and applying the head, while reading one short row per n-gram (weight and
        logits side by side) instead of an IDF entry and an embedding of ``ngram_dim`` numbers. Kept until
        the table, the head or the IDF change (a load, a merge, a challenger's new n-grams).
        """
        table, head = self.ngram_embeddings.weight, self.ngram_classifier.weight
        idf = getattr(self, "ngram_idf", None)
        key = (table.data_ptr(), table._version, head.data_ptr(), head._version, table.dtype,
               None if idf is None else (idf.data_ptr(), idf._version))
        cached = getattr(self, "_bucket_rows_cache", None)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                logits = table @ head.t()
                weight = (idf if idf is not None else torch.ones(len(table), device=table.device)).to(logits.dtype)
                if self.config.ngram_pooling == "idf" and not self.config.ngram_fold:
                    logits = logits * weight.unsqueeze(1)
                cached = (key, torch.cat([weight.pow(2).unsqueeze(1), logits], dim=1).contiguous())
            self._bucket_rows_cache = cached
        return cached[1]

    def ngram_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """A text's n-gram embeddings pooled into ``(batch, ngram_dim)`` (see :meth:`ngram_pooling_weights`)."""
        buckets, weights = self.ngram_pooling_weights(input_ids, attention_mask)
        table = self.ngram_embeddings
        if type(table) is nn.Embedding:
            # One fused gather-and-sum: no (batch, n_grams, dim) tensor in between.
            return nn.functional.embedding_bag(buckets, table.weight, per_sample_weights=weights, mode="sum",
                                               sparse=table.sparse)
        # Wrapped (a LoRA adapter on the table): its own forward adds the adapter's contribution.
        return (table(buckets) * weights.unsqueeze(-1)).sum(dim=1)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        if input_ids is None:
            raise ValueError("NgramBertForSequenceClassification needs input_ids (n-grams are hashed from them)")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        encoder_runs = self.branches != "ngram" and self.config.use_encoder
        if not encoder_runs and not self.training and not torch.is_grad_enabled() and self._plain_branch():
            return SequenceClassifierOutput(logits=self._branch_logits(input_ids, attention_mask))
        logits = self.ngram_classifier(self.ngram_dropout(self.ngram_features(input_ids, attention_mask)))
        hidden_states = attentions = None
        if encoder_runs:
            kwargs.pop("return_dict", None)
            encoded = super().forward(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **kwargs)
            logits = encoded.logits + logits.to(encoded.logits.dtype)
            hidden_states, attentions = encoded.hidden_states, encoded.attentions
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states, attentions=attentions)


def register_auto_classes() -> None:
    """Let ``AutoConfig`` / ``AutoModelForSequenceClassification.from_pretrained`` load saved models."""
    AutoConfig.register(MODEL_TYPE, NgramBertConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(NgramBertConfig, NgramBertForSequenceClassification, exist_ok=True)


register_auto_classes()
