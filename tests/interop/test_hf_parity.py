"""Our TF1 exports load in HuggingFace's `load_tf_weights_in_*` with every HF parameter set,
no checkpoint variable left over, and outputs within 1e-5 of ours.

Skipped unless the `interop` extra (torch CPU + transformers with the TF1 loaders) is installed.
"""
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "load_tf_weights_in_bert"):
    pytest.skip("this transformers release has no TF1 checkpoint loaders", allow_module_level=True)

from conftest import randomize  # noqa: E402
from tfcompact.configs import tiny_config  # noqa: E402
from tfcompact.interop.convert import export_tf1  # noqa: E402
from tfcompact.interop.hf_parity import check_hf_parity  # noqa: E402
from tfcompact.models import build_pretraining_model  # noqa: E402

TOLERANCE = 1e-5


def export(tmp_path, arch, sentence_head=None, **overrides):
    config = tiny_config(arch, **overrides)
    model = build_pretraining_model(arch, config, sentence_head=sentence_head)
    randomize(model, seed=3)
    export_tf1(model, arch, config, None, str(tmp_path))
    return config, model, str(tmp_path / "model.ckpt")


@pytest.mark.parametrize("arch", ["bert", "albert"])
def test_bert_albert(tmp_path, arch):
    config, model, prefix = export(tmp_path, arch)
    report = check_hf_parity(arch, config, model, prefix)
    print(report.line())
    assert report.unset_parameters == []
    if arch == "albert":
        # HF's ALBERT loader logs "Skipping" for the unknown `cls` scope of the SOP weights and
        # then loads them anyway (its `continue` is in the inner loop); sentence_logits prove it.
        assert all("sop_classifier" in n for n in report.skipped_variables)
    else:
        assert report.skipped_variables == []
    assert set(report.max_abs_diff) == {"sequence_output", "pooled_output", "mlm_logits", "sentence_logits"}
    assert report.worst <= TOLERANCE, report.line()


def test_electra_both_components(tmp_path):
    config, model, prefix = export(tmp_path, "electra")
    disc = check_hf_parity("electra", config, model, prefix, component="discriminator")
    gen = check_hf_parity("electra", config, model, prefix, component="generator")
    print(disc.line())
    print(gen.line())
    assert disc.unset_parameters == [] and gen.unset_parameters == []
    # each loader skips the other network's variables; together they use every variable
    assert not set(disc.skipped_variables) & set(gen.skipped_variables)
    assert all(n.startswith(("generator", "electra/embeddings")) for n in disc.skipped_variables)
    assert set(disc.max_abs_diff) == {"sequence_output", "rtd_logits"}
    assert set(gen.max_abs_diff) == {"sequence_output", "mlm_logits"}
    assert disc.worst <= TOLERANCE and gen.worst <= TOLERANCE


# (normalization_type "layer_norm" is left out: HF's MobileBERT builds two of its LayerNorms
# with PyTorch's default eps 1e-5 instead of layer_norm_eps, so it differs from the original.)
@pytest.mark.parametrize("overrides", [{}, {"use_bottleneck_attention": True, "num_feedforward_networks": 2,
                                            "key_query_shared_bottleneck": True}],
                         ids=["kq_shared", "bottleneck_attention"])
def test_mobilebert(tmp_path, overrides):
    config, model, prefix = export(tmp_path, "mobilebert", sentence_head="nsp", **overrides)
    # full-length rows: MobileBERT masks padding with -6, HF with the dtype minimum
    report = check_hf_parity("mobilebert", config, model, prefix, padded=False)
    print(report.line())
    assert report.unset_parameters == [] and report.skipped_variables == []
    assert set(report.max_abs_diff) == {"sequence_output", "mlm_logits", "sentence_logits"}
    assert report.worst <= TOLERANCE, report.line()
