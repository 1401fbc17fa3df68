"""The export and import workflows behind `tfcompact export` and `tfcompact import-tf1`.

Export reads only a model directory (config, vocab, training checkpoint, every tensor of which
is read once to verify it) and writes one output directory. Import reads a TF1 checkpoint +
config JSON + vocab, checks the checkpoint against the name table before anything is written,
and writes a model directory. Both check every flag and input they can before the slow work,
and write through `interop.output_dir.atomic_output_dir`: the output never touches an input,
appears all at once, and replaces only an earlier output of the same command.
"""
from __future__ import annotations

import contextlib
import functools
import glob
import os
import shutil
from typing import Callable, Optional

import tensorflow as tf

from tfcompact import modeldir
from tfcompact.architectures import ARCHITECTURES
from tfcompact.errors import CheckpointError, ConfigError, DataError, UserError
from tfcompact.interop import EXPORT_FORMATS, huggingface, name_maps, tflite
from tfcompact.interop import savedmodel as savedmodel_export
from tfcompact.interop.output_dir import atomic_output_dir, check_output_dir
from tfcompact.interop.preprocessing import export_preprocessing_savedmodel
from tfcompact.interop.release_config import (check_checkpoint_vocab, load_release_config,
                                              preset_for_import)
from tfcompact.interop.tf1_checkpoint import (
    checkpoint_files, is_optimizer_or_bookkeeping, list_tf1_variables, read_tf1_variables,
    resolve_checkpoint_prefix, write_tf1_checkpoint)
from tfcompact.interop.tflite import QUANTIZE_MODES
from tfcompact.models import build_pretraining_model

IMPORT_KIND = "import-tf1"  # the marker kind of import outputs (see interop/output_dir.py)


def _count_vocab(path: str) -> int:
    with open(path, "rb") as f:
        data = f.read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 vocabulary (byte {e.start})") from None
    return len(data.splitlines())


def check_vocab(vocab: str, config, config_file: str, hint: str = "") -> None:
    """The vocabulary exists and has exactly the config's vocab_size entries."""
    if not os.path.isfile(vocab):
        raise DataError(f"{vocab}: vocabulary file not found{hint}")
    n = _count_vocab(vocab)
    if n != config.vocab_size:
        raise DataError(f"{vocab}: {n} entries but {config_file} says vocab_size={config.vocab_size}")


def build_model(arch: str, config, sentence_head: str | None = None):
    """The pretraining model of `arch` with all variables created (what model directories hold)."""
    return build_pretraining_model(arch, config, sentence_head=sentence_head)


def save_training_checkpoint(model, model_dir: str) -> str:
    """Write `model` as the first checkpoint of `model_dir/checkpoints` (relative paths, so the
    directory can be renamed or moved)."""
    ckpt = tf.train.Checkpoint(model=model)
    manager = tf.train.CheckpointManager(ckpt, os.path.join(model_dir, "checkpoints"), max_to_keep=1)
    return manager.save(checkpoint_number=0)


@contextlib.contextmanager
def _write_errors(output: str):
    """TensorFlow's write failures (e.g. a full disk under tf.saved_model.save) as one line."""
    try:
        yield
    except tf.errors.OpError as e:
        first = (e.message or str(e)).strip().splitlines()[0]
        raise UserError(f"--output {output}: cannot write ({first}); nothing was written") from None


def _write_text(path: str, text: str) -> None:
    """A plain write (mode from the umask); atomic_output_dir makes the output whole."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# ----------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------

def _read_model_dir(model_dir: str):
    """The model directory's description, with one line for a path that is not one."""
    if not os.path.exists(model_dir):
        raise UserError(f"--model_dir {model_dir}: directory not found")
    if not os.path.isdir(model_dir):
        raise UserError(f"--model_dir {model_dir} is a file; expected a model directory "
                        "(tfcompact.json, vocab.txt, checkpoints/)")
    return modeldir.read_model_dir(model_dir)


