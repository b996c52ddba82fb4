"""Fixtures of the delivery tests (pipeline, components, serving, rollout)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
KSERVE_CRD = SHARED / "schemas" / "kserve" / "serving.kserve.io_inferenceservices.yaml"
DEFENDER_ISVC = REPO / "manifests" / "base" / "defender-inferenceservice.yaml"
NAMESPACE = "content-arena"

# components/ and pipelines/ live at the repository root, outside the installed package.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@functools.cache
def _isvc_schema() -> dict[str, Any] | None:
    if not KSERVE_CRD.is_file():
        return None
    crd = yaml.load(KSERVE_CRD.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    return version["schema"]["openAPIV3Schema"]


@pytest.fixture(scope="session")
def isvc_errors():
    """A function listing the KServe CRD schema violations of an InferenceService object.

    Skips when KServe's CRD is not in the shared/ folder beside the repository (it is not
    committed into the project).
    """
    import jsonschema

    schema = _isvc_schema()
    if schema is None:
        pytest.skip(f"KServe CRD schema not found at {KSERVE_CRD} (the shared/ folder beside the repository)")
    validator = jsonschema.Draft7Validator(schema)

    def errors(obj: dict[str, Any]) -> list[str]:
        found = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
        return [f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in found]

    return errors


def defender_isvc() -> dict[str, Any]:
    """The InferenceService of manifests/base, as kustomize would place it in the namespace."""
    obj = yaml.safe_load(DEFENDER_ISVC.read_text(encoding="utf-8"))
    obj["metadata"]["namespace"] = NAMESPACE
    return obj
