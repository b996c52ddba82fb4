"""Rules every rendering obeys: resources, non-root, pinned images, probes, secrets, RBAC,
network policies, GPU scheduling, monitoring — for kustomize base/overlays and the chart."""

from __future__ import annotations

import json

import pytest
import yaml

from .helpers import (
    BASE,
    all_renderings,
    by_kind,
    containers,
    kustomize,
    pod_specs,
)
from .kustomize_render import load_yaml_objects, split_image

RENDERINGS = dict(all_renderings())
NAMES = sorted(RENDERINGS)

SECRET_KEYS = {"content-arena-db": {"password"}, "content-arena-api-tokens": {"tokens.json"}}


def _workloads(objects):
    for obj in objects:
        yield from pod_specs(obj)


@pytest.mark.parametrize("rendering", NAMES)
def test_every_container_has_requests_and_limits(rendering):
    seen = 0
    for where, spec, _ in _workloads(RENDERINGS[rendering]):
        for c in containers(spec):
            seen += 1
            resources = c.get("resources") or {}
            for section in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    assert resource in (resources.get(section) or {}), (
                        f"{where}/{c['name']}: no {section}.{resource}"
                    )
            for resource, limit in resources["limits"].items():
                if resource.startswith("nvidia.com/"):
                    assert resources["requests"].get(resource) == limit, f"{where}: GPU request != limit"
    # api, defender, mlflow, postgres, redis, ollama, trainer
    assert seen == 7


@pytest.mark.parametrize("rendering", NAMES)
def test_every_container_runs_non_root_without_privilege(rendering):
    for where, spec, _ in _workloads(RENDERINGS[rendering]):
        pod_sc = spec.get("securityContext") or {}
        for c in containers(spec):
            sc = c.get("securityContext") or {}
            label = f"{where}/{c['name']}"
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, label
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            assert isinstance(uid, int) and uid > 0, label
            assert sc.get("allowPrivilegeEscalation") is False, label
            assert sc.get("readOnlyRootFilesystem") is True, label
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], label
            assert sc.get("privileged") is not True, label
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile")) or {}
            assert seccomp.get("type") == "RuntimeDefault", label
        assert spec.get("hostNetwork") is not True and spec.get("hostPID") is not True, where


@pytest.mark.parametrize("rendering", NAMES)
def test_images_are_pinned(rendering):
    for where, spec, _ in _workloads(RENDERINGS[rendering]):
        for c in containers(spec):
            _, tag, digest = split_image(c["image"])
            assert tag or digest, f"{where}/{c['name']}: untagged image {c['image']}"
            assert tag != "latest", f"{where}/{c['name']}: {c['image']}"


@pytest.mark.parametrize("rendering", NAMES)
def test_long_running_containers_have_probes(rendering):
    """Services get liveness and readiness probes; the training Job (a batch process that
    serves nothing) is exempt and bounded by activeDeadlineSeconds instead."""
    for where, spec, long_running in _workloads(RENDERINGS[rendering]):
        for c in spec["containers"]:
            if long_running:
                assert c.get("livenessProbe") and c.get("readinessProbe"), f"{where}/{c['name']}"
    for job in by_kind(RENDERINGS[rendering], "Job").values():
        assert job["spec"]["activeDeadlineSeconds"] > 0


