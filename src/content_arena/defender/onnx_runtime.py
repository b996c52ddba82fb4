"""ONNX Runtime serving of a sequence classifier: the same float32 weights, run by ORT's CPU kernels.

The torch model is exported once to ONNX (batch and sequence axes dynamic) and run by an ONNX Runtime
session with all graph optimisations on (operator fusion, constant folding) and as many intra-op
threads as torch uses. Nothing is quantised: the scores stay within float rounding of the torch model's
(checked at load on a padded probe batch), and the gain is ORT's fused kernels and lower per-operator
overhead on CPU, which matter most for a backbone with many small layers.

Trade-offs: the export costs seconds to a minute at load for a 100M-parameter backbone (reused from
``cache_dir`` when one is given); the runtime serves on CPU only; the export uses torch's TorchScript
exporter, which needs the ``onnx`` package and traces one code path (every input shape takes that path;
the load-time check compares a batch with padding against torch).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

RUNTIMES = ("torch", "onnx")
OPSET = 17
# The largest |logit| difference between ORT and torch accepted at load: float32 rounding through a deep
# network stays orders of magnitude below it, a wrong trace (a branch taken for one shape) far above it.
MAX_LOGIT_DIFFERENCE = 1e-3
# Bumped when the exported graph changes (wrapper, opset), so a cache never serves an older export.
EXPORT_FORMAT = 1


class OnnxUnavailable(RuntimeError):
    """The ONNX runtime cannot serve this model here; the message says why."""


def missing_packages() -> list[str]:
    """The packages the ONNX runtime needs that are not installed (``onnxruntime`` to run, ``onnx`` to export)."""
    import importlib.util

    return [name for name in ("onnxruntime", "onnx") if importlib.util.find_spec(name) is None]


class _LogitsOnly(torch.nn.Module):
    """The classifier as a function of (input_ids, attention_mask) returning only its logits: the exporter
    traces tensors in and out, and a decoder must not build its key/value cache."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.extra = {"use_cache": False} if getattr(model.config, "use_cache", None) is not None else {}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **self.extra).logits


