"""The adaptive black-box attacker: search, constraints, budget, lockstep batching, strategy wrapper."""

from __future__ import annotations

import time

import numpy as np
import pytest

from content_arena.attacks import AdaptiveAttacker, AdaptiveStrategy, get_strategy
from content_arena.attacks.adaptive import DEFAULT_TRANSFORMATIONS, summarize
from content_arena.attacks.readability import edit_distance, jamo_form, reading_distance, recoverable
from content_arena.data import Example
from content_arena.defender import Defender
from content_arena.evaluation import AdversarialSet, evaluate

STEMS = ("씨발", "시발", "병신", "새끼", "꺼져", "닥쳐", "fuck", "idiot", "stupid", "bitch")
TOXIC = ["이 씨발 개새끼야 꺼져", "병신 같은 새끼 ㅋㅋ", "미친놈아 닥쳐 병신아", "시발 진짜 짜증나네",
         "you are a fucking idiot", "Shut up, you stupid bitch", "오늘 경기 보니까 감독 병신 맞네"]
CLEAN = ["오늘 경기 정말 재밌었어요", "좋은 하루 보내세요", "that was a great match", "thanks for the update"]


class StemDefender(Defender):
    """A lexicon filter: 1 - 0.9 * 0.5**hits for the toxic stems left in the normalised text
    (0.1 without any, 0.55 with one - flagged - and higher with each further stem)."""

    def __init__(self, stems: tuple[str, ...] = STEMS) -> None:
        super().__init__(name="stems", threshold=0.5)
        self.stems = stems
        self.ready = True
        self.calls: list[int] = []

    def load(self) -> StemDefender:
        return self

    def predict(self, texts):
        self.calls.append(len(texts))
        hits = np.array([sum(text.count(stem) for stem in self.stems) for text in texts], dtype=np.float32)
        return (1.0 - 0.9 * 0.5**hits).astype(np.float32)


def _check_constraints(result, attacker: AdaptiveAttacker) -> None:
    before, after = result.original.split(), result.adversarial.split()
    assert len(before) == len(after) or " " in "".join(after)  # edits stay inside words (spaces may be inserted)
    if len(before) != len(after):
        return
    cost = sum(edit_distance(jamo_form(a), jamo_form(b)) for a, b in zip(before, after, strict=True))
    size = sum(len(jamo_form(word)) for word in before)
    assert cost <= attacker.max_edit_ratio * size + 1e-9, (result, cost, size)
    for a, b in zip(before, after, strict=True):
        if a != b:
            assert recoverable(a, b, attacker.max_reading_distance) or reading_distance(a, b) <= 1.0, (a, b)


def test_attack_batch_evades_within_budget_and_constraints() -> None:
    defender = StemDefender()
    attacker = AdaptiveAttacker(defender, query_budget=40)
    results = attacker.attack_batch(TOXIC)
    assert [r.original for r in results] == TOXIC
    for result in results:
        assert result.detected and result.score_before >= 0.5
        assert result.success and result.score_after < 0.5, result
        assert result.adversarial != result.original
        assert 1 < result.queries <= 40
        assert result.edits and set(result.edits) <= {t.name for t in DEFAULT_TRANSFORMATIONS}
        assert defender.scores([result.adversarial])[0] == pytest.approx(result.score_after)
        _check_constraints(result, attacker)
    summary = summarize(results, seconds=1.0)
    assert summary.success_rate == 1.0 and summary.attacked == len(TOXIC) and summary.texts_per_second == len(TOXIC)
    assert summary.queries_per_success == pytest.approx(np.mean([r.queries for r in results]))


def test_texts_advance_in_lockstep_one_call_per_step() -> None:
    texts = [f"{t} {tail}" for tail in ("진짜", "정말", "아", "흠", "ㅋㅋ", "lol", "wow", "ok", "네", "요") for t in TOXIC]
    defender = StemDefender()
    attacker = AdaptiveAttacker(defender, max_words=4, passes=2)
    results = attacker.attack_batch(texts)
    # Originals, deletion ranking, then at most one call per search step - however many texts.
    assert len(defender.calls) <= 2 + attacker.max_words * attacker.passes
    assert max(defender.calls) > len(texts)  # candidates of many texts share one call
    one_by_one = StemDefender()
    single = AdaptiveAttacker(one_by_one)
    for text in texts[:7]:
        single.attack(text)
    assert len(one_by_one.calls) > len(defender.calls)
    # A text or two whose every edit the normaliser undoes can hold out within two passes.
    assert sum(r.success for r in results) >= 0.9 * len(results)


