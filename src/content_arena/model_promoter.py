"""Champion vs challenger on the same clean and adversarial sets, then promote or reject.

The challenger is promoted only when it is more robust (lower overall evasion rate), its clean F1
has not dropped by ``min_f1_drop`` or more, and it does not flag attacked clean texts more often
than the champion by more than ``max_attacked_clean_fpr_increase``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from content_arena.config import QualityGateConfig
from content_arena.evaluation import EvaluationReport
from content_arena.quality_gate import EPSILON
from content_arena.registry import CHALLENGER, CHAMPION, ModelRegistry, RegistryError
from content_arena.store import Store

log = logging.getLogger(__name__)


@dataclass
class Comparison:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    deltas: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reasons": list(self.reasons), "deltas": dict(self.deltas)}


def compare(champion: EvaluationReport, challenger: EvaluationReport, cfg: QualityGateConfig) -> Comparison:
    deltas = {
        "evasion_rate": challenger.evasion_rate - champion.evasion_rate,
        "f1": challenger.clean.f1 - champion.clean.f1,
        "attacked_clean_fpr": challenger.attacked_clean_fpr - champion.attacked_clean_fpr,
    }
    reasons: list[str] = []
    if challenger.evasion_rate >= champion.evasion_rate:
        reasons.append(
            f"not more robust: evasion rate {challenger.evasion_rate:.3f} vs champion {champion.evasion_rate:.3f}"
        )
    if -deltas["f1"] >= cfg.min_f1_drop - EPSILON:
        reasons.append(f"clean F1 drops {-deltas['f1']:.3f} (min_f1_drop {cfg.min_f1_drop:.3f})")
    if deltas["attacked_clean_fpr"] > cfg.max_attacked_clean_fpr_increase:
        reasons.append(
            f"flags attacked clean texts {deltas['attacked_clean_fpr']:.3f} more often than the champion"
        )
    if not reasons:
        reasons.append(
            f"more robust (evasion {champion.evasion_rate:.3f} → {challenger.evasion_rate:.3f}), "
            f"clean F1 {champion.clean.f1:.3f} → {challenger.clean.f1:.3f}"
        )
        return Comparison(True, reasons, deltas)
    return Comparison(False, reasons, deltas)


def promote(registry: ModelRegistry, store: Store, *, challenger_version: int, champion_version: int | None) -> None:
    """Move the ``champion`` alias to the challenger and record the change in model_metadata.

    Moving the registry's alias is the promotion: if MLflow fails there, nothing has changed anywhere.
    Once it moved, model_metadata follows even if removing the ``challenger`` alias then fails (a
    leftover alias on the new champion, logged; the next challenger takes it over).
    """
    registry.set_alias(CHAMPION, challenger_version)
    try:
        registry.delete_alias(CHALLENGER)
    except RegistryError as exc:
        log.warning("promoted v%s but the challenger alias is left on it: %s", challenger_version, exc)
    store.set_model_status(registry.model_name, challenger_version, "champion", alias=CHAMPION)
    if champion_version is not None and champion_version != challenger_version:
        store.set_model_status(registry.model_name, champion_version, "archived", clear_alias=True)
    log.info("promoted %s v%s to champion (was v%s)", registry.model_name, challenger_version, champion_version)


def reject(registry: ModelRegistry, store: Store, *, challenger_version: int) -> None:
    """Keep the challenger registered (for inspection) but mark it rejected."""
    store.set_model_status(registry.model_name, challenger_version, "rejected", alias=CHALLENGER)
