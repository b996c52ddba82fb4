"""Plain, immutable records returned by :class:`~content_arena.store.Store`.

They are detached copies of database rows: safe to keep after the session that read them has closed,
to pass between threads, and to serialise with :meth:`to_dict` (datetimes become ISO-8601 strings).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, TypeVar

BATTLE_STATUSES: tuple[str, ...] = ("pending", "running", "completed", "failed", "stopped")
MODEL_STATUSES: tuple[str, ...] = ("registered", "champion", "challenger", "archived", "rejected")
TRAINING_SOURCES: tuple[str, ...] = ("seed", "battle", "augment", "import", "live")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    return value


RecordT = TypeVar("RecordT", bound="Record")


class Record:
    """Base of the frozen dataclass records: the store's and those of the side tables
    (:mod:`content_arena.store.side_tables`)."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-able values (datetimes as ISO-8601 strings, also inside dicts and lists)."""
        return {field.name: _json_value(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def from_row(cls: type[RecordT], row: Any) -> RecordT:
        """The record of a SQLAlchemy row whose columns include every field (extra columns are ignored)."""
        mapping = row._mapping
        return cls(**{field.name: mapping[field.name] for field in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class BattleRecord(Record):
    id: str
    status: str
    model_name: str
    model_version: str | None
    strategies: list[str]
    rounds_planned: int
    rounds_completed: int
    evaded_count: int
    seed: int
    source: str
    params: dict[str, Any]
    error: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def evasion_rate(self) -> float:
        return self.evaded_count / self.rounds_completed if self.rounds_completed else 0.0


@dataclasses.dataclass(frozen=True)
class RoundRecord(Record):
    battle_id: str
    round_number: int
    strategy: str
    original_text: str
    attacked_text: str
    true_label: int
    toxic_score: float
    predicted_toxic: bool
    evaded: bool
    id: int | None = None
    created_at: datetime | None = None


@dataclasses.dataclass(frozen=True)
class ModelRecord(Record):
    id: int
    name: str
    version: int
    alias: str | None
    run_id: str | None
    uri: str
    sha256: str | None
    metrics: dict[str, Any]
    params: dict[str, Any]
    status: str
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True)
class TrainingSample(Record):
    id: int
    text: str
    label: int
    source: str
    text_hash: str
    battle_id: str | None
    strategy: str | None
    created_at: datetime
