"""A real Prometheus server on loopback scrapes the API and sees score drift rise when the traffic shifts.

Needs the ``prometheus`` binary (Debian package ``prometheus``; scripts/test.sh installs it); skips,
saying so, without it. Random free ports, a 1 s scrape interval, every wait bounded.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from content_arena.monitoring import score_reference
from support.api import READ, FakeDefender

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (apt-get install -y prometheus)")


class ReferencedDefender(FakeDefender):
    """Flags texts containing "놈" (0.9, else 0.1); validated on 10 % toxic texts."""

    score_reference = score_reference(np.array([0.9] * 10 + [0.1] * 90, dtype=np.float32))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.25)
    raise AssertionError(f"{what} not seen within {timeout}s (last: {last!r})")


@pytest.fixture
def api_url(service_config: Any) -> Iterator[str]:
    import uvicorn

    from content_arena.service.app import create_app

    cfg = service_config(monitoring={"drift_window": 200, "drift_min_texts": 100})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(cfg, defender=ReferencedDefender()), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="api-under-test", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 30, "the API")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def prometheus_url(api_url: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: arena-api\n"
        "    metrics_path: /api/v1/metrics\n"
        f"    static_configs: [{{targets: ['{api_url.removeprefix('http://')}']}}]\n",
        encoding="utf-8",
    )
    assert PROMETHEUS is not None
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is None and httpx.get(f"{url}/-/ready", timeout=2).status_code == 200,
                   30, "Prometheus ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()


def psi_in_prometheus(url: str) -> float | None:
    body = httpx.get(f"{url}/api/v1/query", params={"query": 'arena_live_score_psi{model_version="7"}'},
                     timeout=5).json()
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def classify(api_url: str, texts: list[str]) -> None:
    for start in range(0, len(texts), 100):
        response = httpx.post(f"{api_url}/api/v1/classify", json={"texts": texts[start:start + 100]}, headers=READ,
                              timeout=10)
        assert response.status_code == 200, response.text


def test_prometheus_sees_the_drift_metric_rise_when_the_traffic_shifts(api_url: str, prometheus_url: str) -> None:
    classify(api_url, [f"좋은 하루 {i}" if i % 10 else f"이 놈 {i}" for i in range(300)])
    calm = wait_until(lambda: (value := psi_in_prometheus(prometheus_url)) is not None and [value], 30,
                      "a first PSI sample")[0]
    assert calm < 0.1, calm
    classify(api_url, [f"이 놈 {i}" for i in range(300)])
    moved = wait_until(lambda: (value := psi_in_prometheus(prometheus_url)) is not None and value > 0.2 and [value],
                       30, "PSI above 0.2")[0]
    assert moved > 1.0, moved

    def flagged() -> bool:
        result = httpx.get(f"{prometheus_url}/api/v1/query", timeout=5,
                           params={"query": 'arena_live_flagged_total{model_version="7"}'}).json()["data"]["result"]
        return bool(result) and float(result[0]["value"][1]) == 330.0  # 30 of the first 300, then all 300

    wait_until(flagged, 30, "330 flagged texts")


def test_the_rollouts_firing_alert_query_is_valid_promql(prometheus_url: str) -> None:
    from content_arena.rollout import PrometheusClient, prometheus_alert_check

    assert prometheus_alert_check(PrometheusClient(prometheus_url))(time.time() - 60) == []
