"""Encoder SavedModel following TF Hub's "common SavedModel API for text".

The restored object is callable as `encoder(inputs)` with a dict of int32 [batch, seq]
`input_word_ids`, `input_mask`, `input_type_ids` and returns `sequence_output` [B,S,H],
`pooled_output` [B,H] and `encoder_outputs` (list of L tensors [B,S,H], one per layer). The
`serving_default` signature (TF Serving, C++) returns the same, with `encoder_outputs` stacked
as [L,B,S,H] because signatures cannot return lists (`encoder_outputs[-1]` works either way).
Pretraining exports add `encoder.mlm(inputs)` (inputs + int32 `masked_lm_positions` [B,P]) and
an `mlm` signature returning `mlm_logits` [B,P,V]. Batch and sequence length are dynamic up to
`max_position_embeddings`.
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf

FEATURE_KEYS = ("input_word_ids", "input_mask", "input_type_ids")


def encoder_input_signature() -> dict[str, tf.TensorSpec]:
    return {k: tf.TensorSpec([None, None], tf.int32, name=k) for k in FEATURE_KEYS}


def mlm_input_signature() -> dict[str, tf.TensorSpec]:
    sig = encoder_input_signature()
    sig["masked_lm_positions"] = tf.TensorSpec([None, None], tf.int32, name="masked_lm_positions")
    return sig


EncoderFn = Callable[[dict], dict]


class MlmModule(tf.Module):
    """`encoder.mlm`: encoder outputs plus masked-LM logits at `masked_lm_positions`."""

    def __init__(self, mlm_fn: EncoderFn, max_positions: int):
        super().__init__(name="mlm")
        self._mlm_fn = mlm_fn
        self._max_positions = max_positions

    @tf.function(input_signature=[mlm_input_signature()])
    def __call__(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        _check_length(inputs["input_word_ids"], self._max_positions)
        out = self._mlm_fn(inputs)
        return {"sequence_output": out["sequence_output"], "pooled_output": out["pooled_output"],
                "encoder_outputs": list(out["encoder_outputs"]), "mlm_logits": out["mlm_logits"]}


def _check_length(ids: tf.Tensor, max_positions: int) -> None:
    tf.debugging.assert_less_equal(
        tf.shape(ids)[1], max_positions,
        message=f"sequence length exceeds max_position_embeddings={max_positions}")


class EncoderModule(tf.Module):
    """The object saved as the encoder SavedModel (see module docstring)."""

    def __init__(self, encoder_fn: EncoderFn, *, trackables: list, max_positions: int,
                 vocab_size: int, mlm_fn: EncoderFn | None = None):
        super().__init__(name="encoder")
        self._encoder_fn = encoder_fn
        self._max_positions = max_positions
        # Keep every model (and so every variable) reachable from the saved object.
        self.models = list(trackables)
        self.vocab_size = tf.Variable(vocab_size, trainable=False, dtype=tf.int32, name="vocab_size")
        self.max_seq_length = tf.Variable(max_positions, trainable=False, dtype=tf.int32,
                                          name="max_seq_length")
        if mlm_fn is not None:
            self.mlm = MlmModule(mlm_fn, max_positions)

    @tf.function(input_signature=[encoder_input_signature()])
    def __call__(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        _check_length(inputs["input_word_ids"], self._max_positions)
        out = self._encoder_fn(inputs)
        return {"sequence_output": out["sequence_output"], "pooled_output": out["pooled_output"],
                "encoder_outputs": list(out["encoder_outputs"])}

    @tf.function(input_signature=[encoder_input_signature()])
    def serve(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        out = self.__call__(inputs)
        return {"sequence_output": out["sequence_output"], "pooled_output": out["pooled_output"],
                "encoder_outputs": tf.stack(out["encoder_outputs"], axis=0)}


def _serve_mlm(module: EncoderModule):
    @tf.function(input_signature=[mlm_input_signature()])
    def serve_mlm(inputs):
        out = module.mlm(inputs)
        return {"mlm_logits": out["mlm_logits"], "sequence_output": out["sequence_output"],
                "pooled_output": out["pooled_output"]}
    return serve_mlm


def save_encoder(module: EncoderModule, output_dir: str) -> str:
    """Write `module` with its signatures (`serving_default`, and `mlm` when present)."""
    signatures = {"serving_default": module.serve.get_concrete_function()}
    if hasattr(module, "mlm"):
        module.serve_mlm = _serve_mlm(module)
        signatures["mlm"] = module.serve_mlm.get_concrete_function()
    tf.saved_model.save(module, output_dir, signatures=signatures)
    return output_dir


def find_backbone(model, name: str | None = None):
    """The backbone nested in a pretraining model: the sub-model whose outputs include
    `sequence_output` (by layer name when `name` is given)."""
    import keras

    if name is not None and hasattr(model, name):
        return getattr(model, name)
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model) and isinstance(getattr(layer, "output", None), dict) \
                and "sequence_output" in layer.output:
            if name is None or layer.name == name:
                return layer
    if isinstance(getattr(model, "output", None), dict) and "sequence_output" in model.output:
        return model
    raise ValueError(f"no backbone{' ' + name if name else ''} found in model {model.name}")


def _backbone_call(backbone):
    def encoder_fn(inputs):
        out = backbone({"input_ids": inputs["input_word_ids"], "input_mask": inputs["input_mask"],
                        "segment_ids": inputs["input_type_ids"]}, training=False)
        return {"sequence_output": out["sequence_output"], "pooled_output": out["pooled_output"],
                "encoder_outputs": list(out["hidden_states"][1:])}
    return encoder_fn


def _pretraining_call(model):
    def mlm_fn(inputs):
        out = model({"input_ids": inputs["input_word_ids"], "input_mask": inputs["input_mask"],
                     "segment_ids": inputs["input_type_ids"],
                     "masked_lm_positions": inputs["masked_lm_positions"]}, training=False)
        return {"sequence_output": out["sequence_output"], "pooled_output": out["pooled_output"],
                "encoder_outputs": list(out["hidden_states"][1:]), "mlm_logits": out["mlm_logits"]}
    return mlm_fn


def build_encoder_module(model, arch: str, config, *, component: str = "discriminator") -> EncoderModule:
    """Wrap a pretraining model (or a backbone) of `arch` as an `EncoderModule`.

    ELECTRA: `component="discriminator"` (default) exports the discriminator backbone;
    `"generator"` the generator backbone with its masked-LM head as `mlm`.
    """
    max_positions = config.max_position_embeddings
    if arch == "electra":
        backbone, mlm_fn = _electra_parts(model, component)
    else:
        backbone = find_backbone(model)
        mlm_fn = _pretraining_call(model) if backbone is not model else None
    return EncoderModule(_backbone_call(backbone), trackables=[model], max_positions=max_positions,
                         vocab_size=config.vocab_size, mlm_fn=mlm_fn)


def _electra_parts(model, component: str):
    """(backbone, mlm_fn or None) of an ELECTRA pretrainer for `component`."""
    if component not in ("discriminator", "generator"):
        raise ValueError(f"component: expected discriminator or generator, got {component!r}")
    if not hasattr(model, "generator"):
        # a bare ELECTRA backbone: only the discriminator exists
        if component == "generator":
            raise ValueError("this ELECTRA model has no generator to export")
        return find_backbone(model), None
    if component == "discriminator":
        return model.discriminator, None
    generator, head = model.generator, model.generator_head
    encoder_fn = _backbone_call(generator)

    def mlm_fn(inputs):
        out = encoder_fn(inputs)
        out["mlm_logits"] = head(out["sequence_output"], inputs["masked_lm_positions"])
        return out
    return generator, mlm_fn


def export_encoder(model, arch: str, config, output_dir: str, *, component: str = "discriminator") -> str:
    """Write the encoder SavedModel of a pretraining model to `output_dir`."""
    return save_encoder(build_encoder_module(model, arch, config, component=component), output_dir)
