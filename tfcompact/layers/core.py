"""Small building blocks shared by every layer: initializer, named Dense, per-replica dropout."""
from __future__ import annotations

import keras
import tensorflow as tf


def truncated_normal(initializer_range: float = 0.02) -> keras.initializers.Initializer:
    """BERT's weight initializer: normal(0, range) truncated at two standard deviations."""
    return keras.initializers.TruncatedNormal(stddev=initializer_range)


@keras.saving.register_keras_serializable(package="tfcompact")
class Dense(keras.layers.Dense):
    """keras.layers.Dense computed as one [tokens, in] x [in, out] matrix product followed by
    tf.nn.bias_add. Keras multiplies a [batch, seq, in] input with tensordot and adds the bias
    with a broadcasting AddV2, a pattern TensorFlow's graph optimiser leaves alone; MatMul +
    BiasAdd on 2-D operands is the pattern it fuses (one oneDNN call on CPUs, one kernel on
    GPUs), saving a pass over every output. Same variables, names and arithmetic."""

    def call(self, inputs, training=None):
        x = tf.convert_to_tensor(inputs)
        kernel = keras.ops.convert_to_tensor(self.kernel)  # cast to the compute dtype
        rank = x.shape.rank
        flat = x if rank == 2 else tf.reshape(x, [-1, x.shape[-1]])
        y = tf.matmul(flat, kernel)
        if self.bias is not None:
            y = tf.nn.bias_add(y, keras.ops.convert_to_tensor(self.bias))
        if self.activation is not None:
            y = self.activation(y)
        if rank == 2:
            return y
        lead = x.shape[:-1]
        shape = lead.as_list() if lead.is_fully_defined() else tf.shape(x)[:-1]
        return tf.reshape(y, tf.concat([shape, [self.units]], 0) if isinstance(shape, tf.Tensor)
                          else shape + [self.units])


def dense(
    units: int,
    name: str,
    initializer_range: float = 0.02,
    activation=None,
    use_bias: bool = True,
) -> Dense:
    """A Dense layer with kernel [in, out] named ``<name>/kernel`` and ``<name>/bias`` (TF1 layout)."""
    return Dense(
        units,
        activation=activation,
        use_bias=use_bias,
        kernel_initializer=truncated_normal(initializer_range),
        bias_initializer="zeros",
        name=name,
    )


def replica_seed(seed_generator: keras.random.SeedGenerator):
    """The generator's next stateless seed (int32 [2]), different on every replica.

    Under tf.distribute every replica reads the same mirrored generator state, so Keras'
    own random ops draw the *same* dropout masks and Gumbel noise on all replicas; adding the
    replica id to the second seed word gives each replica its own stream.
    """
    seed = tf.cast(tf.math.floormod(tf.convert_to_tensor(seed_generator.next()), tf.int32.max - 1), tf.int32)
    context = tf.distribute.get_replica_context()
    replica = context.replica_id_in_sync_group if context is not None else 0
    return seed + tf.stack([0, tf.cast(replica, tf.int32)])


@keras.saving.register_keras_serializable(package="tfcompact")
class Dropout(keras.layers.Layer):
    """Inverted dropout, active only with training=True; independent masks on each replica."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        kwargs.setdefault("name", "dropout")
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed = seed
        if self.rate > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.rate <= 0:
            return x
        if self.rate >= 1.0:
            return tf.zeros_like(x)
        # Full-range 32-bit integers, kept when >= the rate's quantile: no conversion to float,
        # and the scaled mask is the one tensor the backward pass needs (dy * mask).
        bits = tf.random.stateless_uniform(tf.shape(x), seed=replica_seed(self.seed_generator),
                                           minval=None, maxval=None, dtype=tf.int32)
        threshold = min(round(self.rate * 2.0**32) - 2**31, 2**31 - 1)
        mask = tf.where(bits >= threshold, tf.constant(1.0 / (1.0 - self.rate), x.dtype),
                        tf.constant(0.0, x.dtype))
        return x * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def dropout(rate: float, name: str = "dropout") -> Dropout:
    """A Dropout layer; active only when called with training=True."""
    return Dropout(rate, name=name)
