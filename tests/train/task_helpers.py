"""Tiny task data, vocabulary and model directories for the fine-tuning tests.

The classification data is learnable by construction: the label says whether the text holds
the character 好 (positive) or 差 (negative), among random filler characters.
"""
from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from tfcompact import modeldir
from tfcompact.configs import tiny_config
from tfcompact.models import build_pretraining_model

FILLER = list("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性")
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_vocab(path: str) -> str:
    tokens = SPECIAL + list("好差北京上海张三李四公司银行") + FILLER + list("0123456789") + \
        ["ab", "##c", "x", "，", "。", "？"]
    seen, unique = set(), []
    for t in tokens:
        if t not in seen:
            seen.add(t)
            unique.append(t)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(unique) + "\n")
    return path


def sentiment_rows(n: int, seed: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = int(rng.integers(0, 2))
        chars = [FILLER[int(j)] for j in rng.integers(0, len(FILLER), size=int(rng.integers(4, 12)))]
        chars.insert(int(rng.integers(0, len(chars) + 1)), "好" if label else "差")
        rows.append((str(label), "".join(chars)))
    return rows


def write_tsv(path: str, rows: list[tuple[str, str]]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write("label\ttext_a\n")
        for label, text in rows:
            f.write(f"{label}\t{text}\n")
    return path


def write_conll(path: str, sentences: list[list[tuple[str, str]]]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join("\n".join(f"{c} {t}" for c, t in s) for s in sentences) + "\n")
    return path


def ner_sentences(n: int, seed: int) -> list[list[tuple[str, str]]]:
    """Filler with a place (北京/上海, LOC) or a person (张三/李四, PER) somewhere."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        words = [[(FILLER[int(j)], "O")] for j in rng.integers(0, len(FILLER), size=6)]
        name, kind = [("北京", "LOC"), ("上海", "LOC"), ("张三", "PER"), ("李四", "PER")][int(rng.integers(0, 4))]
        entity = [(name[0], f"B-{kind}"), (name[1], f"I-{kind}")]
        words.insert(int(rng.integers(0, len(words) + 1)), entity)
        out.append([pair for w in words for pair in w])
    return out


def write_squad(path: str, n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    paragraphs = []
    for i in range(n):
        before = "".join(FILLER[int(j)] for j in rng.integers(0, len(FILLER), size=int(rng.integers(3, 20))))
        after = "".join(FILLER[int(j)] for j in rng.integers(0, len(FILLER), size=int(rng.integers(3, 20))))
        answer = ["北京", "上海", "张三", "李四"][int(rng.integers(0, 4))]
        context = before + answer + after
        paragraphs.append({"context": context, "qas": [{
            "id": f"q{i}", "question": "公司在？",
            "answers": [{"text": answer, "answer_start": len(before)}]}]})
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"version": "v1", "data": [{"title": "t", "paragraphs": paragraphs}]}, f,
                  ensure_ascii=False)
    return path


def make_pretrained_dir(path: str, vocab: str, arch: str = "albert", seed: int = 0) -> str:
    """A model directory as a pretraining run leaves it (random weights, one checkpoint)."""
    config = tiny_config(arch, vocab_size=sum(1 for _ in open(vocab, encoding="utf-8")),
                         num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                         intermediate_size=64)
    import keras

    keras.utils.set_random_seed(seed)
    model = build_pretraining_model(arch, config)
    modeldir.write_model_dir_config(path, arch, config, vocab_path=vocab)
    ckpt = tf.train.Checkpoint(model=model)
    ckpt.save(os.path.join(path, modeldir.CHECKPOINT_DIR, "ckpt"))
    return path
