"""The training loop: a tf.function running many steps per call under any tf.distribute strategy.

Why not `model.fit`: with `steps_per_execution > 1` under MirroredStrategy it fails (Keras
issue 19246), and TPUs need hundreds of steps per host call. So one call of `train(iterator, n)`
runs `for _ in tf.range(n): strategy.run(step, (next(iterator),))`.

One step, per replica:
  1. every random seed in the model (dropout, ELECTRA's Gumbel sampling) is set from
     (run seed, global step, replica id): a restarted run draws exactly the same numbers;
  2. forward (+ frozen teacher), loss in float32. Either the loss function returns each
     replica's share of the global-batch mean (`loss_is_replica_share`, the objectives'
     `cross_replica=True`: denominators all-reduced, exact even when replicas hold different
     numbers of masked positions), or a per-replica mean that is divided by the replica count;
  3. gradients; one scalar all-reduce says whether any replica saw a NaN/Inf; if so the update
     is skipped (weights, slots and the optimizer's step counter untouched) and a counter of
     consecutive bad steps grows; the loop stops once it reaches `max_nonfinite_steps`;
  4. otherwise the optimizer all-reduces the gradients, clips them by global norm and updates;
  5. metrics are summed into on-read variables (summed over replicas when read).

Gradient accumulation (`accumulation_steps` = A > 1): one optimizer step consumes A micro-batches
of global batch / A each. Every micro-batch's gradients (each replica's share of that
micro-batch's mean, as above) go into replica-local sums (`optim.GradientAccumulator`); after the
A-th the mean is checked for NaN/Inf and applied once. `step` counts optimizer steps, so the
input position is step * A micro-batches; a call of `train` always ends on an apply, so
checkpoints never hold half-accumulated gradients (the sums are not checkpointed).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import keras
import tensorflow as tf

from tfcompact.objectives.pretraining import auc_from_histogram, rtd_auc_histogram
from tfcompact.optim.accumulation import GradientAccumulator

# loss_fn(outputs, batch, teacher_outputs, step) -> (loss, {name: scalar}); `step` is the int64
# global step (distillation schedules such as MobileBERT's progressive transfer use it).
LossFn = Callable[[Mapping[str, Any], Mapping[str, tf.Tensor], Any], tuple]

AUC_BUCKETS = 200
_SEED_MOD = 2**31 - 1


def seed_state_variables(*models: keras.Model | None) -> list:
    """The state variables of every keras SeedGenerator in the models (dropout, sampling)."""
    found, seen = [], set()
    for model in models:
        if model is None:
            continue
        for v in model.variables:
            if v.path.endswith("seed_generator_state") and id(v) not in seen:
                seen.add(id(v))
                found.append(v)
    return found


def input_keys(model: keras.Model) -> tuple[str, ...] | None:
    """The dict keys a functional model takes (a functional model must get exactly those);
    None for subclassed models, which read what they need from the whole batch."""
    try:
        spec = model.input
    except (AttributeError, ValueError):
        return None
    return tuple(spec.keys()) if isinstance(spec, dict) else None


def call_model(model: keras.Model, batch: Mapping[str, tf.Tensor], training: bool,
               keys: tuple[str, ...] | None = None):
    """model(batch) with the batch cut down to the model's inputs."""
    if keys is not None:
        batch = {k: batch[k] for k in keys}
    return model(batch, training=training)


