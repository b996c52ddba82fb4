"""gate: does the champion still hold? PASS, or FAIL with every reason."""

from __future__ import annotations

import logging

from content_arena.quality_gate import GateResult, check_quality
from content_arena.steps.evaluate import Evaluation
from content_arena.steps.workspace import Workspace

log = logging.getLogger(__name__)


def judge_champion(ws: Workspace, champion: Evaluation) -> GateResult:
    """The quality gate on the champion's evaluation, logged as the ``evaluate-champion`` MLflow run.

    Args:
        ws: The workspace.
        champion: The champion's evaluation (with its reference F1).

    Returns:
        The gate's decision and reasons.
    """
    result = check_quality(champion.report, ws.config.quality_gate, reference_f1=champion.reference_f1)
    log.info("quality gate: %s %s", result.decision.value, "; ".join(result.reasons))
    with ws.registry.run("evaluate-champion", tags={"stage": "evaluate", "model_version": champion.version}) as run:
        run.log_metrics(champion.metrics)
        run.set_tags({"gate": result.decision.value})
    return result
