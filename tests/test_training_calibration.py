"""The challenger's threshold mapped from its champion's through the two models' logits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from content_arena.training.calibration import MIN_TEXTS, fit_logit_map, map_threshold


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def logit(p: float) -> float:
    return math.log(p / (1 - p))


@pytest.fixture
def champion_logits() -> np.ndarray:
    return np.random.default_rng(0).normal(0.0, 1.5, size=1000)  # |2.5 z + 0.8| stays under the clip


def test_an_exactly_sharper_challenger_keeps_every_decision_of_its_champion(champion_logits):
    champion = sigmoid(champion_logits)
    challenger = sigmoid(2.5 * champion_logits + 0.8)  # sharper and shifted toward toxic

    mapping = map_threshold(0.5, champion, challenger)

    assert mapping.logit_map is not None
    assert mapping.logit_map.slope == pytest.approx(2.5, abs=1e-3)
    assert mapping.logit_map.intercept == pytest.approx(0.8, abs=1e-3)
    assert mapping.logit_map.correlation == pytest.approx(1.0)
    assert mapping.threshold == pytest.approx(float(sigmoid(np.array(0.8))), abs=1e-4)
    assert mapping.reason.startswith("mapped")
    # At the champion's threshold the challenger would flag more; at the mapped one exactly the same texts.
    assert (challenger >= 0.5).sum() > (champion >= 0.5).sum()
    assert np.array_equal(challenger >= mapping.threshold, champion >= 0.5)


def test_other_champion_thresholds_move_along_the_same_line(champion_logits):
    champion = sigmoid(champion_logits)
    challenger = sigmoid(2.0 * champion_logits - 0.5)
    for threshold in (0.3, 0.46, 0.7):
        mapped = map_threshold(threshold, champion, challenger).threshold
        assert logit(mapped) == pytest.approx(2.0 * logit(threshold) - 0.5, abs=1e-3)


def test_a_challenger_that_learnt_something_still_crosses_the_mapped_threshold(champion_logits):
    champion = sigmoid(champion_logits)
    shifted = 2.0 * champion_logits + 0.6
    learnt = np.arange(len(shifted)) % 20 == 0  # 5% of the texts: evasions the champion scored low
    champion[learnt] = 0.1
    shifted[learnt] = 4.0
    challenger = sigmoid(shifted)

    mapping = map_threshold(0.5, champion, challenger)

    assert mapping.logit_map is not None and mapping.logit_map.correlation > 0.5
    assert (challenger[learnt] >= mapping.threshold).all()  # still caught by the challenger
    assert not (champion[learnt] >= 0.5).any()


def test_noisy_logits_give_a_close_line():
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 1.5, size=3000)
    fitted = fit_logit_map(sigmoid(x), sigmoid(3.0 * x + 0.5 + rng.normal(0.0, 0.5, size=len(x))))
    assert fitted.slope == pytest.approx(3.0, abs=0.05)
    assert fitted.intercept == pytest.approx(0.5, abs=0.05)
    assert fitted.n == 3000


def test_too_few_texts_keep_the_champion_threshold(champion_logits):
    few = champion_logits[: MIN_TEXTS - 1]
    mapping = map_threshold(0.46, sigmoid(few), sigmoid(3 * few + 1))
    assert mapping.threshold == 0.46 and mapping.logit_map is None
    assert f"{MIN_TEXTS - 1} validation texts" in mapping.reason


@pytest.mark.parametrize(
    "challenger",
    [
        lambda z: np.full_like(z, 0.7),  # constant: no line
        lambda z: sigmoid(-2.0 * z),  # decreasing
        lambda z: sigmoid(np.random.default_rng(2).normal(size=len(z))),  # unrelated
    ],
    ids=["constant", "decreasing", "unrelated"],
)
def test_no_increasing_line_keeps_the_champion_threshold(champion_logits, challenger):
    mapping = map_threshold(0.5, sigmoid(champion_logits), challenger(champion_logits))
    assert mapping.threshold == 0.5
    assert mapping.logit_map is None
    assert mapping.reason.startswith("kept: the logits do not follow an increasing line")


def test_a_mapped_threshold_is_clamped(champion_logits):
    mapping = map_threshold(0.5, sigmoid(champion_logits), sigmoid(champion_logits + 6.0))
    assert mapping.threshold == 0.95
    assert "clamped to 0.95" in mapping.reason


def test_saturated_scores_do_not_break_the_fit(champion_logits):
    champion = sigmoid(champion_logits)
    challenger = sigmoid(2.0 * champion_logits).astype(np.float32)
    challenger[:50], challenger[50:100] = 1.0, 0.0  # float32 scores that rounded to the ends
    mapping = map_threshold(0.5, champion, challenger)
    assert mapping.logit_map is not None and np.isfinite(mapping.logit_map.slope)
    assert 0.05 <= mapping.threshold <= 0.95


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="same length"):
        fit_logit_map([0.1, 0.2, 0.3], [0.1, 0.2])