@pytest.mark.parametrize("rendering", NAMES)
def test_writable_paths_are_volumes(rendering):
    """With read-only root filesystems, /tmp must be a mounted volume everywhere."""
    for where, spec, _ in _workloads(RENDERINGS[rendering]):
        volumes = {v["name"] for v in spec.get("volumes") or []}
        for c in spec["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
            assert "/tmp" in mounts or where.startswith("Deployment/redis"), f"{where}: no /tmp volume"
            assert set(mounts.values()) <= volumes | {
                t["metadata"]["name"] for t in _claim_templates(RENDERINGS[rendering], where)
            }, where


def _claim_templates(objects, where):
    kind, _, name = where.partition("/")
    if kind != "StatefulSet":
        return []
    return by_kind(objects, "StatefulSet")[name]["spec"].get("volumeClaimTemplates", [])


# ----------------------------------------------------------------------------- secrets & config


@pytest.mark.parametrize("rendering", NAMES)
def test_no_secret_values_are_rendered(rendering):
    objects = RENDERINGS[rendering]
    assert not [o for o in objects if o["kind"] == "Secret"]
    for where, spec, _ in _workloads(objects):
        for c in containers(spec):
            for env in c.get("env") or []:
                name = env["name"].upper()
                if "PASSWORD" in name or ("TOKEN" in name and "FILE" not in name):
                    assert "valueFrom" in env and "secretKeyRef" in env["valueFrom"], (
                        f"{where}: {env['name']}"
                    )
                value = env.get("value", "")
                assert "password=" not in value.lower(), f"{where}: {env['name']}"
                if "://" in value and "@" in value:
                    # Credentials in URLs only through $(VAR) expansion of a secret-backed variable.
                    userinfo = value.split("://", 1)[1].split("@", 1)[0]
                    assert "$(" in userinfo, f"{where}: {env['name']} inlines credentials"


@pytest.mark.parametrize("rendering", NAMES)
def test_referenced_secrets_configmaps_and_claims_exist(rendering):
    objects = RENDERINGS[rendering]
    config_maps = set(by_kind(objects, "ConfigMap"))
    claims = set(by_kind(objects, "PersistentVolumeClaim"))
    secrets: dict[str, set[str]] = {}
    for where, spec, _ in _workloads(objects):
        for volume in spec.get("volumes") or []:
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, where
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, where
            if "secret" in volume:
                keys = {i["key"] for i in volume["secret"].get("items", [])}
                secrets.setdefault(volume["secret"]["secretName"], set()).update(keys)
        for c in containers(spec):
            for env in c.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    secrets.setdefault(ref["name"], set()).add(ref["key"])
    assert secrets == SECRET_KEYS


def test_secrets_example_documents_exactly_the_referenced_secrets():
    example = load_yaml_objects(BASE / "secrets.example.yaml")
    assert {o["metadata"]["name"]: set(o["stringData"]) for o in example} == SECRET_KEYS
    for secret in example:
        assert secret["kind"] == "Secret" and "data" not in secret
        assert all("CHANGE-ME" in v for v in secret["stringData"].values())


def test_arena_yaml_is_a_valid_application_config(monkeypatch, tmp_path):
    from content_arena.config import load_config

    for key in list(__import__("os").environ):
        if key.startswith("ARENA_"):
            monkeypatch.delenv(key)
    text = by_kind(kustomize("base"), "ConfigMap")["content-arena-config"]["data"]["arena.yaml"]
    path = tmp_path / "arena.yaml"
    path.write_text(text)
    config = load_config(path)
    assert config.home == "/var/lib/arena"
    assert config.mlflow.model_name == "content-filter"
    assert config.defender.operating_point.describe() == "fpr <= 0.10" and config.quality_gate.min_recall == 0.60


@pytest.mark.parametrize("rendering", NAMES)
def test_app_environment_contract(rendering):
    objects = RENDERINGS[rendering]
    api = by_kind(objects, "Deployment")["content-arena-api"]["spec"]["template"]["spec"]
    container = api["containers"][0]
    assert container["command"] == ["arena", "serve", "--host", "0.0.0.0", "--port", "8000"]
    env = {e["name"]: e for e in container["env"]}
    values = {k: e.get("value") for k, e in env.items()}
    assert (
        values["ARENA_STORAGE__URL"] == "postgresql+psycopg://arena:$(DB_PASSWORD)@postgres:5432/arena"
    )
    assert values["ARENA_QUEUE__URL"] == "redis://redis:6379/0"
    assert values["ARENA_MLFLOW__TRACKING_URI"] == "http://mlflow:5000"
    assert values["ARENA_LLM__HOST"] == "http://ollama:11434"
    assert values["ARENA_API__TOKENS_FILE"] == "/var/run/secrets/arena/tokens.json"
    assert values["ARENA_SERVING__INFERENCE_SERVICE"] == "content-filter"
    assert env["ARENA_SERVING__NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert values["ARENA_CONFIG"] == "/etc/arena/arena.yaml"
    # $(VAR) expansion only sees variables defined earlier in the list.
    names = [e["name"] for e in container["env"]]
    assert names.index("DB_PASSWORD") < names.index("ARENA_STORAGE__URL")
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/etc/arena", "/var/run/secrets/arena"} <= mounts
    assert api["serviceAccountName"] == "content-arena-api"
    # Services reachable by the names in the URLs.
    services = by_kind(objects, "Service")
    assert {"postgres", "redis", "mlflow", "ollama", "content-arena-api"} <= set(services)
    ports = {name: {p["port"] for p in svc["spec"]["ports"]} for name, svc in services.items()}
    assert ports["postgres"] == {5432} and ports["redis"] == {6379}
    assert ports["mlflow"] == {5000} and ports["ollama"] == {11434} and ports["content-arena-api"] == {8000}


@pytest.mark.parametrize("rendering", NAMES)
def test_mlflow_uses_postgres_and_a_pvc(rendering):
    objects = RENDERINGS[rendering]
    mlflow = by_kind(objects, "Deployment")["mlflow"]["spec"]["template"]["spec"]
    c = mlflow["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"]["value"].startswith(
        "postgresql+psycopg2://arena:$(DB_PASSWORD)@postgres"
    )
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "content-arena-db"
    assert not any("postgresql" in a for a in c["args"])  # no credentials on argv
    assert "--artifacts-destination=/mlartifacts" in c["args"]
    assert {"name": "artifacts", "persistentVolumeClaim": {"claimName": "mlflow-artifacts"}} in mlflow[
        "volumes"
    ]
    _, tag, _ = split_image(c["image"])
    assert tag.startswith("v3.")
    init = by_kind(objects, "ConfigMap")["postgres-init"]["data"]
    assert any("CREATE DATABASE mlflow" in sql for sql in init.values())


@pytest.mark.parametrize("rendering", NAMES)
def test_postgres_statefulset(rendering):
    sts = by_kind(RENDERINGS[rendering], "StatefulSet")["postgres"]
    c = sts["spec"]["template"]["spec"]["containers"][0]
    name, tag, _ = split_image(c["image"])
    assert name == "postgres" and tag.startswith("16.")
    env = {e["name"]: e for e in c["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "content-arena-db",
        "key": "password",
    }
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert sts["spec"]["serviceName"] == "postgres"
    redis = by_kind(RENDERINGS[rendering], "Deployment")["redis"]["spec"]["template"]["spec"]["containers"][0]
    assert split_image(redis["image"])[1].startswith("7.")


# ----------------------------------------------------------------------------- GPU


@pytest.mark.parametrize("rendering", NAMES)
def test_training_job_requests_a_gpu_on_gpu_nodes(rendering):
    job = by_kind(RENDERINGS[rendering], "Job")["content-arena-train"]
    assert job["spec"]["suspend"] is True  # a template: applying it starts nothing
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod.get(
        "tolerations", []
    )
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"name": "model-cache", "persistentVolumeClaim": {"claimName": "model-cache"}} in pod["volumes"]
    assert c["image"].split("/")[-1].startswith("content-arena-trainer:")
    assert c["command"][:2] == ["arena", "train"]
    assert pod["restartPolicy"] == "Never"


@pytest.mark.parametrize("rendering", ["kustomize:gpu", "chart:gpu"])
def test_gpu_variant_gives_ollama_a_gpu(rendering):
    pod = by_kind(RENDERINGS[rendering], "Deployment")["ollama"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert any(t["key"] == "nvidia.com/gpu" and t["effect"] == "NoSchedule" for t in pod["tolerations"])
    assert pod["nodeSelector"]


# ----------------------------------------------------------------------------- RBAC


@pytest.mark.parametrize("rendering", NAMES)
def test_api_rbac_is_least_privilege(rendering):
    objects = RENDERINGS[rendering]
    assert not {"ClusterRole", "ClusterRoleBinding"} & {o["kind"] for o in objects}
    role = by_kind(objects, "Role")["content-arena-api"]
    grants: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                grants.setdefault((group, resource), set()).update(rule["verbs"])
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        if "patch" in rule["verbs"]:
            assert rule["resourceNames"] == ["content-filter"]
    assert grants == {
        ("serving.kserve.io", "inferenceservices"): {"get", "list", "watch", "patch"},
        ("", "pods"): {"get", "list", "watch"},
        ("batch", "jobs"): {"create", "get", "list", "delete"},
    }
    binding = by_kind(objects, "RoleBinding")["content-arena-api"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "content-arena-api",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "content-arena-api", "namespace": "content-arena"}
    ]
    # Only the API mounts a service-account token.
    for where, spec, _ in _workloads(objects):
        if where == "Deployment/content-arena-api":
            assert spec["serviceAccountName"] == "content-arena-api"
        else:
            assert spec.get("automountServiceAccountToken") is False, where


# ----------------------------------------------------------------------------- network policies


def _allowed_components(policy):
    components = set()
    for rule in policy["spec"]["ingress"]:
        for peer in rule["from"]:
            for expr in (peer.get("podSelector") or {}).get("matchExpressions", []):
                assert expr["key"] == "app.kubernetes.io/component" and expr["operator"] == "In"
                components.update(expr["values"])
    return components


@pytest.mark.parametrize("rendering", NAMES)
def test_network_policies(rendering):
    objects = RENDERINGS[rendering]
    policies = by_kind(objects, "NetworkPolicy")
    deny = policies["default-deny-ingress"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}

    api = policies["allow-api-ingress"]["spec"]
    peers = api["ingress"][0]["from"]
    namespaces = {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in peers}
    assert namespaces == {"ingress-nginx", "monitoring"}
    prometheus = [p for p in peers if "podSelector" in p]
    assert (
        prometheus and prometheus[0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "prometheus"
    )
    assert api["ingress"][0]["ports"] == [{"port": 8000, "protocol": "TCP"}]

    expected = {
        "allow-postgres-from-app": ("postgres", 5432, {"api", "tracking", "trainer", "pipeline"}),
        "allow-redis-from-app": ("redis", 6379, {"api", "trainer", "pipeline"}),
        "allow-mlflow-from-app": ("mlflow", 5000, {"api", "trainer", "pipeline"}),
        "allow-ollama-from-app": ("ollama", 11434, {"api", "trainer"}),
    }
    for name, (target, port, components) in expected.items():
        spec = policies[name]["spec"]
        assert spec["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": target}
        assert spec["ingress"][0]["ports"] == [{"port": port, "protocol": "TCP"}]
        assert _allowed_components(policies[name]) == components
        for peer in spec["ingress"][0]["from"]:
            assert "namespaceSelector" not in peer  # same namespace only

    # The components named in policies are the ones the workloads carry.
    labels = {
        o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet", "Job")
    }
    assert {"api", "tracking", "trainer", "database", "queue", "llm"} <= labels
    isvc = by_kind(objects, "InferenceService")["content-filter"]
    assert isvc["spec"]["predictor"]["labels"]["app.kubernetes.io/component"] == "defender"
    assert (
        "serving.kserve.io/inferenceservice"
        in policies["allow-defender-ingress"]["spec"]["podSelector"]["matchLabels"]
    )


# ----------------------------------------------------------------------------- monitoring

DASHBOARD_METRICS = (
    "arena_evasion_rate",
    "arena_defender_f1",
    "arena_rounds_total",
    "arena_pipeline_runs_total",
    "arena_training_seconds",
    "arena_http_request_duration_seconds_bucket",
)


@pytest.mark.parametrize("rendering", NAMES)
def test_grafana_dashboard(rendering):
    cm = by_kind(RENDERINGS[rendering], "ConfigMap")["content-arena-grafana-dashboard"]
    assert cm["metadata"]["labels"].get("grafana_dashboard") == "1"
    dashboard = json.loads(cm["data"]["arena-dashboard.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for metric in DASHBOARD_METRICS:
        assert any(metric in e for e in exprs), metric
    assert any("strategy" in e and "model_version" in e and "arena_evasion_rate" in e for e in exprs)
    assert any("by (decision)" in e for e in exprs)
    assert any(e.startswith("histogram_quantile(") for e in exprs)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "content-arena"


@pytest.mark.parametrize("rendering", NAMES)
def test_service_monitor_scrapes_the_api_metrics(rendering):
    objects = RENDERINGS[rendering]
    sm = by_kind(objects, "ServiceMonitor")["content-arena-api"]
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    svc = by_kind(objects, "Service")["content-arena-api"]
    assert all(
        svc["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items()
    )
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["path"] == "/api/v1/metrics"
    assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}


def test_namespace_pod_security_labels():
    (ns,) = [o for o in kustomize("base") if o["kind"] == "Namespace"]
    labels = ns["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce"] in {"baseline", "restricted"}


def test_secrets_example_is_valid_yaml_with_namespace():
    docs = list(yaml.safe_load_all((BASE / "secrets.example.yaml").read_text()))
    assert all(d["metadata"]["namespace"] == "content-arena" for d in docs)
