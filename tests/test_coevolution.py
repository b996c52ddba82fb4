"""Cycles of the loop, the evolving attacker, hard examples and the no-forgetting check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from content_arena.attacks import get_strategy
from content_arena.attacks.evolution import AdaptiveBudget, Population, escalations
from content_arena.coevolution import forgetting_check, hard_examples, run_cycles, state_dir
from content_arena.data import Example
from content_arena.evaluation import AdversarialSet

# -- the evolving attacker (no training) -----------------------------------------------------------


def test_a_strategy_that_stops_evading_escalates_into_higher_levels_and_composites_with_lineage(tmp_path):
    population = Population.start(["ko_pronounce", "leet_phonetic", "ko_level2", "spacing"])
    evasion = {"ko_pronounce": 0.0, "leet_phonetic": 0.30, "ko_level2": 0.01, "spacing": 0.20}
    population.record(1, evasion)
    born, retired = population.evolve(1, evasion, 0.05, searched=[("ko_consonant", "filler", "ko_consonant")])

    names = {b.name: b for b in born}
    assert "ko_level3" in names and names["ko_level3"].parents == ["ko_level2"]
    assert names["ko_level3"].origin == "level" and names["ko_level3"].born == 2
    composites = [b for b in born if b.origin == "composite"]
    assert composites and all("+" in b.name for b in composites)
    assert all(set(b.parents) & {"ko_pronounce", "ko_level2"} for b in composites)
    assert all(p in ("leet_phonetic", "spacing", "ko_pronounce", "ko_level2") for b in composites for p in b.parents)
    assert names["ko_consonant+filler"].origin == "searched"
    assert names["ko_consonant+filler"].parents == ["ko_consonant", "filler"]
    for name in names:
        assert get_strategy(name).name == name  # every birth is a buildable strategy
    assert set(retired) == {"ko_pronounce", "ko_level2"}
    assert "ko_pronounce" not in population.active() and "ko_level3" in population.active()
    assert population.lineages["leet_phonetic"].success == {"1": 0.3}

    path = population.save(tmp_path / "lineage.json")
    again = Population.load(path, ["ko_pronounce"])
    assert again.active() == population.active() and again.cycles_done == 1
    assert again.lineages["ko_level3"].parents == ["ko_level2"]
    assert again.lineages["ko_pronounce"].retired == 1


def test_held_out_families_are_never_bred():
    evasion = {"ko_pronounce": 0.0, "symbol": 0.5, "ko_roman": 0.4, "filler": 0.2}
    candidates = escalations("ko_pronounce", evasion, 0.05, excluded=["symbol", "ko_roman", "ko_level2"])
    names = [c[0] for c in candidates]
    assert names == ["ko_pronounce+filler"]
    population = Population.start(["ko_pronounce", "filler"], excluded=["symbol", "ko_shape"])
    born, _ = population.evolve(1, {"ko_pronounce": 0.0, "filler": 0.3}, 0.05,
                                searched=[("symbol", "filler"), ("ko_shape", "ko_vowel")])
    assert all(not {"symbol", "ko_shape"} & set(b.name.split("+")) for b in born)


def test_an_adaptive_search_that_stops_succeeding_gets_a_larger_budget():
    population = Population.start(["adaptive", "spacing"])
    population.evolve(1, {"adaptive": 0.01, "spacing": 0.3}, 0.05)
    assert population.adaptive == AdaptiveBudget(query_budget=100, passes=3, max_words=5)
    assert "adaptive" in population.active()  # the search adapts; it is never retired
    for _ in range(10):
        population.adaptive.escalate()
    assert population.adaptive == AdaptiveBudget(query_budget=400, passes=4, max_words=8)


def test_a_population_never_runs_empty_when_nothing_can_be_bred():
    population = Population.start(["nfd"])
    born, retired = population.evolve(1, {"nfd": 0.0}, 0.05)
    assert born == [] and retired == [] and population.active() == ["nfd"]


# -- training that generalises (no training) -----------------------------------------------------------


class KeywordDefender:
    """Scores 0.9 for texts containing one of ``words``, 0.1 otherwise."""

    threshold = 0.5

    def __init__(self, *words: str) -> None:
        self.words = words

    def scores(self, texts):
        return np.array([0.9 if any(w in t for w in self.words) else 0.1 for t in texts], dtype=np.float32)


def test_hard_examples_are_the_missed_toxic_and_flagged_clean_ones_copied():
    examples = [Example("씨발 놈", 1), Example("ㅆㅂ 놈", 1), Example("씨발 맛있다", 0), Example("날씨 좋다", 0)]
    extra = hard_examples(KeywordDefender("씨발"), examples, copies=2)
    assert [(e.text, e.label) for e in extra] == [("ㅆㅂ 놈", 1)] * 2 + [("씨발 맛있다", 0)] * 2
    assert all(e.source == "hard" for e in extra)
    assert hard_examples(KeywordDefender("씨발"), examples, copies=0) == []


def test_a_challenger_that_forgets_an_earlier_cycles_fix_is_flagged():
    examples = (Example("씨발 놈", 1), Example("개새끼", 1), Example("날씨 좋다", 0), Example("밥 먹자", 0))
    earlier = AdversarialSet(examples, {"ko_roman": ("ssibal 놈", "gaesaekki", "날씨 좋다", "밥 먹자")}, seed=1)
    champion = KeywordDefender("씨발", "개새끼", "ssibal", "gaesaekki")
    forgetful = KeywordDefender("씨발", "개새끼")
    [check] = forgetting_check(champion, forgetful, {1: earlier})
    assert check["cycle"] == 1 and check["forgets"] is True
    assert check["challenger_error"] > check["champion_error"]
    [same] = forgetting_check(champion, champion, {1: earlier})
    assert same["forgets"] is False


def test_failures_of_bred_composites_are_augmented_without_building_an_overlong_composite():
    from content_arena.attacks.registry import MAX_COMPOSITE_PARTS
    from content_arena.config import AugmentConfig
    from content_arena.data_augmentor import augment
    from content_arena.sample_collector import Failure

    names = ["typo_delete+typo_keyboard+typo_insert", "ko_pronounce+en_hangul+typo_delete", "spacing"]
    strategies = [get_strategy(n) for n in names]
    failures = [Failure(f"씨발 놈아 {k}", f"ㅆ발 놈아 {k}", names[k % 2], "b1") for k in range(8)]
    clean = [Example(f"날씨 좋다 {k}", 0) for k in range(20)]
    made = augment(failures, clean, strategies, AugmentConfig(variants_per_failure=4), seed=3)
    assert made.n_toxic > len(failures) and made.n_clean > 0
    assert all(name.count("+") < MAX_COMPOSITE_PARTS for name in names)


def test_mined_examples_are_the_attacked_copies_nearest_the_wrong_side_balanced_by_label():
    from content_arena.coevolution import mined_examples

    pool = [Example("씨발 놈아", 1), Example("개새끼 꺼져", 1), Example("병신 같은", 1),
            Example("날씨 좋다", 0), Example("밥 먹자", 0), Example("영화 보자", 0), Example("씨발 맛있다", 0)]
    model = KeywordDefender("씨발", "개새끼", "병신")
    mined = mined_examples(model, pool, [get_strategy("jamo_split"), get_strategy("spacing")], 2, seed=5)
    toxic = [e for e in mined if e.label == 1]
    clean = [e for e in mined if e.label == 0]
    assert len(toxic) == len(clean) and 1 <= len(toxic) <= 2
    assert all(e.source == "mined" for e in mined)
    assert all(e.text not in {p.text for p in pool} for e in mined)  # attacked copies, not the originals
    assert mined_examples(model, pool, [get_strategy("spacing")], 0, seed=5) == []


# -- promotion checks (no training) ---------------------------------------------------------------


def _evaluation(recall: float, evaded: int, version: int):
    from content_arena.evaluation import EvaluationReport, StrategyResult
    from content_arena.metrics import BinaryMetrics
    from content_arena.steps import Evaluation

    clean = BinaryMetrics(n=200, f1=0.9, precision=0.9, recall=recall, auroc=0.95, fpr=0.1, accuracy=0.9)
    attacks = {"nfd": StrategyResult(evasion_rate=evaded / 100, attacked_clean_fpr=0.1, n_detected=100,
                                     n_evaded=evaded, n_clean=100)}
    return Evaluation(EvaluationReport(clean=clean, attacks=attacks, threshold=0.5), {}, version)


class RecordingWorkspace:
    """Just what compare_models touches: the gate's limits and an MLflow run that records its tags."""

    def __init__(self):
        from contextlib import contextmanager
        from types import SimpleNamespace

        from content_arena.config import ArenaConfig

        self.config = ArenaConfig()
        self.tags = {}

        @contextmanager
        def run(name, tags):
            yield SimpleNamespace(log_metrics=lambda metrics: None, set_tags=self.tags.update)

        self.registry = SimpleNamespace(run=run)


