"""Bad inputs for `tfcompact export`, `import-tf1`, `import-hf` and `check-tflite`.

Every case starts from real files made once per process by the real commands (`base()`): a
model directory from `create-data` + 2 steps of `pretrain` (tiny ALBERT, the data's vocab
copied in), and its TF1, SavedModel, TFLite and HuggingFace exports and a re-import of the TF1 export.
A case copies what it needs into its own directory, damages it, and returns the argv.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile

from bad_inputs.common import Case, Path, data_dir, tfcompact

# A location nobody may write: a read-only directory for a normal user; root writes anywhere
# the permission bits forbid, but not into sysfs.
READ_ONLY_OUTPUT = "/sys/tfcompact-out" if os.geteuid() == 0 else "ro/out"

_BASE: dict[str, Path] = {}

# tiny ALBERT: 2 layers, hidden 32, E 16, max 32 positions; 2 steps of batch 4
PRETRAIN_SETTINGS = (
    "data.eval=null", "train.eval_steps=0", "train.eval_every=0", "data.max_seq_length=32",
    "data.max_predictions_per_seq=5", "train.batch_size=4", "train.total_steps=2",
    "train.steps_per_loop=1", "train.checkpoint_every=2", "optimizer.warmup_steps=1",
    "model.overrides.hidden_size=32", "model.overrides.intermediate_size=64",
    "model.overrides.embedding_size=16", "model.overrides.max_position_embeddings=32")


def base() -> Path:
    """The shared starting point (built on first use, removed at exit): model/, tf1/, sm/,
    lite/, imported/, hf/ under one temporary directory."""
    if "root" not in _BASE:
        root = Path(tempfile.mkdtemp(prefix="tfcompact-bad-export-base-"))
        atexit.register(shutil.rmtree, root, True)
        data = data_dir(root)
        sets = [a for s in PRETRAIN_SETTINGS + (f"data.train={data}",) for a in ("--set", s)]
        tfcompact("pretrain", "--config", "cpu_smoke", "--model_dir", str(root / "model"), *sets, cwd=root)
        if not (root / "model" / "vocab.txt").exists():
            shutil.copyfile(root / "vocab.txt", root / "model" / "vocab.txt")
        model = str(root / "model")
        tfcompact("export", "--model_dir", model, "--format", "tf1", "--output", str(root / "tf1"))
        tfcompact("export", "--model_dir", model, "--format", "savedmodel", "--output", str(root / "sm"),
                  "--seq_length", "16")
        tfcompact("export", "--model_dir", model, "--format", "tflite", "--output", str(root / "lite"),
                  "--seq_length", "16", "--num_predictions", "4")
        tfcompact("import-tf1", "--arch", "albert", "--checkpoint", str(root / "tf1" / "model.ckpt"),
                  "--config", str(root / "tf1" / "albert_config.json"), "--output", str(root / "imported"))
        tfcompact("export", "--model_dir", model, "--format", "huggingface", "--output", str(root / "hf"))
        _BASE["root"] = root
    return _BASE["root"]


def copy(tmp: Path, what: str, name: str | None = None) -> Path:
    """A fresh copy of base()/what as tmp/name (symlinks copied as links)."""
    dst = tmp / (name or what)
    shutil.copytree(base() / what, dst, symlinks=True)
    return dst


def export(*args: str, fmt: str = "tf1", model: str = "model", output: str = "out") -> list[str]:
    return ["export", "--model_dir", model, "--format", fmt, "--output", output, *args]


def import_tf1(*args: str, release: str = "release", output: str = "imported",
               config: str | None = None) -> list[str]:
    return ["import-tf1", "--arch", "albert", "--checkpoint", f"{release}/model.ckpt",
            "--config", config or f"{release}/albert_config.json", "--output", output, *args]


def electra_release(tmp: Path, hparams: dict | None = None, name: str = "electra") -> Path:
    """tmp/name laid out as a Chinese-ELECTRA release (electra_model.*, checkpoint, vocab.txt;
    no config JSON) of a tiny ELECTRA written from numpy by TF1 name, and tmp/hparams.json
    describing it as ELECTRA's scripts take it (`hparams` replaces that description)."""
    import numpy as np

    from tfcompact.configs import tiny_config
    from tfcompact.interop.tf1_checkpoint import write_tf1_checkpoint
    from tfcompact.interop.tf1_names import tf1_variable_shapes

    config = tiny_config("electra")
    release = tmp / name
    release.mkdir()
    rng = np.random.default_rng(0)
    write_tf1_checkpoint(str(release), {n: (0.02 * rng.standard_normal(s)).astype(np.float32)
                                        for n, s in tf1_variable_shapes("electra", config).items()},
                         basename="electra_model")
    (release / "vocab.txt").write_text("".join(f"[unused{i}]\n" for i in range(config.vocab_size)),
                                       encoding="utf-8")
    overrides = {k: getattr(config, k) for k in ("hidden_size", "num_hidden_layers",
                                                 "num_attention_heads", "intermediate_size",
                                                 "max_position_embeddings")}
    described = {"model_size": "base", "vocab_size": config.vocab_size,
                 "embedding_size": config.embedding_size, "model_hparam_overrides": overrides}
    (tmp / "hparams.json").write_text(json.dumps(described if hparams is None else hparams, indent=2),
                                      encoding="utf-8")
    return release


