from __future__ import annotations

import os

import pytest
import torch

# Deliberate thread count: under load from other processes torch's default slows tests badly.
torch.set_num_threads(int(os.environ.get("ARENA_TEST_THREADS", "2")))


TINY = {
    "model": {"vocab_size": 600, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
              "ngram_buckets": 4096, "ngram_dim": 16,
              "max_length": 64},
    "training": {"epochs": 3, "challenger_epochs": 2, "batch_size": 32, "learning_rate": 3e-3, "seed": 3},
    "attack": {"rounds": 120, "batch_size": 64},
    "augment": {"variants_per_failure": 2},
}


@pytest.fixture
def tiny_config(tmp_path, monkeypatch):
    """A config whose whole loop runs in seconds, with all state under tmp_path."""
    from content_arena.config import load_config

    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("ARENA_") and not key.startswith("ARENA_TEST"):
            monkeypatch.delenv(key)

    def make(**overrides):
        merged = {k: dict(v) for k, v in TINY.items()}
        for key, value in overrides.items():
            if isinstance(value, dict):
                merged.setdefault(key, {}).update(value)
            else:
                merged[key] = value
        return load_config(None, home=str(tmp_path / ".arena"), **merged)

    return make
