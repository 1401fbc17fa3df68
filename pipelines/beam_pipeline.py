"""`tfcompact create-data` as an Apache Beam pipeline, for corpora that outgrow one machine.

    python -m pipelines.beam_pipeline --input 'corpus/*.txt.gz' --vocab vocab.txt \\
        --output_dir out/ --masking wwm --runner DirectRunner
    # same command on a cluster: --runner DataflowRunner --project ... --region ... \\
    #     --temp_location gs://... --setup_file ./setup.py  (or FlinkRunner / SparkRunner)

It produces exactly what the local converter (`pipelines.create_data.run_conversion`)
produces for the same settings: the same shards with the same bytes and the same
manifest.json. It reuses the converter's plan and per-document code; only the scheduling
differs:

    plan (launcher): input files -> byte ranges of the N output shards (`shard_plan`)
    ReadDocuments    per shard: documents of its byte range, numbered in order
    Encode           per document (the costly step: tokenizer + word segmenter), spread out
    AssignWindows    per shard, on (doc number, chars) only: the converter's windows
    MakeRecords      per window: instances with the per-document seeds, window shuffle,
                     masking, deterministic Example bytes, TFRecord framing -> a part file
    WriteShards      per shard: parts concatenated in window order -> shard (temp + rename)
    WriteManifest    once, after every shard: manifest.json, then the part files go

Memory stays bounded by a window (plus one document) per worker: documents travel alone,
windows are formed from their sizes only, and shard bytes are streamed from part files.
Files may be local or on any Beam filesystem (gs://, hdfs://, s3://).
"""
from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import uuid
from typing import Iterable, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import create_data, writer
from tfcompact.errors import DataError, UserError
from tfcompact.files import atomic_writer, is_remote, temp_name
from tfcompact.inputs.manifest import MANIFEST_NAME, VOCAB_NAME, manifest_bytes, shard_entry
from tfcompact.text import corpus

TMP_PREFIX = ".tfcompact-beam-tmp-"
_COPY_BLOCK = 1 << 22


# ---------------------------------------------------------------------------------------------
# Files on any Beam filesystem
# ---------------------------------------------------------------------------------------------
def _join(directory: str, *names: str) -> str:
    return FileSystems.join(directory, *names) if is_remote(directory) else os.path.join(
        directory, *names)


def expand_inputs(patterns: Sequence[str] | str) -> list[str]:
    """Input globs -> sorted files (local globs as the converter expands them)."""
    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",") if p]
    local = [p for p in patterns if not is_remote(p)]
    files = corpus.expand_inputs(local) if local else []
    for pattern in (p for p in patterns if is_remote(p)):
        matched = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
        if not matched:
            raise UserError(f"--input {pattern}: no such file(s)")
        files.extend(m for m in matched if m not in files)
    return files


def input_size(path: str) -> int:
    """Uncompressed text bytes of an input (the converter plans shards on these)."""
    if not is_remote(path):
        return corpus.uncompressed_size(path)
    if not corpus.is_gzip(path):
        return FileSystems.match([path])[0].metadata_list[0].size_in_bytes
    total = 0
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        with gzip.GzipFile(fileobj=raw) as f:
            for block in iter(lambda: f.read(_COPY_BLOCK), b""):
                total += len(block)
    return total


_LOCAL_COPIES: dict = {}


def local_path(path: str) -> str:
    """A local file with the content of `path` (remote inputs are copied once per worker)."""
    if not is_remote(path):
        return path
    if path not in _LOCAL_COPIES:
        suffix = ".gz" if corpus.is_gzip(path) else ".txt"
        fd, tmp = tempfile.mkstemp(prefix="tfcompact-input-", suffix=suffix)
        with os.fdopen(fd, "wb") as out, FileSystems.open(
                path, compression_type=CompressionTypes.UNCOMPRESSED) as src:
            shutil.copyfileobj(src, out, _COPY_BLOCK)
        _LOCAL_COPIES[path] = tmp
    return _LOCAL_COPIES[path]


def _with_local_vocab(cfg: create_data.ConvertConfig) -> create_data.ConvertConfig:
    return dataclasses.replace(cfg, vocab_path=local_path(cfg.vocab_path))


