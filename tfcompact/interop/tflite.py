"""TFLite export of an encoder SavedModel, and the check that compares the two.

The TFLite model has static shapes [batch, seq_length] (static shapes let the converter fold
the position slice and the attention reshapes); inputs are the TF Hub names
`input_word_ids`, `input_mask`, `input_type_ids` (+ `masked_lm_positions` [batch, P] when the
SavedModel has the `mlm` signature), outputs `sequence_output`, `pooled_output`
(+ `mlm_logits`). Quantization: `none` (fp32), `fp16` (fp16 weights), `dynamic`
(int8 weights, dynamic-range activations), `int8` (full-integer: int8 weights and int8
activations, their ranges calibrated on real sentences, see `representative_features`; the
int32 inputs stay int32 and the outputs are dequantized to float32).
"""
from __future__ import annotations

import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import tensorflow as tf

from tfcompact.errors import DataError, UserError
from tfcompact.files import atomic_write_bytes
from tfcompact.interop.savedmodel import FEATURE_KEYS
from tfcompact.text.corpus import check_input_file, iter_documents

QUANTIZE_MODES = ("none", "fp16", "dynamic", "int8")
# int8: sentences the activation ranges are calibrated on (one sample each): the converter's
# guidance is "a few hundred" samples; 100 sentences already hold a few thousand tokens (the
# ranges are per tensor, over every token) and keep the calibration of a preset to a minute.
DEFAULT_CALIBRATION_SAMPLES = 100
MLM_MASK_FRACTION = 0.15  # masked positions of a calibration sample, as in pretraining
# The outputs of a task model whose argmax is its prediction (see tfcompact.models.tasks).
TASK_LOGITS = ("logits", "start_logits", "end_logits")


def _load_savedmodel(path: str):
    """The encoder SavedModel at `path` (as `tfcompact export` writes it), or one line saying
    why not: a directory holding one (`encoder/`), a damaged file, another kind of SavedModel."""
    import tensorflow_text  # noqa: F401 - registers the text ops a task SavedModel holds
    from google.protobuf.message import DecodeError

    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        inner = os.path.join(path, "encoder")
        hint = (f"pass {inner}" if os.path.isfile(os.path.join(inner, "saved_model.pb"))
                else "expected an encoder SavedModel written by `tfcompact export --format savedmodel`")
        raise UserError(f"--savedmodel {path}: no saved_model.pb found; {hint}")
    try:
        encoder = tf.saved_model.load(path)
    except (tf.errors.OpError, ValueError, RuntimeError, IndexError, KeyError, DecodeError,
            OSError) as e:
        # a short variables file raises IndexError, a damaged saved_model.pb DecodeError,
        # ValueError or (TensorFlow 2.20) OSError, a preprocessing model RuntimeError (its
        # tensorflow-text ops)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = (" (a preprocessing model? pass the encoder/ SavedModel of the export)"
                if "Op type not registered" in first else " (damaged?)")
        raise UserError(f"--savedmodel {path}: cannot load{hint}: {first}") from None
    if not all(hasattr(encoder, a) for a in ("vocab_size", "max_seq_length")):
        raise UserError(f"--savedmodel {path}: not an encoder SavedModel written by "
                        "`tfcompact export` (no vocab_size/max_seq_length); pass the export's encoder/")
    return encoder


