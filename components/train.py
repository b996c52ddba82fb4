"""train_challenger: LoRA / QLoRA fine-tuning of the champion on the augmented set (GPU step)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.images import TRAINER_IMAGE


@dsl.component(base_image=TRAINER_IMAGE, install_kfp_package=False)
def train_challenger(config: str, overrides: str, champion_version: int, battle_id: str, examples: Input[Dataset],
                     challenger: Output[Model], metrics: Output[Metrics]) -> int:
    """Train the challenger from the champion's weights and register it with the challenger alias.

    Args:
        config: Path of an arena.yaml in the step's container, or its YAML text; empty for the default lookup.
        overrides: YAML mapping merged over the config.
        champion_version: Registry version of the champion whose weights are adapted.
        battle_id: The battle the training data came from (an MLflow run tag).
        examples: The augmented training set (JSONL).
        challenger: The merged challenger model (safetensors, tokenizer, manifest; metadata: uri, version, champion_version).
        metrics: Validation metrics of the best epoch.

    Returns:
        The challenger's registry version.
    """
    from content_arena import stages

    result = stages.train(config, overrides, champion_version, examples.path, challenger.path, battle_id=battle_id)
    challenger.metadata.update(version=result["version"], uri=result["uri"], mode=result["mode"],
                               n_train=result["n_train"], champion_version=result["champion_version"])
    for name, value in sorted(result["val_metrics"].items()):
        metrics.log_metric(name, float(value))
    return result["version"]
