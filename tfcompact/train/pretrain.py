"""`tfcompact pretrain`: one experiment from config to trained model directory.

Order: read the data manifests and resolve the model config (cheap), pick the strategy,
preflight (all before any model is built), then build model + optimizer under the strategy,
resume from `<model_dir>/checkpoints` (or warm start from `init_checkpoint`), and run loops of
`steps_per_loop` steps, logging a progress line, TensorBoard scalars, checkpoints and eval
passes at their intervals, and finally `summary.json`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Mapping

import tensorflow as tf

from tfcompact.errors import ConfigError, DataError, UserError
from tfcompact.files import atomic_write_text
from tfcompact.train.experiment import Experiment, ModelSpec, TeacherSpec, dump_experiment
from tfcompact.train.preflight import Placement, preflight, read_data_manifest
from tfcompact.train.strategy import StrategyInfo, resolve_strategy

SUMMARY_FILE = "summary.json"
EXPERIMENT_FILE = "experiment.yaml"

Log = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


# ------------------------------------------------------------------------------ model config

def resolve_model_config(spec: ModelSpec | TeacherSpec, manifest: Mapping | None,
                         source: str, field: str = "model") -> tuple[str, Any, str | None, str]:
    """(arch, config, preset name or None, sentence head) of a model section."""
    from tfcompact import configs
    from tfcompact.models import DEFAULT_SENTENCE_HEAD

    overrides = dict(getattr(spec, "overrides", {}) or {})
    if spec.preset:
        preset = configs.get_preset(spec.preset)
        if spec.arch and spec.arch != preset.arch:
            raise ConfigError(f"{source}: {field}.arch {spec.arch!r} contradicts preset "
                              f"{spec.preset!r} ({preset.arch})")
        arch, config, head = preset.arch, preset.config, preset.sentence_head
    else:
        arch = spec.arch
        path = spec.config_file
        if not tf.io.gfile.exists(path):
            raise ConfigError(f"{source}: {field}.config_file {path}: file not found")
        config = configs.config_from_json_file(arch, path)
        head = DEFAULT_SENTENCE_HEAD[arch]
    if overrides.get("vocab_size") == "data":
        if manifest is None:
            raise ConfigError(f"{source}: {field}.overrides.vocab_size 'data' needs data.train")
        overrides["vocab_size"] = int(manifest["vocab_size"])
    if overrides:
        valid = {f.name for f in dataclasses.fields(config)}
        for key in overrides:
            if key not in valid:
                raise ConfigError(f"{source}: {field}.overrides.{key}: not a field of "
                                  f"{type(config).__name__}")
        try:
            config = config.replace(**overrides)
        except ConfigError as e:
            raise ConfigError(f"{source}: {field}.overrides: {e}") from None
    preset_name = spec.preset if spec.preset and not overrides else None
    return arch, config, preset_name, head


# ------------------------------------------------------------------------------ loss functions

def pretraining_loss_fn(arch: str):
    """The architecture's pretraining objective (each replica returns its share of the mean)."""
    from tfcompact.objectives.pretraining import pretraining_loss

    def loss_fn(outputs, batch, teacher_outputs, step):
        return pretraining_loss(arch, outputs, batch, cross_replica=True)

    return loss_fn


