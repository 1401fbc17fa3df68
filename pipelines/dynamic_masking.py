"""Dynamic whole-word (and token) masking as TensorFlow ops, vectorised over a batch.

The training reader (`pipelines.readers`) applies `mask_batch` after `batch()`, so every
epoch sees a fresh mask without any Python in the input pipeline. Randomness is a counter-based
hash keyed by (seed, element key): an element's mask depends only on the seed and its key (the
reader uses the element's global position in the host's stream, which encodes epoch and index),
not on the batch it lands in or on thread timing. That is what makes exact resume possible.

Why not tensorflow-text's `mask_language_model`: in its 3-D (whole-word) mode the selection
cap `max_selections_per_batch` counts words, not pieces, so padding its output to
`max_predictions_per_seq` silently drops labels of chosen words (measured: 14 % of rows on
Chinese news text). Its selector also draws from stateful RNG ops, so a mask cannot be
reproduced for a given (seed, epoch, element) after a restart. The op below caps by pieces
(a word that does not fit is not chosen) and is keyed per element.

Selection rule (per row): the target is `max(1, round(masked_lm_prob * num_words))` words; the
words are visited in a random order and a word is taken when it still fits under
`max_predictions_per_seq` pieces (otherwise it is skipped and the next one is tried), as
google-research/bert's `create_masked_lm_predictions` does. One 80/10/10 draw per chosen word
decides [MASK] / random ids / kept for all of its pieces. Labels are the original ids.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import tensorflow as tf

from tfcompact.errors import ConfigError

# Greedy "skip a word that does not fit" is sequential; it is computed exactly in a few vectorised
# passes (see `select_words`). The word that ends a pass is longer than the capacity left after
# it, so the lengths ending successive passes strictly decrease: this many passes are exact
# whenever no word has more pieces than passes (Chinese words here: 1-4 characters). A row that
# would need more passes ends with fewer words, never with a lost label.
_SELECTION_PASSES = 4

_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclasses.dataclass(frozen=True)
class DynamicMaskingConfig:
    """Settings of dynamic masking. `special_ids` are never chosen as random replacements."""

    vocab_size: int
    mask_id: int
    max_predictions_per_seq: int
    special_ids: tuple[int, ...] = ()
    masked_lm_prob: float = 0.15
    whole_word: bool = True
    mask_token_prob: float = 0.8
    random_token_prob: float = 0.1
    excluded_replacement_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.vocab_size <= 0:
            raise ConfigError(f"dynamic masking: vocab_size must be > 0, got {self.vocab_size}")
        if not 0 <= self.mask_id < self.vocab_size:
            raise ConfigError(f"dynamic masking: mask_id {self.mask_id} outside the vocab "
                              f"of {self.vocab_size}")
        if self.max_predictions_per_seq <= 0:
            raise ConfigError("dynamic masking: max_predictions_per_seq must be > 0, got "
                              f"{self.max_predictions_per_seq}")
        if not 0.0 < self.masked_lm_prob <= 1.0:
            raise ConfigError(f"dynamic masking: masked_lm_prob must be in (0, 1], got "
                              f"{self.masked_lm_prob}")
        if (self.mask_token_prob < 0 or self.random_token_prob < 0
                or self.mask_token_prob + self.random_token_prob > 1.0 + 1e-9):
            raise ConfigError("dynamic masking: mask_token_prob + random_token_prob must be "
                              f"within [0, 1], got {self.mask_token_prob} + "
                              f"{self.random_token_prob}")
        if not self.replacement_ids():
            raise ConfigError("dynamic masking: no vocabulary id left to draw random "
                              "replacements from")

    def replacement_ids(self) -> list[int]:
        """Ids random replacements are drawn from: the vocabulary minus special/excluded ids."""
        excluded = set(self.special_ids) | set(self.excluded_replacement_ids) | {self.mask_id}
        return [i for i in range(self.vocab_size) if i not in excluded]

    @classmethod
    def from_manifest(cls, manifest: Mapping, vocab_path: str | None = None,
                      **overrides) -> "DynamicMaskingConfig":
        """Config for a data directory: sizes and special ids from its manifest.

        With `vocab_path`, bracketed tokens such as `[unused1]` are also excluded from random
        replacement (they never occur in text).
        """
        special = manifest.get("special_ids") or {}
        if "[MASK]" not in special:
            raise ConfigError("dynamic masking: manifest special_ids has no [MASK]")
        excluded: list[int] = []
        if vocab_path is not None:
            with tf.io.gfile.GFile(vocab_path, "r") as f:
                for i, line in enumerate(f):
                    token = line.rstrip("\n")
                    if token.startswith("[") and token.endswith("]"):
                        excluded.append(i)
        kwargs = dict(
            vocab_size=int(manifest["vocab_size"]),
            mask_id=int(special["[MASK]"]),
            max_predictions_per_seq=int(manifest["max_predictions_per_seq"]),
            special_ids=tuple(sorted(int(v) for v in special.values())),
            excluded_replacement_ids=tuple(excluded),
        )
        kwargs.update(overrides)
        return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# Counter-based random numbers (murmur3's 32-bit finaliser): reproducible per element, no state.

def _u32(x) -> tf.Tensor:
    return tf.constant(x, tf.uint32) if not isinstance(x, tf.Tensor) else x


def _fmix32(h: tf.Tensor) -> tf.Tensor:
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, _u32(16)))
    h = h * _u32(0x85EBCA6B)
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, _u32(13)))
    h = h * _u32(0xC2B2AE35)
    return tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, _u32(16)))


def element_keys(seed: int | tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """A uint32 random key per element from a seed and the element's int64 index."""
    index = tf.cast(index, tf.int64)
    lo = tf.cast(tf.bitwise.bitwise_and(index, tf.constant(0xFFFFFFFF, tf.int64)), tf.uint32)
    hi = tf.cast(tf.bitwise.right_shift(index, tf.constant(32, tf.int64)), tf.uint32)
    seed = tf.cast(tf.bitwise.bitwise_and(tf.cast(seed, tf.int64),
                                          tf.constant(0xFFFFFFFF, tf.int64)), tf.uint32)
    h = _fmix32(lo * _u32(0x9E3779B1) + _u32(0x632BE5AB))
    h = _fmix32(tf.bitwise.bitwise_xor(h, hi * _u32(0x85EBCA77) + _u32(0x27D4EB2F)))
    return _fmix32(tf.bitwise.bitwise_xor(h, _fmix32(seed + _u32(0x165667B1))))


