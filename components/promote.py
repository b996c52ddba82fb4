"""promote: move the champion alias, or mark the challenger rejected."""

from kfp import dsl
from kfp.dsl import Dataset, Input

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def promote(config: str, overrides: str, comparison: Input[Dataset]) -> bool:
    """Apply the comparison's decision to the registry and the store.

    Args:
        config: Path of an arena.yaml in the step's container, or its YAML text; empty for the default lookup.
        overrides: YAML mapping merged over the config.
        comparison: The compare step's decision.

    Returns:
        Whether the challenger is now the champion (the pipeline branches on it).
    """
    from content_arena import stages

    return stages.promote(config, overrides, comparison.path)["promoted"]
