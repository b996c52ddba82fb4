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
    sections = ["defender", "attacks", "battle", "quality"]
    return harness.run(sections, sizes=harness.TINY, threads=2, workdir=tmp_path_factory.mktemp("bench"))


def test_sections_give_figures_with_baselines(payload: dict[str, Any]) -> None:
    check_payload(payload, ["defender", "attacks", "battle", "quality"])
    rows = payload["rows"]
    defender = [r for r in rows if r["section"] == "defender"]
    assert [r["figure"] for r in defender] == ["scores(), batch 1", "scores(), batch 16", "scores(), batch 64",
                                               "scores(), batch 64, word caches emptied",
                                               "scores(), batch 64, encoder kept",
                                               "backbone scores(), batch 64, int8 dynamic",
                                               "backbone scores(), batch 64, float32"]
    assert all(r["baseline"] == "transformers pipeline" for r in defender)
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


def test_quality_compares_the_champion_with_both_baselines(payload: dict[str, Any]) -> None:
    if payload["sections"]["quality"]["status"] == "skipped":
        assert "BEEP" in payload["sections"]["quality"]["reason"]
        pytest.skip(payload["sections"]["quality"]["reason"])
    rows = {r["figure"]: r for r in payload["rows"] if r["section"] == "quality"}
    for figure in ("clean F1", "clean AUROC", "evasion rate, all strategies", "attacked-clean FPR, all strategies",
                   "evasion: nfd", "attacked-clean FPR: spacing", "training time"):
        assert figure in rows
    assert rows["clean F1"]["baseline"] == "tfidf-lr"
    assert set(rows["clean F1"]["others"]) >= {"tfidf-lr+norm", "korcen", "champion-hardened"}
    details = payload["details"]["quality"]
    assert details["split"] == {"seed": 0, "test_fraction": 0.2} and details["n_test"] == harness.TINY.quality_test
    assert set(details["reports"]) == {"champion", "champion-hardened", "tfidf-lr", "tfidf-lr+norm", "korcen"}
    assert details["models"]["champion-hardened"]["n_fit"] > details["models"]["champion"]["n_fit"]


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
def test_beep_split_is_fixed() -> None:
    from bench.quality import beep_split

    train, test = beep_split(harness.FULL)
    assert [e.text for e in test] == [e.text for e in beep_split(harness.FULL)[1]]
    assert abs(len(test) - 0.2 * (len(train) + len(test))) < 2
    quick_train, quick_test = beep_split(harness.QUICK)
    assert len(quick_test) == harness.QUICK.quality_test and {e.text for e in quick_test} <= {e.text for e in test}


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