def _electra_hparams(change=None):
    """Set-up: an ELECTRA release whose hparams.json is changed by `change(dict)`."""
    def setup(tmp: Path) -> None:
        electra_release(tmp)
        if change is not None:
            edit_json(tmp / "hparams.json", change)
    return setup


def import_electra(*args: str, config: str = "hparams.json") -> list[str]:
    return ["import-tf1", "--arch", "electra", "--checkpoint", "electra", "--config", config,
            "--output", "imported", *args]


def import_preset(preset: str, *args: str, arch: str = "albert") -> list[str]:
    return ["import-tf1", "--arch", arch, "--checkpoint", "release/model.ckpt", "--preset", preset,
            "--output", "imported", *args]


def _big_vocab(tmp: Path) -> None:
    """tmp/zh_vocab.txt: as many lines as the Chinese presets' vocabulary (21128)."""
    (tmp / "zh_vocab.txt").write_text("".join(f"[unused{i}]\n" for i in range(21128)), encoding="utf-8")


def checkpoint_file(model: Path, suffix: str) -> Path:
    """The latest training checkpoint's file ending in `suffix` (".index", ".data-...")."""
    found = sorted(p for p in (model / "checkpoints").iterdir() if p.name.endswith(suffix))
    return found[-1]


def truncate(path: Path, keep: float = 0.5) -> None:
    with open(path, "r+b") as f:
        f.truncate(int(os.path.getsize(path) * keep))


def garble_head(path: Path, count: int = 16) -> None:
    """Overwrite the first `count` bytes with 0xFF: a protobuf whose first field tag is a varint
    that never ends, so it cannot parse (one flipped byte inside a message may land in a
    constant's value and leave a loadable file)."""
    with open(path, "r+b") as f:
        f.write(b"\xff" * count)


def flip_byte(path: Path, at: float = 0.5) -> None:
    """Invert one byte in the middle of a file (same size, different content)."""
    with open(path, "r+b") as f:
        f.seek(int(os.path.getsize(path) * at))
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0xFF]))


def edit_json(path: Path, change) -> None:
    d = json.loads(path.read_text(encoding="utf-8"))
    change(d)
    path.write_text(json.dumps(d, indent=2), encoding="utf-8")


def drop_vocab_lines(path: Path, n: int = 100) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-n]), encoding="utf-8")


def rewrite_tf1(release: Path, change) -> None:
    """Rewrite release/model.ckpt after `change(dict name -> array)`."""
    from tfcompact.interop.tf1_checkpoint import read_tf1_variables, write_tf1_checkpoint

    prefix = str(release / "model.ckpt")
    tensors = read_tf1_variables(prefix)
    change(tensors)
    for p in release.iterdir():
        if p.name.startswith("model.ckpt."):
            p.unlink()
    write_tf1_checkpoint(str(release), tensors)


def _case(name: str, expect: str, *, setup=None, argv) -> Case:
    """A case whose set-up copies/damages files with `setup(tmp)` and then runs `argv`."""
    def make(tmp: Path) -> list[str]:
        if setup is not None:
            setup(tmp)
        return list(argv)
    return Case(name=name, argv=make, expect=expect)


def _model(tmp: Path, damage=None) -> None:
    m = copy(tmp, "model")
    if damage is not None:
        damage(m)


def _release(tmp: Path, damage=None) -> None:
    r = copy(tmp, "tf1", "release")
    if damage is not None:
        damage(r)


def _with(*steps):
    def setup(tmp: Path) -> None:
        for s in steps:
            s(tmp)
    return setup


def _read_only(tmp: Path) -> None:
    if not READ_ONLY_OUTPUT.startswith("/"):
        ro = tmp / "ro"
        ro.mkdir()
        ro.chmod(0o555)


def _symlink(name: str, target: str):
    return lambda tmp: os.symlink(target, tmp / name)


def _file(name: str, text: str = "mine\n"):
    return lambda tmp: (tmp / name).parent.mkdir(parents=True, exist_ok=True) or \
        (tmp / name).write_text(text, encoding="utf-8")


def _bytes(path: str, data: bytes):
    return lambda tmp: (tmp / path).write_bytes(data)


def _rm(path: str):
    return lambda tmp: (shutil.rmtree if (tmp / path).is_dir() else os.remove)(tmp / path)


