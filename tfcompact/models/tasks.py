"""Task models: a backbone plus the fine-tuning head its original code puts on it.

`build_task_model` wraps the given backbone object (so weights restored into it, taken from
a pretraining model with `get_backbone`, or imported from TF1 come along) and returns a
functional model from ``input_ids``, ``input_mask``, ``segment_ids`` to a dict:

- ``classification``: ``logits`` [B, C] from the pooled output;
- ``tagging``: ``logits`` [B, S, C] from the sequence output;
- ``span``: ``start_logits``, ``end_logits`` [B, S] from the sequence output.

Heads, as each original's fine-tuning code builds them:

- BERT ``run_classifier.py``, ALBERT ``classifier_utils.py``, MobileBERT ``run_classifier.py``:
  dropout 0.1 (``keep_prob=0.9``, whatever the config's hidden_dropout_prob; ALBERT and
  MobileBERT configs say 0.0) over ``pooled_output``, then ``output_weights`` [C, H] and
  ``output_bias`` [C] (truncated normal). MobileBERT's pooled output is already the tanh pooler
  or the raw [CLS] vector as ``classifier_activation`` says (see models/mobilebert.py).
- TinyBERT ``transformer/modeling.py`` (TinyBertForSequenceClassification): the classifier
  reads relu(pooled_output); the dropout it defines is never applied.
- ELECTRA (default, ``electra_head="transformers"``): its own head over the raw [CLS] vector
  (ELECTRA has no pooler): dropout, dense(H), GELU (erf), dropout, dense(C), the layout of
  HuggingFace's ElectraClassificationHead, so fine-tuned ELECTRA models map onto
  ElectraForSequenceClassification. ``electra_head="electra"`` builds the layout of ELECTRA's
  own ``finetune/classification/classification_tasks.py`` instead: dropout 0.1 and one dense
  layer to C (``tf.layers.dense``: Glorot-uniform kernel).
- tagging: dropout 0.1 + projection over ``sequence_output`` (ELECTRA's
  ``tagging_tasks.py``: projection only);
- span: BERT ``run_squad.py``: one projection to 2 over ``sequence_output`` (``cls/squad``
  ``output_weights`` [2, H]), channel 0 the start logits, channel 1 the end logits, no dropout
  (for every architecture: ELECTRA's own QA head predicts the end jointly with the start).

Every dropout draws from its own keras SeedGenerator, which the train loop reseeds each step.
"""
from __future__ import annotations

from typing import Optional

import keras
from keras import ops

from tfcompact.architectures import get_architecture
from tfcompact.errors import ConfigError
from tfcompact.layers.activations import Activation
from tfcompact.layers.core import dense, dropout, truncated_normal
from tfcompact.models.common import BACKBONE_INPUTS, backbone_inputs, functional_model
from tfcompact.tasks import check_kind

TASK_OUTPUTS = {
    "classification": ("logits",),
    "tagging": ("logits",),
    "span": ("start_logits", "end_logits"),
}
# The originals' classifier dropout: keep_prob=0.9 in every TF1 fine-tuning script.
HEAD_DROPOUT = 0.1
ELECTRA_HEADS = ("electra", "transformers")
# Backbone outputs a task model can pass on (task distillation reads them).
BACKBONE_OUTPUTS = ("sequence_output", "pooled_output", "hidden_states", "attention_logits")


@keras.saving.register_keras_serializable(package="tfcompact")
class OutputProjection(keras.layers.Layer):
    """logits = x·Wᵀ + b over the last axis of x [..., H] → [..., C], with ``output_weights``
    [C, H] and ``output_bias`` [C] stored as the TF1 fine-tuning scripts store them."""

    def __init__(self, units: int, initializer_range: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.initializer_range = initializer_range

    def build(self, input_shape):
        self.output_weights = self.add_weight(
            name="output_weights", shape=(self.units, input_shape[-1]),
            initializer=truncated_normal(self.initializer_range))
        self.output_bias = self.add_weight(name="output_bias", shape=(self.units,),
                                           initializer="zeros")

    def call(self, x):
        return ops.matmul(x, ops.transpose(self.output_weights)) + self.output_bias

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units,
                "initializer_range": self.initializer_range}


def default_head_dropout(arch: str, kind: str) -> float:
    """The dropout rate before the head's projection in the original fine-tuning code."""
    if kind == "span":
        return 0.0  # run_squad.py: none
    if arch == "tinybert" and kind == "classification":
        return 0.0  # TinyBERT's classifier reads relu(pooled_output) without its dropout
    if arch == "electra" and kind == "tagging":
        return 0.0  # ELECTRA's tagging_tasks.py: a dense layer straight on the sequence output
    return HEAD_DROPOUT


