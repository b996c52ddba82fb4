"""The defender InferenceService as data: where its model location is, the patches, its rollout status.

KServe reads a custom predictor's model location from the env var ``STORAGE_URI`` of the container
named ``kserve-container`` (a container has no ``storageUri`` field). Custom resources take no
strategic-merge patch and a JSON merge patch would replace the whole ``containers`` list, so every
change here is an RFC 6902 JSON patch whose first operations *test* that the container and the env
entry are where the patch expects them: if someone edited the object in between, the API server
refuses the whole patch instead of writing a model location into the wrong variable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
CONTAINER_NAME = "kserve-container"
STORAGE_URI_ENV = "STORAGE_URI"
CANARY_PATH = "/spec/predictor/canaryTrafficPercent"


class InferenceServiceShapeError(ValueError):
    """The InferenceService has no kserve-container with a STORAGE_URI env var."""


@dataclass(frozen=True)
class StorageLocation:
    container_index: int
    env_index: int
    value: str

    @property
    def container_path(self) -> str:
        return f"/spec/predictor/containers/{self.container_index}"

    @property
    def env_path(self) -> str:
        return f"{self.container_path}/env/{self.env_index}"


def storage_location(isvc: dict[str, Any] | None) -> StorageLocation:
    """Where ``STORAGE_URI`` sits in the predictor; the manifests' layout (0, 0) when no object is given."""
    if isvc is None:
        return StorageLocation(0, 0, "")
    containers = ((isvc.get("spec") or {}).get("predictor") or {}).get("containers") or []
    for ci, container in enumerate(containers):
        if container.get("name") != CONTAINER_NAME:
            continue
        for ei, env in enumerate(container.get("env") or []):
            if env.get("name") == STORAGE_URI_ENV:
                return StorageLocation(ci, ei, str(env.get("value", "")))
        raise InferenceServiceShapeError(f"container {CONTAINER_NAME!r} has no {STORAGE_URI_ENV} env var")
    raise InferenceServiceShapeError(f"the predictor has no container named {CONTAINER_NAME!r}")


def _guard(location: StorageLocation, expected_value: str | None = None) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": f"{location.container_path}/name", "value": CONTAINER_NAME},
        {"op": "test", "path": f"{location.env_path}/name", "value": STORAGE_URI_ENV},
    ]
    if expected_value is not None:
        ops.append({"op": "test", "path": f"{location.env_path}/value", "value": expected_value})
    return ops


def canary_patch(isvc: dict[str, Any] | None, storage_uri: str, percent: int) -> list[dict[str, Any]]:
    """Start a canary: the new model location and ``canaryTrafficPercent`` in one atomic patch."""
    location = storage_location(isvc)
    return [
        *_guard(location, location.value if isvc is not None else None),
        {"op": "replace", "path": f"{location.env_path}/value", "value": storage_uri},
        # "add" sets the member whether or not it exists (RFC 6902 §4.1).
        {"op": "add", "path": CANARY_PATH, "value": int(percent)},
    ]


def promote_patch(isvc: dict[str, Any], storage_uri: str) -> list[dict[str, Any]]:
    """Promote: drop ``canaryTrafficPercent`` so the latest revision takes 100 % of the traffic."""
    location = storage_location(isvc)
    ops = _guard(location, storage_uri)
    if canary_percent(isvc) is not None:
        ops.append({"op": "remove", "path": CANARY_PATH})
    return ops


def rollback_patch(isvc: dict[str, Any], storage_uri: str, previous_uri: str) -> list[dict[str, Any]]:
    """Roll back: ``canaryTrafficPercent: 0`` pins the traffic to the last rolled-out revision, and the
    previous model location is restored so no later revision serves the rejected model."""
    location = storage_location(isvc)
    return [
        *_guard(location, storage_uri),
        {"op": "replace", "path": f"{location.env_path}/value", "value": previous_uri},
        {"op": "add", "path": CANARY_PATH, "value": 0},
    ]


def canary_percent(isvc: dict[str, Any]) -> int | None:
    value = ((isvc.get("spec") or {}).get("predictor") or {}).get("canaryTrafficPercent")
    return None if value is None else int(value)


@dataclass(frozen=True)
class PredictorStatus:
    """``status.components.predictor`` plus the bits of the object needed to judge it."""

    generation: int
    observed_generation: int
    latest_created: str | None
    latest_ready: str | None
    latest_rolledout: str | None
    previous_rolledout: str | None
    traffic: tuple[dict[str, Any], ...] = ()
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, isvc: dict[str, Any]) -> PredictorStatus:
        status = isvc.get("status") or {}
        predictor = (status.get("components") or {}).get("predictor") or {}
        return cls(
            generation=int((isvc.get("metadata") or {}).get("generation") or 0),
            observed_generation=int(status.get("observedGeneration") or 0),
            latest_created=predictor.get("latestCreatedRevision"),
            latest_ready=predictor.get("latestReadyRevision"),
            latest_rolledout=predictor.get("latestRolledoutRevision"),
            previous_rolledout=predictor.get("previousRolledoutRevision"),
            traffic=tuple(predictor.get("traffic") or ()),
            conditions={c.get("type", ""): c for c in status.get("conditions") or []},
        )

    @property
    def up_to_date(self) -> bool:
        """The controller has seen the latest spec."""
        return self.observed_generation >= self.generation

    def percent_of(self, revision: str | None, *, latest: bool | None = None) -> int:
        total = 0
        for target in self.traffic:
            if target.get("revisionName") != revision:
                continue
            if latest is not None and bool(target.get("latestRevision")) is not latest:
                continue
            total += int(target.get("percent") or 0)
        return total

    def failure(self) -> str | None:
        """Why the latest revision cannot become ready, when KServe says so."""
        for kind in ("LatestDeploymentReady", "PredictorConfigurationReady"):
            condition = self.conditions.get(kind)
            if condition and condition.get("status") == "False":
                reason = condition.get("reason") or kind
                message = condition.get("message") or ""
                return f"{kind}=False: {reason}{': ' + message if message else ''}"
        return None

    def describe(self) -> str:
        split = ", ".join(
            f"{t.get('revisionName')}{'(latest)' if t.get('latestRevision') else ''}={t.get('percent')}%" for t in self.traffic
        )
        return (
            f"generation {self.generation} (observed {self.observed_generation}), created {self.latest_created}, "
            f"ready {self.latest_ready}, rolled out {self.latest_rolledout}, traffic [{split}]"
        )


def storage_uri_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(re.escape(prefix.rstrip("/")) + r"/v(\d+)/?$")


def version_from_storage_uri(prefix: str, uri: str | None) -> int | None:
    """The registry version in ``<prefix>/v<N>``, or None for a location the rollout did not write."""
    if not uri:
        return None
    match = storage_uri_pattern(prefix).match(uri)
    return int(match.group(1)) if match else None
