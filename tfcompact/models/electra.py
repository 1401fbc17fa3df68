"""ELECTRA: generator and discriminator sharing one embedding layer, replaced-token detection.

The discriminator backbone lives under ``electra/`` (embeddings at width E, then
``electra/embeddings_project`` E → H if E ≠ H, BERT blocks with erf GELU, no pooler: the pooled
output is [CLS]). The generator is a smaller BERT body under ``generator/`` that reads the same
``electra/embeddings`` layer (same Python object, same variables) through its own
``generator/embeddings_project``. Heads: ``generator_predictions`` (dense(E, act) + LN, tied
output + bias) and ``discriminator_predictions`` (dense(H, act) → ``dense_1`` (1)).
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from tfcompact.configs import ElectraConfig
from tfcompact.layers.core import dense, replica_seed
from tfcompact.layers.embeddings import Embeddings
from tfcompact.layers.heads import DiscriminatorHead, MaskedLMHead
from tfcompact.models.bert import bert_encoder_layers
from tfcompact.models.common import (
    BACKBONE_INPUTS,
    backbone_inputs,
    backbone_model,
    config_embeddings,
    gather_indices_mask,
    model_scope,
    run_encoder,
    scope,
)


def build_electra_backbone(
    config: ElectraConfig,
    name: str | None = None,
    *,
    embeddings: Embeddings | None = None,
    default_scope: str = "electra",
) -> keras.Model:
    """An ELECTRA body: ``embeddings`` (new, or the shared layer) → embeddings_project → blocks.

    With ``embeddings`` given (the generator), the embedding layer is reused as is and only the
    projection and the blocks are created under this model's scope.
    """
    model_name, prefix = model_scope(default_scope, name)
    inputs = backbone_inputs()
    if embeddings is None:
        with scope(prefix):
            # width E (word, type, position, LayerNorm), shared with the generator
            embeddings = config_embeddings(config, config.embedding_size)
            x = embeddings((inputs["input_ids"], inputs["segment_ids"]))
    else:
        x = embeddings((inputs["input_ids"], inputs["segment_ids"]))
    with scope(prefix):
        if config.embedding_size != config.hidden_size:
            x = dense(config.hidden_size, "embeddings_project", config.initializer_range)(x)
        with scope("encoder"):
            hidden_states, attention_logits = run_encoder(
                x, inputs["input_mask"], bert_encoder_layers(config, exact_gelu=True)
            )
        return backbone_model(inputs, hidden_states, attention_logits, config, model_name, pooler=False)


def scatter_positions(ids, positions, updates):
    """ids [B, S] with ids[b, positions[b, p]] = updates[b, p]; position 0 (padding) is never written.

    Dense one-hot form (static shapes, XLA-friendly). A position listed twice keeps the larger
    update, so the result is always one of the given ids.
    """
    seq_len = ops.shape(ids)[1]
    onehot = ops.cast(gather_indices_mask(positions, seq_len), "int32")  # [B, P, S]
    written = ops.max(onehot, axis=1) > 0
    values = ops.max(onehot * ops.expand_dims(ops.cast(updates, "int32"), -1), axis=1)
    return ops.where(written, values, ops.cast(ids, "int32"))


@keras.saving.register_keras_serializable(package="tfcompact")
class ElectraPretrainer(keras.Model):
    """Generator + discriminator with shared embeddings, as in ELECTRA's pretraining.

    Inputs: input_ids (with [MASK]s), input_mask, segment_ids, masked_lm_positions [B, P],
    masked_lm_ids [B, P]. Outputs: ``mlm_logits`` [B, P, V] (generator, at the masked
    positions), ``sampled_ids`` [B, P] (Gumbel-max sample of the generator, under
    stop_gradient), ``corrupted_ids`` [B, S] (original ids with the samples written in),
    ``rtd_labels`` [B, S] (1 where corrupted ≠ original: a sample equal to the original
    token counts as original), ``rtd_logits`` [B, S], plus the discriminator backbone outputs.
    """

    def __init__(self, config: ElectraConfig, seed: int | None = None, **kwargs):
        kwargs.setdefault("name", "electra_pretrainer")
        super().__init__(**kwargs)
        self.electra_config = config
        self.seed = seed
        gen_config = config.generator_config()
        self.discriminator = build_electra_backbone(config)
        self.generator = build_electra_backbone(
            gen_config, embeddings=self.discriminator.get_layer("embeddings"), default_scope="generator"
        )
        self.embeddings = self.discriminator.get_layer("embeddings")
        self.generator_head = MaskedLMHead(
            self.embeddings,
            config.vocab_size,
            config.embedding_size,
            hidden_act=config.hidden_act,
            exact_gelu=True,
            initializer_range=config.initializer_range,
            transform_scope=(),
            name="generator_predictions",
        )
        self.generator_head.build((None, None, gen_config.hidden_size), (None, None))
        self.discriminator_head = DiscriminatorHead(
            config.hidden_size, config.hidden_act, exact_gelu=True,
            initializer_range=config.initializer_range, name="discriminator_predictions",
        )
        self.discriminator_head.build((None, None, config.hidden_size))
        self.seed_generator = keras.random.SeedGenerator(seed, name="sampling_seed")
        self.built = True

    @property
    def backbone(self) -> keras.Model:
        """The discriminator: the model kept for fine-tuning."""
        return self.discriminator

    def sample(self, mlm_logits):
        """Gumbel-max sample of token ids from logits [B, P, V] (no gradient flows through)."""
        logits = ops.stop_gradient(ops.cast(mlm_logits, "float32"))
        uniform = tf.random.stateless_uniform(tf.shape(logits), seed=replica_seed(self.seed_generator))
        gumbel = -ops.log(-ops.log(uniform + 1e-9) + 1e-9)
        return ops.cast(ops.argmax(logits + gumbel, axis=-1), "int32")

    def call(self, inputs, training=None):
        backbone_in = {k: inputs[k] for k in BACKBONE_INPUTS}
        positions = inputs["masked_lm_positions"]
        gen = self.generator(backbone_in, training=training)
        mlm_logits = self.generator_head(gen["sequence_output"], positions)
        sampled = ops.stop_gradient(self.sample(mlm_logits))
        original = scatter_positions(inputs["input_ids"], positions, inputs["masked_lm_ids"])
        corrupted = ops.stop_gradient(scatter_positions(original, positions, sampled))
        rtd_labels = ops.cast(ops.not_equal(corrupted, original), "int32")
        disc = self.discriminator({**backbone_in, "input_ids": corrupted}, training=training)
        rtd_logits = self.discriminator_head(disc["sequence_output"])
        return {
            **disc,
            "mlm_logits": mlm_logits,
            "sampled_ids": sampled,
            "corrupted_ids": corrupted,
            "rtd_labels": rtd_labels,
            "rtd_logits": rtd_logits,
        }

    def get_config(self) -> dict:
        return {"name": self.name, "config": self.electra_config.to_dict(), "seed": self.seed}

    @classmethod
    def from_config(cls, config: dict) -> "ElectraPretrainer":
        return cls(ElectraConfig.from_dict(config["config"], source="<ElectraPretrainer config>"),
                   seed=config.get("seed"), name=config.get("name", "electra_pretrainer"))


def build_electra_pretraining_model(
    config: ElectraConfig, sentence_head: str = "none", name: str | None = None, seed: int | None = None
) -> ElectraPretrainer:
    """The ELECTRA pretrainer (generator + discriminator sharing ``electra/embeddings``); ``seed``
    seeds its Gumbel sampling. ELECTRA has no sentence head and its variables are always under
    ``electra/`` and ``generator/``, so ``sentence_head`` ("none") and ``name`` change nothing."""
    return ElectraPretrainer(config, seed=seed)
