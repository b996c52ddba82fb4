"""quality_gate: does the champion still hold?"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def quality_gate(config: str, overrides: str, report: Input[Dataset], gate: Output[Dataset]) -> str:
    """The quality gate on the champion's evaluation: PASS, or FAIL (retrain) with every reason.

    Args:
        config: Path of an arena.yaml in the step's container, or its YAML text; empty for the default lookup.
        overrides: YAML mapping merged over the config.
        report: The champion's evaluation report.
        gate: The decision, its reasons and every check's value (JSON; metadata: decision, reasons).

    Returns:
        The decision, "PASS" or "FAIL" (the pipeline branches on it).
    """
    from content_arena import stages

    result = stages.gate(config, overrides, report.path, gate.path)
    gate.metadata.update(decision=result["decision"], reasons=result["reasons"])
    return result["decision"]