def _write_atomically(path: str, chunks: Iterable[bytes]) -> tuple[int, str]:
    """Write to a temporary name, then rename; returns (bytes, sha256 hex). Local paths go
    through the project's atomic write; other file systems (gs://, hdfs://, s3://) through
    Beam's FileSystems, which every worker has without importing TensorFlow."""
    digest, size = hashlib.sha256(), 0

    def copy(f) -> None:
        nonlocal size
        for chunk in chunks:
            f.write(chunk)
            digest.update(chunk)
            size += len(chunk)

    if not is_remote(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)  # as Beam's local FileSystem does
        with atomic_writer(path) as f:
            copy(f)
        return size, digest.hexdigest()
    tmp = temp_name(path)
    with FileSystems.create(tmp, mime_type="application/octet-stream",
                            compression_type=CompressionTypes.UNCOMPRESSED) as f:
        copy(f)
    if FileSystems.exists(path):  # a retried bundle: same deterministic content
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])
    return size, digest.hexdigest()


def _read_chunks(path: str) -> Iterable[bytes]:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        yield from iter(lambda: f.read(_COPY_BLOCK), b"")


# ---------------------------------------------------------------------------------------------
# Plan (on the launcher)
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Plan:
    """Everything decided before the pipeline runs."""

    cfg: create_data.ConvertConfig
    files: list
    sizes: list
    num_shards: int
    shards: list  # per shard: [(file index, start, end)]
    vocab_size: int
    vocab_md5: str
    special_ids: dict
    segmenter: dict


def plan_conversion(cfg: create_data.ConvertConfig) -> Plan:
    """The converter's shard plan for `cfg` (same files, sizes, shard count and byte ranges)."""
    from tfcompact.text.segmenter import make_segmenter

    cfg = create_data.with_resolved_segmenter(cfg)  # every Beam worker runs the same one
    cfg.validate()
    if any(str(i).startswith("tfds:") for i in cfg.inputs):
        raise UserError("--input tfds:...: the Beam pipeline reads text files; export the TFDS "
                        "dataset with `tfcompact create-data` or to text first")
    vocab = create_data.load_vocab(local_path(cfg.vocab_path))
    files = list(cfg.inputs)[cfg.input_shard_index::cfg.num_input_shards]
    if not files:
        raise UserError(f"--shard_index {cfg.input_shard_index}: no input files for this host")
    sizes = [input_size(f) for f in files]
    total = int(sum(sizes))
    if total == 0:
        raise DataError(f"--input {', '.join(cfg.inputs)}: the input files are empty")
    num_shards = cfg.num_shards or create_data.default_num_shards(total)
    seg = (make_segmenter(cfg.segmenter).describe() if cfg.uses_segmenter
           else {"name": "none", "version": "0"})
    return Plan(cfg=cfg, files=files, sizes=sizes, num_shards=num_shards,
                shards=create_data.shard_plan(sizes, num_shards), vocab_size=len(vocab),
                vocab_md5=vocab.md5, special_ids=vocab.special_ids, segmenter=seg)


# ---------------------------------------------------------------------------------------------
# Pipeline steps
# ---------------------------------------------------------------------------------------------
class ReadDocuments(beam.DoFn):
    """(shard, byte ranges) -> ((shard, doc number), (file index, offset, sentences))."""

    def __init__(self, files: Sequence[str], errors: str):
        self.files = list(files)
        self.errors = errors

    def process(self, task):
        shard, parts = task
        number = 0
        for fi, start, end in parts:
            for doc in corpus.iter_documents(local_path(self.files[fi]), errors=self.errors,
                                             start=start, end=end):
                yield (shard, number), (fi, doc.offset, doc.sentences)
                number += 1


class EncodeDocument(beam.DoFn):
    """Tokenize + segment one document exactly as the converter does (its `_ShardWriter`
    encodes a document when adding it to a window). Main output: the encoded document;
    output "sizes": (shard, (doc number, characters counted towards the window))."""

    SIZES = "sizes"

    def __init__(self, cfg: create_data.ConvertConfig):
        # A window that never fills: `add_document` only encodes and appends.
        self.cfg = dataclasses.replace(cfg, window_chars=1 << 62)

    def setup(self):
        cfg = _with_local_vocab(self.cfg)
        tok, seg = create_data._worker_resources(cfg)
        self.encoder = create_data._ShardWriter(cfg, 0, tok, seg, out=None)

    def process(self, element):
        (shard, number), (fi, offset, sentences) = element
        enc = self.encoder
        enc.window, enc.window_chars = [], 0
        enc.add_document(fi, corpus.Document(sentences, offset))
        if enc.window:  # documents without any token are not part of any window
            _, _, encoded = enc.window[0]
            yield (shard, number), (fi, offset, encoded)
            yield beam.pvalue.TaggedOutput(self.SIZES, (shard, (number, enc.window_chars)))


