"""The delivery commands of the arena CLI: pipeline compile / run-local / submit, serve-model, rollout."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from .conftest import REPO


@pytest.fixture
def run(tmp_path, monkeypatch):
    from content_arena.cli import app

    for key in list(os.environ):
        if key.startswith("ARENA_") and not key.startswith("ARENA_TEST"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


def test_commands_are_registered(run):
    top = run("--help").output
    assert "serve-model" in top and "rollout" in top
    group = run("pipeline", "--help").output
    for name in ("run", "compile", "run-local", "submit"):
        assert name in group


def test_compile_from_another_directory_writes_the_committed_package(tmp_path):
    """Run as a process from outside the checkout: the command finds pipelines/ through the package."""
    import kfp

    out = tmp_path / "loop.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
    done = subprocess.run([sys.executable, "-m", "content_arena.cli", "pipeline", "compile", "--out", str(out), "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"package": str(out), "pipeline": "content-arena-adversarial-loop"}
    committed = (REPO / "pipelines" / "adversarial_loop.yaml").read_bytes()
    if f"sdkVersion: kfp-{kfp.__version__}".encode() in committed:
        assert out.read_bytes() == committed


def test_rollout_dry_run_prints_the_patch(run):
    result = run("rollout", "--version", "4", "--canary-percent", "20", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["outcome"] == "dry_run" and payload["canary_traffic_percent"] == 20
    assert payload["storage_uri"] == "pvc://models/content-filter/v4"
    assert payload["patch"][-1] == {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 20}


@pytest.mark.parametrize("extra", [[], ["--model-dir", "x", "--model-uri", "models:/content-filter@champion"]])
def test_serve_model_needs_exactly_one_model_location(run, extra):
    result = run("serve-model", *extra)
    assert result.exit_code == 2
    assert "give exactly one of --model-dir and --model-uri" in result.output


def test_serve_model_reports_a_missing_model(run, tmp_path):
    result = run("serve-model", "--model-dir", str(tmp_path / "nothing"))
    assert result.exit_code == 2
    assert "error:" in result.output and "no defender at" in result.output


def test_submit_checks_its_arguments_before_contacting_a_server(run, tmp_path):
    missing = run("pipeline", "submit", "--host", "http://127.0.0.1:1", "--package", str(tmp_path / "none.yaml"))
    assert missing.exit_code == 2 and "no compiled pipeline at" in missing.output
    bad = run("pipeline", "submit", "--host", "http://127.0.0.1:1", "--param", "overrides")
    assert bad.exit_code == 2 and "--param takes NAME=VALUE" in bad.output


def test_submit_sends_the_compiled_pipeline_with_its_parameters(run):
    """Against a fake Kubeflow Pipelines API on 127.0.0.1 (healthz, experiments, runs)."""
    from .fakes import FakeKFP

    overrides = "{serving: {prometheus_url: 'http://prometheus:9090'}}"
    with FakeKFP() as kfp_api:
        result = run("pipeline", "submit", "--host", kfp_api.url, "--experiment", "loop-tests", "--run-name", "nightly",
                     "--service-account", "default-editor", "--param", f"overrides={overrides}", "--json")
        assert result.exit_code == 0, result.output
        (submitted,) = kfp_api.runs
    assert json.loads(result.stdout.strip().splitlines()[-1])["run_id"] == "run-1"
    assert submitted["display_name"] == "nightly" and submitted["service_account"] == "default-editor"
    assert submitted["experiment_id"] == "exp-1" and kfp_api.experiments[0]["display_name"] == "loop-tests"
    assert submitted["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "content-arena-adversarial-loop"
    assert "kubernetes" in submitted["pipeline_spec"]["platform_spec"]["platforms"]
    assert submitted["runtime_config"]["parameters"] == {"overrides": overrides}
