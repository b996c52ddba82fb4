"""The defender as a KServe model: load → preprocess → predict → postprocess.

:class:`DefenderModel` serves one :class:`~content_arena.defender.TransformerDefender`, loaded once,
on KServe's REST data planes:

* v1: ``POST /v1/models/<name>:predict`` with ``{"instances": ["text", ...]}`` (or
  ``[{"text": "..."}, ...]``) → ``{"predictions": [{"toxic_score", "is_toxic", "confidence"}, ...]}``;
* v2 / Open Inference Protocol: ``POST /v2/models/<name>/infer`` with one ``BYTES`` input (named
  ``text``, shape ``[N]``) → outputs ``toxic_score`` (FP32), ``is_toxic`` (BOOL) and ``confidence``
  (FP32), each of shape ``[N]``.

``preprocess`` decodes either protocol into texts and applies the defender's normaliser (the same
:meth:`Defender.preprocess` every other caller goes through); ``predict`` scores the whole request as
one batch (the defender cuts it into length-sorted mini-batches) and calibrates the scores with the
model's saved calibrator, in a worker thread, so health probes keep answering while it runs;
``postprocess`` applies the model's policy threshold and encodes the
answer in the request's protocol. Requests and verdicts are counted for Prometheus by Knative
revision (see :mod:`content_arena.serving.metrics`).

``serving.quantize: int8`` serves the weights with the Linear layers of the transformer blocks
dynamically quantised to int8, on CPU (the pooler and the head stay float32); the calibration and
the policy threshold are the model's own, fitted in float32. A decoder backbone is refused int8.
``serving.runtime: onnx`` serves the float32 weights with ONNX Runtime on CPU instead (the same scores
to float rounding; torch, with one warning, where onnxruntime is not installed).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import InvalidInput
from kserve.model import InferenceVerb
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from content_arena.defender import ModelNotFound, TransformerDefender, onnx_cache_dir, resolve_model_dir
from content_arena.defender.artifacts import MANIFEST_FILE
from content_arena.defender.onnx_runtime import RUNTIMES
from content_arena.monitoring import LiveMonitor, prepare
from content_arena.serving import metrics

log = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = "/mnt/models"  # where KServe's storage-initializer puts STORAGE_URI
INPUT_NAME = "text"
QUANTIZE_MODES = ("none", "int8")


@dataclass
class TextBatch:
    """One request between the handlers: normalised texts, then their scores."""

    texts: list[str]
    v2: bool
    request_id: str | None = None
    scores: np.ndarray | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    signals: Any = None  # the batch's monitoring signals (content_arena.monitoring.BatchSignals)


def find_model_dir(path: str | os.PathLike[str]) -> Path:
    """The defender directory at ``path``, or the single one directly inside it (an unpacked artifact)."""
    root = Path(path)
    if (root / MANIFEST_FILE).is_file():
        return root
    nested = sorted(p.parent for p in root.glob(f"*/{MANIFEST_FILE}"))
    if len(nested) == 1:
        return nested[0]
    if not root.exists():
        raise ModelNotFound(f"no defender at {root}")
    raise ModelNotFound(f"no defender at {root}: {MANIFEST_FILE} not found there or in exactly one subdirectory")


class DefenderModel(Model):
    """The content filter behind KServe's model server (see the module docstring)."""

    def __init__(
        self,
        name: str = "content-filter",
        *,
        model_dir: str | os.PathLike[str] | None = None,
        model_uri: str | None = None,
        config: Any = None,
        batch_size: int | None = None,
        max_batch_size: int = 256,
        max_text_length: int = 5000,
        quantize: str | None = None,
        runtime: str | None = None,
    ):
        super().__init__(name)
        if model_dir is not None and model_uri is not None:
            raise ValueError("give model_dir or model_uri, not both")
        # None: the configuration's serving.quantize ("none" without a configuration).
        serving = getattr(config, "serving", None)
        self.quantize = quantize if quantize is not None else getattr(serving, "quantize", "none")
        if self.quantize not in QUANTIZE_MODES:
            raise ValueError(f"quantize must be one of {', '.join(QUANTIZE_MODES)}, got {self.quantize!r}")
        # None: the configuration's serving.runtime ("torch" without a configuration).
        self.runtime = runtime if runtime is not None else getattr(serving, "runtime", "torch")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        if self.runtime == "onnx" and self.quantize == "int8":
            raise ValueError("runtime onnx serves float32 weights; it does not combine with quantize int8")
        self.model_dir = model_dir if model_dir is not None or model_uri is not None else DEFAULT_MODEL_DIR
        self.model_uri = model_uri
        self.config = config
        self.batch_size = batch_size or (config.inference.batch_size if config is not None else 64)
        self.max_batch_size = max_batch_size
        self.max_text_length = max_text_length
        self.revision = os.environ.get("K_REVISION", "local")
        self.defender: TransformerDefender | None = None
        # The request counters of this name and revision, created at 0 and resolved once.
        self.series = metrics.initialise(self.name, self.revision)
        self._lock = threading.Lock()
        watch = getattr(config, "monitoring", None)
        self.monitor: LiveMonitor | None = None
        if watch is None or watch.enabled:
            from content_arena.config import MonitoringConfig

            watch = watch or MonitoringConfig()
            self.monitor = LiveMonitor(watch, metrics.live_signals(watch.drift_window, watch.drift_min_texts))

    # -- load -------------------------------------------------------------------------------------

    def load(self) -> bool:
        """Read the weights once: a local directory (``/mnt/models`` in a pod) or an MLflow model URI."""
        if self.model_uri is not None:
            location = resolve_model_dir(self.model_uri, self.config)
        else:
            location = find_model_dir(self.model_dir)
        from content_arena.threads import set_torch_threads  # None: the pod's CPU quota

        set_torch_threads(self.config.inference.torch_threads if self.config is not None else None)
        int8 = self.quantize == "int8"
        if int8:
            _refuse_int8_for_a_decoder(location)
        # Dynamic int8 has CPU kernels only: a quantised model is served on CPU even where CUDA is present
        # (and so is an ONNX one: TransformerDefender picks the CPU for it).
        self.defender = TransformerDefender(location, name=self.name, batch_size=self.batch_size, quantize=int8,
                                            device="cpu" if int8 else None, runtime=self.runtime,
                                            onnx_cache_dir=onnx_cache_dir(self.config)).load()
        if int8:
            log.info("serving %s with int8 dynamic quantisation on CPU (serving.quantize)", self.name)
        self.ready = True
        return self.ready

    # -- the request path ---------------------------------------------------------------------------

    async def __call__(self, body: Any, headers: dict[str, str] | None = None, verb: InferenceVerb = InferenceVerb.PREDICT):
        try:
            response = await super().__call__(body, headers=headers, verb=verb)
        except InvalidInput:
            self.series.requests["invalid"].inc()
            raise
        except Exception:
            self.series.requests["error"].inc()
            raise
        self.series.requests["ok"].inc()
        return response

    def validate(self, payload: Any) -> Any:
        return payload  # preprocess has validated the request and returns a TextBatch

    async def preprocess(self, payload: dict[str, Any] | InferRequest, headers: dict[str, str] | None = None) -> TextBatch:
        if isinstance(payload, InferRequest):
            texts = _v2_texts(payload)
            batch = TextBatch([], v2=True, request_id=payload.id)
        elif isinstance(payload, dict):
            texts = _v1_texts(payload)
            batch = TextBatch([], v2=False)
        else:
            raise InvalidInput(f"unsupported request body of type {type(payload).__name__}")
        if not texts:
            raise InvalidInput("no texts to classify")
        if len(texts) > self.max_batch_size:
            raise InvalidInput(f"{len(texts)} texts in one request; at most {self.max_batch_size}")
        too_long = [i for i, text in enumerate(texts) if len(text) > self.max_text_length]
        if too_long:
            raise InvalidInput(f"text {too_long[0]} is longer than {self.max_text_length} characters")
        if self.monitor is not None:  # the live signals, from the same preprocessing
            batch.texts, batch.signals = prepare(self._defender(), texts)
        else:
            batch.texts = self._defender().preprocess(texts)
        return batch

    async def predict(self, batch: TextBatch, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> TextBatch:
        batch.scores = await asyncio.to_thread(self._score, batch.texts)
        return batch

    async def postprocess(self, batch: TextBatch, headers: dict[str, str] | None = None,
                          response_headers: dict[str, str] | None = None) -> dict[str, Any] | InferResponse:
        defender = self._defender()
        assert batch.scores is not None
        results = defender.postprocess(batch.scores)
        toxic = int(np.count_nonzero(batch.scores >= defender.threshold))
        self.series.texts["toxic"].inc(toxic)
        self.series.texts["clean"].inc(len(results) - toxic)
        if self.monitor is not None and batch.signals is not None:
            self.monitor.record(defender, [], batch.scores, batch.signals)
        if not batch.v2:
            return {"predictions": results}
        n = len(results)
        return InferResponse(
            response_id=batch.request_id or str(uuid.uuid4()),
            model_name=self.name,
            model_version=defender.version,
            infer_outputs=[
                InferOutput("toxic_score", [n], "FP32", [r["toxic_score"] for r in results]),
                InferOutput("is_toxic", [n], "BOOL", [r["is_toxic"] for r in results]),
                InferOutput("confidence", [n], "FP32", [r["confidence"] for r in results]),
            ],
        )

    # -- v2 model metadata ----------------------------------------------------------------------------

    def get_input_types(self) -> list[dict[str, Any]]:
        return [{"name": INPUT_NAME, "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [
            {"name": "toxic_score", "datatype": "FP32", "shape": [-1]},
            {"name": "is_toxic", "datatype": "BOOL", "shape": [-1]},
            {"name": "confidence", "datatype": "FP32", "shape": [-1]},
        ]

    # -- helpers ------------------------------------------------------------------------------------

    def _defender(self) -> TransformerDefender:
        if self.defender is None:
            raise RuntimeError(f"model {self.name!r} is not loaded")
        return self.defender

    def _score(self, texts: list[str]) -> np.ndarray:
        """Calibrated scores of preprocessed texts: the same ``toxic_score`` the library and the API give."""
        with self._lock:
            defender = self._defender()
            return defender.calibrate(defender.predict(texts))


def _refuse_int8_for_a_decoder(model_dir: Path) -> None:
    """A decoder backbone (Llama, Qwen2 ...) is refused int8: its activations carry outlier channels
    that per-tensor int8 rounds away, and the scores move by tenths, not hundredths (measured on
    SmolLM2-135M, see docs/own-model.md). Encoders and models built from config are served int8."""
    import json

    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # the defender's own loading reports a missing or unreadable config
    backbone = config.get("arena_backbone") if isinstance(config, dict) else None
    if isinstance(backbone, dict) and backbone.get("kind") == "decoder":
        raise ValueError(f"serving.quantize int8 is refused for a decoder backbone ({backbone.get('family')}): dynamic "
                         "int8 moves its scores far beyond 0.01 of float32; serve it with serving.quantize none (and "
                         "serving.runtime onnx for speed at float32 precision)")


def _v1_texts(payload: dict[str, Any]) -> list[str]:
    instances = payload.get("instances")
    if not isinstance(instances, list):
        raise InvalidInput('expected {"instances": [...]} with texts or {"text": ...} objects')
    texts = []
    for i, item in enumerate(instances):
        if isinstance(item, dict):
            item = item.get(INPUT_NAME)
        if not isinstance(item, str):
            raise InvalidInput(f"instance {i} is not a text (a string or an object with a string {INPUT_NAME!r})")
        texts.append(item)
    return texts


def _v2_texts(request: InferRequest) -> list[str]:
    if not request.inputs:
        raise InvalidInput("the request has no inputs")
    chosen = request.get_input_by_name(INPUT_NAME)
    if chosen is None:
        if len(request.inputs) != 1:
            raise InvalidInput(f'expected one BYTES input named "{INPUT_NAME}"')
        chosen = request.inputs[0]
    if chosen.datatype != "BYTES":
        raise InvalidInput(f"input {chosen.name!r} has datatype {chosen.datatype}; texts are BYTES")
    data = chosen.data
    if isinstance(data, np.ndarray):
        data = data.tolist()
    texts = [_text(value, chosen.name) for value in _flatten(data if isinstance(data, list) else [data])]
    expected = int(np.prod(chosen.shape)) if chosen.shape else len(texts)
    if expected != len(texts):
        raise InvalidInput(f"input {chosen.name!r} has shape {list(chosen.shape)} but {len(texts)} values")
    return texts


def _flatten(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(value, list | tuple):
            out.extend(_flatten(list(value)))
        else:
            out.append(value)
    return out


def _text(value: Any, name: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"input {name!r} holds bytes that are not UTF-8") from None
    if isinstance(value, str):
        return value
    raise InvalidInput(f"input {name!r} holds a {type(value).__name__}; texts are strings")
