"""`tfcompact export --format tflite` and `tfcompact check-tflite` on one tiny model: fp32
within 1e-4 of the SavedModel, quantized exports reported by cosine and argmax agreement."""
import os

import numpy as np
import pytest

from conftest import make_model_dir
from tfcompact.interop.output_dir import MARKER
from tfcompact.interop.tflite import check_tflite, convert_savedmodel_to_tflite, load_tflite_runner


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tfcompact.cli import main

    root = tmp_path_factory.mktemp("tflite")
    d, config, model = make_model_dir(root, "mobilebert", sentence_head="none")
    out = root / "lite"
    assert main(["export", "--model_dir", d, "--format", "tflite", "--output", str(out),
                 "--seq_length", "24", "--num_predictions", "4"]) == 0
    return root, d, config, model, out


def test_fp32_matches_savedmodel(exported, cli):
    root, d, config, model, out = exported
    assert sorted(os.listdir(out)) == [MARKER, "encoder", "model.tflite"]
    _, runner = load_tflite_runner(str(out / "model.tflite"))
    shapes = {k: tuple(v["shape"]) for k, v in runner.get_input_details().items()}
    assert shapes == {"input_word_ids": (1, 24), "input_mask": (1, 24), "input_type_ids": (1, 24),
                      "masked_lm_positions": (1, 4)}
    # the TFLite model against the Keras model directly, on a hand-made input
    ids = np.array([[2] + list(range(5, 25)) + [3, 0, 0]], np.int32)
    mask = (ids > 0).astype(np.int32)
    types = np.zeros_like(ids)
    pos = np.array([[1, 4, 9, 20]], np.int32)
    lite = runner(input_word_ids=ids, input_mask=mask, input_type_ids=types, masked_lm_positions=pos)
    ref = model({"input_ids": ids, "input_mask": mask, "segment_ids": types, "masked_lm_positions": pos})
    np.testing.assert_allclose(lite["sequence_output"], ref["sequence_output"], atol=1e-4)
    np.testing.assert_allclose(lite["mlm_logits"], ref["mlm_logits"], atol=1e-4)

    code, stdout, err = cli("check-tflite", "--tflite", out / "model.tflite", "--savedmodel",
                            out / "encoder", "--max_abs_diff", "1e-4", "--num_batches", "2",
                            "--num_threads", "1", "--benchmark", "2")
    assert code == 0, stdout + err
    assert "max |tflite - savedmodel| sequence_output" in stdout
    assert "mlm argmax agreement: 1.0000" in stdout
    assert "median latency tflite" in stdout


def test_quantized(exported):
    root, d, config, model, out = exported
    for mode in ("dynamic",):  # fp16 takes the same path with fp16 weights; one conversion is enough here
        path = str(root / f"{mode}.tflite")
        convert_savedmodel_to_tflite(str(out / "encoder"), path, seq_length=16, quantize=mode,
                                     num_predictions=4)
        result = check_tflite(path, str(out / "encoder"), num_batches=2)
        assert result.mean_cosine["sequence_output"] > 0.99, (mode, result.lines())
        assert result.argmax_agreement is not None and result.argmax_agreement >= 0.75, result.lines()
        assert 0 < result.max_abs_diff["sequence_output"] < 0.5
    assert os.path.getsize(root / "dynamic.tflite") < os.path.getsize(out / "model.tflite")


def test_bad_input(exported, cli):
    root, d, config, model, out = exported
    code, _, err = cli("check-tflite", "--tflite", root / "missing.tflite", "--savedmodel", out / "encoder")
    assert code == 1 and "missing.tflite" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("export", "--model_dir", d, "--format", "tflite", "--quantize", "int4",
                       "--output", root / "bad")
    assert code == 1 and "--quantize int4" in err and not os.path.exists(root / "bad")
    code, _, err = cli("export", "--model_dir", d, "--format", "tflite", "--seq_length", "65",
                       "--output", root / "bad2")
    assert code == 1 and "--seq_length 65" in err and not os.path.exists(root / "bad2")
