"""The monitoring library: normaliser kinds, PSI and the score reference, the per-batch signals, the keys."""

from __future__ import annotations

import random
import unicodedata

import numpy as np
import pytest

from content_arena.defender.normalizer import (
    NORMALIZATION_KINDS,
    normalize,
    normalize_many,
    normalize_many_with_kinds,
)
from content_arena.monitoring import (
    SCORE_BINS,
    BatchSignals,
    LiveMonitor,
    LiveSignals,
    StateKeys,
    check_reference,
    psi,
    score_reference,
)
from content_arena.queue import MemoryBackend


def kinds_of(mask: int) -> set[str]:
    return {kind for i, kind in enumerate(NORMALIZATION_KINDS) if mask >> i & 1}


@pytest.mark.parametrize(("text", "kinds"), [
    ("씨\u200b발", {"invisible"}),
    ("ㅆㅣㅂㅏㄹ", {"jamo"}),
    (unicodedata.normalize("NFD", "씨발"), {"conjoining_jamo"}),
    ("ｆｕｃｋ", {"homoglyph"}),
    ("рһ", {"homoglyph"}),
    ("시 발 놈", {"separators"}),
    ("f.u.c.k", {"separators"}),
    ("씨_발", {"separators"}),
    ("tlqkf 놈", {"keyboard"}),
    ("ㅅ1발", {"romanized"}),
    ("씨\u200bㅂㅏㄹ ｘ", {"invisible", "jamo", "homoglyph"}),
    ("씨발 ｆｕｃｋ", {"homoglyph", "keyboard"}),  # with Hangul around, "fuck" reads as keys typed in Korean mode
    ("hello  World", set()),
    ("안녕하세요 반가워요", set()),
])
def test_the_normaliser_reports_which_kinds_of_change_it_made(text: str, kinds: set[str]) -> None:
    normalized, masks = normalize_many_with_kinds([text])
    assert normalized == [normalize(text)]
    assert kinds_of(masks[0]) == kinds


def test_normalising_with_kinds_gives_exactly_what_normalize_many_gives() -> None:
    from content_arena.attacks import get_strategy
    from content_arena.data import load_seed_corpus

    texts = [e.text for e in load_seed_corpus()[:300]]
    rng = random.Random(0)
    for name in ("jamo_split", "nfd", "homoglyph", "invisible", "spacing", "leet_phonetic"):
        strategy = get_strategy(name)
        texts += [strategy.attack(t, seed=rng.randrange(10_000)) for t in texts[:300]]
    texts += ["".join(chr(rng.randrange(0x20, 0x11000)) for _ in range(rng.randrange(1, 30))) for _ in range(500)]
    normalized, masks = normalize_many_with_kinds(texts)
    assert normalized == normalize_many(texts)
    assert sum(1 for m in masks if m) > 1000


def test_psi_is_zero_for_the_reference_itself_and_grows_with_the_shift() -> None:
    scores = np.random.default_rng(0).beta(0.5, 2.0, size=5000)
    reference = check_reference(score_reference(scores))
    assert reference is not None
    counts = np.histogram(scores, bins=np.asarray(SCORE_BINS))[0]
    assert psi(reference, counts) == pytest.approx(0.0, abs=1e-9)
    mild = np.histogram(np.clip(scores + 0.05, 0, 1), bins=np.asarray(SCORE_BINS))[0]
    strong = np.histogram(np.clip(scores + 0.3, 0, 1), bins=np.asarray(SCORE_BINS))[0]
    assert 0 < psi(reference, mild) < psi(reference, strong)
    assert psi(reference, strong) > 0.2


def test_a_reference_with_other_bins_or_garbage_is_ignored() -> None:
    assert check_reference(None) is None
    assert check_reference({"bins": [0, 0.5, 1], "shares": [0.5, 0.5]}) is None
    assert check_reference({"bins": list(SCORE_BINS), "shares": ["x"] * 10}) is None
    assert check_reference({"bins": list(SCORE_BINS), "shares": [0.0] * 10}) is None


def signals_for(lengths: list[int], kinds: list[int]) -> BatchSignals:
    return BatchSignals(list(lengths), list(kinds), list(lengths), words=10, unknown_words=3)


def test_signals_accumulate_per_model_version_and_psi_waits_for_enough_texts() -> None:
    live = LiveSignals(drift_window=100, drift_min_texts=4)
    reference = score_reference(np.array([0.05, 0.05, 0.95, 0.95]))
    live.observe("3", np.array([0.05, 0.95, 0.95]), 0.5, signals_for([5, 50, 500], [0, 1, 3]), reference)
    assert live.psi("3") is None  # 3 texts < drift_min_texts
    live.observe("3", np.array([0.05]), 0.5, signals_for([5], [0]), reference)
    assert live.psi("3") == pytest.approx(0.0, abs=1e-3)  # the decay weighs the older texts a little less
    live.observe("4", np.array([0.6]), 0.5, signals_for([5], [0]))
    assert live.psi("4") is None  # no reference
    snap = live.snapshot("3")
    assert snap["texts"] == 4 and snap["flagged"] == 2 and snap["any_changed"] == 2
    assert snap["kinds"]["invisible"] == 2 and snap["kinds"]["conjoining_jamo"] == 1
    assert snap["words"] == 20 and snap["unknown_words"] == 6
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(live)
    text = generate_latest(registry).decode()
    assert 'arena_live_texts_total{model_version="3"} 4.0' in text
    assert 'arena_live_texts_total{model_version="4"} 1.0' in text
    assert 'arena_live_score_psi{model_version="3"}' in text and 'arena_live_score_psi{model_version="4"}' not in text
    assert 'arena_live_text_length_chars_bucket{le="8.0",model_version="3"} 2.0' in text
    assert 'arena_live_text_length_chars_bucket{le="+Inf",model_version="3"} 4.0' in text