def _export_checkpoint(info, checkpoint: str | None) -> str:
    """The prefix to export: --checkpoint, else the one the state file names; its files exist."""
    if checkpoint is not None:
        return resolve_checkpoint_prefix(checkpoint)
    prefix = modeldir.checkpoint_state(info.path)
    if prefix is None:
        found = sorted(glob.glob(os.path.join(glob.escape(info.checkpoint_dir), "*.index")))
        if found:
            raise CheckpointError(f"{info.checkpoint_dir}/checkpoint: not found; pass --checkpoint "
                                  f"(e.g. {found[-1][:-len('.index')]})")
        raise CheckpointError(f"{info.checkpoint_dir}: no checkpoint found; train or import a model first")
    return resolve_checkpoint_prefix(prefix)


def check_quantize_flags(fmt: str, quantize: str, representative_data: str | None = None,
                         representative_samples: int | None = None) -> None:
    """--quantize applies to tflite; --representative_data/--representative_samples (the
    calibration text) to --quantize int8 only."""
    if fmt == "tflite" and quantize not in QUANTIZE_MODES:
        raise UserError(f"--quantize {quantize}: expected one of {', '.join(QUANTIZE_MODES)}")
    if fmt != "tflite" and quantize != "none":
        raise UserError(f"--quantize {quantize} applies to --format tflite only")
    for flag, value in (("--representative_data", representative_data),
                        ("--representative_samples", representative_samples)):
        if value is not None and (fmt != "tflite" or quantize != "int8"):
            raise UserError(f"{flag} {value} applies to --format tflite --quantize int8 only "
                            "(the calibration text of full-integer quantization)")
    if representative_samples is not None and representative_samples < 1:
        raise UserError(f"--representative_samples {representative_samples}: expected at least 1")


def _check_export_flags(fmt: str, *, quantize: str, with_optimizer_slots: bool,
                        component: str | None, num_predictions: int | None,
                        representative_data: str | None = None,
                        representative_samples: int | None = None) -> None:
    """Flags that do not fit the format are refused, never silently ignored."""
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"--format {fmt}: unknown export format; expected one of {', '.join(EXPORT_FORMATS)}")
    check_quantize_flags(fmt, quantize, representative_data, representative_samples)
    if fmt != "tflite" and num_predictions is not None:
        raise UserError(f"--num_predictions {num_predictions} applies to --format tflite only")
    if fmt != "tf1" and with_optimizer_slots:
        raise UserError("--with_optimizer_slots applies to --format tf1 only")
    if fmt == "tf1" and component is not None:
        raise UserError(f"--component {component} applies to --format savedmodel, tflite and "
                        "huggingface (a tf1 export holds every network of the model)")


def _check_lengths(fmt: str, config, seq_length: int, num_predictions: int) -> None:
    max_len = config.max_position_embeddings
    low = 3 if fmt == "savedmodel" else 2  # the preprocessing model packs [CLS] x [SEP]
    if fmt != "tf1" and not low <= seq_length <= max_len:
        raise UserError(f"--seq_length {seq_length}: expected {low}..{max_len} "
                        "(the model's max_position_embeddings)")
    if fmt == "tflite" and not 1 <= num_predictions <= seq_length:
        raise UserError(f"--num_predictions {num_predictions}: expected 1..{seq_length} (--seq_length)")


# (sentences, where they come from) of the default calibration text, given how many are wanted
DefaultCalibration = Callable[[int], "tuple[list[str], str]"]


def _calibration(info, quantize: str, representative_data: str | None, samples: int | None,
                 default: Optional[DefaultCalibration], do_lower_case: bool):
    """(int8's calibration inputs as `tflite.convert_module` takes them, or None; a phrase for
    the summary), read and checked before the slow work."""
    if quantize != "int8":
        return None, ""
    from tfcompact.text.tokenizer import FullTokenizer

    if info.vocab_path is None:
        raise UserError(f"--quantize int8 calibrates on text tokenized with the model's vocabulary; "
                        f"{info.path} has no {modeldir.VOCAB_FILE} (copy the vocabulary the model "
                        "was trained with there)")
    samples = tflite.DEFAULT_CALIBRATION_SAMPLES if samples is None else samples
    if representative_data is not None:
        sentences, where = tflite.read_sentences(representative_data, samples), representative_data
    elif default is not None:
        sentences, where = default(samples)
    else:
        raise UserError("--quantize int8: no calibration text; pass --representative_data FILE")
    tokenizer = FullTokenizer(info.vocab_path, do_lower_case=do_lower_case)
    return (functools.partial(tflite.representative_features, sentences, tokenizer),
            f", calibrated on {len(sentences)} sentences of {where}")


