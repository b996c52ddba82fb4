"""Review samples: kept from live traffic, listed and labelled with `arena review`, then training data."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import update

from content_arena.data import Example
from content_arena.live_samples import LiveSampleStore, ReviewSampler, live_samples, masked, with_reviewed
from content_arena.monitoring import ReviewCandidate
from content_arena.store import open_store
from content_arena.store.models import utc_now


def candidate(text: str, score: float = 0.51, reason: str = "near_threshold") -> ReviewCandidate:
    return ReviewCandidate(text=text, score=score, threshold=0.5, model_version="3", reason=reason, kinds=["jamo"])


@pytest.fixture
def samples(tmp_path: Path):
    store = open_store(f"sqlite:///{tmp_path / 'arena.db'}")
    yield LiveSampleStore(store)
    store.close()


def test_kept_texts_are_listed_once_each_and_labelled_ones_become_live_training_data(samples) -> None:
    assert samples.add([candidate("경계 문장"), candidate("경계 문장"), candidate("ㄱㅕㅇㄱㅖ", 0.1, "heavily_normalized")]) == 2
    assert samples.add([candidate("경계 문장")]) == 0  # kept already
    pending = samples.list()
    assert [(s.text, s.reason, s.kinds, s.label) for s in pending] == [
        ("경계 문장", "near_threshold", ["jamo"], None), ("ㄱㅕㅇㄱㅖ", "heavily_normalized", ["jamo"], None)]
    labelled = samples.label(pending[0].id, 1, by="reviewer")
    assert (labelled.label, labelled.labelled_by) == (1, "reviewer") and labelled.labelled_at is not None
    assert [s.text for s in samples.list()] == ["ㄱㅕㅇㄱㅖ"]
    assert [s.text for s in samples.list(status="labelled")] == ["경계 문장"]
    live = samples.store.list_training_samples(source="live")
    assert [(s.text, s.label) for s in live] == [("경계 문장", 1)]
    with pytest.raises(ValueError, match="0 \\(clean\\) or 1 \\(toxic\\)"):
        samples.label(pending[1].id, 2, by="reviewer")
    with pytest.raises(ValueError, match="no live sample 999"):
        samples.label(999, 0, by="reviewer")


def test_labelled_samples_join_the_challengers_training_set_once(samples) -> None:
    samples.add([candidate("새로운 욕설"), candidate("그냥 문장")])
    first, second = samples.list()
    samples.label(first.id, 1, by="r")
    train = [Example("기존 예시", 0), Example("그냥 문장", 0)]
    mixed = with_reviewed(train, samples.store)
    assert mixed[:2] == train
    assert [(e.text, e.label, e.source) for e in mixed[2:]] == [("새로운 욕설", 1, "live")]
    samples.label(second.id, 0, by="r")
    assert len(with_reviewed(train, samples.store)) == 3  # "그냥 문장" is there already


def test_unlabelled_samples_past_retention_are_deleted_labelled_ones_stay(samples) -> None:
    samples.add([candidate("오래된 것"), candidate("라벨 붙은 것"), candidate("새 것")])
    old, kept, new = samples.list()
    samples.label(kept.id, 0, by="r")
    with samples._transaction() as connection:
        connection.execute(update(live_samples).where(live_samples.c.id.in_([old.id, kept.id]))
                           .values(created_at=utc_now() - timedelta(days=40)))
    assert samples.purge(30) == 1
    assert [s.text for s in samples.list(status="all")] == ["라벨 붙은 것", "새 것"]


def test_the_sampler_logs_no_text_at_info(samples, caplog: pytest.LogCaptureFixture) -> None:
    sampler = ReviewSampler(samples, retention_days=30)
    secret = "아주 비밀스러운 문장"
    with caplog.at_level(logging.INFO, logger="content_arena.live_samples"):
        sampler.offer([candidate(secret)])
        assert sampler.flush() == 1
    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert info and all(secret not in line for line in info)
    assert any(masked(secret) in line for line in info)


def test_arena_review_lists_and_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from content_arena.cli import app

    for key in [k for k in __import__("os").environ if k.startswith("ARENA_")]:
        monkeypatch.delenv(key)
    config = tmp_path / "arena.yaml"
    config.write_text(yaml.safe_dump({"home": str(tmp_path / ".arena")}), encoding="utf-8")
    store = open_store(f"sqlite:///{tmp_path / '.arena' / 'arena.db'}")
    LiveSampleStore(store).add([candidate("검토할 문장")])
    store.close()
    runner = CliRunner()
    listed = runner.invoke(app, ["review", "list", "--config", str(config), "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout.strip().splitlines()[-1])["samples"]
    assert [(r["text"], r["label"]) for r in rows] == [("검토할 문장", None)]
    done = runner.invoke(app, ["review", "label", str(rows[0]["id"]), "toxic", "--by", "tester", "--config", str(config),
                               "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout.strip().splitlines()[-1])["label"] == 1
    bad = runner.invoke(app, ["review", "label", str(rows[0]["id"]), "maybe", "--config", str(config)])
    assert bad.exit_code == 2 and "label must be toxic, clean, 1 or 0" in bad.output
    assert json.loads(runner.invoke(app, ["review", "list", "--config", str(config), "--json"]).stdout
                      .strip().splitlines()[-1])["samples"] == []
