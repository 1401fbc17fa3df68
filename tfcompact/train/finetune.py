"""`tfcompact finetune`: one task experiment from config to fine-tuned model directory.

The driver reads as data → build → restore → loop → summarise, on the pretraining machinery:
the same strategy resolution (TPU / multi-GPU / CPU replicas), the same compiled `TrainLoop`
(many steps per call, restart-proof seeds, NaN guard), the same `RunCheckpoints` (verified
resume after a kill), TensorBoard scalars and `summary.json`.

- data: the train/dev/test splits read and encoded (`train.task_predict.read_split`); labels
  come from the training split, an unseen label in dev/test is an error;
- build: the backbone from a model directory (pretraining run or `import-tf1`) or a preset
  (random initialisation), the task head, AdamW with linear warm-up/decay and optional
  layer-wise learning-rate decay;
- loop: evaluation on dev every epoch (or `train.eval_every` steps) with the official metric;
  the best checkpoint by `task.metric` is kept in `<model_dir>/best/`; optional early stopping;
- summarise: the test split (when given) scored at the best checkpoint, `summary.json`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any

import keras
import tensorflow as tf

from tfcompact import modeldir
from tfcompact.errors import ConfigError, UserError
from tfcompact.files import atomic_write_text, read_bytes
from tfcompact.inputs.task_features import task_dataset
from tfcompact.inputs.task_readers import collect_labels, describe_counts
from tfcompact.metrics import format_scores
from tfcompact.models import build_backbone, get_backbone
from tfcompact.models.tasks import build_task_model, task_backbone, task_outputs_view
from tfcompact.objectives.tasks import TASK_LOSSES, task_objective
from tfcompact.optim import create_optimizer
from tfcompact.optim.schedules import layerwise_lr_decay_multipliers
from tfcompact.tasks import (BEST_DIR, TASK_FILE, TaskOptions, TaskSpec, is_task_dir,
                             read_task_spec, write_task_spec)
from tfcompact.text.tokenizer import FullTokenizer
from tfcompact.train import summaries
from tfcompact.train.checkpointing import NonFiniteWeightsError, RunCheckpoints
from tfcompact.train.distill import (build_distillation, check_same_vocab, prepare_teacher,
                                     teacher_vocab_of)
from tfcompact.train.loop import TrainLoop
from tfcompact.train.preflight import check_model_dir_writable, check_resume_config
from tfcompact.train.pretrain import (RunOptions, precision_and_workdir,
                                     with_resolved_precision)
from tfcompact.train.strategy import StrategyInfo, is_chief, resolve_strategy
from tfcompact.train.task_experiment import FinetuneExperiment, dump_finetune_experiment
from tfcompact.train.task_predict import (Split, evaluate_split, predict_outputs, read_examples_of,
                                          read_split, write_predictions)

EXPERIMENT_FILE = "experiment.yaml"
EVALS_FILE = "evals.json"
BEST_FILE = "best.json"


# ------------------------------------------------------------------------------ the backbone

@dataclasses.dataclass
class Backbone:
    """Where the backbone comes from: architecture, config, preset, vocabulary, weights."""

    arch: str
    config: Any
    preset: str | None
    vocab: str
    init_dir: str | None  # a model directory whose weights are loaded; None: random init
    init_from_task: bool = False  # init_dir is a fine-tuned directory (task distillation stage 2)


def resolve_backbone(exp: FinetuneExperiment) -> Backbone:
    """The backbone of `exp.model`, checked before anything is built."""
    m = exp.model
    if m.init:
        from_task = is_task_dir(m.init)
        if from_task and exp.distillation is None:
            raise ConfigError(f"{exp.source}: model.init {m.init} is a fine-tuned model directory "
                              f"({TASK_FILE}); expected a pretraining run or `tfcompact "
                              f"import-tf1` output")
        info = modeldir.read_model_dir(m.init)
        if info.latest_checkpoint is None:
            raise ConfigError(f"{exp.source}: model.init {m.init}: the model directory has no "
                              f"checkpoint under {info.checkpoint_dir}")
        if info.vocab_path is None:
            raise ConfigError(f"{exp.source}: model.init {m.init}: no {modeldir.VOCAB_FILE} in "
                              f"the model directory")
        return Backbone(info.arch, info.config, info.preset, info.vocab_path,
                        None if m.random_init else m.init, from_task)
    from tfcompact.configs import config_from_json_file, resolve_model

    config = config_from_json_file(m.arch, m.config_file) if m.config_file else None
    resolved = resolve_model(m.preset or m.arch, config, where=f"{exp.source}: model")
    if m.overrides:
        resolved = resolved.with_overrides(m.overrides, where=f"{exp.source}: model.overrides")
    if not tf.io.gfile.exists(m.vocab):
        raise ConfigError(f"{exp.source}: model.vocab {m.vocab}: file not found")
    return Backbone(resolved.arch, resolved.config, resolved.preset_name, m.vocab, None)


def build_backbone_model(b: Backbone) -> keras.Model:
    """The backbone with the init directory's weights (verified), or randomly initialised."""
    if b.init_dir is None:
        return build_backbone(b.preset or b.arch, b.config)
    if b.init_from_task:  # a previous task-distillation stage: its last run checkpoint
        model, _, _ = modeldir.load_task_model(b.init_dir, modeldir.latest_checkpoint(b.init_dir))
        return task_backbone(model)
    return get_backbone(modeldir.load_pretraining_model(b.init_dir))