def export_tf1(model, arch: str, config, vocab_path: str | None, out_dir: str, *,
               training_checkpoint: str | None = None, with_optimizer_slots: bool = False) -> str:
    """Write model.ckpt (TF1 names), `checkpoint`, the original config JSON and vocab.txt."""
    table = name_maps.name_table(arch, config, model)
    tensors = name_maps.keras_to_tf1(model, table)
    if with_optimizer_slots:
        if training_checkpoint is None:
            raise CheckpointError("--with_optimizer_slots needs a training checkpoint with optimizer state")
        tensors.update(name_maps.optimizer_slots_as_tf1(model, table, training_checkpoint))
    write_tf1_checkpoint(out_dir, tensors)
    _write_text(os.path.join(out_dir, ARCHITECTURES[arch].config_file), config.to_json_string())
    if arch == "electra":
        # the generator's BERT-format config, as HF's ELECTRA generator conversions expect it
        _write_text(os.path.join(out_dir, "generator_config.json"),
                    config.generator_config().to_json_string())
    if vocab_path:
        shutil.copyfile(vocab_path, os.path.join(out_dir, "vocab.txt"))
    return os.path.join(out_dir, "model.ckpt")


def export_model_dir(model_dir: str, fmt: str, output: str, *, checkpoint: str | None = None,
                     with_optimizer_slots: bool = False, component: str | None = None,
                     seq_length: int | None = None, num_predictions: int | None = None,
                     quantize: str = "none", do_lower_case: bool = True, overwrite: bool = False,
                     representative_data: str | None = None,
                     representative_samples: int | None = None,
                     default_calibration: Optional[DefaultCalibration] = None) -> str:
    """Export `model_dir` as `fmt` (tf1 | savedmodel | tflite | huggingface) into `output`.

    `seq_length` (savedmodel, tflite) defaults to 128 or max_position_embeddings when that is
    smaller; `num_predictions` (tflite) to 20 or seq_length when that is smaller. A savedmodel
    export of a directory without vocab.txt writes the encoder only and says so. tflite int8
    calibrates on the first `representative_samples` (default 100) sentences of the text file
    `representative_data`, else of `default_calibration`, tokenized with the model's vocab.
    """
    _check_export_flags(fmt, quantize=quantize, with_optimizer_slots=with_optimizer_slots,
                        component=component, num_predictions=num_predictions,
                        representative_data=representative_data,
                        representative_samples=representative_samples)
    if fmt == "huggingface" and seq_length is not None:
        raise UserError(f"--seq_length {seq_length} applies to --format savedmodel and tflite")
    info = _read_model_dir(model_dir)
    seq_length = min(128, info.config.max_position_embeddings) if seq_length is None else seq_length
    num_predictions = min(20, seq_length) if num_predictions is None else num_predictions
    _check_lengths(fmt, info.config, seq_length, num_predictions)
    if component is not None and info.arch != "electra":
        raise UserError(f"--component {component}: only ELECTRA models have generator/discriminator")
    prefix = _export_checkpoint(info, checkpoint)
    inputs = [("--model_dir", model_dir)]
    if checkpoint is not None:
        inputs += [("--checkpoint", f) for f in checkpoint_files(prefix)]
    if representative_data is not None:
        inputs.append(("--representative_data", representative_data))
    kind = f"export --format {fmt}"
    check_output_dir(output, kind=kind, inputs=inputs, overwrite=overwrite)  # before the slow load
    representative, calibrated = _calibration(info, quantize, representative_data,
                                              representative_samples, default_calibration,
                                              do_lower_case)
    vocab = info.vocab_path if fmt != "tflite" else None
    if vocab:
        check_vocab(vocab, info.config, os.path.join(model_dir, modeldir.CONFIG_FILE))
    model = modeldir.load_pretraining_model(model_dir, prefix)
    with atomic_output_dir(output, kind=kind, inputs=inputs, overwrite=overwrite) as tmp, \
            _write_errors(output):
        if fmt == "tf1":
            export_tf1(model, info.arch, info.config, vocab, tmp,
                       training_checkpoint=prefix, with_optimizer_slots=with_optimizer_slots)
            what = f"TF1 checkpoint {output}/model.ckpt"
            if not vocab:
                what += f" without vocab.txt ({model_dir} has none)"
        elif fmt == "huggingface":
            what = f"HuggingFace directory {output}: " + huggingface.export_huggingface(
                model, info.arch, info.config, vocab, tmp, component=component or "discriminator",
                do_lower_case=do_lower_case)
        else:
            enc_dir = os.path.join(tmp, "encoder")
            savedmodel_export.export_encoder(model, info.arch, info.config, enc_dir,
                                             component=component or "discriminator")
            if fmt == "savedmodel" and vocab:
                export_preprocessing_savedmodel(vocab, os.path.join(tmp, "preprocessing"),
                                                do_lower_case=do_lower_case, seq_length=seq_length)
                shutil.copyfile(vocab, os.path.join(tmp, "vocab.txt"))
                what = (f"SavedModels {output}/encoder and {output}/preprocessing "
                        f"(seq_length {seq_length})")
            elif fmt == "savedmodel":
                what = (f"SavedModel {output}/encoder only; no preprocessing model, because "
                        f"{model_dir} has no {modeldir.VOCAB_FILE} (copy the vocabulary the model "
                        "was trained with there and export again to get one)")
            else:
                tflite.convert_savedmodel_to_tflite(enc_dir, os.path.join(tmp, "model.tflite"),
                                                    seq_length=seq_length, quantize=quantize,
                                                    num_predictions=num_predictions,
                                                    representative=representative)
                what = (f"TFLite {output}/model.tflite (seq {seq_length}, quantize "
                        f"{quantize}{calibrated})")
    return f"exported {info.arch} from {prefix} as {what}"


