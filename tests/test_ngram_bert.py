"""The default architecture: BERT encoder + hashed token n-gram branch (content_arena.defender.ngram_bert)."""

from __future__ import annotations

import pytest
import torch

from content_arena.defender.ngram_bert import (
    NgramBertConfig,
    NgramBertForSequenceClassification,
    hash_ngrams,
    ngram_document_frequency,
)


def _config(**overrides) -> NgramBertConfig:
    settings = dict(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=40, type_vocab_size=1, pad_token_id=0, num_labels=2,
        ngram_buckets=256, ngram_dim=8, ngram_orders=[1, 2, 3],
    )
    settings.update(overrides)
    return NgramBertConfig(**settings)


def _model(**overrides) -> NgramBertForSequenceClassification:
    torch.manual_seed(0)
    return NgramBertForSequenceClassification(_config(**overrides)).eval()


def test_hash_ngrams_counts_only_real_ngrams_and_is_position_free():
    ids = torch.tensor([[2, 7, 8, 9, 3], [2, 7, 8, 3, 0]])
    mask = (ids != 0).long()
    buckets, real = hash_ngrams(ids, mask, [1, 2, 3], 1000)
    # 5 + 4 + 3 n-gram slots per row; the second row has 4 real tokens: 4 + 3 + 2 real n-grams
    assert buckets.shape == real.shape == (2, 12)
    assert real[0].sum().item() == 12 and real[1].sum().item() == 9
    # the bigram (7, 8) is at the same place in both rows and hashes identically
    assert buckets[0, 5 + 1].item() == buckets[1, 5 + 1].item()
    # the same bigram elsewhere in a sequence gets the same bucket
    shifted = torch.tensor([[2, 5, 7, 8, 3]])
    b2, _ = hash_ngrams(shifted, torch.ones_like(shifted), [2], 1000)
    b1, _ = hash_ngrams(ids[:1], mask[:1], [2], 1000)
    assert b1[0, 1].item() == b2[0, 2].item()
    assert int(buckets.min()) >= 0 and int(buckets.max()) < 1000


def test_orders_hash_apart_and_short_inputs_do_not_fail():
    ids = torch.tensor([[4, 4, 4]])
    buckets, real = hash_ngrams(ids, torch.ones_like(ids), [1, 2, 3], 1 << 20)
    assert len({buckets[0, 0].item(), buckets[0, 3].item(), buckets[0, 5].item()}) == 3
    one = torch.tensor([[4]])
    b, r = hash_ngrams(one, torch.ones_like(one), [2, 3], 64)
    assert r.sum().item() == 0 and b.shape[0] == 1


def test_pooled_ngram_features_are_the_weighted_sum_of_their_embeddings():
    # The plain table pools with one fused embedding_bag; it must equal the gather-and-sum it replaces.
    model = _model(ngram_pooling="idf")
    model.ngram_idf.uniform_(1.0, 3.0)
    ids = torch.tensor([[2, 11, 12, 13, 3, 0], [2, 20, 21, 22, 23, 3]])
    mask = (ids != 0).long()
    buckets, weights = model.ngram_pooling_weights(ids, mask)
    expected = (model.ngram_embeddings(buckets) * weights.unsqueeze(-1)).sum(dim=1)
    torch.testing.assert_close(model.ngram_features(ids, mask), expected)


def test_padding_does_not_change_a_texts_logits():
    model = _model()
    alone = torch.tensor([[2, 11, 12, 13, 3]])
    padded = torch.tensor([[2, 11, 12, 13, 3, 0, 0, 0], [2, 20, 21, 22, 23, 24, 25, 3]])
    with torch.no_grad():
        a = model(input_ids=alone, attention_mask=torch.ones_like(alone)).logits
        b = model(input_ids=padded, attention_mask=(padded != 0).long()).logits
    torch.testing.assert_close(a[0], b[0], atol=1e-5, rtol=1e-5)


def test_ngram_branch_alone_ignores_the_encoder():
    model = _model()
    ids = torch.tensor([[2, 11, 12, 3]])
    model.branches = "ngram"
    with torch.no_grad():
        before = model(input_ids=ids).logits.clone()
        for p in model.bert.parameters():
            p.add_(1.0)
        after = model(input_ids=ids).logits
        model.branches = "both"
        both = model(input_ids=ids).logits
    torch.testing.assert_close(before, after)
    assert not torch.allclose(both, after)


