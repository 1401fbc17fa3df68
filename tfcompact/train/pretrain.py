"""`tfcompact pretrain`: one experiment from config to trained model directory.

The driver reads as plan → check → build → restore → loop → summarise:
- plan: the data manifests (read once), the model and teacher configs, the sequence sizes
  from the data (`tfcompact.train.plan`, shared with `tfcompact submit`);
- check: everything that can fail before a model exists (paths, batch split, data against
  the model, memory, the model directory, the checkpoints to start from);
- build: model, teacher, optimizer and the compiled train loop under the strategy;
- restore: the latest intact checkpoint of `<model_dir>/checkpoints`, else a warm start;
- loop: `steps_per_loop` steps at a time, with progress lines, TensorBoard scalars,
  checkpoints and evaluation passes at their intervals;
- summarise: `summary.json` (`tfcompact.train.summaries`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Iterator, Mapping

import keras
import tensorflow as tf

from tfcompact import modeldir
from tfcompact.errors import ConfigError, UserError
from tfcompact.inputs.dynamic_masking import DynamicMaskingConfig
from tfcompact.inputs.manifest import vocab_beside
from tfcompact.inputs.pretraining import (data_loss_error, pretraining_dataset,
                                          pretraining_element_spec, verify_shards)
from tfcompact.models import build_pretraining_model
from tfcompact.objectives.pretraining import pretraining_loss, pretraining_objective
from tfcompact.optim import create_optimizer, pkt_learning_rate_multipliers
from tfcompact.tasks import is_task_dir
from tfcompact.text.tokenizer import Vocab
from tfcompact.train import summaries, utilisation
from tfcompact.train.distill import (build_distillation, check_same_vocab, copy_from_teacher,
                                     prepare_teacher, teacher_vocab_of)
from tfcompact.train.checkpointing import (NonFiniteWeightsError, RunCheckpoints,
                                           resolve_warm_start, warm_start)
from tfcompact.train.experiment import Experiment, dump_experiment
from tfcompact.train.loop import TrainLoop
from tfcompact.train.plan import Plan, check_plan, make_plan
from tfcompact.train.precision import resolve_precision
from tfcompact.train.preflight import (Placement, available_host_memory, check_memory,
                                       check_model_dir_writable, check_resume_config)
from tfcompact.train.strategy import StrategyInfo, is_chief, resolve_strategy

EXPERIMENT_FILE = "experiment.yaml"

Log = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


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


def distillation_of(exp: Experiment, arch: str, model, teacher):
    """The distillation objective of `exp.distillation` for this student and teacher, with the
    student's own pretraining loss as the ground-truth term (call in the strategy's scope)."""
    def hard_loss(outputs, batch):
        return pretraining_loss(arch, outputs, batch, cross_replica=False)

    return build_distillation(exp.distillation, model, teacher, total_steps=exp.train.total_steps,
                              hard_loss=hard_loss, source=exp.source)


def _layerwise_multipliers(exp: Experiment, num_layers: int):
    """MobileBERT's progressive layer-wise learning rates, when asked for."""
    d = exp.distillation
    if d is None or d.layerwise_lr != "progressive":
        return None
    per_phase = d.steps_per_layer or exp.train.total_steps // num_layers
    if per_phase < 1:
        raise ConfigError(f"{exp.source}: distillation.layerwise_lr progressive needs at least one "
                          f"step per layer ({exp.train.total_steps} steps, {num_layers} layers)")
    return pkt_learning_rate_multipliers(per_phase)


# ------------------------------------------------------------------------------ check

def _check_host_memory(plan: Plan, info: StrategyInfo) -> None:
    """On CPU, refuse a batch that cannot fit in this machine's available memory."""
    if info.kind not in ("default", "mirrored") or tf.config.list_logical_devices("GPU"):
        return
    available = available_host_memory()
    if available:
        teacher = None if plan.teacher is None else (plan.teacher.arch, plan.teacher.config)
        check_memory(plan.exp, plan.model.arch, plan.model.config, info.num_replicas,
                     available / info.num_replicas, "this machine (MemAvailable)",
                     teacher=teacher)


