"""`cross_replica=True` losses summed over 2 replicas equal the global-batch mean.

Runs in a subprocess: logical CPU devices must be set before TensorFlow initialises.
"""

import numpy as np

from tests.two_replicas import run_two_replicas


SCRIPT = r'''
    from tfcompact.objectives import masked_lm_loss, pretraining_loss

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 3, 7)).astype("float32")
    ids = rng.integers(0, 7, size=(4, 3)).astype("int32")
    # Replica 0 gets examples 0-1 (5 masked positions), replica 1 examples 2-3 (2 positions).
    weights = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 0, 0]], "float32")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    ds = tf.data.Dataset.from_tensor_slices((logits, ids, weights)).batch(4)
    batch = next(iter(strategy.experimental_distribute_dataset(ds)))

    @tf.function
    def run(batch):
        def fn(l, i, w):
            shared = masked_lm_loss(l, i, w, cross_replica=True)
            local = masked_lm_loss(l, i, w)
            total, _ = pretraining_loss("bert", {"mlm_logits": l},
                                        {"masked_lm_ids": i, "masked_lm_weights": w},
                                        cross_replica=True)
            return shared, local, total
        shared, local, total = strategy.run(fn, args=batch)
        return (strategy.reduce("SUM", shared, None), strategy.reduce("MEAN", local, None),
                strategy.reduce("SUM", total, None))

    shared, local_mean, total = [float(x) for x in run(batch)]
    print("RESULT " + json.dumps({"shared": shared, "local_mean": local_mean, "total": total,
                                  "logits": logits.tolist(), "ids": ids.tolist(),
                                  "weights": weights.tolist()}))
'''


def test_replica_shares_sum_to_global_mean(tmp_path):
    r = run_two_replicas(tmp_path, SCRIPT)
    logits, ids, weights = (np.asarray(r[k], np.float64) for k in ("logits", "ids", "weights"))
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    ce = -np.take_along_axis(log_probs, ids.astype(int)[..., None], -1)[..., 0]
    global_mean = (weights * ce).sum() / (weights.sum() + 1e-5)
    assert abs(r["shared"] - global_mean) < 1e-5
    assert abs(r["total"] - global_mean) < 1e-5
    # The plain per-replica means do not average to it (5 vs 2 positions per replica).
    assert abs(r["local_mean"] - global_mean) > 1e-3
