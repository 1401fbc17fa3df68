"""Bad inputs to `tfcompact pretrain`, `submit` and `doctor`'s neighbours: hyperparameters that
would train a NaN model, batches that cannot fit, damaged checkpoints, a changed model on
resume, unwritable model directories, names that would reach gcloud."""
from __future__ import annotations

import functools
import shutil
import tempfile

import yaml

from bad_inputs.common import Case, Path, data_dir, tfcompact


def _experiment(tmp: Path, data: Path, model: Path, **train) -> Path:
    raw = {
        "name": "bad_input_case",
        "model": {"preset": "albert_tiny_zh",
                  "overrides": {"vocab_size": "data", "num_hidden_layers": 2, "hidden_size": 32,
                                "num_attention_heads": 2, "intermediate_size": 64,
                                "embedding_size": 16, "max_position_embeddings": 64}},
        "data": {"train": str(data), "max_seq_length": 32, "max_predictions_per_seq": 5},
        "optimizer": {"name": "lamb", "learning_rate": 0.01},
        "train": {"model_dir": str(model), "batch_size": 8, "total_steps": 4,
                  "steps_per_loop": 2, "checkpoint_every": 2, **train},
    }
    path = tmp / "exp.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def _fresh(*sets: str):
    """A case: the experiment on fresh data with `--set` overrides."""
    def argv(tmp: Path) -> list[str]:
        path = _experiment(tmp, data_dir(tmp), tmp / "model")
        out = ["pretrain", "--config", str(path)]
        for s in sets:
            out += ["--set", s]
        return out
    return argv


@functools.lru_cache(maxsize=1)
def _trained() -> Path:
    """One real 4-step run (checkpoints at steps 2 and 4), made once per catalogue run."""
    root = Path(tempfile.mkdtemp(prefix="tfcompact-bad-trained-"))
    data = data_dir(root)
    tfcompact("pretrain", "--config", str(_experiment(root, data, root / "model")))
    return root


def _trained_copy(damage=None, *sets: str):
    def argv(tmp: Path) -> list[str]:
        src = _trained()
        shutil.copytree(src / "data", tmp / "data")
        shutil.copytree(src / "model", tmp / "model")
        (tmp / "model" / "summary.json").unlink()
        if damage:
            damage(tmp / "model" / "checkpoints")
        path = _experiment(tmp, tmp / "data", tmp / "model")
        out = ["pretrain", "--config", str(path)]
        for s in sets:
            out += ["--set", s]
        return out
    return argv


def _truncate_every_data_file(ckpt: Path) -> None:
    for p in ckpt.iterdir():
        if ".data-" in p.name:
            p.write_bytes(p.read_bytes()[:10])


def _delete_every_index(ckpt: Path) -> None:
    for p in ckpt.iterdir():
        if p.name.endswith(".index"):
            p.unlink()


def _model_dir_is_a_file(tmp: Path) -> list[str]:
    (tmp / "model").write_text("a file, not a directory")
    return ["pretrain", "--config", str(_experiment(tmp, data_dir(tmp), tmp / "model"))]


def _model_dir_under_a_file(tmp: Path) -> list[str]:
    (tmp / "blocker").write_text("a file")
    return ["pretrain", "--config",
            str(_experiment(tmp, data_dir(tmp), tmp / "blocker" / "model"))]


def _no_manifest(tmp: Path) -> list[str]:
    (tmp / "empty").mkdir()
    return ["pretrain", "--config", str(_experiment(tmp, tmp / "empty", tmp / "model"))]


def _yaml_text(text: str):
    def argv(tmp: Path) -> list[str]:
        (tmp / "exp.yaml").write_text(text, encoding="utf-8")
        return ["pretrain", "--config", str(tmp / "exp.yaml")]
    return argv


