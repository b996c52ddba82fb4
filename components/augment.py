"""augment: the challenger's training set."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def augment(config: str, overrides: str, failures: Input[Dataset], battle: Input[Dataset],
            examples: Output[Dataset]) -> int:
    """Failures expanded into variants, attacked clean negatives, and replayed original examples.

    Args:
        config: Path of an arena.yaml in the step's container, or its YAML text; empty for the default lookup.
        overrides: YAML mapping merged over the config.
        failures: The collected failures (JSONL).
        battle: The battle summary (for its id).
        examples: One labelled example per line: text, label, lang, source.

    Returns:
        The number of training examples.
    """
    from content_arena import stages

    result = stages.augment(config, overrides, failures.path, battle.path, examples.path)
    examples.metadata.update(count=result["examples"], toxic=result["toxic"], clean=result["clean"])
    return result["examples"]
