"""Canary rollout of a registered version to the defender InferenceService.

The Kubernetes API here is a faithful in-process fake (tests/delivery/fakes.py): an HTTP server on
127.0.0.1 implementing GET / list / watch / JSON-patch of inferenceservices, with a simulated KServe
controller that creates revisions and moves traffic after each patch as KServe's Serverless mode
does. The official kubernetes client is pointed at it with ``Configuration(host=...)``. Prometheus is
a fake HTTP API too. The MLflow registry and the store are real (SQLite). Every state the rollout
writes is validated against KServe's own CRD schema (skipped when ../shared is absent).
"""

from __future__ import annotations

import re

import pytest
import yaml

from content_arena import stages
from content_arena.rollout import CanaryJudge, CanaryRollout, RolloutError, canary_patch

from .conftest import defender_isvc
from .fakes import FakeKServe, FakePrometheus, closed_port

PREFIX = "pvc://models/content-filter"
V1, V2 = f"{PREFIX}/v1", f"{PREFIX}/v2"
FIRST_REVISION = "content-filter-predictor-00001"


def isvc_serving(uri: str, **annotations: str) -> dict:
    obj = defender_isvc()
    container = obj["spec"]["predictor"]["containers"][0]
    assert container["name"] == "kserve-container" and container["env"][0]["name"] == "STORAGE_URI"
    container["env"][0]["value"] = uri
    obj["metadata"]["annotations"].update(annotations)
    return obj


def kube_client(fake: FakeKServe):
    from kubernetes import client

    configuration = client.Configuration(host=fake.url)
    return client.ApiClient(configuration)


def predictor(obj: dict) -> dict:
    return obj["status"]["components"]["predictor"]


def storage_uri(obj: dict) -> str:
    return obj["spec"]["predictor"]["containers"][0]["env"][0]["value"]


def prometheus_answer(*, error_rate: float, canary_toxic: float, champion_toxic: float, requests: float = 5.0,
                      alerts: tuple[str, ...] = ()):
    """Answers the judge's queries by metric and revision, like Prometheus would for these series, and the
    rollout's firing-alert query with ``alerts``."""

    def answer(query: str):
        if query.startswith("ALERTS_FOR_STATE"):
            return [({"alertname": name, "rollback": "true"}, 1.8e9) for name in alerts] or None
        revision = re.search(r'revision="([^"]+)"', query).group(1)
        canary = revision != FIRST_REVISION
        if 'outcome="error"' in query:
            return error_rate
        if 'verdict="toxic"' in query:
            return canary_toxic if canary else champion_toxic
        return requests

    return answer


# -- the workspace: a real registry with versions 1 (champion before) and 2 (the new champion) -------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, champion_model_dir):
    from content_arena.config import load_config
    from content_arena.orchestrator import Workspace

    root = tmp_path_factory.mktemp("rollout")
    (root / "pvc" / "models").mkdir(parents=True)
    settings = {
        "home": str(root / ".arena"),
        "serving": {"storage_uri_prefix": PREFIX, "canary_observation_s": 0, "ready_timeout_s": 2,
                    "canary_traffic_percent": 10, "max_canary_error_rate": 0.01, "max_toxic_rate_drift": 0.1},
    }
    config = root / "arena.yaml"
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    ws = Workspace.open(load_config(config))
    for _ in (1, 2):
        with ws.registry.run("fixture") as run:
            version = ws.registry.register(champion_model_dir, run)
        ws.store.upsert_model(name=ws.registry.model_name, version=version, uri=ws.registry.uri(version))
    yield {"config": str(config), "pvc_root": root / "pvc", "ws": ws}
    ws.store.close()


@pytest.fixture
def registry_state(workspace):
    """As after the pipeline's promote step: v2 champion, v1 archived."""
    from content_arena.model_registry import CHAMPION

    ws = workspace["ws"]
    ws.registry.set_alias(CHAMPION, 2)
    ws.store.set_model_status(ws.registry.model_name, 2, "champion", alias=CHAMPION)
    ws.store.set_model_status(ws.registry.model_name, 1, "archived", clear_alias=True)
    return ws


def run_rollout(workspace, fake, prometheus_url, **kwargs):
    overrides = yaml.safe_dump({"serving": {"prometheus_url": prometheus_url, **kwargs.pop("serving", {})}})
    return stages.rollout(
        workspace["config"], overrides, 2, pvc_root=workspace["pvc_root"], api_client=kube_client(fake), **kwargs
    )


