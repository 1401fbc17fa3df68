"""The training loop with every objective: losses wired to the right outputs, decreasing on a
fixed batch; the NaN guard; a frozen teacher beside the student."""
import numpy as np
import pytest
import tensorflow as tf

from train_helpers import VOCAB_SIZE, make_masked_data
from tfcompact.inputs.pretraining import pretraining_dataset
from tfcompact.configs import tiny_config
from tfcompact.models import build_pretraining_model
from tfcompact.optim import create_optimizer
from tfcompact.objectives.pretraining import auc_from_histogram
from tfcompact.train.loop import TrainLoop
from tfcompact.objectives.pretraining import pretraining_objective
from tfcompact.train.pretrain import distillation_of


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_masked_data(str(tmp_path_factory.mktemp("data")), num_instances=32)


def _fixed_batches(data_dir, batch=8):
    ds = pretraining_dataset(data_dir, batch, is_training=False).take(1).cache().repeat()
    return ds


def _loop(model, data_dir, loss_fn, share=True, lr=1e-2, **kw):
    strategy = tf.distribute.get_strategy()
    opt = create_optimizer("lamb", lr, 0, 1000)
    ds = _fixed_batches(data_dir)
    loop = TrainLoop(strategy, model, opt, loss_fn, ds.element_spec, seed=3,
                     loss_is_replica_share=share, **kw)
    return loop, iter(strategy.distribute_datasets_from_function(lambda ctx: ds)), ds


def _softmax_ce(logits, labels):
    logits = logits - logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -np.take_along_axis(logp, labels[..., None], -1)[..., 0]


@pytest.mark.parametrize("arch,sentence", [("albert", "sop"), ("bert", "nsp")])
def test_loss_is_mlm_plus_sentence_cross_entropy_and_decreases(arch, sentence, data_dir):
    tf.keras.utils.set_random_seed(1)
    model = build_pretraining_model(arch, tiny_config(arch, vocab_size=VOCAB_SIZE,
                                                      hidden_dropout_prob=0.0,
                                                      attention_probs_dropout_prob=0.0))
    loop, it, ds = _loop(model, data_dir, pretraining_objective(arch))
    batch = next(iter(ds))
    out = model({k: batch[k] for k in ("input_ids", "input_mask", "segment_ids",
                                       "masked_lm_positions")}, training=False)
    # The paper's losses, in numpy: weighted mean MLM cross-entropy + mean sentence CE.
    w = batch["masked_lm_weights"].numpy()
    mlm = (_softmax_ce(out["mlm_logits"].numpy(), batch["masked_lm_ids"].numpy()) * w).sum() / (w.sum() + 1e-5)
    sent = _softmax_ce(out["sentence_logits"].numpy(), batch["next_sentence_labels"].numpy()).mean()
    ev = loop.evaluate(iter(strategy_ds(ds)), 1)
    assert ev["mlm_loss"] == pytest.approx(mlm, rel=1e-5)
    assert ev[f"{sentence}_loss"] == pytest.approx(sent, rel=1e-5)
    assert ev["loss"] == pytest.approx(mlm + sent, rel=1e-5)
    first = loop.train(it, 1)
    assert first["loss"] == pytest.approx(mlm + sent, rel=1e-4)  # no dropout: same forward
    for _ in range(3):
        last = loop.train(it, 4)
    assert last["loss"] < 0.9 * first["loss"]
    assert last["mlm_accuracy"] > first["mlm_accuracy"]
    assert {"mlm_accuracy", f"{sentence}_accuracy", "learning_rate", "gradient_norm",
            "skipped_steps"} <= set(last)
    assert int(loop.step.numpy()) == 13 and int(loop.optimizer.iterations.numpy()) == 13


def strategy_ds(ds):
    return tf.distribute.get_strategy().distribute_datasets_from_function(lambda ctx: ds)


