"""MLflow tracking and the model registry (``content-filter`` with aliases ``champion`` / ``challenger``).

Everything goes through one ``MlflowClient`` bound to the configured URIs, never MLflow's global
active-run state, so the API, the CLI and pipeline components can share a process.

MLflow failing (a tracking server that is down, refuses or times out) surfaces as one
:class:`RegistryError` that names the server and the operation, never as "no such model": a lookup
answers None / [] only when MLflow itself says the model or alias does not exist. The MLflow client
retries HTTP requests first: ``mlflow.http_retries``, ``mlflow.http_backoff_factor`` and
``mlflow.http_timeout_s`` set MLflow's ``MLFLOW_HTTP_REQUEST_*`` variables, which its client reads on
every request (process-wide: MLflow has no per-client setting).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from content_arena.config import ArenaConfig, load_config
from content_arena.defender.artifacts import ModelNotFound, verify_model_dir

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


# What MLflow answers for a registered model (RESOURCE_DOES_NOT_EXIST) or an alias (INVALID_PARAMETER_VALUE)
# that does not exist. Anything else (a connection refused, a timeout, a 5xx) is a failure, not "absent".
_ABSENT = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


class RegistryError(RuntimeError):
    """The registry could not be reached or refused an operation."""


def _is_absent(exc: BaseException) -> bool:
    return getattr(exc, "error_code", None) in _ABSENT


def _redact(uri: str) -> str:
    """The URI without a user:password part."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))


def _reason(exc: BaseException) -> str:
    message = str(getattr(exc, "message", None) or exc).strip()
    lowered = message.lower()
    if "connection refused" in lowered or "failed to establish a new connection" in lowered:
        return "connection refused"
    if "failed with timeout exception" in lowered or "read timed out" in lowered:
        return "timed out"
    first = message.splitlines()[0] if message else type(exc).__name__
    return first if len(first) <= 300 else first[:297] + "..."


