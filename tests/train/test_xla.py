"""Every training step compiles under XLA, traced once; mixed_bfloat16 trains like float32.

On a TPU every step inside `strategy.run` is compiled by XLA: a host-side op or a
data-dependent shape there fails only after someone has paid for the TPU. Here the real
`TrainLoop` runs each training path on the CPU with `jit_compile=True` (the per-replica step
functions become XLA clusters that must compile, or the call fails) for three `train` calls of
different lengths and two `evaluate` passes, and checks: the step functions are XLA-compiled
tf.functions, every function was traced exactly once (a retrace would recompile on the TPU),
the losses are finite and the weights moved.

The second part runs the same loop under the TPU's `mixed_bfloat16` policy from the same
initial weights on the same batches: the losses must stay close to the float32 ones, leave the
objectives in float32, and the variables must stay float32.

Compilation dominates the run time (10-25 CPU-s per path), so each (path, policy) is trained
once per module and the bf16 comparison reuses the float32 runs of part one.
"""
from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from train_helpers import VOCAB_SIZE, make_masked_data, make_unmasked_data
from tfcompact.inputs.dynamic_masking import DynamicMaskingConfig
from tfcompact.inputs.pretraining import pretraining_dataset, read_manifest
from tfcompact.configs import tiny_config
from tfcompact.models import build_pretraining_model
from tfcompact.optim import create_optimizer
from tfcompact.train.experiment import experiment_from_dict, read_yaml_with_base, tpu_configs_dir
from tfcompact.train.loop import TrainLoop
from tfcompact.objectives.pretraining import pretraining_objective
from tfcompact.train.pretrain import distillation_of

pytestmark = pytest.mark.host_xla

SEED = 7
BATCH = 8
STEPS_PER_CALL = (2, 1, 2)  # three train calls of different lengths: one trace for all
TOTAL_STEPS = sum(STEPS_PER_CALL)
EVAL_STEPS = 2
# Tiny shapes: 2 layers, hidden 32, vocab 120, sequence 32 (the data's), batch 8.
TINY = dict(vocab_size=VOCAB_SIZE, num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=64)
# bf16 keeps 8 significant bits: one rounding is off by at most u = 2^-8 = 0.39 %. Through two
# layers a logit collects some ten roundings (embedding sum, projections, attention, FFN, head);
# independent errors add up like a random walk, ~sqrt(10) u = 1.2 % of the logit. A
# cross-entropy (log-sum-exp of the logits minus the label's) moves by at most twice the largest
# logit error, and these barely trained models have logits of order one against losses above
# ln(120) = 4.8 (ELECTRA: MLM + 50 x RTD, each such a cross-entropy): the loss stays well within
# 1 %, also after a few steps on slightly different gradients. A loss computed in bf16 or an
# overflow is for the dtype and finiteness checks to catch, not for this tolerance.
BF16_RTOL = 1e-2


@dataclasses.dataclass(frozen=True)
class Path:
    """One way of training: architecture, objective, input and step structure."""

    arch: str
    sentence_head: str = "none"  # "nsp", "sop" or "none" (ELECTRA)
    distillation: str | None = None
    dynamic_masking: bool = False
    accumulation_steps: int = 1
    evaluate: bool = True


# Dynamic masking is folded into ALBERT's path: the reader's batches have exactly the element
# spec of the pre-masked data (checked below), so the compiled step is the same one, and only
# the input pipeline (host side, never compiled) differs. TinyBERT's eval step is BERT's plus
# fit_dense outputs nobody reads: not compiled a second time.
PATHS = {
    "bert_mlm_nsp": Path("bert", "nsp"),
    "tinybert_mlm_nsp": Path("tinybert", "nsp", evaluate=False),
    "albert_mlm_sop_dynamic_masking": Path("albert", "sop", dynamic_masking=True),
    "mobilebert_mlm_sop": Path("mobilebert", "sop"),
    "electra_rtd": Path("electra"),
    "tinybert_general": Path("tinybert", "nsp", distillation="tinybert_general", evaluate=False),
    "mobilebert_pkt": Path("mobilebert", "nsp", distillation="mobilebert_pkt", evaluate=False),
    "mobilebert_main": Path("mobilebert", "nsp", distillation="mobilebert_main"),
    "bert_gradient_accumulation": Path("bert", "nsp", accumulation_steps=2, evaluate=False),
}
# The float32 run of each architecture that the bf16 comparison starts from.
ARCH_PATHS = {"bert": "bert_mlm_nsp", "albert": "albert_mlm_sop_dynamic_masking",
              "electra": "electra_rtd", "mobilebert": "mobilebert_mlm_sop",
              "tinybert": "tinybert_mlm_nsp"}
