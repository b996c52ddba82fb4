"""The n-gram branch solved as an NB-scaled L2 logistic regression (content_arena.training.ngram_solver)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from content_arena.defender.ngram_bert import NgramBertConfig, NgramBertForSequenceClassification
from content_arena.training.ngram_solver import (
    DEFAULT_CS,
    _log_count_ratio,
    fit_ngram_branch_linear,
    ngram_feature_matrix,
)


def _model(pooling: str = "idf") -> NgramBertForSequenceClassification:
    torch.manual_seed(0)
    config = NgramBertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=40, type_vocab_size=1, pad_token_id=0, num_labels=2,
        ngram_buckets=512, ngram_dim=8, ngram_orders=[1, 2], ngram_pooling=pooling,
    )
    return NgramBertForSequenceClassification(config).eval()


def _data(n: int, seed: int) -> tuple[list[list[int]], list[int]]:
    """Token id lists where tokens 5-9 mark the toxic class and 10-14 the clean one, with noise."""
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        length = int(rng.integers(3, 12))
        seq = rng.integers(15, 40, size=length).tolist()
        marker = int(rng.integers(5, 10) if label else rng.integers(10, 15))
        if rng.random() < 0.8:  # 20% of texts carry no marker: the problem is not separable
            seq[int(rng.integers(0, length))] = marker
        ids.append([2, *seq, 3])
        labels.append(label)
    return ids, labels


def _padded(id_lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(x) for x in id_lists)
    ids = torch.zeros((len(id_lists), width), dtype=torch.long)
    for row, seq in enumerate(id_lists):
        ids[row, : len(seq)] = torch.tensor(seq)
    return ids, (ids != 0).long()


@pytest.mark.parametrize("pooling", ["idf", "mean"])
def test_feature_matrix_is_what_the_model_pools(pooling):
    model = _model(pooling)
    if pooling == "idf":
        model.set_ngram_idf(_data(50, 1)[0])
    id_lists, _ = _data(20, 2)
    features = ngram_feature_matrix(model, id_lists, chunk=7)
    ids, mask = _padded(id_lists)
    with torch.no_grad():
        pooled = model.ngram_features(ids, mask)
        expected = torch.sparse.mm(features, model.ngram_embeddings.weight)
    torch.testing.assert_close(expected, pooled, atol=1e-5, rtol=1e-5)


def test_solution_is_scikit_learns_logistic_regression_on_nb_scaled_features():
    from sklearn.linear_model import LogisticRegression

    model = _model()
    id_lists, labels = _data(300, 3)
    model.set_ngram_idf(id_lists)
    fit = fit_ngram_branch_linear(model, id_lists, labels, cs=[1.0])
    features = ngram_feature_matrix(model, id_lists)
    scale = _log_count_ratio(features, torch.tensor(labels), model.config.ngram_buckets)
    dense = (features.to_dense() * scale).numpy().astype(np.float64)
    reference = LogisticRegression(C=1.0, tol=1e-8, max_iter=5000).fit(dense, labels)
    ids, mask = _padded(id_lists)
    model.branches = "ngram"
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    ours = torch.softmax(logits, dim=-1)[:, 1].numpy()
    np.testing.assert_allclose(ours, reference.predict_proba(dense)[:, 1], atol=2e-3)
    assert fit.c == 1.0 and fit.val == {} and fit.tried == {}


def test_regularisation_is_picked_on_validation_auroc_and_generalises():
    model = _model()
    train_ids, train_labels = _data(400, 4)
    val_ids, val_labels = _data(200, 5)
    test_ids, test_labels = _data(300, 6)
    model.set_ngram_idf(train_ids)
    fit = fit_ngram_branch_linear(model, train_ids, train_labels, val_ids, val_labels)
    assert set(fit.tried) == set(DEFAULT_CS)
    assert fit.tried[fit.c] == max(fit.tried.values()) == pytest.approx(fit.val["val_auroc"])
    ids, mask = _padded(test_ids)
    model.branches = "ngram"
    with torch.no_grad():
        scores = torch.softmax(model(input_ids=ids, attention_mask=mask).logits, dim=-1)[:, 1].numpy()
    from content_arena.metrics import auroc

    assert auroc(np.array(test_labels), scores) > 0.8  # markers in 80% of texts: about 0.9 is the ceiling