# ------------------------------------------------------------------------------ data

@dataclasses.dataclass
class TaskData:
    spec: TaskSpec
    train: Split
    dev: Split | None
    test: Split | None


def task_spec(exp: FinetuneExperiment, labels: list) -> TaskSpec:
    """The task.json of this experiment: its reading/sizing options, kind, labels and name."""
    t = exp.task
    options = {f.name: getattr(t, f.name) for f in dataclasses.fields(TaskOptions)}
    return TaskSpec(kind=t.kind, labels=list(labels), name=exp.name, **options)


def load_task_data(exp: FinetuneExperiment, tokenizer: FullTokenizer, log) -> TaskData:
    """Read and encode the splits; labels from the training split (or `task.labels`)."""
    t = exp.task
    read = read_examples_of(task_spec(exp, t.labels or ["?"]), t.train)
    labels = list(t.labels) or ([] if t.kind == "span" else collect_labels(read[0], t.kind))
    spec = dataclasses.replace(task_spec(exp, labels), text_pair=t.kind == "classification" and any(
        e.text_b is not None for e in read[0]))
    train = read_split(spec, t.train, tokenizer, is_training=True, read=read)
    dev = read_split(spec, t.dev, tokenizer) if t.dev else None
    test = read_split(spec, t.test, tokenizer) if t.test else None
    for name, split in (("train", train), ("dev", dev), ("test", test)):
        if split is not None:
            rows = len(split.encoded.features["input_ids"])
            log(f"{name}: {len(split.examples)} examples -> {rows} features ({split.path})")
            if split.counts:
                log(describe_counts(split.path, split.counts))
    if t.kind != "span":
        log(f"labels ({len(labels)}): {', '.join(labels[:20])}{' ...' if len(labels) > 20 else ''}")
    return TaskData(spec, train, dev, test)


def check_task_resume(model_dir: str, spec: TaskSpec) -> None:
    """A model directory whose checkpoints were written for another task (kind, labels,
    sequence length) is refused before anything is built or rewritten."""
    if not tf.io.gfile.isdir(os.path.join(model_dir, modeldir.CHECKPOINT_DIR)) or \
            not is_task_dir(model_dir):
        return
    old = read_task_spec(model_dir)
    path = os.path.join(model_dir, TASK_FILE)
    for field in ("kind", "labels", "max_seq_length"):
        if getattr(old, field) != getattr(spec, field):
            raise ConfigError(f"{path}: this run's task differs from the one that wrote the "
                              f"checkpoints ({field} {getattr(old, field)!r} -> "
                              f"{getattr(spec, field)!r}); use a new train.model_dir")


def check_sequence_fits(exp: FinetuneExperiment, backbone: Backbone) -> None:
    positions = backbone.config.max_position_embeddings
    if exp.task.max_seq_length > positions:
        raise ConfigError(f"{exp.source}: 'task.max_seq_length' {exp.task.max_seq_length} exceeds "
                          f"the model's max_position_embeddings {positions}")


# ------------------------------------------------------------------------------ schedule

