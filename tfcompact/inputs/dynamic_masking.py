"""Dynamic whole-word (and token) masking as TensorFlow ops, vectorised over a batch.

The training reader (`tfcompact.inputs.pretraining`) applies `dynamic_mask_batch` after
`batch()`, so every epoch sees a fresh mask without any Python in the input pipeline.
Randomness is a counter-based hash keyed by (seed, element key): an element's mask depends
only on the seed and its key (the reader uses the element's global position in the host's
stream, which encodes epoch and index), not on the batch it lands in or on thread timing.
That is what makes exact resume possible.

Why not tensorflow-text's `mask_language_model`: in its 3-D (whole-word) mode the selection
cap `max_selections_per_batch` counts words, not pieces, so padding its output to
`max_predictions_per_seq` silently drops labels of chosen words (rows of Chinese news text
lose labels: see tools/bench_reader.py). It also draws [MASK]/random/keep per piece inside a
chosen word, and its selector uses stateful RNG ops, so a mask cannot be reproduced for a
given (seed, epoch, element) after a restart. The op below caps by pieces (a word that does
not fit is not chosen), draws once per word, and is keyed per element.

Selection rule (per row): with `rate_unit="words"` (default) the target is
`max(1, round(masked_lm_prob * num_words))` words under a cap of `max_predictions_per_seq`
pieces; with `rate_unit="tokens"` it is google-research/bert's budget (the static converter's):
`min(max_predictions_per_seq, max(1, round(masked_lm_prob * num_tokens)))` pieces. Words are
visited in a random order and a word is taken when it still fits (otherwise it is skipped and
the next one is tried), as `create_masked_lm_predictions` does. One 80/10/10 draw per chosen
word decides [MASK] / random ids / kept for all of its pieces. Labels are the original ids.
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

@dataclasses.dataclass(frozen=True)
class DynamicMaskingConfig:
    """Settings of dynamic masking. `special_ids` are never chosen as random replacements."""

    vocab_size: int
    mask_id: int
    max_predictions_per_seq: int
    special_ids: tuple[int, ...] = ()
    masked_lm_prob: float = 0.15
    rate_unit: str = "words"
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
        if self.rate_unit not in ("words", "tokens"):
            raise ConfigError(f"dynamic masking: rate_unit must be 'words' or 'tokens', got "
                              f"{self.rate_unit!r}")
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

        With `vocab_path`, random replacements are the vocabulary's ordinary tokens, as in the
        static converter (`Vocab.replacement_ids`: no [unusedN], `##` pieces or markers).
        """
        special = manifest.get("special_ids") or {}
        if "[MASK]" not in special:
            raise ConfigError("dynamic masking: manifest special_ids has no [MASK]")
        excluded: list[int] = []
        if vocab_path is not None:
            from tfcompact.text.tokenizer import Vocab

            vocab = Vocab.load(vocab_path)
            if len(vocab) != int(manifest["vocab_size"]):
                raise ConfigError(f"{vocab_path}: {len(vocab)} tokens but the data's manifest "
                                  f"says vocab_size {manifest['vocab_size']}")
            keep = set(int(i) for i in vocab.replacement_ids)
            excluded = [i for i in range(len(vocab)) if i not in keep]
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


def _hash_columns(keys: tf.Tensor, width: int, stream: int) -> tf.Tensor:
    """uint32 [B, width]: a hash of (row key, column, stream)."""
    cols = tf.cast(tf.range(width), tf.uint32) * _u32(0x9E3779B9) + _u32((stream * 0x7F4A7C15)
                                                                          & 0xFFFFFFFF)
    return _fmix32(tf.bitwise.bitwise_xor(keys[:, None], _fmix32(cols)[None, :]))


# ---------------------------------------------------------------------------------------------

def _budget(count: tf.Tensor, rate: float) -> tf.Tensor:
    """max(1, round(rate * count)), 0 where count is 0 (int32 [B])."""
    target = tf.cast(tf.round(tf.cast(count, tf.float32) * rate), tf.int32)
    return tf.where(count > 0, tf.maximum(1, target), 0)


