"""Tiny pretraining data and experiments for the trainer tests (written with plain tf.train.Example).

The token stream is an arithmetic progression, so a masked token is predictable from its
neighbours: a working training loop must drive the MLM loss down within a few steps.
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
import yaml

from tfcompact.inputs.manifest import build_manifest, write_manifest

SPECIAL = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
VOCAB_SIZE = 120


def _int_feature(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def make_masked_data(out_dir: str, *, num_instances: int = 256, num_shards: int = 2,
                     seq_length: int = 32, predictions: int = 5, vocab_size: int = VOCAB_SIZE,
                     seed: int = 0) -> str:
    """Write `bert_masked` shards + manifest.json to out_dir; return out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    body = vocab_size - len(SPECIAL)
    per_shard = [num_instances // num_shards] * num_shards
    per_shard[-1] += num_instances - sum(per_shard)
    shards = []
    for s, count in enumerate(per_shard):
        name = f"data-{s:05d}-of-{num_shards:05d}.tfrecord"
        with tf.io.TFRecordWriter(os.path.join(out_dir, name)) as w:
            for _ in range(count):
                length = int(rng.integers(seq_length // 2, seq_length + 1))
                start, stride = int(rng.integers(0, body)), int(rng.integers(1, 3))
                ids = [len(SPECIAL) + (start + stride * i) % body for i in range(length - 3)]
                cut = len(ids) // 2
                tokens = [2] + ids[:cut] + [3] + ids[cut:] + [3]
                segments = [0] * (cut + 2) + [1] * (len(ids) - cut + 1)
                label = int(rng.integers(0, 2))
                cand = [i for i, t in enumerate(tokens) if t >= len(SPECIAL)]
                pos = sorted(rng.choice(cand, size=predictions, replace=False).tolist())
                labels = [tokens[p] for p in pos]
                masked = list(tokens)
                for p in pos:
                    masked[p] = 4
                pad = seq_length - len(tokens)
                feats = {
                    "input_ids": _int_feature(masked + [0] * pad),
                    "input_mask": _int_feature([1] * len(tokens) + [0] * pad),
                    "segment_ids": _int_feature(segments + [0] * pad),
                    "masked_lm_positions": _int_feature(pos),
                    "masked_lm_ids": _int_feature(labels),
                    "masked_lm_weights": tf.train.Feature(
                        float_list=tf.train.FloatList(value=[1.0] * predictions)),
                    "next_sentence_labels": _int_feature([label]),
                }
                ex = tf.train.Example(features=tf.train.Features(feature=feats))
                w.write(ex.SerializeToString(deterministic=True))
        shards.append({"file": name, "num_instances": count, "sha256": ""})
    _write_test_manifest(out_dir, "bert_masked", "wwm", seq_length, predictions, vocab_size,
                         seed, shards)
    return out_dir


def _write_test_manifest(out_dir: str, schema: str, masking: str, seq_length: int,
                         predictions: int, vocab_size: int, seed: int, shards: list) -> None:
    write_manifest(out_dir, build_manifest(
        schema=schema, max_seq_length=seq_length, max_predictions_per_seq=predictions,
        vocab_size=vocab_size, vocab_md5="", do_lower_case=True, special_ids=SPECIAL,
        masking=masking, pair_task="sop", dupe_factor=1, seed=seed,
        segmenter={"name": "none", "version": "0"}, shards=shards, inputs=[],
        created_by="tests/train/train_helpers.py"))


def make_unmasked_data(out_dir: str, *, num_instances: int = 64, seq_length: int = 32,
                       predictions: int = 5, vocab_size: int = VOCAB_SIZE, seed: int = 0) -> str:
    """Write one `unmasked` shard (ids + `word_ids`, masked at training time) + manifest.json.

    Same arithmetic-progression token stream as `make_masked_data`, cut into words of 1..3
    pieces: `word_ids` numbers the whole word of each piece, -1 on [CLS], [SEP] and padding.
    """
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    body = vocab_size - len(SPECIAL)
    name = "data-00000-of-00001.tfrecord"
    with tf.io.TFRecordWriter(os.path.join(out_dir, name)) as w:
        for _ in range(num_instances):
            length = int(rng.integers(seq_length // 2, seq_length + 1))
            start, stride = int(rng.integers(0, body)), int(rng.integers(1, 3))
            ids = [len(SPECIAL) + (start + stride * i) % body for i in range(length - 3)]
            words = np.cumsum(rng.integers(1, 4, len(ids)))  # word ends, 1..3 pieces apart
            word_of = np.searchsorted(words, np.arange(len(ids)), side="right").tolist()
            cut = len(ids) // 2
            tokens = [2] + ids[:cut] + [3] + ids[cut:] + [3]
            # (+1: no word straddles the [SEP] between the two segments)
            word_ids = [-1] + word_of[:cut] + [-1] + [w + 1 for w in word_of[cut:]] + [-1]
            segments = [0] * (cut + 2) + [1] * (len(ids) - cut + 1)
            pad = seq_length - len(tokens)
            feats = {
                "input_ids": _int_feature(tokens + [0] * pad),
                "input_mask": _int_feature([1] * len(tokens) + [0] * pad),
                "segment_ids": _int_feature(segments + [0] * pad),
                "word_ids": _int_feature(word_ids + [-1] * pad),
                "next_sentence_labels": _int_feature([int(rng.integers(0, 2))]),
            }
            ex = tf.train.Example(features=tf.train.Features(feature=feats))
            w.write(ex.SerializeToString(deterministic=True))
    _write_test_manifest(out_dir, "unmasked", "none", seq_length, predictions, vocab_size,
                         seed, [{"file": name, "num_instances": num_instances, "sha256": ""}])
    return out_dir


def tiny_experiment(data_dir: str, model_dir: str, *, arch: str = "albert", **train) -> dict:
    """A raw experiment mapping for a tiny model of `arch` on the test data."""
    tiny = dict(vocab_size="data", num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                intermediate_size=64, max_position_embeddings=64)
    preset = {"albert": "albert_tiny_zh", "bert": "bert_base_zh", "electra": "electra_small_zh",
              "tinybert": "tinybert_4l_312_zh", "mobilebert": "mobilebert_base_f4_zh"}[arch]
    if arch in ("albert", "electra", "mobilebert"):
        tiny["embedding_size"] = 16 if arch != "mobilebert" else 32
    if arch == "mobilebert":
        tiny["intra_bottleneck_size"] = 16
    t = dict(model_dir=model_dir, batch_size=8, total_steps=6, steps_per_loop=3,
             checkpoint_every=3, keep_checkpoints=3, seed=7)
    t.update(train)
    return {"name": f"test_{arch}", "model": {"preset": preset, "overrides": tiny},
            "data": {"train": data_dir, "max_seq_length": 32, "max_predictions_per_seq": 5,
                     "shuffle_buffer": 64},
            "optimizer": {"name": "lamb", "learning_rate": 0.01, "warmup_steps": 0},
            "train": t}


def write_yaml(path: str, raw: dict) -> str:
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(raw, f, sort_keys=False)
    return path
