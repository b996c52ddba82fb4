"""Pretrained backbones (``model.base_model``): where they come from and the recipe each kind trains with.

``model.base_model`` names a local directory, a hub id (for users with a hub) or a ``.gguf`` file.
A GGUF file is dequantised once into a normal directory under ``<home>/backbones/`` (keyed by the
file's sha256) and that copy is used from then on.

The recipe is chosen from the checkpoint's ``config.json``, never from its name:

* **kind**: an *encoder* (BERT, ELECTRA, RoBERTa, DeBERTa-v2 ...) classifies from its first token;
  a *decoder* (Llama, Qwen2, Mistral, Phi, GPT-NeoX ...) from its last real token, so it needs a
  padding id the pooling can skip;
* **learning rates**: a pretrained model is fine-tuned, not trained: the from-scratch rate
  (``training.learning_rate``, 1e-3) wipes out what it knows in a few hundred steps. Encoders get
  2e-5 for the full fine-tune and 2e-4 for LoRA, decoders 1e-5 and 1e-4 (the usual ranges for each;
  the adapter's rate is higher because its factors start at zero). A rate set explicitly in the
  configuration wins;
* **dtype**: float32 on CPU (bfloat16 matmuls there are slower and lose precision), bfloat16 on a
  CUDA device that supports it, float32 on one that does not;
* **max length**: ``model.max_length``, cut to what the position embeddings and the tokenizer allow;
* **padding**: the checkpoint's ``pad_token_id``; without one (common for Llama-3 / Qwen2.5-style
  ``config.json``), the tokenizer's padding token; without that, its end-of-sequence token. No id is
  ever created: a new token would have no trained embedding (or none at all);
* **tokenizer**: kept exactly as the backbone's, special tokens in user text read as plain text;
* **word recognition off**: the recogniser's vocabulary is the fine-tuning corpus, and it would
  rewrite the many words a pretrained model knows but that corpus lacks (``hello`` read as ``here``).

The recipe is written into the model's ``config.json`` (``arena_backbone``), its manifest info
(``backbone``) and the MLflow parameters (``backbone_*``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from tokenizers import Tokenizer

from content_arena.defender.token_ids import literal_special_tokens
from content_arena.defender.transformer import dtype_argument

if TYPE_CHECKING:
    from content_arena.config import ArenaConfig, TrainingConfig

log = logging.getLogger(__name__)

__all__ = [
    "Backbone", "Recipe", "challenger_learning_rate", "champion_learning_rate", "dequantize_gguf", "detect_recipe",
    "dtype_argument", "load_backbone", "resolve_base_model",
]

Kind = Literal["encoder", "decoder"]

#: ``model_type`` values read as encoders and decoders; any other is placed by its config (see detect_recipe).
ENCODER_TYPES = frozenset({
    "bert", "electra", "roberta", "xlm-roberta", "camembert", "deberta", "deberta-v2", "distilbert", "albert",
    "modernbert", "mpnet",
})
DECODER_TYPES = frozenset({
    "llama", "qwen2", "qwen3", "mistral", "mixtral", "phi", "phi3", "gpt_neox", "gemma", "gemma2", "gemma3_text",
    "gpt2", "smollm3", "olmo", "olmo2", "stablelm", "falcon",
})
#: (full fine-tune, LoRA) learning rates per kind.
LEARNING_RATES: dict[str, tuple[float, float]] = {"encoder": (2e-5, 2e-4), "decoder": (1e-5, 1e-4)}
# RoBERTa-style position ids start after the padding id: two positions are never a token's.
_OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert"})
GGUF_MARKER = "arena_gguf.json"


@dataclass(frozen=True)
class Recipe:
    """How a backbone kind is fine-tuned (see the module docstring)."""

    family: str
    kind: Kind
    learning_rate: float
    lora_learning_rate: float
    dtype: Literal["float32", "bfloat16"]
    device: Literal["cpu", "cuda"]
    max_length: int
    pad_token_id: int | None = None
    pad_token: str | None = None
    pad_source: str | None = None  # "config", "tokenizer" or "eos"
    word_recognition: bool = False
    source: str = ""
    gguf: str | None = None

    @property
    def torch_dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.dtype == "bfloat16" else torch.float32

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def params(self) -> dict[str, Any]:
        """The recipe as flat MLflow parameters."""
        return {f"backbone_{k}": ("none" if v is None else v) for k, v in self.to_dict().items()}


def _position_limit(config: Any) -> int | None:
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:
        return None
    if getattr(config, "model_type", "") in _OFFSET_POSITIONS:
        limit -= (getattr(config, "pad_token_id", None) or 0) + 1
    return limit


def detect_recipe(config: Any, max_length: int, *, cuda: bool | None = None, tokenizer_limit: int | None = None) -> Recipe:
    """The recipe for a checkpoint's ``config`` (a transformers config).

    Args:
        config: the backbone's config (``AutoConfig.from_pretrained``).
        max_length: ``model.max_length``; cut to the backbone's position limit and ``tokenizer_limit``.
        cuda: whether training runs on CUDA (default: whether a CUDA device is present).
        tokenizer_limit: the tokenizer's ``model_max_length`` when it is a real limit.

    Returns:
        The recipe, without its padding fields (:func:`load_backbone` fills them from the tokenizer).
    """
    family = str(getattr(config, "model_type", "") or "unknown")
    if family in ENCODER_TYPES:
        kind: Kind = "encoder"
    elif family in DECODER_TYPES:
        kind = "decoder"
    else:
        causal = any(str(a).endswith("ForCausalLM") for a in (getattr(config, "architectures", None) or []))
        kind = "decoder" if causal or getattr(config, "is_decoder", False) else "encoder"
        log.warning("backbone family %r has no recipe of its own: trained with the %s recipe", family, kind)
    cuda = torch.cuda.is_available() if cuda is None else cuda
    bf16 = cuda and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    limits = [n for n in (_position_limit(config), tokenizer_limit) if n]
    length = min([max_length, *limits])
    if length < max_length:
        log.info("max length %d: the backbone takes at most %d tokens (model.max_length %d)", length, min(limits),
                 max_length)
    full, lora = LEARNING_RATES[kind]
    return Recipe(family=family, kind=kind, learning_rate=full, lora_learning_rate=lora,
                  dtype="bfloat16" if bf16 else "float32", device="cuda" if cuda else "cpu", max_length=length)


def champion_learning_rate(recipe: Recipe | None, training: TrainingConfig) -> float:
    """``training.learning_rate`` when set explicitly (file, environment, override) or without a backbone;
    the recipe's full fine-tune rate otherwise."""
    if recipe is None or "learning_rate" in training.model_fields_set:
        return training.learning_rate
    log.info("learning rate %g: the %s recipe's for a pretrained backbone (training.learning_rate %g is for "
             "models built from config)", recipe.learning_rate, recipe.family, training.learning_rate)
    return recipe.learning_rate


def challenger_learning_rate(recipe: dict[str, Any] | None, training: TrainingConfig) -> float:
    """The LoRA rate of the recipe the champion was trained with (``arena_backbone`` in its config.json),
    unless ``training.challenger_learning_rate`` is set explicitly or the champion was built from config."""
    if not isinstance(recipe, dict) or "challenger_learning_rate" in training.model_fields_set:
        return training.challenger_learning_rate
    rate = float(recipe["lora_learning_rate"])
    log.info("challenger learning rate %g: the %s recipe's LoRA rate", rate, recipe.get("family"))
    return rate


# -- where the weights come from ---------------------------------------------------------------------


def _sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def dequantize_gguf(gguf_path: str | Path, cache_root: str | Path) -> Path:
    """A normal transformers directory (float32 safetensors + tokenizer) for a ``.gguf`` file, made once.

    The copy lives in ``cache_root/<file stem>-<sha256 prefix>/`` and is reused while the file is
    unchanged; it is written to a temporary folder first, so an interrupted run leaves no half copy.

    Args:
        gguf_path: the GGUF file (a quantised or float checkpoint of an architecture transformers reads).
        cache_root: where dequantised copies are kept (``<home>/backbones``).

    Returns:
        The directory, loadable with ``from_pretrained``.

    Raises:
        ImportError: the ``gguf`` package is missing (``pip install 'content-arena[gguf]'``).
    """
    import importlib.util

    path = Path(gguf_path).expanduser().resolve()
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(f"model.base_model {path.name} is a GGUF file: reading it needs the gguf package "
                          "(pip install 'content-arena[gguf]')")
    digest = _sha256(path)
    target = Path(cache_root) / f"{path.stem}-{digest[:16]}"
    if (target / GGUF_MARKER).is_file():
        log.info("GGUF %s: using its dequantised copy in %s", path.name, target)
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("GGUF %s: dequantising into %s (once)", path.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                  **dtype_argument(torch.float32))
    # The loaded model still carries the GGUF loading state, which save_pretrained refuses to write:
    # a fresh model of the same class takes its (already dequantised) weights.
    config = loaded.config
    for attribute in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attribute):
            delattr(config, attribute)
    plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict())
    del loaded
    plain.to(torch.float32).save_pretrained(partial, safe_serialization=True)
    del plain
    AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name).save_pretrained(partial)
    (partial / GGUF_MARKER).write_text(json.dumps({"gguf": str(path), "sha256": digest}, indent=2), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    log.info("GGUF %s dequantised into %s", path.name, target)
    return target


def resolve_base_model(base_model: str, home: str | Path) -> tuple[str, str | None]:
    """``(directory or hub id to load, the GGUF file it came from or None)`` for ``model.base_model``."""
    path = Path(base_model).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"model.base_model {base_model}: no such GGUF file")
        return str(dequantize_gguf(path, Path(home) / "backbones")), str(path.resolve())
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model.base_model {base_model}: a directory without config.json")
        return str(path), None
    if base_model.startswith((".", "/", "~")) or base_model.count("/") > 1:
        raise FileNotFoundError(f"model.base_model {base_model}: no such directory")
    return base_model, None  # a hub id, for users who have a hub


# -- loading -------------------------------------------------------------------------------------------


@dataclass
class Backbone:
    """A pretrained checkpoint ready to fine-tune: the classifier, its tokenizer, and the recipe."""

    model: torch.nn.Module
    tokenizer: Tokenizer  # the Rust tokenizer the loop encodes with
    hf_tokenizer: Any  # the transformers tokenizer, saved with the model exactly as it is
    recipe: Recipe

    def params(self) -> dict[str, Any]:
        config = self.model.config
        return {
            **self.recipe.params(),
            "hidden_size": getattr(config, "hidden_size", "n/a"),
            "num_layers": getattr(config, "num_hidden_layers", "n/a"),
        }


def _padding(model: torch.nn.Module, hf_tokenizer: Any, name: str) -> tuple[int, str, str]:
    """The padding id, its token and where it came from; sets it on the model config and the tokenizer."""
    config = model.config
    if config.pad_token_id is not None:
        pad_id, source = int(config.pad_token_id), "config"
    elif hf_tokenizer.pad_token_id is not None:
        pad_id, source = int(hf_tokenizer.pad_token_id), "tokenizer"
    elif hf_tokenizer.eos_token_id is not None:
        pad_id, source = int(hf_tokenizer.eos_token_id), "eos"
    else:
        raise ValueError(f"base model {name}: neither its config.json (pad_token_id) nor its tokenizer names a "
                         "padding or end-of-sequence token; set pad_token_id in its config.json")
    token = hf_tokenizer.convert_ids_to_tokens(pad_id)
    if hf_tokenizer.pad_token_id != pad_id:
        hf_tokenizer.pad_token = token
    config.pad_token_id = pad_id
    if source != "config":
        log.info("base model %s: config.json has no pad_token_id; padding with %r (id %d, the %s's)", name, token,
                 pad_id, "tokenizer's padding token" if source == "tokenizer" else "end-of-sequence token")
    return pad_id, token, source


def load_backbone(base_model: str, cfg: ArenaConfig) -> Backbone:
    """Load ``model.base_model`` as a two-class classifier with its own tokenizer and its recipe.

    Args:
        base_model: a directory, a hub id or a ``.gguf`` file (see :func:`resolve_base_model`).
        cfg: the configuration (``home`` for the GGUF cache, ``model.max_length``).

    Returns:
        The backbone on the recipe's device and dtype, padding id set in its config.

    Raises:
        ValueError: no fast tokenizer, no usable padding id, or token ids past the embedding matrix.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from content_arena.training.model_factory import check_token_ids_fit

    location, gguf = resolve_base_model(base_model, cfg.home_path)
    log.info("loading base model %s%s", location, f" (from {gguf})" if gguf else "")
    hf_tokenizer = AutoTokenizer.from_pretrained(location)
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if not isinstance(backend, Tokenizer):
        raise ValueError(f"base model {base_model} has no fast tokenizer (tokenizer.json)")
    limit = getattr(hf_tokenizer, "model_max_length", None)
    recipe = detect_recipe(AutoConfig.from_pretrained(location), cfg.model.max_length,
                           tokenizer_limit=limit if isinstance(limit, int) and limit < 1_000_000 else None)
    model = AutoModelForSequenceClassification.from_pretrained(
        location, num_labels=2, id2label={0: "clean", 1: "toxic"}, label2id={"clean": 0, "toxic": 1},
        **dtype_argument(recipe.torch_dtype),
    )
    pad_id, pad_token, pad_source = _padding(model, hf_tokenizer, base_model)
    recipe = replace(recipe, pad_token_id=pad_id, pad_token=pad_token, pad_source=pad_source, source=base_model,
                     gguf=gguf)
    tokenizer = literal_special_tokens(backend)
    check_token_ids_fit(model, tokenizer)
    # Travels in config.json, so challengers (and lora.py's target rule) know the model is pretrained.
    model.config.arena_backbone = recipe.to_dict()
    model.to(recipe.device)
    log.info("backbone %s: %s %s, %s on %s, learning rates %g (full) / %g (LoRA), max length %d, word "
             "recognition off", base_model, recipe.family, recipe.kind, recipe.dtype, recipe.device,
             recipe.learning_rate, recipe.lora_learning_rate, recipe.max_length)
    return Backbone(model, tokenizer, hf_tokenizer, recipe)
