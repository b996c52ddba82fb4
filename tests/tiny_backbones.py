"""Tiny pretrained-style checkpoints of each backbone family, built from configs (random weights, no hub).

Each is saved with ``save_pretrained`` beside the tokenizer class the real models ship with (WordPiece
for BERT/ELECTRA, byte-level BPE with ``<s> </s> <pad>`` for RoBERTa, a SentencePiece-style Unigram for
DeBERTa-v2, Llama's BPE without a padding token, Qwen2's BPE with ``<|im_end|>``), so the loop meets
them as a user's downloaded checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

TEXTS = [
    "you are an idiot and a fool", "have a nice day friend", "shut up you stupid loser", "the weather is lovely",
    "i hate you so much", "thanks for the help", "go away moron", "what a great game", "씨발 꺼져", "오늘 날씨 좋네요",
    "병신 같은 놈", "감사합니다 좋은 하루", "hello world", "food is good", "see you tomorrow", "you suck",
]
# Small enough that each checkpoint builds, trains and merges in a second or two.
SIZE = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)

ENCODERS = ("bert", "electra", "roberta", "deberta-v2")
DECODERS = ("llama", "llama-no-pad", "qwen2")
ARCHITECTURES = ENCODERS + DECODERS


def _bpe(specials: list[str], vocab_size: int = 400) -> tuple[dict[str, int], list[tuple[str, str]]]:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TEXTS * 4, trainer=trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    return tok.get_vocab(), [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]


def _wordpiece_vocab() -> dict[str, int]:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                                        show_progress=False)
    tok.train_from_iterator(TEXTS * 4, trainer=trainer)
    return tok.get_vocab()


def _unigram_vocab() -> list[tuple[str, float]]:
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=200, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                                      unk_token="[UNK]", show_progress=False)
    tok.train_from_iterator(TEXTS * 4, trainer=trainer)
    return [tuple(pair) for pair in json.loads(tok.to_str())["model"]["vocab"]]


def build(kind: str, out: Path) -> Path:
    """Save a tiny checkpoint of ``kind`` (one of :data:`ARCHITECTURES`) under ``out`` and return it."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    if kind in ("bert", "electra"):
        tokenizer = tf.BertTokenizer(vocab=_wordpiece_vocab())
        config_cls, model_cls = ((tf.BertConfig, tf.BertModel) if kind == "bert"
                                 else (tf.ElectraConfig, tf.ElectraModel))
        extra = dict(embedding_size=32) if kind == "electra" else {}
        config = config_cls(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                            max_position_embeddings=128, **SIZE, **extra)
    elif kind == "roberta":
        vocab, merges = _bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        tokenizer = tf.RobertaTokenizer(vocab=vocab, merges=merges)
        config = tf.RobertaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                  max_position_embeddings=130, **SIZE)
        model_cls = tf.RobertaModel
    elif kind == "deberta-v2":
        tokenizer = tf.DebertaV2Tokenizer(vocab=_unigram_vocab())
        config = tf.DebertaV2Config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                    max_position_embeddings=128, pooler_hidden_size=32, **SIZE)
        model_cls = tf.DebertaV2Model
    elif kind in ("llama", "llama-no-pad"):
        vocab, merges = _bpe(["<unk>", "<s>", "</s>"])
        # Llama's BPE falls back to byte tokens for characters it has no piece for.
        vocab.update({f"<0x{b:02X}>": len(vocab) + b for b in range(256)})
        tokenizer = tf.LlamaTokenizer(vocab=vocab, merges=merges, add_bos_token=True)
        pad = {} if kind == "llama-no-pad" else {"pad_token_id": tokenizer.eos_token_id}
        if kind == "llama":
            tokenizer.pad_token = tokenizer.eos_token
        config = tf.LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                eos_token_id=tokenizer.eos_token_id, num_key_value_heads=1,
                                max_position_embeddings=128, **SIZE, **pad)
        model_cls = tf.LlamaForCausalLM
    elif kind == "qwen2":
        vocab, merges = _bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        tokenizer = tf.Qwen2Tokenizer(vocab=vocab, merges=merges)
        # Qwen2.5-style: the tokenizer pads with <|endoftext|>, config.json names no pad token.
        config = tf.Qwen2Config(vocab_size=len(tokenizer), eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                                num_key_value_heads=1, max_position_embeddings=128, **SIZE)
        model_cls = tf.Qwen2ForCausalLM
    else:
        raise ValueError(f"unknown architecture {kind!r}")
    model = model_cls(config)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
