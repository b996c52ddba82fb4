"""compare: champion vs challenger on the same sets."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def compare(config: str, overrides: str, champion_report: Input[Dataset], challenger_report: Input[Dataset],
            comparison: Output[Dataset]) -> NamedTuple("CompareOutputs", promote=bool, reasons=str):
    """Promote only a challenger that is more robust without losing clean F1 or flagging garbled clean text.

    Args:
        config: Path of an arena.yaml in the step's container, or its YAML text; empty for the default lookup.
        overrides: YAML mapping merged over the config.
        champion_report: The champion's evaluation report.
        challenger_report: The challenger's evaluation report on the same sets.
        comparison: The decision, its reasons and the metric deltas (JSON).

    Returns:
        promote: Whether the challenger should become champion.
        reasons: Why, one per line.
    """
    from collections import namedtuple

    from content_arena import stages

    result = stages.compare(config, overrides, champion_report.path, challenger_report.path, comparison.path)
    comparison.metadata.update(promote=result["promote"])
    return namedtuple("CompareOutputs", ["promote", "reasons"])(result["promote"], "\n".join(result["reasons"]))
