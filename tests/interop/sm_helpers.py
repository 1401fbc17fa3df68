"""Helpers for the SavedModel tests: random features and the Keras reference outputs."""
import numpy as np


def features(batch, seq, vocab, seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, seq + 1, size=batch)
    lengths[0] = seq
    mask = (np.arange(seq)[None] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(5, vocab, size=(batch, seq)).astype(np.int32) * mask
    types = ((np.arange(seq)[None] >= (lengths // 2)[:, None]) * mask).astype(np.int32)
    positions = np.stack([rng.integers(1, n, size=3) for n in lengths]).astype(np.int32)
    return ids, mask, types, positions


def keras_outputs(model, arch, ids, mask, types, positions, component="discriminator"):
    inputs = {"input_ids": ids, "input_mask": mask, "segment_ids": types}
    if arch == "electra":
        net = model.discriminator if component == "discriminator" else model.generator
        out = dict(net(inputs, training=False))
        if component == "generator":
            out["mlm_logits"] = model.generator_head(out["sequence_output"], positions)
        return out
    return model({**inputs, "masked_lm_positions": positions}, training=False)