def test_deterministic_under_seed() -> None:
    first = AdaptiveAttacker(StemDefender()).attack_batch(TOXIC, seed=3)
    again = AdaptiveAttacker(StemDefender()).attack_batch(TOXIC, seed=3)
    assert first == again
    other = AdaptiveAttacker(StemDefender()).attack_batch(TOXIC, seed=4)
    assert [r.adversarial for r in other] != [r.adversarial for r in first]


def test_unflagged_texts_are_left_alone_and_budget_is_respected() -> None:
    results = AdaptiveAttacker(StemDefender()).attack_batch(CLEAN + ["", "ㅋㅋ"])
    for result in results:
        assert not result.detected and not result.success
        assert result.adversarial == result.original and result.queries == 1
    tight = AdaptiveAttacker(StemDefender(), query_budget=3).attack_batch(["씨발 병신 새끼 꺼져 닥쳐"])
    assert tight[0].queries <= 3 and not tight[0].success


def test_deletion_ranking_finds_the_word_that_matters() -> None:
    defender = StemDefender(stems=("병신",))
    attacker = AdaptiveAttacker(defender, beam_width=1)
    result = attacker.attack("오늘 날씨 좋은데 감독 병신아 왜 그래")
    assert result.success
    changed = [i for i, (a, b) in enumerate(zip(result.original.split(), result.adversarial.split(), strict=False)) if a != b]
    assert changed[:1] == [4]
    # One scoring, one deletion query per word, then a single step of candidates.
    assert result.queries <= 1 + 8 + attacker.candidates_per_word


def test_constraints_limit_the_search() -> None:
    strict = AdaptiveAttacker(StemDefender(), max_edit_ratio=0.01).attack_batch(TOXIC)
    assert not any(r.success for r in strict)
    assert all(r.adversarial == r.original for r in strict)
    with pytest.raises(ValueError):
        AdaptiveAttacker(StemDefender(), max_edit_ratio=0)
    with pytest.raises(ValueError):
        AdaptiveAttacker(StemDefender(), beam_width=0)


def test_strategy_wrapper_and_evaluation() -> None:
    unbound = get_strategy("adaptive")
    assert isinstance(unbound, AdaptiveStrategy) and unbound.description
    assert unbound.attack_many(TOXIC) == TOXIC and unbound.attack("씨발") == "씨발"
    defender = StemDefender()
    strategy = unbound.bind(defender, query_budget=30)
    examples = [Example(t, 1) for t in TOXIC] + [Example(t, 0) for t in CLEAN]
    variants = strategy.attack_many([e.text for e in examples], seed=1)
    assert len(variants) == len(examples)
    assert variants[len(TOXIC):] != CLEAN  # clean texts get a random rule edit (attacked-clean FPR)
    assert variants == AdaptiveAttacker(defender, query_budget=30).as_strategy_results([e.text for e in examples], 1)
    adversarial = AdversarialSet.build(examples, [strategy, get_strategy("ko_vowel")], seed=1)
    report = evaluate(defender, adversarial)
    assert report.attacks["adaptive"].evasion_rate == 1.0
    assert report.attacks["adaptive"].evasion_rate > report.attacks["ko_vowel"].evasion_rate
    assert report.attacks["adaptive"].attacked_clean_fpr == 0.0


class NgramDefender(Defender):
    """A learned defender that trains in a second: character 1-3-gram TF-IDF + logistic regression."""

    def __init__(self, examples: list[Example]) -> None:
        super().__init__(name="ngram", threshold=0.5)
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
        features = self.vectorizer.fit_transform(self.preprocess([e.text for e in examples]))
        self.model = LogisticRegression(max_iter=500, C=4.0).fit(features, [e.label for e in examples])
        self.ready = True

    def load(self) -> NgramDefender:
        return self

    def predict(self, texts):
        return self.model.predict_proba(self.vectorizer.transform(texts))[:, 1].astype(np.float32)