def greedy_in_order(lengths: tf.Tensor, num_to_select: tf.Tensor,
                    max_pieces: int | tf.Tensor) -> tf.Tensor:
    """The greedy rule on words already in visiting order: bool [B, V] of chosen words.

    lengths: int32 [B, V] pieces per visited word (0 = no word); num_to_select: int32 [B];
    max_pieces: int or int32 [B].
    A word is chosen when fewer than `num_to_select` words are chosen so far and its pieces
    still fit under `max_pieces`; otherwise it is skipped and the next word is tried.

    The sequential rule is computed in passes: words longer than the remaining capacity can
    never be chosen later (capacity only shrinks), so each pass drops them, then takes the
    longest run of remaining candidates (in order) that fits; the first candidate that does
    not fit is skipped and the next pass resumes after it with the smaller capacity.
    """
    width = lengths.shape[1]
    exists = lengths > 0
    ranks = tf.range(width)[None, :]
    chosen = tf.zeros_like(exists)
    capacity = tf.broadcast_to(tf.cast(max_pieces, tf.int32), tf.shape(num_to_select))
    room = num_to_select
    after_cursor = tf.ones_like(exists)
    count_base = 1 << max(1, int(width).bit_length())  # > any running count of V words
    for _ in range(_SELECTION_PASSES):
        cand = (exists & after_cursor & (lengths <= capacity[:, None]) & (room[:, None] > 0))
        cand_int = tf.cast(cand, tf.int32)
        cand_len = lengths * cand_int
        # One scan for both running sums: count in the low bits, pieces above them.
        packed = tf.cumsum(cand_len * count_base + cand_int, axis=1)
        cum_len = packed // count_base
        cum_cnt = packed % count_base
        take = cand & (cum_len <= capacity[:, None]) & (cum_cnt <= room[:, None])
        take_int = tf.cast(take, tf.int32)
        chosen = chosen | take
        capacity -= tf.reduce_sum(cand_len * take_int, axis=1)
        room -= tf.reduce_sum(take_int, axis=1)
        # The first candidate not taken is skipped; the next pass starts after it.
        cursor = tf.reduce_min(tf.where(cand & ~take, ranks, width), axis=1)
        after_cursor = ranks > cursor[:, None]
    return chosen


def select_words(word_lengths: tf.Tensor, scores: tf.Tensor, num_to_select: tf.Tensor,
                 max_pieces: int, max_visits: int | None = None) -> tf.Tensor:
    """Greedy choice of words visited in increasing `scores` order (see `greedy_in_order`).

    word_lengths: int32 [B, W] (0 = no such word); scores: [B, W]; returns bool [B, W].
    Only the `max_visits` lowest-scored words are visited (all when None).
    """
    word_lengths = tf.cast(word_lengths, tf.int32)
    width = word_lengths.shape[1]
    visits = width if max_visits is None else min(max_visits, width)
    order = tf.math.top_k(-scores, k=visits, sorted=True).indices
    lengths = tf.gather(word_lengths, order, batch_dims=1)
    chosen = greedy_in_order(lengths, tf.cast(num_to_select, tf.int32), max_pieces)
    batch = tf.shape(order)[0]
    flat = tf.reshape(order + tf.range(batch)[:, None] * width, [-1])
    chosen_flat = tf.math.unsorted_segment_sum(tf.reshape(tf.cast(chosen, tf.int32), [-1]),
                                               flat, batch * width)
    return tf.reshape(chosen_flat, [batch, width]) > 0