def _projection(arch: str, units: int, config, name: str) -> keras.layers.Layer:
    if arch == "electra":
        return keras.layers.Dense(units, name=name)  # tf.layers.dense: Glorot-uniform, zero bias
    return OutputProjection(units, config.initializer_range, name=name)


def _maybe_dropout(x, rate: float, name: str):
    return dropout(rate, name=name)(x) if rate > 0 else x


def _classification_logits(arch: str, config, num_labels: int, pooled, rate: float,
                           electra_head: str):
    if arch == "electra" and electra_head == "transformers":
        x = _maybe_dropout(pooled, rate, "classifier_dropout")
        x = dense(config.hidden_size, "classifier_dense", config.initializer_range)(x)
        x = Activation(config.hidden_act, exact_gelu=True, name="classifier_activation")(x)
        x = _maybe_dropout(x, rate, "classifier_dropout_1")
        return dense(num_labels, "classifier", config.initializer_range)(x)
    if arch == "tinybert":
        pooled = Activation("relu", name="classifier_relu")(pooled)
    x = _maybe_dropout(pooled, rate, "classifier_dropout")
    return _projection(arch, num_labels, config, "classifier")(x)


def task_head(arch: str, config, kind: str, num_labels: int, backbone_outputs: dict, *,
              head_dropout: Optional[float] = None, electra_head: str = "transformers") -> dict:
    """The head's outputs (TASK_OUTPUTS[kind]) over a backbone's output dict."""
    rate = default_head_dropout(arch, kind) if head_dropout is None else float(head_dropout)
    if kind == "classification":
        return {"logits": _classification_logits(arch, config, num_labels,
                                                 backbone_outputs["pooled_output"], rate,
                                                 electra_head)}
    sequence = backbone_outputs["sequence_output"]
    if kind == "tagging":
        x = _maybe_dropout(sequence, rate, "classifier_dropout")
        return {"logits": _projection(arch, num_labels, config, "classifier")(x)}
    x = _maybe_dropout(sequence, rate, "span_dropout")
    logits = OutputProjection(2, config.initializer_range, name="span_head")(x)
    return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}


def _check(arch: str, kind: str, num_labels: int, head_dropout, electra_head: str) -> None:
    get_architecture(arch, "task model")
    check_kind(kind)
    if kind != "span" and int(num_labels) < 1:
        raise ConfigError(f"num_labels: a {kind} task model needs at least 1 label, got {num_labels}")
    if electra_head not in ELECTRA_HEADS:
        raise ConfigError(f"electra_head: expected one of {', '.join(ELECTRA_HEADS)}, "
                          f"got {electra_head!r}")
    if head_dropout is not None and not 0.0 <= float(head_dropout) < 1.0:
        raise ConfigError(f"head_dropout: expected a probability in [0, 1), got {head_dropout}")


def build_task_model(
    backbone: keras.Model,
    arch: str,
    config,
    kind: str,
    num_labels: int,
    *,
    name: str = "task_model",
    head_dropout: Optional[float] = None,
    electra_head: str = "transformers",
    backbone_outputs: bool = False,
) -> keras.Model:
    """The task model of `kind` over `backbone` (the same object, weights shared).

    ``head_dropout`` None uses the original code's rate (`default_head_dropout`);
    ``electra_head`` "electra" gives ELECTRA the single dense layer of its original code;
    ``backbone_outputs`` adds the backbone's outputs (BACKBONE_OUTPUTS) to the output dict.
    """
    _check(arch, kind, num_labels, head_dropout, electra_head)
    inputs = backbone_inputs()
    encoded = dict(backbone({k: inputs[k] for k in BACKBONE_INPUTS}))
    outputs = task_head(arch, config, kind, num_labels, encoded, head_dropout=head_dropout,
                        electra_head=electra_head)
    if backbone_outputs:
        outputs.update({k: encoded[k] for k in BACKBONE_OUTPUTS})
    return functional_model(inputs, outputs, name=name)


def task_outputs_view(model: keras.Model, kind: str) -> keras.Model:
    """The task outputs alone of a model built with ``backbone_outputs=True``: the same
    layers and variables (its checkpoints are interchangeable with the full model's), for
    prediction and export while distillation trains the full model."""
    outputs = {k: model.output[k] for k in TASK_OUTPUTS[check_kind(kind)]}
    return keras.Model(model.inputs, outputs, name=model.name)


def task_backbone(model: keras.Model) -> keras.Model:
    """The backbone inside a task model (to export the encoder alone)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            return layer
    raise ConfigError(f"model {model.name!r} holds no backbone")