def check_before_building(plan: Plan, info: StrategyInfo, options: RunOptions) -> None:
    """Every check that needs no model, cheapest first; one line naming the fault."""
    exp = plan.exp
    if options.verify_data:
        for field, manifest in plan.manifests.items():
            verify_shards(exp.data.train if field == "data.train" else exp.data.eval, manifest)
        options.log(f"verified every shard of {', '.join(plan.manifests)} against its manifest "
                    f"(sha256)")
    check_plan(plan, Placement(info.on_tpu, info.num_replicas, info.num_hosts))
    _check_host_memory(plan, info)
    check_resume_config(exp.train.model_dir, plan.model.arch, plan.model.config,
                        plan.model.sentence_head)
    check_model_dir_writable(exp.train.model_dir)
    if exp.train.init_checkpoint:
        resolve_warm_start(exp.train.init_checkpoint, "init_checkpoint")
    if exp.distillation is not None:
        teacher_dir = exp.distillation.teacher.checkpoint
        if is_task_dir(teacher_dir):
            raise ConfigError(f"{exp.source}: distillation.teacher.checkpoint {teacher_dir} is a "
                              f"fine-tuned model directory; a pretraining stage needs a pretrained "
                              f"teacher (task distillation: a fine-tuning experiment with a "
                              f"distillation section)")
        resolve_warm_start(teacher_dir, "distillation.teacher.checkpoint")
        check_same_vocab(training_vocab(exp, plan.train_manifest), teacher_vocab_of(teacher_dir),
                         exp.source, exp.distillation.vocab)


# ------------------------------------------------------------------------------ build

@dataclasses.dataclass
class Run:
    """What the driver built for a plan."""

    plan: Plan
    info: StrategyInfo
    model: Any
    loop: Any  # tfcompact.train.loop.TrainLoop
    checkpoints: Any  # tfcompact.train.checkpointing.RunCheckpoints
    masking: Any  # DynamicMaskingConfig or None
    vocab: str | None
    chief: bool
    log: Log
    teacher: Any = None  # the frozen teacher of a distillation stage
    throughput: Any = None  # Throughput: model FLOPs per step and the devices' peak


def training_vocab(exp: Experiment, manifest: Mapping) -> str | None:
    """The vocabulary copied into the model directory: data.vocab, else the vocab.txt beside
    the data (create-data writes it); either must be the one the data was made with."""
    want = manifest.get("vocab_md5")
    if not exp.data.vocab:
        return vocab_beside(exp.data.train, manifest)
    if not tf.io.gfile.exists(exp.data.vocab):
        raise ConfigError(f"{exp.source}: data.vocab {exp.data.vocab}: file not found")
    if want and Vocab.load(exp.data.vocab).md5 != want:
        raise ConfigError(f"{exp.source}: data.vocab {exp.data.vocab} is not the vocabulary "
                          f"data.train was made with (md5 differs from its manifest's "
                          f"vocab_md5 {want})")
    return exp.data.vocab


def _dynamic_masking(plan: Plan, vocab: str | None):
    settings = plan.exp.data.dynamic_masking
    if not isinstance(settings, dict):
        return None
    return DynamicMaskingConfig.from_manifest(plan.train_manifest, vocab, **settings)


