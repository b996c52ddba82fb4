"""The kustomize base and overlays: the offline renderer, and what each overlay changes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from .helpers import BASE, MANIFESTS, OVERLAYS, by_kind, kubectl_kustomize, kustomize, kustomize_dir
from .kustomize_render import UnsupportedFeature, build, identity, split_image


@pytest.mark.parametrize("variant", ["base", *OVERLAYS])
def test_renderer_matches_kubectl_kustomize(variant):
    """Where kubectl (with its embedded kustomize) exists, both renderings must be identical."""
    real = kubectl_kustomize(kustomize_dir(variant))
    if real is None:
        pytest.skip("kubectl is not installed: cannot cross-check the offline renderer against kustomize")
    mine = {identity(o): o for o in kustomize(variant)}
    theirs = {identity(o): o for o in real}
    assert set(mine) == set(theirs)
    for key, obj in mine.items():
        assert obj == theirs[key], f"{key} differs from kubectl kustomize"


@pytest.mark.parametrize("variant", ["base", *OVERLAYS])
def test_everything_lands_in_the_namespace(variant):
    for obj in kustomize(variant):
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == "content-arena"
            assert "namespace" not in obj["metadata"]
        else:
            assert obj["metadata"].get("namespace") == "content-arena", obj["metadata"]["name"]


def test_secrets_example_is_not_a_resource():
    kust = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert "secrets.example.yaml" not in kust["resources"]
    assert not any(o["kind"] == "Secret" for o in kustomize("base"))


def _images(objects):
    return {c["image"] for o in objects for c in _walk_containers(o)}


def _walk_containers(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers"):
                yield from value
            else:
                yield from _walk_containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_containers(item)


def test_base_pins_project_images_to_the_release():
    project = {i for i in _images(kustomize("base")) if i.startswith("ghcr.io/content-arena/")}
    assert project == {
        "ghcr.io/content-arena/content-arena-api:0.1.0",
        "ghcr.io/content-arena/content-arena-defender:0.1.0",
        "ghcr.io/content-arena/content-arena-trainer:0.1.0",
    }


def test_dev_overlay_is_small_and_tagged_dev():
    objects = kustomize("dev")
    project = {i for i in _images(objects) if i.startswith("ghcr.io/content-arena/")}
    assert project and all(i.endswith(":dev") for i in project)
    deployments = by_kind(objects, "Deployment")
    assert all(d["spec"].get("replicas", 1) == 1 for d in deployments.values())
    hpa = by_kind(objects, "HorizontalPodAutoscaler")["content-arena-api"]
    assert hpa["spec"]["maxReplicas"] == 1
    api = deployments["content-arena-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["resources"]["requests"] == {"cpu": "100m", "memory": "512Mi"}
    isvc = by_kind(objects, "InferenceService")["content-filter"]["spec"]["predictor"]
    assert isvc["minReplicas"] == 0
    # The JSON 6902 patch replaced resources without touching the rest of the container.
    assert isvc["containers"][0]["resources"]["limits"]["memory"] == "1Gi"
    assert isvc["containers"][0]["env"][0]["name"] == "STORAGE_URI"


def test_prod_overlay_has_ha_api():
    objects = kustomize("prod")
    api = by_kind(objects, "Deployment")["content-arena-api"]
    assert api["spec"]["replicas"] >= 2
    hpa = by_kind(objects, "HorizontalPodAutoscaler")["content-arena-api"]
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = by_kind(objects, "PodDisruptionBudget")["content-arena-api"]
    pod_labels = api["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items())
    assert api["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert by_kind(objects, "InferenceService")["content-filter"]["spec"]["predictor"]["minReplicas"] >= 2
    assert "PodDisruptionBudget" not in {o["kind"] for o in kustomize("base")}


def test_gpu_overlay_puts_ollama_and_training_on_gpus():
    objects = kustomize("gpu")
    ollama = by_kind(objects, "Deployment")["ollama"]["spec"]["template"]["spec"]
    resources = ollama["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1" and resources["requests"]["nvidia.com/gpu"] == "1"
    assert ollama["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in ollama["tolerations"]
    job = by_kind(objects, "Job")["content-arena-train"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in job["containers"][0]["env"]}
    assert env["ARENA_TRAINING__QUANTIZATION"] == "4bit"
    # The strategic merge kept the base's variables.
    assert "ARENA_STORAGE__URL" in env and "ARENA_CONFIG" in env
    # gpu builds on prod.
    assert "PodDisruptionBudget" in {o["kind"] for o in objects}
    base_ollama = by_kind(kustomize("prod"), "Deployment")["ollama"]["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in base_ollama["containers"][0]["resources"]["limits"]


def test_grafana_dashboard_is_generated_without_hash_suffix():
    cm = by_kind(kustomize("base"), "ConfigMap")["content-arena-grafana-dashboard"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert list(cm["data"]) == ["arena-dashboard.json"]


# ----------------------------------------------------------------------------- the renderer


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: c
          image: example.com:5000/team/app:1.0
          ports: [{containerPort: 8080}]
          env: [{name: A, value: "1"}, {name: B, value: "2"}, {name: C, value: "3"}]
          volumeMounts: [{name: v1, mountPath: /a}, {name: v2, mountPath: /b}]
      tolerations: [{key: k1, operator: Exists}]
"""


