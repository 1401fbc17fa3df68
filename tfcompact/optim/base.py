"""Shared machinery of the two Adam-family optimizers of the original BERT-style code bases.

BERT's `AdamWeightDecayOptimizer`, ELECTRA's copy of it and ALBERT's / MobileBERT's
`LAMBOptimizer` share one update: Adam moments without bias correction, weight decay added to
the update itself, exclusions chosen by regular expressions on variable names. LAMB multiplies
the update by the trust ratio ||w|| / ||update||. This module implements that update once as a
Keras 3 optimizer; `lamb.py` and `adamw.py` only choose whether the trust ratio is applied.

Distribution: gradients are summed over replicas first and the global-norm clip is applied to
that sum, so a run on R replicas equals a run on one device with the same global batch.
(The TF1 originals clipped each TPU shard's gradient before `CrossShardOptimizer` averaged
them, which made the clip depend on the number of cores; on one core both are the same.)
"""
from __future__ import annotations

import re
from typing import Callable, Mapping, Optional, Sequence, Union

import tensorflow as tf
import keras

#: Patterns (re.search on the full variable path) excluded from weight decay by default.
DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "FakeLayerNorm", "no_norm", "bias")

#: What a learning-rate multiplier may be for one variable: a number, or a function of the
#: optimizer step (an int64 scalar tensor) returning a float32 scalar tensor.
MultiplierValue = Union[float, Callable[[tf.Tensor], tf.Tensor]]
#: `learning_rate_multipliers` argument: {pattern: value} (first pattern found in the variable
#: path wins, others get 1.0) or a function path -> value (None means 1.0).
LearningRateMultipliers = Union[Mapping[str, MultiplierValue], Callable[[str], Optional[MultiplierValue]]]


def variable_path(variable) -> str:
    """Full name of a variable: Keras 3 `path` ("encoder/layer_0/query/kernel"), else tf name."""
    path = getattr(variable, "path", None)
    if path is None:
        path = variable.name
    return re.sub(r":\d+$", "", str(path))


def matches_any(path: str, patterns: Optional[Sequence[str]]) -> bool:
    """True when one of `patterns` is found (re.search) in `path`, as the originals do."""
    return any(re.search(p, path) is not None for p in (patterns or ()))


def resolve_multiplier(path: str, multipliers: Optional[LearningRateMultipliers]) -> MultiplierValue:
    """The learning-rate multiplier of the variable at `path` (1.0 when nothing applies)."""
    if multipliers is None:
        return 1.0
    if isinstance(multipliers, Mapping):
        for pattern, value in multipliers.items():
            if re.search(pattern, path) is not None:
                return value
        return 1.0
    value = multipliers(path)
    return 1.0 if value is None else value


