"""Helpers shared by the model tests: tiny batches and parameter counting."""
import math

import numpy as np
import pytest


def make_batch(config, batch: int = 2, seq: int = 16, predictions: int = 3, pad: int = 0, seed: int = 0) -> dict:
    """A random int32 batch; the last ``pad`` positions of row 1 are padding (mask 0, id 0)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, config.vocab_size, size=(batch, seq)).astype("int32")
    ids[:, 0] = 2  # a [CLS]-like id
    mask = np.ones((batch, seq), "int32")
    segments = np.zeros((batch, seq), "int32")
    segments[:, seq // 2:] = 1
    if pad:
        mask[1, seq - pad:] = 0
        ids[1, seq - pad:] = 0
        segments[1, seq - pad:] = 0
    positions = np.stack([np.sort(rng.choice(np.arange(1, seq - pad), size=predictions, replace=False))
                          for _ in range(batch)]).astype("int32")
    return {
        "input_ids": ids,
        "input_mask": mask,
        "segment_ids": segments,
        "masked_lm_positions": positions,
        "masked_lm_ids": rng.integers(5, config.vocab_size, size=(batch, predictions)).astype("int32"),
    }


def backbone_part(batch: dict) -> dict:
    return {k: batch[k] for k in ("input_ids", "input_mask", "segment_ids")}


def trainable_count(model) -> int:
    """Parameters of the model's trainable variables, each variable once."""
    seen = {}
    for v in model.trainable_variables:
        seen[id(v)] = math.prod(v.shape)
    return sum(seen.values())


@pytest.fixture
def batch_for():
    return make_batch