def test_labels_give_a_loss_and_missing_input_ids_are_refused():
    model = _model()
    out = model(input_ids=torch.tensor([[2, 9, 3]]), labels=torch.tensor([1]))
    assert out.loss is not None and out.loss.item() > 0
    with pytest.raises(ValueError, match="input_ids"):
        model(inputs_embeds=torch.zeros(1, 3, 16))


def test_saved_model_reloads_through_auto_classes(tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = _model()
    model.save_pretrained(tmp_path, safe_serialization=True)
    assert not list(tmp_path.glob("*.bin")), "safetensors only"
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path, use_safetensors=True).eval()
    assert isinstance(loaded, NgramBertForSequenceClassification)
    assert loaded.config.ngram_orders == [1, 2, 3] and loaded.config.ngram_buckets == 256
    ids = torch.tensor([[2, 30, 31, 32, 3]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits)


def test_sparse_training_updates_only_the_buckets_it_saw():
    from content_arena.training.loop import fit

    model = _model(ngram_buckets=4096)
    before = model.ngram_embeddings.weight.detach().clone()
    ids = [[2, 5, 6, 3], [2, 7, 8, 9, 3], [2, 5, 9, 3], [2, 6, 7, 3]] * 4
    labels = [1, 0, 1, 0] * 4
    fit(model, ids, labels, pad_id=0, epochs=2, learning_rate=1e-2, batch_size=4)
    changed = (model.ngram_embeddings.weight.detach() != before).any(dim=1)
    seen, real = hash_ngrams(torch.tensor([[2, 5, 6, 3, 0], [2, 7, 8, 9, 3], [2, 5, 9, 3, 0], [2, 6, 7, 3, 0]]),
                             torch.tensor([[1, 1, 1, 1, 0], [1] * 5, [1, 1, 1, 1, 0], [1, 1, 1, 1, 0]]), [1, 2, 3], 4096)
    touched = set(seen[real].tolist())
    assert set(torch.nonzero(changed).flatten().tolist()) == touched


def test_default_champion_is_the_ngram_branch_alone_with_no_encoder_layers_trained(tiny_config, tmp_path):
    from transformers import AutoConfig

    from content_arena.data import load_seed_corpus, split_examples
    from content_arena.defender import load_defender
    from content_arena.training import train_champion

    cfg = tiny_config()
    train, val = split_examples(load_seed_corpus(), test_fraction=0.2, seed=0)
    result = train_champion(train[:400], tmp_path / "m", cfg, val_examples=val[:100])
    assert [row.get("stage") for row in result.history] == [1.0]  # one L-BFGS solve, nothing after it
    saved = AutoConfig.from_pretrained(tmp_path / "m")
    assert saved.model_type == "arena-ngram-bert"
    assert saved.use_encoder is False and saved.num_hidden_layers == 0
    assert result.val_metrics["val_auroc"] > 0.6
    scores = load_defender(tmp_path / "m").scores(["이 개새끼야", "좋은 하루 보내세요"])
    assert 0.0 <= min(scores) and max(scores) <= 1.0


def test_champion_with_an_encoder_is_trained_in_two_stages(tiny_config, tmp_path):
    from transformers import AutoConfig

    from content_arena.data import load_seed_corpus, split_examples
    from content_arena.training import train_champion

    # every stage-2 epoch runs, and the encoder is kept whatever its gain
    cfg = tiny_config(model={"encoder": True}, training={"patience": None}, experimental={"min_encoder_gain": None})
    train, val = split_examples(load_seed_corpus(), test_fraction=0.2, seed=0)
    result = train_champion(train[:400], tmp_path / "m", cfg, val_examples=val[:100])
    stages = [row.get("stage") for row in result.history]
    assert stages.count(1.0) == 1 and stages.count(2.0) == cfg.training.epochs  # stage 1: one L-BFGS solve
    saved = AutoConfig.from_pretrained(tmp_path / "m")
    assert saved.use_encoder is True and saved.num_hidden_layers == cfg.model.num_layers


def test_zero_buckets_build_a_plain_bert(tiny_config):
    from transformers import BertForSequenceClassification

    from content_arena.training.model_factory import build_small_classifier
    from content_arena.training.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(["가나다 라마 바사", "hello there"] * 20, vocab_size=300)
    model_cfg = tiny_config().model
    model = build_small_classifier(model_cfg.model_copy(update={"ngram_buckets": 0}), tokenizer)
    assert type(model) is BertForSequenceClassification
    assert isinstance(build_small_classifier(model_cfg, tokenizer), NgramBertForSequenceClassification)


def test_document_frequency_counts_each_text_once():
    # token 5 three times in the first text, once in the second; the empty text counts for nothing
    df, n = ngram_document_frequency([[5, 5, 5], [5, 6], []], [1], 64)
    assert n == 2
    five, _ = hash_ngrams(torch.tensor([[5]]), torch.ones(1, 1, dtype=torch.long), [1], 64)
    six, _ = hash_ngrams(torch.tensor([[6]]), torch.ones(1, 1, dtype=torch.long), [1], 64)
    assert df[five[0, 0]].item() == 2 and df[six[0, 0]].item() == 1 and df.sum().item() == 3


def test_idf_pooling_weights_rare_ngrams_and_is_saved_with_the_model(tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = _model(ngram_pooling="idf", ngram_orders=[1])
    # token 7 in every text, token 9 in one: 9 gets the larger weight
    model.set_ngram_idf([[7, 9], [7], [7, 8], [7, 8]])
    buckets, _ = hash_ngrams(torch.tensor([[7, 9]]), torch.ones(1, 2, dtype=torch.long), [1], 256)
    b7, b9 = buckets[0].tolist()
    assert model.ngram_idf[b9] > model.ngram_idf[b7] == pytest.approx(1.0)
    ids, mask = torch.tensor([[7, 9]]), torch.ones(1, 2, dtype=torch.long)
    pooled = model.ngram_features(ids, mask)
    e7, e9 = model.ngram_embeddings.weight[b7], model.ngram_embeddings.weight[b9]
    w7, w9 = model.ngram_idf[b7], model.ngram_idf[b9]
    expected = (w7 * e7 + w9 * e9) / torch.sqrt(w7**2 + w9**2)
    torch.testing.assert_close(pooled[0], expected)
    # padding changes nothing, and the weights travel with the saved model
    padded = model.ngram_features(torch.tensor([[7, 9, 0, 0]]), torch.tensor([[1, 1, 0, 0]]))
    torch.testing.assert_close(padded, pooled)
    model.save_pretrained(tmp_path, safe_serialization=True)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded.ngram_idf, model.ngram_idf)
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits)