def _uniform(keys: tf.Tensor, width: int, stream: int) -> tf.Tensor:
    """float32 [B, width] uniforms in [0, 1): a hash of (row key, column, stream)."""
    cols = tf.cast(tf.range(width), tf.uint32) * _u32(0x9E3779B9) + _u32((stream * 0x7F4A7C15)
                                                                       & 0xFFFFFFFF)
    h = _fmix32(tf.bitwise.bitwise_xor(keys[:, None], _fmix32(cols)[None, :]))
    return tf.cast(tf.bitwise.right_shift(h, _u32(8)), tf.float32) * (1.0 / (1 << 24))


# ---------------------------------------------------------------------------------------------

def select_words(word_lengths: tf.Tensor, scores: tf.Tensor, num_to_select: tf.Tensor,
                 max_pieces: int) -> tf.Tensor:
    """Greedy choice of words in increasing `scores` order under a word count and a piece cap.

    word_lengths: int32 [B, W] pieces per word (0 = no such word); scores: float32 [B, W]
    (the visiting order); num_to_select: int32 [B]. A word is chosen when fewer than
    `num_to_select` words are chosen so far and its pieces still fit under `max_pieces`;
    otherwise it is skipped. Returns bool [B, W].

    The sequential rule is computed in passes: words longer than the remaining capacity can
    never be chosen later (capacity only shrinks), so each pass drops them, then takes the
    longest run of remaining candidates (in order) that fits; the first candidate that does
    not fit is skipped and the next pass resumes after it with the smaller capacity.
    """
    word_lengths = tf.cast(word_lengths, tf.int32)
    width = tf.shape(word_lengths)[1]
    order = tf.argsort(scores, axis=1, stable=True)
    lengths = tf.gather(word_lengths, order, batch_dims=1)  # in visiting order
    exists = lengths > 0
    ranks = tf.range(width)[None, :]
    chosen = tf.zeros_like(exists)
    pieces = tf.zeros_like(num_to_select)
    count = tf.zeros_like(num_to_select)
    cursor = tf.fill(tf.shape(num_to_select), -1)
    for _ in range(_SELECTION_PASSES):
        capacity = max_pieces - pieces
        room = tf.cast(num_to_select, tf.int32) - count
        cand = (exists & ~chosen & (ranks > cursor[:, None])
                & (lengths <= capacity[:, None]) & (room[:, None] > 0))
        cand_int = tf.cast(cand, tf.int32)
        cum_len = tf.cumsum(lengths * cand_int, axis=1)
        cum_cnt = tf.cumsum(cand_int, axis=1)
        take = cand & (cum_len <= capacity[:, None]) & (cum_cnt <= room[:, None])
        take_int = tf.cast(take, tf.int32)
        chosen = chosen | take
        pieces += tf.reduce_sum(lengths * take_int, axis=1)
        count += tf.reduce_sum(take_int, axis=1)
        # The first candidate not taken is skipped; the next pass starts after it.
        skipped = cand & ~take
        cursor = tf.reduce_min(tf.where(skipped, ranks, width), axis=1)
    # Back from visiting order to word order.
    return tf.scatter_nd(
        tf.stack([tf.broadcast_to(tf.range(tf.shape(order)[0])[:, None], tf.shape(order)),
                  order], axis=-1),
        tf.cast(chosen, tf.int32), tf.shape(order)) > 0