def test_adaptive_beats_single_rules_on_a_learned_defender() -> None:
    from content_arena.data import load_seed_corpus, split_examples

    train, test = split_examples(load_seed_corpus(), test_fraction=0.2, seed=0)
    defender = NgramDefender(train)
    examples = test[:240]
    rules = [get_strategy(name) for name in ("leet_phonetic", "ko_keyboard", "symbol", "ko_shape", "en_typo", "ko_level3")]
    report = evaluate(defender, AdversarialSet.build(examples, rules, seed=1))
    assert report.clean.f1 > 0.7
    best_rule = max(r.evasion_rate for r in report.attacks.values())
    toxic = [e.text for e in examples if e.label == 1]
    started = time.perf_counter()
    results = AdaptiveAttacker(defender).attack_batch(toxic)
    summary = summarize(results, time.perf_counter() - started)
    assert summary.attacked > 40
    assert summary.success_rate >= min(2 * best_rule, 0.9), (summary, best_rule)
    assert summary.queries_per_success < 40


def test_loop_helpers_bind_and_build_with_labels() -> None:
    from content_arena.attacks.adaptive import _fallback, bind_adaptive, build_adversarial_set

    defender = StemDefender()
    strategies = bind_adaptive([get_strategy("ko_vowel"), get_strategy("adaptive")], defender)
    assert strategies[1].attacker is not None and strategies[1].attacker.defender is defender
    false_positive = "병신 같은 날씨라는 말은 하지 맙시다"  # a clean text the lexicon filter flags
    examples = [Example(t, 1) for t in TOXIC] + [Example(false_positive, 0)]
    adversarial = build_adversarial_set(examples, strategies, seed=2, defender=defender)
    assert list(adversarial.variants) == ["ko_vowel", "adaptive"]
    assert adversarial.variants["ko_vowel"] == tuple(get_strategy("ko_vowel").attack_many([e.text for e in examples], 2))
    variants = adversarial.variants["adaptive"]
    assert all(defender.scores([v])[0] < 0.5 for v in variants[: len(TOXIC)])
    fallback = _fallback(strategies[1].attacker.transformations)
    assert variants[-1] == fallback.attack(false_positive, 2) != false_positive  # a rule edit, not a search
    # Evaluating a challenger, the adaptive variants are searched against it.
    other = StemDefender(stems=("병신",))
    again = build_adversarial_set(examples, strategies, seed=2, defender=other)
    assert again.variants["adaptive"] != variants and again.variants["ko_vowel"] == adversarial.variants["ko_vowel"]


# --------------------------------------------------------------------------- the moves without the scores


def test_random_edits_are_the_search_moves_without_queries() -> None:
    defender = StemDefender()
    attacker = AdaptiveAttacker(defender)
    names = {t.name for t in DEFAULT_TRANSFORMATIONS}
    changed = 0
    for index, text in enumerate(TOXIC + CLEAN):
        edited, edits = attacker.random_edits(text, seed=index, edits=3)
        assert (edited, edits) == attacker.random_edits(text, seed=index, edits=3)  # deterministic per (seed, text)
        assert len(edits) <= 3 and set(edits) <= names
        changed += edited != text
        before, after = text.split(), edited.split()
        if len(before) == len(after):  # the search's edit-distance budget holds
            cost = sum(edit_distance(jamo_form(a), jamo_form(b)) for a, b in zip(before, after, strict=True))
            assert cost <= attacker.max_edit_ratio * sum(len(jamo_form(w)) for w in before) + 1e-9
    assert changed >= len(TOXIC + CLEAN) - 1
    assert defender.calls == []  # no query
    # Restricted to the operators of a successful search.
    for text in TOXIC[:4]:
        edited, edits = attacker.random_edits(text, seed=1, edits=2, operators={"ko_vowel", "typo_swap"})
        assert set(edits) <= {"ko_vowel", "typo_swap"}
    assert attacker.random_edits("씨발 병신", edits=0) == ("씨발 병신", ())
    assert attacker.random_edits("씨발 병신", operators={"no_such_operator"}) == ("씨발 병신", ())