def test_a_check_vetoes_a_promotion_the_rules_would_make_and_its_reason_is_kept():
    from content_arena.steps import compare_models

    ws = RecordingWorkspace()
    champion, challenger = _evaluation(0.9, 30, 1), _evaluation(0.9, 10, 2)
    calls = []

    def veto(a, b):
        calls.append((a.version, b.version))
        return ["forgets cycle 1"]

    comparison = compare_models(ws, champion, challenger, [lambda a, b: [], veto])
    assert comparison.promote is False and comparison.reasons[-1] == "forgets cycle 1"
    assert calls == [(1, 2)] and ws.tags["promote"] is False  # MLflow records the final decision
    assert compare_models(ws, champion, challenger, [lambda a, b: []]).promote is True


def test_checks_do_not_run_when_the_rules_already_reject():
    from content_arena.steps import compare_models

    def must_not_run(a, b):
        raise AssertionError("a check ran for a rejected challenger")

    comparison = compare_models(RecordingWorkspace(), _evaluation(0.9, 10, 1), _evaluation(0.9, 30, 2), [must_not_run])
    assert comparison.promote is False and comparison.reasons[0].startswith("not more robust")


def test_the_recall_anchor_is_the_first_champion_judged_and_stays_put(tmp_path):
    from content_arena.coevolution import RecallAnchor

    anchor = RecallAnchor(tmp_path)
    assert anchor(_evaluation(0.90, 0, 1), _evaluation(0.895, 0, 2)) == []
    # A later champion with lower recall does not move the anchor: drift by small steps is caught.
    [reason] = anchor(_evaluation(0.895, 0, 2), _evaluation(0.885, 0, 3))
    assert "drifts below the first champion's 0.900" in reason
    assert json.loads((tmp_path / "reference.json").read_text())["version"] == 1