def _unigram_bucket(token: int) -> int:
    buckets, _ = hash_ngrams(torch.tensor([[token]]), torch.ones(1, 1, dtype=torch.long), [1], 256)
    return int(buckets[0, 0])


def test_unseen_ngrams_weigh_nothing_and_do_not_dilute_the_known_ones():
    model = _model(ngram_pooling="idf", ngram_orders=[1], ngram_min_df=1)
    model.set_ngram_idf([[7, 9], [7], [7, 8]])
    assert model.ngram_idf[_unigram_bucket(30)] == 0 and model.ngram_idf[_unigram_bucket(9)] > 1
    mask = torch.ones(1, 2, dtype=torch.long)
    known = model.ngram_features(torch.tensor([[7, 9]]), mask)
    # A garbled text: two characters the corpus never had beside the same known ones. Their n-grams
    # neither add to the vector nor shrink the known ones' share of it.
    garbled = model.ngram_features(torch.tensor([[7, 9, 30, 31]]), torch.ones(1, 4, dtype=torch.long))
    torch.testing.assert_close(garbled, known)
    # With every bucket counted (ngram_min_df 0, as models saved before it), the unseen ones dilute.
    every = _model(ngram_pooling="idf", ngram_orders=[1])
    every.set_ngram_idf([[7, 9], [7], [7, 8]])
    assert every.config.ngram_min_df == 0 and every.ngram_idf[_unigram_bucket(30)] > 1
    _, plain_weights = every.ngram_pooling_weights(torch.tensor([[7, 9]]), mask)
    _, garbled_weights = every.ngram_pooling_weights(torch.tensor([[7, 9, 30, 31]]), torch.ones(1, 4, dtype=torch.long))
    assert float(garbled_weights[0, 0]) < 0.8 * float(plain_weights[0, 0])  # token 7's share of the vector


