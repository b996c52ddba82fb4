"""The on-disk form of a defender, and integrity checks on it.

A defender directory holds Hugging Face ``config.json`` + ``model.safetensors`` (never pickle),
``tokenizer.json`` and ``arena_model.json``: the threshold, the maximum length, and the sha256 of
every weight file, verified before any weight is read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
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
    threshold: float = 0.5
    max_length: int = 128
    labels: list[str] = field(default_factory=lambda: ["clean", "toxic"])
    files: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

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
    path = Path(model_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ModelNotFound(f"no defender at {model_dir}: {MANIFEST_FILE} is missing")
    raw = json.loads(path.read_text(encoding="utf-8"))
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