def mask_batch(input_ids: tf.Tensor, word_ids: tf.Tensor, keys: tf.Tensor,
               config: DynamicMaskingConfig) -> dict[str, tf.Tensor]:
    """Masks a batch from the unmasked format; returns the masked-schema features.

    input_ids, word_ids: int [B, S] (word_ids: index of the whole word of each token, -1 for
    [CLS]/[SEP]/padding); keys: uint32 [B] per-element random keys (`element_keys`).
    Returns int32 `input_ids` (masked), `masked_lm_positions`, `masked_lm_ids` [B, P] and
    float32 `masked_lm_weights` [B, P] with P = max_predictions_per_seq, padded with 0.
    """
    input_ids = tf.cast(input_ids, tf.int32)
    word_ids = tf.cast(word_ids, tf.int32)
    batch = tf.shape(input_ids)[0]
    seq_len = input_ids.shape[1]
    if seq_len is None:
        raise ValueError("mask_batch needs a static sequence length (the reader pads to it)")
    max_pred = config.max_predictions_per_seq
    valid_tok = word_ids >= 0
    positions = tf.broadcast_to(tf.range(seq_len)[None, :], tf.shape(input_ids))
    if config.whole_word:
        # Words of a row live in slots [0, S): a token's word index is < S by construction.
        word_of_tok = tf.clip_by_value(word_ids, 0, seq_len - 1)
    else:
        word_of_tok = positions
    word_of_tok = tf.where(valid_tok, word_of_tok, 0)

    # Pieces per word: segment sum into B*S slots.
    flat_seg = tf.reshape(word_of_tok + tf.range(batch)[:, None] * seq_len, [-1])
    word_lengths = tf.reshape(
        tf.math.unsorted_segment_sum(tf.reshape(tf.cast(valid_tok, tf.int32), [-1]), flat_seg,
                                     batch * seq_len), [batch, seq_len])
    num_words = tf.reduce_sum(tf.cast(word_lengths > 0, tf.int32), axis=1)
    num_to_select = tf.where(
        num_words > 0,
        tf.maximum(1, tf.cast(tf.round(tf.cast(num_words, tf.float32) * config.masked_lm_prob),
                              tf.int32)),
        0)

    u_order = _uniform(keys, seq_len, stream=1)
    u_kind = _uniform(keys, seq_len, stream=2)
    u_token = _uniform(keys, seq_len, stream=3)
    chosen_word = select_words(word_lengths, u_order, num_to_select, max_pred)

    chosen_tok = tf.gather(chosen_word, word_of_tok, batch_dims=1) & valid_tok
    kind_tok = tf.gather(u_kind, word_of_tok, batch_dims=1)  # one draw per whole word
    use_mask = chosen_tok & (kind_tok < config.mask_token_prob)
    use_random = chosen_tok & ~use_mask & (
        kind_tok < config.mask_token_prob + config.random_token_prob)

    replacement = config.replacement_ids()
    candidates = tf.constant(replacement, tf.int32)
    n_cand = len(replacement)
    rand_index = tf.minimum(tf.cast(u_token * n_cand, tf.int32), n_cand - 1)
    random_ids = tf.gather(candidates, rand_index)
    masked_ids = tf.where(use_mask, tf.constant(config.mask_id, tf.int32),
                          tf.where(use_random, random_ids, input_ids))

    # Chosen positions in increasing order (there are at most max_pred of them by construction).
    k = min(max_pred, seq_len)
    order_score = tf.where(chosen_tok, seq_len - positions, -1)
    top_values, top_positions = tf.math.top_k(order_score, k=k, sorted=True)
    weights = tf.cast(top_values > 0, tf.float32)
    lm_positions = tf.where(top_values > 0, top_positions, 0)
    lm_ids = tf.where(top_values > 0, tf.gather(input_ids, lm_positions, batch_dims=1), 0)
    if k < max_pred:
        pad = [[0, 0], [0, max_pred - k]]
        lm_positions, lm_ids = tf.pad(lm_positions, pad), tf.pad(lm_ids, pad)
        weights = tf.pad(weights, pad)
    return {
        "input_ids": masked_ids,
        "masked_lm_positions": lm_positions,
        "masked_lm_ids": lm_ids,
        "masked_lm_weights": weights,
    }


def mask_examples(features: Mapping[str, tf.Tensor], keys: tf.Tensor,
                  config: DynamicMaskingConfig) -> dict[str, tf.Tensor]:
    """Applies `mask_batch` to a dict of batched unmasked features; drops `word_ids`."""
    out = {name: value for name, value in features.items() if name != "word_ids"}
    out.update(mask_batch(features["input_ids"], features["word_ids"], keys, config))
    return out

