"""Persistence for battles, rounds, model metadata and training data (SQLite or PostgreSQL)."""

from content_arena.store.records import (
    BATTLE_STATUSES,
    MODEL_STATUSES,
    TRAINING_SOURCES,
    BattleRecord,
    ModelRecord,
    RoundRecord,
    TrainingSample,
)
from content_arena.store.store import (
    DEFAULT_STORE_URL,
    NotFound,
    Store,
    StoreUnavailable,
    normalize_url,
    open_store,
)

__all__ = [
    "BATTLE_STATUSES",
    "DEFAULT_STORE_URL",
    "MODEL_STATUSES",
    "TRAINING_SOURCES",
    "BattleRecord",
    "ModelRecord",
    "NotFound",
    "RoundRecord",
    "Store",
    "StoreUnavailable",
    "TrainingSample",
    "normalize_url",
    "open_store",
]
