"""Gradient accumulation for a custom training loop under a tf.distribute strategy.

Each replica adds its micro-batch gradients into replica-local accumulators
(`synchronization=ON_READ`, `aggregation=SUM`: every replica reads and writes its own copy, and
a cross-replica read gives the sum). After N micro-batches the averaged local gradients are
handed to the optimizer, which sums them over replicas exactly as it would sum one big batch.

    accumulator = GradientAccumulator(model.trainable_variables, num_micro_batches=4)  # in scope

    @tf.function
    def train_step(iterator):
        for _ in tf.range(4):
            strategy.run(micro_step, args=(next(iterator),))    # calls accumulator.accumulate
        strategy.run(accumulator.apply_gradients, args=(optimizer,))

Keras' own `gradient_accumulation_steps` is not used: it wraps the update in a `cond` on the
step, which does not mix with the optimizer's cross-replica merge call under MirroredStrategy.
"""
from __future__ import annotations

from typing import Optional, Sequence

import keras
import tensorflow as tf


class GradientAccumulator(tf.Module):
    """Sums gradients of `num_micro_batches` micro-batches, then applies their mean once."""

    def __init__(self, variables: Sequence, num_micro_batches: int, name: str = "gradient_accumulator"):
        super().__init__(name=name)
        if num_micro_batches < 1:
            raise ValueError(f"num_micro_batches: expected >= 1, got {num_micro_batches}")
        self.num_micro_batches = int(num_micro_batches)
        self._model_variables = list(variables)
        self._sums = [
            tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                        synchronization=tf.VariableSynchronization.ON_READ,
                        aggregation=tf.VariableAggregation.SUM,
                        name=f"accumulated_{i}")
            for i, v in enumerate(self._model_variables)
        ]
        self._count = tf.Variable(0, dtype=tf.int64, trainable=False,
                                  synchronization=tf.VariableSynchronization.ON_READ,
                                  aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                                  name="micro_batches")

    @property
    def count(self) -> tf.Variable:
        """Micro-batches accumulated since the last apply (replica-local)."""
        return self._count

    def accumulate(self, gradients: Sequence[Optional[tf.Tensor]]) -> None:
        """Adds one micro-batch's gradients (call in replica context; None = no gradient)."""
        if len(gradients) != len(self._sums):
            raise ValueError(f"expected {len(self._sums)} gradients, got {len(gradients)}")
        for total, grad in zip(self._sums, gradients):
            if grad is not None:
                total.assign_add(tf.cast(tf.convert_to_tensor(grad), total.dtype))
        self._count.assign_add(1)

    def gradients(self) -> list:
        """This replica's accumulated gradients divided by `num_micro_batches`."""
        return [total.read_value() / float(self.num_micro_batches) for total in self._sums]

    def reset(self) -> None:
        """Sets the accumulators to zero (call in replica context)."""
        for total in self._sums:
            total.assign(tf.zeros_like(total))
        self._count.assign(0)

    def apply_gradients(self, optimizer: keras.optimizers.Optimizer) -> None:
        """Applies the mean accumulated gradient with `optimizer` and resets (replica context)."""
        optimizer.apply_gradients(zip(self.gradients(), self._model_variables))
        self.reset()
