"""The export and import workflows behind `tfcompact export` and `tfcompact import-tf1`.

Export reads only a model directory (config, vocab, training checkpoint) and writes one
output directory atomically. Import reads a TF1 checkpoint + config JSON + vocab, checks the
checkpoint against the name table before anything is written, and writes a model directory.
"""
from __future__ import annotations

import os
import shutil

import tensorflow as tf

from tfcompact.errors import CheckpointError, ConfigError, DataError, UserError
from tfcompact.interop import name_maps
from tfcompact.interop.output_dir import atomic_output_dir, check_output_dir
from tfcompact.interop.tf1_checkpoint import (
    is_optimizer_or_bookkeeping, list_tf1_variables, read_tf1_variables, resolve_checkpoint_prefix,
    write_tf1_checkpoint)

# The original config file name per architecture (what the TF1 scripts and HF converters read).
CONFIG_FILE_NAMES = {"bert": "bert_config.json", "tinybert": "bert_config.json",
                     "albert": "albert_config.json", "electra": "electra_config.json",
                     "mobilebert": "bert_config.json"}


def _count_vocab(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)


def _check_vocab(vocab: str, config, where: str) -> None:
    if not os.path.isfile(vocab):
        raise DataError(f"{vocab}: vocabulary file not found ({where})")
    n = _count_vocab(vocab)
    if n != config.vocab_size:
        raise DataError(f"{vocab}: {n} entries but the config says vocab_size={config.vocab_size}")


def build_model(arch: str, config, sentence_head: str | None = None):
    """The pretraining model of `arch` with all variables created (what model directories hold)."""
    from tfcompact.models import build_pretraining_model

    return build_pretraining_model(arch, config, sentence_head=sentence_head)


def save_training_checkpoint(model, model_dir: str) -> str:
    """Write `model` as the first checkpoint of `model_dir/checkpoints` (relative paths, so the
    directory can be renamed or moved)."""
    ckpt = tf.train.Checkpoint(model=model)
    manager = tf.train.CheckpointManager(ckpt, os.path.join(model_dir, "checkpoints"), max_to_keep=1)
    return manager.save(checkpoint_number=0)


# ----------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------

def _load_model_dir(model_dir: str, checkpoint: str | None):
    """(info, pretraining model with weights, checkpoint prefix used)."""
    from tfcompact import modeldir

    if not os.path.isdir(model_dir):
        raise UserError(f"--model_dir {model_dir}: directory not found")
    info = modeldir.read_model_dir(model_dir)
    prefix = checkpoint or info.latest_checkpoint
    if prefix is None:
        raise CheckpointError(f"{model_dir}/checkpoints: no checkpoint found; train or import a model first")
    if not tf.io.gfile.exists(prefix + ".index"):
        raise CheckpointError(f"{prefix}: checkpoint index {prefix}.index not found")
    try:
        model = modeldir.load_pretraining_model(model_dir, prefix)
    except (tf.errors.OpError, IndexError, ValueError) as e:
        # a short data file surfaces as IndexError("Read less bytes than requested")
        raise CheckpointError(f"{prefix}: cannot read checkpoint ({str(e).strip().splitlines()[0]})") from e
    return info, model, prefix


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
    config.to_json_file(os.path.join(out_dir, CONFIG_FILE_NAMES[arch]))
    if arch == "electra":
        # the generator's BERT-format config, as HF's ELECTRA generator conversions expect it
        config.generator_config().to_json_file(os.path.join(out_dir, "generator_config.json"))
    if vocab_path:
        shutil.copyfile(vocab_path, os.path.join(out_dir, "vocab.txt"))
    return os.path.join(out_dir, "model.ckpt")