def distillation_loss_fn(exp: Experiment, student_config, total_steps: int):
    """The distillation objective of `exp.distillation.kind` (student + frozen teacher)."""
    from tfcompact.objectives import distillation as D

    d = exp.distillation
    w = dict(d.weights)
    layers = student_config.num_hidden_layers
    if d.kind == "tinybert_general":
        wa, wh = float(w.pop("attention", 1.0)), float(w.pop("hidden", 1.0))
        _no_extra_weights(exp, w)

        def loss_fn(outputs, batch, teacher_outputs, step):
            attention = D.tinybert_attention_loss(outputs["attention_logits"],
                                                  teacher_outputs["attention_logits"])
            hidden_states = outputs.get("fit_hidden_states", outputs["hidden_states"])
            hidden = D.tinybert_hidden_loss(hidden_states, teacher_outputs["hidden_states"])
            total = wa * attention + wh * hidden
            return total, {"total_loss": total, "attention_loss": attention,
                           "hidden_loss": hidden}

        return loss_fn
    factors = dict(hidden_factor=float(w.pop("hidden", 100.0)),
                   attention_factor=float(w.pop("attention", 1.0)),
                   beta=float(w.pop("beta", 5000.0)), gamma=float(w.pop("gamma", 5.0)))
    if d.kind == "mobilebert_pkt":
        _no_extra_weights(exp, w)
        per_phase = d.steps_per_layer or D.pkt_steps_per_phase(total_steps, layers)

        def loss_fn(outputs, batch, teacher_outputs, step):
            gates = D.pkt_layer_gates(step + 1, layers, per_phase)
            return D.mobilebert_transfer_loss(outputs, teacher_outputs, gates, **factors)

        return loss_fn
    mlm_weight = float(w.pop("mlm", 1.0))
    _no_extra_weights(exp, w)
    ratio = d.ground_truth_ratio

    def loss_fn(outputs, batch, teacher_outputs, step):
        transfer, metrics = D.mobilebert_transfer_loss(outputs, teacher_outputs, None, **factors)
        mlm = D.mobilebert_mlm_distillation_loss(
            outputs["mlm_logits"], teacher_outputs["mlm_logits"], batch["masked_lm_ids"],
            batch["masked_lm_weights"], ground_truth_ratio=ratio)
        from tfcompact.objectives.pretraining import masked_lm_accuracy

        total = transfer + mlm_weight * mlm
        metrics = dict(metrics, total_loss=total, mlm_distillation_loss=mlm,
                       mlm_accuracy=masked_lm_accuracy(outputs["mlm_logits"],
                                                       batch["masked_lm_ids"],
                                                       batch["masked_lm_weights"]))
        return total, metrics

    return loss_fn


def _no_extra_weights(exp: Experiment, remaining: Mapping) -> None:
    if remaining:
        raise ConfigError(f"{exp.source}: distillation.weights: unknown term(s) "
                          f"{', '.join(remaining)} for kind {exp.distillation.kind}")


# ------------------------------------------------------------------------------ helpers

def write_scalar(tag: str, value: float, step: int) -> None:
    """A TensorBoard scalar with TF alone (`tf.summary.scalar` needs the tensorboard package;
    this writes the same event: a float32 tensor tagged for the "scalars" plugin)."""
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step,
                     metadata=metadata.SerializeToString())


def _is_chief() -> bool:
    """Only the first worker writes summaries, model directory files and the summary JSON:
    TF_CONFIG's chief (or worker 0 when there is no chief); on TPU VMs, worker 0."""
    if os.environ.get("TF_CONFIG"):
        tf_config = json.loads(os.environ["TF_CONFIG"])
        task = tf_config.get("task", {})
        if "chief" in tf_config.get("cluster", {}):
            return task.get("type") == "chief"
        return int(task.get("index", 0)) == 0
    return int(os.environ.get("CLOUD_TPU_TASK_ID", os.environ.get("TPU_WORKER_ID", "0")) or 0) == 0


def write_model_dir(model_dir: str, arch: str, config, preset: str | None,
                    vocab: str | None, sentence_head: str | None) -> None:
    """tfcompact.json (+ vocab.txt) via tfcompact.modeldir (tf.io.gfile: local or gs://)."""
    from tfcompact import modeldir

    modeldir.write_model_dir_config(model_dir, arch, config, preset=preset, vocab_path=vocab,
                                    sentence_head=sentence_head)


@contextlib.contextmanager
def _naming_damaged_shards(data: str, manifest: Mapping):
    """A DataLossError while reading becomes one line naming the damaged shard."""
    try:
        yield
    except tf.errors.DataLossError as e:
        from tfcompact.inputs.pretraining import data_loss_error

        raise data_loss_error(data, e, manifest) from None


def save_or_stop(checkpoints, log: Log) -> bool:
    """Save a checkpoint; False (nothing saved) when the weights are no longer finite."""
    from tfcompact.train.checkpointing import NonFiniteWeightsError

    try:
        checkpoints.save()
    except NonFiniteWeightsError as e:
        log(f"error: {e}")
        return False
    return True