def export_classifier(model: torch.nn.Module, path: Path, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Path:
    """Export ``model``'s logits to ONNX at ``path``, with dynamic batch and sequence axes.

    Args:
        model: A ``*ForSequenceClassification`` model in eval mode, on CPU, in float32.
        path: Where the ``.onnx`` file goes (written beside as ``<path>.tmp``, then renamed, so a reader
            never sees half a file).
        input_ids: A batch of token ids to trace with; it should hold padding, so that the traced masking
            is the general one.
        attention_mask: Its attention mask (1 for tokens, 0 for padding).

    Returns:
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch"}}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings: the load-time check is the judge
        torch.onnx.export(_LogitsOnly(model).eval(), (input_ids, attention_mask), str(partial),
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    os.replace(partial, path)
    return path


def export_key(model_dir: Path, files: dict[str, str] | None) -> str:
    """A name for the export of the model in ``model_dir``: its files' digests (the manifest's, else the
    weights' own) with the torch, transformers and export-format versions, so any change re-exports.

    Args:
        model_dir: The defender directory.
        files: The manifest's ``files`` (name → sha256), or None without a manifest.

    Returns:
        A 24-character hex key.
    """
    import transformers

    from content_arena.defender.artifacts import sha256_file

    if not files:
        files = {p.name: sha256_file(p) for p in sorted(model_dir.glob("*.safetensors"))}
    digest = hashlib.sha256()
    for name, value in sorted(files.items()):
        digest.update(f"{name}={value};".encode())
    digest.update(f"torch={torch.__version__};transformers={transformers.__version__};format={EXPORT_FORMAT}".encode())
    return digest.hexdigest()[:24]


class OnnxClassifier:
    """An ONNX Runtime session over an exported classifier: ``(input_ids, attention_mask) → logits``.

    Args:
        path: The ``.onnx`` file.
        threads: Intra-op threads (the torch setting, so both runtimes claim the same CPUs).
        keep: An object to hold for the session's lifetime (the temporary directory of an uncached export).
    """

    def __init__(self, path: Path, threads: int, keep: Any = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        # Idle threads sleep instead of spinning between batches: a server's CPUs serve other work (and
        # a pod's quota is not burnt waiting) at the price of a few microseconds to wake per batch.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only: ORT warns about every initializer it folds
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path = path
        self.threads = options.intra_op_num_threads
        self._keep = keep

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Logits (float32, shape ``[batch, labels]``) of a padded batch of int64 token ids and its mask."""
        feeds = {"input_ids": np.ascontiguousarray(input_ids, dtype=np.int64),
                 "attention_mask": np.ascontiguousarray(attention_mask, dtype=np.int64)}
        return self.session.run(["logits"], feeds)[0]


def probe_batch(encode: Any, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """A padded batch of three texts of different lengths: what the export is traced with and checked on.

    Args:
        encode: The defender's token encoder (``encode(texts)`` → tokens with ``padded``).
        pad_id: The padding id.

    Returns:
        (input_ids, attention_mask) as int64 arrays.
    """
    tokens = encode.encode(["ok", "a probe text of several words, with punctuation.", "short one"])
    ids = tokens.padded(np.arange(len(tokens)), pad_id, tokens.offsets).astype(np.int64)
    return ids, (ids != pad_id).astype(np.int64)


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def onnx_classifier(model: torch.nn.Module, model_dir: Path, encoder: Any, pad_id: int, *,
                    files: dict[str, str] | None = None, cache_dir: Path | None = None,
                    threads: int | None = None) -> OnnxClassifier:
    """Export ``model`` (or reuse its export from ``cache_dir``) and open it in ONNX Runtime, checked
    against torch on a padded probe batch.

    Args:
        model: The loaded float32 classifier on CPU.
        model_dir: Its directory (names the export).
        encoder: The defender's token encoder, for the probe batch.
        pad_id: The padding id the defender pads with.
        files: The manifest's file digests (None: the weights are hashed).
        cache_dir: Where exports are kept between loads; None (or a folder that cannot be written): a
            temporary directory for this load only.
        threads: Intra-op threads; None: ``torch.get_num_threads()``.

    Returns:
        The session, ready to serve.

    Raises:
        OnnxUnavailable: A package is missing, the export failed, ONNX Runtime could not open it, or the
            session's logits differ from torch's by more than :data:`MAX_LOGIT_DIFFERENCE` on the probe batch.
    """
    missing = missing_packages()
    if missing:
        raise OnnxUnavailable(f"{' and '.join(missing)} not installed (pip install 'content-arena[onnx]')")
    ids, mask = probe_batch(encoder, pad_id)
    input_ids, attention_mask = torch.from_numpy(ids), torch.from_numpy(mask)
    keep = None
    if cache_dir is not None and _writable(Path(cache_dir)):
        path = Path(cache_dir) / f"{export_key(model_dir, files)}.onnx"
    else:  # no cache, or one that cannot be written (a read-only home in a pod): export for this load
        keep = tempfile.TemporaryDirectory(prefix="arena-onnx-")
        path = Path(keep.name) / "model.onnx"
    if not path.is_file():
        try:
            export_classifier(model, path, input_ids, attention_mask)
        except Exception as exc:  # any exporter failure: the caller serves with torch instead
            raise OnnxUnavailable(f"the export to ONNX failed: {type(exc).__name__}: {exc}") from exc
        log.info("exported %s to ONNX at %s", model_dir, path)
    try:
        session = OnnxClassifier(path, threads if threads is not None else torch.get_num_threads(), keep=keep)
    except Exception as exc:  # an unreadable file or an operator this build lacks: torch serves instead
        raise OnnxUnavailable(f"ONNX Runtime could not open {path}: {type(exc).__name__}: {exc}") from exc
    with torch.no_grad():
        expected = model(input_ids=input_ids, attention_mask=attention_mask).logits.float().numpy()
    difference = float(np.abs(session(ids, mask) - expected).max())
    if not difference <= MAX_LOGIT_DIFFERENCE:
        raise OnnxUnavailable(f"ONNX Runtime's logits differ from torch's by {difference:.2e} on the probe batch")
    return session
