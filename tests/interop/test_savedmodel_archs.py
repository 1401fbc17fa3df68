"""Encoder SavedModels of ALBERT, ELECTRA (discriminator) and MobileBERT equal their Keras
models (<=1e-5) at several batch sizes and sequence lengths, and ELECTRA's generator component
(see test_savedmodel.py for BERT, the CLI and the preprocessing model)."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import make_model_dir
from sm_helpers import check_against_keras, features, keras_outputs
from tfcompact.interop.savedmodel import export_encoder

CASES = {"albert": ("albert", None, {}), "albert_brightmart": ("albert", None, {"layout": "brightmart"}),
         "electra": ("electra", None, {}), "mobilebert": ("mobilebert", "none", {})}


@pytest.mark.parametrize("case", list(CASES))
def test_encoder_equals_keras(case, tmp_path):
    arch, head, overrides = CASES[case]
    d, config, model = make_model_dir(tmp_path, arch, sentence_head=head, **overrides)
    export_encoder(model, arch, config, str(tmp_path / "encoder"))
    check_against_keras(arch, config, model, tmp_path / "encoder")


def test_electra_generator_component(tmp_path):
    d, config, model = make_model_dir(tmp_path, "electra")
    out = tmp_path / "gen"
    export_encoder(model, "electra", config, str(out), component="generator")
    enc = tf.saved_model.load(str(out))
    ids, mask, types, positions = features(2, 12, config.vocab_size, 5)
    ref = keras_outputs(model, "electra", ids, mask, types, positions, component="generator")
    got = enc.mlm({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types,
                   "masked_lm_positions": positions})
    gen_hidden = config.generator_config().hidden_size
    assert got["sequence_output"].shape == (2, 12, gen_hidden)
    np.testing.assert_allclose(got["sequence_output"], ref["sequence_output"], atol=1e-5)
    np.testing.assert_allclose(got["mlm_logits"], ref["mlm_logits"], atol=1e-5)