@dataclasses.dataclass(frozen=True)
class Schedule:
    total_steps: int
    steps_per_epoch: int
    eval_every: int
    warmup_steps: int
    checkpoint_every: int


def make_schedule(exp: FinetuneExperiment, train_rows: int) -> Schedule:
    t = exp.train
    per_epoch = train_rows // t.batch_size
    if per_epoch == 0:
        raise ConfigError(f"{exp.source}: train.batch_size {t.batch_size} is larger than the "
                          f"{train_rows} training features: lower it")
    total = t.total_steps or max(1, math.ceil(t.epochs * per_epoch))
    eval_every = t.eval_every or per_epoch
    return Schedule(total, per_epoch, eval_every, int(exp.optimizer.warmup_ratio * total),
                    t.checkpoint_every or eval_every)


def make_optimizer(exp: FinetuneExperiment, schedule: Schedule, num_layers: int):
    o = exp.optimizer
    multipliers = None
    if o.layerwise_lr_decay < 1.0:
        multipliers = layerwise_lr_decay_multipliers(num_layers, o.layerwise_lr_decay)
    return create_optimizer(
        "adamw", o.learning_rate, schedule.warmup_steps, schedule.total_steps,
        o.weight_decay_rate, beta_1=o.beta_1, beta_2=o.beta_2, epsilon=o.epsilon,
        global_clipnorm=o.clip_norm, learning_rate_multipliers=multipliers)


# ------------------------------------------------------------------------------ build

@dataclasses.dataclass
class TaskRun:
    """What the driver built: model, loop, checkpoints (run and best), data and schedule."""

    exp: FinetuneExperiment
    info: StrategyInfo
    backbone: Backbone
    data: TaskData
    schedule: Schedule
    model: Any
    loop: TrainLoop
    checkpoints: RunCheckpoints
    best: tf.train.CheckpointManager
    chief: bool
    log: Any


def element_spec(spec: TaskSpec, features: dict, per_replica_batch: int) -> dict:
    return {k: tf.TensorSpec([per_replica_batch] + list(v.shape[1:]), tf.as_dtype(v.dtype))
            for k, v in features.items()}


def _task_models(exp: FinetuneExperiment, backbone: Backbone, spec: TaskSpec, total_steps: int,
                 log):
    """(model trained, its task-outputs view, frozen teacher or None, loss function, whether
    it returns replica shares, distillation projections or None); in the strategy's scope."""
    encoder = build_backbone_model(backbone)
    distilling = exp.distillation is not None
    trained = build_task_model(encoder, backbone.arch, backbone.config, spec.kind,
                               spec.num_labels, backbone_outputs=distilling)
    if not distilling:
        return trained, trained, None, task_objective(spec.kind, spec.num_labels), True, None
    teacher, _, _ = modeldir.load_task_model(exp.distillation.teacher, backbone_outputs=True)
    teacher.trainable = False
    teacher = prepare_teacher(exp.distillation, teacher, backbone.vocab,
                              teacher_vocab_of(exp.distillation.teacher), log)
    loss_of = TASK_LOSSES[spec.kind]
    d = build_distillation(exp.distillation, trained, teacher, total_steps=total_steps,
                           hard_loss=lambda o, b: loss_of(o, b, cross_replica=False),
                           source=exp.source)
    return (trained, task_outputs_view(trained, spec.kind), teacher, d.loss_fn, False,
            d.projections)


TEACHER_FEATURE = "teacher_"  # prefix of the precomputed teacher logits in the batch


def precompute_teacher_logits(info: StrategyInfo, teacher, spec: TaskSpec, data: TaskData,
                              batch_size: int, loss_fn, log):
    """Run the teacher once over the training features and add its logits to them (keys
    `teacher_<output>`); the loss then reads the teacher's logits from the batch."""
    start = time.time()
    logits = predict_outputs(info.strategy, task_outputs_view(teacher, spec.kind),
                             data.train.encoded.features, batch_size)
    for name, values in logits.items():
        data.train.encoded.features[TEACHER_FEATURE + name] = values.astype("float32")
    log(f"teacher logits precomputed for {len(next(iter(logits.values())))} training features "
        f"in {time.time() - start:.0f}s")

    def from_batch(outputs, batch, teacher_outputs, step):
        return loss_fn(outputs, batch, {n: batch[TEACHER_FEATURE + n] for n in logits}, step)

    return from_batch


