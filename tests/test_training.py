"""A tiny real training run: champion (full), challenger (LoRA), save/load, integrity, registry."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from content_arena.config import load_config
from content_arena.data import load_seed_corpus, split_examples
from content_arena.defender import ModelIntegrityError, ModelNotFound, TransformerDefender, load_defender
from content_arena.defender.artifacts import read_manifest
from content_arena.model_registry import CHAMPION, ModelRegistry
from content_arena.training import train_challenger, train_champion
from content_arena.training.lora import choose_adapter_mode
from support.configs import TINY

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus():
    train, test = split_examples(load_seed_corpus(), test_fraction=0.2, seed=0)
    return train, test


@pytest.fixture(scope="module")
def champion(corpus, tmp_path_factory):
    """Trained once for the module; tests that modify files work on a copy."""
    home = tmp_path_factory.mktemp("arena")
    # The encoder is kept whatever it adds, so that the tests below exercise it (and LoRA on it);
    # the encoder-less champion has its own tests.
    cfg = load_config(None, home=str(home / ".arena"), **{**TINY, "model": {**TINY["model"], "encoder": True}},
                      experimental={"min_encoder_gain": None})
    train, test = corpus
    result = train_champion(train, home / "champion", cfg, val_examples=test[:200])
    return cfg, result


@pytest.fixture(scope="module")
def branch_champion(corpus, tmp_path_factory):
    """A champion with an encoder that cannot earn its place (a gain of 1.0 in AUROC is asked for)."""
    home = tmp_path_factory.mktemp("arena-branch")
    cfg = load_config(None, home=str(home / ".arena"), **{**TINY, "model": {**TINY["model"], "encoder": True}},
                      experimental={"min_encoder_gain": 1.0})
    train, test = corpus
    result = train_champion(train, home / "champion", cfg, val_examples=test[:200])
    return cfg, result


def test_champion_learns_and_round_trips(champion, corpus):
    cfg, result = champion
    assert result.mode == "full"
    # n-gram branch first (stage 1, one convex solve), then the encoder on top (stage 2)
    assert [row["stage"] for row in result.history] == [1.0] + [2.0] * cfg.training.epochs
    (first,) = [row for row in result.history if row["stage"] == 1.0]
    assert first["c"] in (0.5, 1.0, 2.0, 4.0) and first["val_auroc"] > 0.7
    second = [row for row in result.history if row["stage"] == 2.0]
    assert second[-1]["train_loss"] < second[0]["train_loss"]
    defender = TransformerDefender(result.model_dir).load()
    _, test = corpus
    scores = defender.scores([e.text for e in test])
    labels = np.array([e.label for e in test])
    # Better than chance on held-out seed texts after three tiny epochs.
    assert scores[labels == 1].mean() > scores[labels == 0].mean() + 0.1
    assert ((scores >= 0) & (scores <= 1)).all()


def test_batching_and_order_do_not_change_scores(champion, corpus):
    _, result = champion
    texts = [e.text for e in corpus[1][:50]]
    batched = TransformerDefender(result.model_dir, batch_size=7).load().scores(texts)
    single = np.array([TransformerDefender(result.model_dir, batch_size=64).load().scores([t])[0] for t in texts[:5]])
    np.testing.assert_allclose(batched[:5], single, atol=1e-5)
    reversed_scores = TransformerDefender(result.model_dir).load().scores(texts[::-1])
    np.testing.assert_allclose(reversed_scores[::-1], batched, atol=1e-5)


def test_classify_shape_and_empty_batch(champion):
    _, result = champion
    defender = TransformerDefender(result.model_dir).load()
    out = defender.classify(["안녕하세요 좋은 하루", "x" * 10_000, ""])
    assert [sorted(o) for o in out] == [["confidence", "is_toxic", "toxic_score"]] * 3
    # confidence: the calibrated probability of the class decided, so 1 - score when not flagged
    assert all(o["confidence"] == pytest.approx(o["toxic_score"] if o["is_toxic"] else 1 - o["toxic_score"])
               for o in out)
    assert defender.classify([]) == []


def test_saved_as_safetensors_with_checksums(champion):
    _, result = champion
    files = {p.name for p in result.model_dir.iterdir()}
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    manifest = read_manifest(result.model_dir)
    assert set(manifest.files) >= {"model.safetensors", "tokenizer.json", "config.json"}


def test_champion_saves_a_word_recognizer_that_reads_garbled_words_back(branch_champion, corpus, tmp_path):
    from content_arena.defender.artifacts import write_manifest
    from content_arena.defender.recognizer import RECOGNIZER_FILE

    _, result = branch_champion
    assert RECOGNIZER_FILE in read_manifest(result.model_dir).files  # checksummed like the weights
    defender = TransformerDefender(result.model_dir).load()
    assert defender.recognizer is not None and len(defender.recognizer) > 500
    train, _ = corpus
    # A toxic training text with one long word garbled (a letter doubled, a vowel changed) scores as written.
    text = next(e.text for e in train if e.label == 1 and any(len(w) >= 6 and w.isascii() and w.isalpha()
                                                              for w in e.text.split()))
    word = next(w for w in text.split() if len(w) >= 6 and w.isascii() and w.isalpha())
    garbled = text.replace(word, word[:2] + word[2] + word[2:], 1)
    assert defender.preprocess([garbled]) == defender.preprocess([text])
    np.testing.assert_allclose(defender.scores([garbled]), defender.scores([text]), atol=1e-6)
    # A model saved before recognisers existed (no file) loads without one and scores the raw words.
    copy = shutil.copytree(result.model_dir, tmp_path / "old")
    (copy / RECOGNIZER_FILE).unlink()
    write_manifest(copy, read_manifest(copy))
    old = TransformerDefender(copy).load()
    assert old.recognizer is None
    assert old.preprocess([garbled]) != old.preprocess([text])


def test_word_recognition_off_saves_no_recognizer(corpus, tmp_path):
    from content_arena.defender.recognizer import RECOGNIZER_FILE

    cfg = load_config(None, home=str(tmp_path / ".arena"), **TINY, experimental={"word_recognition": False})
    train, test = corpus
    result = train_champion(train[:300], tmp_path / "champion", cfg, val_examples=test[:50])
    assert not (result.model_dir / RECOGNIZER_FILE).exists()
    assert TransformerDefender(result.model_dir).load().recognizer is None


def test_tampered_weights_are_refused(champion, tmp_path):
    _, result = champion
    copy = shutil.copytree(result.model_dir, tmp_path / "copy")
    TransformerDefender(copy).load()
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="model.safetensors"):
        TransformerDefender(copy).load()


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFound, match="no defender"):
        load_defender(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound, match="arena_model.json"):
        TransformerDefender(tmp_path / "empty").load()


def test_lora_challenger_merges_into_plain_weights(champion, corpus, tmp_path, caplog):
    cfg, result = champion
    train, test = corpus
    with caplog.at_level(logging.INFO):
        challenger = train_challenger(result.model_dir, train[:300], tmp_path / "challenger", cfg, val_examples=test[:100])
    assert challenger.mode == "lora"  # no CUDA here
    assert any("QLoRA needs CUDA" in r.message or "LoRA" in r.message for r in caplog.records)
    tensors = load_file(challenger.model_dir / "model.safetensors")
    assert not any("lora" in k for k in tensors)
    base = load_file(result.model_dir / "model.safetensors")
    assert set(tensors) == set(base)
    changed = [k for k in base if not np.allclose(base[k].numpy(), tensors[k].numpy())]
    assert any("attention" in k for k in changed) and any("classifier" in k for k in changed)
    assert any("word_embeddings" in k for k in changed)  # evasions need new token meanings
    assert not any("position_embeddings" in k or "LayerNorm" in k for k in changed)  # untargeted weights stay
    TransformerDefender(challenger.model_dir).load().classify(["테스트"])


def test_encoder_without_gain_is_dropped_and_never_run(branch_champion, corpus, caplog):
    from transformers import BertModel

    cfg, result = branch_champion
    manifest = read_manifest(result.model_dir)
    assert manifest.info["use_encoder"] is False and result.best_epoch == 0
    # The stage-1 branch's validation metrics are the champion's.
    (stage1,) = [row for row in result.history if row["stage"] == 1.0]
    assert result.val_metrics["val_f1"] == stage1["val_f1"]
    defender = TransformerDefender(result.model_dir).load()
    assert defender.model.config.use_encoder is False
    texts = [e.text for e in corpus[1][:40]]
    expected = defender.scores(texts)
    calls = []
    hook = defender.model.bert.register_forward_hook(lambda *args: calls.append(1))
    try:
        assert np.allclose(defender.scores(texts), expected)
    finally:
        hook.remove()
    assert calls == []  # the encoder is not run at all
    # Its scores are the n-gram branch's alone.
    defender.model.branches = "ngram"
    np.testing.assert_allclose(defender.scores(texts), expected, atol=1e-6)
    assert isinstance(defender.model.bert, BertModel)  # weights still in the file: old loaders still work


def test_challenger_of_an_encoderless_champion_adapts_the_branch(branch_champion, corpus, tmp_path):
    cfg, result = branch_champion
    train, test = corpus
    challenger = train_challenger(result.model_dir, train[:300], tmp_path / "challenger", cfg, val_examples=test[:100])
    base = load_file(result.model_dir / "model.safetensors")
    tensors = load_file(challenger.model_dir / "model.safetensors")
    assert set(tensors) == set(base)
    changed = {k for k in base if not np.allclose(base[k].numpy(), tensors[k].numpy())}
    assert "ngram_embeddings.weight" in changed and any(k.startswith("ngram_classifier") for k in changed)
    assert not any(k.startswith(("bert.", "classifier.")) for k in changed)  # nothing trained that never runs
    assert TransformerDefender(challenger.model_dir).load().model.config.use_encoder is False
    # The champion's word recogniser, as it was: the challenger's garbled training texts are not words to know.
    from content_arena.defender.recognizer import RECOGNIZER_FILE

    recognizer = (challenger.model_dir / RECOGNIZER_FILE).read_bytes()
    assert recognizer == (result.model_dir / RECOGNIZER_FILE).read_bytes()


def test_challenger_weighs_the_ngrams_of_its_training_texts_that_its_champion_never_saw(
    branch_champion, corpus, tmp_path, caplog
):
    from content_arena.attacks import get_strategy
    from content_arena.data import Example
    from content_arena.defender.ngram_bert import ngram_document_frequency
    from content_arena.training.loop import encode

    cfg, result = branch_champion
    train, test = corpus
    champion = TransformerDefender(result.model_dir).load()
    assert champion.model.config.ngram_min_df == cfg.experimental.ngram_min_df == 1
    # Evasions of the toxic texts: n-grams the champion's corpus never had.
    spacing = get_strategy("spacing")
    evasions = [Example(spacing.attack(e.text, seed=k), 1) for k, e in enumerate(train[:300]) if e.label == 1]
    with caplog.at_level(logging.INFO, logger="content_arena.training"):
        challenger = train_challenger(result.model_dir, [*train[:200], *evasions], tmp_path / "challenger", cfg,
                                      val_examples=test[:100])
    assert any("buckets unseen by the champion" in r.getMessage() for r in caplog.records)
    before = champion.model.ngram_idf
    after = TransformerDefender(challenger.model_dir).load().model.ngram_idf
    kept = before > 0
    torch.testing.assert_close(after[kept], before[kept])  # the champion's weights stay as they were
    opened = (before == 0) & (after > 0)
    assert int(opened.sum()) > 0
    # ... and every bucket opened is one of the challenger's training n-grams (as the recogniser reads them).
    ids = encode(champion.tokenizer, [e.text for e in [*train[:200], *evasions]], cfg.model.max_length,
                 view=champion.recognizer.many)
    df, _ = ngram_document_frequency(ids, cfg.model.ngram_orders, cfg.model.ngram_buckets)
    assert bool((df[opened] > 0).all())


def test_adapter_mode_falls_back_to_lora_without_cuda(tiny_config, caplog):
    cfg = tiny_config(training={"quantization": "4bit"})
    with caplog.at_level(logging.WARNING):
        assert choose_adapter_mode(cfg.training) == "lora"
    assert "falling back to LoRA on CPU" in caplog.text


def test_registry_versions_aliases_and_download(champion, tmp_path):
    _, result = champion
    cfg = load_config(None, home=str(tmp_path / ".arena"), **TINY)
    registry = ModelRegistry.from_config(cfg)
    with registry.run("t1") as run:
        run.log_metrics({"f1": 0.5}, step=1)
        v1 = registry.register(result.model_dir, run)
    with registry.run("t2") as run:
        v2 = registry.register(result.model_dir, run)
    assert (v1, v2) == (1, 2)
    assert registry.version_for(CHAMPION) is None
    registry.set_alias(CHAMPION, v1)
    assert registry.version_for(CHAMPION) == 1
    registry.set_alias(CHAMPION, v2)
    versions = registry.versions()
    assert [v.version for v in versions] == [2, 1]
    assert versions[0].aliases == (CHAMPION,) and versions[1].aliases == ()
    local = registry.download("models:/content-filter@champion")
    assert local.name == "v2" and (local / "model.safetensors").is_file()
    defender = load_defender("models:/content-filter@champion", cfg)
    assert defender.ready
    with pytest.raises(ModelNotFound, match="alias 'challenger'"):
        registry.download("models:/content-filter@challenger")


def test_mlflow_http_settings_reach_mlflow_client(tmp_path, monkeypatch):
    """``mlflow.http_*`` become the variables MLflow's HTTP client reads: with no retries, a tracking
    server that refuses connections fails the call at once as a RegistryError (MLflow's defaults, 7
    retries with back-off factor 2, would keep this test waiting for minutes)."""
    import socket

    import mlflow.environment_variables as mlflow_env

    from content_arena.model_registry import RegistryError

    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)  # restored by monkeypatch after the test
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    cfg = load_config(None, home=str(tmp_path), mlflow={
        "tracking_uri": f"http://127.0.0.1:{closed_port}", "http_retries": 0, "http_backoff_factor": 1,
        "http_timeout_s": 5,
    })
    registry = ModelRegistry.from_config(cfg)
    assert mlflow_env.MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 0
    assert mlflow_env.MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get() == 1
    assert mlflow_env.MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 5
    with pytest.raises(RegistryError, match=f"127.0.0.1:{closed_port}"):
        registry.versions()

    unset = load_config(None, home=str(tmp_path))
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    ModelRegistry.from_config(unset)
    assert mlflow_env.MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 7  # None keeps MLflow's own default


def test_rule_variants_keep_labels_take_turns_and_repeat():
    from content_arena.attacks import get_strategy
    from content_arena.data import Example
    from content_arena.data_augmentor import with_rule_variants

    examples = [Example("시발 진짜 짜증나네", 1), Example("오늘 시간 있어?", 0), Example("좋은 아침입니다", 0),
                Example("this is fucking stupid", 1), Example("see you at six", 0), Example("병신 같은 소리", 1)]
    strategies = [get_strategy("spacing"), get_strategy("leet_phonetic")]
    out = with_rule_variants(examples, strategies, share=1.0, seed=3)
    assert out[: len(examples)] == examples
    # share 1.0: every text gets a variant, the strategies take turns, labels are kept, and a variant
    # identical to its original is dropped.
    expected = []
    for index, example in enumerate(examples):
        strategy = strategies[index % 2]
        variant = strategy.attack(example.text, seed=3 + index)
        if variant != example.text:
            expected.append((variant, example.label, f"harden:{strategy.name}"))
    assert [(e.text, e.label, e.source) for e in out[len(examples):]] == expected
    assert {source for *_, source in expected} == {"harden:spacing", "harden:leet_phonetic"}
    assert out == with_rule_variants(examples, strategies, share=1.0, seed=3)  # deterministic
    many = examples * 20
    half = with_rule_variants(many, strategies, share=0.5, seed=3)
    assert len(many) * 1.3 < len(half) < len(many) * 1.7
    assert with_rule_variants(examples, [], share=1.0) == examples


def test_replay_mixes_in_a_multiple_of_the_augmented_set_or_every_original():
    from content_arena.config import AugmentConfig
    from content_arena.data import Example
    from content_arena.data_augmentor import with_replay

    augmented = [Example(f"variant {i}", i % 2) for i in range(10)]
    original = [Example(f"original {i}", i % 2) for i in range(50)]
    texts = lambda examples: sorted(e.text for e in examples)  # noqa: E731

    assert AugmentConfig().replay_ratio is None  # the default replays the whole fit set
    everything = with_replay(augmented, original, None, seed=1)
    assert texts(everything) == texts(augmented + original)
    assert everything != augmented + original  # shuffled together, not appended
    two = with_replay(augmented, original, 2.0, seed=1)
    assert len(two) == 30 and set(texts(augmented)) <= set(texts(two))
    assert two == with_replay(augmented, original, 2.0, seed=1)  # deterministic under the seed
    assert len(with_replay(augmented, original, 10.0, seed=1)) == 60  # capped at the originals
    assert texts(with_replay(augmented, original, 0.0)) == texts(augmented)


def test_hardened_champion_trains_on_rule_variants(corpus, tmp_path):
    from content_arena.attacks import UnknownStrategyError

    train, test = corpus
    cfg = load_config(None, home=str(tmp_path / ".arena"),
                      **TINY, experimental={"harden_strategies": ["spacing", "leet_phonetic"], "harden_share": 0.5})
    result = train_champion(train, tmp_path / "hardened", cfg, val_examples=test[:100])
    assert len(train) * 1.3 < result.n_train < len(train) * 1.6
    defender = TransformerDefender(result.model_dir).load()
    assert defender.scores(["오늘 시간 있어?"]).shape == (1,)
    # The recogniser knows the training texts' words, not the words the rule variants garbled.
    from content_arena.attacks import resolve_strategies
    from content_arena.data_augmentor import with_rule_variants
    from content_arena.defender.normalizer import normalize_many

    variants = [e.text for e in with_rule_variants(train, resolve_strategies(["spacing", "leet_phonetic"]), 0.5,
                                                   seed=cfg.training.seed) if (e.source or "").startswith("harden:")]
    known = {w.lower() for t in normalize_many([e.text for e in train]) for w in t.split()}
    garbled = {w.lower() for t in normalize_many(variants) for w in t.split()} - known
    assert garbled and not garbled & set(defender.recognizer.counts)
    assert known <= set(defender.recognizer.counts)

    bad = load_config(None, home=str(tmp_path / ".arena"),
                      **TINY, experimental={"harden_strategies": ["no_such_rule"]})
    with pytest.raises(UnknownStrategyError, match="no_such_rule"):
        train_champion(train, tmp_path / "bad", bad, val_examples=test[:100])


def test_a_saved_champion_records_its_policy_and_its_calibrator_reproduces_the_scores_after_reload(champion, corpus):
    cfg, result = champion
    _, test = corpus
    val = test[:200]  # what the module's champion validated on
    manifest = read_manifest(result.model_dir)
    assert manifest.operating_point == {"metric": "fpr", "value": 0.10}
    assert manifest.calibration["kind"] in ("isotonic", "platt") and manifest.calibration["n"] == len(val)
    assert manifest.validation["threshold_source"] == "policy" and manifest.validation["n"] == len(val)
    assert result.policy is not None and result.policy.threshold == manifest.threshold
    defender = TransformerDefender(result.model_dir).load()
    texts = [e.text for e in val]
    labels = np.array([e.label for e in val])
    scores = defender.scores(texts)
    raw = defender.predict(defender.preprocess(texts))
    np.testing.assert_allclose(scores, defender.calibrator.apply(raw))
    assert defender.calibrator.to_dict() == manifest.calibration and defender.operating_point == manifest.operating_point
    # The threshold flags at most 10% of the validation clean texts, the figure the manifest records.
    flagged_clean = float(np.mean(scores[labels == 0] >= defender.threshold))
    assert flagged_clean <= 0.10
    assert flagged_clean == pytest.approx(manifest.validation["fpr"], abs=0.02)  # float32 scores on reload


def test_a_challenger_gets_its_own_threshold_by_the_same_policy_on_the_same_validation_texts(
    branch_champion, corpus, tmp_path
):
    cfg, result = branch_champion
    train, test = corpus
    val = test[:200]
    attacked = [type(e)(e.text.replace(" ", ""), e.label) for e in val]  # texts for picking the best epoch only
    challenger = train_challenger(result.model_dir, train[:300], tmp_path / "challenger", cfg,
                                  val_examples=val + attacked, policy_examples=val)
    manifest = read_manifest(challenger.model_dir)
    assert manifest.operating_point == read_manifest(result.model_dir).operating_point
    assert manifest.validation["n"] == len(val)  # the clean validation texts, not the attacked copies
    defender = TransformerDefender(challenger.model_dir).load()
    scores = defender.scores([e.text for e in val])
    labels = np.array([e.label for e in val])
    assert float(np.mean(scores[labels == 0] >= defender.threshold)) <= 0.10


def test_with_too_few_validation_texts_the_configured_threshold_is_kept_and_the_manifest_says_why(corpus, tmp_path):
    train, test = corpus
    tiny = {**TINY, "training": {**TINY["training"], "epochs": 1}, "model": {**TINY["model"], "threshold": 0.45}}
    cfg = load_config(None, home=str(tmp_path / "a"), **tiny)
    few = train_champion(train[:200], tmp_path / "few", cfg, val_examples=test[:12])
    manifest = read_manifest(few.model_dir)
    assert manifest.threshold == 0.45 and manifest.calibration["kind"] == "identity"
    assert manifest.operating_point is None and manifest.validation["requested"] == {"metric": "fpr", "value": 0.1}
    assert manifest.validation["threshold_source"] == "configured" and "not applied" in manifest.validation["reason"]
    none = train_champion(train[:200], tmp_path / "none", cfg)
    assert read_manifest(none.model_dir).threshold == 0.45
    assert "no validation texts" in read_manifest(none.model_dir).validation["reason"]


def test_a_model_saved_without_a_policy_loads_with_its_stored_threshold_and_a_warning(champion, corpus, tmp_path,
                                                                                      caplog):
    from content_arena.defender.artifacts import write_manifest

    _, result = champion
    old = tmp_path / "old-model"
    shutil.copytree(result.model_dir, old)
    manifest = read_manifest(old)
    manifest.operating_point = manifest.calibration = manifest.validation = None
    manifest.threshold = 0.37
    write_manifest(old, manifest)
    with caplog.at_level(logging.WARNING, logger="content_arena.defender.transformer"):
        defender = TransformerDefender(old).load()
        TransformerDefender(old).load()
    assert defender.threshold == 0.37 and defender.calibrator.is_identity and defender.operating_point is None
    assert caplog.text.count("saved before operating points existed") == 1  # once per model, not per load
    texts = [e.text for e in corpus[1][:20]]
    np.testing.assert_array_equal(defender.scores(texts), defender.predict(defender.preprocess(texts)))


def test_patience_stops_when_validation_stops_improving_and_keeps_the_best_epoch():
    import torch

    from content_arena.defender.ngram_bert import NgramBertConfig, NgramBertForSequenceClassification
    from content_arena.training.loop import fit

    torch.manual_seed(0)
    config = NgramBertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=16, max_position_embeddings=16, pad_token_id=0, num_labels=2,
                             ngram_buckets=64, ngram_dim=4)
    ids = [[2, 5 + i % 7, 6 + i % 5, 3] for i in range(40)]
    labels = [i % 2 for i in range(40)]

    def run(patience):
        model = NgramBertForSequenceClassification(config)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        # A learning rate this small cannot move validation F1: no epoch beats the starting point.
        result = fit(model, ids, labels, pad_id=0, epochs=5, learning_rate=1e-12, batch_size=8,
                     val_ids=ids[:10], val_labels=labels[:10], keep_initial=True, patience=patience)
        unchanged = all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        return result, unchanged

    stopped, unchanged = run(2)
    assert [row["epoch"] for row in stopped.history] == [1, 2]
    assert stopped.best_epoch == 0 and unchanged  # the starting point was best and is what is left
    full, _ = run(None)
    assert [row["epoch"] for row in full.history] == [1, 2, 3, 4, 5]
