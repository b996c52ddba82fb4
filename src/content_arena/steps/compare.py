"""compare: champion vs challenger on the same sets; should the challenger be promoted, and why.

The promoter's rules (:func:`content_arena.model_promoter.compare`) decide; a caller may add **checks**
that can veto a promotion the rules would make. A check is any callable taking the champion's and the
challenger's :class:`~content_arena.steps.evaluate.Evaluation` and returning the reasons it rejects the
challenger (none: it passes). Checks run only when the rules would promote: they are for costlier
questions (say, re-evaluating both models on earlier cycles' sets) that matter only then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from content_arena import model_promoter
from content_arena.model_promoter import Comparison
from content_arena.steps.evaluate import Evaluation
from content_arena.steps.workspace import Workspace

# (champion, challenger) -> reasons to reject the challenger; empty when it passes.
PromotionCheck = Callable[[Evaluation, Evaluation], Iterable[str]]


def compare_models(ws: Workspace, champion: Evaluation, challenger: Evaluation,
                   checks: Sequence[PromotionCheck] = ()) -> Comparison:
    """The promotion decision, logged with the challenger's metrics as the ``evaluate-challenger`` MLflow run.

    Args:
        ws: The workspace.
        champion: The champion's evaluation.
        challenger: The challenger's evaluation on the same sets.
        checks: Extra checks that may veto a promotion (see the module's docstring); every one runs, so
            the reasons name every failed check.

    Returns:
        The decision, its reasons (the rules' first, then the checks') and the metric deltas.
    """
    comparison = model_promoter.compare(champion.report, challenger.report, ws.config.quality_gate)
    if comparison.promote and checks:
        vetoes = [str(reason) for check in checks for reason in check(champion, challenger)]
        if vetoes:
            comparison.promote = False
            comparison.reasons.extend(vetoes)
    tags = {"stage": "compare", "model_version": challenger.version}
    with ws.registry.run("evaluate-challenger", tags=tags) as run:
        run.log_metrics(challenger.metrics)
        run.set_tags({"promote": comparison.promote})
    return comparison