def assert_written_objects_valid(fake: FakeKServe, isvc_errors) -> None:
    for obj in fake.written:
        assert isvc_errors(obj) == [], f"resourceVersion {obj['metadata']['resourceVersion']}"
    assert fake.patches and all(p["content_type"] == "application/json-patch+json" for p in fake.patches)
    assert all(p["status"] == 200 for p in fake.patches)


def assert_rolled_back(fake: FakeKServe, result: dict, registry_state) -> None:
    from content_arena.model_registry import CHAMPION

    obj = fake.snapshot()
    assert result["outcome"] == "rolled_back" and result["confirmed"] is True
    assert storage_uri(obj) == V1, "the previous model location is restored"
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 0
    status = predictor(obj)
    assert status["latestRolledoutRevision"] == FIRST_REVISION
    assert [t["percent"] for t in status["traffic"] if t["revisionName"] == FIRST_REVISION] == [100]
    assert sum(t["percent"] for t in status["traffic"] if t["revisionName"] != FIRST_REVISION) == 0
    name = registry_state.registry.model_name
    assert registry_state.registry.version_for(CHAMPION) == 1
    assert registry_state.store.get_model(name, 2).status == "rejected"
    assert registry_state.store.get_model(name, 1).status == "champion"
    assert result["registry"] == {"champion": 1, "rejected": 2}


# -- outcomes -------------------------------------------------------------------------------------


def test_healthy_canary_is_promoted(workspace, registry_state, isvc_errors):
    from content_arena.model_registry import CHAMPION

    answer = prometheus_answer(error_rate=0.002, canary_toxic=0.22, champion_toxic=0.20)
    with FakeKServe(isvc_serving(V1), validate=isvc_errors) as fake, FakePrometheus(answer) as prom:
        result = run_rollout(workspace, fake, prom.url)
        obj = fake.snapshot()

    assert result["outcome"] == "promoted" and result["confirmed"] is True, result["reasons"]
    canary = result["canary_revision"]
    assert canary != FIRST_REVISION and result["champion_revision"] == FIRST_REVISION
    assert storage_uri(obj) == V2
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]
    status = predictor(obj)
    assert (status["latestRolledoutRevision"], status["previousRolledoutRevision"]) == (canary, FIRST_REVISION)
    assert status["traffic"] == [{"latestRevision": True, "percent": 100, "revisionName": canary}]
    # The canary was judged on its own revision against the champion's.
    assert any(f'revision="{canary}"' in q for q in prom.queries)
    assert any(f'revision="{FIRST_REVISION}"' in q for q in prom.queries)
    assert result["verdict"]["metrics"]["toxic_rate_drift"] == pytest.approx(0.02)
    # The first patch set the new location and the canary split in one go, guarded by test ops.
    first = fake.patches[0]["body"]
    assert [op["op"] for op in first] == ["test", "test", "test", "replace", "add"]
    assert first[1] == {"op": "test", "path": "/spec/predictor/containers/0/env/0/name", "value": "STORAGE_URI"}
    assert first[-1] == {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 10}
    assert_written_objects_valid(fake, isvc_errors)
    # Published where KServe's storage-initializer reads pvc://models/content-filter/v2.
    assert (workspace["pvc_root"] / "models" / "content-filter" / "v2" / "model.safetensors").is_file()
    assert registry_state.registry.version_for(CHAMPION) == 2
    assert registry_state.store.get_model(registry_state.registry.model_name, 2).status == "champion"


def test_high_error_rate_rolls_back(workspace, registry_state, isvc_errors):
    answer = prometheus_answer(error_rate=0.2, canary_toxic=0.2, champion_toxic=0.2)
    with FakeKServe(isvc_serving(V1), validate=isvc_errors) as fake, FakePrometheus(answer) as prom:
        result = run_rollout(workspace, fake, prom.url)
    assert_rolled_back(fake, result, registry_state)
    assert any("error rate 0.2000 > max_canary_error_rate 0.0100" in r for r in result["reasons"])
    assert_written_objects_valid(fake, isvc_errors)