def _build_models(plan: Plan):
    """(student, frozen teacher or None, optimizer), created in the strategy's scope."""
    exp, m = plan.exp, plan.model
    model = build_pretraining_model(m.preset or m.arch, None if m.preset else m.config,
                                    sentence_head=m.sentence_head, seed=exp.train.seed)
    teacher = None
    if plan.teacher is not None:
        teacher = build_pretraining_model(plan.teacher.arch, plan.teacher.config, name="teacher")
        warm_start(teacher, exp.distillation.teacher.checkpoint, "distillation.teacher.checkpoint")
        teacher.trainable = False
    o = exp.optimizer
    optimizer = create_optimizer(
        o.name, o.learning_rate, o.warmup_steps, exp.train.total_steps, o.weight_decay_rate,
        end_lr=o.end_learning_rate, power=o.power, beta_1=o.beta_1, beta_2=o.beta_2,
        epsilon=o.epsilon, bias_correction=o.bias_correction, global_clipnorm=o.clip_norm,
        learning_rate_multipliers=_layerwise_multipliers(exp, m.config.num_hidden_layers))
    return model, teacher, optimizer


def build_run(plan: Plan, info: StrategyInfo, log: Log, write_dir: str | None) -> Run:
    """Model, teacher, optimizer, train loop and checkpoint manager for `plan`. `write_dir`
    is a private throwaway directory off the chief (every worker takes part in saving)."""
    exp = plan.exp
    vocab = training_vocab(exp, plan.train_manifest)
    with info.strategy.scope():
        model, teacher, optimizer = _build_models(plan)
        distillation = None
        if teacher is not None:
            teacher = prepare_teacher(exp.distillation, teacher, vocab,
                                      teacher_vocab_of(exp.distillation.teacher.checkpoint), log)
            distillation = distillation_of(exp, plan.model.arch, model, teacher)
    masking = _dynamic_masking(plan, vocab)
    micro_batch = exp.train.batch_size // exp.train.gradient_accumulation_steps
    element_spec = pretraining_element_spec(
        plan.train_manifest, micro_batch // info.num_replicas, dynamic_masking=masking)
    if distillation is None:
        loss_fn, share, projections = pretraining_objective(plan.model.arch), True, None
    else:
        loss_fn, share, projections = distillation.loss_fn, False, distillation.projections
        log(f"distillation: {len(distillation.terms)} matches ({', '.join(distillation.terms)})"
            f"{', projections ' + ', '.join(projections.sizes) if projections else ''}")
    loop = TrainLoop(info.strategy, model, optimizer, loss_fn, element_spec, seed=exp.train.seed,
                     teacher=teacher, jit_compile=exp.train.jit_compile,
                     max_nonfinite_steps=exp.train.max_nonfinite_steps,
                     loss_is_replica_share=share,
                     accumulation_steps=exp.train.gradient_accumulation_steps,
                     auxiliary=projections)
    checkpoints = RunCheckpoints(exp.train.model_dir, model=model, optimizer=optimizer,
                                 step=loop.step, nonfinite_in_a_row=loop.nonfinite_in_a_row,
                                 keep=exp.train.keep_checkpoints, write_dir=write_dir, log=log,
                                 auxiliary=projections)
    throughput = measure_throughput(plan, info)
    log(throughput.describe())
    return Run(plan, info, model, loop, checkpoints, masking, vocab, write_dir is None, log,
               teacher, throughput)


# ------------------------------------------------------------------------------ restore

def restore(run: Run) -> int:
    """Resume from the latest intact checkpoint, else warm start; then (chief) write the
    model directory's config, vocabulary and resolved experiment. Returns the start step."""
    exp, m, log = run.plan.exp, run.plan.model, run.log
    if run.chief:
        for path in run.checkpoints.remove_interrupted_saves():
            log(f"removed {path}, left by an interrupted save")
    resumed = run.checkpoints.restore_latest()
    step = int(run.loop.step.numpy())
    if resumed:
        log(f"resumed from {resumed} at step {step} (input position: {step} batches consumed)")
    elif exp.train.init_checkpoint:
        used = warm_start(run.model, exp.train.init_checkpoint)
        log(f"warm start: model weights from {used} (optimizer and step start fresh)")
    elif exp.distillation is not None and exp.distillation.copy_from_teacher:
        copied = copy_from_teacher(run.model, run.teacher)
        log(f"copied {len(copied)} variables outside the encoder from the teacher")
    if run.chief:
        modeldir.write_model_dir_config(exp.train.model_dir, m.arch, m.config, preset=m.preset,
                                        vocab_path=run.vocab, sentence_head=m.sentence_head)
        dump_experiment(exp, os.path.join(exp.train.model_dir, EXPERIMENT_FILE))
    return step


# ------------------------------------------------------------------------------ input

@contextlib.contextmanager
def _naming_damaged_shards(data: str, manifest: Mapping) -> Iterator[None]:
    """A DataLossError while reading becomes one line naming the damaged shard."""
    try:
        yield
    except tf.errors.DataLossError as e:
        raise data_loss_error(data, e, manifest) from None


def train_input(run: Run, start_step: int):
    """The distributed iterator over data.train, positioned after `start_step` steps."""
    exp, log = run.plan.exp, run.log
    batch, micro = exp.train.batch_size, exp.train.gradient_accumulation_steps

    def dataset_fn(ctx: tf.distribute.InputContext):
        # Micro-batches of B / A: `start_step` optimizer steps consumed start_step x B
        # examples, i.e. start_step x A micro-batches.
        per_replica = ctx.get_per_replica_batch_size(batch // micro)
        skip_records = start_step * (batch // ctx.num_input_pipelines)
        # One line per host: on a pod each worker must show its own pipeline id.
        log(f"input pipeline {ctx.input_pipeline_id + 1} of {ctx.num_input_pipelines} on "
            f"this host: {per_replica} examples per replica per micro-batch, "
            f"{skip_records // per_replica} batches skipped to resume")
        return pretraining_dataset(
            exp.data.train, per_replica, is_training=True, manifest=run.plan.train_manifest,
            input_context=ctx, shuffle_buffer=exp.data.shuffle_buffer, seed=exp.train.seed,
            dynamic_masking=run.masking, skip_batches=skip_records // per_replica)

    return iter(run.info.strategy.distribute_datasets_from_function(dataset_fn))


def evaluate(run: Run) -> dict:
    """One pass of `train.eval_steps` batches over data.eval."""
    exp = run.plan.exp
    manifest = run.plan.manifests["data.eval"]

    def dataset_fn(ctx: tf.distribute.InputContext):
        return pretraining_dataset(
            exp.data.eval, ctx.get_per_replica_batch_size(exp.train.batch_size),
            is_training=False, manifest=manifest, input_context=ctx, seed=exp.train.seed,
            dynamic_masking=run.masking)

    it = iter(run.info.strategy.distribute_datasets_from_function(dataset_fn))
    with _naming_damaged_shards(exp.data.eval, manifest):
        return run.loop.evaluate(it, exp.train.eval_steps)


# ------------------------------------------------------------------------------ loop

@dataclasses.dataclass
class Progress:
    """Where the loop got to, what it measured and how it ended."""

    start_step: int
    step: int
    status: str = "completed"  # or "interrupted" (max_loops), "nonfinite"
    history: list = dataclasses.field(default_factory=list)
    eval_history: list = dataclasses.field(default_factory=list)
    wall_start: float = dataclasses.field(default_factory=time.time)
    steady_time: float = 0.0  # loops after the first (which traces and compiles)
    steady_steps: int = 0


def _steps_to_next_stop(step: int, exp: Experiment) -> int:
    """Steps until the end, the next checkpoint, the next evaluation or a full loop."""
    t = exp.train
    stops = [t.total_steps, (step // t.checkpoint_every + 1) * t.checkpoint_every,
             step + t.steps_per_loop]
    if t.eval_every and t.eval_steps:
        stops.append((step // t.eval_every + 1) * t.eval_every)
    return min(stops) - step


def _eval_and_report(run: Run, scalars: summaries.Scalars, progress: Progress) -> None:
    metrics = evaluate(run)
    progress.eval_history.append({"step": progress.step, **metrics})
    scalars.write("eval", progress.step, metrics)
    run.log(f"eval at step {progress.step} | {summaries.format_metrics(metrics)}")


def _save_or_stop(run: Run) -> bool:
    """Save a checkpoint; False (nothing saved) when the weights are no longer finite."""
    try:
        run.checkpoints.save()
    except NonFiniteWeightsError as e:
        run.log(f"error: {e}")
        return False
    return True


def _one_loop(run: Run, it, scalars: summaries.Scalars, progress: Progress, loops: int) -> None:
    """Train up to the next stop and report: progress line, TensorBoard, history."""
    exp, total = run.plan.exp, run.plan.exp.train.total_steps
    t0 = time.time()
    with _naming_damaged_shards(exp.data.train, run.plan.train_manifest):
        metrics = run.loop.train(it, _steps_to_next_stop(progress.step, exp))
    dt = time.time() - t0
    done = int(run.loop.step.numpy()) - progress.step
    progress.step += done
    if loops > 1 or done == total:
        progress.steady_time += dt
        progress.steady_steps += done
    metrics["examples_per_second"] = done * exp.train.batch_size / dt if dt > 0 else 0.0
    if run.throughput is not None and dt > 0:
        metrics.update(run.throughput.metrics(done, dt))
    eta = (progress.steady_time / progress.steady_steps * (total - progress.step)
           if progress.steady_steps else float("nan"))
    progress.history.append({"step": progress.step, **metrics})
    scalars.write("train", progress.step, metrics)
    run.log(summaries.progress_line(progress.step, total, metrics, eta))


def train_loops(run: Run, options: RunOptions, start_step: int) -> Progress:
    """Loops of steps to `train.total_steps`, checkpointing and evaluating on the way."""
    t = run.plan.exp.train
    progress = Progress(start_step, start_step)
    scalars = summaries.Scalars(t.model_dir, run.chief)
    it = train_input(run, start_step)
    if start_step >= t.total_steps:
        run.log(f"already at step {start_step} of {t.total_steps}: nothing to train")
    loops = 0
    while progress.step < t.total_steps:
        if options.max_loops is not None and loops >= options.max_loops:
            progress.status = "interrupted"
            return progress
        loops += 1
        _one_loop(run, it, scalars, progress, loops)
        step = progress.step
        if run.loop.stopped_on_nonfinite or ((step % t.checkpoint_every == 0 or step >= t.total_steps)
                                             and not _save_or_stop(run)):
            progress.status = "nonfinite"
            return progress
        if t.eval_steps and t.eval_every and step % t.eval_every == 0 and step < t.total_steps:
            _eval_and_report(run, scalars, progress)
    if t.eval_steps:
        _eval_and_report(run, scalars, progress)
    if not _save_or_stop(run):
        progress.status = "nonfinite"
    return progress


# ------------------------------------------------------------------------------ summarise

def summarise(run: Run, progress: Progress) -> dict:
    """`summary.json` (chief); a run stopped by NaN/Inf ends in a UserError after writing it."""
    plan, info, p = run.plan, run.info, progress
    t = plan.exp.train
    summary = {
        "experiment": plan.exp.name, "status": p.status, "arch": plan.model.arch,
        "preset": plan.model.preset, "step": p.step, "total_steps": t.total_steps,
        "start_step": p.start_step, "strategy": info.kind, "replicas": info.num_replicas,
        "precision": t.precision,
        "global_batch": t.batch_size, "per_replica_batch": t.batch_size // info.num_replicas,
        "seconds": time.time() - p.wall_start,
        "seconds_per_step": (p.steady_time / p.steady_steps) if p.steady_steps else None,
        **(run.throughput.summary(p.steady_steps, p.steady_time) if run.throughput else {}),
        "examples_per_second": (p.steady_steps * t.batch_size / p.steady_time
                                if p.steady_time else None),
        "checkpoint": run.checkpoints.latest, "train": p.history[-1] if p.history else {},
        "eval": p.eval_history[-1] if p.eval_history else {}, "history": p.history,
        "eval_history": p.eval_history,
    }
    if run.chief:
        summaries.write_summary(t.model_dir, summary)
    if p.status == "nonfinite":
        raise UserError(
            f"stopped at step {p.step}: NaN/Inf ({t.max_nonfinite_steps} skipped steps in a row, "
            f"or non-finite weights); last good checkpoint {run.checkpoints.latest or 'none'}; "
            f"lower optimizer.learning_rate or lengthen warm-up")
    return summary


# ------------------------------------------------------------------------------ the run

@contextlib.contextmanager
def precision_and_workdir(precision: str, chief: bool) -> Iterator[str | None]:
    """The Keras dtype policy for the run (restored after), and off the chief a private
    throwaway directory for its copy of the checkpoints (mkdtemp's 0700 suits it)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    write_dir = None if chief else tempfile.mkdtemp(prefix="tfcompact-worker-")
    try:
        yield write_dir
    finally:
        keras.mixed_precision.set_global_policy(previous)
        if write_dir:
            shutil.rmtree(write_dir, ignore_errors=True)


def with_resolved_precision(exp: Experiment, info: StrategyInfo, log: Log) -> Experiment:
    """`exp` with train.precision resolved for this hardware ("auto" becomes a policy), logged
    with the reason (and a warning for bfloat16 on hardware that would emulate it)."""
    precision = resolve_precision(exp.train.precision, info.on_tpu)
    log(precision.describe())
    if precision.warning:
        log(f"warning: {precision.warning}")
    return dataclasses.replace(exp, train=dataclasses.replace(exp.train,
                                                              precision=precision.policy))


def measure_throughput(plan: Plan, info: StrategyInfo) -> utilisation.Throughput:
    """Model FLOPs of one global step (a distillation step adds the teacher's forward pass)
    and the peak of the devices the run uses, for the utilisation in the logs."""
    exp, m, t = plan.exp, plan.model, plan.teacher
    sizes = dict(batch=exp.train.batch_size, seq_length=exp.data.max_seq_length,
                 num_predictions=exp.data.max_predictions_per_seq)
    if t is None:
        flops = utilisation.train_flops_per_step(m.arch, m.config, sentence_head=m.sentence_head,
                                                 **sizes)
    else:
        flops = utilisation.distillation_flops_per_step(
            m.arch, m.config, t.arch, t.config, sentence_head=m.sentence_head,
            teacher_sentence_head=t.sentence_head, **sizes)
    devices = info.num_replicas if info.on_tpu or tf.config.list_physical_devices("GPU") \
        else info.num_hosts
    return utilisation.run_throughput(flops, info.strategy, exp.train.precision, devices,
                                      exp.tpu.accelerator_type if info.on_tpu else None)


def _log_batch(plan: Plan, info: StrategyInfo, log: Log) -> None:
    t = plan.exp.train
    log(info.describe_batch(t.batch_size))
    if t.gradient_accumulation_steps > 1:
        log(f"gradient accumulation: {t.gradient_accumulation_steps} micro-batches of "
            f"{t.batch_size // t.gradient_accumulation_steps} per optimizer step")


def run_pretraining(exp: Experiment, options: RunOptions | None = None) -> dict:
    """Train `exp` to `train.total_steps` (resuming when checkpoints exist); the summary."""
    options = options or RunOptions()
    if not exp.train.model_dir:
        raise ConfigError(f"{exp.source}: train.model_dir is empty; set it or pass --model_dir")
    # Strategy first: splitting the CPU into logical devices must precede any TF op.
    info = resolve_strategy(options.tpu, options.cpu_replicas)
    exp = with_resolved_precision(exp, info, options.log)
    plan = make_plan(exp)
    check_before_building(plan, info, options)
    _log_batch(plan, info, options.log)
    with precision_and_workdir(plan.exp.train.precision, is_chief()) as write_dir:
        keras.utils.set_random_seed(plan.exp.train.seed)
        run = build_run(plan, info, options.log, write_dir)
        start_step = restore(run)
        return summarise(run, train_loops(run, options, start_step))