# -- cycles (real training, tiny config) ----------------------------------------------------------


@pytest.mark.slow
def test_pipeline_run_with_cycles_keeps_the_json_fields_and_adds_one_summary_per_cycle(tiny_config, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from content_arena.cli import app

    cfg = tiny_config(attack={"strategies": ["nfd", "leet_phonetic", "ko_pronounce"], "rounds": 40},
                      quality_gate={"min_f1_score": 0.999})
    (tmp_path / "arena.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    result = CliRunner().invoke(app, ["pipeline", "run", "--config", str(tmp_path / "arena.yaml"), "--cycles", "2",
                                      "--json"])
    assert result.exit_code == 0, result.output[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"gate", "champion_before", "challenger", "promoted", "champion_version", "battle", "comparison",
            "bootstrapped", "seconds"} <= set(out)
    first, second = out["cycles"]
    assert (first["cycle"], second["cycle"]) == (1, 2) and out["stopped_early"] is False
    # Each cycle attacks the champion the previous one left; the top-level fields are the last cycle's.
    assert out["champion_before"]["version"] == first["champion_version"]
    assert out["champion_version"] == second["champion_version"]
    assert all(c["gate"] == "FAIL" and c["challenger_version"] is not None for c in (first, second))
    assert set(first["evasion"]) == {"nfd", "leet_phonetic", "ko_pronounce"}
    assert {"promoted", "born", "retired", "forgetting", "evasion_rate", "recall", "fpr"} <= set(first)
    if second["forgetting"]:  # the challenger was checked on cycle 1's adversarial set too
        assert second["forgetting"][0]["cycle"] == 1

    state = state_dir(cfg)
    lineage = json.loads((state / "lineage.json").read_text())
    assert lineage["cycles_done"] == 2
    recorded = {s["name"]: s for s in lineage["strategies"]}
    assert "1" in recorded["nfd"]["success"]
    assert set(second["evasion"]) == {n for n, s in recorded.items() if "2" in s["success"]}
    assert (state / "replay.jsonl").is_file() and (state / "adversarial" / "cycle-1.json").is_file()
    # Every challenger is anchored to the first champion's clean recall (no drift by small steps).
    reference = json.loads((state / "reference.json").read_text())
    assert reference["version"] == 1 and reference["recall"] == pytest.approx(first["recall"], abs=1e-4)
    for cycle in (first, second):
        if any("drifts below" in reason for reason in cycle["decision"]):
            assert not cycle["promoted"]
    # A later run continues the numbering and the population.
    assert [c.cycle for c in run_cycles(cfg, cycles=1, until_pass=True).cycles] == [3]


