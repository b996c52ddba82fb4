"""Canary rollout of a new model version to the defender InferenceService (KServe, Serverless mode).

1. Read the InferenceService; remember the model location it serves and the revision that carries
   its traffic (``latestRolledoutRevision``: the champion revision).
2. One JSON patch: the challenger's ``STORAGE_URI`` and ``canaryTrafficPercent: N``. KServe creates
   a new revision and, once it is ready, sends it N % of the traffic (the rest stays on the
   champion revision).
3. Watch ``status.components.predictor`` until the new revision is the latest ready one and carries
   N % (``latestReadyRevision``, ``traffic``), or give up after ``ready_timeout_s``.
4. Let it serve for ``observation_s``, then judge it on Prometheus (:class:`CanaryJudge`). With an
   ``alert_check`` (e.g. :func:`~content_arena.rollout.prometheus.prometheus_alert_check`), the window
   is watched every ``alert_poll_s``: an alert labelled ``rollback="true"`` that starts firing during
   the rollout rolls the canary back at once, whatever the judge would say.
5. Healthy: remove ``canaryTrafficPercent`` — the new revision takes 100 % and becomes
   ``latestRolledoutRevision``. Otherwise (including a timeout, a failed revision or no way to
   judge): ``canaryTrafficPercent: 0`` with the previous ``STORAGE_URI`` restored — KServe pins all
   traffic to the last revision rolled out at 100 %, the champion revision (its ``prev`` target;
   ``previousRolledoutRevision`` when the rolled-back revision had already been promoted).

Only this package talks to Kubernetes (the official client; JSON patches are sent with
``application/json-patch+json``, which ``CustomObjectsApi.patch_namespaced_custom_object`` cannot
do: it always sends a merge patch).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from content_arena.rollout.isvc import (
    GROUP,
    PLURAL,
    VERSION,
    PredictorStatus,
    canary_patch,
    canary_percent,
    promote_patch,
    rollback_patch,
    storage_location,
)
from content_arena.rollout.prometheus import CanaryJudge, Verdict

log = logging.getLogger(__name__)

DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
# canaryTrafficPercent splits traffic between Knative revisions; KServe ignores it in other modes.
CANARY_MODES = {"serverless", "knative"}
FIELD_MANAGER = "content-arena-rollout"


class RolloutError(RuntimeError):
    """The rollout could not start or could not finish its promote / rollback patch."""


class _NotReady(Exception):
    def __init__(self, message: str, status: PredictorStatus | None):
        super().__init__(message)
        self.status = status


@dataclass
class RolloutResult:
    outcome: str  # "promoted" | "rolled_back"
    storage_uri: str
    previous_storage_uri: str
    canary_percent: int
    champion_revision: str | None = None
    canary_revision: str | None = None
    reasons: list[str] = field(default_factory=list)
    verdict: Verdict | None = None
    confirmed: bool = False
    patches: list[list[dict[str, Any]]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def promoted(self) -> bool:
        return self.outcome == "promoted"

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "storage_uri": self.storage_uri,
            "previous_storage_uri": self.previous_storage_uri,
            "canary_percent": self.canary_percent,
            "champion_revision": self.champion_revision,
            "canary_revision": self.canary_revision,
            "reasons": list(self.reasons),
            "verdict": self.verdict.to_dict() if self.verdict else None,
            "confirmed": self.confirmed,
            "patches": self.patches,
            "seconds": round(self.seconds, 2),
        }


class CanaryRollout:
    """Drives one canary rollout of the InferenceService ``namespace/name`` (see the module docstring)."""

    def __init__(
        self,
        api: Any,
        judge: CanaryJudge,
        *,
        namespace: str,
        name: str,
        canary_percent: int,
        ready_timeout_s: float,
        observation_s: float,
        sleep: Callable[[float], None] = time.sleep,
        max_watch_s: int = 60,
        alert_check: Callable[[float], list[str]] | None = None,
        alert_poll_s: float = 15.0,
    ):
        if not 0 < canary_percent < 100:
            raise ValueError(f"canary_percent must be between 1 and 99, got {canary_percent}")
        self.api = api  # kubernetes.client.CustomObjectsApi
        self.judge = judge
        self.namespace = namespace
        self.name = name
        self.percent = int(canary_percent)
        self.ready_timeout_s = ready_timeout_s
        self.observation_s = observation_s
        self.sleep = sleep
        self.max_watch_s = max_watch_s
        # Called with the rollout's start (unix time): names of the alerts firing since then.
        self.alert_check = alert_check
        self.alert_poll_s = max(1.0, float(alert_poll_s))

    # -- API calls ----------------------------------------------------------------------------------

    def get(self) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.name)
        except ApiException as exc:
            raise RolloutError(
                f"reading InferenceService {self.namespace}/{self.name} failed (HTTP {exc.status}): {_api_message(exc)}"
            ) from exc
        except HTTPError as exc:
            raise RolloutError(f"the Kubernetes API is unreachable: {exc}") from exc

    def patch(self, operations: list[dict[str, Any]]) -> dict[str, Any]:
        """Apply an RFC 6902 JSON patch (its ``test`` operations make it all-or-nothing)."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api.api_client.call_api(
                "/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}",
                "PATCH",
                path_params={"group": GROUP, "version": VERSION, "namespace": self.namespace, "plural": PLURAL,
                             "name": self.name},
                query_params=[("fieldManager", FIELD_MANAGER)],
                header_params={"Content-Type": "application/json-patch+json", "Accept": "application/json"},
                body=operations,
                response_type="object",
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _preload_content=True,
            )
        except ApiException as exc:
            if exc.status == 422:
                raise RolloutError(
                    f"InferenceService {self.namespace}/{self.name} refused the patch (HTTP 422): it changed during "
                    f"the rollout or the patch is invalid; nothing was written. {_api_message(exc)}"
                ) from exc
            raise RolloutError(
                f"patching InferenceService {self.namespace}/{self.name} failed (HTTP {exc.status}): {_api_message(exc)}"
            ) from exc

    def _wait(self, done: Callable[[PredictorStatus], bool], timeout_s: float, what: str) -> PredictorStatus:
        """Watch the InferenceService until ``done(status)``; raise _NotReady on timeout."""
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        deadline = time.monotonic() + timeout_s
        obj = self.get()
        while True:
            status = PredictorStatus.of(obj)
            if done(status):
                return status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _NotReady(f"{what} not seen within {timeout_s:g}s (last status: {status.describe()})", status)
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.api.list_namespaced_custom_object,
                    GROUP, VERSION, self.namespace, PLURAL,
                    field_selector=f"metadata.name={self.name}",
                    resource_version=obj["metadata"].get("resourceVersion"),
                    timeout_seconds=max(1, math.ceil(min(remaining, self.max_watch_s))),
                    _request_timeout=min(remaining, self.max_watch_s) + 10,
                ):
                    kind = event.get("type")
                    if kind == "DELETED":
                        raise RolloutError(f"InferenceService {self.namespace}/{self.name} was deleted during the rollout")
                    if kind in ("ADDED", "MODIFIED"):
                        obj = event["object"]
                        status = PredictorStatus.of(obj)
                        if done(status):
                            return status
                    if time.monotonic() >= deadline:
                        break
            except ApiException as exc:
                if exc.status != 410:  # 410 Gone: our resourceVersion is too old; read again
                    raise
            finally:
                stream.stop()
            obj = self.get()

    # -- the rollout --------------------------------------------------------------------------------

    def run(self, storage_uri: str) -> RolloutResult:
        started = time.monotonic()
        started_at = time.time()
        isvc = self.get()
        self._check_mode(isvc)
        previous_uri = storage_location(isvc).value
        if previous_uri == storage_uri:
            raise RolloutError(f"{self.namespace}/{self.name} already serves {storage_uri}")
        in_flight = canary_percent(isvc)
        if in_flight is not None and 0 < in_flight < 100:
            raise RolloutError(
                f"{self.namespace}/{self.name} has canaryTrafficPercent {in_flight}: another rollout is in progress"
            )
        before = PredictorStatus.of(isvc)
        result = RolloutResult(
            outcome="rolled_back",
            storage_uri=storage_uri,
            previous_storage_uri=previous_uri,
            canary_percent=self.percent,
            champion_revision=before.latest_rolledout or before.latest_ready,
        )
        operations = canary_patch(isvc, storage_uri, self.percent)
        patched = self.patch(operations)
        result.patches.append(operations)
        generation = int(patched["metadata"].get("generation") or 0)
        log.info("canary %s → %s at %d%% (generation %d)", previous_uri, storage_uri, self.percent, generation)

        def canary_ready(status: PredictorStatus) -> bool:
            if status.observed_generation < generation:
                return False
            failure = status.failure()
            if failure and status.latest_created != before.latest_created:
                raise _NotReady(f"canary revision {status.latest_created} failed: {failure}", status)
            return (
                status.latest_created not in (None, before.latest_created)
                and status.latest_ready == status.latest_created
                and status.percent_of(status.latest_ready, latest=True) == self.percent
            )

        try:
            ready = self._wait(canary_ready, self.ready_timeout_s, f"a ready canary revision with {self.percent}% of the traffic")
        except _NotReady as exc:
            if exc.status is not None and exc.status.latest_created != before.latest_created:
                result.canary_revision = exc.status.latest_created
            return self._rollback(result, [str(exc)], started)
        result.canary_revision = ready.latest_ready
        log.info("canary revision %s ready; observing for %ss", result.canary_revision, self.observation_s)
        firing = self._observe(started_at)
        if firing:
            return self._rollback(result, [f"alert firing during the rollout: {', '.join(firing)}"], started)
        assert result.canary_revision is not None
        verdict = self.judge.judge(result.canary_revision, result.champion_revision or "")
        result.verdict = verdict
        if verdict.healthy:
            return self._promote(result, verdict.reasons, started)
        return self._rollback(result, verdict.reasons, started)

    def _observe(self, started_at: float) -> list[str]:
        """Wait ``observation_s``; with an alert check, in steps of ``alert_poll_s``, returning early with the
        names of the alerts that fired. Without one, a single sleep."""
        if self.alert_check is None:
            if self.observation_s > 0:
                self.sleep(self.observation_s)
            return []
        remaining = float(self.observation_s)
        while remaining > 0:
            step = min(self.alert_poll_s, remaining)
            self.sleep(step)
            remaining -= step
            firing = self._firing(started_at)
            if firing:
                return firing
        return self._firing(started_at) if self.observation_s <= 0 else []

    def _firing(self, started_at: float) -> list[str]:
        assert self.alert_check is not None
        try:
            return list(self.alert_check(started_at))
        except Exception as exc:  # the judge still decides; an alert source that is down blocks nothing
            log.warning("could not read firing alerts: %s: %s", type(exc).__name__, exc)
            return []

    def _check_mode(self, isvc: dict[str, Any]) -> None:
        annotation = ((isvc.get("metadata") or {}).get("annotations") or {}).get(DEPLOYMENT_MODE_ANNOTATION)
        mode = annotation or (isvc.get("status") or {}).get("deploymentMode")
        if mode and mode.lower() not in CANARY_MODES:
            raise RolloutError(
                f"{self.namespace}/{self.name} runs in KServe {mode} mode, where canaryTrafficPercent is ignored: "
                "canary traffic splitting by revision needs Serverless (Knative) mode"
            )

    def _promote(self, result: RolloutResult, reasons: list[str], started: float) -> RolloutResult:
        canary = result.canary_revision
        self._finish(
            result, "promoted", reasons, promote_patch(self.get(), result.storage_uri),
            lambda status: status.latest_rolledout == canary and status.percent_of(canary) == 100,
            f"revision {canary} at 100%", started,
        )
        log.info("promoted %s (revision %s)", result.storage_uri, canary)
        return result

    def _rollback(self, result: RolloutResult, reasons: list[str], started: float) -> RolloutResult:
        champion = result.champion_revision
        self._finish(
            result, "rolled_back", reasons, rollback_patch(self.get(), result.storage_uri, result.previous_storage_uri),
            lambda status: status.percent_of(champion) == 100,
            f"all traffic back on revision {champion}", started,
        )
        log.warning("rolled back to %s (revision %s): %s", result.previous_storage_uri, champion, "; ".join(reasons))
        return result

    def _finish(self, result: RolloutResult, outcome: str, reasons: list[str], operations: list[dict[str, Any]],
                settled: Callable[[PredictorStatus], bool], what: str, started: float) -> None:
        """Apply the promote / rollback patch, then wait (bounded) until the controller shows it done."""
        patched = self.patch(operations)
        result.patches.append(operations)
        result.outcome = outcome
        result.reasons = list(reasons)
        generation = int(patched["metadata"].get("generation") or 0)
        try:
            self._wait(lambda status: status.observed_generation >= generation and settled(status),
                       self.ready_timeout_s, what)
            result.confirmed = True
        except _NotReady as exc:
            result.reasons.append(f"{outcome.replace('_', ' ')}: patched but not confirmed: {exc}")
        result.seconds = time.monotonic() - started


def _api_message(exc: Any) -> str:
    import json

    try:
        return json.loads(exc.body).get("message") or str(exc.reason)
    except (TypeError, ValueError, AttributeError):
        return str(getattr(exc, "reason", exc))
