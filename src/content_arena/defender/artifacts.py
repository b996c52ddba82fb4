"""The on-disk form of a defender, and integrity checks on it.

A defender directory holds Hugging Face ``config.json`` + ``model.safetensors`` (never pickle),
``tokenizer.json`` and ``arena_model.json``: the decision threshold with the operating point that chose it,
the score calibration, the validation figures at that point, the maximum length, and the sha256 of every
weight file, verified before any weight is read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

MANIFEST_FILE = "arena_model.json"
TOKENIZER_FILE = "tokenizer.json"
UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


class ModelNotFound(FileNotFoundError):
    """No defender at the given location."""


class ModelIntegrityError(RuntimeError):
    """A defender's files do not match the checksums recorded when it was saved."""


@dataclass
class ModelManifest:
    """What ``arena_model.json`` holds.

    Attributes:
        threshold: the decision threshold on (calibrated) toxic scores.
        max_length: tokens read per text.
        labels: class names, clean first.
        files: sha256 of every other file in the directory.
        info: training details (mode, parent, validation metrics of the best epoch...).
        operating_point: the policy that chose ``threshold`` (``{"metric", "value"}``); None when no policy
            chose it (too few validation texts: ``validation`` says why; or a model saved before operating
            points existed), and the threshold is used as stored.
        calibration: the :class:`~content_arena.defender.calibration.Calibrator` record; None: raw scores.
        validation: the figures at the point on the validation texts, or why the policy was not applied.
    """

    threshold: float = 0.5
    max_length: int = 128
    labels: list[str] = field(default_factory=lambda: ["clean", "toxic"])
    files: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    operating_point: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, ensure_ascii=False)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(model_dir: Path, manifest: ModelManifest) -> ModelManifest:
    """Record the sha256 of every weight and tokenizer file, then write the manifest."""
    model_dir = Path(model_dir)
    unsafe = sorted(p.name for p in model_dir.iterdir() if p.suffix in UNSAFE_SUFFIXES)
    if unsafe:
        raise ModelIntegrityError(f"{model_dir}: pickle-based weight files are not allowed: {unsafe}")
    manifest.files = {
        p.name: sha256_file(p)
        for p in sorted(model_dir.iterdir())
        if p.is_file() and p.name != MANIFEST_FILE
    }
    (model_dir / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def read_manifest(model_dir: Path) -> ModelManifest:
    """The manifest of the defender in ``model_dir``; keys this version does not know are refused."""
    path = Path(model_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ModelNotFound(f"no defender at {model_dir}: {MANIFEST_FILE} is missing")
    raw = json.loads(path.read_text(encoding="utf-8"))
    known = {f.name for f in fields(ModelManifest)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ModelIntegrityError(f"{path}: unknown manifest keys {unknown} (saved by a newer version?)")
    return ModelManifest(**raw)


def verify_model_dir(model_dir: Path) -> ModelManifest:
    """Check that the directory is a defender and that no recorded file was changed."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelNotFound(f"no defender at {model_dir}: not a directory")
    manifest = read_manifest(model_dir)
    if not any(name.endswith(".safetensors") for name in manifest.files):
        raise ModelIntegrityError(f"{model_dir}: the manifest lists no safetensors weights")
    for name, expected in manifest.files.items():
        path = model_dir / name
        if not path.is_file():
            raise ModelIntegrityError(f"{model_dir}: {name} is listed in {MANIFEST_FILE} but missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelIntegrityError(
                f"{model_dir}: {name} has sha256 {actual[:12]}…, expected {expected[:12]}…; refusing to load"
            )
    return manifest


def weights_sha256(model_dir: Path) -> str:
    """One digest for the whole model: the sha256 of the manifest's sorted file digests."""
    manifest = read_manifest(model_dir)
    joined = "\n".join(f"{k}:{v}" for k, v in sorted(manifest.files.items()))
    return hashlib.sha256(joined.encode()).hexdigest()