def dynamic_mask_batch(input_ids: tf.Tensor, word_ids: tf.Tensor, keys: tf.Tensor,
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
        raise ValueError("dynamic_mask_batch needs a static sequence length (the reader pads "
                         "to it)")
    max_pred = config.max_predictions_per_seq
    valid_tok = word_ids >= 0
    if config.whole_word:
        # Words of a row live in slots [0, S): a token's word index is < S by construction.
        word_of_tok = tf.clip_by_value(word_ids, 0, seq_len - 1)
    else:
        word_of_tok = tf.broadcast_to(tf.range(seq_len)[None, :], tf.shape(input_ids))
    row_offset = tf.range(batch)[:, None] * seq_len
    # Flat index of each token's word slot in [B * S]: plain 1-D gathers/segments are cheap.
    flat_word = tf.reshape(tf.where(valid_tok, word_of_tok, 0) + row_offset, [-1])
    valid_flat = tf.reshape(valid_tok, [-1])
    word_lengths_flat = tf.math.unsorted_segment_sum(tf.cast(valid_flat, tf.int32), flat_word,
                                                     batch * seq_len)
    word_lengths = tf.reshape(word_lengths_flat, [batch, seq_len])
    exists = word_lengths > 0
    num_words = tf.reduce_sum(tf.cast(exists, tf.int32), axis=1)
    if config.rate_unit == "words":
        num_to_select = _budget(num_words, config.masked_lm_prob)
        max_pieces = tf.fill([batch], max_pred)
    else:  # BERT's budget in pieces; the word count is then not limited
        num_to_select = tf.fill([batch], seq_len)
        num_tokens = tf.reduce_sum(tf.cast(valid_tok, tf.int32), axis=1)
        max_pieces = tf.minimum(max_pred, _budget(num_tokens, config.masked_lm_prob))

    # One hash per word slot: high 16 bits order the visit, low 16 bits draw 80/10/10.
    word_hash = _hash_columns(keys, seq_len, stream=1)
    order_score = tf.where(exists, tf.cast(tf.bitwise.right_shift(word_hash, _u32(16)),
                                           tf.int32), 1 << 17)
    kind_draw = tf.cast(tf.bitwise.bitwise_and(word_hash, _u32(0xFFFF)), tf.int32)
    # Chosen words have at least one piece each, so at most max_pred words are chosen, and the
    # greedy walk skips few words: on People's Daily rows (seq 128, 20 predictions) 24 visits
    # already give the same choice as visiting every word. A row that would need more than
    # `visits` just gets fewer words (never a lost label).
    visits = min(seq_len, max_pred + max(8, max_pred // 2))
    visit = tf.math.top_k(-order_score, k=visits, sorted=True).indices + row_offset  # flat
    chosen = greedy_in_order(tf.gather(word_lengths_flat, visit), num_to_select, max_pieces)
    # Per visited word: 0 not chosen, 1 [MASK], 2 random ids, 3 kept.
    mask_cut = int(round(config.mask_token_prob * 65536))
    random_cut = int(round((config.mask_token_prob + config.random_token_prob) * 65536))
    kind = tf.gather(tf.reshape(kind_draw, [-1]), visit)
    code = tf.where(chosen, tf.where(kind < mask_cut, 1, tf.where(kind < random_cut, 2, 3)), 0)
    # (Unsorted segment sums scatter here: distinct targets, and much faster than scatter_nd.)
    word_code = tf.math.unsorted_segment_sum(tf.reshape(code, [-1]), tf.reshape(visit, [-1]),
                                             batch * seq_len)
    token_code = tf.reshape(tf.where(valid_flat, tf.gather(word_code, flat_word), 0),
                            [batch, seq_len])

    replacement = config.replacement_ids()
    n_cand = len(replacement)
    token_hash = _hash_columns(keys, seq_len, stream=2)
    rand_index = tf.cast(tf.bitwise.right_shift(token_hash, _u32(8)), tf.int32) % n_cand
    random_ids = tf.gather(tf.constant(replacement, tf.int32), rand_index)
    masked_ids = tf.where(token_code == 1, tf.constant(config.mask_id, tf.int32),
                          tf.where(token_code == 2, random_ids, input_ids))

    positions, lm_ids, weights = _gather_predictions(input_ids, token_code > 0, max_pred)
    return {
        "input_ids": masked_ids,
        "masked_lm_positions": positions,
        "masked_lm_ids": lm_ids,
        "masked_lm_weights": weights,
    }


def _gather_predictions(input_ids: tf.Tensor, chosen_tok: tf.Tensor, max_pred: int):
    """(positions, original ids, weights) [B, P] of the chosen tokens, in increasing order."""
    batch, seq_len = tf.shape(input_ids)[0], input_ids.shape[1]
    # The k-th chosen token goes to slot k (there are at most max_pred by construction); other
    # tokens go to a discarded slot max_pred.
    slot = tf.where(chosen_tok, tf.cumsum(tf.cast(chosen_tok, tf.int32), axis=1) - 1, max_pred)
    index = tf.reshape(slot + tf.range(batch)[:, None] * (max_pred + 1), [-1])
    positions = tf.broadcast_to(tf.range(seq_len)[None, :], tf.shape(input_ids))
    slots = batch * (max_pred + 1)
    lm_positions = tf.reshape(
        tf.math.unsorted_segment_sum(tf.reshape(positions, [-1]), index, slots),
        [batch, max_pred + 1])[:, :max_pred]
    lm_ids = tf.reshape(tf.math.unsorted_segment_sum(tf.reshape(input_ids, [-1]), index, slots),
                        [batch, max_pred + 1])[:, :max_pred]
    num_chosen = tf.reduce_sum(tf.cast(chosen_tok, tf.int32), axis=1)
    weights = tf.cast(tf.range(max_pred)[None, :] < num_chosen[:, None], tf.float32)
    return lm_positions, lm_ids, weights


def mask_examples(features: Mapping[str, tf.Tensor], keys: tf.Tensor,
                  config: DynamicMaskingConfig) -> dict[str, tf.Tensor]:
    """Applies `dynamic_mask_batch` to a dict of batched unmasked features; drops `word_ids`."""
    out = {name: value for name, value in features.items() if name != "word_ids"}
    out.update(dynamic_mask_batch(features["input_ids"], features["word_ids"], keys, config))
    return out

