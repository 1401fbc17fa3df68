"""Encoder SavedModels of ALBERT, ELECTRA (discriminator) and MobileBERT equal their Keras
models (<=1e-5) at several batch sizes and sequence lengths (see test_savedmodel.py for BERT,
the CLI, the preprocessing model and ELECTRA's generator)."""
import pytest

from conftest import make_model_dir
from test_savedmodel import check_against_keras
from tfcompact.interop.savedmodel import export_encoder

CASES = {"albert": ("albert", None, {}), "albert_brightmart": ("albert", None, {"layout": "brightmart"}),
         "electra": ("electra", None, {}), "mobilebert": ("mobilebert", "none", {})}


@pytest.mark.parametrize("case", list(CASES))
def test_encoder_equals_keras(case, tmp_path):
    arch, head, overrides = CASES[case]
    d, config, model = make_model_dir(tmp_path, arch, sentence_head=head, **overrides)
    export_encoder(model, arch, config, str(tmp_path / "encoder"))
    check_against_keras(arch, config, model, tmp_path / "encoder")
