"""Kubeflow Pipelines components of the adversarial loop.

One lightweight Python component per stage. Each is a thin wrapper: it imports
:mod:`content_arena.stages` inside its body (the body runs in the component image, not here) and
maps the stage's files and results onto typed KFP artifacts and parameters. The behaviour lives in
the library; the pipeline in ``pipelines/adversarial_loop.py`` wires the components together.
"""

from components.attack import attack
from components.augment import augment
from components.champion import champion
from components.collect import collect_failures
from components.compare import compare
from components.evaluate import evaluate
from components.gate import quality_gate
from components.images import COMPONENTS_IMAGE, TRAINER_IMAGE, VERSION
from components.promote import promote
from components.rollout import rollout
from components.train import train_challenger

__all__ = [
    "COMPONENTS_IMAGE",
    "TRAINER_IMAGE",
    "VERSION",
    "attack",
    "augment",
    "champion",
    "collect_failures",
    "compare",
    "evaluate",
    "promote",
    "quality_gate",
    "rollout",
    "train_challenger",
]
