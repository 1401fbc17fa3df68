"""Pieces every architecture's model builder shares: inputs, scopes and output dicts."""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import keras
from keras import ops

from tfcompact.layers.embeddings import Embeddings
from tfcompact.layers.heads import FirstToken, MaskedLMHead, Pooler, SentenceHead

BACKBONE_INPUTS = ("input_ids", "input_mask", "segment_ids")


def config_embeddings(config, embedding_size: int, layout: str = "bert", **options) -> Embeddings:
    """The ``embeddings`` layer with the config's vocabulary, type vocabulary, positions,
    initializer and dropout; ``options`` are the layout's own (hidden_size, trigram_input...)."""
    return Embeddings(
        vocab_size=config.vocab_size,
        embedding_size=embedding_size,
        type_vocab_size=config.type_vocab_size,
        max_position_embeddings=config.max_position_embeddings,
        initializer_range=config.initializer_range,
        dropout_rate=config.hidden_dropout_prob,
        layout=layout,
        name="embeddings",
        **options,
    )


def block_options(config) -> dict:
    """The keywords of a transformer block (BERT, ALBERT, MobileBERT) read from the config."""
    return dict(
        hidden_size=config.hidden_size,
        num_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        hidden_act=config.hidden_act,
        hidden_dropout=config.hidden_dropout_prob,
        attention_dropout=config.attention_probs_dropout_prob,
        initializer_range=config.initializer_range,
    )


def run_encoder(x, input_mask, layers) -> tuple[list, list]:
    """Apply the blocks in order; hidden states start with the encoder input."""
    hidden_states, attention_logits = [x], []
    for layer in layers:
        x, logits = layer(x, input_mask=input_mask)
        hidden_states.append(x)
        attention_logits.append(logits)
    return hidden_states, attention_logits


def backbone_inputs() -> dict[str, keras.KerasTensor]:
    """Symbolic int32 [batch, seq] inputs: input_ids, input_mask, segment_ids."""
    return {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in BACKBONE_INPUTS}


def pretraining_inputs() -> dict[str, keras.KerasTensor]:
    """Backbone inputs plus masked_lm_positions int32 [batch, max_predictions]."""
    inputs = backbone_inputs()
    inputs["masked_lm_positions"] = keras.Input(shape=(None,), dtype="int32", name="masked_lm_positions")
    return inputs


@contextlib.contextmanager
def scope(path: str | Sequence[str]) -> Iterator[None]:
    """Nested keras name scopes for a '/'-separated path: variable paths created inside start with it."""
    parts = path.split("/") if isinstance(path, str) else list(path)
    with contextlib.ExitStack() as stack:
        for part in parts:
            if part:
                stack.enter_context(keras.name_scope(part))
        yield


def first_token(sequence_output):
    """The [CLS] vector [B, H]: the pooled output of models without a pooler (ELECTRA, MobileBERT)."""
    return FirstToken(name="first_token")(sequence_output)


def functional_model(inputs: dict, outputs: dict, name: str) -> keras.Model:
    """A functional model over named inputs, callable with any dict holding at least those keys.

    The inputs are given to Keras as a list of named tensors: Keras then picks them out of a
    dict by name and ignores extra keys (e.g. a whole training batch with labels).
    """
    return keras.Model(list(inputs.values()), outputs, name=name)


def backbone_outputs(sequence_output, pooled_output, hidden_states: list, attention_logits: list) -> dict:
    """The backbone output dict of the contract."""
    return {
        "sequence_output": sequence_output,
        "pooled_output": pooled_output,
        "hidden_states": list(hidden_states),
        "attention_logits": list(attention_logits),
    }


def backbone_model(inputs: dict, hidden_states: list, attention_logits: list, config,
                   name: str, pooler: bool = True) -> keras.Model:
    """The backbone model: the last hidden state is the sequence output, pooled by the tanh
    ``pooler`` on [CLS] (created in the current scope) or, with ``pooler=False``, the raw [CLS]."""
    sequence_output = hidden_states[-1]
    if pooler:
        pooled = Pooler(config.hidden_size, config.initializer_range, name="pooler")(sequence_output)
    else:
        pooled = first_token(sequence_output)
    outputs = backbone_outputs(sequence_output, pooled, hidden_states, attention_logits)
    return functional_model(inputs, outputs, name=name)


def model_scope(default: str, name: str | None) -> tuple[str, str]:
    """(model name, variable scope): ``name`` (e.g. "teacher") becomes a prefix of the default scope."""
    if name is None:
        return default, default
    return name, f"{name}/{default}"


def attach_pretraining_heads(
    backbone: keras.Model,
    config,
    *,
    transform_size: int,
    sentence_head: str = "nsp",
    name: str | None = None,
    extra_output_size: int = 0,
) -> keras.Model:
    """Backbone + ``cls/predictions`` (tied MLM) + optional ``cls/seq_relationship`` (NSP/SOP).

    The backbone is nested as a layer named after it; the heads' variables are created under
    ``<name>/cls/...`` (``name`` as given to the backbone builder, e.g. "teacher") or
    """
    prefix = f"{name}/" if name else ""
    vocab_size, initializer_range = config.vocab_size, config.initializer_range
    inputs = pretraining_inputs()
    outputs = dict(backbone({k: inputs[k] for k in BACKBONE_INPUTS}))
    embedding_layer = backbone.get_layer("embeddings")
    with scope(prefix + "cls"):
        head = MaskedLMHead(
            embedding_layer,
            vocab_size,
            transform_size,
            hidden_act=config.hidden_act,
            initializer_range=initializer_range,
            extra_output_size=extra_output_size,
            name="predictions",
        )
        outputs["mlm_logits"] = head(outputs["sequence_output"], inputs["masked_lm_positions"])
        if sentence_head != "none":
            outputs["sentence_logits"] = SentenceHead(2, initializer_range, name="seq_relationship")(
                outputs["pooled_output"]
            )
    return functional_model(inputs, outputs, name=f"{backbone.name}_pretraining")


def gather_indices_mask(positions, seq_len: int):
    """One-hot [B, P, S] of the masked positions, with position 0 ([CLS], also the padding value) dropped."""
    positions = ops.cast(positions, "int32")
    onehot = ops.one_hot(positions, seq_len, dtype="float32")
    valid = ops.cast(ops.greater(positions, 0), "float32")
    return onehot * ops.expand_dims(valid, -1)
