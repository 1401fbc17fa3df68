"""Model directories: what a training run leaves and what export/fine-tuning read.

Layout::

    <dir>/tfcompact.json   {"format_version": 1, "arch", "preset" (or null), "config": <original
                            JSON field names>, "sentence_head" (optional: "nsp"|"sop"|"none")}
    <dir>/vocab.txt        the WordPiece vocabulary the model was trained with
    <dir>/checkpoints/     tf.train.Checkpoint(model=<pretraining model>, ...) files
    (fine-tuned directories add task.json and best/: see tfcompact.tasks; their checkpoints
    hold the task model)

Files are written to a temporary name and renamed, so a reader never sees half a file.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Optional, Union

from tfcompact.architectures import get_architecture
from tfcompact.configs import ResolvedModel, config_from_dict, get_preset, resolve_model
from tfcompact.errors import CheckpointError, ConfigError
from tfcompact.files import atomic_write_bytes, atomic_write_text

FORMAT_VERSION = 1
CONFIG_FILE = "tfcompact.json"
VOCAB_FILE = "vocab.txt"
CHECKPOINT_DIR = "checkpoints"

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class ModelDirInfo:
    """What a model directory holds: architecture, config, preset name, files."""

    arch: str
    config: object
    preset: Optional[str]
    vocab_path: Optional[str]
    latest_checkpoint: Optional[str]
    sentence_head: Optional[str] = None
    path: Optional[str] = None

    @property
    def checkpoint_dir(self) -> str:
        return os.path.join(self.path or "", CHECKPOINT_DIR)


def _gfile():
    """tf.io.gfile: one API for local paths, gs:// (TPU runs) and every filesystem TF knows."""
    import tensorflow as tf

    return tf.io.gfile


def _join(*parts: str) -> str:
    """Path join that keeps URL schemes intact (os.path.join works for gs://a/b as well)."""
    return os.path.join(*parts)


def _atomic_copy(src: str, dst: str) -> None:
    with _gfile().GFile(src, "rb") as fh:
        data = fh.read()
    atomic_write_bytes(dst, data)


