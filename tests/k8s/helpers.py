"""Shared helpers for the offline Kubernetes delivery tests (tests/k8s)."""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .kustomize_render import build

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
BASE = MANIFESTS / "base"
OVERLAYS = ("dev", "prod", "gpu")
CHART = REPO / "charts" / "content-arena"
IMAGES_DIR = REPO / "images"
# KServe's CRD schemas live beside the repository (the workplace's shared/ folder); they are not
# committed into the project.
SHARED = REPO.parent / "shared"
KSERVE_CRD = SHARED / "schemas" / "kserve" / "serving.kserve.io_inferenceservices.yaml"

# The Kubernetes minor version every manifest is validated against (kubernetes-validate schemas).
K8S_VERSION = "1.31"
NAMESPACE = "content-arena"
RELEASE = "content-arena"

# Kinds that come from CRDs: kubernetes-validate has no schema for them; InferenceService is
# validated against KServe's own CRD, ServiceMonitor and PrometheusRule structurally.
CRD_KINDS = {"InferenceService", "ServiceMonitor", "PrometheusRule"}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

# The chart and the overlays are meant to agree; these values files mirror the overlays.
CHART_VALUES = {
    "base": [],
    "dev": ["values-dev.yaml"],
    "prod": ["values-prod.yaml"],
    "gpu": ["values-prod.yaml", "values-gpu.yaml"],
}


def kustomize_dir(variant: str) -> Path:
    return BASE if variant == "base" else MANIFESTS / "overlays" / variant


@functools.cache
def _kustomize_cached(variant: str) -> tuple[dict[str, Any], ...]:
    return tuple(build(kustomize_dir(variant)))


def kustomize(variant: str) -> list[dict[str, Any]]:
    """Objects of manifests/base ("base") or an overlay, rendered offline (a fresh copy)."""
    return copy.deepcopy(list(_kustomize_cached(variant)))


def kubectl_kustomize(path: Path) -> list[dict[str, Any]] | None:
    """The same rendering by kubectl's embedded kustomize, or None when kubectl is absent."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    done = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed: {done.stderr}")
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def chart_values(variant: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in CHART_VALUES[variant]:
        values = deep_merge(values, yaml.safe_load((CHART / name).read_text(encoding="utf-8")) or {})
    return values


@functools.cache
def _render_chart_cached(key: str) -> tuple[dict[str, Any], ...]:
    import helm_python

    values = yaml.safe_load(key)
    with helm_python.Chart.load(CHART) as chart:
        rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt") or not text.strip():
            continue
        objects.extend(d for d in yaml.safe_load_all(text) if d)
    return tuple(objects)


def render_chart(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Objects the chart renders offline with ``values`` over its defaults (a fresh copy)."""
    return copy.deepcopy(list(_render_chart_cached(yaml.safe_dump(values or {}, sort_keys=True))))


def all_renderings() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Every rendering the tests hold to the same rules: kustomize base/overlays and the chart."""
    yield "kustomize:base", kustomize("base")
    for overlay in OVERLAYS:
        yield f"kustomize:{overlay}", kustomize(overlay)
    for variant in CHART_VALUES:
        yield f"chart:{variant}", render_chart(chart_values(variant))


def pod_specs(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(where, pod-spec-like mapping, long_running) for each workload in ``obj``.

    An InferenceService's predictor is a PodSpec with extra fields; Knative only allows
    container-level security contexts there, so it is checked container by container.
    """
    kind = obj["kind"]
    name = obj["metadata"]["name"]
    if kind in POD_TEMPLATE_KINDS:
        yield f"{kind}/{name}", obj["spec"]["template"]["spec"], kind != "Job"
    elif kind == "CronJob":
        yield f"{kind}/{name}", obj["spec"]["jobTemplate"]["spec"]["template"]["spec"], False
    elif kind == "InferenceService":
        for component in ("predictor", "transformer", "explainer"):
            spec = obj["spec"].get(component)
            if spec and spec.get("containers"):
                yield f"{kind}/{name}.{component}", spec, True


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def kind_names(objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objects}