# ----------------------------------------------------------------------------------------------
# import
# ----------------------------------------------------------------------------------------------

def detect_albert_layout(names) -> str:
    """brightmart/albert_zh checkpoints have word_embeddings_2 and encoder/layer_shared."""
    names = set(names)
    if "bert/embeddings/word_embeddings_2" in names or any("/layer_shared/" in n for n in names):
        return "brightmart"
    return "google"


def guess_arch(names) -> str | None:
    """A best guess of which architecture wrote a checkpoint, for error messages."""
    names = set(names)
    if any(n.startswith("electra/") or n.startswith("generator/") for n in names):
        return "electra"
    if any("/transformer/group_" in n or "word_embeddings_2" in n or "/layer_shared/" in n for n in names):
        return "albert"
    if any("/bottleneck/" in n or "FakeLayerNorm" in n or "ffn_layer_" in n
           or "embedding_transformation" in n for n in names):
        return "mobilebert"
    if any(n.startswith("bert/encoder/layer_") for n in names):
        return "bert"
    return None


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _other_arch(arch: str, shapes) -> str | None:
    """The architecture the checkpoint's names suggest when it is not `arch`."""
    guess = guess_arch(shapes)
    return guess if guess and guess != ("bert" if arch == "tinybert" else arch) else None


def _load_config(arch: str, path: str, shapes):
    """The --config file as `arch`'s config (an original config JSON, or an ELECTRA release's
    hparams JSON: see `interop/release_config.py`); the error says what the file or the
    checkpoint looks like instead when that explains a ConfigError."""
    if not os.path.isfile(path):
        raise ConfigError(f"--config {path}: file not found")
    try:
        return load_release_config(arch, path)
    except ConfigError as e:
        if os.path.basename(path) == modeldir.CONFIG_FILE:
            raise ConfigError(f"--config {path} is a tfcompact model directory's config, not the "
                              f"original {ARCHITECTURES[arch].config_file}; a model directory needs no "
                              "import (export it with `tfcompact export`)") from None
        other = _other_arch(arch, shapes)
        if other:
            raise ConfigError(f"{e}; the checkpoint's names look like {_a(other)} checkpoint: "
                              f"--arch {other}?") from None
        raise