def test_strategic_merge_follows_kustomize_list_semantics(tmp_path):
    """Checked against kubectl kustomize v5.5: the patch's elements first (merged by key), then
    the original elements it does not mention; volumeMounts merge on mountPath; tolerations are
    replaced."""
    _write(
        tmp_path,
        {
            "d.yaml": DEPLOYMENT,
            "p.yaml": """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: x}
                spec:
                  template:
                    spec:
                      containers:
                        - name: c
                          env: [{name: Z, value: "9"}, {name: B, value: "22"}, {name: Y, value: "8"}]
                          volumeMounts: [{name: v3, mountPath: /b}]
                      tolerations: [{key: k2, operator: Exists}]
            """,
            "kustomization.yaml": "resources: [d.yaml]\npatches: [{path: p.yaml}]\n",
        },
    )
    (obj,) = build(tmp_path)
    pod = obj["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert [(e["name"], e["value"]) for e in container["env"]] == [
        ("Z", "9"),
        ("B", "22"),
        ("Y", "8"),
        ("A", "1"),
        ("C", "3"),
    ]
    assert container["volumeMounts"] == [{"name": "v3", "mountPath": "/b"}, {"name": "v1", "mountPath": "/a"}]
    assert pod["tolerations"] == [{"key": "k2", "operator": "Exists"}]
    assert container["image"] == "example.com:5000/team/app:1.0"
    if (real := kubectl_kustomize(tmp_path)) is not None:
        assert real == [obj]


def test_namespace_labels_images_replicas_and_json6902(tmp_path):
    _write(
        tmp_path,
        {
            "d.yaml": DEPLOYMENT,
            "j.yaml": """
                - op: add
                  path: /spec/template/spec/containers/0/env/-
                  value: {name: D, value: "4"}
                - op: remove
                  path: /spec/template/spec/tolerations
            """,
            "kustomization.yaml": """
                namespace: ns
                resources: [d.yaml]
                labels:
                  - pairs: {team: arena}
                    includeSelectors: false
                replicas: [{name: x, count: 3}]
                images:
                  - {name: example.com:5000/team/app, newName: registry.local/app, newTag: "2.0"}
                patches:
                  - path: j.yaml
                    target: {kind: Deployment, name: x}
            """,
        },
    )
    (obj,) = build(tmp_path)
    assert obj["metadata"] == {"name": "x", "namespace": "ns", "labels": {"team": "arena"}}
    assert obj["spec"]["selector"] == {"matchLabels": {"a": "b"}}
    assert obj["spec"]["template"]["metadata"]["labels"] == {"a": "b"}
    assert obj["spec"]["replicas"] == 3
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.local/app:2.0"
    assert container["env"][-1] == {"name": "D", "value": "4"}
    assert "tolerations" not in obj["spec"]["template"]["spec"]
    if (real := kubectl_kustomize(tmp_path)) is not None:
        assert real == [obj]


