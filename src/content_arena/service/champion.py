"""The champion defender the API serves: loaded once, swapped whole when the champion changes.

Callers take :meth:`ChampionHolder.current` for each batch; a swap replaces the reference after the
new model has loaded, so requests never see a half-loaded model.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from content_arena.config import ArenaConfig
from content_arena.defender import Defender
from content_arena.store import Store

if TYPE_CHECKING:
    from content_arena.model_registry import ModelRegistry

log = logging.getLogger(__name__)


class ChampionHolder:
    def __init__(self, cfg: ArenaConfig, store: Store, defender: Defender | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self._defender = defender
        self._swap_lock = threading.Lock()
        self._registry: ModelRegistry | None = None
        self.last_error: str | None = None
        # Called with (version, model URI) after each swap (the monitoring keys model:champion:*).
        self.on_load: Callable[[str, str], None] | None = None

    @property
    def registry(self) -> ModelRegistry:
        if self._registry is None:
            from content_arena.model_registry import ModelRegistry

            self._registry = ModelRegistry.from_config(self.cfg)
        return self._registry

    def current(self) -> Defender | None:
        return self._defender

    @property
    def loaded(self) -> bool:
        defender = self._defender
        return defender is not None and defender.ready

    @property
    def version(self) -> str | None:
        defender = self._defender
        return None if defender is None else defender.version

    def load_version(self, version: int) -> Defender:
        """Load registered ``version`` and make it the served defender."""
        from content_arena.defender import load_defender

        with self._swap_lock:
            defender = load_defender(self.registry.uri(version), self.cfg)
            defender.version = str(version)
            previous, self._defender = self._defender, defender
            self.last_error = None
        log.info("serving champion version %s (was %s)", version, previous.version if previous else None)
        if self.on_load is not None:
            self.on_load(str(version), self.registry.uri(version))
        return defender

    def registered_version(self) -> int | None:
        """The version the ``champion`` alias names, from the store's model_metadata mirror,
        falling back to the registry itself."""
        from content_arena.model_registry import CHAMPION

        record = self.store.get_model_by_alias(self.cfg.mlflow.model_name, CHAMPION)
        if record is not None:
            return record.version
        return self.registry.version_for(CHAMPION)

    def refresh(self) -> bool:
        """Load the registered champion if it differs from the served one; True when it swapped.

        Failures are kept in ``last_error`` (readiness reports them) and logged, never raised.
        """
        try:
            version = self.registered_version()
            if version is None:
                self.last_error = "no champion is registered"
                return False
            if self.loaded and self.version == str(version):
                return False
            self.load_version(version)
            return True
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("could not load the champion: %s", self.last_error)
            return False
