"""The drift reference in a model's manifest: written from validation texts, read back by the runtime."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from content_arena.monitoring import reference_of, write_score_reference


def test_the_reference_is_written_into_the_manifest_and_read_back(champion_model_dir: Path, tmp_path: Path) -> None:
    from content_arena.defender import TransformerDefender
    from content_arena.defender.artifacts import read_manifest, verify_model_dir, write_manifest

    model_dir = tmp_path / "model"
    shutil.copytree(champion_model_dir, model_dir)
    # The shared champion was trained with validation texts, so it has a reference: start without one.
    manifest = read_manifest(model_dir)
    manifest.info.pop("score_reference", None)
    write_manifest(model_dir, manifest)
    defender = TransformerDefender(model_dir).load()
    assert reference_of(defender) is None
    reference = write_score_reference(model_dir, ["좋은 하루", "씨발 꺼져", "you idiot", "thanks"])
    assert reference is not None and reference["n"] == 4 and len(reference["shares"]) == 10
    verify_model_dir(model_dir)  # the weights' checksums still hold
    assert json.loads((model_dir / "arena_model.json").read_text())["info"]["score_reference"] == reference
    assert reference_of(TransformerDefender(model_dir).load()) == reference
    assert write_score_reference(model_dir, []) is None
