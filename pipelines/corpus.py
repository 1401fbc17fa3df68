"""TFDS text datasets as corpus input of the converter: one example = one document.

Text files are read by the library's `tfcompact.text.corpus` (also used by build-vocab); a
prepared TFDS dataset gives the same `Document`s, split into sentences the same way.
"""
from __future__ import annotations

from typing import Iterator, Optional

from tfcompact.errors import DataError, UserError
from tfcompact.text.corpus import Document, split_sentences

TFDS_TEXT_KEYS = ("text", "content", "document", "article", "sentence", "body")


def parse_tfds_spec(spec: str) -> tuple[str, str]:
    """`tfds:NAME[:split]` -> (name, split); split defaults to "train"."""
    rest = spec[len("tfds:"):]
    if not rest:
        raise UserError(f"--input {spec}: expected tfds:NAME[:split]")
    name, _, split = rest.partition(":")
    return name, split or "train"


def tfds_builder(spec: str, data_dir: Optional[str]):
    """The prepared TFDS builder for `tfds:NAME[:split]` (no download)."""
    import tensorflow_datasets as tfds

    name, split = parse_tfds_spec(spec)
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # tfds raises several types for unknown names
        raise UserError(f"--input {spec}: unknown TFDS dataset ({str(e).splitlines()[0]})") from None
    if not builder.info.splits or split.split("[")[0] not in builder.info.splits:
        raise DataError(
            f"--input {spec}: split {split!r} not prepared in {builder.data_dir} "
            f"(prepare it with tfds build --data_dir, then pass --tfds_data_dir)"
        )
    return builder, split


def tfds_text_key(builder) -> str:
    """The name of the (first) text feature of a TFDS dataset."""
    import tensorflow_datasets as tfds

    feats = builder.info.features
    text_keys = [k for k, v in feats.items() if isinstance(v, tfds.features.Text)]
    for k in TFDS_TEXT_KEYS:
        if k in text_keys:
            return k
    if text_keys:
        return text_keys[0]
    raise DataError(f"TFDS dataset {builder.name} has no Text feature (features: {', '.join(feats)})")


def iter_tfds_documents(spec: str, data_dir: Optional[str], shard_index: int = 0,
                        num_shards: int = 1) -> Iterator[Document]:
    """Documents of a prepared TFDS text dataset: one example = one document (its text split
    into lines/sentences, blank lines separating sub-documents). Examples i with
    i % num_shards == shard_index only."""
    builder, split = tfds_builder(spec, data_dir)
    key = tfds_text_key(builder)
    ds = builder.as_dataset(split=split, shuffle_files=False)
    for i, ex in enumerate(ds.as_numpy_iterator()):
        if i % num_shards != shard_index:
            continue
        raw = ex[key]
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
        sentences: list[str] = []
        for line in text.replace("\r\n", "\n").split("\n"):
            if not line.strip():
                if sentences:
                    yield Document(sentences, i)
                    sentences = []
                continue
            sentences.extend(split_sentences(line))
        if sentences:
            yield Document(sentences, i)
