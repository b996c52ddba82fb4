"""Canary rollout of a registered defender version to the KServe InferenceService.

The only part of Content Arena that talks to Kubernetes. Importing this package does not import the
``kubernetes`` client; starting a rollout does.
"""

from content_arena.rollout.canary import CanaryRollout, RolloutError, RolloutResult
from content_arena.rollout.isvc import (
    InferenceServiceShapeError,
    PredictorStatus,
    canary_patch,
    promote_patch,
    rollback_patch,
    storage_location,
    version_from_storage_uri,
)
from content_arena.rollout.kube import custom_objects_api
from content_arena.rollout.prometheus import (
    CanaryJudge,
    PrometheusClient,
    PrometheusError,
    Verdict,
    prometheus_alert_check,
)

__all__ = [
    "CanaryJudge",
    "CanaryRollout",
    "InferenceServiceShapeError",
    "PredictorStatus",
    "PrometheusClient",
    "PrometheusError",
    "RolloutError",
    "RolloutResult",
    "Verdict",
    "canary_patch",
    "custom_objects_api",
    "prometheus_alert_check",
    "promote_patch",
    "rollback_patch",
    "storage_location",
    "version_from_storage_uri",
]