def _check_flatbuffer(path: str) -> None:
    """Walk the whole TFLite flatbuffer in Python before the interpreter sees it: a truncated
    or damaged file makes tf.lite.Interpreter crash the process (SIGSEGV), not raise."""
    from tensorflow.lite.python import schema_py_generated as schema_fb

    with open(path, "rb") as f:
        data = bytearray(f.read())
    try:
        if len(data) < 8 or not schema_fb.Model.ModelBufferHasIdentifier(data, 0):
            raise ValueError("no TFL3 file identifier")
        model = schema_fb.ModelT.InitFromObj(schema_fb.Model.GetRootAs(data, 0))
        for b in model.buffers or []:
            if b.offset > 1 and b.offset + b.size > len(data):  # weights stored past the flatbuffer
                raise ValueError(f"buffer ends at byte {b.offset + b.size}, file has {len(data)}")
    except Exception as e:  # struct.error, ValueError, IndexError from reading past the end
        raise UserError(f"--tflite {path}: not a TFLite model or damaged (truncated?): "
                        f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def read_sentences(path: str, limit: int, flag: str = "--representative_data") -> list[str]:
    """The first `limit` sentences of a UTF-8 text file in the corpus converter's format (one
    sentence a line, blank lines between documents; a line is split after 。！？ as the
    converter splits it), read by the converter's own reader; bad input -> one-line error."""
    check_input_file(path, flag)
    out: list[str] = []
    try:
        for doc in iter_documents(path, errors="fail"):
            out.extend(s for s in doc.sentences if s.strip())
            if len(out) >= limit:
                break
    except DataError as e:  # the reader's hint names its own --errors flag, which export lacks
        raise DataError(f"{flag} " + str(e).replace("use --errors skip to drop such lines",
                                                   "fix or remove that line")) from None
    if not out:
        raise DataError(f"{flag} {path}:1: no text (expected UTF-8 text, one sentence a line)")
    return out[:limit]


def _calibration_row(ids: list[int], seq_length: int, num_predictions: int, vocab,
                     index: int) -> dict[str, np.ndarray]:
    """One sample as the encoder sees it: [CLS] ids [SEP] zero-padded to `seq_length` (`ids`
    not empty); with `num_predictions`, MLM_MASK_FRACTION of the tokens (evenly spread, from
    an offset that varies with `index`) replaced by [MASK], their positions zero-padded in
    masked_lm_positions."""
    ids = [vocab.cls_id] + ids[:seq_length - 2] + [vocab.sep_id]
    row = np.zeros([seq_length], np.int32)
    row[:len(ids)] = ids
    mask = (np.arange(seq_length) < len(ids)).astype(np.int32)
    out = {"input_word_ids": row, "input_mask": mask, "input_type_ids": np.zeros_like(row)}
    if num_predictions:
        n = len(ids) - 2  # the sentence's tokens sit at positions 1..n
        k = min(num_predictions, max(1, round(MLM_MASK_FRACTION * n)))
        step = n // k
        positions = 1 + index % step + np.arange(k) * step  # last one <= k * step <= n
        row[positions] = vocab.mask_id
        out["masked_lm_positions"] = np.zeros([num_predictions], np.int32)
        out["masked_lm_positions"][:k] = positions
    return out


def representative_features(sentences: Iterable[str], tokenizer,
                            input_signature: dict) -> list[dict[str, np.ndarray]]:
    """Calibration inputs for `input_signature` (name -> tf.TensorSpec [batch, length]): one
    sample per sentence that has a token, tokenized by `tokenizer` (a FullTokenizer of the
    model's vocab), `batch` samples per input (a short last batch is filled from the first)."""
    batch, seq_length = (int(d) for d in input_signature["input_word_ids"].shape)
    p = input_signature.get("masked_lm_positions")
    num_predictions = int(p.shape[1]) if p is not None else 0
    tokenized = (tokenizer.tokenize_to_ids(s) for s in sentences)
    rows = [_calibration_row(ids, seq_length, num_predictions, tokenizer.vocab, i)
            for i, ids in enumerate(t for t in tokenized if t)]
    if not rows:
        raise DataError("no calibration sentence has a token of the vocabulary")
    rows += [rows[i % len(rows)] for i in range(-len(rows) % batch)]
    return [{k: np.stack([r[k] for r in rows[i:i + batch]]) for k in input_signature}
            for i in range(0, len(rows), batch)]


@dataclass
class FlatbufferSummary:
    """What a .tflite file holds: `ops` counts (op, input types, output types) over every
    operator; `weight_bytes` sums the constant tensors (weights, tables) per type."""
    ops: dict = field(default_factory=dict)
    weight_bytes: dict = field(default_factory=dict)

    def float_ops(self) -> list[str]:
        """The operators that compute in float32 (what full-integer quantization left float)."""
        return sorted({op for (op, ins, outs) in self.ops if "FLOAT32" in ins + outs})


def summarize_flatbuffer(path: str) -> FlatbufferSummary:
    """Read the operators and constant tensors of the TFLite model at `path` from its
    flatbuffer (the schema TensorFlow ships), e.g. to check which tensors are int8."""
    from tensorflow.lite.python import schema_py_generated as schema_fb

    _check_flatbuffer(path)
    with open(path, "rb") as f:
        model = schema_fb.ModelT.InitFromObj(schema_fb.Model.GetRootAs(bytearray(f.read()), 0))
    type_names = {v: k for k, v in vars(schema_fb.TensorType).items() if not k.startswith("_")}
    op_names = {v: k for k, v in vars(schema_fb.BuiltinOperator).items() if not k.startswith("_")}
    summary = FlatbufferSummary()
    for graph in model.subgraphs:
        types = [type_names[t.type] for t in graph.tensors]
        for t in graph.tensors:
            buf = model.buffers[t.buffer]
            size = len(buf.data) if buf.data is not None else (buf.size if buf.offset > 1 else 0)
            if size:
                summary.weight_bytes[type_names[t.type]] = summary.weight_bytes.get(
                    type_names[t.type], 0) + int(size)
        for op in graph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            name = op_names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
            key = (name, tuple(types[i] for i in op.inputs if i >= 0),
                   tuple(types[i] for i in op.outputs))
            summary.ops[key] = summary.ops.get(key, 0) + 1
    return summary


class _FixedShapeEncoder(tf.Module):
    def __init__(self, encoder, batch: int, seq_length: int, num_predictions: int):
        super().__init__()
        self.encoder = encoder
        spec = {k: tf.TensorSpec([batch, seq_length], tf.int32, name=k) for k in FEATURE_KEYS}
        has_mlm = hasattr(encoder, "mlm")
        if has_mlm:
            spec["masked_lm_positions"] = tf.TensorSpec([batch, num_predictions], tf.int32,
                                                        name="masked_lm_positions")

        def serve(inputs):
            if has_mlm:
                out = encoder.mlm(inputs)
                return {"sequence_output": out["sequence_output"],
                        "pooled_output": out["pooled_output"], "mlm_logits": out["mlm_logits"]}
            out = encoder(inputs)
            return {"sequence_output": out["sequence_output"], "pooled_output": out["pooled_output"]}

        self.serve = tf.function(serve, input_signature=[spec])


def convert_savedmodel_to_tflite(savedmodel_dir: str, output_path: str, *, seq_length: int = 128,
                                 quantize: str = "none", num_predictions: int = 20,
                                 batch_size: int = 1, representative=None) -> str:
    """Convert the encoder SavedModel at `savedmodel_dir` to a `.tflite` file at `output_path`
    (`representative`: int8's calibration inputs, see `convert_module`)."""
    if quantize not in QUANTIZE_MODES:
        raise UserError(f"--quantize {quantize}: expected one of {', '.join(QUANTIZE_MODES)}")
    encoder = _load_savedmodel(savedmodel_dir)
    max_len = int(encoder.max_seq_length.numpy())
    if not 2 <= seq_length <= max_len:
        raise UserError(f"--seq_length {seq_length}: expected 2..{max_len} "
                        "(the model's max_position_embeddings)")
    fixed = _FixedShapeEncoder(encoder, batch_size, seq_length, num_predictions)
    return convert_module(fixed, output_path, quantize=quantize, source=savedmodel_dir,
                          representative=representative)


def _set_quantization(converter, quantize: str, feeds: list | None) -> None:
    """Converter options of one QUANTIZE_MODES entry (`feeds`: int8's calibration inputs).

    int8 keeps the default op set (TFLITE_BUILTINS, not TFLITE_BUILTINS_INT8 alone), so an op
    without an int8 kernel would stay float between a DEQUANTIZE and a QUANTIZE instead of
    failing the conversion. On the ALBERT and MobileBERT encoders (TF 2.21) none does:
    every GATHER (embedding tables int8), FULLY_CONNECTED, BATCH_MATMUL, SOFTMAX, ADD/SUB/MUL,
    MEAN/SQUARED_DIFFERENCE/RSQRT (LayerNorm), TANH, TRANSPOSE and RESHAPE runs in int8. Float
    is left only where the int32 inputs meet the network (the CAST of input_mask to float,
    then a QUANTIZE) and at the outputs (DEQUANTIZE to float32); the int32 index arithmetic
    (ADD, LESS, SELECT on ids and positions) stays int32."""
    if quantize == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: iter(feeds)


def convert_module(fixed: tf.Module, output_path: str, *, quantize: str, source: str,
                   representative=None) -> str:
    """Convert `fixed.serve` (a tf.function with a fixed-shape input signature) to a `.tflite`
    file at `output_path` (written atomically); `source` names the model in error messages.
    int8 needs `representative`: input signature (name -> TensorSpec) -> list of feeds (e.g.
    `functools.partial(representative_features, sentences, tokenizer)`)."""
    if quantize not in QUANTIZE_MODES:
        raise UserError(f"--quantize {quantize}: expected one of {', '.join(QUANTIZE_MODES)}")
    feeds = None
    if quantize == "int8":
        if representative is None:
            raise UserError(f"--quantize int8 of {source}: no calibration text was given")
        feeds = representative(fixed.serve.input_signature[0])
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(fixed, tmp, signatures={"serving_default": fixed.serve})
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serving_default"])
        _set_quantization(converter, quantize, feeds)
        try:
            data = converter.convert()
        except Exception as e:  # the converter raises ConverterError and plain exceptions alike
            raise UserError(f"TFLite conversion of {source} failed: "
                            f"{str(e).strip().splitlines()[0]}") from e
    atomic_write_bytes(output_path, data)
    return output_path


def load_tflite_runner(path: str, num_threads: int | None = None):
    """(interpreter, signature runner) for the `serving_default` signature of a .tflite file."""
    if os.path.isdir(path):
        inner = os.path.join(path, "model.tflite")
        raise UserError(f"--tflite {path} is a directory; "
                        + (f"pass {inner}" if os.path.isfile(inner) else "expected a .tflite file"))
    if not os.path.isfile(path):
        raise UserError(f"--tflite {path}: file not found")
    _check_flatbuffer(path)
    try:
        with warnings.catch_warnings():
            # tf.lite.Interpreter warns that LiteRT (ai_edge_litert) will replace it; it is
            # still the interpreter TensorFlow 2.21 ships, so use it without the noise.
            warnings.simplefilter("ignore", UserWarning)
            interpreter = tf.lite.Interpreter(model_path=path, num_threads=num_threads)
        runner = interpreter.get_signature_runner("serving_default")
    except (ValueError, RuntimeError) as e:
        raise UserError(f"--tflite {path}: not a TFLite model written by tfcompact export "
                        f"({str(e).strip().splitlines()[0]})") from e
    return interpreter, runner


def random_inputs(input_details: dict, vocab_size: int, seed: int) -> dict[str, np.ndarray]:
    """Deterministic realistic inputs for the runner's fixed shapes: [CLS] ids [SEP], padding,
    two segments, masked positions inside the real tokens."""
    rng = np.random.default_rng(seed)
    batch, seq = input_details["input_word_ids"]["shape"]
    lengths = rng.integers(max(2, seq // 2), seq + 1, size=batch)
    ids = rng.integers(1, vocab_size, size=(batch, seq)).astype(np.int32)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    types = ((np.arange(seq)[None, :] >= (lengths // 2)[:, None]) & (mask == 1)).astype(np.int32)
    out = {"input_word_ids": ids * mask, "input_mask": mask, "input_type_ids": types}
    if "masked_lm_positions" in input_details:
        p = input_details["masked_lm_positions"]["shape"][1]
        out["masked_lm_positions"] = np.stack(
            [np.sort(rng.integers(1, max(2, n - 1), size=p)) for n in lengths]).astype(np.int32)
    return out


@dataclass
class TfliteCheck:
    """What `check-tflite` reports."""
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    mean_cosine: dict[str, float] = field(default_factory=dict)
    argmax_agreement: float | None = None
    agreement_of: str = "mlm argmax"  # task SavedModels: "predicted label"
    tflite_ms: float | None = None
    savedmodel_ms: float | None = None

    def lines(self) -> list[str]:
        out = [f"max |tflite - savedmodel| {k}: {v:.3g}" for k, v in self.max_abs_diff.items()]
        out += [f"mean cosine {k}: {v:.6f}" for k, v in self.mean_cosine.items()]
        if self.argmax_agreement is not None:
            out.append(f"{self.agreement_of} agreement: {self.argmax_agreement:.4f}")
        if self.tflite_ms is not None:
            out.append(f"median latency tflite {self.tflite_ms:.2f} ms, savedmodel {self.savedmodel_ms:.2f} ms"
                       f" (ratio {self.tflite_ms / self.savedmodel_ms:.2f})")
        return out


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a.reshape(-1, a.shape[-1]).astype(np.float64)
    b = b.reshape(-1, b.shape[-1]).astype(np.float64)
    num = (a * b).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12
    return float((num / den).mean())


def _check_same_outputs(tflite_path: str, savedmodel_dir: str, lite: dict, ref: dict) -> None:
    """Both runtimes give the same outputs with the same shapes (else: not one model)."""
    for k, v in lite.items():
        if k not in ref or np.shape(ref[k]) != np.shape(v):
            got = list(np.shape(ref[k])) if k in ref else "nothing"
            raise UserError(f"--tflite {tflite_path} and --savedmodel {savedmodel_dir} are not the same "
                            f"model: {k} is {list(np.shape(v))} in TFLite, {got} in the SavedModel")


def check_tflite(tflite_path: str, savedmodel_dir: str, *, num_batches: int = 4, seed: int = 0,
                 num_threads: int | None = None, benchmark_runs: int = 0,
                 loaded=None) -> TfliteCheck:
    """Run the TFLite model and the SavedModel on the same inputs and compare the outputs
    (`loaded`: the SavedModel at `savedmodel_dir` when the caller has it loaded already)."""
    interpreter, runner = load_tflite_runner(tflite_path, num_threads)
    encoder = loaded if loaded is not None else _load_savedmodel(savedmodel_dir)
    details = runner.get_input_details()
    missing = [k for k in FEATURE_KEYS if k not in details]
    if missing:
        raise UserError(f"--tflite {tflite_path}: inputs {sorted(details)} lack {missing}")
    vocab = int(encoder.vocab_size.numpy())
    result = TfliteCheck()
    cos: dict[str, list[float]] = {}
    agree: list[np.ndarray] = []

    # a task SavedModel (interop.task_export) is compared on its task_logits: the predicted
    # labels (argmax of each logits output) must agree
    is_task = hasattr(encoder, "task_logits")
    if is_task:
        result.agreement_of = "predicted label"

    def run_sm(feed):
        tensors = {k: tf.constant(v) for k, v in feed.items()}
        if is_task:
            out = encoder.task_logits({k: tensors[k] for k in FEATURE_KEYS})
        else:
            out = encoder.mlm(tensors) if "masked_lm_positions" in feed else encoder(
                {k: tensors[k] for k in FEATURE_KEYS})
        return {k: v.numpy() for k, v in out.items() if k != "encoder_outputs"}

    for b in range(num_batches):
        feed = random_inputs(details, vocab, seed + b)
        lite = runner(**feed)
        ref = run_sm(feed)
        _check_same_outputs(tflite_path, savedmodel_dir, lite, ref)
        for k, v in lite.items():
            diff = float(np.max(np.abs(v - ref[k])))
            diff = diff if np.isfinite(diff) else np.inf  # NaN would vanish in max() below
            result.max_abs_diff[k] = max(result.max_abs_diff.get(k, 0.0), diff)
            cos.setdefault(k, []).append(_cosine(v, ref[k]))
        for k in ("mlm_logits",) + (TASK_LOGITS if is_task else ()):
            if k in lite:
                agree.append(np.argmax(lite[k], -1) == np.argmax(ref[k], -1))
    result.mean_cosine = {k: float(np.mean(v)) for k, v in cos.items()}
    if agree:
        result.argmax_agreement = float(np.mean(np.concatenate([a.ravel() for a in agree])))
    if benchmark_runs > 0:
        # Interleave the two runtimes and take medians, so load from other processes hits both
        # alike (this machine is often shared).
        feed = random_inputs(details, vocab, seed)
        runner(**feed)
        run_sm(feed)
        lite_t, sm_t = [], []
        for _ in range(benchmark_runs):
            t0 = time.perf_counter()
            runner(**feed)
            lite_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            run_sm(feed)
            sm_t.append(time.perf_counter() - t0)
        result.tflite_ms = float(np.median(lite_t)) * 1e3
        result.savedmodel_ms = float(np.median(sm_t)) * 1e3
    return result