def check_resume_config(model_dir: str, arch: str, config, sentence_head: str | None) -> None:
    """A model directory that already holds checkpoints is resumed only with the model that
    wrote them: a changed config (e.g. ALBERT layers 2 -> 3, which shares weights and would
    restore silently) is refused before anything is built or rewritten."""
    from tfcompact import modeldir
    from tfcompact.train.checkpointing import CHECKPOINT_SUBDIR

    path = os.path.join(model_dir, modeldir.CONFIG_FILE)
    ckpt_dir = os.path.join(model_dir, CHECKPOINT_SUBDIR)
    if not (tf.io.gfile.exists(path) and tf.io.gfile.isdir(ckpt_dir)
            and tf.io.gfile.listdir(ckpt_dir)):
        return
    info = modeldir.read_model_dir(model_dir)
    if info.arch != arch:
        raise ConfigError(f"{path}: the checkpoints in {ckpt_dir} are of architecture "
                          f"{info.arch}, this run trains {arch}; use a new train.model_dir")
    old, new = info.config.to_dict(), config.to_dict()
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if (info.sentence_head or None) != (sentence_head or None):
        changed.append(f"sentence_head ({info.sentence_head} -> {sentence_head})")
    if changed:
        first = changed[0]
        detail = first if "(" in first else f"{first} {old.get(first)!r} -> {new.get(first)!r}"
        raise ConfigError(f"{path}: this run's model differs from the one that wrote the "
                          f"checkpoints in {ckpt_dir} ({detail}"
                          f"{f' and {len(changed) - 1} more' if len(changed) > 1 else ''}); "
                          f"resume with the same model or use a new train.model_dir")


def check_model_dir_writable(model_dir: str) -> None:
    """Fail in seconds, in one line, when the model directory cannot be written; creates
    nothing (the probe goes into the nearest existing ancestor and is removed)."""
    target = model_dir.rstrip("/") or "/"
    try:
        while not tf.io.gfile.exists(target) and os.path.dirname(target) not in ("", target):
            target = os.path.dirname(target)
        if tf.io.gfile.exists(target) and not tf.io.gfile.isdir(target):
            raise UserError(f"train.model_dir {model_dir}: cannot write there ({target} is a "
                            f"file)")
        probe = os.path.join(target, f".tfcompact-write-test-{os.getpid()}")
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("ok")
        tf.io.gfile.remove(probe)
    except (tf.errors.OpError, OSError) as e:
        text = getattr(e, "message", None) or str(e)
        reason = text.strip().splitlines()[0] if text.strip() else type(e).__name__
        raise UserError(f"train.model_dir {model_dir}: cannot write there ({reason})") from None


def _default_vocab(exp: Experiment, manifest: Mapping) -> str | None:
    """The vocabulary copied into the model directory: data.vocab, else the data directory's
    vocab.txt (create-data writes it); either must be the one the data was made with."""
    from tfcompact.text.tokenizer import Vocab
    from tfcompact.train.preflight import manifest_dir

    want = manifest.get("vocab_md5")
    if exp.data.vocab:
        if not tf.io.gfile.exists(exp.data.vocab):
            raise ConfigError(f"{exp.source}: data.vocab {exp.data.vocab}: file not found")
        if want and Vocab.load(exp.data.vocab).md5 != want:
            raise ConfigError(f"{exp.source}: data.vocab {exp.data.vocab} is not the vocabulary "
                              f"data.train was made with (md5 differs from its manifest's "
                              f"vocab_md5 {want})")
        return exp.data.vocab
    candidate = os.path.join(manifest_dir(exp.data.train), "vocab.txt")
    if not tf.io.gfile.exists(candidate):
        return None
    return candidate if not want or Vocab.load(candidate).md5 == want else None


def _format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


_SHOWN = ("loss", "mlm_loss", "mlm_accuracy", "sop_accuracy", "nsp_accuracy", "rtd_loss",
          "rtd_accuracy", "rtd_auc", "attention_loss", "hidden_loss",
          "feature_map_transfer_loss", "attention_transfer_loss")


def format_metrics(metrics: Mapping[str, float], keys=_SHOWN) -> str:
    parts = []
    for k in keys:
        if k in metrics:
            parts.append(f"{k} {metrics[k]:.4f}")
    return " | ".join(parts)


# ------------------------------------------------------------------------------ the run

@dataclasses.dataclass
class RunOptions:
    """Command-line choices that are not part of the experiment file."""

    tpu: str | None = None
    cpu_replicas: int = 0
    log: Log = _print
    # For tests: stop (as if killed) after this many loops of this process.
    max_loops: int | None = None
    # Hash every shard against its manifest before training (sizes are always checked).
    verify_data: bool = False


