"""Fine-tuning losses: the cross-entropies of their definitions, padding examples weightless,
float32 under any compute dtype, replica shares summing to the global mean, and a tiny
fine-tune through the train loop that fits its examples."""
import math

import numpy as np
import pytest
import tensorflow as tf

from tests.two_replicas import run_two_replicas

from tfcompact.configs import tiny_config
from tfcompact.errors import ConfigError
from tfcompact.models import build_backbone
from tfcompact.models.tasks import build_task_model
from tfcompact.objectives.tasks import TASK_METRICS, task_loss, task_objective
from tfcompact.optim import create_optimizer
from tfcompact.train.loop import TrainLoop



def _ce(logits, labels):
    """-log softmax from the definition: log(sum exp) - logit[label]."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels)
    lse = np.log(np.exp(logits).sum(-1))
    return lse - np.take_along_axis(logits, labels[..., None], -1)[..., 0]


def _run(kind, outputs, batch):
    loss, metrics = task_loss(kind, {k: tf.constant(v) for k, v in outputs.items()},
                              {k: tf.constant(v) for k, v in batch.items()})
    return float(loss), {k: float(v) for k, v in metrics.items()}


def test_classification_is_mean_cross_entropy_and_accuracy_worked_by_hand():
    # Row 0: logits (ln 3, 0), label 0: p = 3/4. Row 1: (0, 0, ...) label 1: p = 1/2.
    logits = np.array([[math.log(3.0), 0.0], [0.0, 0.0]], "float32")
    loss, metrics = _run("classification", {"logits": logits},
                         {"label_ids": np.array([0, 1], "int32"),
                          "example_weight": np.ones(2, "float32")})
    assert loss == pytest.approx((math.log(4 / 3) + math.log(2)) / 2, rel=1e-6)
    # argmax of a tie is the first class: row 1 is wrong.
    assert metrics == {"accuracy": pytest.approx(0.5)}


def test_padding_examples_change_nothing():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4)).astype("float32")
    labels = np.array([2, 0, 3], "int32")
    real = _run("classification", {"logits": logits},
                {"label_ids": labels, "example_weight": np.ones(3, "float32")})
    padded_logits = np.concatenate([logits, 50 * rng.normal(size=(2, 4)).astype("float32")])
    padded = _run("classification", {"logits": padded_logits},
                  {"label_ids": np.array([2, 0, 3, 1, 1], "int32"),
                   "example_weight": np.array([1, 1, 1, 0, 0], "float32")})
    assert padded[0] == pytest.approx(real[0], rel=1e-6)
    assert padded[1] == pytest.approx(real[1])
    assert real[0] == pytest.approx(_ce(logits, labels).mean(), rel=1e-5)


def test_tagging_averages_over_weighted_first_pieces_of_real_examples():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 5, 4)).astype("float32")
    labels = rng.integers(0, 4, size=(3, 5)).astype("int32")
    label_weights = np.array([[0, 1, 1, 0, 0], [0, 1, 0, 1, 1], [0, 1, 1, 1, 1]], "float32")
    example_weight = np.array([1, 1, 0], "float32")
    loss, metrics = _run("tagging", {"logits": logits},
                         {"label_ids": labels, "label_weights": label_weights,
                          "example_weight": example_weight})
    ce = _ce(logits, labels)
    # The five labelled pieces of examples 0 and 1, by hand.
    picked = [ce[0, 1], ce[0, 2], ce[1, 1], ce[1, 3], ce[1, 4]]
    assert loss == pytest.approx(np.mean(picked), rel=1e-5)
    hits = [int(np.argmax(logits[b, s]) == labels[b, s])
            for b, s in [(0, 1), (0, 2), (1, 1), (1, 3), (1, 4)]]
    assert metrics["token_accuracy"] == pytest.approx(np.mean(hits))


def test_span_is_half_the_sum_of_start_and_end_cross_entropy():
    # Sequence of 4: start logits put ln 2 on position 1, end logits are all equal.
    start = np.array([[0, math.log(2.0), 0, 0], [0, 0, 0, 0]], "float32")
    end = np.zeros((2, 4), "float32")
    loss, metrics = _run("span", {"start_logits": start, "end_logits": end},
                         {"start_positions": np.array([1, 0], "int32"),
                          "end_positions": np.array([2, 3], "int32"),
                          "example_weight": np.ones(2, "float32")})
    start_ce = (math.log(5 / 2) + math.log(4)) / 2  # p = 2/5, then 1/4
    end_ce = math.log(4)
    assert metrics["start_loss"] == pytest.approx(start_ce, rel=1e-6)
    assert metrics["end_loss"] == pytest.approx(end_ce, rel=1e-6)
    assert loss == pytest.approx((start_ce + end_ce) / 2, rel=1e-6)
    assert metrics["start_accuracy"] == pytest.approx(1.0)  # argmax 1 and (tie) 0
    assert metrics["end_accuracy"] == pytest.approx(0.0)
    assert set(metrics) == set(TASK_METRICS["span"])


def test_half_precision_logits_give_a_float32_loss():
    logits = tf.constant([[math.log(3.0), 0.0]], tf.bfloat16)
    loss, metrics = task_loss("classification", {"logits": logits},
                              {"label_ids": tf.constant([0]),
                               "example_weight": tf.constant([1.0])})
    assert loss.dtype == tf.float32 and metrics["accuracy"].dtype == tf.float32
    assert float(loss) == pytest.approx(math.log(4 / 3), rel=1e-2)  # bf16 rounds ln 3


def test_all_padding_batch_is_zero_not_nan():
    loss, metrics = _run("classification", {"logits": np.zeros((2, 3), "float32")},
                         {"label_ids": np.zeros(2, "int32"),
                          "example_weight": np.zeros(2, "float32")})
    assert loss == 0.0 and metrics["accuracy"] == 0.0


def test_unknown_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="expected one of classification"):
        task_objective("ner", 3)


SCRIPT = r'''
    from tfcompact.objectives.tasks import task_objective

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 5, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(4, 5)).astype("int32")
    # Replica 0 holds examples 0-1 (6 labelled pieces), replica 1 examples 2-3 (1 piece: the
    # last example is padding).
    label_weights = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0],
                              [1, 1, 1, 1, 1]], "float32")
    example_weight = np.array([1, 1, 1, 0], "float32")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    data = {"logits": logits, "label_ids": labels, "label_weights": label_weights,
            "example_weight": example_weight, "cls_logits": logits[:, 0],
            "cls_labels": labels[:, 0], "start": logits[:, :, 0], "end": logits[:, :, 1],
            "start_positions": labels[:, 0] + 1, "end_positions": labels[:, 1] + 2}
    ds = tf.data.Dataset.from_tensor_slices(data).batch(4)
    batch = next(iter(strategy.experimental_distribute_dataset(ds)))
    objectives = {k: task_objective(k, 3) for k in ("classification", "tagging", "span")}

    @tf.function
    def run(batch):
        def fn(b):
            tagging = objectives["tagging"]({"logits": b["logits"]}, b, None, 0)
            cls = objectives["classification"](
                {"logits": b["cls_logits"]}, {**b, "label_ids": b["cls_labels"]}, None, 0)
            span = objectives["span"]({"start_logits": b["start"], "end_logits": b["end"]}, b,
                                      None, 0)
            return {"tagging": tagging[0], "token_accuracy": tagging[1]["token_accuracy"],
                    "classification": cls[0], "accuracy": cls[1]["accuracy"],
                    "span": span[0]}
        shares = strategy.run(fn, args=(batch,))
        return {k: strategy.reduce("SUM", v, None) for k, v in shares.items()}

    print("RESULT " + json.dumps({k: float(v) for k, v in run(batch).items()}
                                 | {k: np.asarray(v).tolist() for k, v in data.items()}))
'''


def test_replica_shares_sum_to_the_global_mean(tmp_path):
    r = run_two_replicas(tmp_path, SCRIPT)
    d = {k: np.asarray(r[k]) for k in ("logits", "label_ids", "label_weights",
                                        "example_weight", "cls_logits", "cls_labels", "start",
                                        "end", "start_positions", "end_positions")}
    w = d["label_weights"] * d["example_weight"][:, None]
    assert w.sum() == 7
    ce = _ce(d["logits"], d["label_ids"])
    assert r["tagging"] == pytest.approx((w * ce).sum() / w.sum(), rel=1e-5)
    hits = (d["logits"].argmax(-1) == d["label_ids"])
    assert r["token_accuracy"] == pytest.approx((w * hits).sum() / w.sum(), rel=1e-5)
    ew = d["example_weight"]
    cls_ce = _ce(d["cls_logits"], d["cls_labels"])
    assert r["classification"] == pytest.approx((ew * cls_ce).sum() / 3, rel=1e-5)
    cls_hits = d["cls_logits"].argmax(-1) == d["cls_labels"]
    assert r["accuracy"] == pytest.approx((ew * cls_hits).sum() / 3, rel=1e-5)
    span = ((ew * _ce(d["start"], d["start_positions"])).sum() / 3
            + (ew * _ce(d["end"], d["end_positions"])).sum() / 3) / 2
    assert r["span"] == pytest.approx(span, rel=1e-5)


def _features(kind, n=8, seq=10, vocab=300):
    """n examples whose label is decided by one token (classification), one tag per token id
    parity (tagging) or the position of a marker token (span)."""
    rng = np.random.default_rng(5)
    ids = rng.integers(10, vocab, size=(n, seq)).astype("int32")
    ids[:, 0] = 2
    features = {"input_ids": ids, "input_mask": np.ones((n, seq), "int32"),
                "segment_ids": np.zeros((n, seq), "int32"),
                "example_weight": np.ones(n, "float32")}
    if kind == "classification":
        labels = np.arange(n) % 3
        ids[:, 1] = 5 + labels
        features["label_ids"] = labels.astype("int32")
    else:
        features["label_ids"] = (ids % 2).astype("int32")
        features["label_weights"] = np.ones((n, seq), "float32")
        features["label_weights"][:, 0] = 0
    return features


def test_a_tiny_fine_tune_fits_its_examples(kind="classification"):
    tf.keras.utils.set_random_seed(0)
    config = tiny_config("bert")
    backbone = build_backbone("bert", config)
    model = build_task_model(backbone, "bert", config, kind, 3 if kind == "classification" else 2)
    ds = tf.data.Dataset.from_tensor_slices(_features(kind)).batch(8).cache().repeat()
    strategy = tf.distribute.get_strategy()
    with strategy.scope():
        optimizer = create_optimizer("adamw", 1e-3, 5, 200, 0.01)
    loop = TrainLoop(strategy, model, optimizer, task_objective(kind, 3), ds.element_spec,
                     seed=1, loss_is_replica_share=True)
    first = loop.evaluate(iter(ds), 1)
    loop.train(iter(ds), 30)
    last = loop.evaluate(iter(ds), 1)
    metric = "accuracy" if kind == "classification" else "token_accuracy"
    assert last["loss"] < 0.1 * first["loss"], (first, last)
    assert last[metric] == 1.0
