"""LoRA and QLoRA adapters for challengers, merged back into plain weights after training."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Literal

import torch

from content_arena.config import TrainingConfig
from content_arena.training.model_factory import lora_target_modules

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


def lora_config(model: torch.nn.Module, cfg: TrainingConfig):
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=lora_target_modules(model),
        modules_to_save=_heads(model),
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
    return AutoModelForSequenceClassification.from_pretrained(model_dir, use_safetensors=True, local_files_only=True)


def merge_adapter(base_dir: Path, adapter_dir: Path) -> torch.nn.Module:
    """Apply a saved adapter to the full-precision base and fold it into plain weights."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    import content_arena.defender.ngram_bert  # noqa: F401  registers the default architecture

    base = AutoModelForSequenceClassification.from_pretrained(base_dir, use_safetensors=True, local_files_only=True)
    return PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
