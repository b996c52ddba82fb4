"""The defender as a KServe model: v1 and v2 (Open Inference Protocol) on KServe's own REST app.

Most tests call KServe's FastAPI application in-process; one starts ``arena serve-model`` as a
process bound to 127.0.0.1 and talks to it over HTTP.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

TEXTS = ["씨발 꺼져", "오늘 날씨 좋네요", "you are an idiot"]
EVASIVE = "씨\u200b발 꺼져"  # a zero-width space the normaliser removes


@pytest.fixture(scope="module")
def model(champion_model_dir):
    from content_arena.serving import DefenderModel

    model = DefenderModel("content-filter", model_dir=champion_model_dir, max_batch_size=8, max_text_length=100)
    model.load()
    return model


@pytest.fixture(scope="module")
def client(model):
    from fastapi.testclient import TestClient

    from content_arena.serving import create_app

    return TestClient(create_app(model), raise_server_exceptions=False)


def metric(client, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name}{{") and line.split("{", 1)[1].split("}", 1)[0] == wanted:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_v1_predictions_are_the_defenders_classifications(client, model):
    response = client.post("/v1/models/content-filter:predict", json={"instances": TEXTS})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    expected = model.defender.classify(TEXTS)
    assert [p["is_toxic"] for p in predictions] == [e["is_toxic"] for e in expected]
    assert [p["toxic_score"] for p in predictions] == pytest.approx([e["toxic_score"] for e in expected], abs=1e-6)
    assert set(predictions[0]) == {"toxic_score", "is_toxic", "confidence"}


def test_v1_accepts_text_objects_and_normalises_before_predicting(client):
    plain = client.post("/v1/models/content-filter:predict", json={"instances": ["씨발 꺼져"]}).json()
    evasive = client.post("/v1/models/content-filter:predict", json={"instances": [{"text": EVASIVE}]}).json()
    assert evasive["predictions"][0]["toxic_score"] == pytest.approx(plain["predictions"][0]["toxic_score"], abs=1e-6)


def test_v1_reads_garbled_words_back_before_predicting(client, model):
    # The served champion came with its word recogniser: a doubled letter is read as the known word.
    assert model.defender.recognizer is not None and model.defender.recognizer.word("idiiot") == "idiot"
    plain = client.post("/v1/models/content-filter:predict", json={"instances": ["you are an idiot"]}).json()
    garbled = client.post("/v1/models/content-filter:predict", json={"instances": ["you are an idiiot"]}).json()
    assert garbled["predictions"][0]["toxic_score"] == pytest.approx(plain["predictions"][0]["toxic_score"], abs=1e-6)


def test_v2_infer_returns_typed_outputs_matching_v1(client):
    request = {"id": "req-1", "inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": TEXTS}]}
    response = client.post("/v2/models/content-filter/infer", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "content-filter" and body["id"] == "req-1"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert {name: (o["datatype"], o["shape"]) for name, o in outputs.items()} == {
        "toxic_score": ("FP32", [3]), "is_toxic": ("BOOL", [3]), "confidence": ("FP32", [3])
    }
    v1 = client.post("/v1/models/content-filter:predict", json={"instances": TEXTS}).json()["predictions"]
    assert outputs["toxic_score"]["data"] == pytest.approx([p["toxic_score"] for p in v1], abs=1e-6)
    assert outputs["is_toxic"]["data"] == [p["is_toxic"] for p in v1]


def test_v2_metadata_and_health(client):
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/content-filter/ready").json() == {"name": "content-filter", "ready": True}
    assert client.get("/v1/models/content-filter").json() == {"name": "content-filter", "ready": True}
    meta = client.get("/v2/models/content-filter").json()
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert [o["name"] for o in meta["outputs"]] == ["toxic_score", "is_toxic", "confidence"]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/models/content-filter:predict", {"instances": [1]}, "instance 0 is not a text"),
        ("/v1/models/content-filter:predict", {"inputs": ["x"]}, 'expected {"instances": [...]}'),
        ("/v1/models/content-filter:predict", {"instances": []}, "no texts to classify"),
        ("/v1/models/content-filter:predict", {"instances": ["x"] * 9}, "9 texts in one request; at most 8"),
        ("/v1/models/content-filter:predict", {"instances": ["x" * 101]}, "longer than 100 characters"),
        ("/v2/models/content-filter/infer",
         {"inputs": [{"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]}]}, "texts are BYTES"),
        ("/v2/models/content-filter/infer",
         {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a"]}]}, "has shape [2] but 1 values"),
    ],
)
def test_bad_requests_are_400_with_the_reason(client, path, body, message):
    before = metric(client, "content_arena_defender_requests_total", model_name="content-filter", revision="local",
                    outcome="invalid")
    response = client.post(path, json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    after = metric(client, "content_arena_defender_requests_total", model_name="content-filter", revision="local",
                   outcome="invalid")
    assert after == before + 1


def test_requests_and_verdicts_are_counted_by_revision(client, model, monkeypatch):
    labels = {"model_name": "content-filter", "revision": "local"}
    ok = metric(client, "content_arena_defender_requests_total", outcome="ok", **labels)
    texts = metric(client, "content_arena_defender_texts_total", verdict="toxic", **labels) + metric(
        client, "content_arena_defender_texts_total", verdict="clean", **labels)
    client.post("/v1/models/content-filter:predict", json={"instances": TEXTS})
    assert metric(client, "content_arena_defender_requests_total", outcome="ok", **labels) == ok + 1
    assert metric(client, "content_arena_defender_texts_total", verdict="toxic", **labels) + metric(
        client, "content_arena_defender_texts_total", verdict="clean", **labels) == texts + len(TEXTS)

    def broken(texts):
        raise RuntimeError("CUDA error: device-side assert triggered")

    errors = metric(client, "content_arena_defender_requests_total", outcome="error", **labels)
    monkeypatch.setattr(model.defender, "predict", broken)
    response = client.post("/v1/models/content-filter:predict", json={"instances": TEXTS})
    assert response.status_code == 500
    assert metric(client, "content_arena_defender_requests_total", outcome="error", **labels) == errors + 1


def test_loads_a_model_unpacked_one_level_down(champion_model_dir, tmp_path):
    from content_arena.serving import find_model_dir

    shutil.copytree(champion_model_dir, tmp_path / "mnt" / "model")
    assert find_model_dir(tmp_path / "mnt") == tmp_path / "mnt" / "model"
    from content_arena.defender import ModelNotFound

    with pytest.raises(ModelNotFound, match="no defender at"):
        find_model_dir(tmp_path / "empty")


def test_served_toxic_scores_are_the_calibrated_probabilities_the_library_gives(champion_model_dir, tmp_path):
    import asyncio

    import numpy as np

    from content_arena.defender import TransformerDefender
    from content_arena.defender.artifacts import read_manifest, write_manifest
    from content_arena.serving import DefenderModel

    calibrated_dir = tmp_path / "calibrated"
    shutil.copytree(champion_model_dir, calibrated_dir)
    manifest = read_manifest(calibrated_dir)
    manifest.calibration = {"kind": "platt", "a": 0.5, "b": -1.0, "n": 100}
    manifest.operating_point, manifest.threshold = {"metric": "fpr", "value": 0.1}, 0.3
    write_manifest(calibrated_dir, manifest)
    served = DefenderModel("content-filter", model_dir=calibrated_dir, max_batch_size=8, max_text_length=100)
    served.load()
    # KServe keeps one application per process (the module's client serves the uncalibrated model): the
    # request goes through the model's own handler chain, preprocess -> predict -> postprocess.
    body, _ = asyncio.run(served({"instances": TEXTS}, headers={}))  # (response, response headers)
    scores = np.array([p["toxic_score"] for p in body["predictions"]])
    library = TransformerDefender(calibrated_dir).load()
    raw = library.predict(library.preprocess(TEXTS)).astype(np.float64)
    expected = 1.0 / (1.0 + np.exp(-(0.5 * np.log(raw / (1 - raw)) - 1.0)))
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    np.testing.assert_allclose(scores, library.scores(TEXTS), atol=1e-6)
    assert [p["is_toxic"] for p in body["predictions"]] == (scores >= 0.3).tolist()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening_addresses(port: int) -> set[str]:
    """Local addresses listening on ``port`` according to /proc/net/tcp (Linux)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":  # LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


