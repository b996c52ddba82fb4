"""champion: the registered champion, trained and registered first when the registry has none."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Model, Output

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def champion(config: str, overrides: str, model: Output[Model]) -> NamedTuple("ChampionOutputs", version=int, bootstrapped=bool):
    """Resolve the champion model version (bootstrap the first one when there is none).

    Args:
        config: Path of an arena.yaml in the step's container, or its YAML text; empty for the default lookup.
        overrides: YAML mapping merged over the config; $(NAME) is filled from the environment.
        model: A reference to the registered champion (metadata: version, uri).

    Returns:
        version: The champion's registry version.
        bootstrapped: Whether this step trained and registered it.
    """
    from collections import namedtuple

    from content_arena import stages

    result = stages.champion(config, overrides, model.path)
    model.metadata.update(version=result["version"], uri=result["uri"], bootstrapped=result["bootstrapped"])
    return namedtuple("ChampionOutputs", ["version", "bootstrapped"])(result["version"], result["bootstrapped"])
