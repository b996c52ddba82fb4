"""rollout: canary rollout of the new champion to the defender InferenceService."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def rollout(config: str, overrides: str, version: int, previous_version: int, dry_run: bool, pvc_root: str,
            report: Output[Dataset]) -> str:
    """Publish the version, canary it on KServe, judge it on Prometheus, then promote or roll back.

    Args:
        config: Path of an arena.yaml in the step's container, or its YAML text; empty for the default lookup.
        overrides: YAML mapping merged over the config.
        version: Registry version to roll out.
        previous_version: The version served before (restored as champion on rollback).
        dry_run: Only compute the patch; contact no cluster.
        pvc_root: Where the model storage claim is mounted (<pvc_root>/<claim>) for pvc:// storage URIs.
        report: The rollout's outcome, reasons, revisions, metrics and patches (JSON).

    Returns:
        "promoted", "rolled_back" or "dry_run".
    """
    from content_arena import stages

    result = stages.rollout(config, overrides, version, previous_version=previous_version, dry_run=dry_run,
                            pvc_root=pvc_root or None, out=report.path)
    report.metadata.update(outcome=result["outcome"], storage_uri=result["storage_uri"])
    return result["outcome"]
