"""The benchmark harness's pieces on tiny sizes: the JSON shape, and a baseline beside every figure.

No timing is asserted: the machine is shared and the figures mean nothing at these sizes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `bench` is a top-level folder of the checkout, not an installed package

from bench import harness  # noqa: E402
from bench.baselines import KorcenDefender, TfidfLRDefender  # noqa: E402
from bench.common import BEEP_TRAIN  # noqa: E402

ROW_KEYS = {"section", "figure", "unit", "value", "baseline", "baseline_value", "ratio", "others", "note", "status"}


def check_payload(payload: dict[str, Any], sections: list[str]) -> None:
    assert set(payload) == {"meta", "sections", "rows", "details"}
    assert payload["meta"]["threads"] >= 1 and payload["meta"]["sizes"]["texts"] == harness.TINY.texts
    assert list(payload["sections"]) == sections
    for name, state in payload["sections"].items():
        assert state["status"] in ("ok", "skipped"), (name, state)
        assert state["seconds"] >= 0
        if state["status"] == "skipped":
            assert state["reason"], name
    assert {r["section"] for r in payload["rows"]} == set(sections)
    for r in payload["rows"]:
        assert set(r) == ROW_KEYS, r
        if r["value"] is None:
            assert r["status"] in ("skipped", "error") and r["note"], r  # a missing figure says why
            continue
        assert r["status"] == "ok"
        assert r["baseline"] and r["baseline_value"] is not None, f"{r['section']}/{r['figure']} has no baseline"
        assert np.isfinite(r["value"]) and np.isfinite(r["baseline_value"])
        if r["baseline_value"]:
            assert r["ratio"] == pytest.approx(r["value"] / r["baseline_value"])
    json.dumps(payload, default=str)  # serialisable as written


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every section but the loop and the API (they start interpreters and servers; tested on their own below)."""
    sections = ["defender", "attacks", "battle", "quality", "quality_holdout"]
    return harness.run(sections, sizes=harness.TINY, threads=2, workdir=tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def seed_comparison(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """The quality comparison on one split of the shipped Korean seed corpus (no BEEP! needed): a tiny champion
    and the baseline, judged on two rule strategies."""
    from bench.quality import compare, make_split

    from content_arena.data import load_seed_corpus, split_examples

    train, test = split_examples(load_seed_corpus("ko"), test_fraction=0.2, seed=0)
    split = make_split(train, test, seed=0)
    ctx = harness.Context(harness.TINY, threads=2, quick=True, workdir=tmp_path_factory.mktemp("quality"))
    return split, compare(ctx, [split], strategies=["spacing", "ko_roman"], with_korcen=False)


def test_sections_give_figures_with_baselines(payload: dict[str, Any]) -> None:
    check_payload(payload, ["defender", "attacks", "battle", "quality", "quality_holdout"])
    rows = payload["rows"]
    defender = [r for r in rows if r["section"] == "defender"]
    assert [r["figure"] for r in defender] == ["scores(), batch 1", "scores(), batch 16", "scores(), batch 64",
                                               "scores(), batch 64, word caches emptied",
                                               "classify path with live signals, batch 1",
                                               "classify path with live signals, batch 64",
                                               "scores(), batch 64, encoder kept",
                                               "backbone scores(), batch 64, int8 dynamic",
                                               "backbone scores(), batch 64, float32"]
    signals = [r for r in defender if r["figure"].startswith("classify path with live signals")]
    assert all(r["baseline"] == "signals off (defender.scores)" for r in signals)
    assert all(r["baseline"] == "transformers pipeline" for r in defender if r not in signals)
    assert payload["details"]["backbone_int8"]["texts"] == harness.TINY.texts
    # The timed champion runs without its encoder; the last row times one that keeps it.
    assert payload["details"]["throughput_model"]["use_encoder"] is False
    assert payload["details"]["throughput_model_encoder"]["use_encoder"] is True
    # Same weights: the pipeline and the defender agree on normalised text.
    assert payload["details"]["defender"]["max_abs_prob_difference_vs_pipeline"] < 1e-4
    attacks = {r["figure"] for r in rows if r["section"] == "attacks"}
    assert attacks == {f"generate: {s}" for s in
                       ("jamo_split", "nfd", "homoglyph", "invisible", "spacing", "leet_phonetic")}
    battle = {r["figure"]: r for r in rows if r["section"] == "battle"}
    assert battle["battle on SQLite"]["value"] > 0
    assert "battle on PostgreSQL" in battle  # measured, or skipped with the reason


def test_quality_compares_the_champion_with_the_baseline_at_the_policy_point(payload: dict[str, Any]) -> None:
    if payload["sections"]["quality"]["status"] == "skipped":
        assert "BEEP" in payload["sections"]["quality"]["reason"]
        pytest.skip(payload["sections"]["quality"]["reason"])
    rows = {r["figure"]: r for r in payload["rows"] if r["section"] == "quality"}
    for figure in ("recall at the policy point", "held-out clean FPR", "|held-out FPR − target|", "AUROC", "PR-AUC",
                   "expected calibration error", "worst strategy evasion", "worst attacked-clean FPR rise",
                   "evasion: ko_roman", "attacked-clean FPR rise: ko_level4", "training time",
                   "scores(), batch 64, word caches emptied"):
        assert figure in rows, figure
    assert rows["recall at the policy point"]["baseline"] == "tfidf-lr+norm"
    assert set(rows["recall at the policy point"]["others"]) >= {"sd", "baseline sd"}
    details = payload["details"]["quality"]
    assert details["split_seeds"] == [0] and details["n_test"] == harness.TINY.quality_test
    assert details["policy"] == {"metric": "fpr", "value": 0.10}
    # Every registered rule strategy is judged, not only the six defaults.
    assert len(details["strategies"]) == details["summaries"]["champion"]["n_strategies"] > 6
    assert set(details["summaries"]) >= {"champion", "tfidf-lr+norm"}
    # The default recipe trains on no rule family: every family is unseen, its evasion printed beside the baseline's.
    holdout = {r["figure"]: r for r in payload["rows"] if r["section"] == "quality_holdout"}
    roman = holdout["unseen family evasion: ko_roman"]
    assert roman["baseline"] == "tfidf-lr+norm"
    assert roman["value"] == rows["evasion: ko_roman"]["value"]
    assert not any("_level" in figure for figure in holdout)


def test_each_model_is_judged_at_the_threshold_its_own_validation_scores_give_by_the_policy(
        seed_comparison: tuple[Any, Any]) -> None:
    from bench.quality import BASELINE, CHAMPION, markdown, quality_rows

    from content_arena.metrics import binary_metrics
    from content_arena.operating_point import OperatingPoint, choose_threshold

    split, judged = seed_comparison
    assert judged.policy == {"metric": "fpr", "value": 0.10}
    val_labels = [e.label for e in split.val]
    test_labels = np.array([e.label for e in split.test])
    for name in (CHAMPION, BASELINE):
        model = judged.first_models[name]
        info = judged.info[name][0]
        assert info["validation"]["threshold_source"] == "policy", info["validation"]
        # The threshold is the policy's on this model's own calibrated scores of the validation texts.
        raw = model.predict(model.preprocess([e.text for e in split.val]))
        expected = choose_threshold(val_labels, model.calibrator.apply(raw), OperatingPoint(metric="fpr", value=0.10))
        assert model.threshold == pytest.approx(expected.threshold) == pytest.approx(info["threshold"])
        # Every figure is read at that threshold on the held-out texts.
        at_point = binary_metrics(test_labels, model.scores([e.text for e in split.test]), model.threshold)
        figures = judged.per_split[name][0]
        assert figures["threshold"] == pytest.approx(model.threshold)
        for key in ("recall", "precision", "fpr", "auroc", "pr_auc", "ece"):
            assert figures[key] == pytest.approx(getattr(at_point, key)), (name, key)
        assert figures["fpr_gap"] == pytest.approx(abs(at_point.fpr - 0.10))
        assert set(figures["per_strategy"]) == {"spacing", "ko_roman"}
    # A different threshold would give different figures: the check above can fail.
    baseline = judged.first_models[BASELINE]
    shifted = binary_metrics(test_labels, baseline.scores([e.text for e in split.test]), baseline.threshold + 0.2)
    assert shifted.recall != judged.per_split[BASELINE][0]["recall"]
    rows = {r["figure"]: r for r in quality_rows(judged.summaries, judged.policy)}
    recall = rows["recall at the policy point"]
    assert recall["value"] == pytest.approx(judged.per_split[CHAMPION][0]["recall"])
    assert recall["baseline"] == BASELINE and recall["baseline_value"] == pytest.approx(
        judged.per_split[BASELINE][0]["recall"])
    assert "policy fpr 0.1" in rows["threshold (chosen on validation)"]["note"]
    table = markdown({"summaries": judged.summaries, "policy": judged.policy, "split_seeds": [split.seed]})
    assert table[0].startswith("| BEEP!, 1 splits, policy fpr 0.1 (mean ± sd) | champion | tfidf-lr+norm |")
    recall_line = next(line for line in table if line.startswith("| recall at the policy point |"))
    assert f"{judged.per_split[CHAMPION][0]['recall']:.3f} ± 0.000" in recall_line


def test_strategy_limits_are_counted_on_the_means_over_splits() -> None:
    from bench.quality import aggregate

    def split(evasion: dict[str, float], rise: dict[str, float], recall: float) -> dict[str, Any]:
        return {"recall": recall, "auroc": None,
                "per_strategy": {n: {"evasion": evasion[n], "rise_points": rise[n]} for n in evasion}}

    summary = aggregate([split({"a": 0.12, "b": 0.02}, {"a": 1.0, "b": 5.0}, 0.7),
                         split({"a": 0.06, "b": 0.04}, {"a": 2.0, "b": 2.0}, 0.8)])
    assert summary["recall"]["mean"] == pytest.approx(0.75) and summary["recall"]["sd"] == pytest.approx(0.0707, abs=1e-4)
    assert summary["auroc"]["mean"] is None
    # a: mean evasion 0.09 (one split over 10%), b: mean rise 3.5 points.
    assert summary["worst_evasion"] == {"strategy": "a", "mean": pytest.approx(0.09)}
    assert summary["n_evasion_over"] == 0 and summary["worst_evasion_any_split"] == pytest.approx(0.12)
    assert summary["worst_rise_points"] == {"strategy": "b", "mean": pytest.approx(3.5)}
    assert summary["n_rise_over"] == 1


def test_table_prints_every_row_with_its_baseline(payload: dict[str, Any], capsys: pytest.CaptureFixture) -> None:
    from bench.common import print_table

    table = harness.table_rows(payload)
    assert len(table) == len(payload["rows"])
    print_table("bench", table)
    out = capsys.readouterr().out
    assert "transformers pipeline" in out and "in-memory (not persisted)" in out


def test_loop_child_reports_wall_time_and_peak_memory(tmp_path: Path) -> None:
    ctx = harness.Context(harness.TINY, threads=2, quick=True, workdir=tmp_path)
    from bench.throughput import bench_loop

    rows = bench_loop(ctx)
    assert [r["figure"] for r in rows] == ["run_pipeline wall time", "run_pipeline peak RSS"]
    for r in rows:
        assert r["value"] > 0 and r["baseline"] == "train_champion alone" and r["baseline_value"] > 0
    assert rows[1]["value"] > 100  # MiB: torch alone is more than that
    assert ctx.details["loop"]["loop"]["summary"]["gate"]["decision"] in ("PASS", "FAIL")


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown section"):
        harness.run(["nope"], sizes=harness.TINY)
    from bench.__main__ import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--only", "defender,nope"])
    assert parse_args(["--quick", "--only", "attacks"]).sections == ["attacks"]


def test_api_section_reads_bench_api_rows_beside_the_unbatched_server(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import throughput

    if (REPO / "bench" / "bench_api.py").is_file():
        assert throughput.find_api_entry().__name__ == "run_benchmark"
    calls: list[dict[str, Any]] = []

    def fake_run_benchmark(*, seconds: float = 8.0, max_requests: int = 5000, home: Any = None,
                           threads: int = 1) -> dict[str, Any]:
        calls.append({"seconds": seconds, "max_requests": max_requests, "home": home, "threads": threads})
        figures = {"throughput_rps": 100.0, "p50_ms": 5.0, "p99_ms": 20.0, "errors": 0, "mean_batch": 1.0}
        return {"rows": [
            {"server": "micro-batched", "mode": "max rate", **figures, "throughput_rps": 300.0, "mean_batch": 7.5},
            {"server": "micro-batched", "mode": "200 req/s", **figures, "p99_ms": 9.0},
            {"server": "unbatched (baseline)", "mode": "max rate", **figures},
            {"server": "unbatched (baseline)", "mode": "200 req/s", **figures},
        ], "settings": {"seconds": seconds, "server_torch_threads": threads}}

    monkeypatch.setattr(throughput, "find_api_entry", lambda: fake_run_benchmark)
    payload = harness.run(["api"], sizes=harness.TINY, workdir=tmp_path)
    check_payload(payload, ["api"])
    assert calls == [{"seconds": harness.TINY.api_seconds, "max_requests": harness.TINY.api_max_requests,
                      "home": tmp_path / "api-home", "threads": 1}]
    rows = {r["figure"]: r for r in payload["rows"]}
    top = rows["classify API micro-batched, max rate"]
    assert (top["value"], top["baseline"], top["baseline_value"], top["ratio"]) == (
        300.0, "unbatched (baseline)", 100.0, 3.0)
    assert rows["classify API micro-batched, 200 req/s p99"]["value"] == 9.0
    assert len(rows) == 6  # 2 modes × (throughput, p50, p99)

    def missing() -> Any:
        raise harness.Skip("no bench_api")

    monkeypatch.setattr(throughput, "find_api_entry", missing)
    skipped = harness.run(["api"], sizes=harness.TINY, workdir=tmp_path)
    assert skipped["sections"]["api"]["status"] == "skipped" and skipped["sections"]["api"]["reason"] == "no bench_api"
    check_payload(skipped, ["api"])


def test_baselines_are_defenders_that_evaluate_works_on() -> None:
    from content_arena.attacks import resolve_strategies
    from content_arena.data import load_seed_corpus, split_examples
    from content_arena.evaluation import AdversarialSet, evaluate

    train, test = split_examples(load_seed_corpus("ko"), test_fraction=0.2, seed=0)
    adversarial = AdversarialSet.build(test[:80], resolve_strategies("nfd,spacing"), seed=1)
    raw = evaluate(TfidfLRDefender(train).load(), adversarial)
    normalised = evaluate(TfidfLRDefender(train, normalize=True).load(), adversarial)
    assert 0.5 < raw.clean.f1 <= 1.0 and set(raw.attacks) == {"nfd", "spacing"}
    # NFD changes every code point the raw model saw; the normaliser undoes it.
    assert normalised.attacks["nfd"].evasion_rate <= raw.attacks["nfd"].evasion_rate
    try:
        korcen = KorcenDefender().load()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    scores = korcen.scores(["시발 뭐야", "안녕하세요"])
    assert scores.tolist() == [1.0, 0.0]


@pytest.mark.skipif(not BEEP_TRAIN.is_file(), reason=f"BEEP! data not found at {BEEP_TRAIN}")
def test_beep_splits_are_fixed_per_seed_and_share_texts_across_models() -> None:
    from bench.quality import beep_split, beep_splits

    train, test = beep_split(harness.FULL)
    assert [e.text for e in test] == [e.text for e in beep_split(harness.FULL)[1]]
    assert abs(len(test) - 0.2 * (len(train) + len(test))) < 2
    assert {e.text for e in beep_split(harness.FULL, seed=1)[1]} != {e.text for e in test}
    quick_train, quick_test = beep_split(harness.QUICK)
    assert len(quick_test) == harness.QUICK.quality_test and {e.text for e in quick_test} <= {e.text for e in test}
    splits = beep_splits(harness.QUICK)
    assert [s.seed for s in splits] == [0, 1][: harness.QUICK.quality_splits]
    first = splits[0]
    assert sorted(e.text for e in first.train) == sorted(e.text for e in quick_train)
    assert not {e.text for e in first.val} & {e.text for e in first.fit}


def test_attack_bench_split_mean_counts_promotions_and_averages_each_figure() -> None:
    from bench.bench_attacks import mean_row

    rows = [
        {"split_seed": 0, "promoted": True, "success(a)": 0.6, "success(b)": 0.3, "f1(a)": 0.95, "f1(b)": 0.94,
         "fall": 0.5},
        {"split_seed": 1, "promoted": False, "success(a)": 0.8, "success(b)": 0.8, "f1(a)": 0.97, "f1(b)": 0.97,
         "fall": 0.0},
    ]
    mean = mean_row(rows)
    assert mean["split_seed"] == "mean" and mean["promoted"] == "1/2"
    assert mean["success(a)"] == pytest.approx(0.7) and mean["success(b)"] == pytest.approx(0.55)
    assert mean["f1(b)"] == pytest.approx(0.955) and mean["fall"] == pytest.approx(0.25)
