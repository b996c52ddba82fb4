"""A defender backed by a Hugging Face sequence classifier saved as safetensors."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from content_arena.defender.artifacts import (
    MANIFEST_FILE,
    TOKENIZER_FILE,
    ModelIntegrityError,
    ModelNotFound,
    read_manifest,
    verify_model_dir,
)
from content_arena.defender.base import Defender
from content_arena.defender.calibration import Calibrator
from content_arena.defender.onnx_runtime import RUNTIMES, OnnxClassifier, OnnxUnavailable, onnx_classifier
from content_arena.defender.recognizer import WordRecognizer
from content_arena.defender.token_ids import TokenEncoder, encoder_for, load_tokenizer

log = logging.getLogger(__name__)

# Directories already warned about, so a service that reloads the same model logs it once.
_WARNED_WITHOUT_POLICY: set[str] = set()


def dtype_argument(dtype: torch.dtype) -> dict[str, torch.dtype]:
    """``from_pretrained``'s dtype keyword: ``dtype=`` from transformers 4.56, ``torch_dtype=`` before."""
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


def quantize_int8(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` with the ``nn.Linear`` layers of its blocks dynamically quantised to int8 (``torch.ao``; CPU only).

    Activations are quantised per tensor per batch, so a few outlier channels (a decoder's norm outputs)
    set the scale and the small channels lose their precision: on a trained decoder scores move by
    tenths, on a small trained encoder by about a hundredth (docs/own-model.md). Exact-to-rounding
    speed comes from ``runtime="onnx"`` instead.
    """
    import warnings

    if device.type != "cpu":
        raise ValueError(f"dynamic int8 quantisation runs on CPU, not {device}")
    from torch.ao.quantization import quantize_dynamic

    # Only the layers of the repeated blocks (attention and feed-forward: most of the compute); the
    # pooler and the head stay float32, where int8 rounding would reach the score undamped.
    blocks = {name for name, module in model.named_modules()
              if isinstance(module, torch.nn.Linear) and re.search(r"\.\d+\.", name)}
    with warnings.catch_warnings():  # torch.ao's eager quantisation is deprecated in favour of torchao
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, blocks or {torch.nn.Linear}, dtype=torch.qint8)


class TransformerDefender(Defender):
    """Batched inference over a ``*ForSequenceClassification`` model in ``model_dir``.

    Texts are tokenized once (a character-level tokenizer through a lookup table, any other with the
    Rust tokenizer; see :mod:`~content_arena.defender.token_ids`), sorted by length and cut into batches
    so that padding stays small; scores come back in the caller's order.

    Args:
        model_dir: The saved defender (weights, tokenizer, ``arena_model.json``).
        name: The name it reports and logs under.
        batch_size: Texts per forward pass.
        threshold: A decision threshold overriding the model's own policy threshold.
        device: ``cpu`` or ``cuda``; None: CUDA where present, except for ``runtime="onnx"`` (CPU).
        verify: Check the files against the manifest's digests at load.
        quantize: Serve the transformer blocks' Linear layers with dynamic int8 (CPU only; see
            :func:`quantize_int8` for its precision).
        runtime: ``torch``, or ``onnx``: the float32 weights exported once and run by ONNX Runtime on CPU,
            torch's scores to float rounding (:mod:`~content_arena.defender.onnx_runtime`); where
            onnxruntime is missing or the export fails, torch serves and one warning says why.
        onnx_cache_dir: Where ONNX exports are kept between loads (None: exported at every load).
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        name: str = "content-filter",
        batch_size: int = 64,
        threshold: float | None = None,
        device: str | None = None,
        verify: bool = True,
        quantize: bool = False,
        runtime: str = "torch",
        onnx_cache_dir: str | Path | None = None,
    ):
        super().__init__(name=name, threshold=threshold if threshold is not None else 0.5, batch_size=batch_size)
        self.model_dir = Path(model_dir)
        self._threshold_override = threshold
        # ONNX Runtime serves on CPU (its CPU provider is the one installed with it).
        default = "cuda" if torch.cuda.is_available() and runtime != "onnx" else "cpu"
        self.device = torch.device(device or default)
        self.verify = verify
        # Dynamic int8 quantisation of every nn.Linear (CPU only): weights stored as int8, activations
        # quantised per batch. Speeds up a transformer backbone's matmuls on CPU at a small cost in
        # precision, measured against full precision in bench/throughput.py.
        self.quantize = quantize
        # ``runtime_in_use`` says which runtime serves after load(): "torch" when an onnx one fell back.
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        if runtime == "onnx" and quantize:
            raise ValueError("runtime onnx serves float32 weights; it does not combine with int8 quantisation")
        self.runtime = runtime
        self.runtime_in_use = "torch"
        self.onnx_cache_dir = Path(onnx_cache_dir) if onnx_cache_dir is not None else None
        self.onnx: OnnxClassifier | None = None
        self.model: torch.nn.Module | None = None
        self.tokenizer: Tokenizer | None = None
        self.encoder: TokenEncoder | None = None
        self.max_length = 128
        self.pad_id = 0

    def load(self) -> TransformerDefender:
        from transformers import AutoModelForSequenceClassification

        import content_arena.defender.ngram_bert  # noqa: F401  registers the default architecture

        if not self.model_dir.exists():
            raise ModelNotFound(f"no defender at {self.model_dir}")
        # Unverified, the manifest is still read when present: the threshold and calibration live there.
        if self.verify:
            manifest = verify_model_dir(self.model_dir)
        else:
            manifest = read_manifest(self.model_dir) if (self.model_dir / MANIFEST_FILE).is_file() else None
        tokenizer_path = self.model_dir / TOKENIZER_FILE
        if not tokenizer_path.is_file():
            raise ModelNotFound(f"no defender at {self.model_dir}: {TOKENIZER_FILE} is missing")
        tokenizer = load_tokenizer(tokenizer_path)  # special tokens typed in a text stay text
        tokenizer.no_padding()
        # float32 on CPU whatever the weights were saved in: bfloat16 matmuls are slower there.
        dtype = dtype_argument(torch.float32) if self.device.type == "cpu" else {}
        model = AutoModelForSequenceClassification.from_pretrained(
            self.model_dir, use_safetensors=True, local_files_only=True, **dtype
        )
        model.to(self.device).eval()
        if self.quantize:
            model = quantize_int8(model, self.device)
        if self.runtime == "onnx" and self.device.type != "cpu":
            raise ValueError(f"runtime onnx serves on CPU, not {self.device}")
        recognizer = WordRecognizer.load(self.model_dir)
        try:
            calibrator = Calibrator.from_dict(manifest.calibration) if manifest is not None else Calibrator()
        except ValueError as exc:
            raise ModelIntegrityError(f"{self.model_dir}: the calibration in {MANIFEST_FILE} is unreadable: {exc}") from None
        if manifest is not None and manifest.operating_point is None and str(self.model_dir) not in _WARNED_WITHOUT_POLICY:
            _WARNED_WITHOUT_POLICY.add(str(self.model_dir))
            why = (manifest.validation or {}).get("reason") or "saved before operating points existed"
            log.warning("defender at %s has no operating point (%s): its stored threshold %.3f is used; retrain it "
                        "with enough validation texts to get a policy threshold", self.model_dir, why,
                        manifest.threshold)
        max_length = manifest.max_length if manifest is not None else self.max_length
        tokenizer.enable_truncation(max_length)
        encoder = encoder_for(tokenizer, max_length)
        recorded = manifest.info.get("pad_id") if manifest is not None else None
        pad_id = int(recorded) if recorded is not None else (tokenizer.token_to_id("[PAD]") or 0)
        # Exported before the lock is taken: a reload keeps the previous model serving meanwhile.
        onnx = self._onnx_session(model, encoder, pad_id, manifest.files if manifest is not None else None)
        if onnx is not None:
            # ONNX Runtime holds its own copy of the weights: the torch module keeps its structure and
            # config (read by callers) but gives its tensors back.
            model = model.to("meta")
        with self._lock:
            self.recognizer = recognizer
            self.calibrator = calibrator
            if manifest is not None:
                self.operating_point = manifest.operating_point
                if self._threshold_override is None:
                    self.threshold = manifest.threshold
                self.version = str(manifest.info.get("version")) if manifest.info.get("version") else None
            self.max_length, self.encoder, self.pad_id = max_length, encoder, pad_id
            self.onnx, self.runtime_in_use = onnx, ("onnx" if onnx is not None else "torch")
            self.tokenizer, self.model = tokenizer, model
            self.ready = True
        log.info("defender %s loaded from %s on %s (%s)", self.name, self.model_dir, self.device, self.runtime_in_use)
        return self

    def _onnx_session(self, model: torch.nn.Module, encoder: TokenEncoder, pad_id: int,
                      files: dict[str, str] | None) -> OnnxClassifier | None:
        """The ONNX Runtime session when ``runtime`` is onnx and it can serve here, else None (one warning why)."""
        if self.runtime != "onnx":
            return None
        try:
            return onnx_classifier(model, self.model_dir, encoder, pad_id, files=files, cache_dir=self.onnx_cache_dir)
        except OnnxUnavailable as exc:
            log.warning("defender %s: runtime onnx is unavailable (%s); serving with torch", self.name, exc)
            return None

    @torch.inference_mode()
    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw two-class logits for already preprocessed texts, in input order."""
        assert self.model is not None and self.encoder is not None
        tokens = self.encoder.encode(texts)
        offsets = tokens.offsets
        order = np.argsort(tokens.lengths, kind="stable")
        out = np.empty((len(tokens), 2), dtype=np.float32)
        for start in range(0, len(tokens), self.batch_size):
            chunk = order[start : start + self.batch_size]
            if self.onnx is not None:
                ids = tokens.padded(chunk, self.pad_id, offsets)
                out[chunk] = self.onnx(ids, ids != self.pad_id)
                continue
            input_ids = torch.from_numpy(tokens.padded(chunk, self.pad_id, offsets)).to(self.device)
            mask = (input_ids != self.pad_id).long()
            result = self.model(input_ids=input_ids, attention_mask=mask).logits
            out[chunk] = result.float().cpu().numpy()
        return out

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Raw toxic probabilities (softmax of the logits) for preprocessed texts; :meth:`scores` calibrates them."""
        logits = self.logits(texts)
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        return (probs[:, 1] / probs.sum(axis=1)).astype(np.float32)
