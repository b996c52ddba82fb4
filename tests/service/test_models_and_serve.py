"""With the real tiny champion: promotion swaps the served model, and `arena serve` as a process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.api import ADMIN, READ, READ_TOKEN, wait_battle, wait_for

pytestmark = pytest.mark.slow


def test_promote_moves_the_alias_and_swaps_the_served_model(champion_config: Any, make_client: Any,
                                                           trained_champion: Any) -> None:
    from content_arena.model_registry import ModelRegistry
    from content_arena.store import open_store

    cfg = champion_config()
    registry = ModelRegistry.from_config(cfg)
    with registry.run("second-version") as run:
        version = registry.register(trained_champion.model_dir, run)
    assert version == 2
    with open_store(cfg.storage_url) as store:
        store.upsert_model(name="content-filter", version=2, uri=registry.uri(2), metrics={"clean_f1": 0.9},
                           status="registered")

    client = make_client(cfg, battle_threads=1)
    wait_for(lambda: client.get("/ready").status_code == 200, timeout=60)
    assert client.post("/api/v1/classify", json={"text": "안녕"}, headers=READ).json()["model_version"] == "1"
    battle = client.post("/api/v1/battles", json={"rounds": 40, "strategies": "all"}, headers=ADMIN).json()
    played = wait_battle(client, battle["id"], timeout=60)
    assert played["status"] == "completed" and played["model_version"] == "1" and len(played["strategies"]) >= 6
    assert client.post("/api/v1/models/promote", json={"version": 2}, headers=READ).status_code == 403
    assert client.post("/api/v1/models/promote", json={"version": 99}, headers=ADMIN).status_code == 404
    assert client.post("/api/v1/models/promote", json={"version": 0}, headers=ADMIN).status_code == 422

    response = client.post("/api/v1/models/promote", json={"version": 2}, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json() == {"champion_version": 2, "previous_version": 1, "serving_version": "2"}
    assert registry.version_for("champion") == 2
    champion = client.get("/api/v1/models/champion", headers=READ).json()
    assert champion["version"] == 2 and champion["status"] == "champion" and champion["serving"] is True
    statuses = {m["version"]: m["status"] for m in client.get("/api/v1/models", headers=READ).json()["models"]}
    assert statuses == {1: "archived", 2: "champion"}
    result = client.post("/api/v1/classify", json={"texts": ["안녕", "이 미친놈아"]}, headers=READ).json()
    assert result["model_version"] == "2" and len(result["results"]) == 2

    # Promotion waits for no pipeline run: while one holds the training lock it is refused.
    assert client.app.state.arena.ctx.backend.training_lock.acquire("run-in-progress", 60)
    busy = client.post("/api/v1/models/promote", json={"version": 1}, headers=ADMIN)
    assert busy.status_code == 409 and busy.json()["running_run_id"] == "run-in-progress"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_arena_serve_runs_the_api_as_a_process(champion_config: Any, tmp_path: Path) -> None:
    cfg = champion_config()
    config_file = tmp_path / "serve.yaml"
    config_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), allow_unicode=True))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_") or k.startswith("ARENA_TEST")}
    env["ARENA_INFERENCE__TORCH_THREADS"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "content_arena.cli", "serve", "--port", str(port), "--config", str(config_file)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"

    def get(path: str, **kwargs: Any) -> httpx.Response | None:
        try:
            return httpx.get(base + path, timeout=5, **kwargs)
        except httpx.TransportError:
            return None

    try:
        wait_for(lambda: (r := get("/health")) is not None and r.status_code == 200, timeout=90, interval=0.25)
        wait_for(lambda: get("/ready").status_code == 200, timeout=60, interval=0.25)
        headers = {"Authorization": f"Bearer {READ_TOKEN}"}
        result = httpx.post(base + "/api/v1/classify", json={"text": "이 미친놈아"}, headers=headers, timeout=10)
        assert result.status_code == 200 and result.json()["model_version"] == "1"
        assert httpx.post(base + "/api/v1/classify", json={"text": "x"}, timeout=10).status_code == 401
        assert "arena_http_request_duration_seconds" in get("/api/v1/metrics").text
        assert get("/docs").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why it ended.
    assert process.returncode in (0, -signal.SIGTERM), stderr[-2000:]
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(r["msg"] == "Application shutdown complete." for r in records)
    assert any(r.get("route") == "/docs" for r in records)
    access = [r for r in records if r.get("route") == "/api/v1/classify"]
    assert access and all("미친" not in json.dumps(r, ensure_ascii=False) for r in records)