def build_task_run(exp: FinetuneExperiment, info: StrategyInfo, backbone: Backbone,
                   data: TaskData, log, write_dir: str | None) -> TaskRun:
    schedule = make_schedule(exp, len(data.train.encoded.features["input_ids"]))
    t = exp.train
    with info.strategy.scope():
        trained, model, teacher, loss_fn, share, projections = _task_models(
            exp, backbone, data.spec, schedule.total_steps, log)
        optimizer = make_optimizer(exp, schedule, backbone.config.num_hidden_layers)
    if teacher is not None and exp.distillation.teacher_logits == "precomputed":
        loss_fn = precompute_teacher_logits(info, teacher, data.spec, data,
                                            t.eval_batch_size or t.batch_size, loss_fn, log)
        teacher = None
    loop = TrainLoop(info.strategy, trained, optimizer, loss_fn,
                     element_spec(data.spec, data.train.encoded.features,
                                  t.batch_size // info.num_replicas),
                     seed=t.seed, jit_compile=t.jit_compile, teacher=teacher,
                     max_nonfinite_steps=t.max_nonfinite_steps, loss_is_replica_share=share,
                     auxiliary=projections)
    checkpoints = RunCheckpoints(t.model_dir, model=model, optimizer=optimizer, step=loop.step,
                                 nonfinite_in_a_row=loop.nonfinite_in_a_row,
                                 keep=t.keep_checkpoints, write_dir=write_dir, log=log,
                                 auxiliary=projections)
    best = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                      os.path.join(write_dir or t.model_dir, BEST_DIR),
                                      max_to_keep=1)
    return TaskRun(exp, info, backbone, data, schedule, model, loop, checkpoints, best,
                   write_dir is None, log)


def check_teacher(exp: FinetuneExperiment, backbone: Backbone, spec: TaskSpec) -> None:
    """The fine-tuned teacher: a task directory of the same kind and labels, same vocabulary."""
    teacher = exp.distillation.teacher
    if not is_task_dir(teacher):
        raise ConfigError(f"{exp.source}: distillation.teacher {teacher} is not a fine-tuned "
                          f"model directory (no {TASK_FILE}); fine-tune the teacher first")
    tspec = read_task_spec(teacher)
    for field in ("kind", "labels"):
        if getattr(tspec, field) != getattr(spec, field):
            raise ConfigError(f"{exp.source}: distillation.teacher {teacher} was fine-tuned for "
                              f"{field} {getattr(tspec, field)!r}, this task has "
                              f"{getattr(spec, field)!r}")
    check_same_vocab(backbone.vocab, teacher_vocab_of(teacher), exp.source,
                     exp.distillation.vocab)


def restore_task_run(run: TaskRun) -> int:
    """Resume from the newest intact run checkpoint (the backbone's initial weights are then
    replaced); (chief) write the model directory's files. Returns the start step."""
    exp, b = run.exp, run.backbone
    if run.chief:
        for path in run.checkpoints.remove_interrupted_saves():
            run.log(f"removed {path}, left by an interrupted save")
    resumed = run.checkpoints.restore_latest()
    step = int(run.loop.step.numpy())
    if resumed:
        run.log(f"resumed from {resumed} at step {step}")
    elif b.init_dir:
        run.log(f"backbone: {b.arch} weights from {b.init_dir}")
    else:
        run.log(f"backbone: {b.preset or b.arch}, randomly initialised"
                f"{' (config of ' + exp.model.init + ')' if exp.model.init else ''}")
    if run.chief:
        modeldir.write_model_dir_config(exp.train.model_dir, b.arch, b.config, preset=b.preset,
                                        vocab_path=b.vocab)
        write_task_spec(exp.train.model_dir, run.data.spec)
        dump_finetune_experiment(exp, os.path.join(exp.train.model_dir, EXPERIMENT_FILE))
    return step


# ------------------------------------------------------------------------------ loop

