"""Tiny configs: a whole loop runs in seconds, all state under a temporary directory.

A config is ``TINY``, then any layers (``SMALL``, ``API``), then keyword overrides, merged section by
section: a dict replaces single keys of its section, anything else replaces the section.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from .api import TOKENS

TINY: dict[str, dict[str, Any]] = {
    "model": {"vocab_size": 600, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
              "ngram_buckets": 4096, "ngram_dim": 16,
              "max_length": 64},
    "training": {"epochs": 3, "challenger_epochs": 2, "batch_size": 32, "learning_rate": 3e-3, "seed": 3},
    "attack": {"rounds": 120, "batch_size": 64},
    "augment": {"variants_per_failure": 2},
}

# A shorter loop on the same model: fewer epochs, rounds and variants. For suites that run many whole
# pipelines and test what happens around them rather than what they learn.
SMALL: dict[str, dict[str, Any]] = {
    "training": {"epochs": 2, "challenger_epochs": 1},
    "attack": {"rounds": 60, "batch_size": 32},
    "augment": {"variants_per_failure": 1},
}

# The API tokens of support.api (ADMIN, READ).
API: dict[str, dict[str, Any]] = {"api": {"tokens": TOKENS}}


def merge_sections(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """The layers merged in order, one level deep (a later dict updates the earlier section)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in copy.deepcopy(dict(layer)).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key].update(value)
            else:
                merged[key] = value
    return merged


def make_config(home: Path, *layers: Mapping[str, Any], **overrides: Any) -> Any:
    """``TINY``, then ``layers``, then ``overrides``, with all state under ``home/.arena``.

    Args:
        home: the directory holding the config's state (``home/.arena``).
        layers: section dicts merged over TINY in order (e.g. ``SMALL``, ``API``).
        overrides: sections merged last, as ``load_config`` keywords.

    Returns:
        The loaded :class:`content_arena.config.Config` (environment variables still apply).
    """
    from content_arena.config import load_config

    return load_config(None, home=str(home / ".arena"), **merge_sections(TINY, *layers, overrides))


def clean_arena_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Removes the ARENA_* settings of the calling shell for the test; keeps ARENA_TEST_* and ARENA_SKIP_*."""
    for key in list(os.environ):
        if key.startswith("ARENA_") and not key.startswith(("ARENA_TEST", "ARENA_SKIP_")):
            monkeypatch.delenv(key)


@pytest.fixture
def tiny_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Makes configs as :func:`make_config` under tmp_path, in tmp_path, without the shell's ARENA_* settings."""
    monkeypatch.chdir(tmp_path)
    clean_arena_env(monkeypatch)
    return lambda *layers, **overrides: make_config(tmp_path, *layers, **overrides)


@pytest.fixture
def service_config(tiny_config: Callable[..., Any]) -> Callable[..., Any]:
    """tiny_config plus the API tokens; keyword sections are merged over it (e.g. ``api={...}``).

    A suite that needs another base for all its service configs overrides this fixture in its conftest;
    ``champion_config`` builds on it.
    """
    return lambda **overrides: tiny_config(API, **overrides)
