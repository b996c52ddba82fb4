"""Faults: the MLflow tracking server dies mid-pipeline, after the challenger is trained, at evaluate or
promote time; then comes back.

test_faults.py makes ``ModelRegistry`` methods raise; here a real MLflow tracking server is killed.

How the fault is made: MLflow's own tracking server app (``mlflow.server.fastapi_app:app``, what
``mlflow server`` serves) runs under uvicorn in a subprocess on a free port of 127.0.0.1, over a private
copy of the session champion's registry db (the model artifacts are files the client writes and reads
directly). ``uvicorn`` is started directly instead of ``mlflow server`` because the latter also spawns
its job-runner processes and takes about 20 s to come up on two cores; this takes about 5. A hook
between two pipeline stages SIGKILLs the server, so every MLflow call after it meets a refused
connection. The client's HTTP retries are cut to one, without backoff (MLflow's default of 7 with
backoff waits minutes before it gives up). For the rerun the server is started again on the same db.

Kill points: ``evaluate`` when the challenger (already trained and registered) is loaded for its
evaluation; ``promote`` right before the promotion's first registry call, with the comparison forced to
promote so that the registry is written; ``after-alias`` after the champion alias moved and before the
challenger alias is removed.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from support.api import ADMIN, READ, wait_for
from support.champion import TrainedChampion

# The gate can never pass, so every pipeline run trains and registers a challenger.
FAILING_GATE = {"max_evasion_rate": 0.0, "min_f1_score": 1.0}


# ------------------------------------------------------------------------------- a real server


class MlflowServer:
    def __init__(self, db: Path, artifacts: Path, log: Path) -> None:
        self.db = db
        self.artifacts = artifacts
        self.log = log
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        env = {**os.environ, "_MLFLOW_SERVER_FILE_STORE": f"sqlite:///{self.db}",
               "_MLFLOW_SERVER_ARTIFACT_ROOT": str(self.artifacts), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                 "mlflow.server.fastapi_app:app"], env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the MLflow server exited {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the MLflow server did not answer within {timeout}s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@pytest.fixture
def mlflow_server(champion_config: Callable[..., Any], trained_champion: TrainedChampion, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowServer]:
    """A running server over the test's copy of the champion's registry (champion_config's mlflow.db)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    server = MlflowServer(tmp_path / "mlflow.db", trained_champion.artifacts, tmp_path / "mlflow-server.log")
    try:
        server.start()
        yield server
    finally:
        server.kill()


def _pipeline_config(champion_config: Callable[..., Any], server: MlflowServer) -> Any:
    cfg = champion_config(quality_gate=FAILING_GATE, attack={"rounds": 24, "strategies": ["spacing", "homoglyph"]},
                          data={"test_fraction": 0.1}, mlflow={"tracking_uri": server.url})
    assert cfg.tracking_uri == cfg.registry_uri == server.url
    return cfg


# ----------------------------------------------------------------------------------- fault hooks


def _kill_at(point: str, server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Install the hook that kills the server at ``point``; returns the list the hook appends to when it fires."""
    import content_arena.model_promoter as promoter
    import content_arena.steps as steps
    from content_arena.model_promoter import Comparison
    from content_arena.model_registry import CHALLENGER, ModelRegistry

    fired: list[str] = []

    def kill() -> None:
        fired.append(point)
        server.kill()

    if point == "evaluate":
        real_evaluate = steps.evaluate_model

        def evaluate_challenger(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("role") == "challenger":
                kill()
            return real_evaluate(*args, **kwargs)

        monkeypatch.setattr(steps, "evaluate_model", evaluate_challenger)
        return fired

    real_compare = promoter.compare

    def promote_anyway(before: Any, after: Any, cfg: Any) -> Any:
        decided = real_compare(before, after, cfg)
        return Comparison(True, ["forced by the test, to write the promotion to the registry"], decided.deltas)

    monkeypatch.setattr(promoter, "compare", promote_anyway)
    if point == "promote":
        real_promote = promoter.promote

        def promote(*args: Any, **kwargs: Any) -> Any:
            kill()
            return real_promote(*args, **kwargs)

        monkeypatch.setattr(promoter, "promote", promote)
    else:
        assert point == "after-alias"
        real_delete = ModelRegistry.delete_alias

        def delete_alias(self: Any, alias: str) -> None:
            if alias == CHALLENGER and not fired:
                kill()
            real_delete(self, alias)

        monkeypatch.setattr(ModelRegistry, "delete_alias", delete_alias)
        assert promoter.ModelRegistry is ModelRegistry
    return fired


# ---------------------------------------------------------------------------------------- checks


def _state(cfg: Any) -> dict[str, Any]:
    """Registry versions and aliases, and the store's model_metadata (version → (alias, status))."""
    from content_arena.model_registry import CHALLENGER, CHAMPION, ModelRegistry
    from content_arena.store import open_store

    registry = ModelRegistry.from_config(cfg)
    with open_store(cfg.storage_url) as store:
        rows = {m.version: (m.alias, m.status) for m in store.list_models(cfg.mlflow.model_name)}
    return {"versions": sorted(v.version for v in registry.versions()),
            "aliases": {a: registry.version_for(a) for a in (CHAMPION, CHALLENGER)}, "store": rows}


def _check_consistent(cfg: Any) -> dict[str, Any]:
    """Every alias names a version whose artifacts are all there and intact; the store mirrors the
    champion alias, and any challenger alias it records is the registry's."""
    from content_arena.defender.artifacts import verify_model_dir
    from content_arena.model_registry import CHALLENGER, CHAMPION, ModelRegistry

    registry = ModelRegistry.from_config(cfg)
    state = _state(cfg)
    for version in state["aliases"].values():
        if version is None:
            continue
        source = registry.client.get_model_version(cfg.mlflow.model_name, str(version)).source
        verify_model_dir(Path(urlsplit(source).path))  # raises if a file is missing or changed
    mirrored = {alias: version for version, (alias, _) in state["store"].items() if alias}
    assert state["aliases"][CHAMPION] is not None and mirrored.get(CHAMPION) == state["aliases"][CHAMPION], state
    if CHALLENGER in mirrored:
        assert mirrored[CHALLENGER] == state["aliases"][CHALLENGER], state
    return state


def _check_decision(summary: dict[str, Any], before: dict[str, Any], cfg: Any) -> None:
    """The rerun's decision is applied in the registry and mirrored in the store."""
    state = _check_consistent(cfg)
    new = summary["challenger"]["version"]
    old = before["aliases"]["champion"]
    assert new not in before["versions"] and state["versions"] == sorted({*before["versions"], new}), state
    assert summary["comparison"]["promote"] == summary["promoted"]
    if summary["promoted"]:
        assert state["aliases"] == {"champion": new, "challenger": None}, state
        assert state["store"][new] == ("champion", "champion") and state["store"][old][1] == "archived", state
    else:
        assert state["aliases"] == {"champion": old, "challenger": new}, state
        assert state["store"][new] == ("challenger", "rejected"), state
    assert summary["champion_version"] == state["aliases"]["champion"]


def _one_clear_line(message: str, server: MlflowServer) -> None:
    assert message.startswith(f"MLflow at {server.url} failed while "), message
    assert message.endswith("connection refused") and "\n" not in message, message


# ------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("point", ["evaluate", "promote"])
def test_mlflow_killed_mid_pipeline_cli_fails_with_one_line_and_rerun_decides(
    point: str, champion_config: Callable[..., Any], mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """``arena pipeline run``: exit 2 and one ``error:`` line naming MLflow and the step; the registry
    and the store as they were before the step (a challenger registered with its files, never an alias
    moved half-way); with the server down even the champion lookup fails, instead of reading "no
    champion" and training a new one; a rerun with the server back completes and decides."""
    from typer.testing import CliRunner

    import content_arena.steps.champion as champion_step
    from content_arena.cli import app

    cfg = _pipeline_config(champion_config, mlflow_server)
    config_file = tmp_path / "arena.yaml"
    config_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    before = _check_consistent(cfg)
    assert before["aliases"] == {"champion": 1, "challenger": None}

    def cli(*args: str) -> Any:
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:  # the CLI installs its own log handler; the rest of the session keeps pytest's
            return CliRunner().invoke(app, ["pipeline", "run", "--config", str(config_file), *args])
        finally:
            root.handlers[:], root.level = handlers, level

    with monkeypatch.context() as patch:
        fired = _kill_at(point, mlflow_server, patch)
        failed = cli()
    assert fired == [point], f"the server was not killed mid-pipeline; the run ended with {failed.exception!r}"
    assert failed.exit_code == 2, (failed.exit_code, failed.output, failed.exception)
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in failed.output, failed.output
    doing = "starting run 'evaluate-challenger'" if point == "evaluate" else "pointing alias 'champion' at version"
    assert doing in errors[0], errors[0]
    _one_clear_line(errors[0].removeprefix("error: "), mlflow_server)

    # Still down: the next run stops at the champion lookup, before it trains anything.
    trained: list[str] = []
    monkeypatch.setattr(champion_step, "train_champion", lambda *a, **k: trained.append("champion"))
    down = cli()
    assert down.exit_code == 2 and "looking up alias 'champion'" in down.stderr and not trained, down.output

    mlflow_server.start()
    after_fault = _check_consistent(cfg)
    challenger = after_fault["aliases"]["challenger"]
    assert after_fault["aliases"]["champion"] == 1 and challenger == 2, after_fault
    assert after_fault["versions"] == [1, 2] and after_fault["store"][2] == ("challenger", "challenger")

    rerun = cli("--json")
    assert rerun.exit_code == 0, rerun.output
    _check_decision(yaml.safe_load(rerun.stdout.strip().splitlines()[-1]), after_fault, cfg)


def test_mlflow_killed_after_the_champion_alias_moved_the_promotion_stands(
    champion_config: Callable[..., Any], mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed between moving ``champion`` and removing ``challenger``: the promotion has happened in the
    registry, so the store mirrors it and the run completes; only the old challenger alias is left (on
    the new champion), and the next challenger takes it over."""
    from content_arena.orchestrator import run_pipeline

    cfg = _pipeline_config(champion_config, mlflow_server)
    assert _check_consistent(cfg)["versions"] == [1]
    with monkeypatch.context() as patch:
        fired = _kill_at("after-alias", mlflow_server, patch)
        summary = run_pipeline(cfg)
    assert fired == ["after-alias"] and summary.promoted and summary.champion_version == 2

    mlflow_server.start()
    state = _check_consistent(cfg)
    assert state["aliases"] == {"champion": 2, "challenger": 2}, state
    assert state["store"][2] == ("champion", "champion") and state["store"][1] == (None, "archived"), state

    _check_decision(run_pipeline(cfg).to_dict(), state, cfg)


def test_mlflow_killed_under_the_service_releases_the_lock_and_a_new_run_decides(
    champion_config: Callable[..., Any], mlflow_server: MlflowServer, make_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A triggered run whose MLflow dies at promote time: failed with a fixed error string, the
    training lock free, a manual promotion answered 503 (not 404 "not registered", not 500); once the
    server is back a new run is accepted and decides."""
    cfg = _pipeline_config(champion_config, mlflow_server)
    client = make_client(cfg)
    wait_for(lambda: client.get("/ready").status_code == 200, timeout=30)
    lock = client.app.state.arena.ctx.backend.training_lock

    with monkeypatch.context() as patch:
        fired = _kill_at("promote", mlflow_server, patch)
        run_id = client.post("/pipeline/trigger", headers=ADMIN).json()["run_id"]
        run = wait_for(lambda: (r := client.get(f"/pipeline/runs/{run_id}", headers=READ).json())["status"]
                       in ("completed", "failed") and r, timeout=50)
    assert fired == ["promote"]
    assert run["status"] == "failed", run
    # A fixed string for clients; the line naming MLflow and the step is in the log.
    assert run["error"] == "the pipeline run failed: the model registry was unavailable", run
    assert lock.holder() is None, "the training lock is still held"

    manual = client.post("/api/v1/models/promote", json={"version": 2}, headers=ADMIN)
    assert manual.status_code == 503 and "registry is unavailable" in manual.json()["detail"], manual.text
    assert lock.holder() is None
    assert client.get("/health").status_code == 200

    mlflow_server.start()
    before = _check_consistent(cfg)
    assert before["aliases"] == {"champion": 1, "challenger": 2}, before
    again = client.post("/pipeline/trigger", headers=ADMIN)
    assert again.status_code == 202, again.text
    done = wait_for(lambda: (r := client.get(f"/pipeline/runs/{again.json()['run_id']}", headers=READ).json())["status"]
                    in ("completed", "failed") and r, timeout=50)
    assert done["status"] == "completed", done
    assert lock.holder() is None
    _check_decision(done["summary"], before, cfg)
