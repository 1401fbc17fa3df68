"""Helpers for the SavedModel tests: random features and the Keras reference outputs."""
import numpy as np
import pytest
import tensorflow as tf


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


def check_against_keras(arch, config, model, encoder_dir):
    enc = tf.saved_model.load(str(encoder_dir))
    sig = enc.signatures["serving_default"]
    for batch, seq, seed in ((2, 16, 0), (3, 9, 1), (1, config.max_position_embeddings, 2)):
        ids, mask, types, positions = features(batch, seq, config.vocab_size, seed)
        ref = keras_outputs(model, arch, ids, mask, types, positions)
        got = enc({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types})
        served = sig(input_word_ids=tf.constant(ids), input_mask=tf.constant(mask),
                     input_type_ids=tf.constant(types))
        np.testing.assert_allclose(got["sequence_output"], ref["sequence_output"], atol=1e-5)
        np.testing.assert_allclose(got["pooled_output"], ref["pooled_output"], atol=1e-5)
        assert len(got["encoder_outputs"]) == config.num_hidden_layers
        for k in range(config.num_hidden_layers):
            np.testing.assert_allclose(got["encoder_outputs"][k], ref["hidden_states"][k + 1], atol=1e-5)
        assert served["encoder_outputs"].shape == (config.num_hidden_layers, batch, seq, config.hidden_size)
        np.testing.assert_allclose(served["encoder_outputs"][-1], ref["sequence_output"], atol=1e-5)
        np.testing.assert_allclose(served["pooled_output"], ref["pooled_output"], atol=1e-5)
        if arch != "electra":
            mlm = enc.signatures["mlm"](input_word_ids=tf.constant(ids), input_mask=tf.constant(mask),
                                        input_type_ids=tf.constant(types),
                                        masked_lm_positions=tf.constant(positions))
            assert mlm["mlm_logits"].shape == (batch, 3, config.vocab_size)
            np.testing.assert_allclose(mlm["mlm_logits"], ref["mlm_logits"], atol=1e-5)
    if arch == "electra":
        assert "mlm" not in enc.signatures  # the discriminator has no MLM head
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_position_embeddings"):
        ids, mask, types, _ = features(1, config.max_position_embeddings + 1, config.vocab_size, 3)
        enc({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types})