@dataclasses.dataclass
class Evals:
    """Dev evaluations so far and the best one; kept in `evals.json` so a resumed run knows
    them (entries after the resumed step are dropped: the run repeats them exactly)."""

    metric: str
    history: list = dataclasses.field(default_factory=list)

    @property
    def best(self) -> dict | None:
        scored = [e for e in self.history if self.metric in e]
        return max(scored, key=lambda e: (e[self.metric], -e["step"])) if scored else None

    def since_best(self) -> int:
        best = self.best
        return 0 if best is None else sum(1 for e in self.history if e["step"] > best["step"])

    @classmethod
    def load(cls, model_dir: str, metric: str, step: int) -> "Evals":
        path = os.path.join(model_dir, EVALS_FILE)
        try:
            history = json.loads(read_bytes(path).decode("utf-8"))
        except (OSError, ValueError):
            history = []
        return cls(metric, [e for e in history if isinstance(e, dict) and e.get("step", 1e18) <= step])

    def save(self, model_dir: str) -> None:
        atomic_write_text(os.path.join(model_dir, EVALS_FILE), json.dumps(self.history, indent=1))


def _eval_batch(run: TaskRun) -> int:
    return run.exp.train.eval_batch_size or run.exp.train.batch_size


def evaluate_dev(run: TaskRun, evals: Evals, scalars, step: int) -> bool:
    """Score dev; a new best is saved to best/. True when early stopping says stop."""
    scores, _ = evaluate_split(run.info.strategy, run.model, run.data.spec, run.data.dev,
                               _eval_batch(run))
    previous = evals.best
    evals.history.append({"step": step, **scores})
    scalars.write("dev", step, scores)
    metric = evals.metric
    improved = previous is None or scores[metric] > previous[metric]
    run.log(f"dev at step {step} | {format_scores(scores)}"
            f"{' | new best ' + metric if improved else ''}")
    if improved:
        run.best.save(checkpoint_number=step)
        if run.chief:
            atomic_write_text(os.path.join(run.exp.train.model_dir, BEST_DIR, BEST_FILE),
                              json.dumps({"step": step, "metric": metric, **scores}, indent=1))
    if run.chief:
        evals.save(run.exp.train.model_dir)
    patience = run.exp.train.early_stopping_patience
    return bool(patience) and evals.since_best() >= patience


