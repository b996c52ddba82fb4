"""Schema validation: built-in kinds with kubernetes-validate, the InferenceService with KServe's CRD."""

from __future__ import annotations

import copy
import functools

import jsonschema
import kubernetes_validate
import pytest
import yaml

from .helpers import CRD_KINDS, K8S_VERSION, KSERVE_CRD, all_renderings, by_kind, kustomize, render_chart

RENDERINGS = dict(all_renderings())


def test_pinned_kubernetes_version_is_supported():
    versions = kubernetes_validate.utils.all_versions()
    assert K8S_VERSION in {kubernetes_validate.utils.major_minor(v) for v in versions}


def test_strict_validation_has_teeth():
    api = copy.deepcopy(by_kind(kustomize("base"), "Deployment")["content-arena-api"])
    api["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # typo: resource(s)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, K8S_VERSION, strict=True)


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_builtin_kinds_validate_strictly(rendering):
    """Every built-in object passes the Kubernetes OpenAPI schema with unknown fields refused.

    Only the CRD kinds may lack a schema, so a misspelt apiVersion cannot slip through as
    "unknown kind".
    """
    no_schema = set()
    for obj in RENDERINGS[rendering]:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            no_schema.add(obj["kind"])
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{rendering}: {obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}")
    assert no_schema <= CRD_KINDS
    assert "InferenceService" in no_schema


@functools.cache
def _isvc_schema() -> dict:
    if not KSERVE_CRD.is_file():
        pytest.skip(f"KServe CRD schema not found at {KSERVE_CRD} (the shared/ folder beside the repository)")
    crd = yaml.load(
        KSERVE_CRD.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    )
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    assert version["served"] and version["storage"]
    return version["schema"]["openAPIV3Schema"]


def _validate_isvc(obj: dict) -> None:
    schema = _isvc_schema()
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


def _isvcs():
    for name, objects in RENDERINGS.items():
        for obj in by_kind(objects, "InferenceService").values():
            yield name, obj


@pytest.mark.parametrize(("rendering", "isvc"), list(_isvcs()), ids=[n for n, _ in _isvcs()])
def test_inference_service_matches_kserve_crd(rendering, isvc):
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    _validate_isvc(isvc)
    predictor = isvc["spec"]["predictor"]
    # The steady state: no canary split declared (the rollout code adds it).
    assert "canaryTrafficPercent" not in predictor
    # Canary traffic splitting only exists in Knative ("Serverless") mode.
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] in {"Serverless", "Knative"}
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"  # where KServe reads STORAGE_URI from
    # The documented JSON patch addresses the model location as env/0.
    assert container["env"][0]["name"] == "STORAGE_URI"
    assert container["env"][0]["value"].startswith(("s3://", "pvc://"))
    assert "--model-dir" in container["command"] and "/mnt/models" in container["command"]
    assert [p["containerPort"] for p in container["ports"]] == [8080]


def _rollout_patch(isvc: dict, percent: int, storage_uri: str) -> dict:
    """What the rollout code does, as the JSON patch documented in the manifests: check that env[0]
    is STORAGE_URI, replace the model location, set the canary percentage."""
    operations = [
        {"op": "test", "path": "/spec/predictor/containers/0/env/0/name", "value": "STORAGE_URI"},
        {"op": "replace", "path": "/spec/predictor/containers/0/env/0/value", "value": storage_uri},
        {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": percent},
    ]
    patched = copy.deepcopy(isvc)
    for op in operations:
        *parents, last = op["path"].strip("/").split("/")
        node = patched
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key = int(last) if isinstance(node, list) else last
        if op["op"] == "test":
            assert node[key] == op["value"], f"JSON patch test failed at {op['path']}"
        else:
            node[key] = op["value"]
    return patched


@pytest.mark.parametrize("variant", ["base", "prod"])
def test_canary_patch_still_matches_kserve_crd(variant):
    isvc = by_kind(kustomize(variant), "InferenceService")["content-filter"]
    patched = _rollout_patch(isvc, 10, "s3://content-arena-models/content-filter/challenger-v7")
    _validate_isvc(patched)
    assert patched["spec"]["predictor"]["canaryTrafficPercent"] == 10
    promoted = _rollout_patch(patched, 100, "s3://content-arena-models/content-filter/challenger-v7")
    _validate_isvc(promoted)


def test_crd_schema_rejects_a_bad_canary_patch():
    """The CRD check has teeth: a non-integer canaryTrafficPercent is refused."""
    isvc = by_kind(kustomize("base"), "InferenceService")["content-filter"]
    bad = copy.deepcopy(isvc)
    bad["spec"]["predictor"]["canaryTrafficPercent"] = "ten"
    with pytest.raises(AssertionError, match="canaryTrafficPercent"):
        _validate_isvc(bad)


def test_crd_status_has_the_fields_the_rollout_code_reads():
    schema = _isvc_schema()
    component = schema["properties"]["status"]["properties"]["components"]["additionalProperties"][
        "properties"
    ]
    for field in ("latestReadyRevision", "latestRolledoutRevision", "previousRolledoutRevision", "traffic"):
        assert field in component


def test_chart_inference_service_with_pvc_storage_validates():
    objects = render_chart(
        {"defender": {"storageUri": "pvc://models/content-filter", "deploymentMode": "Knative"}}
    )
    isvc = by_kind(objects, "InferenceService")["content-filter"]
    _validate_isvc(isvc)
    assert isvc["spec"]["predictor"]["containers"][0]["env"][0]["value"] == "pvc://models/content-filter"