def export_model_dir(model_dir: str, fmt: str, output: str, *, checkpoint: str | None = None,
                     with_optimizer_slots: bool = False, component: str | None = None,
                     seq_length: int = 128, num_predictions: int = 20, quantize: str = "none",
                     do_lower_case: bool = True, overwrite: bool = False) -> str:
    """Export `model_dir` as `fmt` (tf1 | savedmodel | tflite) into `output`; returns a summary."""
    from tfcompact.interop import savedmodel as savedmodel_export, tflite

    if fmt not in ("tf1", "savedmodel", "tflite"):
        raise UserError(f"--format {fmt}: unknown export format; expected tf1, savedmodel or tflite")
    if fmt == "tflite" and quantize not in tflite.QUANTIZE_MODES:
        raise UserError(f"--quantize {quantize}: expected one of {', '.join(tflite.QUANTIZE_MODES)}")
    if fmt == "tflite":
        from tfcompact import modeldir

        if os.path.isfile(os.path.join(model_dir, modeldir.CONFIG_FILE)):
            max_len = modeldir.read_model_dir(model_dir).config.max_position_embeddings
            if not 2 <= seq_length <= max_len:
                raise UserError(f"--seq_length {seq_length}: expected 2..{max_len} "
                                "(the model's max_position_embeddings)")
    if fmt != "tf1" and with_optimizer_slots:
        raise UserError("--with_optimizer_slots applies to --format tf1 only")
    check_output_dir(output, overwrite=overwrite)  # fail before the (slow) model load
    info, model, prefix = _load_model_dir(model_dir, checkpoint)
    if component is not None and info.arch != "electra":
        raise UserError(f"--component {component}: only ELECTRA models have generator/discriminator")
    with atomic_output_dir(output, overwrite=overwrite) as tmp:
        if fmt == "tf1":
            export_tf1(model, info.arch, info.config, info.vocab_path, tmp,
                       training_checkpoint=prefix, with_optimizer_slots=with_optimizer_slots)
            what = f"TF1 checkpoint {output}/model.ckpt"
        else:
            enc_dir = os.path.join(tmp, "encoder")
            savedmodel_export.export_encoder(model, info.arch, info.config, enc_dir,
                                             component=component or "discriminator")
            if fmt == "savedmodel":
                if info.vocab_path:
                    from tfcompact.interop.preprocessing import export_preprocessing_savedmodel

                    export_preprocessing_savedmodel(info.vocab_path, os.path.join(tmp, "preprocessing"),
                                                    do_lower_case=do_lower_case, seq_length=seq_length)
                    shutil.copyfile(info.vocab_path, os.path.join(tmp, "vocab.txt"))
                what = f"SavedModels {output}/encoder and {output}/preprocessing"
            else:
                tflite.convert_savedmodel_to_tflite(enc_dir, os.path.join(tmp, "model.tflite"),
                                                    seq_length=seq_length, quantize=quantize,
                                                    num_predictions=num_predictions)
                what = f"TFLite {output}/model.tflite (seq {seq_length}, quantize {quantize})"
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


def _load_config(arch: str, path: str):
    from tfcompact.configs import config_from_json_file

    if not os.path.isfile(path):
        raise ConfigError(f"--config {path}: file not found")
    return config_from_json_file("bert" if arch == "tinybert" else arch, path)


def import_tf1_checkpoint(arch: str, checkpoint: str, config_path: str, output: str, *,
                          vocab: str | None = None, layout: str | None = None,
                          overwrite: bool = False) -> str:
    """Import a TF1 checkpoint into a new model directory; see `tfcompact import-tf1`."""
    from tfcompact import modeldir

    check_output_dir(output, overwrite=overwrite)
    prefix = resolve_checkpoint_prefix(checkpoint)
    config = _load_config(arch, config_path)
    shapes = list_tf1_variables(prefix)
    if arch == "albert":
        found = detect_albert_layout(shapes)
        if layout is not None and layout != found:
            raise CheckpointError(f"{prefix}: --layout {layout} given but the variable names are the "
                                  f"{found} layout")
        config = config.replace(layout=found)
    elif layout is not None:
        raise UserError(f"--layout applies to --arch albert only, not {arch}")
    vocab = vocab or os.path.join(os.path.dirname(prefix), "vocab.txt")
    _check_vocab(vocab, config, "pass --vocab" if not os.path.isfile(vocab) else "--vocab")
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
        guess = guess_arch(shapes)
        article = "an" if guess and guess[0] in "aeiou" else "a"
        hint = (f" (the names look like {article} {guess} checkpoint)"
                if guess and guess != ("bert" if arch == "tinybert" else arch) else "")
        article = "an" if arch[0] in "aeiou" else "a"
        raise CheckpointError(f"{prefix} does not match {article} {arch} model with {config_path}{hint}: "
                              + "; ".join(problems))
    values = read_tf1_variables(prefix, [e.tf1_name for e in table])
    name_maps.tf1_to_keras(model, table, values)
    with atomic_output_dir(output, overwrite=overwrite) as tmp:
        modeldir.write_model_dir_config(tmp, arch, config, vocab_path=vocab,
                                        sentence_head=None if arch == "electra" else sentence_head)
        save_training_checkpoint(model, tmp)
    used = len(table)
    skipped = sum(1 for n in shapes if is_optimizer_or_bookkeeping(n))
    return (f"imported {used} variables from {prefix} into {output} "
            f"({skipped} optimizer/bookkeeping entries ignored)")