class AdamFamilyOptimizer(keras.optimizers.Optimizer):
    """Adam moments + weight decay inside the update (+ optional LAMB trust ratio).

    Per variable (w, gradient g, step t counted from 1, learning rate lr, multiplier s,
    gate = 1 if s > 0 else 0, as in MobileBERT's layer-wise LAMB):
        m = gate * (beta_1 m + (1 - beta_1) g);  v = gate * (beta_2 v + (1 - beta_2) g^2)
        [bias_correction: m_hat = m / (1 - beta_1^t), v_hat = v / (1 - beta_2^t)]
        u = m_hat / (sqrt(v_hat) + epsilon) + weight_decay_rate * w   (decay unless excluded)
        r = ||w|| / ||u|| if trust ratio is on and not excluded (1 when either norm is 0)
        w = w - s * r * lr * u
    Gradients are clipped to `global_clipnorm` over all variables (after the replica sum).
    With `skip_nonfinite` (default) a step whose global gradient norm is NaN/Inf leaves every
    variable and slot unchanged (the step counter still advances; `gradient_norm` shows it),
    which a trainer's NaN guard can count without a cross-replica `cond`.
    """

    #: Subclasses set these: whether the LAMB trust ratio is applied, and the default name.
    use_trust_ratio: bool = False
    default_name: str = "adam_family"

    def __init__(
        self,
        learning_rate=1e-3,
        weight_decay_rate: float = 0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-6,
        exclude_from_weight_decay: Optional[Sequence[str]] = DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY,
        bias_correction: bool = False,
        global_clipnorm: Optional[float] = 1.0,
        learning_rate_multipliers: Optional[LearningRateMultipliers] = None,
        skip_nonfinite: bool = True,
        name: Optional[str] = None,
        **kwargs,
    ):
        # The Keras base class would clip per replica before the gradient all-reduce and apply
        # its own decoupled weight decay; both are done here instead, so they are turned off.
        for key in ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "use_ema",
                    "gradient_accumulation_steps"):
            if kwargs.get(key):
                raise ValueError(f"{type(self).__name__} does not support the Keras option {key}=")
            kwargs.pop(key, None)
        super().__init__(learning_rate=learning_rate, name=name or self.default_name, **kwargs)
        self.weight_decay_rate = float(weight_decay_rate)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.weight_decay_exclusions = tuple(exclude_from_weight_decay or ())
        self.bias_correction = bool(bias_correction)
        self.clip_global_norm = None if global_clipnorm is None else float(global_clipnorm)
        self.learning_rate_multipliers = learning_rate_multipliers
        self.skip_nonfinite = bool(skip_nonfinite)
        self.layer_adaptation_exclusions: tuple = ()

    # ---- per-variable decisions (made once, from the full variable path) ----
    def use_weight_decay_for(self, path: str) -> bool:
        """Whether the variable at `path` gets weight decay (original `_do_use_weight_decay`)."""
        if not self.weight_decay_rate:
            return False
        return not matches_any(path, self.weight_decay_exclusions)

    def use_layer_adaptation_for(self, path: str) -> bool:
        """Whether the trust ratio applies to the variable at `path` (LAMB only)."""
        return self.use_trust_ratio and not matches_any(path, self.layer_adaptation_exclusions)

    def build(self, var_list):
        """Creates the `adam_m` / `adam_v` slots and records each variable's options."""
        if self.built:
            return
        super().build(var_list)
        self._adam_m = []
        self._adam_v = []
        self._decay_flags = []
        self._adapt_flags = []
        self._multipliers = []
        for var in var_list:
            path = variable_path(var)
            self._adam_m.append(self.add_variable_from_reference(var, name="adam_m"))
            self._adam_v.append(self.add_variable_from_reference(var, name="adam_v"))
            self._decay_flags.append(self.use_weight_decay_for(path))
            self._adapt_flags.append(self.use_layer_adaptation_for(path))
            self._multipliers.append(resolve_multiplier(path, self.learning_rate_multipliers))
        self._gradient_norm = self.add_variable(
            shape=(), dtype="float32", aggregation="only_first_replica", name="gradient_norm")

    @property
    def gradient_norm(self):
        """Global norm of the (replica-summed, unclipped) gradient of the last step."""
        return self._gradient_norm

    # ---- collective part: replica sum, then global clip, then per-variable updates ----
    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # Overrides the TF-backend hook so that clipping sees the replica-summed gradient.
        grads = [tf.convert_to_tensor(g) for g in grads]  # IndexedSlices -> dense, as TF1 did
        replica_context = tf.distribute.get_replica_context()
        if replica_context is not None:
            grads = replica_context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        norm = tf.linalg.global_norm(grads)
        if self.clip_global_norm is not None and self.clip_global_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, self.clip_global_norm, use_norm=norm)
        variables = [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables]
        tf.__internal__.distribute.interim.maybe_merge_call(
            self._update_all, self._distribution_strategy,
            list(zip(grads, variables)), learning_rate, norm)

    def _update_all(self, distribution, grads_and_vars, learning_rate, norm):
        def apply_to(var, grad, lr, global_norm):
            finite = tf.math.is_finite(global_norm) if self.skip_nonfinite else None
            return self._update_variable(grad, var, lr, finite)

        for grad, var in grads_and_vars:
            distribution.extended.update(
                var, apply_to, args=(grad, learning_rate, norm), group=False)
        distribution.extended.update(
            self._gradient_norm.value, lambda v, n: v.assign(n), args=(norm,), group=False)

    def update_step(self, gradient, variable, learning_rate):
        """One variable's update (see the class docstring)."""
        self._update_variable(gradient, variable, learning_rate, None)

    def _update_variable(self, gradient, variable, learning_rate, finite):
        index = self._get_variable_index(variable)
        m, v = self._adam_m[index], self._adam_v[index]
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        grad = tf.cast(gradient, dtype)
        spec = self._multipliers[index]
        if callable(spec):
            multiplier = tf.cast(spec(self.iterations), dtype)
            gate = tf.cast(multiplier > 0.0, dtype)
        else:
            multiplier = tf.constant(float(spec), dtype)
            gate = tf.constant(1.0 if float(spec) > 0.0 else 0.0, dtype)

        next_m = gate * (self.beta_1 * m + (1.0 - self.beta_1) * grad)
        next_v = gate * (self.beta_2 * v + (1.0 - self.beta_2) * tf.square(grad))
        m_hat, v_hat = next_m, next_v
        if self.bias_correction:
            t = tf.cast(self.iterations + 1, dtype)
            m_hat = next_m / (1.0 - tf.pow(tf.constant(self.beta_1, dtype), t))
            v_hat = next_v / (1.0 - tf.pow(tf.constant(self.beta_2, dtype), t))
        update = m_hat / (tf.sqrt(v_hat) + self.epsilon)
        if self._decay_flags[index]:
            update += gate * self.weight_decay_rate * variable
        ratio = tf.constant(1.0, dtype)
        if self._adapt_flags[index]:
            w_norm = tf.norm(variable)
            u_norm = tf.norm(update)
            safe = tf.where(u_norm > 0.0, u_norm, tf.ones_like(u_norm))
            ratio = tf.where(w_norm > 0.0, tf.where(u_norm > 0.0, w_norm / safe, 1.0), 1.0)
        next_w = variable - multiplier * ratio * lr * update
        if finite is not None:
            next_w = tf.where(finite, next_w, variable)
            next_m = tf.where(finite, next_m, m)
            next_v = tf.where(finite, next_v, v)
        self.assign(variable, next_w)
        self.assign(m, next_m)
        self.assign(v, next_v)

    def get_config(self) -> dict:
        """Serialisable options; function-valued multipliers cannot be written (stored as None)."""
        config = super().get_config()
        for key in ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "use_ema",
                    "ema_momentum", "ema_overwrite_frequency", "gradient_accumulation_steps"):
            config.pop(key, None)
        multipliers = self.learning_rate_multipliers
        if isinstance(multipliers, Mapping) and all(
                isinstance(x, (int, float)) for x in multipliers.values()):
            multipliers = {str(k): float(x) for k, x in multipliers.items()}
        else:
            multipliers = None
        config.update({
            "weight_decay_rate": self.weight_decay_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "exclude_from_weight_decay": list(self.weight_decay_exclusions),
            "bias_correction": self.bias_correction,
            "global_clipnorm": self.clip_global_norm,
            "learning_rate_multipliers": multipliers,
            "skip_nonfinite": self.skip_nonfinite,
        })
        return config