@pytest.mark.slow
def test_until_pass_stops_once_the_gate_passes_twice_in_a_row(tiny_config):
    cfg = tiny_config(attack={"strategies": ["nfd"], "rounds": 20},
                      quality_gate={"max_evasion_rate": 1.0, "max_strategy_evasion_rate": 1.0, "min_f1_score": 0.0,
                                    "max_attacked_clean_fpr_increase": 1.0})
    result = run_cycles(cfg, cycles=5, until_pass=True)
    assert [c.gate for c in result.cycles] == ["PASS", "PASS"]
    assert result.stopped_early and all(c.challenger_version is None for c in result.cycles)


def test_cycles_out_of_range_are_refused_before_anything_runs(tiny_config):
    cfg = tiny_config()
    for bad in (0, 101, True, 2.0):
        with pytest.raises(ValueError, match="cycles must be an integer"):
            run_cycles(cfg, cycles=bad)
    assert not (cfg.home_path / "arena.db").exists()


def test_the_report_draws_evasion_per_strategy_per_cycle(tiny_config, tmp_path):
    from content_arena.report.cycles import cycle_history, evasion_by_cycle

    cfg = tiny_config()
    assert evasion_by_cycle(cfg, tmp_path / "none.png") is None
    population = Population.start(["nfd", "spacing"])
    population.record(1, {"nfd": 0.0, "spacing": 0.2})
    population.evolve(1, {"nfd": 0.0, "spacing": 0.2}, 0.05)
    population.record(2, {"spacing": 0.1, "nfd+spacing": 0.3})
    population.save(state_dir(cfg) / "lineage.json")
    history, _ = cycle_history(cfg)
    assert history == {"nfd": {1: 0.0}, "spacing": {1: 0.2, 2: 0.1}, "nfd+spacing": {2: 0.3}}
    png = evasion_by_cycle(cfg, tmp_path / "cycles.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class FakeKfp:
    """A FAKE kfp.Client recording calls: the chaining logic is under test, not Kubeflow."""

    def __init__(self, states):
        self.states = list(states)
        self.submitted = []
        self.recurring = None

    def create_run_from_pipeline_package(self, package, **kwargs):
        from types import SimpleNamespace

        self.submitted.append(kwargs["run_name"])
        return SimpleNamespace(run_id=f"r{len(self.submitted)}")

    def wait_for_run_completion(self, run_id, timeout):
        from types import SimpleNamespace

        return SimpleNamespace(state=self.states.pop(0))

    def create_experiment(self, name, namespace=None):
        from types import SimpleNamespace

        return SimpleNamespace(experiment_id="e1")

    def create_recurring_run(self, experiment_id, job_name, **kwargs):
        from types import SimpleNamespace

        self.recurring = kwargs
        return SimpleNamespace(recurring_run_id="rr1")


def test_kfp_cycles_run_one_after_another_and_stop_at_the_first_failed_run(tmp_path):
    from content_arena.delivery.cycles import submit_cycles

    client = FakeKfp(["SUCCEEDED", "FAILED", "SUCCEEDED"])
    out = submit_cycles(client, tmp_path / "p.yaml", cycles=3, run_name="loop")
    assert out["mode"] == "sequential" and [r["state"] for r in out["runs"]] == ["SUCCEEDED", "FAILED"]
    assert client.submitted == ["loop-cycle-1", "loop-cycle-2"]

    recurring = FakeKfp([])
    out = submit_cycles(recurring, tmp_path / "p.yaml", cycles=4, every_s=3600)
    assert out["recurring_run_id"] == "rr1" and out["interval_s"] == 3600
    assert recurring.recurring["max_concurrency"] == 1 and recurring.recurring["no_catchup"] is True
    with pytest.raises(ValueError, match="at least 60"):
        submit_cycles(recurring, tmp_path / "p.yaml", cycles=2, every_s=5)