def test_augment_teaches_what_the_adaptive_search_exploits() -> None:
    from content_arena.config import AugmentConfig
    from content_arena.data_augmentor import augment
    from content_arena.sample_collector import Failure

    defender = StemDefender()
    strategies = [get_strategy("ko_vowel"), get_strategy("adaptive").bind(defender)]
    attacker = strategies[1].attacker
    found = attacker.attack(TOXIC[0], seed=9)
    assert found.success
    failures = [Failure(TOXIC[0], found.adversarial, "adaptive", "b1"),
                Failure(TOXIC[1], get_strategy("ko_vowel").attack(TOXIC[1], 1), "ko_vowel", "b1")]
    pool = [Example(t, 1) for t in TOXIC]
    clean = [Example(t, 0) for t in CLEAN * 20]
    cfg = AugmentConfig(variants_per_failure=2, clean_negatives_ratio=1.0)
    defender.calls.clear()
    result = augment(failures, clean, strategies, cfg, toxic_pool=pool, seed=0)
    calls = len(defender.calls)
    again = augment(failures, clean, strategies, cfg, toxic_pool=pool, seed=0)
    assert [(e.text, e.label) for e in result.examples] == [(e.text, e.label) for e in again.examples]

    toxic = [e.text for e in result.examples if e.label == 1]
    negatives = [e.text for e in result.examples if e.label == 0]
    assert result.n_toxic == result.n_clean == len(toxic) == len(negatives)
    # Searched positives: texts of the pool pushed below the threshold (the search's own finds).
    evading = [t for t in toxic if defender.scores([t])[0] < 0.5]
    assert len(evading) >= len(TOXIC)
    # Searches run in lockstep batches: a handful of calls per search seed, not one search per text.
    searches = cfg.variants_per_failure + cfg.adaptive_pool_searches
    assert calls <= searches * (2 + attacker.max_words * attacker.passes)
    # Echoed moves on clean texts are negatives: edited, yet labelled clean.
    assert any(t not in CLEAN for t in negatives)


def test_augment_without_a_bound_adaptive_strategy_uses_the_rules() -> None:
    from content_arena.config import AugmentConfig
    from content_arena.data_augmentor import augment
    from content_arena.sample_collector import Failure

    strategies = [get_strategy("ko_vowel"), get_strategy("adaptive")]  # unbound: nothing to search
    failures = [Failure(TOXIC[0], "씌발 개새끼야 꺼져", "adaptive", "b1"),
                Failure(TOXIC[1], get_strategy("ko_vowel").attack(TOXIC[1], 1), "ko_vowel", "b1")]
    result = augment(failures, [Example(t, 0) for t in CLEAN * 10], strategies, AugmentConfig(clean_negatives_ratio=1.0),
                     toxic_pool=[Example(t, 1) for t in TOXIC], seed=0)
    toxic = {e.text for e in result.examples if e.label == 1}
    assert result.n_toxic == result.n_clean > 0
    assert TOXIC[0] not in toxic  # no "adaptive+rule" composite left the text unchanged


def test_augment_adaptive_settings_come_from_the_config() -> None:
    """``augment.adaptive_pool_searches`` sets how many pool searches run (each a batch of defender
    calls); ``augment.adaptive_share: 1.0`` leaves no rule variant among the toxic positives."""
    from content_arena.config import AugmentConfig
    from content_arena.data_augmentor import augment
    from content_arena.sample_collector import Failure

    defender = StemDefender()
    strategies = [get_strategy("ko_vowel"), get_strategy("adaptive").bind(defender)]
    rule_variant = get_strategy("ko_vowel").attack(TOXIC[1], 1)
    failures = [Failure(TOXIC[1], rule_variant, "ko_vowel", "b1")]
    pool = [Example(t, 1) for t in TOXIC]
    clean = [Example(t, 0) for t in CLEAN * 20]

    calls = {}
    for searches in (0, 3):
        defender.calls.clear()
        augment(failures, clean, strategies, AugmentConfig(variants_per_failure=1, adaptive_pool_searches=searches),
                toxic_pool=pool, seed=0)
        calls[searches] = len(defender.calls)
    assert calls[0] == 0 and calls[3] > 0, calls

    only_search = augment(failures, clean, strategies, AugmentConfig(variants_per_failure=2, adaptive_share=1.0),
                          toxic_pool=pool, seed=0)
    toxic = [e.text for e in only_search.examples if e.label == 1]
    assert toxic and rule_variant not in toxic
