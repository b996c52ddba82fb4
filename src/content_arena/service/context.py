"""The long-lived handles the API routes and the workers share."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field

from content_arena.config import ArenaConfig
from content_arena.queue import QueueBackend
from content_arena.service.champion import ChampionHolder
from content_arena.service.metrics import ArenaMetrics
from content_arena.service.runs import PipelineRunStore
from content_arena.store import Store


def new_worker_id() -> str:
    """host:pid:random — names the holder of a battle lease in logs and in Redis."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class ServiceContext:
    cfg: ArenaConfig
    store: Store
    backend: QueueBackend
    runs: PipelineRunStore
    champion: ChampionHolder
    metrics: ArenaMetrics
    worker_id: str = field(default_factory=new_worker_id)

    @property
    def model_name(self) -> str:
        return self.cfg.mlflow.model_name