@pytest.mark.parametrize(
    "kustomization",
    [
        "resources: [d.yaml]\ncommonLabels: {a: b}\n",
        "resources: [d.yaml]\nnamePrefix: p-\n",
        "resources: [d.yaml]\nlabels: [{pairs: {a: b}, includeSelectors: true}]\n",
        "resources: [d.yaml]\nconfigMapGenerator: [{name: c, literals: [a=b]}]\n",
        "resources: [d.yaml]\npatches: [{path: bad.yaml}]\n",
        "resources: [d.yaml]\npatches: [{path: ports.yaml}]\n",
    ],
)
def test_renderer_refuses_what_it_does_not_implement(tmp_path, kustomization):
    _write(
        tmp_path,
        {
            "d.yaml": DEPLOYMENT,
            # A $patch directive, and a list whose merge strategy the renderer does not know.
            "bad.yaml": """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: x}
                spec:
                  template:
                    spec:
                      containers:
                        - name: c
                          env: [{$patch: replace}]
            """,
            "ports.yaml": """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: x}
                spec:
                  template:
                    spec:
                      containers:
                        - name: c
                          env: [{name: A, value: "1"}]
                          ports: [{containerPort: 80}]
            """,
            "kustomization.yaml": kustomization,
        },
    )
    with pytest.raises(UnsupportedFeature):
        build(tmp_path)


def test_strategic_merge_on_custom_resources_is_refused(tmp_path):
    _write(
        tmp_path,
        {
            "isvc.yaml": """
                apiVersion: serving.kserve.io/v1beta1
                kind: InferenceService
                metadata: {name: m}
                spec: {predictor: {minReplicas: 1}}
            """,
            "p.yaml": """
                apiVersion: serving.kserve.io/v1beta1
                kind: InferenceService
                metadata: {name: m}
                spec: {predictor: {minReplicas: 2}}
            """,
            "kustomization.yaml": "resources: [isvc.yaml]\npatches: [{path: p.yaml}]\n",
        },
    )
    with pytest.raises(UnsupportedFeature):
        build(tmp_path)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("redis:7.4.1-bookworm", ("redis", "7.4.1-bookworm", None)),
        ("ghcr.io/mlflow/mlflow:v3.9.0-full", ("ghcr.io/mlflow/mlflow", "v3.9.0-full", None)),
        ("localhost:5000/app", ("localhost:5000/app", None, None)),
        ("localhost:5000/app:1@sha256:" + "a" * 64, ("localhost:5000/app", "1", "sha256:" + "a" * 64)),
        ("busybox", ("busybox", None, None)),
    ],
)
def test_split_image(image, expected):
    assert split_image(image) == expected


def test_every_manifest_file_is_used_or_documented():
    """Catch YAML files that no kustomization references (except the secrets example)."""
    referenced: set[Path] = set()
    for kfile in MANIFESTS.rglob("kustomization.yaml"):
        kust = yaml.safe_load(kfile.read_text())
        for entry in kust.get("resources") or []:
            referenced.add((kfile.parent / entry).resolve())
        for patch in kust.get("patches") or []:
            referenced.add((kfile.parent / patch["path"]).resolve())
    unused = {
        p.relative_to(MANIFESTS).as_posix()
        for p in MANIFESTS.rglob("*.yaml")
        if p.name != "kustomization.yaml" and p.resolve() not in referenced
    }
    assert unused == {"base/secrets.example.yaml"}