def test_an_alert_firing_during_the_rollout_rolls_the_canary_back(workspace, registry_state, isvc_errors):
    answer = prometheus_answer(error_rate=0.0, canary_toxic=0.2, champion_toxic=0.2, alerts=("ArenaApi5xx",))
    slept: list[float] = []
    with FakeKServe(isvc_serving(V1), validate=isvc_errors) as fake, FakePrometheus(answer) as prom:
        result = run_rollout(workspace, fake, prom.url, serving={"canary_observation_s": 40}, sleep=slept.append)
    assert_rolled_back(fake, result, registry_state)
    assert result["reasons"][0] == "alert firing during the rollout: ArenaApi5xx"
    assert slept == [15.0], "the first poll of the observation window saw the alert"
    assert result["verdict"] is None, "no judgement needed"
    (alert_query,) = [q for q in prom.queries if q.startswith("ALERTS_FOR_STATE")]
    assert 'rollback="true"' in alert_query and 'alertstate="firing"' in alert_query


def test_without_firing_alerts_the_window_is_watched_to_its_end_then_judged(workspace, registry_state, isvc_errors):
    answer = prometheus_answer(error_rate=0.0, canary_toxic=0.2, champion_toxic=0.2)
    slept: list[float] = []
    with FakeKServe(isvc_serving(V1), validate=isvc_errors) as fake, FakePrometheus(answer) as prom:
        result = run_rollout(workspace, fake, prom.url, serving={"canary_observation_s": 40}, sleep=slept.append)
    assert result["outcome"] == "promoted", result["reasons"]
    assert slept == [15.0, 15.0, 10.0]
    assert len([q for q in prom.queries if q.startswith("ALERTS_FOR_STATE")]) == 3


def test_toxic_rate_drift_rolls_back(workspace, registry_state, isvc_errors):
    answer = prometheus_answer(error_rate=0.0, canary_toxic=0.55, champion_toxic=0.2)
    with FakeKServe(isvc_serving(V1), validate=isvc_errors) as fake, FakePrometheus(answer) as prom:
        result = run_rollout(workspace, fake, prom.url)
    assert_rolled_back(fake, result, registry_state)
    assert any("drift 0.350 > max_toxic_rate_drift 0.100" in r for r in result["reasons"])
    assert_written_objects_valid(fake, isvc_errors)


def test_canary_never_ready_times_out_and_rolls_back(workspace, registry_state, isvc_errors):
    with FakeKServe(isvc_serving(V1), validate=isvc_errors, bad_uris={V2: "hang"}) as fake, \
            FakePrometheus(lambda q: pytest.fail("a canary that never became ready must not be judged")) as prom:
        result = run_rollout(workspace, fake, prom.url, serving={"ready_timeout_s": 1})
    assert_rolled_back(fake, result, registry_state)
    assert result["reasons"][0].startswith("a ready canary revision with 10% of the traffic not seen within 1s")
    assert_written_objects_valid(fake, isvc_errors)


def test_failed_canary_revision_rolls_back_at_once(workspace, registry_state, isvc_errors):
    with FakeKServe(isvc_serving(V1), validate=isvc_errors, bad_uris={V2: "fail"}) as fake, \
            FakePrometheus(lambda q: pytest.fail("a failed canary must not be judged")) as prom:
        result = run_rollout(workspace, fake, prom.url, serving={"ready_timeout_s": 30})
    assert_rolled_back(fake, result, registry_state)
    assert "failed: LatestDeploymentReady=False: RevisionFailed" in result["reasons"][0]
    assert result["seconds"] < 10


def test_unreachable_prometheus_rolls_back_with_the_reason(workspace, registry_state, isvc_errors):
    url = f"http://127.0.0.1:{closed_port()}"
    with FakeKServe(isvc_serving(V1), validate=isvc_errors) as fake:
        result = run_rollout(workspace, fake, url)
    assert_rolled_back(fake, result, registry_state)
    (reason,) = result["reasons"]
    assert reason.startswith(f"cannot judge the canary: Prometheus at {url} is unreachable: ConnectError")
    assert_written_objects_valid(fake, isvc_errors)


def test_rollback_restores_the_alias_given_when_the_old_location_is_not_versioned(workspace, registry_state, isvc_errors):
    legacy = "s3://content-arena-models/content-filter/champion"
    answer = prometheus_answer(error_rate=0.5, canary_toxic=0.2, champion_toxic=0.2)
    with FakeKServe(isvc_serving(legacy), validate=isvc_errors) as fake, FakePrometheus(answer) as prom:
        result = run_rollout(workspace, fake, prom.url, previous_version=1)
        obj = fake.snapshot()
    assert result["outcome"] == "rolled_back" and storage_uri(obj) == legacy
    assert result["registry"] == {"champion": 1, "rejected": 2}