def test_electra_generator_and_discriminator_train(data_dir):
    tf.keras.utils.set_random_seed(1)
    model = build_pretraining_model("electra", tiny_config("electra", vocab_size=VOCAB_SIZE), seed=5)
    loop, it, _ = _loop(model, data_dir, pretraining_objective("electra"))
    first = loop.train(it, 1)
    assert first["loss"] == pytest.approx(first["mlm_loss"] + 50.0 * first["rtd_loss"], rel=1e-5)
    loop.train(it, 6)
    last = loop.train(it, 4)
    assert last["loss"] < first["loss"]
    assert last["mlm_loss"] < first["mlm_loss"]
    assert 0.0 <= last["rtd_auc"] <= 1.0 and "rtd_accuracy" in last


def _toy(name="toy", seed=0):
    """A small dict-in/dict-out Keras model: the loop mechanics do not depend on the network."""
    import keras

    inputs = {"input_ids": keras.Input((32,), dtype="int32", name="input_ids")}
    x = keras.layers.Embedding(VOCAB_SIZE, 8, name=f"{name}_emb")(inputs["input_ids"])
    x = keras.layers.Dropout(0.1, seed=seed, name=f"{name}_drop")(x)
    h = keras.layers.Dense(8, name=f"{name}_dense")(x)
    return keras.Model(inputs, {"hidden": h}, name=name)


def _toy_loss(outputs, batch, teacher, step):
    target = tf.one_hot(batch["input_ids"] % 8, 8)
    loss = tf.reduce_mean(tf.square(outputs["hidden"] - target))
    return loss, {"mse": loss}


def test_nonfinite_steps_are_skipped_then_stop(data_dir):
    tf.keras.utils.set_random_seed(1)
    model = _toy()

    def loss_fn(outputs, batch, teacher, step):
        loss, metrics = _toy_loss(outputs, batch, teacher, step)
        poison = tf.where((step == 2) | (step == 3) | (step >= 5), np.nan, 1.0)
        return loss * poison, metrics

    loop, it, _ = _loop(model, data_dir, loss_fn, share=False, max_nonfinite_steps=3)
    loop.train(it, 2)
    before = [v.numpy().copy() for v in model.trainable_variables]
    slots = [v.numpy().copy() for v in loop.optimizer.variables]
    m = loop.train(it, 2)  # steps 2 and 3: NaN, skipped
    assert m["skipped_steps"] == 1.0
    assert int(loop.nonfinite_in_a_row.numpy()) == 2
    for a, v in zip(before, model.trainable_variables):
        np.testing.assert_array_equal(a, v.numpy())
    for a, v in zip(slots, loop.optimizer.variables):
        np.testing.assert_array_equal(a, v.numpy())
    m = loop.train(it, 1)  # step 4 is fine: counter resets, update applied
    assert int(loop.nonfinite_in_a_row.numpy()) == 0 and int(loop.optimizer.iterations.numpy()) == 3
    assert np.isfinite(m["loss"]) and m["skipped_steps"] == 0.0
    loop.train(it, 100)  # NaN from step 5 on: stops after 3 in a row
    assert int(loop.step.numpy()) == 8
    assert loop.stopped_on_nonfinite


def test_dropout_seeds_follow_the_step(data_dir):
    """Same step -> same dropout mask, whatever ran before: what exact resume relies on."""
    tf.keras.utils.set_random_seed(1)
    model = _toy()
    loop, it, _ = _loop(model, data_dir, _toy_loss, share=False, lr=0.0)
    states = []
    for step in (5, 6, 5):
        loop.step.assign(step)
        loop.train(it, 1)
        states.append([v.numpy().copy() for v in loop._seed_vars])
    assert states[0][0].tolist() == states[2][0].tolist()
    assert states[0][0].tolist() != states[1][0].tolist()


def test_frozen_teacher_runs_beside_the_student(data_dir):
    tf.keras.utils.set_random_seed(1)
    teacher, student = _toy("teacher", 1), _toy("student", 2)
    seen = {}

    def loss_fn(outputs, batch, teacher_outputs, step):
        seen["teacher"] = teacher_outputs
        target = 10.0 * teacher_outputs["hidden"]  # scaled so the untrained gap is clear
        loss = tf.reduce_mean(tf.square(outputs["hidden"] - target))
        return loss, {"distill": loss}

    frozen = [v.numpy().copy() for v in teacher.weights]
    loop, it, _ = _loop(student, data_dir, loss_fn, share=False, teacher=teacher, lr=1e-2)
    first = loop.train(it, 1)
    last = loop.train(it, 10)
    assert last["distill"] < first["distill"]
    assert isinstance(seen["teacher"], dict) and "hidden" in seen["teacher"]
    assert not teacher.trainable
    for a, v in zip(frozen, teacher.weights):
        np.testing.assert_array_equal(a, v.numpy())


