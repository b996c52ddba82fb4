"""The operating point: a policy on validation texts gives the threshold."""

from __future__ import annotations

import numpy as np
import pytest

from content_arena.metrics import binary_metrics
from content_arena.operating_point import OperatingPoint, choose_threshold


@pytest.fixture
def validation() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 600)
    scores = np.clip(0.35 * labels + 0.65 * rng.random(600), 0.0, 1.0)
    return labels, scores


def test_the_threshold_chosen_at_fpr_0_10_flags_at_most_10_percent_of_validation_clean_texts(validation):
    labels, scores = validation
    choice = choose_threshold(labels, scores, OperatingPoint(metric="fpr", value=0.10))
    flagged_clean = np.mean(scores[labels == 0] >= choice.threshold)
    assert flagged_clean <= 0.10
    assert choice.fpr == pytest.approx(flagged_clean)
    # the most recall within the budget: any lower cut that catches more toxic texts flags too many clean ones
    for cut in np.unique(scores[scores < choice.threshold]):
        measured = binary_metrics(labels, scores, cut)
        assert measured.recall == choice.recall or measured.fpr > 0.10
    # and the highest cut for that recall: the lowest flagged score is a toxic text
    assert labels[scores == np.min(scores[scores >= choice.threshold])].max() == 1


def test_an_fpr_budget_is_not_spent_when_flagging_more_clean_texts_catches_nothing_more():
    labels = np.array([0] * 50 + [1] * 50)
    scores = np.r_[np.linspace(0.0, 0.3, 50), np.linspace(0.7, 1.0, 50)]  # separated: every toxic above 0.7
    choice = choose_threshold(labels, scores, OperatingPoint(metric="fpr", value=0.10))
    assert (choice.recall, choice.fpr) == (1.0, 0.0)
    assert choice.threshold == pytest.approx(0.5)  # halfway between the highest clean and the lowest toxic


def test_the_choice_reports_what_binary_metrics_measures_at_its_threshold(validation):
    labels, scores = validation
    for point in (OperatingPoint(metric="fpr", value=0.2), OperatingPoint(metric="recall", value=0.7),
                  OperatingPoint(metric="precision", value=0.8)):
        choice = choose_threshold(labels, scores, point)
        measured = binary_metrics(labels, scores, choice.threshold)
        assert (choice.fpr, choice.recall, choice.precision) == pytest.approx(
            (measured.fpr, measured.recall, measured.precision))
        assert choice.n == len(labels) and choice.n_toxic + choice.n_clean == len(labels)


def test_a_recall_point_takes_the_highest_threshold_that_still_catches_that_share(validation):
    labels, scores = validation
    choice = choose_threshold(labels, scores, OperatingPoint(metric="recall", value=0.7))
    assert choice.recall >= 0.7
    higher = np.min(scores[scores >= choice.threshold])  # the lowest flagged score: raising past it loses it
    assert np.mean(scores[labels == 1] > higher) < 0.7


def test_a_precision_point_takes_the_most_recall_that_keeps_it(validation):
    labels, scores = validation
    choice = choose_threshold(labels, scores, OperatingPoint(metric="precision", value=0.8))
    assert choice.precision >= 0.8
    for cut in np.unique(scores[scores < choice.threshold]):
        measured = binary_metrics(labels, scores, cut)
        assert measured.recall == choice.recall or measured.precision < 0.8


def test_an_unreachable_precision_is_a_clear_error():
    labels = np.array([0, 1] * 20)
    scores = np.full(40, 0.5)  # every text alike: precision is the base rate, 0.5, whatever the cut
    with pytest.raises(ValueError, match="no threshold reaches precision 0.90"):
        choose_threshold(labels, scores, OperatingPoint(metric="precision", value=0.9))


def test_the_cut_falls_between_two_scores_and_the_choice_is_deterministic_on_ties():
    labels = np.array([0] * 10 + [1] * 10)
    scores = np.array([0.1] * 9 + [0.6] + [0.6] * 5 + [0.9] * 5)  # a clean text ties with five toxic ones
    first = choose_threshold(labels, scores, OperatingPoint(metric="fpr", value=0.05), min_texts=2, min_per_class=1)
    assert first == choose_threshold(labels, scores, OperatingPoint(metric="fpr", value=0.05), min_texts=2,
                                     min_per_class=1)
    # flagging the tie would flag 10% of clean texts: the cut sits between 0.6 and 0.9
    assert first.threshold == pytest.approx(0.75) and first.fpr == 0.0 and first.recall == 0.5


def test_a_tiny_fpr_on_perfectly_separated_scores_flags_all_toxic_and_no_clean():
    labels = np.array([0] * 30 + [1] * 30)
    scores = np.r_[np.linspace(0.0, 0.4, 30), np.linspace(0.6, 1.0, 30)]
    choice = choose_threshold(labels, scores, OperatingPoint(metric="fpr", value=0.01))
    assert 0.4 < choice.threshold <= 0.6
    assert (choice.fpr, choice.recall, choice.precision) == (0.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("labels", "message"),
    [([1] * 50, "0 clean"), ([0] * 48 + [1] * 2, "2 toxic"), ([0, 1] * 5, "10 validation texts")],
)
def test_a_missing_class_or_too_few_texts_is_a_clear_error(labels, message):
    scores = np.linspace(0.0, 1.0, len(labels))
    with pytest.raises(ValueError, match=message):
        choose_threshold(labels, scores, OperatingPoint())


def test_malformed_scores_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        choose_threshold([0, 1] * 20, [0.5] * 39, OperatingPoint())
    with pytest.raises(ValueError, match="NaN"):
        choose_threshold([0, 1] * 20, [np.nan] + [0.5] * 39, OperatingPoint())


def test_an_operating_point_round_trips_and_refuses_nonsense():
    point = OperatingPoint(metric="recall", value=0.7)
    assert OperatingPoint.from_dict(point.to_dict()) == point
    assert point.describe() == "recall >= 0.70" and OperatingPoint().describe() == "fpr <= 0.10"
    with pytest.raises(ValueError, match="value"):
        OperatingPoint.from_dict({"metric": "fpr", "value": 1.5})
    with pytest.raises(ValueError, match="metric"):
        OperatingPoint.from_dict({"metric": "f1", "value": 0.5})
    with pytest.raises(ValueError, match="mapping"):
        OperatingPoint.from_dict("fpr=0.1")  # type: ignore[arg-type]