def test_min_df_counts_texts_and_extending_opens_only_unweighted_buckets(tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = _model(ngram_pooling="idf", ngram_orders=[1], ngram_min_df=2)
    model.set_ngram_idf([[7, 9], [7, 9, 9], [7, 8]])  # 8 is in one text only: below min_df 2
    b7, b8, b9, b30 = (_unigram_bucket(t) for t in (7, 8, 9, 30))
    assert model.ngram_idf[b8] == 0 and model.ngram_idf[b7] > 0 and model.ngram_idf[b9] > 0
    before = model.ngram_idf.clone()
    # The challenger's texts: 8 and 30 now reach min_df and open; 7 keeps the champion's weight.
    opened = model.extend_ngram_idf([[7, 8, 30], [8, 30], [7, 7]])
    assert opened == 2
    assert model.ngram_idf[b8] > 0 and model.ngram_idf[b30] > 0
    assert model.ngram_idf[b7] == before[b7] and model.ngram_idf[b9] == before[b9]
    model.save_pretrained(tmp_path, safe_serialization=True)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert loaded.config.ngram_min_df == 2
    torch.testing.assert_close(loaded.ngram_idf, model.ngram_idf)
    # Nothing to open when every bucket already counts, and bad settings are refused.
    every = _model(ngram_pooling="idf", ngram_orders=[1])
    every.set_ngram_idf([[7]])
    assert every.extend_ngram_idf([[30, 31]]) == 0
    with pytest.raises(ValueError, match="ngram_min_df"):
        _config(ngram_min_df=-1)
    with pytest.raises(ValueError, match="ngram_pooling='idf'"):
        _model().extend_ngram_idf([[1]])


def test_challenger_training_opens_idf_buckets_only_where_a_table_can_take_them():
    from content_arena.training import EncodedSets, _open_ngram_idf

    data = EncodedSets([[7, 30], [30, 31]], [1, 0])
    # Mean pooling has no IDF table (ngram_min_df is set but has nothing to act on); 0 opens nothing.
    assert _open_ngram_idf(_model(ngram_min_df=1), data) is None
    assert _open_ngram_idf(_model(ngram_pooling="idf", ngram_min_df=0), data) is None
    model = _model(ngram_pooling="idf", ngram_orders=[1], ngram_min_df=1)
    model.set_ngram_idf([[7]])
    table = _open_ngram_idf(model, data)
    assert table is not None and table[_unigram_bucket(30)] > 0 and table[_unigram_bucket(7)] == model.ngram_idf[
        _unigram_bucket(7)]


def test_mean_pooling_models_have_no_idf_and_bad_pooling_is_refused():
    model = _model()
    assert model.config.ngram_pooling == "mean" and not hasattr(model, "ngram_idf")
    with pytest.raises(ValueError, match="ngram_pooling='idf'"):
        model.set_ngram_idf([[1, 2]])
    with pytest.raises(ValueError, match="ngram_pooling"):
        _config(ngram_pooling="max")


def test_stage_two_starts_from_the_fitted_ngram_branch(tiny_config):
    """The encoder's head is zeroed after stage 1: the two-branch model predicts what the branch alone did."""
    from content_arena.data import load_seed_corpus
    from content_arena.training import EncodedSets, _fit_ngram_branch, _pad_id
    from content_arena.training.model_factory import build_small_classifier
    from content_arena.training.tokenizer import train_tokenizer

    cfg = tiny_config()
    examples = load_seed_corpus()[:300]
    texts, labels = [e.text for e in examples], [e.label for e in examples]
    tokenizer = train_tokenizer(texts, vocab_size=cfg.model.vocab_size)
    torch.manual_seed(0)
    model = build_small_classifier(cfg.model, tokenizer)
    fit_args = dict(pad_id=_pad_id(model, tokenizer), epochs=1, learning_rate=3e-3, weight_decay=0.0)
    _fit_ngram_branch(model, EncodedSets.build(tokenizer, texts, labels, None, cfg.model.max_length), cfg, None,
                      fit_args)
    ids = torch.tensor([tokenizer.encode(texts[0]).ids])
    model.eval()
    with torch.no_grad():
        both = model(input_ids=ids).logits
        model.branches = "ngram"
        alone = model(input_ids=ids).logits
    torch.testing.assert_close(both, alone)
    assert not any(p.requires_grad for n, p in model.named_parameters() if n.startswith("ngram_"))


def test_model_without_encoder_is_its_branch_and_old_configs_keep_the_encoder(tmp_path):
    from transformers import AutoModelForSequenceClassification

    assert _config().use_encoder is True
    legacy = _config().to_dict()
    del legacy["use_encoder"]  # a config.json written before the flag existed
    assert NgramBertConfig.from_dict(legacy).use_encoder is True
    model = _model(use_encoder=False)
    ids = torch.tensor([[2, 30, 31, 32, 3], [2, 7, 8, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask).logits
        model.branches = "ngram"
        torch.testing.assert_close(out, model(input_ids=ids, attention_mask=mask).logits)
        model.branches = "both"
        # A non-zero encoder head would change the logits if the encoder ran.
        torch.nn.init.ones_(model.classifier.weight)
        torch.testing.assert_close(out, model(input_ids=ids, attention_mask=mask).logits)
    model.save_pretrained(tmp_path, safe_serialization=True)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path, use_safetensors=True).eval()
    assert loaded.config.use_encoder is False
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids, attention_mask=mask).logits, out)