def _next_stop(step: int, run: TaskRun) -> int:
    s, t = run.schedule, run.exp.train
    stops = [s.total_steps, step + t.steps_per_loop, (step // s.checkpoint_every + 1) * s.checkpoint_every]
    if run.data.dev is not None:
        stops.append((step // s.eval_every + 1) * s.eval_every)
    return min(stops) - step


def train_input(run: TaskRun, start_step: int):
    """The distributed iterator over the training features, positioned after `start_step`."""
    batch, features, seed = run.exp.train.batch_size, run.data.train.encoded.features, run.exp.train.seed

    def dataset_fn(ctx: tf.distribute.InputContext):
        per_replica = ctx.get_per_replica_batch_size(batch)
        # This pipeline feeds batch / pipelines examples a step, per_replica at a time.
        skip = start_step * (batch // ctx.num_input_pipelines) // per_replica
        return task_dataset(features, per_replica, is_training=True, seed=seed,
                            input_context=ctx, skip_batches=skip)

    return iter(run.info.strategy.distribute_datasets_from_function(dataset_fn))


@dataclasses.dataclass
class TaskProgress:
    start_step: int
    step: int
    status: str = "completed"  # or "interrupted" (max_loops), "early_stopped", "nonfinite"
    history: list = dataclasses.field(default_factory=list)
    wall_start: float = dataclasses.field(default_factory=time.time)
    steady_time: float = 0.0
    steady_steps: int = 0


def _train_some(run: TaskRun, it, scalars, progress: TaskProgress, loops: int) -> None:
    t0 = time.time()
    metrics = run.loop.train(it, _next_stop(progress.step, run))
    dt = time.time() - t0
    done = int(run.loop.step.numpy()) - progress.step
    progress.step += done
    if loops > 1:
        progress.steady_time += dt
        progress.steady_steps += done
    metrics["examples_per_second"] = done * run.exp.train.batch_size / dt if dt > 0 else 0.0
    eta = (progress.steady_time / progress.steady_steps * (run.schedule.total_steps - progress.step)
           if progress.steady_steps else float("nan"))
    progress.history.append({"step": progress.step, **metrics})
    scalars.write("train", progress.step, metrics)
    run.log(summaries.progress_line(progress.step, run.schedule.total_steps, metrics, eta))


def _save(run: TaskRun, progress: TaskProgress) -> bool:
    try:
        run.checkpoints.save()
    except NonFiniteWeightsError as e:
        run.log(f"error: {e}")
        progress.status = "nonfinite"
        return False
    return True


def task_loops(run: TaskRun, options: RunOptions, start_step: int) -> tuple[TaskProgress, Evals]:
    """Train to the end of the schedule: dev evaluations (best checkpoint, early stopping) and
    run checkpoints at their intervals."""
    s, model_dir = run.schedule, run.exp.train.model_dir
    progress = TaskProgress(start_step, start_step)
    evals = Evals.load(model_dir, run.data.spec.metric, start_step)
    scalars = summaries.Scalars(model_dir, run.chief)
    it = train_input(run, start_step)
    loops = 0
    while progress.step < s.total_steps:
        if options.max_loops is not None and loops >= options.max_loops:
            progress.status = "interrupted"
            return progress, evals
        loops += 1
        _train_some(run, it, scalars, progress, loops)
        step = progress.step
        if run.loop.stopped_on_nonfinite:
            progress.status = "nonfinite"
            return progress, evals
        stop = False
        if run.data.dev is not None and (step % s.eval_every == 0 or step >= s.total_steps):
            stop = evaluate_dev(run, evals, scalars, step)
        if (step % s.checkpoint_every == 0 or step >= s.total_steps or stop) and \
                not _save(run, progress):
            return progress, evals
        if stop:
            progress.status = "early_stopped"
            run.log(f"early stopping: {evals.since_best()} evaluations without a better dev "
                    f"{evals.metric}")
            break
    if run.data.dev is None:  # no dev split: the final weights are the ones kept
        run.best.save(checkpoint_number=progress.step)
    return progress, evals


# ------------------------------------------------------------------------------ summarise

def score_test(run: TaskRun) -> dict:
    """The test split at the best checkpoint: scores when labelled, predictions written."""
    if run.data.test is None:
        return {}
    latest = run.best.latest_checkpoint
    if latest:
        tf.train.Checkpoint(model=run.model).restore(latest).expect_partial()
    spec, split = run.data.spec, run.data.test
    from tfcompact.train.task_predict import decode, predict_outputs, score

    outputs = predict_outputs(run.info.strategy, run.model, split.encoded.features, _eval_batch(run))
    predictions = decode(spec, split, outputs)
    if run.chief:
        write_predictions(os.path.join(run.exp.train.model_dir, test_predictions_name(spec)),
                          spec, split, predictions)
    if not split.labelled:
        return {}
    scores = score(spec, split, predictions)
    run.log(f"test at the best checkpoint ({latest}) | {format_scores(scores)}")
    return scores


def test_predictions_name(spec: TaskSpec) -> str:
    return {"classification": "test_predictions.tsv" if spec.task_format not in ("jsonl", "clue")
            else "test_predictions.jsonl", "tagging": "test_predictions.txt",
            "span": "test_predictions.json"}[spec.kind]


def summarise(run: TaskRun, progress: TaskProgress, evals: Evals, test: dict) -> dict:
    t, s, p = run.exp.train, run.schedule, progress
    summary = {
        "experiment": run.exp.name, "task": run.data.spec.kind, "status": p.status,
        "arch": run.backbone.arch, "preset": run.backbone.preset, "init": run.backbone.init_dir,
        "seed": t.seed, "step": p.step, "total_steps": s.total_steps,
        "steps_per_epoch": s.steps_per_epoch, "start_step": p.start_step,
        "strategy": run.info.kind, "replicas": run.info.num_replicas, "global_batch": t.batch_size,
        "seconds": time.time() - p.wall_start,
        "examples_per_second": (p.steady_steps * t.batch_size / p.steady_time
                                if p.steady_time else None),
        "metric": evals.metric, "best": evals.best, "dev_history": evals.history,
        "test": test, "train": p.history[-1] if p.history else {}, "history": p.history,
        "best_checkpoint": run.best.latest_checkpoint,
    }
    if run.chief:
        summaries.write_summary(t.model_dir, summary)
    if p.status == "nonfinite":
        raise UserError(f"stopped at step {p.step}: NaN/Inf; lower optimizer.learning_rate")
    return summary


def run_finetuning(exp: FinetuneExperiment, options: RunOptions | None = None) -> dict:
    """Fine-tune `exp` (resuming when its model directory has checkpoints); the summary."""
    options = options or RunOptions()
    if not exp.train.model_dir:
        raise ConfigError(f"{exp.source}: train.model_dir is empty; set it or pass --model_dir")
    info = resolve_strategy(options.tpu, options.cpu_replicas)
    backbone = resolve_backbone(exp)
    for name, size in (("train.batch_size", exp.train.batch_size),
                       ("train.eval_batch_size", exp.train.eval_batch_size)):
        if size % info.num_replicas:
            raise ConfigError(f"{exp.source}: {name} {size} does not split evenly over "
                              f"{info.num_replicas} replicas")
    check_sequence_fits(exp, backbone)
    check_resume_config(exp.train.model_dir, backbone.arch, backbone.config, None)
    check_model_dir_writable(exp.train.model_dir)
    tokenizer = FullTokenizer(backbone.vocab, do_lower_case=exp.task.do_lower_case)
    data = load_task_data(exp, tokenizer, options.log)
    check_task_resume(exp.train.model_dir, data.spec)
    if exp.distillation is not None:
        check_teacher(exp, backbone, data.spec)
    make_schedule(exp, len(data.train.encoded.features["input_ids"]))  # batch vs data, early
    exp = with_resolved_precision(exp, info, options.log)
    with precision_and_workdir(exp.train.precision, is_chief()) as write_dir:
        keras.utils.set_random_seed(exp.train.seed)
        run = build_task_run(exp, info, backbone, data, options.log, write_dir)
        start = restore_task_run(run)
        options.log(f"{data.spec.kind} task: {run.schedule.total_steps} steps "
                    f"({run.schedule.steps_per_epoch} an epoch), batch {exp.train.batch_size}, "
                    f"dev every {run.schedule.eval_every} steps")
        progress, evals = task_loops(run, options, start)
        test = score_test(run) if progress.status in ("completed", "early_stopped") else {}
        return summarise(run, progress, evals, test)


# ------------------------------------------------------------------------------ several seeds

SEEDS_FILE = "seeds.json"


def _numbers(scores: dict) -> dict:
    """The scalar scores (per-type breakdowns left out)."""
    return {k: float(v) for k, v in scores.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def run_seeds(exp: FinetuneExperiment, num_seeds: int, options: RunOptions | None = None
              ) -> dict:
    """Fine-tune with seeds seed, seed+1, ... (each in `<model_dir>/seed_<s>`, each resumable)
    and report max / mean / std of the best dev score and the test score per metric, as the
    Chinese model releases report results. Written to `<model_dir>/seeds.json`."""
    from tfcompact.metrics.seeds import format_seed_table, summarise_seeds

    options = options or RunOptions()
    base_dir, base_seed = exp.train.model_dir, exp.train.seed
    dev, test, runs = [], [], []
    for k in range(num_seeds):
        seed = base_seed + k
        one = dataclasses.replace(exp, train=dataclasses.replace(
            exp.train, seed=seed, model_dir=os.path.join(base_dir, f"seed_{seed}")))
        options.log(f"=== seed {seed} ({k + 1} of {num_seeds}) -> {one.train.model_dir}")
        summary = run_finetuning(one, options)
        runs.append({"seed": seed, "model_dir": one.train.model_dir, "best": summary["best"],
                     "test": summary["test"], "status": summary["status"]})
        best = _numbers(summary["best"] or {})
        best.pop("step", None)
        if best:
            dev.append(best)
        if summary["test"]:
            test.append(_numbers(summary["test"]))
    table = {"dev": summarise_seeds(dev) if dev else {}, "test": summarise_seeds(test) if test else {}}
    result = {"experiment": exp.name, "seeds": [r["seed"] for r in runs], "runs": runs, **table}
    if is_chief():
        tf.io.gfile.makedirs(base_dir)
        atomic_write_text(os.path.join(base_dir, SEEDS_FILE), json.dumps(result, indent=1))
    for split in ("dev", "test"):
        if table[split]:
            options.log(f"{split} over {num_seeds} seeds:\n{format_seed_table(table[split])}")
    return result