# Frozen teachers as in the recipes: TinyBERT learns from a deeper, wider BERT (two teacher
# layers per student layer, through fit_dense), MobileBERT from a BERT of its width and depth.
TEACHERS = {"tinybert_general": dict(num_hidden_layers=4, hidden_size=48, intermediate_size=96),
            "mobilebert_pkt": {}, "mobilebert_main": {}}


def student_config(path: Path):
    extra = {}
    if path.arch in ("albert", "electra"):
        extra["embedding_size"] = 16
    if path.arch == "mobilebert":
        extra.update(embedding_size=32, intra_bottleneck_size=16)
    return tiny_config(path.arch, **{**TINY, **extra})


def distillation_objective(path: Path, model, teacher):
    """The shipped recipe (tpu_configs/distill/<name>.yaml) for this student and teacher:
    (loss function, trained projections or None)."""
    recipe, _ = read_yaml_with_base(tpu_configs_dir() / "distill" / f"{path.distillation}.yaml")
    exp = experiment_from_dict({
        "model": {"preset": "bert_base_zh"}, "data": {"train": "unused"},
        "train": {"total_steps": TOTAL_STEPS},
        "distillation": {**recipe["distillation"],
                         "teacher": {"preset": "bert_base_zh", "checkpoint": "unused"}}})
    d = distillation_of(exp, path.arch, model, teacher)
    return d.loss_fn, d.projections


def recording(loss_fn, seen: dict):
    """The objective unchanged; notes (at trace time) the dtypes going in and coming out."""

    def wrapped(outputs, batch, teacher_outputs, step):
        loss, metrics = loss_fn(outputs, batch, teacher_outputs, step)
        seen["outputs"] = {k: v.dtype for k, v in outputs.items()
                           if isinstance(v, tf.Tensor) and v.dtype.is_floating}
        seen["losses"] = {"loss": loss.dtype, **{k: v.dtype for k, v in metrics.items()}}
        return loss, metrics

    return wrapped


@dataclasses.dataclass
class Run:
    loop: TrainLoop
    iterator: object  # the training iterator
    eval_iterator: object
    paths: list  # trainable variable paths
    initial: list  # trainable values before training
    final: list
    train: list  # metrics of each train call
    eval: list  # metrics of each evaluate pass
    tracing: dict  # tf.function -> tracing count after all calls
    seen: dict
    teacher_unchanged: bool | None = None  # distillation: the teacher stayed frozen