def _bert_config(d: dict) -> None:
    """tfcompact.json of a BERT with the ALBERT model's sizes (an ALBERT checkpoint inside)."""
    c = d["config"]
    d["arch"] = "bert"
    d["sentence_head"] = "nsp"
    d["config"] = {k: c[k] for k in ("vocab_size", "hidden_size", "num_hidden_layers",
                                     "num_attention_heads", "intermediate_size",
                                     "max_position_embeddings")}


def import_hf(*args: str, hf: str = "hf", output: str = "imported") -> list[str]:
    return ["import-hf", "--model_dir", hf, "--output", output, *args]


def _hf(tmp: Path) -> None:
    copy(tmp, "hf")


def _hf_config(**fields):
    def edit(tmp: Path) -> None:
        path = tmp / "hf" / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), **fields}), encoding="utf-8")
    return edit


def _hf_weights(change):
    def edit(tmp: Path) -> None:
        from safetensors.numpy import load_file, save_file

        path = str(tmp / "hf" / "model.safetensors")
        weights = load_file(path)
        change(weights)
        save_file(weights, path, metadata={"format": "pt"})
    return edit


def _set_config(**fields):
    return lambda d: d["config"].update(fields)


CASES = [
    # --- (1) an output may never be, contain or sit inside an input -------------------------
    _case("export: --output is the model dir, --overwrite", "--model_dir",
          setup=_model, argv=export("--overwrite", output="model")),
    _case("export: --output is the model dir's parent (.), --overwrite", "--model_dir",
          setup=_with(_model, _file("notes.txt")), argv=export("--overwrite", output=".")),
    _case("export: --output is model/checkpoints, --overwrite", "--model_dir",
          setup=_model, argv=export("--overwrite", output="model/checkpoints")),
    _case("export: --output inside the model dir", "--model_dir",
          setup=_model, argv=export(output="model/export")),
    _case("export: --output a symlink to the model dir, --overwrite", "--model_dir",
          setup=_with(_model, _symlink("link", "model")), argv=export("--overwrite", output="link")),
    _case("export: --output model/../model (same dir spelled differently)", "--model_dir",
          setup=_model, argv=export("--overwrite", output="model/../model")),
    _case("export: --output '' (an unset variable), --overwrite", "--output",
          setup=_model, argv=export("--overwrite", output="")),
    _case("export: --overwrite a directory export did not write", "no .tfcompact-output.json",
          setup=_with(_model, _file("photos/holiday.jpg")), argv=export("--overwrite", output="photos")),
    _case("export: --overwrite a savedmodel export with --format tf1", "export --format savedmodel",
          setup=_with(_model, lambda t: copy(t, "sm", "out")), argv=export("--overwrite")),
    _case("export: --overwrite an earlier export the user added a file to", "notes.txt",
          setup=_with(_model, lambda t: copy(t, "tf1", "out"), _file("out/notes.txt")),
          argv=export("--overwrite")),
    _case("export: --output an earlier export, no --overwrite", "--overwrite",
          setup=_with(_model, lambda t: copy(t, "tf1", "out")), argv=export()),
    _case("export: --overwrite a model directory made by import-tf1", "import-tf1",
          setup=_with(_model, lambda t: copy(t, "imported", "out")), argv=export("--overwrite")),
    _case("import-tf1: --output is the checkpoint's directory, --overwrite", "--checkpoint",
          setup=_release, argv=import_tf1("--overwrite", output="release")),
    _case("import-tf1: --output is the release's parent (.), --overwrite", "--checkpoint",
          setup=_release, argv=import_tf1("--overwrite", output=".")),
    _case("import-tf1: --overwrite a trained model directory", "no .tfcompact-output.json",
          setup=_with(_release, _model), argv=import_tf1("--overwrite", output="model")),
    _case("import-tf1: --overwrite the import whose vocab.txt is --vocab", "--vocab",
          setup=_with(_release, lambda t: copy(t, "imported")),
          argv=import_tf1("--overwrite", "--vocab", "imported/vocab.txt")),
    _case("import-tf1: --overwrite an import that training continued in", "ckpt-",
          setup=_with(_release, lambda t: copy(t, "imported"),
                      lambda t: shutil.copyfile(checkpoint_file(base() / "model", ".index"),
                                                t / "imported" / "checkpoints" / "ckpt-7.index")),
          argv=import_tf1("--overwrite")),

    # --- output locations ---------------------------------------------------------------------
    _case("export: --output is an existing file", "is a file",
          setup=_with(_model, _file("out")), argv=export()),
    _case("export: --output below a file (notes.txt/out)", "notes.txt",
          setup=_with(_model, _file("notes.txt")), argv=export(output="notes.txt/out")),
    _case("export: --output on a read-only location", READ_ONLY_OUTPUT,
          setup=_with(_model, _read_only), argv=export(output=READ_ONLY_OUTPUT)),
    _case("export: --output=~/exports (a ~ the shell left alone)", "--output ~/exports",
          setup=_model, argv=export(output="~/exports")),
    _case("export: --output gs://", "gs://",
          setup=_model, argv=export(output="gs://bucket/export")),
    _case("import-tf1: --output is an existing file", "is a file",
          setup=_with(_release, _file("imported")), argv=import_tf1()),
    _case("import-tf1: --output gs://", "gs://",
          setup=_release, argv=import_tf1(output="gs://bucket/m")),
    _case("export: damaged model, --output in new parents (none left behind)", "tfcompact.json",
          setup=lambda t: _model(t, _rm("tfcompact.json")), argv=export(output="new/deeper/out")),

    # --- damaged model directories ------------------------------------------------------------
    _case("export: --model_dir does not exist", "nope",
          argv=export(model="nope")),
    _case("export: --model_dir is a file", "notes.txt",
          setup=_file("notes.txt"), argv=export(model="notes.txt")),
    _case("export: --model_dir is its checkpoints/ folder", "--model_dir model",
          setup=_model, argv=export(model="model/checkpoints")),
    _case("export: --model_dir is a TF1 export", "import-tf1",
          setup=_release, argv=export(model="release")),
    _case("export: tfcompact.json missing", "model/tfcompact.json",
          setup=lambda t: _model(t, _rm("tfcompact.json")), argv=export()),
    _case("export: tfcompact.json not JSON", "model/tfcompact.json:1",
          setup=lambda t: _model(t, lambda m: (m / "tfcompact.json").write_text("{oops")), argv=export()),
    _case("export: tfcompact.json binary garbage", "model/tfcompact.json",
          setup=lambda t: _model(t, lambda m: (m / "tfcompact.json").write_bytes(b"\xff\xfe\x00\x9c" * 64)),
          argv=export()),
    _case("export: tfcompact.json a JSON list", "model/tfcompact.json",
          setup=lambda t: _model(t, lambda m: (m / "tfcompact.json").write_text("[1, 2]")), argv=export()),
    _case("export: tfcompact.json field of the wrong type", "'hidden_size'",
          setup=lambda t: _model(t, lambda m: edit_json(m / "tfcompact.json", _set_config(hidden_size="32"))),
          argv=export()),
    _case("export: tfcompact.json without 'config'", "'config'",
          setup=lambda t: _model(t, lambda m: edit_json(m / "tfcompact.json", lambda d: d.pop("config"))),
          argv=export()),
    _case("export: tfcompact.json format_version 2", "format_version",
          setup=lambda t: _model(t, lambda m: edit_json(m / "tfcompact.json",
                                                         lambda d: d.update(format_version=2))),
          argv=export()),
    _case("export: checkpoint of another architecture (ALBERT ckpt, BERT config)", "ckpt-2",
          setup=lambda t: _model(t, lambda m: edit_json(m / "tfcompact.json", _bert_config)), argv=export()),
    _case("export: checkpoint of another size (hidden 64 in tfcompact.json)", "ckpt-2",
          setup=lambda t: _model(t, lambda m: edit_json(m / "tfcompact.json", _set_config(hidden_size=64))),
          argv=export()),
    _case("export: checkpoint .index missing", "ckpt-2.index",
          setup=lambda t: _model(t, lambda m: os.remove(checkpoint_file(m, ".index"))), argv=export()),
    _case("export: checkpoint .data missing", "ckpt-2.data-00000-of-",
          setup=lambda t: _model(t, lambda m: os.remove(checkpoint_file(m, "-of-00001"))), argv=export()),
    _case("export: checkpoint .data truncated", "ckpt-2",
          setup=lambda t: _model(t, lambda m: truncate(checkpoint_file(m, "-of-00001"))), argv=export()),
    _case("export: checkpoint .data empty", "ckpt-2",
          setup=lambda t: _model(t, lambda m: truncate(checkpoint_file(m, "-of-00001"), 0)), argv=export()),
    _case("export: checkpoint .data one byte flipped", "ckpt-2",
          setup=lambda t: _model(t, lambda m: flip_byte(checkpoint_file(m, "-of-00001"))), argv=export()),
    _case("export: checkpoint .index one byte flipped", "ckpt-2",
          setup=lambda t: _model(t, lambda m: flip_byte(checkpoint_file(m, ".index"))), argv=export()),
    _case("export: checkpoint .index empty", "ckpt-2",
          setup=lambda t: _model(t, lambda m: truncate(checkpoint_file(m, ".index"), 0)), argv=export()),
    _case("export: checkpoints/checkpoint state file garbage", "checkpoints/checkpoint",
          setup=lambda t: _model(t, lambda m: (m / "checkpoints" / "checkpoint").write_text("ckpt ckpt\n")),
          argv=export()),
    _case("export: no checkpoints/ at all", "checkpoints",
          setup=lambda t: _model(t, _rm("checkpoints")), argv=export()),
    _case("export --format tf1: vocab.txt size does not match the model", "model/vocab.txt",
          setup=lambda t: _model(t, lambda m: drop_vocab_lines(m / "vocab.txt")), argv=export()),
    _case("export: vocab.txt is not text", "model/vocab.txt",
          setup=lambda t: _model(t, lambda m: (m / "vocab.txt").write_bytes(b"\xff\xfe[PAD]\n" * 7006)),
          argv=export()),
    _case("export --format savedmodel: vocab.txt size does not match", "model/vocab.txt",
          setup=lambda t: _model(t, lambda m: drop_vocab_lines(m / "vocab.txt")),
          argv=export(fmt="savedmodel")),
    _case("export: --checkpoint does not exist", "ckpt-9",
          setup=_model, argv=export("--checkpoint", "model/checkpoints/ckpt-9")),
    _case("export: --checkpoint is a TF1 checkpoint", "import-tf1",
          setup=_with(_model, _release), argv=export("--checkpoint", "release/model.ckpt")),

    # --- flags ----------------------------------------------------------------------------------
    _case("export: --format onnx", "--format onnx", setup=_model, argv=export(fmt="onnx")),
    _case("export --format tflite: --seq_length 0", "--seq_length 0",
          setup=_model, argv=export("--seq_length", "0", fmt="tflite")),
    _case("export --format savedmodel: --seq_length 0", "--seq_length 0",
          setup=_model, argv=export("--seq_length", "0", fmt="savedmodel")),
    _case("export --format savedmodel: --seq_length above max positions", "--seq_length 1000",
          setup=_model, argv=export("--seq_length", "1000", fmt="savedmodel")),
    _case("export --format tflite: --quantize bogus", "--quantize bogus",
          setup=_model, argv=export("--quantize", "bogus", fmt="tflite")),
    _case("export --format savedmodel: --quantize dynamic (tflite only)", "--quantize",
          setup=_model, argv=export("--quantize", "dynamic", fmt="savedmodel")),
    _case("export --format tflite: --num_predictions 0", "--num_predictions 0",
          setup=_model, argv=export("--num_predictions", "0", fmt="tflite")),
    _case("export --format tflite: --num_predictions above --seq_length", "--num_predictions 64",
          setup=_model, argv=export("--num_predictions", "64", "--seq_length", "16", fmt="tflite")),
    # --- tflite --quantize int8: the calibration text ---------------------------------------------
    _case("export --quantize int8: --representative_data missing", "--representative_data calib.txt: no such file",
          setup=_model, argv=export("--quantize", "int8", "--representative_data", "calib.txt", fmt="tflite")),
    _case("export --quantize int8: --representative_data is a directory", "calib: is a directory",
          setup=_with(_model, lambda t: (t / "calib").mkdir()),
          argv=export("--quantize", "int8", "--representative_data", "calib", fmt="tflite")),
    _case("export --quantize int8: --representative_data empty", "calib.txt:1: no text",
          setup=_with(_model, _bytes("calib.txt", b"")),
          argv=export("--quantize", "int8", "--representative_data", "calib.txt", fmt="tflite")),
    _case("export --quantize int8: --representative_data blank lines only", "calib.txt:1: no text",
          setup=_with(_model, _bytes("calib.txt", b"\n \n\t\n")),
          argv=export("--quantize", "int8", "--representative_data", "calib.txt", fmt="tflite")),
    _case("export --quantize int8: --representative_data line 3 not UTF-8", "calib.txt:3: invalid UTF-8",
          setup=_with(_model, _bytes("calib.txt", "人民日报。\n今天下雨。\n".encode() + b"\xb9\xfa\xbc\xd2\n")),
          argv=export("--quantize", "int8", "--representative_data", "calib.txt", fmt="tflite")),
    _case("export --quantize int8: --representative_data UTF-16", "UTF-16",
          setup=_with(_model, _bytes("calib.txt", "人民日报。\n".encode("utf-16"))),
          argv=export("--quantize", "int8", "--representative_data", "calib.txt", fmt="tflite")),
    _case("export --quantize int8: --representative_data is the --output", "--representative_data",
          setup=_with(_model, _bytes("calib.txt", "人民日报。\n".encode())),
          argv=export("--quantize", "int8", "--representative_data", "calib.txt", fmt="tflite",
                      output="calib.txt")),
    _case("export --quantize int8: model without vocab.txt", "vocab.txt",
          setup=_with(lambda t: _model(t, _rm("vocab.txt")), _bytes("calib.txt", "人民日报。\n".encode())),
          argv=export("--quantize", "int8", "--representative_data", "calib.txt", fmt="tflite")),
    _case("export --quantize dynamic: --representative_data (int8 only)", "--representative_data",
          setup=_with(_model, _bytes("calib.txt", "人民日报。\n".encode())),
          argv=export("--quantize", "dynamic", "--representative_data", "calib.txt", fmt="tflite")),
    _case("export --format savedmodel: --representative_data (tflite int8 only)", "--representative_data",
          setup=_with(_model, _bytes("calib.txt", "人民日报。\n".encode())),
          argv=export("--representative_data", "calib.txt", fmt="savedmodel")),
    _case("export --quantize int8: --representative_samples 0", "--representative_samples 0",
          setup=_model, argv=export("--quantize", "int8", "--representative_samples", "0", fmt="tflite")),
    _case("export --quantize none: --representative_samples (int8 only)", "--representative_samples 5",
          setup=_model, argv=export("--representative_samples", "5", fmt="tflite")),
    _case("export --quantize int8: a fine-tuned directory", "fine-tuned",
          setup=lambda t: _model(t, lambda m: (m / "task.json").write_text("{}\n")),
          argv=export("--quantize", "int8", fmt="tflite")),
    _case("export: --component generator on an ALBERT model", "--component",
          setup=_model, argv=export("--component", "generator", fmt="savedmodel")),
    _case("export --format tf1: --component", "--component",
          setup=_model, argv=export("--component", "discriminator")),
    _case("export --format savedmodel: --with_optimizer_slots", "--with_optimizer_slots",
          setup=_model, argv=export("--with_optimizer_slots", fmt="savedmodel")),
    _case("export: --with_optimizer_slots on an imported model (no optimizer)", "optimizer",
          setup=lambda t: copy(t, "imported"), argv=export("--with_optimizer_slots", model="imported")),

    # --- import-tf1 ----------------------------------------------------------------------------
    _case("import-tf1: a variable missing from the checkpoint", "bert/embeddings/LayerNorm/beta",
          setup=lambda t: _release(t, lambda r: rewrite_tf1(r, lambda d: d.pop("bert/embeddings/LayerNorm/beta"))),
          argv=import_tf1()),
    _case("import-tf1: an extra variable in the checkpoint", "bert/extra/kernel",
          setup=lambda t: _release(t, lambda r: rewrite_tf1(
              r, lambda d: d.update({"bert/extra/kernel": d["bert/pooler/dense/kernel"]}))),
          argv=import_tf1()),
    _case("import-tf1: config field of the wrong type", "'hidden_size'",
          setup=lambda t: _release(t, lambda r: edit_json(r / "albert_config.json",
                                                           lambda d: d.update(hidden_size="32"))),
          argv=import_tf1()),
    _case("import-tf1: config not JSON", "albert_config.json:1",
          setup=lambda t: _release(t, lambda r: (r / "albert_config.json").write_text("{oops")),
          argv=import_tf1()),
    _case("import-tf1: config of another size", "shape mismatch",
          setup=lambda t: _release(t, lambda r: edit_json(r / "albert_config.json",
                                                           lambda d: d.update(intermediate_size=128))),
          argv=import_tf1()),
    _case("import-tf1: --config is a tfcompact.json", "tfcompact.json",
          setup=_with(_release, _model), argv=import_tf1(config="model/tfcompact.json")),
    _case("import-tf1: vocab.txt size does not match", "release/vocab.txt",
          setup=lambda t: _release(t, lambda r: drop_vocab_lines(r / "vocab.txt")), argv=import_tf1()),
    _case("import-tf1: --vocab does not exist", "nope.txt",
          setup=_release, argv=import_tf1("--vocab", "nope.txt")),
    _case("import-tf1: checkpoint .index missing", "model.ckpt.index",
          setup=lambda t: _release(t, _rm("model.ckpt.index")), argv=import_tf1()),
    _case("import-tf1: checkpoint .data truncated", "release/model.ckpt",
          setup=lambda t: _release(t, lambda r: truncate(r / "model.ckpt.data-00000-of-00001")),
          argv=import_tf1()),
    _case("import-tf1: checkpoint .data one byte flipped", "release/model.ckpt",
          setup=lambda t: _release(t, lambda r: flip_byte(r / "model.ckpt.data-00000-of-00001")),
          argv=import_tf1()),
    _case("import-tf1: checkpoint .index one byte flipped", "release/model.ckpt",
          setup=lambda t: _release(t, lambda r: flip_byte(r / "model.ckpt.index")),
          argv=import_tf1()),
    _case("import-tf1: --arch bert for an ALBERT checkpoint", "albert checkpoint",
          setup=_release,
          argv=["import-tf1", "--arch", "bert", "--checkpoint", "release/model.ckpt",
                "--config", "release/albert_config.json", "--output", "imported"]),
    _case("import-tf1: --checkpoint is a tfcompact training checkpoint", "tfcompact export",
          setup=_with(_release, _model),
          argv=["import-tf1", "--arch", "albert", "--checkpoint", "model/checkpoints",
                "--config", "release/albert_config.json", "--vocab", "release/vocab.txt",
                "--output", "imported"]),
    _case("import-tf1: --checkpoint an empty directory", "empty",
          setup=lambda t: (t / "empty").mkdir(),
          argv=["import-tf1", "--arch", "albert", "--checkpoint", "empty",
                "--config", "empty/albert_config.json", "--output", "imported"]),

    # --- import-tf1 of releases without a config: ELECTRA hparams, --preset --------------------
    _case("import-tf1: ELECTRA hparams with model_size medium", "'model_size'",
          setup=_electra_hparams(lambda d: d.update(model_size="medium")), argv=import_electra()),
    _case("import-tf1: ELECTRA hparams key misspelt (generator_hiden_size)", "'generator_hiden_size'",
          setup=_electra_hparams(lambda d: d.update(generator_hiden_size=0.5)), argv=import_electra()),
    _case("import-tf1: ELECTRA hparams override misspelt", "model_hparam_overrides.num_hiden_layers",
          setup=_electra_hparams(lambda d: d["model_hparam_overrides"].update(num_hiden_layers=2)),
          argv=import_electra()),
    _case("import-tf1: ELECTRA hparams with hidden_size at the top level", "model_hparam_overrides",
          setup=_electra_hparams(lambda d: d.update(hidden_size=64)), argv=import_electra()),
    _case("import-tf1: ELECTRA hparams for untied generator embeddings", "'untied_generator_embeddings'",
          setup=_electra_hparams(lambda d: d.update(untied_generator_embeddings=True)),
          argv=import_electra()),
    _case("import-tf1: ELECTRA hparams without the size overrides", "does not match an electra model",
          setup=_electra_hparams(lambda d: d.pop("model_hparam_overrides")), argv=import_electra()),
    _case("import-tf1: ELECTRA hparams with the Chinese vocab_size", "vocab_size=21128",
          setup=_electra_hparams(lambda d: d.update(vocab_size=21128)), argv=import_electra()),
    _case("import-tf1: ELECTRA hparams not JSON", "hparams.json:1",
          setup=_with(_electra_hparams(), _file("hparams.json", '{"model_size": "small",')),
          argv=import_electra()),
    _case("import-tf1: ELECTRA hparams given to --arch albert", "--arch electra",
          setup=_with(_release, _electra_hparams()),
          argv=["import-tf1", "--arch", "albert", "--checkpoint", "release/model.ckpt",
                "--config", "hparams.json", "--output", "imported"]),
    _case("import-tf1: --preset of another architecture", "--preset electra_small_zh is an electra model",
          setup=_release, argv=import_preset("electra_small_zh")),
    _case("import-tf1: --preset unknown", "albert_tiny_zh",
          setup=_release, argv=import_preset("albert_tiny")),
    _case("import-tf1: --preset whose vocab_size is not vocab.txt's", "preset albert_tiny_zh says vocab_size=21128",
          setup=_release, argv=import_preset("albert_tiny_zh")),
    _case("import-tf1: --preset whose vocab_size is not the checkpoint's", "rows (vocabulary entries)",
          setup=_with(_release, _big_vocab), argv=import_preset("albert_tiny_zh", "--vocab", "zh_vocab.txt")),

    # --- export --format huggingface / import-hf ---------------------------------------------
    _case("export: --format huggingface with --seq_length", "--seq_length 16",
          setup=_model, argv=export("--seq_length", "16", fmt="huggingface")),
    _case("import-hf: --model_dir does not exist", "--model_dir nowhere",
          argv=import_hf(hf="nowhere")),
    _case("import-hf: no config.json", "hf/config.json: not found",
          setup=_with(_hf, _rm("hf/config.json")), argv=import_hf()),
    _case("import-hf: config.json not JSON", "hf/config.json: not valid JSON",
          setup=_with(_hf, _file("hf/config.json", "{'model_type': 'albert'")), argv=import_hf()),
    _case("import-hf: a model type we do not implement", "field 'model_type': 'roberta'",
          setup=_with(_hf, _hf_config(model_type="roberta")), argv=import_hf()),
    _case("import-hf: relative position embeddings", "position_embedding_type",
          setup=_with(_hf, _hf_config(position_embedding_type="relative_key")), argv=import_hf()),
    _case("import-hf: config.json sizes that do not fit the weights", "does not fit",
          setup=_with(_hf, _hf_config(intermediate_size=48)), argv=import_hf()),
    _case("import-hf: model.safetensors garbage", "hf/model.safetensors: cannot read safetensors",
          setup=_with(_hf, _bytes("hf/model.safetensors", b"\x00garbage" * 100)), argv=import_hf()),
    _case("import-hf: model.safetensors truncated", "hf/model.safetensors: cannot read safetensors",
          setup=_with(_hf, lambda t: truncate(t / "hf" / "model.safetensors")), argv=import_hf()),
    _case("import-hf: no weights file", "no model.safetensors",
          setup=_with(_hf, _rm("hf/model.safetensors")), argv=import_hf()),
    _case("import-hf: a weight missing", "missing albert.pooler.weight",
          setup=_with(_hf, _hf_weights(lambda w: w.pop("albert.pooler.weight"))), argv=import_hf()),
    _case("import-hf: a weight nobody reads", "unused albert.extra.weight",
          setup=_with(_hf, _hf_weights(lambda w: w.update({"albert.extra.weight": w["albert.pooler.bias"]}))),
          argv=import_hf()),
    _case("import-hf: a tied copy that differs", "predictions.decoder.bias differs from predictions.bias",
          setup=_with(_hf, _hf_weights(lambda w: w.update({"predictions.decoder.bias": w["predictions.bias"] + 1}))),
          argv=import_hf()),
    _case("import-hf: vocab.txt of another size", "3 entries",
          setup=_with(_hf, _file("hf/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n")), argv=import_hf()),
    _case("import-hf: no vocab.txt", "(pass --vocab)",
          setup=_with(_hf, _rm("hf/vocab.txt")), argv=import_hf()),
    _case("import-hf: --generator for an ALBERT", "--generator applies to ELECTRA only",
          setup=_with(_hf, lambda t: copy(t, "hf", "gen")), argv=import_hf("--generator", "gen")),
    _case("import-hf: --output inside the HF directory", "--model_dir",
          setup=_hf, argv=import_hf(output="hf/imported")),

    # --- check-tflite --------------------------------------------------------------------------
    _case("check-tflite: --tflite missing", "missing.tflite",
          setup=lambda t: copy(t, "lite"),
          argv=["check-tflite", "--tflite", "missing.tflite", "--savedmodel", "lite/encoder"]),
    _case("check-tflite: --tflite is the export directory", "lite/model.tflite",
          setup=lambda t: copy(t, "lite"),
          argv=["check-tflite", "--tflite", "lite", "--savedmodel", "lite/encoder"]),
    _case("check-tflite: --tflite garbage", "lite/model.tflite",
          setup=lambda t: (copy(t, "lite"), _bytes("lite/model.tflite", b"\x00garbage" * 100)(t)),
          argv=["check-tflite", "--tflite", "lite/model.tflite", "--savedmodel", "lite/encoder"]),
    _case("check-tflite: --tflite truncated", "lite/model.tflite",
          setup=lambda t: truncate(copy(t, "lite") / "model.tflite"),
          argv=["check-tflite", "--tflite", "lite/model.tflite", "--savedmodel", "lite/encoder"]),
    _case("check-tflite: --savedmodel is the export directory", "lite/encoder",
          setup=lambda t: copy(t, "lite"),
          argv=["check-tflite", "--tflite", "lite/model.tflite", "--savedmodel", "lite"]),
    _case("check-tflite: --savedmodel is the preprocessing model", "sm/preprocessing",
          setup=_with(lambda t: copy(t, "lite"), lambda t: copy(t, "sm")),
          argv=["check-tflite", "--tflite", "lite/model.tflite", "--savedmodel", "sm/preprocessing"]),
    _case("check-tflite: encoder variables truncated", "lite/encoder",
          setup=lambda t: truncate(copy(t, "lite") / "encoder" / "variables" / "variables.data-00000-of-00001"),
          argv=["check-tflite", "--tflite", "lite/model.tflite", "--savedmodel", "lite/encoder"]),
    _case("check-tflite: encoder saved_model.pb garbage", "lite/encoder",
          setup=lambda t: garble_head(copy(t, "lite") / "encoder" / "saved_model.pb"),
          argv=["check-tflite", "--tflite", "lite/model.tflite", "--savedmodel", "lite/encoder"]),
    _case("check-tflite: --num_batches 0", "--num_batches 0",
          setup=lambda t: copy(t, "lite"),
          argv=["check-tflite", "--tflite", "lite/model.tflite", "--savedmodel", "lite/encoder",
                "--num_batches", "0"]),
    _case("check-tflite: --num_threads -1", "--num_threads -1",
          setup=lambda t: copy(t, "lite"),
          argv=["check-tflite", "--tflite", "lite/model.tflite", "--savedmodel", "lite/encoder",
                "--num_threads", "-1"]),
    _case("check-tflite: --benchmark -5", "--benchmark -5",
          setup=lambda t: copy(t, "lite"),
          argv=["check-tflite", "--tflite", "lite/model.tflite", "--savedmodel", "lite/encoder",
                "--benchmark", "-5"]),
]
