"""collect_failures: the battle's evasions as training data."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def collect_failures(config: str, overrides: str, battle: Input[Dataset], failures: Output[Dataset]) -> int:
    """Every evaded round of the battle, unique by normalised text, stored as training samples.

    Args:
        config: Path of an arena.yaml in the step's container, or its YAML text; empty for the default lookup.
        overrides: YAML mapping merged over the config.
        battle: The battle summary of the attack step.
        failures: One JSON object per line: original_text, attacked_text, strategy, battle_id.

    Returns:
        The number of unique failures.
    """
    from content_arena import stages

    result = stages.collect(config, overrides, battle.path, failures.path)
    failures.metadata.update(count=result["failures"], duplicates=result["duplicates"])
    return result["failures"]