def run_path(path: Path, data: dict, policy: str, jit_compile: bool, initial=None) -> Run:
    """Build the model under `policy` (the previous policy is always restored) and train it."""
    strategy = tf.distribute.get_strategy()
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(SEED)
        config = student_config(path)
        model = build_pretraining_model(path.arch, config, sentence_head=path.sentence_head,
                                        seed=SEED)
        if initial is not None:
            for v, value in zip(model.trainable_variables, initial):
                v.assign(value)
        teacher = None
        if path.distillation:
            teacher = build_pretraining_model(
                "bert", tiny_config("bert", **{**TINY, **TEACHERS[path.distillation]}),
                name="teacher")
            (loss_fn, projections), share = distillation_objective(path, model, teacher), False
            optimizer = create_optimizer("adamw", 1e-3, 0, TOTAL_STEPS)
        else:
            (loss_fn, projections), share = (pretraining_objective(path.arch), None), True
            optimizer = create_optimizer("lamb", 1e-2, 0, TOTAL_STEPS)
        data_dir = data["unmasked" if path.dynamic_masking else "masked"]
        masking = data["masking"] if path.dynamic_masking else None

        def dataset(training: bool, batch: int):
            def fn(ctx):
                return pretraining_dataset(data_dir, ctx.get_per_replica_batch_size(batch),
                                           is_training=training, input_context=ctx, seed=SEED,
                                           shuffle_buffer=16, dynamic_masking=masking)

            return strategy.distribute_datasets_from_function(fn)

        spec = pretraining_dataset(data_dir, 1, is_training=False,
                                   dynamic_masking=masking).element_spec
        seen: dict = {}
        loop = TrainLoop(strategy, model, optimizer, recording(loss_fn, seen), spec, seed=SEED,
                         teacher=teacher, jit_compile=jit_compile, loss_is_replica_share=share,
                         accumulation_steps=path.accumulation_steps, auxiliary=projections)
        before = [v.numpy() for v in model.trainable_variables]
        teacher_before = [] if teacher is None else [v.numpy() for v in teacher.weights]
        iterator = iter(dataset(True, BATCH // path.accumulation_steps))
        train = [loop.train(iterator, n) for n in STEPS_PER_CALL]
        evaluation, eval_iterator = [], None
        if path.evaluate:  # two passes over fresh iterators: still one trace
            for _ in range(2):
                eval_iterator = iter(dataset(False, BATCH))
                evaluation.append(loop.evaluate(eval_iterator, EVAL_STEPS))
        functions = {"_train": loop._train, "_eval": loop._eval,
                     "_replica_train_step": loop._replica_train_step,
                     "_replica_eval_step": loop._replica_eval_step,
                     "_replica_micro_step": loop._replica_micro_step,
                     "_replica_apply_step": loop._replica_apply_step}
        tracing = {k: f.experimental_get_tracing_count() for k, f in functions.items()
                   if isinstance(f, tf.types.experimental.PolymorphicFunction)}
        teacher_unchanged = None if teacher is None else all(
            np.array_equal(a, v.numpy()) for a, v in zip(teacher_before, teacher.weights))
        return Run(loop, iterator, eval_iterator, [v.path for v in model.trainable_variables],
                   before, [v.numpy() for v in model.trainable_variables], train, evaluation,
                   tracing, seen, teacher_unchanged)
    finally:
        keras.mixed_precision.set_global_policy(previous)


class Runs:
    """Each path is trained once per module under float32 with XLA. The bf16 runs start from
    the float32 run's initial weights and read the same batches; they run without XLA (the
    compilation is what part one checks; here it is the arithmetic) and train only."""

    def __init__(self, data: dict):
        self.data = data
        self.done: dict = {}

    def get(self, name: str, policy: str = "float32") -> Run:
        if (name, policy) not in self.done:
            if policy == "float32":
                run = run_path(PATHS[name], self.data, policy, jit_compile=True)
            else:
                path = dataclasses.replace(PATHS[name], evaluate=False)
                run = run_path(path, self.data, policy, jit_compile=False,
                               initial=self.get(name).initial)
            self.done[name, policy] = run
        return self.done[name, policy]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    masked = make_masked_data(str(tmp_path_factory.mktemp("masked")), num_instances=64)
    unmasked = make_unmasked_data(str(tmp_path_factory.mktemp("unmasked")), num_instances=64)
    masking = DynamicMaskingConfig.from_manifest(read_manifest(unmasked))
    return {"masked": masked, "unmasked": unmasked, "masking": masking}


@pytest.fixture(scope="module")
def runs(data):
    return Runs(data)


def xla_compiled_calls(concrete) -> set:
    """Names of the functions the traced graph calls with `_XlaMustCompile` (XLA clusters that
    must compile, or the call fails), searched through the loop bodies in the library too."""
    graph_def = concrete.graph.as_graph_def()
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    return {n.attr["f"].func.name for n in nodes if n.attr["_XlaMustCompile"].b}


@pytest.mark.parametrize("name", list(PATHS))
def test_every_training_path_compiles_under_xla_and_traces_once(name, runs):
    path = PATHS[name]
    run = runs.get(name)
    loop = run.loop
    assert loop.jit_compile is True
    if path.accumulation_steps > 1:  # A micro-steps, then one apply: each compiled once
        expected = {"_train": 1, "_replica_micro_step": 1, "_replica_apply_step": 1,
                    "_replica_train_step": 0}
        step_functions = ("_micro_step_fn", "_apply_step_fn")
    else:
        expected = {"_train": 1, "_replica_train_step": 1}
        step_functions = ("_train_step_fn",)
    if path.evaluate:
        expected.update({"_eval": 1, "_replica_eval_step": 1})
    for function, count in expected.items():
        assert run.tracing.get(function) == count, (function, run.tracing)

    # The traced loops call the per-replica steps as XLA clusters (must compile).
    concrete = loop._train.get_concrete_function(run.iterator, tf.constant(1, tf.int64))
    compiled = xla_compiled_calls(concrete)
    for step in step_functions:
        assert any(step in f for f in compiled), (step, compiled)
    if path.evaluate:
        concrete = loop._eval.get_concrete_function(run.eval_iterator, tf.constant(1, tf.int64))
        assert any("_eval_step_fn" in f for f in xla_compiled_calls(concrete))
        assert loop._eval.experimental_get_tracing_count() == 1
    assert loop._train.experimental_get_tracing_count() == 1  # the graphs above were cached

    # Every step applied (no NaN/Inf skip), finite losses, and the weights moved.
    assert int(loop.step.numpy()) == TOTAL_STEPS
    assert int(loop.optimizer.iterations.numpy()) == TOTAL_STEPS
    for metrics in run.train + run.eval:
        assert np.isfinite(metrics["loss"]) and metrics["loss"] > 0, metrics
    assert all(m["skipped_steps"] == 0.0 for m in run.train)
    assert all(np.isfinite(w).all() for w in run.final)
    changed = {p: not np.array_equal(a, b) for p, a, b in zip(run.paths, run.initial, run.final)}
    assert changed[next(p for p in changed if p.endswith("word_embeddings"))]
    assert sum(changed.values()) > len(changed) / 2, changed
    if path.distillation:
        assert run.teacher_unchanged is True
    if path.evaluate:  # same eval batches, same weights: same metrics
        assert run.eval[0] == pytest.approx(run.eval[1], rel=1e-6)


def test_dynamic_masking_batches_have_the_static_spec_of_masked_data(data):
    """TPUs need static shapes: every feature of the batches masked on the fly is fully known,
    and the spec is the pre-masked data's (so both compile to the same step)."""
    dynamic = pretraining_dataset(data["unmasked"], BATCH, is_training=True, seed=SEED,
                                  dynamic_masking=data["masking"])
    static = pretraining_dataset(data["masked"], BATCH, is_training=True, seed=SEED)
    assert dynamic.element_spec == static.element_spec
    for key, spec in dynamic.element_spec.items():
        assert spec.shape.is_fully_defined() and spec.shape[0] == BATCH, (key, spec)
    batch = next(iter(dynamic))
    assert float(tf.reduce_sum(batch["masked_lm_weights"])) > 0  # labels were drawn
    assert int(tf.reduce_sum(tf.cast(batch["input_ids"] == 4, tf.int32))) > 0  # [MASK]s


@pytest.mark.parametrize("arch", list(ARCH_PATHS))
def test_mixed_bfloat16_losses_track_float32(arch, runs):
    previous = keras.mixed_precision.global_policy().name
    reference = runs.get(ARCH_PATHS[arch], "float32")
    bf16 = runs.get(ARCH_PATHS[arch], "mixed_bfloat16")
    assert keras.mixed_precision.global_policy().name == previous  # restored

    # It really computed in bf16 (else the comparison below would prove nothing) ...
    assert bf16.seen["outputs"] and set(bf16.seen["outputs"].values()) == {tf.bfloat16}
    assert set(reference.seen["outputs"].values()) == {tf.float32}
    # ... yet every loss and metric leaves the objective in float32, and the variables and
    # optimizer slots stay float32.
    assert set(bf16.seen["losses"].values()) == {tf.float32}, bf16.seen["losses"]
    assert {v.dtype for v in bf16.loop.model.trainable_variables} == {"float32"}
    assert {v.dtype for v in bf16.loop.optimizer.variables} - {"int64"} == {"float32"}
    for a, b in zip(bf16.initial, reference.initial):
        np.testing.assert_array_equal(a, b)

    f32 = np.array([m["loss"] for m in reference.train])
    b16 = np.array([m["loss"] for m in bf16.train])
    assert np.isfinite(b16).all()
    np.testing.assert_allclose(b16, f32, rtol=BF16_RTOL)
    assert (b16 != f32).any()  # the bf16 rounding shows
