"""ONE tiny real champion per test session, shared by every suite that needs a trained model.

Training is the slowest fixture of the suite, so the model is trained once, the first time a test asks
for it, and never written to afterwards: a test that needs to change the model copies ``model_dir`` first (a
test that tampers with the registry's artifacts restores them). Each ``champion_config`` gets a private
copy of the MLflow database, so promotions in one test never leak into another.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .configs import make_config


@dataclass(frozen=True)
class TrainedChampion:
    """A trained model registered as the champion of a private MLflow (SQLite) registry."""

    mlflow_db: Path
    artifacts: Path
    model_dir: Path
    version: int
    val_metrics: dict[str, float]


def train_tiny_champion(root: Path, *, n_train: int = 600, n_val: int = 200, epochs: int = 4) -> TrainedChampion:
    """Trains the TINY model on ``n_train`` shuffled seed-corpus examples (validated on the next ``n_val``)
    and registers it as the champion in ``root/mlflow.db``.

    The defaults give a real if weak classifier: battles against it see evasions, and it is still fast
    enough to train once per session. Fewer examples or epochs train faster but make a model whose
    scores say less.
    """
    from content_arena.data import load_seed_corpus
    from content_arena.model_registry import CHAMPION
    from content_arena.orchestrator import Workspace, register_model
    from content_arena.training import train_champion

    cfg = make_config(root, training={"epochs": epochs}, mlflow={
        "tracking_uri": f"sqlite:///{root / 'mlflow.db'}", "artifact_location": str(root / "mlartifacts"),
    })
    examples = load_seed_corpus()
    random.Random(0).shuffle(examples)
    result = train_champion(examples[:n_train], root / "model", cfg, val_examples=examples[n_train:n_train + n_val])
    ws = Workspace.open(cfg)
    try:
        with ws.registry.run("test-champion") as run:
            version = register_model(ws, result, run, status="champion", alias=CHAMPION)
        ws.registry.set_alias(CHAMPION, version)
    finally:
        ws.store.close()
    return TrainedChampion(root / "mlflow.db", root / "mlartifacts", result.model_dir, version, result.val_metrics)


@pytest.fixture(scope="session")
def trained_champion(tmp_path_factory: pytest.TempPathFactory) -> TrainedChampion:
    """The session's tiny champion (:func:`train_tiny_champion` with its defaults), registered as v1."""
    return train_tiny_champion(tmp_path_factory.mktemp("champion"))


@pytest.fixture(scope="session")
def champion_model_dir(trained_champion: TrainedChampion) -> Path:
    """The session champion's model directory (read-only: copy it to change it)."""
    return trained_champion.model_dir


@pytest.fixture
def champion_config(service_config: Callable[..., Any], trained_champion: TrainedChampion,
                    tmp_path: Path) -> Callable[..., Any]:
    """Makes service configs whose registry is a private copy of the session champion's (champion = v1),
    with v1's model_metadata row in the test's store."""
    from content_arena.store import open_store

    mlflow_db = tmp_path / "mlflow.db"
    shutil.copy(trained_champion.mlflow_db, mlflow_db)

    def make(**overrides: Any) -> Any:
        mlflow = {"tracking_uri": f"sqlite:///{mlflow_db}", "artifact_location": str(trained_champion.artifacts),
                  **overrides.pop("mlflow", {})}
        cfg = service_config(mlflow=mlflow, **overrides)
        cfg.home_path.mkdir(parents=True, exist_ok=True)
        with open_store(cfg.storage_url) as store:
            store.upsert_model(name=cfg.mlflow.model_name, version=trained_champion.version,
                               uri=f"models:/{cfg.mlflow.model_name}/{trained_champion.version}", alias="champion",
                               metrics=dict(trained_champion.val_metrics), status="champion")
        return cfg

    return make
