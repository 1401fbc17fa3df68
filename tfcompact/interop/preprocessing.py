"""Preprocessing SavedModel: raw strings in, packed int32 encoder features out.

Follows the TF Hub "common SavedModel API for text" preprocessors: `tokenize` (strings ->
ragged wordpiece ids), `bert_pack_inputs` ([CLS] a [SEP] (b [SEP]), round-robin trimmed and
zero-padded to `seq_length`), and signatures that do both for one or two segments. The
vocabulary travels as a SavedModel asset, so the export needs only TensorFlow and
tensorflow-text to run (`import tensorflow_text` registers the ops before `tf.saved_model.load`).
"""
from __future__ import annotations

import os
import shutil

import tensorflow as tf
import tensorflow_text as tf_text

from tfcompact.errors import DataError

FEATURE_KEYS = ("input_word_ids", "input_mask", "input_type_ids")


def _special_id(vocab_path: str, token: str) -> int:
    with open(vocab_path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if line.rstrip("\n").strip() == token:
                return i
    raise DataError(f"{vocab_path}: vocabulary has no {token} token; expected a BERT-layout vocab.txt")


class BertPreprocessor(tf.Module):
    """Tokenizer + packer saved as one SavedModel; see the module docstring for the API."""

    def __init__(self, tokenizer, *, cls_id: int, sep_id: int, default_seq_length: int,
                 vocab_path: str | None = None):
        super().__init__(name="bert_preprocessor")
        self.tokenizer = tokenizer
        # The vocabulary ships as an asset (`assets/vocab.txt`, `preprocessor.vocab_file`), so
        # consumers can map ids back to tokens without this project.
        if vocab_path is not None:
            self.vocab_file = tf.saved_model.Asset(vocab_path)
        self._cls_id = cls_id
        self._sep_id = sep_id
        self._default_seq_length = default_seq_length
        self.default_seq_length = tf.Variable(default_seq_length, trainable=False, dtype=tf.int32,
                                              name="default_seq_length")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Strings [batch] -> int32 wordpiece ids, ragged [batch, (tokens)]."""
        ids = self.tokenizer.tokenize(text)
        if isinstance(ids, tf.RaggedTensor) and ids.ragged_rank > 1:
            ids = ids.merge_dims(-2, -1)
        return tf.cast(ids, tf.int32)

    def _pack(self, segments: list[tf.RaggedTensor], seq_length: tf.Tensor) -> dict[str, tf.Tensor]:
        seq_length = tf.convert_to_tensor(seq_length, tf.int32)
        tf.debugging.assert_greater_equal(seq_length, len(segments) + 1,
                                          message="seq_length too small for [CLS]/[SEP]")
        budget = seq_length - (len(segments) + 1)
        trimmed = tf_text.RoundRobinTrimmer(max_seq_length=budget).trim(
            [tf.cast(s, tf.int32) for s in segments])
        ids, type_ids = tf_text.combine_segments(trimmed, self._cls_id, self._sep_id)
        ids = tf.cast(ids, tf.int32)
        type_ids = tf.cast(type_ids, tf.int32)
        batch = ids.nrows(out_type=tf.int32)
        shape = tf.stack([batch, seq_length])
        word_ids = ids.to_tensor(default_value=0, shape=shape)
        mask = tf.ones_like(ids, dtype=tf.int32).to_tensor(default_value=0, shape=shape)
        types = type_ids.to_tensor(default_value=0, shape=shape)
        return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": types}

    @tf.function
    def bert_pack_inputs(self, segments, seq_length):
        """List of 1 or 2 ragged id tensors + int32 scalar seq_length -> packed features."""
        return self._pack(list(segments), seq_length)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text"),
                                  tf.TensorSpec([], tf.int32, name="seq_length")])
    def preprocess_single(self, text: tf.Tensor, seq_length: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._pack([self.tokenize(text)], seq_length)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text_a"),
                                  tf.TensorSpec([None], tf.string, name="text_b"),
                                  tf.TensorSpec([], tf.int32, name="seq_length")])
    def preprocess_pair(self, text_a: tf.Tensor, text_b: tf.Tensor,
                        seq_length: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._pack([self.tokenize(text_a), self.tokenize(text_b)], seq_length)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def __call__(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """Single segment at the default seq_length (the TF Hub preprocessor call)."""
        return self._pack([self.tokenize(text)], self._default_seq_length)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text_a"),
                                  tf.TensorSpec([None], tf.string, name="text_b")])
    def serve_pair(self, text_a: tf.Tensor, text_b: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._pack([self.tokenize(text_a), self.tokenize(text_b)], self._default_seq_length)


def make_tokenizer(vocab_path: str, do_lower_case: bool):
    """The project's tensorflow-text tokenizer (same ids as the Python FullTokenizer)."""
    from tfcompact.text.tokenizer import make_tf_tokenizer

    return make_tf_tokenizer(vocab_path, do_lower_case)


def export_preprocessing_savedmodel(vocab_path: str, output_dir: str, *, do_lower_case: bool = True,
                                    seq_length: int = 128, tokenizer=None) -> str:
    """Write the preprocessing SavedModel to `output_dir` (which must not exist yet).

    Signatures: `serving_default` (text -> features at `seq_length`), `serving_pair`
    (text_a, text_b), `preprocess_single`/`preprocess_pair` (seq_length as an input).
    """
    if not os.path.isfile(vocab_path):
        raise DataError(f"{vocab_path}: vocabulary file not found")
    if seq_length < 3:
        raise DataError(f"--seq_length {seq_length}: expected at least 3 ([CLS] x [SEP])")
    # Keep the asset file name stable (vocab.txt) whatever the source file is called.
    staging = os.path.join(os.path.dirname(os.path.abspath(output_dir)),
                           f".{os.path.basename(output_dir)}.vocab")
    os.makedirs(staging, exist_ok=True)
    staged_vocab = os.path.join(staging, "vocab.txt")
    shutil.copyfile(vocab_path, staged_vocab)
    try:
        tok = tokenizer if tokenizer is not None else make_tokenizer(staged_vocab, do_lower_case)
        module = BertPreprocessor(tok, cls_id=_special_id(vocab_path, "[CLS]"),
                                  sep_id=_special_id(vocab_path, "[SEP]"),
                                  default_seq_length=seq_length, vocab_path=staged_vocab)
        ragged = tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1)
        scalar = tf.TensorSpec([], tf.int32)
        module.bert_pack_inputs.get_concrete_function([ragged], scalar)
        module.bert_pack_inputs.get_concrete_function([ragged, ragged], scalar)
        signatures = {
            "serving_default": module.__call__.get_concrete_function(),
            "serving_pair": module.serve_pair.get_concrete_function(),
            "preprocess_single": module.preprocess_single.get_concrete_function(),
            "preprocess_pair": module.preprocess_pair.get_concrete_function(),
        }
        tf.saved_model.save(module, output_dir, signatures=signatures)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir
