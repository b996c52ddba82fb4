"""LoRA and QLoRA adapters for challengers, merged back into plain weights after training.

The adapted layers are found in the module graph, by type and position, never from lists of names
(which differ per architecture: ``query``/``q_proj``/``query_proj``/``Wqkv``/``query_key_value`` ...):

* **attention**: every ``nn.Linear`` (or transformers' ``Conv1D``, GPT-2 style) inside a module whose
  class is an attention block (its type name says ``Attention``: ``BertSelfAttention``,
  ``DisentangledSelfAttention``, ``LlamaAttention``, ``GPTNeoXAttention`` ...);
* **dense**: every other linear layer (feed-forward/MLP projections, the pooler, an embedding
  projection), except the classification head, which is trained in full beside the adapter;
* **embeddings** (models built from config only): the token embedding and the n-gram table.
  Evasions arrive as token sequences such a small champion rarely saw (leetspeak, romanisation), and
  attention-only adapters cannot give those tokens new meaning. A pretrained backbone's embedding
  already knows its vocabulary (and for a decoder it is the largest matrix of the model), so it
  stays frozen there.

The chosen layers are logged and recorded in the challenger's manifest (``lora_targets``).
"""

from __future__ import annotations

import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from content_arena.config import TrainingConfig
from content_arena.training.backbones import dtype_argument

log = logging.getLogger(__name__)

AdapterMode = Literal["qlora", "lora"]


def choose_adapter_mode(cfg: TrainingConfig) -> AdapterMode:
    """QLoRA (4-bit) when asked for or 'auto' with CUDA and bitsandbytes present; LoRA otherwise."""
    cuda = torch.cuda.is_available()
    bnb = importlib.util.find_spec("bitsandbytes") is not None
    if cfg.quantization == "none":
        log.info("adapter mode: LoRA (quantization disabled in config)")
        return "lora"
    if cuda and bnb:
        log.info("adapter mode: QLoRA 4-bit on %s", torch.cuda.get_device_name(0))
        return "qlora"
    reason = "no CUDA device" if not cuda else "bitsandbytes is not installed"
    if cfg.quantization == "4bit":
        log.warning("QLoRA 4-bit requested but %s: falling back to LoRA on CPU", reason)
    else:
        log.info("%s: QLoRA needs CUDA, training LoRA on CPU instead", reason)
    return "lora"


@dataclass(frozen=True)
class LoraTargets:
    """The layers an adapter trains, by full module name, in three groups (see the module docstring)."""

    attention: tuple[str, ...]
    dense: tuple[str, ...]
    embeddings: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [*self.attention, *self.dense, *self.embeddings]

    def summary(self) -> list[str]:
        """The names with layer indices folded (``model.layers.*.self_attn.q_proj``), in model order."""
        return list(dict.fromkeys(re.sub(r"\.\d+(?=\.|$)", ".*", name) for name in self.names))


def _adaptable_types() -> tuple[type, ...]:
    from transformers.pytorch_utils import Conv1D

    return (torch.nn.Linear, Conv1D)


def lora_targets(model: torch.nn.Module) -> LoraTargets:
    """The layers LoRA adapts in ``model``, found from its module graph (see the module docstring).

    Raises:
        ValueError: the model has no linear layer outside its head.
    """
    if not getattr(model.config, "use_encoder", True):
        # A champion saved without its encoder: only the n-gram table is in the forward pass.
        return LoraTargets((), (), ("ngram_embeddings",))
    modules = dict(model.named_modules())
    heads = _heads(model)
    in_head = lambda name: any(name == h or name.startswith(h + ".") for h in heads)  # noqa: E731

    def in_attention(name: str) -> bool:
        parts = name.split(".")
        return any("attention" in type(modules[".".join(parts[:i])]).__name__.lower() for i in range(1, len(parts)))

    attention, dense = [], []
    for name, module in modules.items():
        if name and isinstance(module, _adaptable_types()) and not in_head(name):
            (attention if in_attention(name) else dense).append(name)
    if not attention and not dense:
        raise ValueError(f"{type(model).__name__}: no linear layer outside the head {heads} to adapt")
    embeddings: list[str] = []
    if not getattr(model.config, "arena_backbone", None):
        token_table = model.get_input_embeddings()
        embeddings = [name for name, module in modules.items() if module is token_table]
        if "ngram_embeddings" in modules:
            embeddings.append("ngram_embeddings")
    return LoraTargets(tuple(attention), tuple(dense), tuple(embeddings))


def lora_config(model: torch.nn.Module, cfg: TrainingConfig):
    """The adapter for ``model``: rank and dropout from ``cfg``, layers from :func:`lora_targets`
    (logged), the classification heads trained in full."""
    from peft import LoraConfig, TaskType

    targets = lora_targets(model)
    log.info("LoRA targets (%d attention, %d dense, %d embedding layers): %s", len(targets.attention),
             len(targets.dense), len(targets.embeddings), ", ".join(targets.summary()))
    # An update of a table narrower than the rank has at most the table's width as its rank: a larger
    # adapter adds parameters (rank x rows, millions for the n-gram table) and no capacity. Such a table
    # gets its width as rank, with alpha scaled alike so its updates keep the configured alpha / r.
    rank_pattern, alpha_pattern = {}, {}
    for name in targets.embeddings:
        width = getattr(model.get_submodule(name), "embedding_dim", None)
        if width is not None and width < cfg.lora_r:
            rank_pattern[name] = width
            alpha_pattern[name] = cfg.lora_alpha * width / cfg.lora_r
    return LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets.names,
        modules_to_save=_heads(model),
        rank_pattern=rank_pattern,
        alpha_pattern=alpha_pattern,
    )


def _heads(model: torch.nn.Module) -> list[str]:
    """The classification heads, trained in full beside the adapter (two for the n-gram model)."""
    if not getattr(model.config, "use_encoder", True):
        return ["ngram_classifier"]  # the encoder's head never runs
    heads = [name for name in ("classifier", "ngram_classifier") if hasattr(model, name)]
    return heads or ["score"]


def load_for_adapter(model_dir: Path, mode: AdapterMode) -> torch.nn.Module:
    """The champion's weights, 4-bit quantized for QLoRA, full precision for LoRA."""
    from transformers import AutoModelForSequenceClassification

    import content_arena.defender.ngram_bert  # noqa: F401  registers the default architecture

    if mode == "qlora":
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
            # A two-output head does not pack into 4-bit blocks; keep it in full precision.
            llm_int8_skip_modules=["classifier", "ngram_classifier", "score"],
        )
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, quantization_config=quant, device_map={"": 0}, use_safetensors=True, local_files_only=True
        )
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    # LoRA trains in float32 whatever the champion was saved in (bfloat16 after a CUDA fine-tune).
    return AutoModelForSequenceClassification.from_pretrained(model_dir, use_safetensors=True, local_files_only=True,
                                                              **dtype_argument(torch.float32))


def merge_adapter(base_dir: Path, adapter_dir: Path) -> torch.nn.Module:
    """Apply a saved adapter to the full-precision base and fold it into plain weights."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    import content_arena.defender.ngram_bert  # noqa: F401  registers the default architecture

    base = AutoModelForSequenceClassification.from_pretrained(base_dir, use_safetensors=True, local_files_only=True,
                                                              **dtype_argument(torch.float32))
    return PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
