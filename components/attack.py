"""attack: a battle of adversarial rounds against the champion."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def attack(config: str, overrides: str, champion_version: int,
           battle: Output[Dataset]) -> NamedTuple("AttackOutputs", battle_id=str, evasion_rate=float):
    """Attack the champion with the toxic training texts; resumes its unfinished battle if there is one.

    Args:
        config: Path of an arena.yaml in the step's container, or its YAML text; empty for the default lookup.
        overrides: YAML mapping merged over the config.
        champion_version: Registry version of the model under attack.
        battle: The battle summary (JSON): id, rounds, evasions per strategy.

    Returns:
        battle_id: The battle's id in the store.
        evasion_rate: Share of rounds whose attacked text evaded the champion.
    """
    from collections import namedtuple

    from content_arena import stages

    result = stages.attack(config, overrides, champion_version, battle.path)
    battle.metadata.update(battle_id=result["battle_id"], rounds=result["rounds"], evaded=result["evaded"])
    return namedtuple("AttackOutputs", ["battle_id", "evasion_rate"])(result["battle_id"], result["evasion_rate"])
