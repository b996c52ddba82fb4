"""evaluate: clean and adversarial metrics of a model on the held-out sets."""

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def evaluate(config: str, overrides: str, model: Input[Model], role: str, report: Output[Dataset],
             metrics: Output[Metrics], confusion: Output[ClassificationMetrics]):
    """Evaluate a registered model on the held-out clean set and its attacked copies.

    Args:
        config: Path of an arena.yaml in the step's container, or its YAML text; empty for the default lookup.
        overrides: YAML mapping merged over the config.
        model: The model to evaluate (metadata: uri, version; a challenger's champion_version).
        role: "champion" (its first recorded F1 is the gate's reference) or "challenger".
        report: The full evaluation report (JSON), read by the gate and the comparison.
        metrics: Clean F1 / precision / recall / FPR / AUROC, overall and per-strategy evasion rates.
        confusion: Confusion matrix on the clean held-out set.
    """
    from content_arena import stages

    version = model.metadata.get("version")
    against = model.metadata.get("champion_version")  # a challenger is attacked where its champion was
    result = stages.evaluate(config, overrides, model.metadata.get("uri") or model.path, report.path,
                             version=int(version) if version is not None else None, role=role,
                             champion_version=int(against) if against is not None else None)
    for name, value in sorted(result["metrics"].items()):
        metrics.log_metric(name, float(value))
    confusion.log_confusion_matrix(result["confusion_matrix"]["labels"], result["confusion_matrix"]["matrix"])
    report.metadata.update(role=role, version=version)
