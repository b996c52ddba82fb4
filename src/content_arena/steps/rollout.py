"""rollout: canary rollout of a registered version to the defender InferenceService, judged on live metrics."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from content_arena.config import ArenaConfig
from content_arena.model_registry import CHAMPION
from content_arena.steps import aliases
from content_arena.steps.workspace import Workspace

log = logging.getLogger(__name__)


def storage_uri_for(cfg: ArenaConfig, version: int) -> str:
    """Where a published version lives for KServe: ``<serving.storage_uri_prefix>/v<version>``."""
    return f"{cfg.serving.storage_uri_prefix.rstrip('/')}/v{int(version)}"


def publish_model(cfg: ArenaConfig, version: int, *, pvc_root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Copy a registered version to the storage KServe's storage-initializer reads.

    ``pvc://<claim>/<path>`` prefixes are written through the claim mounted at
    ``<pvc_root>/<claim>`` (the pipeline's rollout step mounts it); other URIs (``s3://``, ``gs://``,
    ``file://``...) through MLflow's artifact repositories. Already published versions are kept.
    """
    from content_arena.defender import resolve_model_dir
    from content_arena.defender.artifacts import verify_model_dir

    uri = storage_uri_for(cfg, version)
    registered = f"models:/{cfg.mlflow.model_name}/{int(version)}"
    if uri.startswith("pvc://"):
        if pvc_root is None:
            raise ValueError(f"{uri} is on a PersistentVolumeClaim: give the directory where claims are mounted (pvc_root)")
        claim, _, sub_path = uri[len("pvc://") :].partition("/")
        mount = Path(pvc_root) / claim
        if not mount.is_dir():
            raise FileNotFoundError(f"claim {claim!r} is not mounted at {mount}")
        target = mount / sub_path
        if target.is_dir():
            verify_model_dir(target)
            return {"storage_uri": uri, "path": str(target), "copied": False}
        local = resolve_model_dir(registered, cfg)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            for item in local.iterdir():
                if item.is_file():
                    shutil.copy2(item, staging / item.name)
            verify_model_dir(staging)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return {"storage_uri": uri, "path": str(target), "copied": True}
    local = resolve_model_dir(registered, cfg)
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    get_artifact_repository(uri).log_artifacts(str(local))
    return {"storage_uri": uri, "path": None, "copied": True}


def roll_out(
    cfg: ArenaConfig,
    version: int,
    *,
    previous_version: int | None = None,
    canary_percent: int | None = None,
    dry_run: bool = False,
    publish: bool = True,
    pvc_root: str | os.PathLike[str] | None = None,
    api_client: Any = None,
    sleep: Any = None,
) -> dict[str, Any]:
    """Canary rollout of registered ``version`` to the defender InferenceService, judged on live metrics.

    Publishes the version to ``<serving.storage_uri_prefix>/v<version>``, patches the
    InferenceService to it with ``canaryTrafficPercent`` (``serving.canary_traffic_percent`` unless
    ``canary_percent``), waits for the canary revision, judges it on Prometheus, then promotes or
    rolls back (see :mod:`content_arena.rollout`). The registry follows the outcome: promoted, the
    version is champion; rolled back, the ``champion`` alias returns to ``previous_version`` (given,
    or read from the storage URI the service served) and the version is marked rejected.
    ``dry_run`` contacts nothing and returns the patch that would be sent.

    Args:
        cfg: The configuration (``serving.*``).
        version: The registered version to roll out.
        previous_version: The version to restore as champion on rollback.
        canary_percent: The canary's traffic share (default ``serving.canary_traffic_percent``).
        dry_run: Only compute the patch.
        publish: Copy the version to its storage URI first.
        pvc_root: Where claims are mounted, for ``pvc://`` storage.
        api_client: A Kubernetes API client (default: in-cluster or kubeconfig).
        sleep: The wait function (tests pass a fake clock).

    Returns:
        The outcome, reasons, revisions, metrics and patches.
    """
    from content_arena import rollout as canary

    percent = int(canary_percent if canary_percent is not None else cfg.serving.canary_traffic_percent)
    if not 0 < percent < 100:
        raise ValueError(f"canary percent must be between 1 and 99, got {percent}")
    uri = storage_uri_for(cfg, version)
    if dry_run:
        result = {
            "outcome": "dry_run",
            "version": int(version),
            "storage_uri": uri,
            "namespace": cfg.serving.namespace,
            "inference_service": cfg.serving.inference_service,
            "canary_traffic_percent": percent,
            "patch": canary.canary_patch(None, uri, percent),
        }
        return result
    published = publish_model(cfg, version, pvc_root=pvc_root) if publish else None
    api = canary.custom_objects_api(api_client)
    prometheus = canary.PrometheusClient(cfg.serving.prometheus_url) if cfg.serving.prometheus_url else None
    judge = canary.CanaryJudge(
        prometheus,
        namespace=cfg.serving.namespace,
        max_error_rate=cfg.serving.max_canary_error_rate,
        max_toxic_rate_drift=cfg.serving.max_toxic_rate_drift,
        window_s=cfg.serving.canary_observation_s,
    )
    runner = canary.CanaryRollout(
        api,
        judge,
        namespace=cfg.serving.namespace,
        name=cfg.serving.inference_service,
        canary_percent=percent,
        ready_timeout_s=cfg.serving.ready_timeout_s,
        observation_s=cfg.serving.canary_observation_s,
        **({"sleep": sleep} if sleep is not None else {}),
        alert_check=canary.prometheus_alert_check(prometheus) if prometheus is not None else None,
    )
    outcome = runner.run(uri)
    if previous_version is None and outcome.previous_storage_uri:
        previous_version = canary.version_from_storage_uri(cfg.serving.storage_uri_prefix, outcome.previous_storage_uri)
    registry_changes = _follow_outcome(cfg, int(version), previous_version, outcome.promoted)
    result = {**outcome.to_dict(), "version": int(version), "previous_version": previous_version,
              "published": published, "registry": registry_changes}
    return result


def _follow_outcome(cfg: ArenaConfig, version: int, previous_version: int | None, promoted: bool) -> dict[str, Any]:
    """Aliases and statuses after a rollout: the served model and the ``champion`` alias agree."""
    ws = Workspace.open(cfg)
    try:
        if promoted:
            if ws.registry.version_for(CHAMPION) != version:
                aliases.set_champion(ws, version, previous_version)
            return {"champion": version}
        ws.registry.set_version_tag(version, "rollout", "rolled_back")
        if previous_version is None:
            message = (f"the service is back on its previous model, but which registered version that is is unknown: "
                       f"the registry is unchanged (champion v{ws.registry.version_for(CHAMPION)}); pass previous_version")
            log.warning(message)
            return {"champion": ws.registry.version_for(CHAMPION), "warning": message}
        aliases.roll_back(ws, version, previous_version)
        return {"champion": previous_version, "rejected": version}
    finally:
        ws.close()