def assign_windows(element, window_chars: int):
    """The converter's windows: documents in order until `window_chars` is reached."""
    shard, sizes = element
    window, filled = 0, 0
    for number, chars in sorted(sizes):
        yield (shard, number), window
        filled += chars
        if filled >= window_chars:
            window, filled = window + 1, 0


def _to_window(element):
    (shard, number), joined = element
    (fi, offset, encoded), = joined["doc"]
    (window,) = joined["window"]
    return (shard, window), (number, fi, offset, encoded)


class MakeRecords(beam.DoFn):
    """One window -> its TFRecord bytes (instances, shuffle, masking: the converter's `flush`),
    written to a part file; yields (shard, (window, part path, instances))."""

    def __init__(self, cfg: create_data.ConvertConfig, tmp_dir: str):
        self.cfg = cfg
        self.tmp_dir = tmp_dir

    def setup(self):
        self.cfg = _with_local_vocab(self.cfg)
        self.tok, _ = create_data._worker_resources(self.cfg)

    def process(self, element):
        (shard, window), docs = element
        out = io.BytesIO()
        sw = create_data._ShardWriter(self.cfg, shard, self.tok, None, out)
        sw.window = [(fi, offset, encoded) for _, fi, offset, encoded in sorted(
            docs, key=lambda d: d[0])]
        sw.window_index = window
        sw.flush()
        path = _join(self.tmp_dir, f"shard-{shard:05d}-window-{window:08d}.part")
        _write_atomically(path, [out.getvalue()])
        yield shard, (window, path, sw.num_instances)


class WriteShard(beam.DoFn):
    """Concatenate a shard's parts in window order into `data-k-of-n.tfrecord`."""

    def __init__(self, output_dir: str, num_shards: int):
        self.output_dir = output_dir
        self.num_shards = num_shards

    def process(self, element):
        shard, joined = element
        parts = sorted(joined["parts"])
        name = writer.shard_name(shard, self.num_shards)

        def chunks():
            for _, path, _ in parts:
                yield from _read_chunks(path)

        size, sha = _write_atomically(_join(self.output_dir, name), chunks())
        yield {"index": shard, "file": name, "num_instances": sum(p[2] for p in parts),
               "sha256": sha, "bytes": size}


class WriteManifest(beam.DoFn):
    """After every shard: manifest.json (what readers trust), then remove the part files."""

    def __init__(self, plan: Plan, tmp_dir: str):
        self.plan = plan
        self.tmp_dir = tmp_dir

    def process(self, infos):
        infos = sorted(infos, key=lambda i: i["index"])
        if [i["index"] for i in infos] != list(range(self.plan.num_shards)):
            raise DataError(f"{self.plan.cfg.output_dir}: shards missing after the pipeline ran")
        plan = self.plan
        shards = [shard_entry(i["file"], i["num_instances"], i["sha256"], i["bytes"])
                  for i in infos]
        manifest = create_data.conversion_manifest(
            plan.cfg, plan.vocab_size, plan.vocab_md5, plan.special_ids, plan.segmenter, shards,
            plan.files)
        with open(local_path(plan.cfg.vocab_path), "rb") as f:  # as the converter does
            _write_atomically(_join(plan.cfg.output_dir, VOCAB_NAME), [f.read()])
        _write_atomically(_join(plan.cfg.output_dir, MANIFEST_NAME), [manifest_bytes(manifest)])
        _delete_tree(self.tmp_dir)
        yield manifest


def _delete_tree(directory: str) -> None:
    """Remove the part files (object stores have no directories; local ones are removed)."""
    if is_remote(directory):
        found = FileSystems.match([_join(directory, "*")])[0].metadata_list
        if found:
            FileSystems.delete([m.path for m in found])
    elif os.path.isdir(directory):
        shutil.rmtree(directory)