def _submit(*extra: str, name: str = "job"):
    def argv(tmp: Path) -> list[str]:
        raw = {"name": name, "model": {"preset": "albert_base_zh"},
               "data": {"train": "gs://bucket/data", "max_seq_length": 512},
               "train": {"model_dir": "gs://bucket/model", "batch_size": 1024}}
        (tmp / "job.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
        return ["submit", "--config", str(tmp / "job.yaml"), "--dry_run",
                "--staging_dir", str(tmp / "stage"), *extra]
    return argv


_TPU = ("--tpu_name", "my-tpu", "--zone", "europe-west4-a", "--project", "my-project")

CASES = [
    Case("pretrain: learning_rate nan", _fresh("optimizer.learning_rate=nan"),
         "'optimizer.learning_rate' must be a finite number"),
    Case("pretrain: learning_rate .inf", _fresh("optimizer.learning_rate=.inf"),
         "'optimizer.learning_rate' must be a finite number"),
    Case("pretrain: learning_rate 0", _fresh("optimizer.learning_rate=0"),
         "'optimizer.learning_rate' must be positive"),
    Case("pretrain: beta_2 1.5", _fresh("optimizer.beta_2=1.5"), "'optimizer.beta_2' must be"),
    Case("pretrain: epsilon 0", _fresh("optimizer.epsilon=0"), "'optimizer.epsilon' must be"),
    Case("pretrain: clip_norm -1", _fresh("optimizer.clip_norm=-1"),
         "'optimizer.clip_norm' must be"),
    Case("pretrain: weight_decay_rate -0.1", _fresh("optimizer.weight_decay_rate=-0.1"),
         "'optimizer.weight_decay_rate' must be"),
    Case("pretrain: end_learning_rate above learning_rate",
         _fresh("optimizer.end_learning_rate=1"), "'optimizer.end_learning_rate' must be"),
    Case("pretrain: dropout nan in model overrides",
         _fresh("model.overrides.hidden_dropout_prob=.nan"), "hidden_dropout_prob"),
    Case("pretrain: initializer_range inf", _fresh("model.overrides.initializer_range=.inf"),
         "initializer_range"),
    Case("pretrain: batch_size -8", _fresh("train.batch_size=-8"),
         "'train.batch_size' must be positive"),
    Case("pretrain: total_steps 1e30", _fresh("train.total_steps=1e30"), "train.total_steps"),
    Case("pretrain: batch that cannot fit in memory", _fresh("train.batch_size=2000000"),
         "cannot fit: about"),
    Case("pretrain: gradient accumulation not dividing the batch",
         _fresh("train.gradient_accumulation_steps=3"), "gradient_accumulation_steps"),
    Case("pretrain: unknown key", _fresh("train.learning_rate=0.1"), "unknown key"),
    Case("pretrain: --set without '='", _fresh("train.batch_size"), "train.batch_size"),
    Case("pretrain: precision float16", _fresh("train.precision=float16"),
         "'train.precision' must be one of"),
    Case("pretrain: invalid YAML", _yaml_text("model: [unclosed\n"), "invalid YAML"),
    Case("pretrain: top level is a list", _yaml_text("- a\n- b\n"), "top level"),
    Case("pretrain: config file missing", lambda tmp: ["pretrain", "--config",
                                                        str(tmp / "nothing.yaml")],
         "nothing.yaml"),
    Case("pretrain: data dir without manifest", _no_manifest, "no manifest.json"),
    Case("pretrain: model_dir is a file", _model_dir_is_a_file, "cannot write there"),
    Case("pretrain: model_dir under a file", _model_dir_under_a_file, "cannot write there"),
    Case("pretrain: --tpu local without a TPU",
         lambda tmp: _fresh()(tmp) + ["--tpu", "local"], "no TPU on this machine"),
    Case("pretrain: init_checkpoint that does not exist",
         _fresh("train.init_checkpoint=/no/such/model"), "init_checkpoint /no/such/model"),
    Case("pretrain: every checkpoint truncated", _trained_copy(_truncate_every_data_file),
         "none intact"),
    Case("pretrain: every checkpoint index deleted", _trained_copy(_delete_every_index),
         "none intact"),
    Case("pretrain: resume with a changed model (layers 2 -> 3)",
         _trained_copy(None, "model.overrides.num_hidden_layers=3", "train.total_steps=6"),
         "num_hidden_layers 2 -> 3"),
    Case("pretrain: resume with another architecture",
         _trained_copy(None, "model.preset=bert_base_zh",
                       "model.overrides={vocab_size: data, num_hidden_layers: 2, "
                       "hidden_size: 32, num_attention_heads: 2, intermediate_size: 64, "
                       "max_position_embeddings: 64}"),
         "are of architecture albert, this run trains bert"),
    Case("submit: --tpu_name that is a gcloud flag",
         _submit("--tpu_name=--impersonate-service-account=x", "--zone", "europe-west4-a",
                 "--project", "my-project"), "--tpu_name"),
    Case("submit: zone that is a flag", _submit("--tpu_name", "t", "--zone=--verbosity=debug",
                                                "--project", "my-project"), "--zone"),
    Case("submit: project with a shell metacharacter",
         _submit("--tpu_name", "t", "--zone", "europe-west4-a", "--project", "p;rm -rf ~"),
         "--project"),
    Case("submit: experiment name escaping the staging directory",
         _submit(*_TPU, name="../../etc/evil"), "name '../../etc/evil'"),
    Case("submit: unknown accelerator type",
         _submit(*_TPU, "--accelerator_type", "v9-8"), "accelerator type 'v9-8'"),
    Case("submit: batch not divisible by the replicas",
         _submit(*_TPU, "--accelerator_type", "v3-256", "--set", "train.batch_size=1000"),
         "divisible by the 256 replicas"),
    Case("submit: local data path on a TPU",
         _submit(*_TPU, "--set", "data.train=/home/me/data"), "must be gs://"),
]
