"""ELECTRA pretrainer: shared embeddings, Gumbel sampling under stop-gradient, RTD labels."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import backbone_part, make_batch, trainable_count
from tfcompact.configs import PRESETS, tiny_config
from tfcompact.interop.tf1_names import count_parameters, tf1_variable_shapes
from tfcompact.models import ElectraPretrainer, build_backbone, build_pretraining_model, variable_paths
from tfcompact.models.electra import scatter_positions

B, S, P = 2, 16, 3
ELECTRA_PRESETS = sorted(n for n, p in PRESETS.items() if p.arch == "electra")


@pytest.fixture(scope="module")
def tiny():
    config = tiny_config("electra")
    return config, build_pretraining_model("electra", config, seed=3)


@pytest.mark.parametrize("preset", ELECTRA_PRESETS)
def test_preset_shapes_and_counts(preset):
    config = tiny_config(preset)
    model = build_pretraining_model(preset, config, seed=0)
    out = model(make_batch(config, B, S, P), training=True)
    H, L = config.hidden_size, config.num_hidden_layers
    assert out["sequence_output"].shape == (B, S, H) and out["pooled_output"].shape == (B, H)
    assert len(out["hidden_states"]) == L + 1 and len(out["attention_logits"]) == L
    assert out["mlm_logits"].shape == (B, P, config.vocab_size)
    for key in ("corrupted_ids", "rtd_labels", "rtd_logits"):
        assert out[key].shape == (B, S), key
    assert out["sampled_ids"].shape == (B, P)
    assert trainable_count(model) == count_parameters(("electra", config))


def test_variable_paths_are_the_tf1_names(tiny):
    config, model = tiny
    assert variable_paths(model) == tf1_variable_shapes("electra", config)
    backbone = build_backbone("electra", config)
    assert variable_paths(backbone) == tf1_variable_shapes("electra", config, pretraining=False)


def test_generator_and_discriminator_share_the_embedding_layer(tiny):
    _, model = tiny
    emb = model.discriminator.get_layer("embeddings")
    assert model.generator.get_layer("embeddings") is emb
    gen_vars = {id(v) for v in model.generator.trainable_variables}
    for v in emb.trainable_variables:
        assert id(v) in gen_vars
    assert model.generator_head.embedding_layer is emb


def test_generator_uses_erf_gelu_and_quarter_width(tiny):
    config, model = tiny
    gen = config.generator_config()
    assert model.generator.get_layer("layer_0").exact_gelu
    assert model.discriminator.get_layer("layer_0").exact_gelu
    paths = variable_paths(model)
    assert paths["generator/encoder/layer_0/attention/self/query/kernel"] == (gen.hidden_size, gen.hidden_size)
    assert gen.hidden_size == config.hidden_size // 4


def _force_generator_choice(model, token: int):
    """Make the generator put (almost) all probability on ``token``."""
    bias = np.zeros(model.electra_config.vocab_size, "float32")
    bias[token] = 1e4
    model.generator_head.output_bias.assign(bias)


def test_sample_equal_to_original_is_labelled_original(tiny):
    config, model = tiny
    batch = make_batch(config, B, S, P)
    batch["masked_lm_ids"][:] = 7
    batch["input_ids"][np.arange(B)[:, None], batch["masked_lm_positions"]] = 4  # "[MASK]"
    _force_generator_choice(model, 7)
    out = model(batch, training=True)
    np.testing.assert_array_equal(np.asarray(out["sampled_ids"]), 7)
    np.testing.assert_array_equal(np.asarray(out["rtd_labels"]), 0)
    original = batch["input_ids"].copy()
    original[np.arange(B)[:, None], batch["masked_lm_positions"]] = 7
    np.testing.assert_array_equal(np.asarray(out["corrupted_ids"]), original)


def test_replaced_tokens_are_labelled_one_exactly_where_sampled(tiny):
    config, model = tiny
    batch = make_batch(config, B, S, P)
    batch["masked_lm_ids"][:] = 7
    _force_generator_choice(model, 9)
    out = model(batch, training=True)
    expected = np.zeros((B, S), "int32")
    expected[np.arange(B)[:, None], batch["masked_lm_positions"]] = 1
    np.testing.assert_array_equal(np.asarray(out["rtd_labels"]), expected)
    corrupted = np.asarray(out["corrupted_ids"])
    np.testing.assert_array_equal(corrupted[expected == 1], 9)
    np.testing.assert_array_equal(corrupted[expected == 0], batch["input_ids"][expected == 0])


def test_padding_prediction_slots_never_overwrite_cls(tiny):
    config, model = tiny
    batch = make_batch(config, B, S, P)
    batch["masked_lm_positions"][1, 1:] = 0  # padded prediction slots (position 0, id 0)
    batch["masked_lm_ids"][1, 1:] = 0
    _force_generator_choice(model, 9)
    out = model(batch, training=True)
    assert int(out["corrupted_ids"][1, 0]) == batch["input_ids"][1, 0]
    assert int(out["rtd_labels"][1, 0]) == 0
    assert int(np.asarray(out["rtd_labels"])[1].sum()) == 1


def test_gumbel_max_follows_the_softmax(tiny):
    _, model = tiny
    probs = np.array([0.6, 0.3, 0.1], "float32")
    logits = np.tile(np.log(probs), (1, 6000, 1))
    samples = np.asarray(model.sample(logits)).ravel()
    freq = np.bincount(samples, minlength=3) / samples.size
    np.testing.assert_allclose(freq, probs, atol=0.03)


def test_same_seed_same_samples():
    config = tiny_config("electra")
    logits = np.random.default_rng(0).normal(size=(2, 5, config.vocab_size)).astype("float32")
    a = ElectraPretrainer(config, seed=11).sample(logits)
    b = ElectraPretrainer(config, seed=11).sample(logits)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_discriminator_loss_sends_no_gradient_into_the_generator(tiny):
    config, model = tiny
    model.generator_head.output_bias.assign(np.zeros(config.vocab_size, "float32"))
    batch = {k: tf.constant(v) for k, v in make_batch(config, B, S, P).items()}
    with tf.GradientTape(persistent=True) as tape:
        out = model(batch, training=True)
        rtd = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(
            tf.cast(out["rtd_labels"], tf.float32), out["rtd_logits"]))
        mlm = tf.reduce_sum(out["mlm_logits"])
    generator_only = [v for v in model.trainable_variables
                      if v.path.startswith(("generator/", "generator_predictions/"))]
    assert generator_only
    assert all(g is None for g in tape.gradient(rtd, generator_only))
    assert all(g is not None for g in tape.gradient(mlm, generator_only))
    shared = model.discriminator.get_layer("embeddings").word_embeddings
    assert tape.gradient(rtd, shared) is not None and tape.gradient(mlm, shared) is not None


def test_scatter_positions():
    ids = np.arange(12, dtype="int32").reshape(2, 6)
    positions = np.array([[1, 3], [5, 0]], "int32")
    updates = np.array([[100, 101], [102, 103]], "int32")
    got = np.asarray(scatter_positions(ids, positions, updates))
    expected = ids.copy()
    expected[0, 1], expected[0, 3], expected[1, 5] = 100, 101, 102
    np.testing.assert_array_equal(got, expected)
    # A repeated position still writes one of the given ids (never a sum of them).
    got = np.asarray(scatter_positions(ids, np.array([[2, 2], [1, 1]], "int32"), updates))
    assert got[0, 2] in (100, 101) and got[1, 1] in (102, 103)


def test_padding_does_not_change_real_positions():
    config = tiny_config("electra")
    model = build_backbone("electra", config)
    batch = backbone_part(make_batch(config, 2, S, P, pad=4))
    other = {k: v.copy() for k, v in batch.items()}
    other["input_ids"][1, S - 4:] = 23
    a, b = model(batch), model(other)
    np.testing.assert_allclose(np.asarray(a["sequence_output"])[1, :S - 4],
                               np.asarray(b["sequence_output"])[1, :S - 4], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(a["pooled_output"]), np.asarray(a["sequence_output"])[:, 0])


def test_config_round_trip(tiny):
    config, model = tiny
    clone = ElectraPretrainer.from_config(model.get_config())
    assert clone.electra_config == config


def _hand_batch(config, rng, batch=8, seq=16, preds=3, mask_id=4):
    ids = rng.integers(5, config.vocab_size, (batch, seq)).astype(np.int32)
    ids[:, 0] = 2
    positions = np.stack([np.sort(rng.choice(np.arange(1, seq), preds, replace=False))
                          for _ in range(batch)]).astype(np.int32)
    masked = ids.copy()
    np.put_along_axis(masked, positions, mask_id, 1)
    return ids, positions, {
        "input_ids": tf.constant(masked), "input_mask": tf.ones((batch, seq), tf.int32),
        "segment_ids": tf.zeros((batch, seq), tf.int32),
        "masked_lm_positions": tf.constant(positions),
        "masked_lm_ids": tf.constant(np.take_along_axis(ids, positions, 1)),
        "masked_lm_weights": tf.ones((batch, preds), tf.float32)}


def test_discriminator_input_is_the_corrupted_sequence(tiny):
    """Original ids everywhere except masked positions, which hold the samples; no [MASK] left."""
    config, model = tiny
    ids, positions, batch = _hand_batch(config, np.random.default_rng(5))
    out = model(batch, training=True)
    sampled = out["sampled_ids"].numpy()
    expected = ids.copy()
    np.put_along_axis(expected, positions, sampled, 1)
    np.testing.assert_array_equal(out["corrupted_ids"].numpy(), expected)
    np.testing.assert_array_equal(out["rtd_labels"].numpy(), (expected != ids).astype(np.int32))
    assert not (out["corrupted_ids"].numpy() == 4).any()
    # The discriminator really reads the corrupted ids: its backbone on them gives the same logits.
    again = model(batch, training=False)
    expected_eval = ids.copy()
    np.put_along_axis(expected_eval, positions, again["sampled_ids"].numpy(), 1)
    disc = model.discriminator({"input_ids": tf.constant(expected_eval),
                                "input_mask": batch["input_mask"],
                                "segment_ids": batch["segment_ids"]}, training=False)
    np.testing.assert_allclose(model.discriminator_head(disc["sequence_output"]).numpy(),
                               again["rtd_logits"].numpy(), rtol=1e-5, atol=1e-5)


def _auc(scores, labels):
    """ROC AUC by pair counting (ties one half), written from the definition."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return greater / (len(pos) * len(neg))


def test_discriminator_learns_replaced_tokens_on_a_fixed_batch():
    """A few Adam steps with the ELECTRA loss lift the RTD AUC clearly above chance."""
    from tfcompact.objectives.pretraining import pretraining_loss
    import keras

    config = tiny_config("electra")
    model = build_pretraining_model("electra", config, seed=1)
    _, _, batch = _hand_batch(config, np.random.default_rng(0))
    optimizer = keras.optimizers.Adam(1e-3)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            out = model(batch, training=True)
            loss, _ = pretraining_loss("electra", out, batch)
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)

    for _ in range(60):
        step()
    out = model(batch, training=False)
    labels = out["rtd_labels"].numpy().ravel()
    assert labels.sum() > 0
    assert _auc(out["rtd_logits"].numpy().ravel(), labels) > 0.8
