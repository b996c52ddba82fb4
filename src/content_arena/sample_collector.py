"""Turn a battle's evasions into training data (source=battle), deduplicated by normalised text."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from content_arena.defender.normalizer import normalize
from content_arena.store import Store


def text_hash(text: str) -> str:
    """Identity of a sample: the sha256 of its normalised form, so unicode-only variants collapse."""
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Failure:
    """A toxic text the defender missed after an attack, with the text it came from."""

    original_text: str
    attacked_text: str
    strategy: str
    battle_id: str


@dataclass
class CollectionResult:
    failures: list[Failure] = field(default_factory=list)
    inserted: int = 0
    duplicates: int = 0


def collect_failures(store: Store, battle_id: str, page_size: int = 5000) -> CollectionResult:
    """Every evaded round of ``battle_id`` (unique by normalised text), stored as training data."""
    seen: set[str] = set()
    result = CollectionResult()
    samples = []
    offset = 0
    while True:
        page = store.list_rounds(battle_id, limit=page_size, offset=offset, evaded=True)
        if not page:
            break
        offset += len(page)
        for row in page:
            digest = text_hash(row.attacked_text)
            if digest in seen:
                result.duplicates += 1
                continue
            seen.add(digest)
            result.failures.append(Failure(row.original_text, row.attacked_text, row.strategy, battle_id))
            samples.append(
                {
                    "text": row.attacked_text,
                    "label": 1,
                    "source": "battle",
                    "battle_id": battle_id,
                    "strategy": row.strategy,
                    "text_hash": digest,
                }
            )
    if samples:
        result.inserted = store.add_training_samples(samples)
    result.duplicates += len(samples) - result.inserted
    return result