def test_folded_tokens_share_their_ngrams_and_the_table_is_saved(tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = _model(ngram_fold=True, ngram_pooling="idf")
    assert model.ngram_fold_ids.tolist() == list(range(50))  # the identity until a table is set
    table = list(range(50))
    table[21] = 11  # token 21 is read as token 11 by the n-gram branch
    model.set_ngram_fold(table)
    model.set_ngram_idf([[2, 11, 12, 3], [2, 21, 13, 3], [2, 14, 3]])
    # IDF is counted on folded ids: 11 and 21 are one n-gram, found in two texts of three.
    buckets, _ = hash_ngrams(torch.tensor([[11], [14]]), torch.ones(2, 1), [1], 256)
    assert model.ngram_idf[buckets[0, 0]] < model.ngram_idf[buckets[1, 0]]
    model.config.use_encoder = False
    a, b = torch.tensor([[2, 11, 12, 3]]), torch.tensor([[2, 21, 12, 3]])
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=a).logits, model(input_ids=b).logits)
        other = model(input_ids=torch.tensor([[2, 13, 12, 3]])).logits
    assert not torch.allclose(model(input_ids=a).logits, other)
    model.save_pretrained(tmp_path, safe_serialization=True)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path, use_safetensors=True).eval()
    assert loaded.ngram_fold_ids[21].item() == 11
    with pytest.raises(ValueError, match="one id"):
        model.set_ngram_fold([0] * 49)
    with pytest.raises(ValueError, match="ngram_fold=True"):
        _model().set_ngram_fold(table)


def test_phonetic_fold_table_maps_respelled_syllables_onto_their_plain_token():
    from content_arena.training.tokenizer import phonetic_fold_ids, train_tokenizer

    tokenizer = train_tokenizer(["씨발 시발 새끼 세 끼", "hello"] * 3, vocab_size=300, kind="char")
    table = phonetic_fold_ids(tokenizer)
    ids = tokenizer.token_to_id
    assert table[ids("씨")] == ids("시") and table[ids("새")] == ids("세")
    assert table[ids("끼")] == ids("끼")  # 기 is not in the vocabulary: the token keeps its own id
    assert table[ids("h")] == ids("h") and len(table) == tokenizer.get_vocab_size()