def run_pretraining(exp: Experiment, options: RunOptions | None = None) -> dict:
    """Train `exp` to `train.total_steps` (resuming when checkpoints exist); the summary."""
    options = options or RunOptions()
    log = options.log
    if not exp.train.model_dir:
        raise ConfigError(f"{exp.source}: train.model_dir is empty; set it or pass --model_dir")

    # Strategy first: splitting the CPU into logical devices must precede any TF op.
    info = resolve_strategy(options.tpu, options.cpu_replicas)
    strategy = info.strategy

    # ---- preflight (nothing built yet)
    manifests = {"data.train": read_data_manifest(exp.data.train, "data.train")}
    if exp.data.eval and exp.train.eval_steps:
        manifests["data.eval"] = read_data_manifest(exp.data.eval, "data.eval")
    if options.verify_data:
        from tfcompact.inputs.pretraining import verify_shards

        for field, manifest in manifests.items():
            verify_shards(exp.data.train if field == "data.train" else exp.data.eval, manifest)
        log(f"verified every shard of {', '.join(manifests)} against its manifest (sha256)")
    arch, config, preset_name, sentence_head = resolve_model_config(
        exp.model, manifests["data.train"], exp.source)
    placement = Placement(info.on_tpu, info.num_replicas, info.num_hosts)
    preflight(exp, placement, config, manifests)
    if "data.eval" in manifests:
        needed = exp.train.eval_steps * exp.train.batch_size
        have = int(manifests["data.eval"]["num_instances"])
        if have < needed:
            raise DataError(f"data.eval ({exp.data.eval}): {have} instances, but train.eval_steps "
                            f"{exp.train.eval_steps} x batch {exp.train.batch_size} = {needed}")
    teacher_arch = teacher_config = None
    if exp.distillation is not None:
        teacher_arch, teacher_config, _, _ = resolve_model_config(
            exp.distillation.teacher, manifests["data.train"], exp.source,
            "distillation.teacher")
    if info.kind in ("default", "mirrored") and not tf.config.list_logical_devices("GPU"):
        from tfcompact.train.preflight import available_host_memory, check_memory

        available = available_host_memory()
        if available:
            check_memory(exp, arch, config, info.num_replicas, available / info.num_replicas,
                         "this machine (MemAvailable)",
                         teacher=None if teacher_arch is None else (teacher_arch, teacher_config))
    check_resume_config(exp.train.model_dir, arch, config,
                        None if arch == "electra" else sentence_head)
    check_model_dir_writable(exp.train.model_dir)
    from tfcompact.train.checkpointing import resolve_warm_start

    if exp.train.init_checkpoint:
        resolve_warm_start(exp.train.init_checkpoint, "init_checkpoint")
    if exp.distillation is not None:
        resolve_warm_start(exp.distillation.teacher.checkpoint, "distillation.teacher.checkpoint")
    log(info.describe_batch(exp.train.batch_size))
    if exp.train.gradient_accumulation_steps > 1:
        log(f"gradient accumulation: {exp.train.gradient_accumulation_steps} micro-batches of "
            f"{exp.train.batch_size // exp.train.gradient_accumulation_steps} per optimizer step")

    import keras

    from tfcompact.models import build_pretraining_model
    from tfcompact.optim import create_optimizer
    from tfcompact.train.checkpointing import RunCheckpoints, warm_start
    from tfcompact.train.loop import TrainLoop

    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(exp.train.precision)
    cleanup: list[Callable[[], None]] = []
    try:
        keras.utils.set_random_seed(exp.train.seed)
        chief = _is_chief()
        model_dir = exp.train.model_dir
        with strategy.scope():
            model = build_pretraining_model(preset_name or arch, None if preset_name else config,
                                            sentence_head=None if arch == "electra"
                                            else sentence_head, seed=exp.train.seed)
            teacher = None
            if exp.distillation is not None:
                teacher = build_pretraining_model(teacher_arch, teacher_config, name="teacher")
                warm_start(teacher, exp.distillation.teacher.checkpoint)
                teacher.trainable = False
            o = exp.optimizer
            optimizer = create_optimizer(
                o.name, o.learning_rate, o.warmup_steps, exp.train.total_steps,
                o.weight_decay_rate, end_lr=o.end_learning_rate, power=o.power, beta_1=o.beta_1,
                beta_2=o.beta_2, epsilon=o.epsilon, bias_correction=o.bias_correction,
                global_clipnorm=o.clip_norm)

        from tfcompact.inputs.dynamic_masking import DynamicMaskingConfig
        from tfcompact.inputs.pretraining import pretraining_dataset

        train_manifest = manifests["data.train"]
        vocab = _default_vocab(exp, train_manifest)
        masking = None
        if isinstance(exp.data.dynamic_masking, dict):
            masking = DynamicMaskingConfig.from_manifest(train_manifest, vocab,
                                                         **exp.data.dynamic_masking)
        element_spec = pretraining_dataset(exp.data.train, 1, is_training=False,
                                           manifest=train_manifest,
                                           dynamic_masking=masking).element_spec
        if exp.distillation is None:
            loss_fn, share = pretraining_loss_fn(arch), True
        else:
            loss_fn, share = distillation_loss_fn(exp, config, exp.train.total_steps), False
        loop = TrainLoop(strategy, model, optimizer, loss_fn, element_spec, seed=exp.train.seed,
                         teacher=teacher, jit_compile=exp.train.jit_compile,
                         max_nonfinite_steps=exp.train.max_nonfinite_steps,
                         loss_is_replica_share=share,
                         accumulation_steps=exp.train.gradient_accumulation_steps)

        # Every worker takes part in saving (collectives); only the chief's copy is kept.
        # (a private directory: mkdtemp's 0700 is right for these throwaway copies)
        write_dir = None if chief else tempfile.mkdtemp(prefix="tfcompact-worker-")
        cleanup.append(lambda: shutil.rmtree(write_dir, ignore_errors=True) if write_dir else None)
        checkpoints = RunCheckpoints(model_dir, model=model, optimizer=optimizer, step=loop.step,
                                     nonfinite_in_a_row=loop.nonfinite_in_a_row,
                                     keep=exp.train.keep_checkpoints, write_dir=write_dir,
                                     log=log)
        if chief:
            for path in checkpoints.remove_interrupted_saves():
                log(f"removed {path}, left by an interrupted save")
        resumed = checkpoints.restore_latest()
        if resumed:
            log(f"resumed from {resumed} at step {int(loop.step.numpy())} "
                f"(input position: {int(loop.step.numpy())} batches consumed)")
        elif exp.train.init_checkpoint:
            used = warm_start(model, exp.train.init_checkpoint)
            log(f"warm start: model weights from {used} (optimizer and step start fresh)")
        if chief:
            write_model_dir(model_dir, arch, config, preset_name, vocab,
                            None if arch == "electra" else sentence_head)
            dump_experiment(exp, os.path.join(model_dir, EXPERIMENT_FILE))

        B = exp.train.batch_size
        start_step = int(loop.step.numpy())

        A = exp.train.gradient_accumulation_steps

        def train_fn(ctx: tf.distribute.InputContext):
            # Micro-batches of B / A: `start_step` optimizer steps consumed start_step x B
            # examples, i.e. start_step x A micro-batches.
            per_replica = ctx.get_per_replica_batch_size(B // A)
            skip_records = start_step * (B // ctx.num_input_pipelines)
            # One line per host: on a pod each worker must show its own pipeline id.
            log(f"input pipeline {ctx.input_pipeline_id + 1} of {ctx.num_input_pipelines} on "
                f"this host: {per_replica} examples per replica per micro-batch, "
                f"{skip_records // per_replica} batches skipped to resume")
            return pretraining_dataset(
                exp.data.train, per_replica, is_training=True, manifest=train_manifest,
                input_context=ctx, shuffle_buffer=exp.data.shuffle_buffer, seed=exp.train.seed,
                dynamic_masking=masking, skip_batches=skip_records // per_replica)

        train_iter = iter(strategy.distribute_datasets_from_function(train_fn))

        def eval_pass() -> dict:
            def eval_fn(ctx):
                return pretraining_dataset(
                    exp.data.eval, ctx.get_per_replica_batch_size(B), is_training=False,
                    manifest=manifests["data.eval"], input_context=ctx, seed=exp.train.seed,
                    dynamic_masking=masking)

            it = iter(strategy.distribute_datasets_from_function(eval_fn))
            with _naming_damaged_shards(exp.data.eval, manifests["data.eval"]):
                return loop.evaluate(it, exp.train.eval_steps)

        writers = {}
        if chief:
            tb = os.path.join(model_dir, "tensorboard")
            writers = {"train": tf.summary.create_file_writer(os.path.join(tb, "train")),
                       "eval": tf.summary.create_file_writer(os.path.join(tb, "eval"))}

        def summarize(kind: str, step: int, metrics: Mapping[str, float]) -> None:
            if kind in writers:
                with writers[kind].as_default(step=step):
                    for k, v in metrics.items():
                        write_scalar(k, v, step)
                writers[kind].flush()

        total = exp.train.total_steps
        history: list[dict] = []
        eval_history: list[dict] = []
        wall_start = time.time()
        steady_time, steady_steps = 0.0, 0
        status = "completed"
        loops_run = 0
        step = start_step
        if step >= total:
            log(f"already at step {step} of {total}: nothing to train")
        while step < total:
            if options.max_loops is not None and loops_run >= options.max_loops:
                status = "interrupted"
                break
            boundaries = [total, (step // exp.train.checkpoint_every + 1) * exp.train.checkpoint_every,
                          step + exp.train.steps_per_loop]
            if exp.train.eval_every and exp.train.eval_steps:
                boundaries.append((step // exp.train.eval_every + 1) * exp.train.eval_every)
            n = min(boundaries) - step
            t0 = time.time()
            with _naming_damaged_shards(exp.data.train, train_manifest):
                metrics = loop.train(train_iter, n)
            dt = time.time() - t0
            new_step = int(loop.step.numpy())
            done = new_step - step
            step = new_step
            loops_run += 1
            if loops_run > 1 or done == total:
                steady_time += dt
                steady_steps += done
            metrics["examples_per_second"] = done * B / dt if dt > 0 else 0.0
            # The first loop includes tracing/compilation: no ETA until a steady loop ran.
            eta = steady_time / steady_steps * (total - step) if steady_steps else float("nan")
            history.append({"step": step, **metrics})
            summarize("train", step, metrics)
            log(f"step {step}/{total} | {format_metrics(metrics)} | lr {metrics['learning_rate']:.3g}"
                f" | grad_norm {metrics['gradient_norm']:.3g} | "
                f"{metrics['examples_per_second']:.0f} ex/s | ETA {_format_duration(eta)}")
            if loop.stopped_on_nonfinite:
                status = "nonfinite"
                break
            if (step % exp.train.checkpoint_every == 0 or step >= total) and \
                    not save_or_stop(checkpoints, log):
                status = "nonfinite"
                break
            if (exp.train.eval_steps and exp.train.eval_every and step % exp.train.eval_every == 0
                    and step < total):
                ev = eval_pass()
                eval_history.append({"step": step, **ev})
                summarize("eval", step, ev)
                log(f"eval at step {step} | {format_metrics(ev)}")
        if status == "completed" and exp.train.eval_steps:
            ev = eval_pass()
            eval_history.append({"step": step, **ev})
            summarize("eval", step, ev)
            log(f"eval at step {step} | {format_metrics(ev)}")
        if status == "completed" and not save_or_stop(checkpoints, log):
            status = "nonfinite"
        summary = {
            "experiment": exp.name, "status": status, "arch": arch, "preset": preset_name,
            "step": step, "total_steps": total, "start_step": start_step,
            "strategy": info.kind, "replicas": info.num_replicas, "global_batch": B,
            "per_replica_batch": B // info.num_replicas,
            "seconds": time.time() - wall_start,
            "seconds_per_step": (steady_time / steady_steps) if steady_steps else None,
            "examples_per_second": (steady_steps * B / steady_time) if steady_time else None,
            "checkpoint": checkpoints.latest, "train": history[-1] if history else {},
            "eval": eval_history[-1] if eval_history else {}, "history": history,
            "eval_history": eval_history,
        }
        if chief:
            atomic_write_text(os.path.join(model_dir, SUMMARY_FILE),
                          json.dumps(summary, indent=2, default=float) + "\n")
        if status == "nonfinite":
            raise UserError(
                f"stopped at step {step}: NaN/Inf ({exp.train.max_nonfinite_steps} skipped steps "
                f"in a row, or non-finite weights); last good checkpoint "
                f"{checkpoints.latest or 'none'}; lower optimizer.learning_rate or lengthen "
                f"warm-up")
        return summary
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        for fn in cleanup:
            fn()