def _check_tf1_names(prefix: str, shapes) -> None:
    """A tfcompact training checkpoint (object-based names) is not a TF1 checkpoint."""
    if shapes and all("/.ATTRIBUTES/" in n for n in shapes):
        model_dir = os.path.dirname(os.path.dirname(prefix)) or "."
        raise CheckpointError(f"{prefix} is a tfcompact training checkpoint (object-based names), "
                              "not a TF1 checkpoint; its model directory needs no import: "
                              f"`tfcompact export --model_dir {model_dir} --format tf1` writes a TF1 one")


def _import_config(arch: str, config_path: str | None, preset: str | None, prefix: str, shapes,
                   layout: str | None):
    """The model config from --config or --preset, with the ALBERT layout the checkpoint's
    names have; and the preset to record (None when the config is not exactly the preset's)."""
    if preset is not None:
        record = preset_for_import(arch, preset)
        config = record.config
    else:
        record, config = None, _load_config(arch, config_path, shapes)
    if arch == "albert":
        found = detect_albert_layout(shapes)
        if layout is not None and layout != found:
            raise CheckpointError(f"{prefix}: --layout {layout} given but the variable names are the "
                                  f"{found} layout")
        config = config.replace(layout=found)
    elif layout is not None:
        raise UserError(f"--layout applies to --arch albert only, not {arch}")
    return config, (record.name if record is not None and record.config == config else None)


def import_tf1_checkpoint(arch: str, checkpoint: str, config_path: str | None, output: str, *,
                          preset: str | None = None, vocab: str | None = None,
                          layout: str | None = None, overwrite: bool = False) -> str:
    """Import a TF1 checkpoint into a new model directory; see `tfcompact import-tf1`.

    The sizes come from exactly one of `config_path` (the release's config JSON, or an ELECTRA
    release's hparams JSON) and `preset` (a name from `tfcompact presets`); the vocabulary file
    and the checkpoint's word embeddings must both have the config's vocab_size entries.
    """
    if (config_path is None) == (preset is None):
        raise UserError("give exactly one of --config and --preset")
    prefix = resolve_checkpoint_prefix(checkpoint)
    hint = "" if vocab else " (pass --vocab)"
    vocab = vocab or os.path.join(os.path.dirname(prefix), "vocab.txt")
    inputs = ([("--checkpoint", f) for f in checkpoint_files(prefix)]
              + ([("--config", config_path)] if config_path is not None else []) + [("--vocab", vocab)])
    check_output_dir(output, kind=IMPORT_KIND, inputs=inputs, overwrite=overwrite)
    shapes = list_tf1_variables(prefix)
    _check_tf1_names(prefix, shapes)
    config, recorded_preset = _import_config(arch, config_path, preset, prefix, shapes, layout)
    source = config_path if preset is None else f"preset {preset}"
    check_vocab(vocab, config, source, hint)
    check_checkpoint_vocab(prefix, shapes, config, source)
    if arch == "electra":
        sentence_head = "none"
    elif "cls/seq_relationship/output_weights" in shapes:
        sentence_head = "sop" if arch == "albert" else "nsp"
    else:
        sentence_head = "none"
    model = build_model(arch, config, sentence_head)
    table = name_maps.name_table(arch, config, model)
    problems = name_maps.compare_with_checkpoint(table, shapes)
    if problems:
        other = _other_arch(arch, shapes)
        raise CheckpointError(f"{prefix} does not match {_a(arch)} model with {source}"
                              + (f" (the names look like {_a(other)} checkpoint)" if other else "")
                              + ": " + "; ".join(problems))
    values = read_tf1_variables(prefix, [e.tf1_name for e in table])
    name_maps.tf1_to_keras(model, table, values)
    with atomic_output_dir(output, kind=IMPORT_KIND, inputs=inputs, overwrite=overwrite) as tmp, \
            _write_errors(output):
        modeldir.write_model_dir_config(tmp, arch, config, preset=recorded_preset, vocab_path=vocab,
                                        sentence_head=None if arch == "electra" else sentence_head)
        save_training_checkpoint(model, tmp)
    used = len(table)
    skipped = sum(1 for n in shapes if is_optimizer_or_bookkeeping(n))
    return (f"imported {used} variables from {prefix} into {output} "
            f"({skipped} optimizer/bookkeeping entries ignored)")