def test_champion_built_with_the_phonetic_fold_carries_its_table(tiny_config, tmp_path):
    from content_arena.data import load_seed_corpus, split_examples
    from content_arena.defender import TransformerDefender
    from content_arena.training import train_champion

    # The encoder is dropped (no gain can reach 1.0), so the scores are the n-gram branch's alone.
    cfg = tiny_config(experimental={"ngram_phonetic_fold": True, "min_encoder_gain": 1.0})
    train, val = split_examples(load_seed_corpus(), test_fraction=0.2, seed=0)
    result = train_champion(train[:400], tmp_path / "folded", cfg, val_examples=val[:100])
    defender = TransformerDefender(result.model_dir, device="cpu").load()
    table = defender.model.ngram_fold_ids.tolist()
    assert defender.model.config.ngram_fold is True and defender.model.config.use_encoder is False
    folded = [i for i, j in enumerate(table) if i != j]
    assert folded, "the seed corpus has tensed or aspirated syllables whose plain form it also has"
    respelled = defender.tokenizer.id_to_token(folded[0])
    plain = defender.tokenizer.id_to_token(table[folded[0]])
    assert respelled != plain
    # A respelling the table folds reaches the n-gram branch as its plain word: the same score.
    scores = defender.scores([f"진짜 {respelled}발 놈", f"진짜 {plain}발 놈", "진짜 좋은 하루"])
    assert scores[0] == pytest.approx(scores[1], abs=1e-6)
    assert scores[0] != pytest.approx(scores[2], abs=1e-6)


def test_char_tokenizer_gives_one_token_per_character_and_loads_as_a_fast_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    from content_arena.training.tokenizer import save_tokenizer, train_tokenizer

    tokenizer = train_tokenizer(["씨발 놈아 ㅋㅋ", "좋은 하루 되세요", "hello world"] * 3, vocab_size=300, kind="char")
    encoded = tokenizer.encode("씨발 놈아 zq")
    # [CLS], each character (spaces are tokens: word boundaries matter to n-grams), [SEP]; unseen -> [UNK]
    assert encoded.tokens == ["[CLS]", "씨", "발", " ", "놈", "아", " ", "[UNK]", "[UNK]", "[SEP]"]
    save_tokenizer(tokenizer, tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path)("씨발 놈아 zq")["input_ids"] == encoded.ids
    # The most frequent characters fill the vocabulary; the rest are [UNK].
    small = train_tokenizer(["aaaaabbbc"] * 3, vocab_size=5 + 2, kind="char")  # 5 special tokens
    assert small.encode("abcd").tokens[1:-1] == ["a", "b", "[UNK]", "[UNK]"]
    with pytest.raises(ValueError, match="tokenizer kind"):
        train_tokenizer(["x"], kind="words")


@pytest.mark.parametrize("pooling", ["idf", "mean"])
def test_inference_without_an_encoder_gives_the_pooled_heads_logits_and_follows_weight_changes(pooling):
    model = _model(ngram_pooling=pooling, use_encoder=False)
    torch.nn.init.normal_(model.ngram_embeddings.weight)
    if pooling == "idf":
        model.ngram_idf.uniform_(0.5, 3.0)
    ids = torch.randint(1, 50, (6, 12))
    mask = torch.ones_like(ids)
    mask[0, 5:] = 0

    def pooled() -> torch.Tensor:  # the head applied to the pooled vector, as training computes it
        return model.ngram_classifier(model.ngram_features(ids, mask))

    with torch.inference_mode():
        torch.testing.assert_close(model(input_ids=ids, attention_mask=mask).logits, pooled(), rtol=1e-5, atol=1e-5)
        model.ngram_classifier.weight.mul_(-2.0)  # as a merge or a reload would change it
        torch.testing.assert_close(model(input_ids=ids, attention_mask=mask).logits, pooled(), rtol=1e-5, atol=1e-5)
        if pooling == "idf":
            model.ngram_idf[: model.config.ngram_buckets // 2] = 0.0  # as a challenger's opened n-grams would
            torch.testing.assert_close(model(input_ids=ids, attention_mask=mask).logits, pooled(), rtol=1e-5,
                                       atol=1e-5)
    model.train()  # with gradients on, the head runs as written (dropout, autograd)
    assert model(input_ids=ids, attention_mask=mask).logits.requires_grad
