"""The command-line contract, run as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support.configs import TINY

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def arena(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
    full_env.update({"ARENA_TRAINING__TORCH_THREADS": "2", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "content_arena.cli", *args], cwd=cwd, env=full_env,
        capture_output=True, text=True, timeout=600,
    )


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "arena.yaml").write_text(yaml.safe_dump({"home": str(tmp_path / ".arena"), **TINY}))
    data = tmp_path / "data.csv"
    rows = ["text,label"]
    for i in range(120):  # 24 validation texts in `arena train`'s 10% split: enough for a policy threshold
        rows.append(f"이 미친 씨발놈아 {i},1")
        rows.append(f"오늘 날씨가 좋네요 {i},0")
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return tmp_path


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_train_evaluate_models_and_battle(workdir):
    trained = arena("train", "--data", "data.csv", "--format", "csv", "--register", "--json", cwd=workdir)
    assert trained.returncode == 0, trained.stderr
    assert last_json(trained.stdout)["version"] == 1

    evaluated = arena("evaluate", "--model", "models:/content-filter@champion", "--data", "data.csv",
                      "--format", "csv", "--attacks", "nfd,spacing", "--json", cwd=workdir)
    assert evaluated.returncode == 0, evaluated.stderr
    report = last_json(evaluated.stdout)
    assert {"n", "f1", "precision", "recall", "auroc", "fpr", "attacks"} <= set(report)
    # evaluate --json carries the policy fields: everything is judged at the threshold the policy chose
    assert {"threshold", "operating_point", "pr_auc", "ece", "reliability"} <= set(report)
    assert report["operating_point"] == {"metric": "fpr", "value": 0.1}
    assert 0.0 < report["threshold"] <= 1.0 and report["fpr"] <= 0.1 and 0.0 <= report["ece"] <= 1.0
    assert sum(b["count"] for b in report["reliability"]) == report["n"] == 240
    assert set(report["attacks"]) == {"nfd", "spacing"}
    assert set(report["attacks"]["nfd"]) >= {"evasion_rate", "attacked_clean_fpr", "n_detected"}

    listed = arena("models", "--json", cwd=workdir, env={"COLUMNS": "200"})  # a table wide enough for one line
    assert listed.returncode == 0, listed.stderr
    versions = last_json(listed.stdout)["versions"]
    assert versions[0]["version"] == 1 and versions[0]["aliases"] == ["champion"]
    # the threshold and the policy that chose it, from the registered manifest
    assert versions[0]["threshold"] == report["threshold"]
    assert versions[0]["operating_point"] == {"metric": "fpr", "value": 0.1}
    assert versions[0]["calibration"] == "platt"  # 24 validation texts: too few for isotonic
    assert "fpr <= 0.10" in listed.stderr

    fought = arena("battle", "--rounds", "12", "--strategy", "jamo_split", "--json", cwd=workdir)
    assert fought.returncode == 0, fought.stderr
    assert last_json(fought.stdout)["rounds"] == 12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "--model", "nowhere", "--data", "data.csv", "--format", "csv"], "no defender at nowhere"),
        (["evaluate", "--model", "models:/content-filter@champion", "--data", "data.csv", "--format", "csv"],
         "no model version has alias 'champion'"),
        (["battle", "--strategy", "telepathy"], "unknown strategy"),
        (["train", "--data", "missing.csv", "--format", "csv"], "missing.csv"),
        (["train", "--data", "empty.csv", "--format", "csv"], "empty.csv"),
        (["train", "--data", "data.csv", "--format", "parquet"], "unknown data format"),
    ],
)
def test_bad_input_exits_non_zero_with_one_clear_line(workdir, args, message):
    (workdir / "empty.csv").write_text("")
    result = arena(*args, cwd=workdir)
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("error:")
    assert message in " ".join(lines)
    assert "Traceback" not in result.stderr


def test_bad_config_value_fails_at_start_up(workdir):
    result = arena("models", cwd=workdir, env={"ARENA_QUALITY_GATE__MAX_EVASION_RATE": "2"})
    assert result.returncode == 2
    assert "quality_gate.max_evasion_rate" in result.stderr


def test_run_pipeline_script_prints_the_json_contract(workdir):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "run_pipeline.py"), "--config", "arena.yaml", "--json"],
        cwd=workdir, capture_output=True, text=True, timeout=600,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}, "ARENA_TRAINING__TORCH_THREADS": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = last_json(result.stdout)
    assert summary["gate"]["decision"] in ("PASS", "FAIL") and isinstance(summary["gate"]["reasons"], list)
    assert {"f1", "evasion_rate", "per_strategy"} <= set(summary["champion_before"])
    assert summary["challenger"] is None or "per_strategy" in summary["challenger"]
    assert isinstance(summary["promoted"], bool) and isinstance(summary["champion_version"], int)


def test_version_and_help_say_what_the_tool_is_and_where_state_lives(tmp_path):
    import content_arena

    version = arena("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"arena {content_arena.__version__}"
    helped = arena("--help", cwd=tmp_path, env={"COLUMNS": "200"})
    assert helped.returncode == 0 and "ARENA_HOME" in helped.stdout and ".arena" in helped.stdout
    battle = arena("battle", "--help", cwd=tmp_path, env={"COLUMNS": "200"})
    words = " ".join(battle.stdout.replace("│", " ").split())  # rich wraps the option's help in a box
    assert "or all: every rule strategy `arena strategies` lists" in words and "adaptive only when named" in words