@pytest.mark.slow
def test_arena_serve_model_serves_v1_and_v2_on_localhost(champion_model_dir, tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
    env.update(ARENA_HOME=str(tmp_path / ".arena"), OMP_NUM_THREADS="1", K_REVISION="content-filter-predictor-00007")
    arena = Path(sys.executable).with_name("arena")
    process = subprocess.Popen(
        [str(arena), "serve-model", "--http-port", str(port), "--model-dir", str(champion_model_dir)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the model server did not become ready in 90s"
            time.sleep(0.5)
        if Path("/proc/net/tcp").is_file():
            assert _listening_addresses(port) == {"127.0.0.1"}
        v1 = httpx.post(f"{base}/v1/models/content-filter:predict", json={"instances": TEXTS}, timeout=30)
        assert v1.status_code == 200 and len(v1.json()["predictions"]) == 3
        v2 = httpx.post(f"{base}/v2/models/content-filter/infer", timeout=30,
                        json={"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [EVASIVE]}]})
        assert v2.status_code == 200 and v2.json()["outputs"][0]["shape"] == [1]
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert 'revision="content-filter-predictor-00007"' in metrics
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_runtime_exports_the_live_signals_by_model_version(client, model):
    version = model.defender.version or "unknown"
    texts = metric(client, "arena_live_texts_total", model_version=version)
    invisible = metric(client, "arena_live_normalized_total", model_version=version, kind="invisible")
    client.post("/v1/models/content-filter:predict", json={"instances": [*TEXTS, EVASIVE]})
    assert metric(client, "arena_live_texts_total", model_version=version) == texts + len(TEXTS) + 1
    assert metric(client, "arena_live_normalized_total", model_version=version, kind="invisible") == invisible + 1
    assert metric(client, "arena_live_words_total", model_version=version) > 0