# -- refusals and guards --------------------------------------------------------------------------


def test_dry_run_returns_the_patch_and_contacts_nothing(workspace):
    result = stages.rollout(workspace["config"], None, 7, dry_run=True, canary_percent=25)
    assert result["outcome"] == "dry_run" and result["storage_uri"] == f"{PREFIX}/v7"
    assert result["patch"] == [
        {"op": "test", "path": "/spec/predictor/containers/0/name", "value": "kserve-container"},
        {"op": "test", "path": "/spec/predictor/containers/0/env/0/name", "value": "STORAGE_URI"},
        {"op": "replace", "path": "/spec/predictor/containers/0/env/0/value", "value": f"{PREFIX}/v7"},
        {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 25},
    ]


def _rollout(fake: FakeKServe, judge: CanaryJudge | None = None) -> CanaryRollout:
    from content_arena.rollout import custom_objects_api

    judge = judge or CanaryJudge(None, namespace="content-arena", max_error_rate=0.01, max_toxic_rate_drift=0.1)
    return CanaryRollout(custom_objects_api(kube_client(fake)), judge, namespace="content-arena", name="content-filter",
                         canary_percent=10, ready_timeout_s=1, observation_s=0)


@pytest.mark.parametrize("mode", ["RawDeployment", "Standard", "ModelMesh"])
def test_refuses_modes_without_revision_traffic_splitting(mode):
    with FakeKServe(isvc_serving(V1, **{"serving.kserve.io/deploymentMode": mode})) as fake:
        with pytest.raises(RolloutError, match=f"{mode} mode, where canaryTrafficPercent is ignored"):
            _rollout(fake).run(V2)
        assert fake.patches == []


def test_refuses_to_roll_out_what_is_already_served():
    with FakeKServe(isvc_serving(V2)) as fake:
        with pytest.raises(RolloutError, match="already serves"):
            _rollout(fake).run(V2)
        assert fake.patches == []


def test_test_operations_refuse_a_patch_on_a_changed_object(isvc_errors):
    with FakeKServe(isvc_serving(V1), validate=isvc_errors) as fake:
        rollout = _rollout(fake)
        stale = fake.snapshot()
        stale["spec"]["predictor"]["containers"][0]["env"][0]["value"] = "s3://someone/else"
        before = fake.snapshot()
        with pytest.raises(RolloutError, match="refused the patch \\(HTTP 422\\).*testing value"):
            rollout.patch(canary_patch(stale, V2, 10))
        assert fake.snapshot() == before, "a refused patch writes nothing"


def test_merge_patch_content_type_is_refused_by_the_fake_like_the_api_server():
    """The reason the rollout does not use CustomObjectsApi.patch_namespaced_custom_object: it always
    sends application/merge-patch+json, which cannot carry a JSON patch."""
    from kubernetes.client.exceptions import ApiException

    with FakeKServe(isvc_serving(V1)) as fake:
        api = _rollout(fake).api
        with pytest.raises(ApiException) as caught:
            api.patch_namespaced_custom_object("serving.kserve.io", "v1beta1", "content-arena", "inferenceservices",
                                               "content-filter", canary_patch(None, V2, 10))
        assert caught.value.status == 400
        assert fake.patches[-1]["content_type"] == "application/merge-patch+json"


def test_rollback_with_an_unknown_previous_version_leaves_the_registry_alone(workspace, registry_state, isvc_errors):
    from content_arena.model_registry import CHAMPION

    legacy = "s3://content-arena-models/content-filter/champion"
    answer = prometheus_answer(error_rate=0.5, canary_toxic=0.2, champion_toxic=0.2)
    with FakeKServe(isvc_serving(legacy), validate=isvc_errors) as fake, FakePrometheus(answer) as prom:
        result = run_rollout(workspace, fake, prom.url)
    assert result["outcome"] == "rolled_back" and storage_uri(fake.snapshot()) == legacy
    assert result["previous_version"] is None and "pass previous_version" in result["registry"]["warning"]
    assert registry_state.registry.version_for(CHAMPION) == 2
    assert registry_state.store.get_model(registry_state.registry.model_name, 2).status == "champion"