@contextmanager
def _mlflow_call(where: str, doing: str) -> Iterator[None]:
    """Turn an MLflow failure into one RegistryError: ``MLflow at <where> failed while <doing>: <reason>``."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        raise RegistryError(f"MLflow at {_redact(where)} failed while {doing}: {_reason(exc)}") from exc


@dataclass
class RunTracker:
    """Logs params and metrics to one MLflow run (implements ``training.Tracker``)."""

    client: Any
    run_id: str
    artifact_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    where: str = "the tracking URI"

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        with _mlflow_call(self.where, f"logging params to run {self.run_id}"):
            self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        clean = {k: float(v) for k, v in metrics.items() if v is not None}
        self.metrics.update(clean)
        with _mlflow_call(self.where, f"logging metrics to run {self.run_id}"):
            self.client.log_batch(
                self.run_id, metrics=[Metric(_metric_key(k), v, now, step or 0) for k, v in clean.items()]
            )

    def set_tags(self, tags: dict[str, Any]) -> None:
        with _mlflow_call(self.where, f"tagging run {self.run_id}"):
            for key, value in tags.items():
                self.client.set_tag(self.run_id, key, str(value))


def _metric_key(key: str) -> str:
    return re.sub(r"[^\w\-. /]", "_", key)


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: int
    aliases: tuple[str, ...]
    run_id: str | None
    source: str
    tags: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "run_id": self.run_id,
            "source": self.source,
            "tags": dict(self.tags),
        }


def apply_http_settings(cfg: ArenaConfig) -> dict[str, str]:
    """Set the ``MLFLOW_HTTP_REQUEST_*`` variables the config names; returns what it set."""
    import os

    wanted = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": cfg.mlflow.http_retries,
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": cfg.mlflow.http_backoff_factor,
        "MLFLOW_HTTP_REQUEST_TIMEOUT": cfg.mlflow.http_timeout_s,
    }
    applied = {name: str(value) for name, value in wanted.items() if value is not None}
    os.environ.update(applied)
    return applied


class ModelRegistry:
    def __init__(
        self,
        *,
        tracking_uri: str,
        registry_uri: str | None = None,
        experiment: str = "content-arena",
        artifact_location: str | None = None,
        model_name: str = "content-filter",
        cache_dir: str | Path = ".arena/models",
    ):
        from mlflow.tracking import MlflowClient

        self.tracking_uri = _prepare_uri(tracking_uri)
        self.registry_uri = _prepare_uri(registry_uri or tracking_uri)
        self.model_name = model_name
        self.experiment = experiment
        self.artifact_location = artifact_location
        self.cache_dir = Path(cache_dir)
        self.client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        self._experiment_id: str | None = None

    @classmethod
    def from_config(cls, cfg: ArenaConfig | None = None) -> ModelRegistry:
        cfg = cfg or load_config()
        apply_http_settings(cfg)
        return cls(
            tracking_uri=cfg.tracking_uri,
            registry_uri=cfg.registry_uri,
            experiment=cfg.mlflow.experiment,
            artifact_location=cfg.artifact_location,
            model_name=cfg.mlflow.model_name,
            cache_dir=cfg.home_path / "models",
        )

    # -- tracking -------------------------------------------------------------------------------
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            with _mlflow_call(self.tracking_uri, f"looking up experiment {self.experiment!r}"):
                found = self.client.get_experiment_by_name(self.experiment)
            if found is not None:
                self._experiment_id = found.experiment_id
            else:
                location = None
                if self.artifact_location and "://" not in self.artifact_location:
                    path = Path(self.artifact_location).resolve()
                    path.mkdir(parents=True, exist_ok=True)
                    location = path.as_uri()
                elif self.artifact_location:
                    location = self.artifact_location
                with _mlflow_call(self.tracking_uri, f"creating experiment {self.experiment!r}"):
                    self._experiment_id = self.client.create_experiment(self.experiment, artifact_location=location)
        return self._experiment_id

    @contextmanager
    def run(self, run_name: str, tags: dict[str, Any] | None = None) -> Iterator[RunTracker]:
        """An MLflow run that ends FINISHED, or FAILED if the body raises (the body's error is what is
        raised, also when MLflow cannot be told the run failed)."""
        experiment_id = self.experiment_id()
        with _mlflow_call(self.tracking_uri, f"starting run {run_name!r}"):
            run = self.client.create_run(
                experiment_id, run_name=run_name, tags={k: str(v) for k, v in (tags or {}).items()}
            )
        tracker = RunTracker(self.client, run.info.run_id, run.info.artifact_uri, where=self.tracking_uri)
        try:
            yield tracker
        except BaseException:
            try:
                with _mlflow_call(self.tracking_uri, f"marking run {run_name!r} failed"):
                    self.client.set_terminated(run.info.run_id, status="FAILED")
            except RegistryError as again:
                log.warning("%s", again)
            raise
        with _mlflow_call(self.tracking_uri, f"ending run {run_name!r}"):
            self.client.set_terminated(run.info.run_id, status="FINISHED")

    # -- registry -------------------------------------------------------------------------------
    def register(self, model_dir: str | Path, run: RunTracker, tags: dict[str, Any] | None = None) -> int:
        """Log ``model_dir`` as the run's ``model`` artifact and create a new registry version."""
        from mlflow.exceptions import MlflowException

        verify_model_dir(Path(model_dir))
        # Artifacts first: a version is only created once its files are in place.
        with _mlflow_call(self.tracking_uri, f"uploading the model of run {run.run_id}"):
            self.client.log_artifacts(run.run_id, str(model_dir), artifact_path="model")
        with _mlflow_call(self.registry_uri, f"registering a version of {self.model_name!r}"):
            try:
                self.client.get_registered_model(self.model_name)
            except MlflowException as exc:
                if not _is_absent(exc):
                    raise
                self.client.create_registered_model(self.model_name, description="Content Arena toxic-content defender")
            mv = self.client.create_model_version(
                self.model_name,
                source=f"{run.artifact_uri}/model",
                run_id=run.run_id,
                tags={k: str(v) for k, v in (tags or {}).items()},
            )
        log.info("registered %s version %s", self.model_name, mv.version)
        return int(mv.version)

    def set_alias(self, alias: str, version: int) -> None:
        with _mlflow_call(self.registry_uri, f"pointing alias {alias!r} at version {version}"):
            self.client.set_registered_model_alias(self.model_name, alias, str(version))

    def delete_alias(self, alias: str) -> None:
        """Remove an alias; one that does not exist is fine."""
        from mlflow.exceptions import MlflowException

        with _mlflow_call(self.registry_uri, f"removing alias {alias!r}"):
            try:
                self.client.delete_registered_model_alias(self.model_name, alias)
            except MlflowException as exc:
                if not _is_absent(exc):
                    raise

    def version_for(self, alias: str) -> int | None:
        """The version ``alias`` names; None when MLflow says it names none (RegistryError when MLflow fails)."""
        from mlflow.exceptions import MlflowException

        with _mlflow_call(self.registry_uri, f"looking up alias {alias!r}"):
            try:
                return int(self.client.get_model_version_by_alias(self.model_name, alias).version)
            except MlflowException as exc:
                if _is_absent(exc):
                    return None
                raise

    def versions(self) -> list[ModelVersionInfo]:
        from mlflow.exceptions import MlflowException

        with _mlflow_call(self.registry_uri, f"listing the versions of {self.model_name!r}"):
            try:
                found = self.client.search_model_versions(f"name='{self.model_name}'")
            except MlflowException as exc:
                if _is_absent(exc):
                    return []
                raise
        infos = [
            ModelVersionInfo(
                name=mv.name,
                version=int(mv.version),
                aliases=tuple(sorted(getattr(mv, "aliases", []) or [])),
                run_id=mv.run_id,
                source=mv.source,
                tags=dict(mv.tags or {}),
            )
            for mv in found
        ]
        # search_model_versions may omit aliases; fill them from the registered model.
        with _mlflow_call(self.registry_uri, f"reading the aliases of {self.model_name!r}"):
            try:
                alias_map = self.client.get_registered_model(self.model_name).aliases or {}
            except MlflowException as exc:
                if not _is_absent(exc):
                    raise
                alias_map = {}
        by_version: dict[int, list[str]] = {}
        for alias, version in alias_map.items():
            by_version.setdefault(int(version), []).append(alias)
        infos = [
            ModelVersionInfo(i.name, i.version, tuple(sorted(set(i.aliases) | set(by_version.get(i.version, [])))),
                             i.run_id, i.source, i.tags)
            for i in infos
        ]
        return sorted(infos, key=lambda i: i.version, reverse=True)

    def set_version_tag(self, version: int, key: str, value: Any) -> None:
        with _mlflow_call(self.registry_uri, f"tagging version {version}"):
            self.client.set_model_version_tag(self.model_name, str(version), key, str(value))

    def uri(self, alias_or_version: str | int) -> str:
        if isinstance(alias_or_version, int) or str(alias_or_version).isdigit():
            return f"models:/{self.model_name}/{alias_or_version}"
        return f"models:/{self.model_name}@{alias_or_version}"

    def resolve_version(self, model_uri: str) -> int:
        match = _MODEL_URI.match(model_uri)
        if not match:
            raise ValueError(f"not a model URI: {model_uri!r} (expected models:/<name>@<alias> or models:/<name>/<version>)")
        if match["name"] != self.model_name:
            raise ModelNotFound(f"{model_uri}: this registry holds {self.model_name!r}")
        if match["version"]:
            return int(match["version"])
        version = self.version_for(match["alias"])
        if version is None:
            raise ModelNotFound(f"no model version has alias {match['alias']!r} in {self.model_name!r} ({model_uri})")
        return version

    def download(self, model_uri_or_version: str | int) -> Path:
        """A verified local copy of a registered version, cached under ``cache_dir``."""
        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        version = (
            int(model_uri_or_version)
            if str(model_uri_or_version).isdigit()
            else self.resolve_version(str(model_uri_or_version))
        )
        target = self.cache_dir / self.model_name / f"v{version}"
        if target.is_dir():
            verify_model_dir(target)
            return target
        with _mlflow_call(self.registry_uri, f"looking up version {version}"):
            try:
                mv = self.client.get_model_version(self.model_name, str(version))
            except MlflowException as exc:
                if not _is_absent(exc):
                    raise
                raise ModelNotFound(f"{self.model_name} version {version} is not registered") from exc
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".v{version}-", dir=target.parent))
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=mv.source, dst_path=str(tmp), tracking_uri=self.tracking_uri
            )
            verify_model_dir(Path(local))
            Path(local).rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target


def _prepare_uri(uri: str) -> str:
    """Create the parent folder of a local sqlite store so a fresh checkout works."""
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        path.parent.mkdir(parents=True, exist_ok=True)
    return uri
