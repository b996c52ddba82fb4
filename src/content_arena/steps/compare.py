"""compare: champion vs challenger on the same sets; should the challenger be promoted, and why."""

from __future__ import annotations

from content_arena import model_promoter
from content_arena.model_promoter import Comparison
from content_arena.steps.evaluate import Evaluation
from content_arena.steps.workspace import Workspace


def compare_models(ws: Workspace, champion: Evaluation, challenger: Evaluation) -> Comparison:
    """The promotion decision, logged with the challenger's metrics as the ``evaluate-challenger`` MLflow run.

    Args:
        ws: The workspace.
        champion: The champion's evaluation.
        challenger: The challenger's evaluation on the same sets.

    Returns:
        The decision, its reasons and the metric deltas.
    """
    comparison = model_promoter.compare(champion.report, challenger.report, ws.config.quality_gate)
    tags = {"stage": "compare", "model_version": challenger.version}
    with ws.registry.run("evaluate-challenger", tags=tags) as run:
        run.log_metrics(challenger.metrics)
        run.set_tags({"promote": comparison.promote})
    return comparison