def test_review_candidates_are_picked_when_batches_are_added_up_and_rate_limited() -> None:
    from content_arena.config import MonitoringConfig

    class Stub:
        threshold = 0.5
        version = "1"

    picked: list = []
    monitor = LiveMonitor(MonitoringConfig(review_per_minute=3, review_band=0.05), on_candidates=picked.extend)
    texts = ["a", "b", "c", "d", "e"]
    monitor.record(Stub(), texts, np.array([0.5, 0.52, 0.9, 0.47, 0.1]),  # type: ignore[arg-type]
                   signals_for([1] * 5, [0, 0, 0b11, 0, 0]))
    assert picked == []  # nothing is picked on the classify path itself
    monitor.signals.snapshot("1")  # adds the queued batches up
    # Four qualify (a, b, d near the threshold; c changed in two ways); three allowed, spread over them.
    assert [(c.text, c.reason) for c in picked] == [("a", "near_threshold"), ("c", "heavily_normalized"),
                                                    ("d", "near_threshold")]
    monitor.record(Stub(), ["f"], np.array([0.5]), signals_for([1], [0b101]))  # type: ignore[arg-type]
    monitor.signals.snapshot("1")
    assert len(picked) == 3, "the minute's three samples are taken"
    fresh: list = []
    other = LiveMonitor(MonitoringConfig(review_per_minute=10), on_candidates=fresh.extend)
    other.record(Stub(), ["ｘ ㅆㅣ"], np.array([0.1]), signals_for([4], [0b101]))  # type: ignore[arg-type]
    other.signals.snapshot("1")
    assert [(c.reason, c.kinds) for c in fresh] == [("heavily_normalized", ["invisible", "jamo"])]


def test_scores_with_the_signals_on_are_the_defenders_calibrated_scores() -> None:
    from content_arena.config import MonitoringConfig
    from content_arena.defender.base import Defender
    from content_arena.defender.calibration import Calibrator

    class Calibrated(Defender):
        calibrator = Calibrator(kind="platt", a=2.0, b=-1.0)

        def load(self) -> Calibrated:
            self.ready = True
            return self

        def predict(self, texts):  # type: ignore[no-untyped-def]
            return np.array([0.2 + 0.1 * len(t) % 0.7 for t in texts], dtype=np.float32)

    defender = Calibrated().load()
    texts = ["안녕", "씨\u200b발", "ｆｕｃｋ you", "시 발 놈"]
    monitor = LiveMonitor(MonitoringConfig())
    on = monitor.score(defender, texts)
    assert on == pytest.approx(defender.scores(texts), abs=1e-6)
    assert not np.allclose(on, defender.predict(defender.preprocess(texts)))  # calibration changed them


def test_keys_and_events_on_the_in_process_backend() -> None:
    backend = MemoryBackend()
    keys = StateKeys(backend)
    subscription = backend.subscribe("battle_completed")
    summary = {"battle_id": "b1", "status": "completed", "rounds": 10, "evasion_rate": 0.2,
               "per_strategy": {"spacing": {"rounds": 5, "evaded": 2, "evasion_rate": 0.4},
                                "nfd": {"rounds": 5, "evaded": 0, "evasion_rate": 0.0}}}
    keys.battle_finished(summary, "3", champion_version="3")
    keys.battle_finished({**summary, "battle_id": "b2", "evasion_rate": 0.5}, "4", champion_version="3")
    first = subscription.get(timeout=1)
    assert first["per_strategy"] == {"spacing": 0.4, "nfd": 0.0} and first["detection_rate"] == pytest.approx(0.8)
    assert subscription.get(timeout=1)["battle_id"] == "b2"
    subscription.close()
    assert backend.publish("battle_completed", {}) == 0
    assert keys.current_detection_rate()["battle_id"] == "b1"  # b2 was not against the champion
    assert [e["battle_id"] for e in keys.detection_rate_history()] == ["b1", "b2"]
    assert [e["battle_id"] for e in keys.detection_rate_history("4")] == ["b2"]
    keys.champion_changed("models:/content-filter/3", 0.81)
    assert backend.get_value("model:champion:path") == "models:/content-filter/3"
    assert float(backend.get_value("model:champion:f1")) == pytest.approx(0.81)
    keys.champion_changed("models:/content-filter/4", None)
    assert backend.get_value("model:champion:f1") is None


def test_an_alert_with_a_nul_or_a_lone_surrogate_is_refused_before_the_store_sees_it():
    import pydantic

    from content_arena.service.alerts import AlertNotification

    for bad in ({"labels": {"alertname": "a\x00b"}}, {"annotations": {"\ud800": "x"}}, {"fingerprint": "f\x00"}):
        with pytest.raises(pydantic.ValidationError):
            AlertNotification(alerts=[{"status": "firing", **bad}])
    ok = AlertNotification(alerts=[{"status": "firing", "labels": {"alertname": "ArenaScoreDrift"}}])
    assert ok.alerts[0].labels["alertname"] == "ArenaScoreDrift"