class _Accumulators:
    """Per-replica sums (on-read variables: reading them sums over replicas)."""

    def __init__(self, names: Sequence[str], prefix: str):
        on_read = dict(synchronization=tf.VariableSynchronization.ON_READ,
                       aggregation=tf.VariableAggregation.SUM, trainable=False)
        self.names = list(names)
        self.sums = {n: tf.Variable(0.0, name=f"{prefix}_{n}", **on_read) for n in names}
        self.count = tf.Variable(0.0, name=f"{prefix}_count", **on_read)
        self.auc = tf.Variable(tf.zeros([2, AUC_BUCKETS]), name=f"{prefix}_rtd_hist", **on_read)

    def add(self, metrics: Mapping[str, tf.Tensor], weight: float,
            shares: Sequence[str] = ()) -> None:
        """Add one replica's step: values in `shares` are already that replica's share of the
        global mean (they sum over replicas); the others are multiplied by `weight` (1/R)."""
        for n in self.names:
            value = tf.cast(metrics[n], tf.float32)
            self.sums[n].assign_add(value if n in shares else value * weight)
        self.count.assign_add(weight)

    def add_rtd_histogram(self, logits: tf.Tensor, labels: tf.Tensor, mask: tf.Tensor) -> None:
        self.auc.assign_add(rtd_auc_histogram(logits, labels, mask, AUC_BUCKETS))

    def result_and_reset(self) -> dict[str, float]:
        """Means over the steps since the last reset, plus RTD AUC when tracked."""
        count = float(self.count.read_value())
        out = {n: float(self.sums[n].read_value()) / max(count, 1.0) for n in self.names}
        hist = self.auc.read_value()
        if float(tf.reduce_sum(hist)) > 0:
            out["rtd_auc"] = float(auc_from_histogram(hist))
        for v in list(self.sums.values()) + [self.count]:
            v.assign(0.0)
        self.auc.assign(tf.zeros([2, AUC_BUCKETS]))
        return out