def test_distillation_section_builds_its_matches_for_the_models():
    """`distillation.matches` from a YAML section reach the objective with their weights and
    the projection the pretraining driver builds (fit_dense: student width -> teacher's)."""
    from tfcompact.models import build_pretraining_model
    from tfcompact.train.experiment import experiment_from_dict

    cfg = tiny_config("tinybert", num_hidden_layers=2, hidden_size=16, num_attention_heads=2,
                      intermediate_size=32, vocab_size=40)
    student = build_pretraining_model("tinybert", cfg)
    teacher = build_pretraining_model("bert", tiny_config(
        "bert", num_hidden_layers=4, hidden_size=24, num_attention_heads=2,
        intermediate_size=48, vocab_size=40), name="teacher")
    exp = experiment_from_dict({
        "model": {"preset": "tinybert_4l_312_zh"}, "data": {"train": "d"},
        "distillation": {"teacher": {"preset": "bert_base_zh", "checkpoint": "t"}, "matches": [
            {"feature": "attention", "loss": "attention_mse", "weight": 2.0, "name": "att"},
            {"feature": "hidden", "loss": "mse", "projection": "linear",
             "projection_name": "fit_dense", "name": "hid"}]}})
    d = distillation_of(exp, "tinybert", student, teacher)
    assert d.projections.sizes == {"fit_dense": (16, 24)}
    rng = np.random.default_rng(0)
    batch = {"input_ids": tf.constant(rng.integers(1, 40, (2, 6)), tf.int32),
             "input_mask": tf.ones((2, 6), tf.int32), "segment_ids": tf.zeros((2, 6), tf.int32),
             "masked_lm_positions": tf.constant([[1, 2], [3, 0]], tf.int32),
             "masked_lm_ids": tf.constant([[4, 5], [6, 0]], tf.int32),
             "masked_lm_weights": tf.constant([[1.0, 1.0], [1.0, 0.0]]),
             "next_sentence_labels": tf.constant([[0], [1]], tf.int32)}
    keys = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions")
    s_out = student({k: batch[k] for k in keys})
    t_out = teacher({k: batch[k] for k in keys})
    total, metrics = d.loss_fn(s_out, batch, t_out, tf.constant(0, tf.int64))
    W = d.projections.dense["fit_dense"].kernel.numpy()
    b = d.projections.dense["fit_dense"].bias.numpy()
    att = sum(np.mean((np.where(np.asarray(s_out["attention_logits"][i]) <= -100, 0,
                                np.asarray(s_out["attention_logits"][i]))
                       - np.where(np.asarray(t_out["attention_logits"][2 * i + 1]) <= -100, 0,
                                  np.asarray(t_out["attention_logits"][2 * i + 1]))) ** 2)
              for i in range(2))
    hid = sum(np.mean((np.asarray(s_out["hidden_states"][j]) @ W + b
                       - np.asarray(t_out["hidden_states"][2 * j])) ** 2) for j in range(3))
    assert float(metrics["att_loss"]) == pytest.approx(2.0 * att, rel=1e-4)
    assert float(metrics["hid_loss"]) == pytest.approx(hid, rel=1e-4)
    assert float(total) == pytest.approx(2.0 * att + hid, rel=1e-4)
    assert "mlm_accuracy" in metrics  # the ground-truth metrics are reported (weight 0)


def test_auc_from_histogram_matches_pairwise_count():
    rng = np.random.default_rng(0)
    pos = rng.integers(0, 5, 10).astype(float)
    neg = rng.integers(0, 5, 10).astype(float)
    # pairwise: P(score_pos > score_neg) + 0.5 P(tie), scores = bucket index
    num = sum(pos[i] * neg[j] * (1.0 if i > j else 0.5 if i == j else 0.0)
              for i in range(10) for j in range(10))
    assert float(auc_from_histogram(np.stack([neg, pos]))) == pytest.approx(num / (pos.sum() * neg.sum()))
