"""The Helm chart: renders offline, mirrors the kustomize overlays, and its values schema bites."""

from __future__ import annotations

import json

import helm_python
import jsonschema
import pytest
import yaml

from .helpers import CHART, CHART_VALUES, RELEASE, by_kind, chart_values, kind_names, kustomize, render_chart

# The one intended difference between the chart and the kustomize renderings: the chart does not
# own its Namespace (Helm installs into the release namespace; `helm install --create-namespace`
# or skaffold's createNamespace creates it, with no Pod Security labels — label it by hand).
ONLY_IN_KUSTOMIZE = {("Namespace", "content-arena")}


@pytest.mark.parametrize("variant", sorted(CHART_VALUES))
def test_chart_renders_the_same_objects_as_kustomize(variant):
    chart = kind_names(render_chart(chart_values(variant)))
    kust = kind_names(kustomize(variant))
    assert chart == kust - ONLY_IN_KUSTOMIZE


def _normalise(obj: dict) -> dict:
    """Drop what legitimately differs (labels, selectors, annotations, namespace) between the
    chart (Helm labels, instance in selectors) and kustomize; keep everything else."""
    obj = json.loads(json.dumps(obj))
    obj["metadata"] = {"name": obj["metadata"]["name"]}
    spec = obj.get("spec") or {}
    if obj["kind"] in ("Deployment", "StatefulSet"):
        spec.pop("selector", None)
        spec["template"].pop("metadata", None)
    elif obj["kind"] == "Job":
        spec["template"].pop("metadata", None)
    elif obj["kind"] in ("Service", "PodDisruptionBudget", "ServiceMonitor"):
        spec.pop("selector", None)
    elif obj["kind"] == "InferenceService":
        spec["predictor"].pop("labels", None)
    elif obj["kind"] == "ConfigMap" and "arena.yaml" in obj.get("data", {}):
        obj["data"]["arena.yaml"] = yaml.safe_load(obj["data"]["arena.yaml"])
    elif obj["kind"] == "ConfigMap" and "arena-dashboard.json" in obj.get("data", {}):
        obj["data"]["arena-dashboard.json"] = json.loads(obj["data"]["arena-dashboard.json"])
    return obj


@pytest.mark.parametrize("variant", sorted(CHART_VALUES))
def test_chart_objects_match_kustomize_field_by_field(variant):
    """Not only the same names: the same specs (images, env, resources, probes, security,
    volumes, policies) once labels and selectors are set aside."""
    chart = {(o["kind"], o["metadata"]["name"]): _normalise(o) for o in render_chart(chart_values(variant))}
    kust = {(o["kind"], o["metadata"]["name"]): _normalise(o) for o in kustomize(variant)}
    for key, obj in chart.items():
        assert obj == kust[key], f"{variant}: {key} differs between the chart and kustomize"


def test_chart_selectors_match_their_pods():
    objects = render_chart()
    for name, svc in by_kind(objects, "Service").items():
        selector = svc["spec"]["selector"]
        pods = [
            w["spec"]["template"]["metadata"]["labels"]
            for w in objects
            if w["kind"] in ("Deployment", "StatefulSet")
        ]
        assert any(all(p.get(k) == v for k, v in selector.items()) for p in pods), name
    for deployment in by_kind(objects, "Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in deployment["spec"]["selector"]["matchLabels"].items())
        assert labels["app.kubernetes.io/instance"] == RELEASE


def test_gpu_values_add_gpus_to_ollama_only_when_enabled():
    plain = by_kind(render_chart(), "Deployment")["ollama"]["spec"]["template"]["spec"]
    assert "nodeSelector" not in plain
    assert "nvidia.com/gpu" not in plain["containers"][0]["resources"]["limits"]
    gpu = by_kind(render_chart({"gpu": {"enabled": True}}), "Deployment")["ollama"]["spec"]["template"][
        "spec"
    ]
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_image_overrides_follow_the_registry_and_tag_rules():
    objects = render_chart(
        {
            "image": {"registry": "registry.example.com/arena", "tag": "1.2.3"},
            "defender": {"image": {"repository": "other.example.com/defender", "tag": "9"}},
        }
    )
    api = by_kind(objects, "Deployment")["content-arena-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["image"] == "registry.example.com/arena/content-arena-api:1.2.3"
    isvc = by_kind(objects, "InferenceService")["content-filter"]["spec"]["predictor"]["containers"][0]
    assert isvc["image"] == "other.example.com/defender:9"
    default = by_kind(render_chart(), "Deployment")["content-arena-api"]["spec"]["template"]["spec"]
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert default["containers"][0]["image"] == f"ghcr.io/content-arena/content-arena-api:{app_version}"


def test_optional_parts_switch_off():
    objects = render_chart(
        {
            "networkPolicy": {"enabled": False},
            "grafanaDashboard": {"enabled": False},
            "api": {"serviceMonitor": {"enabled": False}, "autoscaling": {"enabled": False}},
        }
    )
    kinds = {o["kind"] for o in objects}
    assert not kinds & {"NetworkPolicy", "ServiceMonitor", "HorizontalPodAutoscaler"}
    assert "content-arena-grafana-dashboard" not in by_kind(objects, "ConfigMap")


# ----------------------------------------------------------------------------- values schema


def _schema() -> dict:
    return json.loads((CHART / "values.schema.json").read_text())


def test_values_schema_is_draft7_and_accepts_every_values_file():
    schema = _schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    with helm_python.Chart.load(CHART) as chart:
        for variant in CHART_VALUES:
            merged = chart.merge_values(chart_values(variant))
            jsonschema.Draft7Validator(schema).validate(merged)
            chart.validate_schema(chart_values(variant))


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"api": {"replicas": "two"}}, "replicas"),
        ({"api": {"replicas": 0}}, "replicas"),
        ({"postgres": {"image": "postgres:latest"}}, "image"),
        ({"redis": {"image": "redis"}}, "image"),
        ({"api": {"image": {"tag": "latest"}}}, "tag"),
        # null removes a default key in Helm's merge: limits must stay.
        ({"api": {"resources": {"limits": None}}}, "limits"),
        ({"defender": {"deploymentMode": "RawDeployment"}}, "deploymentMode"),
        ({"defender": {"storageUri": "/models/champion"}}, "storageUri"),
        ({"mlflow": {"resources": {"limits": {"memory": None}}}}, "memory"),
        ({"ollama": {"resources": {"requests": {"cpu": "lots"}}}}, "cpu"),
        ({"apiReplicas": 2}, "apiReplicas"),
    ],
)
def test_values_schema_rejects_bad_values(values, where):
    with helm_python.Chart.load(CHART) as chart:
        with pytest.raises(helm_python.HelmValuesError, match=where):
            chart.validate_schema(values)
        # Rendering (what `helm install` does) refuses them too.
        with pytest.raises(helm_python.HelmValuesError):
            chart.render(values, name=RELEASE, namespace="content-arena", is_install=True)


def test_chart_lints_clean():
    report = helm_python.lint(CHART, strict=True, kube_version="v1.31.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_chart_metadata():
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2" and meta["name"] == "content-arena" and meta["type"] == "application"
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert "content-arena-db" not in notes  # names come from values, not hard-coded
    assert (CHART / "templates" / "_helpers.tpl").is_file()