class TrainLoop:
    """Compiled train and eval loops for one model, optimizer and loss under a strategy.

    `model(batch, training)` returns a dict of outputs; `loss_fn(outputs, batch,
    teacher_outputs, step)` returns (scalar loss, {metric name: scalar}); `teacher`, when given, is
    called with training=False beside the student and never updated (distillation);
    `auxiliary`, when given, is a layer whose variables train with the model but are not part
    of it (distillation projections): the loss function calls it.
    Create it outside `strategy.scope()` (it enters the scope itself). The variables `step`
    (= batches consumed, the input position) and `nonfinite_in_a_row` belong in the checkpoint.
    """

    def __init__(self, strategy: tf.distribute.Strategy, model: keras.Model,
                 optimizer: keras.optimizers.Optimizer, loss_fn: LossFn,
                 element_spec: Mapping[str, tf.TensorSpec], *, seed: int,
                 teacher: keras.Model | None = None, jit_compile: bool = False,
                 max_nonfinite_steps: int = 10, loss_is_replica_share: bool = False,
                 accumulation_steps: int = 1, auxiliary: keras.layers.Layer | None = None):
        self.strategy = strategy
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.teacher = teacher
        self.seed = int(seed)
        self.max_nonfinite_steps = int(max_nonfinite_steps)
        self.num_replicas = strategy.num_replicas_in_sync
        self.loss_is_replica_share = bool(loss_is_replica_share)
        self.accumulation_steps = int(accumulation_steps)
        if self.accumulation_steps < 1:
            raise ValueError(f"accumulation_steps: expected >= 1, got {accumulation_steps}")
        if teacher is not None:
            teacher.trainable = False
        self._keys = input_keys(model)
        self._teacher_keys = None if teacher is None else input_keys(teacher)
        with strategy.scope():
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step",
                                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            self.nonfinite_in_a_row = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="nonfinite_in_a_row",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            self.trainable_variables = list(model.trainable_variables) + (
                [] if auxiliary is None else list(auxiliary.trainable_variables))
            optimizer.build(self.trainable_variables)
            names = self._metric_names(element_spec)
            self.train_metrics = _Accumulators(
                names + ["learning_rate", "gradient_norm", "skipped_steps"], "train")
            self.eval_metrics = _Accumulators(names, "eval")
            self.accumulator = None
            if self.accumulation_steps > 1:
                self.accumulator = GradientAccumulator(self.trainable_variables,
                                                       self.accumulation_steps)
                self.micro_metrics = _Accumulators(names, "train_micro")
        self._seed_vars = seed_state_variables(model, teacher)
        self.tracks_rtd = self._has_rtd
        # XLA for every per-replica step (train, eval; with accumulation the micro-step and the
        # apply, which a TPU compiles as well): only where no merge_call is needed (the default
        # strategy; TPUs compile everything anyway): a nested tf.function around a step that
        # calls merge_call breaks MirroredStrategy.
        self.jit_compile = bool(jit_compile) and \
            tf.__internal__.distribute.strategy_supports_no_merge_call()
        # The step functions have no data-dependent Python control flow: AutoGraph would only
        # slow down tracing (it would convert every Keras call inside them).
        train_step = tf.autograph.experimental.do_not_convert(self._train_step_fn)
        eval_step = tf.autograph.experimental.do_not_convert(self._eval_step_fn)
        micro_step = tf.autograph.experimental.do_not_convert(self._micro_step_fn)
        apply_step = tf.autograph.experimental.do_not_convert(self._apply_step_fn)
        if self.jit_compile:
            self._replica_train_step = tf.function(train_step, jit_compile=True)
            self._replica_eval_step = tf.function(eval_step, jit_compile=True)
            self._replica_micro_step = tf.function(micro_step, jit_compile=True)
            self._replica_apply_step = tf.function(apply_step, jit_compile=True)
        else:
            self._replica_train_step = train_step
            self._replica_eval_step = eval_step
            self._replica_micro_step = micro_step
            self._replica_apply_step = apply_step
        self._train = tf.function(self._train_loop_fn)
        self._eval = tf.function(self._eval_loop_fn)

    # ------------------------------------------------------------------ structure probing
    def _metric_names(self, element_spec: Mapping[str, tf.TensorSpec]) -> list[str]:
        """Trace (do not run) one forward + loss to learn the metric names and outputs."""
        spec = {k: tf.TensorSpec([1] + list(s.shape[1:]), s.dtype) for k, s in element_spec.items()}

        found = {}

        def probe(batch):
            outputs = call_model(self.model, batch, False, self._keys)
            teacher_outputs = None if self.teacher is None else call_model(
                self.teacher, batch, False, self._teacher_keys)
            loss, metrics = self.loss_fn(outputs, batch, teacher_outputs,
                                         tf.constant(0, tf.int64))
            found["rtd"] = "rtd_logits" in outputs
            return {"loss": loss, **metrics}

        concrete = tf.function(probe).get_concrete_function(spec)
        self._has_rtd = bool(found["rtd"])
        return list(concrete.structured_outputs.keys())

    # ------------------------------------------------------------------ seeds
    def _reseed(self, step: tf.Tensor, replica_id: tf.Tensor, micro: tf.Tensor | int = 0) -> None:
        """Set every SeedGenerator from (run seed, step, micro-batch, replica): restart-proof
        randomness (with one micro-batch per step the counter is step * replicas + replica)."""
        counter = (step * self.accumulation_steps + micro) * self.num_replicas + \
            tf.cast(replica_id, tf.int64)
        for i, v in enumerate(self._seed_vars):
            first = (self.seed * 1000003 + i * 7919) % _SEED_MOD
            second = counter % _SEED_MOD
            v.assign(tf.cast(tf.stack([tf.constant(first, tf.int64), second]), v.dtype))

    # ------------------------------------------------------------------ one step
    def _forward(self, batch, training: bool, step):
        outputs = call_model(self.model, batch, training, self._keys)
        teacher_outputs = None
        if self.teacher is not None:
            teacher_outputs = tf.nest.map_structure(
                tf.stop_gradient, call_model(self.teacher, batch, False, self._teacher_keys))
        loss, metrics = self.loss_fn(outputs, batch, teacher_outputs, step)
        loss = tf.cast(loss, tf.float32)
        return outputs, loss, {"loss": loss, **metrics}

    def _apply_or_skip(self, grads, finite) -> None:
        variables = self.trainable_variables

        def apply(g):
            # Re-create the gradients inside the branch graph: the replica all-reduce is a
            # custom_gradient op, which rejects inputs captured from the enclosing graph.
            g = [None if x is None else tf.identity(x) for x in g]
            self.optimizer.apply(g, variables)

        if tf.__internal__.distribute.strategy_supports_no_merge_call():
            tf.cond(finite, lambda: apply(grads), lambda: None)
            return

        # The optimizer calls merge_call, which a cond in replica context cannot contain:
        # decide in cross-replica context (all replicas agree on `finite`).
        def cross_replica(distribution, g, f):
            ok = distribution.experimental_local_results(f)[0]

            def run():
                distribution.extended.call_for_each_replica(apply, args=(g,))

            tf.cond(ok, run, lambda: None)

        tf.distribute.get_replica_context().merge_call(cross_replica, args=(grads, finite))

    def _share_names(self, metrics: Mapping) -> tuple:
        if not self.loss_is_replica_share:
            return ()
        return tuple(k for k in metrics if k not in ("learning_rate", "gradient_norm",
                                                     "skipped_steps"))

    def _train_step_fn(self, batch, step):
        ctx = tf.distribute.get_replica_context()
        self._reseed(step, ctx.replica_id_in_sync_group)
        with tf.GradientTape() as tape:
            outputs, loss, metrics = self._forward(batch, True, step)
            scaled = loss if self.loss_is_replica_share else loss / self.num_replicas
        grads = tape.gradient(scaled, self.trainable_variables)
        local_ok = tf.math.is_finite(loss) & tf.math.is_finite(
            tf.linalg.global_norm([g for g in grads if g is not None]))
        bad = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(~local_ok, tf.float32))
        finite = bad == 0.0
        self._apply_or_skip(grads, finite)
        self.nonfinite_in_a_row.assign(
            tf.where(finite, tf.constant(0, tf.int64), self.nonfinite_in_a_row + 1))
        lr = self.optimizer.learning_rate
        metrics = dict(metrics)
        metrics["learning_rate"] = tf.cast(lr, tf.float32) if not callable(lr) else lr
        metrics["gradient_norm"] = tf.cast(self.optimizer.gradient_norm, tf.float32) \
            if hasattr(self.optimizer, "gradient_norm") else tf.linalg.global_norm(grads)
        metrics["skipped_steps"] = 1.0 - tf.cast(finite, tf.float32)
        # A skipped step's loss is NaN: keep it out of the means (the skip is counted).
        metrics = {k: tf.where(finite, tf.cast(v, tf.float32), 0.0) if k != "skipped_steps"
                   else v for k, v in metrics.items()}
        self.train_metrics.add(metrics, 1.0 / self.num_replicas, self._share_names(metrics))
        if self.tracks_rtd:
            self.train_metrics.add_rtd_histogram(outputs["rtd_logits"], outputs["rtd_labels"],
                                                 batch["input_mask"])

    def _micro_step_fn(self, batch, step, micro: tf.Tensor):
        """Forward + backward of one micro-batch; gradients added to the accumulator."""
        ctx = tf.distribute.get_replica_context()
        self._reseed(step, ctx.replica_id_in_sync_group, micro)
        with tf.GradientTape() as tape:
            outputs, loss, metrics = self._forward(batch, True, step)
            scaled = loss if self.loss_is_replica_share else loss / self.num_replicas
        grads = tape.gradient(scaled, self.trainable_variables)
        self.accumulator.accumulate(grads)
        # A non-finite micro-batch makes the whole step skipped: keep its values out of the means.
        ok = tf.math.is_finite(loss)
        metrics = {k: tf.where(ok, tf.cast(v, tf.float32), 0.0) for k, v in metrics.items()}
        self.micro_metrics.add(metrics, 1.0 / self.num_replicas, self._share_names(metrics))
        if self.tracks_rtd:
            self.train_metrics.add_rtd_histogram(outputs["rtd_logits"], outputs["rtd_labels"],
                                                 batch["input_mask"])

    def _apply_step_fn(self):
        """Apply the mean of the accumulated micro-batch gradients (or skip it if not finite)."""
        ctx = tf.distribute.get_replica_context()
        grads = self.accumulator.gradients()
        local_ok = tf.math.is_finite(tf.linalg.global_norm(grads))
        bad = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(~local_ok, tf.float32))
        finite = bad == 0.0
        self._apply_or_skip(grads, finite)
        self.accumulator.reset()
        self.nonfinite_in_a_row.assign(
            tf.where(finite, tf.constant(0, tf.int64), self.nonfinite_in_a_row + 1))
        lr = self.optimizer.learning_rate
        norm = tf.cast(self.optimizer.gradient_norm, tf.float32) \
            if hasattr(self.optimizer, "gradient_norm") else tf.linalg.global_norm(grads)
        weight = 1.0 / self.num_replicas
        extra = self.train_metrics
        extra.sums["learning_rate"].assign_add(
            tf.where(finite, tf.cast(lr, tf.float32), 0.0) * weight)
        extra.sums["gradient_norm"].assign_add(tf.where(finite, norm, 0.0) * weight)
        extra.sums["skipped_steps"].assign_add((1.0 - tf.cast(finite, tf.float32)) * weight)
        extra.count.assign_add(weight)

    def _eval_step_fn(self, batch, index):
        ctx = tf.distribute.get_replica_context()
        self._reseed(tf.constant(2**40, tf.int64) + index, ctx.replica_id_in_sync_group)
        outputs, _, metrics = self._forward(batch, False, self.step.value())
        self.eval_metrics.add(metrics, 1.0 / self.num_replicas, self._share_names(metrics))
        if self.tracks_rtd:
            self.eval_metrics.add_rtd_histogram(outputs["rtd_logits"], outputs["rtd_labels"],
                                                batch["input_mask"])

    # ------------------------------------------------------------------ loops
    def _train_loop_fn(self, iterator, num_steps):
        # The NaN guard's stop is part of the loop condition: a `break` would put the step
        # (and its merge_call) inside a cond, which MirroredStrategy cannot run.
        done = tf.constant(0, tf.int64)
        while tf.logical_and(done < num_steps,
                             self.nonfinite_in_a_row < self.max_nonfinite_steps):
            if self.accumulator is None:
                self.strategy.run(self._replica_train_step,
                                  args=(next(iterator), self.step.value()))
            else:
                for micro in range(self.accumulation_steps):  # unrolled: A is small
                    # `micro` as a tensor: a Python int would trace (and compile) the step A times.
                    self.strategy.run(self._replica_micro_step,
                                      args=(next(iterator), self.step.value(),
                                            tf.constant(micro, tf.int64)))
                self.strategy.run(self._replica_apply_step)
            self.step.assign_add(1)
            done += 1

    def _eval_loop_fn(self, iterator, num_steps):
        for i in tf.range(num_steps):
            self.strategy.run(self._replica_eval_step, args=(next(iterator), tf.cast(i, tf.int64)))

    def train(self, iterator, num_steps: int) -> dict[str, float]:
        """Run up to `num_steps` steps (fewer if the NaN guard trips); metric means."""
        self._train(iterator, tf.constant(int(num_steps), tf.int64))
        result = self.train_metrics.result_and_reset()
        if self.accumulator is not None:
            # Loss terms: means over micro-batches; learning rate, norm, skips: per apply.
            result.update(self.micro_metrics.result_and_reset())
        return result

    def evaluate(self, iterator, num_steps: int) -> dict[str, float]:
        """Forward passes (training=False) over `num_steps` batches; metric means."""
        self._eval(iterator, tf.constant(int(num_steps), tf.int64))
        return self.eval_metrics.result_and_reset()

    @property
    def stopped_on_nonfinite(self) -> bool:
        return int(self.nonfinite_in_a_row.numpy()) >= self.max_nonfinite_steps
