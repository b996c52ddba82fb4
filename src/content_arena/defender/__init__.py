"""The defender: a toxic-content classifier with a normaliser in front of it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from content_arena.defender.artifacts import ModelIntegrityError, ModelNotFound
from content_arena.defender.base import Classification, Defender, DefenderNotReady
from content_arena.defender.transformer import TransformerDefender

if TYPE_CHECKING:
    from content_arena.config import ArenaConfig

__all__ = [
    "Classification",
    "Defender",
    "DefenderNotReady",
    "ModelIntegrityError",
    "ModelNotFound",
    "TransformerDefender",
    "load_defender",
    "onnx_cache_dir",
    "resolve_model_dir",
]


def resolve_model_dir(location: str | Path, config: ArenaConfig | None = None) -> Path:
    """A local directory for ``location``: a directory, or ``models:/<name>@<alias>`` / ``models:/<name>/<v>``."""
    text = str(location)
    if text.startswith("models:/"):
        from content_arena.model_registry import ModelRegistry

        return ModelRegistry.from_config(config).download(text)
    path = Path(text).expanduser()
    if not path.exists():
        raise ModelNotFound(f"no defender at {path}")
    return path


def onnx_cache_dir(config: ArenaConfig | None) -> Path | None:
    """Where ONNX exports are kept between loads: ``<home>/onnx``; None without a configuration."""
    return config.home_path / "onnx" if config is not None else None


def load_defender(
    location: str | Path, config: ArenaConfig | None = None, *, batch_size: int | None = None
) -> TransformerDefender:
    """Load a defender once from a directory or an MLflow model URI, with the configuration's
    ``inference.batch_size`` and ``serving.runtime`` (torch without a configuration)."""
    model_dir = resolve_model_dir(location, config)
    if batch_size is None:
        batch_size = config.inference.batch_size if config is not None else 64
    runtime = config.serving.runtime if config is not None else "torch"
    defender = TransformerDefender(model_dir, batch_size=batch_size, runtime=runtime,
                                   onnx_cache_dir=onnx_cache_dir(config))
    defender.load()
    if defender.version is None and str(location).startswith("models:/"):
        defender.version = str(location)
    return defender