def build_pipeline(pipeline: beam.Pipeline, plan: Plan,
                   tmp_dir: Optional[str] = None) -> beam.PCollection:
    """Adds the conversion to `pipeline`; returns the PCollection holding the manifest.
    Part files go to `tmp_dir` (default: a new hidden directory in the output directory)."""
    cfg = plan.cfg
    tmp_dir = tmp_dir or _join(cfg.output_dir, TMP_PREFIX + uuid.uuid4().hex[:12])
    tasks = pipeline | "Shards" >> beam.Create(list(enumerate(plan.shards)))
    encoded = (
        tasks
        | "ReadDocuments" >> beam.ParDo(ReadDocuments(plan.files, cfg.errors))
        | "SpreadDocuments" >> beam.Reshuffle()
        | "Encode" >> beam.ParDo(EncodeDocument(cfg)).with_outputs(EncodeDocument.SIZES,
                                                                   main="doc"))
    windows = (
        encoded[EncodeDocument.SIZES]
        | "SizesByShard" >> beam.GroupByKey()
        | "AssignWindows" >> beam.FlatMap(assign_windows, cfg.window_chars))
    parts = (
        {"doc": encoded.doc, "window": windows}
        | "JoinWindows" >> beam.CoGroupByKey()
        | "KeyByWindow" >> beam.Map(_to_window)
        | "GroupWindows" >> beam.GroupByKey()
        | "MakeRecords" >> beam.ParDo(MakeRecords(cfg, tmp_dir)))
    shards = (
        {"task": tasks, "parts": parts}
        | "JoinParts" >> beam.CoGroupByKey()
        | "WriteShards" >> beam.ParDo(WriteShard(cfg.output_dir, plan.num_shards)))
    return (shards
            | "AllShards" >> beam.combiners.ToList()
            | "WriteManifest" >> beam.ParDo(WriteManifest(plan, tmp_dir)))


def check_output_dir(output_dir: str) -> None:
    """The output directory must be new or empty (a Beam run does not resume; runners retry)."""
    if is_remote(output_dir):
        found = FileSystems.match([_join(output_dir, "*")])[0].metadata_list
        names = [m.path for m in found]
    else:
        names = sorted(os.listdir(output_dir)) if os.path.isdir(output_dir) else []
        os.makedirs(output_dir, exist_ok=True)
    if names:
        raise DataError(f"--output_dir {output_dir} is not empty ({', '.join(names[:3])}"
                        f"{', ...' if len(names) > 3 else ''}): use an empty or new directory")


def run_beam_conversion(cfg: create_data.ConvertConfig,
                        options: Optional[PipelineOptions] = None) -> dict:
    """Plan, run the pipeline to completion, return the manifest written."""
    check_output_dir(cfg.output_dir)
    plan = plan_conversion(cfg)
    options = options or PipelineOptions(["--runner=DirectRunner"])
    tmp_dir = _join(cfg.output_dir, TMP_PREFIX + uuid.uuid4().hex[:12])
    try:
        with beam.Pipeline(options=options) as p:
            build_pipeline(p, plan, tmp_dir)
    except BaseException:
        # The directory was empty before: leave it empty again (no manifest was written).
        _delete_tree(tmp_dir)
        written = [_join(cfg.output_dir, writer.shard_name(k, plan.num_shards))
                   for k in range(plan.num_shards)] + [_join(cfg.output_dir, VOCAB_NAME)]
        written = [w for w in written if FileSystems.exists(w)]
        if written:
            FileSystems.delete(written)
        raise
    path = _join(cfg.output_dir, MANIFEST_NAME)
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return json.loads(f.read().decode("utf-8"))


def parse_args(argv: Optional[Sequence[str]] = None
               ) -> tuple[create_data.ConvertConfig, PipelineOptions]:
    """Converter flags (as `tfcompact create-data`) + any Beam PipelineOptions flags."""
    parser = argparse.ArgumentParser(
        description="create-data as an Apache Beam pipeline; other flags go to Beam "
                    "(--runner, --project, --num_workers, ...)")
    create_data.add_conversion_arguments(parser)
    args, beam_args = parser.parse_known_args(argv)
    return (create_data.conversion_config(args, expand_inputs(args.input)),
            PipelineOptions(beam_args))


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        cfg, options = parse_args(argv)
        manifest = run_beam_conversion(cfg, options)
    except UserError as e:
        print(f"beam_pipeline: error: {e}", file=sys.stderr)
        return 1  # a user error, as tfcompact.cli; argparse's usage errors exit 2
    print(f"beam_pipeline: wrote {manifest['num_instances']} instances in "
          f"{len(manifest['shards'])} shards to {cfg.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