def _same_file(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are one local file (copying it onto itself would be a no-op)."""
    if "://" in a or "://" in b:
        return a == b
    return os.path.exists(b) and os.path.samefile(a, b)


def write_model_dir_config(
    dir: PathLike,
    arch: str,
    config,
    preset: Optional[str] = None,
    vocab_path: Optional[PathLike] = None,
    sentence_head: Optional[str] = None,
) -> str:
    """Create ``dir`` if needed and write ``tfcompact.json`` (and copy the vocab to ``vocab.txt``).

    Returns the path of ``tfcompact.json``. The config must be the architecture's dataclass;
    a preset must belong to the same architecture.
    """
    dir = os.fspath(dir)
    check_model(arch, config, preset, sentence_head)
    gfile = _gfile()
    gfile.makedirs(dir)
    if vocab_path is not None:
        vocab_path = os.fspath(vocab_path)
        if not gfile.exists(vocab_path) or gfile.isdir(vocab_path):
            raise ConfigError(f"{vocab_path}: vocabulary file not found")
        target = _join(dir, VOCAB_FILE)
        if not _same_file(vocab_path, target):
            _atomic_copy(vocab_path, target)
    payload = {"format_version": FORMAT_VERSION, "arch": arch, "preset": preset, "config": config.to_dict()}
    if sentence_head is not None:
        payload["sentence_head"] = sentence_head
    path = _join(dir, CONFIG_FILE)
    atomic_write_text(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return path


def check_model(arch: str, config, preset: Optional[str], sentence_head: Optional[str],
                where: str = "") -> ResolvedModel:
    """The model a directory records, checked: a known architecture, its config class, a preset
    of that architecture, a valid sentence head (None: the preset's or architecture's). Error
    messages start with `where` (e.g. the file) when given."""
    prefix = f"{where}: " if where else ""
    get_architecture(arch, where=f"{prefix}arch")
    if preset is not None and get_preset(preset).arch != arch:
        raise ConfigError(f"{prefix}preset: {preset!r} is a {get_preset(preset).arch} preset, not {arch}")
    return resolve_model(preset or arch, config, sentence_head, where=where)


def _not_a_model_dir_hint(dir: str) -> str:
    """What `dir` looks like instead, for the error that it is not a model directory."""
    gfile = _gfile()
    parent = os.path.dirname(os.path.normpath(dir))
    if os.path.basename(os.path.normpath(dir)) == CHECKPOINT_DIR and gfile.exists(_join(parent, CONFIG_FILE)):
        return f"{dir} is the checkpoints folder of a model directory: pass --model_dir {parent}"
    if gfile.isdir(dir) and any(n.endswith(".index") for n in gfile.listdir(dir)):
        return (f"{dir} holds a TF1 checkpoint, not a model directory: make one from it with "
                "`tfcompact import-tf1`")
    return f"is {dir} a tfcompact model directory?"


def checkpoint_state(dir: PathLike) -> Optional[str]:
    """The checkpoint prefix ``<dir>/checkpoints/checkpoint`` names as the latest, whether or
    not its files exist (None when there is no such file). An unreadable state file is a
    CheckpointError naming it, not a warning and a silent None as in `tf.train.latest_checkpoint`.
    """
    from google.protobuf import text_format
    from tensorflow.python.training.checkpoint_state_pb2 import CheckpointState

    ckpt_dir = _join(os.fspath(dir), CHECKPOINT_DIR)
    path = _join(ckpt_dir, "checkpoint")
    gfile = _gfile()
    if not gfile.exists(path):
        return None
    try:
        with gfile.GFile(path, "rb") as fh:
            state = text_format.Parse(fh.read().decode("utf-8"), CheckpointState())
    except (UnicodeDecodeError, text_format.ParseError) as e:
        raise CheckpointError(f"{path}: damaged checkpoint state file ({str(e).splitlines()[0]}); "
                              "pass --checkpoint PREFIX to choose a checkpoint") from None
    if not state.model_checkpoint_path:
        raise CheckpointError(f"{path}: damaged checkpoint state file (no model_checkpoint_path); "
                              "pass --checkpoint PREFIX to choose a checkpoint")
    prefix = state.model_checkpoint_path
    return prefix if os.path.isabs(prefix) or "://" in prefix else _join(ckpt_dir, prefix)


def latest_checkpoint(dir: PathLike) -> Optional[str]:
    """The newest checkpoint prefix under ``<dir>/checkpoints`` (None when there is none, or
    when the state file is damaged or names a checkpoint whose index is gone)."""
    try:
        prefix = checkpoint_state(dir)
    except CheckpointError:
        return None
    return prefix if prefix and _gfile().exists(prefix + ".index") else None


def read_model_dir(dir: PathLike) -> ModelDirInfo:
    """Read and check ``tfcompact.json``; find ``vocab.txt`` and the latest checkpoint."""
    dir = os.fspath(dir)
    gfile = _gfile()
    path = _join(dir, CONFIG_FILE)
    if not gfile.exists(path) or gfile.isdir(path):
        raise ConfigError(f"{path}: not found; {_not_a_model_dir_hint(dir)}")
    try:
        with gfile.GFile(path, "rb") as fh:
            d = json.loads(fh.read().decode("utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a text file (byte {e.start} is not UTF-8); expected the "
                          "JSON a training run or `tfcompact import-tf1` writes") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    for key in ("format_version", "arch", "config"):
        if key not in d:
            raise ConfigError(f"{path}: field '{key}': missing")
    if d["format_version"] != FORMAT_VERSION:
        raise ConfigError(f"{path}: field 'format_version': expected {FORMAT_VERSION}, got {d['format_version']!r}")
    arch, preset, sentence_head = d["arch"], d.get("preset"), d.get("sentence_head")
    get_architecture(arch, where=f"{path}: field 'arch'")
    config = config_from_dict(arch, d["config"], source=f"{path} (config)")
    check_model(arch, config, preset, sentence_head, where=path)
    vocab = _join(dir, VOCAB_FILE)
    return ModelDirInfo(
        arch=arch,
        config=config,
        preset=preset,
        vocab_path=vocab if gfile.exists(vocab) and not gfile.isdir(vocab) else None,
        latest_checkpoint=latest_checkpoint(dir),
        sentence_head=sentence_head,
        path=dir,
    )


def build_from_info(info: ModelDirInfo):
    """The (untrained) pretraining model a model directory describes (its sentence head, else
    the preset's, else the architecture's)."""
    from tfcompact.models import build_pretraining_model

    return build_pretraining_model(info.preset or info.arch, info.config, sentence_head=info.sentence_head)


def checkpoint_model_variable_count(prefix: str, key: str = "model") -> int:
    """How many variables the object ``key`` of a tf.train.Checkpoint holds (from its object graph)."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    reader = _checkpoint_reader(prefix)
    if not reader.has_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"):
        raise CheckpointError(f"{prefix}: a TF1 (name-based) checkpoint, not a tfcompact training "
                              "checkpoint; make a model directory from it with `tfcompact import-tf1`")
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    try:
        graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    except Exception as e:  # DecodeError, DataLossError: the object graph itself is damaged
        raise CheckpointError(f"{prefix}: damaged checkpoint ({_first_line(e)})") from None
    roots = [c.node_id for c in graph.nodes[0].children if c.local_name == key]
    if not roots:
        raise CheckpointError(f"{prefix}: the checkpoint has no '{key}' object")
    seen, stack, count = set(), roots, 0
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if any(a.name == "VARIABLE_VALUE" for a in graph.nodes[node].attributes):
            count += 1
        stack.extend(c.node_id for c in graph.nodes[node].children)
    return count


def _first_line(e: BaseException) -> str:
    msg = (getattr(e, "message", None) or str(e)).strip()
    return msg.splitlines()[0] if msg else type(e).__name__


def _checkpoint_reader(prefix: str):
    """A reader of the prefix itself (tf.train.load_checkpoint would first ask whether the
    prefix is a directory, which some filesystems (ram://) answer yes for any path prefix)."""
    import tensorflow as tf

    try:
        return tf.compat.v1.train.NewCheckpointReader(prefix)
    except (tf.errors.OpError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{prefix}: cannot read checkpoint index ({_first_line(e)})") from None


def verify_checkpoint(prefix: str) -> None:
    """Read every tensor of a checkpoint once: a short data file or a flipped bit (checksum
    mismatch) becomes a CheckpointError naming the tensor, before anything is restored from it.
    A restore alone does not look at tensors it does not load (e.g. optimizer slots)."""
    import tensorflow as tf

    reader = _checkpoint_reader(prefix)
    for name in sorted(reader.get_variable_to_shape_map()):
        try:
            reader.get_tensor(name)
        except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as e:
            # a short data file raises IndexError("Read less bytes than requested"), a flipped
            # bit DataLossError("Checksum does not match")
            raise CheckpointError(f"{prefix}: damaged checkpoint: cannot read {name} "
                                  f"({_first_line(e)})") from None


def load_pretraining_model(dir: PathLike, checkpoint: Optional[str] = None):
    """Build the directory's pretraining model and restore its latest (or the given) checkpoint.

    Only the ``model`` object is restored (optimizer state and step are ignored), but every
    tensor of the checkpoint is read once to verify it; every model variable must be found in
    the checkpoint and the checkpoint's model must have no more, else CheckpointError.
    """
    info = read_model_dir(dir)
    prefix = checkpoint or info.latest_checkpoint
    if prefix is None:
        raise CheckpointError(f"{os.path.join(os.fspath(dir), CHECKPOINT_DIR)}: no checkpoint found")
    config_file = os.path.join(os.fspath(dir), CONFIG_FILE)
    verify_checkpoint(prefix)
    stored = checkpoint_model_variable_count(prefix)
    model = build_from_info(info)
    expected = len({id(v) for v in model.weights})
    if stored != expected:
        raise CheckpointError(f"{prefix}: the checkpoint's model has {stored} variables but the {info.arch} "
                              f"model in {config_file} has {expected}")
    restore_model(model, prefix, f"the {info.arch} model in {config_file}")
    return model


def restore_model(model, prefix: str, what: str) -> None:
    """Restore only `model` from a training checkpoint (optimizer and step are left alone);
    every model variable must be found, else a one-line CheckpointError naming `what`."""
    import tensorflow as tf

    try:
        status = tf.train.Checkpoint(model=model).restore(prefix)
        status.expect_partial()  # optimizer and step are not restored: no warnings about them
        status.assert_existing_objects_matched()
    except tf.errors.OpError as e:
        raise CheckpointError(f"{prefix}: cannot read checkpoint: {_first_line(e)}") from None
    except (AssertionError, ValueError) as e:
        # ValueError: a variable of another shape ("Received incompatible tensor with shape ...")
        raise CheckpointError(f"{prefix}: checkpoint does not match {what}: "
                              f"{_first_line(e)}") from None


def load_task_model(dir: PathLike, checkpoint: Optional[str] = None,
                    backbone_outputs: bool = False):
    """A fine-tuned model directory's task model with its best checkpoint (``best/``, or the
    given prefix) restored: (task model, TaskSpec, ModelDirInfo). ``backbone_outputs`` adds
    the backbone's hidden states and attention scores to the outputs (a distillation teacher)."""
    import tensorflow as tf

    from tfcompact.models import build_backbone
    from tfcompact.models.tasks import build_task_model
    from tfcompact.tasks import BEST_DIR, read_task_spec

    dir = os.fspath(dir)
    info = read_model_dir(dir)
    spec = read_task_spec(dir)
    best = _join(dir, BEST_DIR)
    prefix = checkpoint or (tf.train.latest_checkpoint(best) if _gfile().isdir(best) else None)
    if prefix is None:
        raise CheckpointError(f"{best}: no checkpoint; the fine-tuning run saved none yet "
                              f"(it saves one at every evaluation that improves the dev "
                              f"{spec.metric})")
    verify_checkpoint(prefix)
    backbone = build_backbone(info.preset or info.arch, info.config)
    model = build_task_model(backbone, info.arch, info.config, spec.kind, spec.num_labels,
                             backbone_outputs=backbone_outputs)
    restore_model(model, prefix, f"the {spec.kind} model of {_join(dir, CONFIG_FILE)} and "
                                 f"task.json")
    return model, spec, info
