"""Root conftest: torch's thread count, and the shared fixtures of tests/support for every suite."""

from __future__ import annotations

import os

import torch

# Deliberate thread count: under load from other processes torch's default slows tests badly.
torch.set_num_threads(int(os.environ.get("ARENA_TEST_THREADS", "2")))

# One copy of the configs, API helpers, Redis/PostgreSQL and the session champion (tests/support).
pytest_plugins = ["support.api", "support.configs", "support.backends", "support.champion"]
