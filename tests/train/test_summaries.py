"""What a run reports: TensorBoard scalars (read back from the event files), the progress
line and summary.json."""
import glob
import json
import math
import os

import tensorflow as tf

from tfcompact.train import summaries


def _scalars(event_dir):
    found = {}
    for path in glob.glob(os.path.join(event_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
                assert value.metadata.plugin_data.plugin_name == "scalars"
    return found


def test_chief_writes_train_and_eval_scalars(tmp_path):
    scalars = summaries.Scalars(str(tmp_path), chief=True)
    scalars.write("train", 10, {"loss": 2.5, "mlm_accuracy": 0.125})
    scalars.write("train", 20, {"loss": 2.0})
    scalars.write("eval", 20, {"mlm_accuracy": 0.25})
    train = _scalars(tmp_path / "tensorboard" / "train")
    assert train == {("loss", 10): 2.5, ("mlm_accuracy", 10): 0.125, ("loss", 20): 2.0}
    assert _scalars(tmp_path / "tensorboard" / "eval") == {("mlm_accuracy", 20): 0.25}


def test_other_workers_write_nothing(tmp_path):
    scalars = summaries.Scalars(str(tmp_path), chief=False)
    scalars.write("train", 1, {"loss": 1.0})
    assert not os.path.exists(tmp_path / "tensorboard")


def test_progress_line_and_durations():
    metrics = {"loss": 1.23456, "mlm_accuracy": 0.5, "learning_rate": 1e-4,
               "gradient_norm": 0.75, "examples_per_second": 123.4, "unshown": 9.0}
    line = summaries.progress_line(30, 100, metrics, eta=3725.0)
    assert line == ("step 30/100 | loss 1.2346 | mlm_accuracy 0.5000 | lr 0.0001 | "
                    "grad_norm 0.75 | 123 ex/s | ETA 1h02m05s")
    assert summaries.format_duration(65) == "1m05s"
    assert summaries.format_duration(math.nan) == "?"


def test_summary_json_is_written_whole(tmp_path):
    summaries.write_summary(str(tmp_path), {"status": "completed", "step": 5, "x": 0.5})
    assert json.loads((tmp_path / summaries.SUMMARY_FILE).read_text()) == {
        "status": "completed", "step": 5, "x": 0.5}
    assert os.listdir(tmp_path) == [summaries.SUMMARY_FILE]
