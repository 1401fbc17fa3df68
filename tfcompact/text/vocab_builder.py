"""Build a WordPiece vocabulary in the Chinese BERT layout from raw text.

Layout (ids as in the released Chinese vocab, so [CLS]=101 etc. hold for any size):
`[PAD]`, `[unused1]`..`[unused99]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`, then every CJK
character seen in the corpus (most frequent first), then WordPiece tokens for everything else
(Latin words, digits, punctuation, other scripts; with `##` continuations), learned by
tensorflow-text's WordPiece learner (`tensorflow_text.tools.wordpiece_vocab`) from the counts
of our own basic tokens, so the vocabulary matches the tokenizer that will use it (the
learner's bundled BERT splitter applies NFKC when lower-casing, which we do not).
"""
from __future__ import annotations

import collections
import string
from typing import Iterable, Sequence

from tfcompact.text import corpus
from tfcompact.errors import UserError
from tfcompact.text.tokenizer import SPECIAL_TOKENS, BasicTokenizer

NUM_UNUSED = 99


def special_layout() -> list[str]:
    """[PAD], [unused1..99], [UNK], [CLS], [SEP], [MASK] (ids 0, 1..99, 100..103)."""
    return ["[PAD]"] + [f"[unused{i}]" for i in range(1, NUM_UNUSED + 1)] + list(SPECIAL_TOKENS[1:])


def count_basic_tokens(files: Sequence[str], do_lower_case: bool = True, errors: str = "fail"
                       ) -> collections.Counter:
    """Counts of basic tokens (normalised, CJK characters separate) over the corpus files."""
    basic = BasicTokenizer(do_lower_case)
    counts: collections.Counter = collections.Counter()
    for path in files:
        for doc in corpus.iter_documents(path, errors=errors):
            for sentence in doc.sentences:
                counts.update(basic.split_words(sentence))
    return counts


def build_vocab(counts: collections.Counter, vocab_size: int, do_lower_case: bool = True) -> list[str]:
    """The vocabulary (list of tokens) for basic-token counts; see module docstring."""
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    basic = BasicTokenizer(do_lower_case)
    head = special_layout()
    cjk = [t for t, _ in sorted(((t, c) for t, c in counts.items() if basic.is_cjk_token(t)),
                                key=lambda tc: (-tc[1], tc[0]))]
    budget = vocab_size - len(head) - len(cjk)
    if budget < 1:
        raise UserError(f"--vocab_size {vocab_size} is too small: the corpus has {len(cjk)} distinct CJK "
                        f"characters plus {len(head)} special tokens")
    others = {t: c for t, c in counts.items() if not basic.is_cjk_token(t)}
    # Printable ASCII always gets a token and a `##` piece, so unseen Latin words and numbers
    # become pieces rather than [UNK].
    for ch in string.ascii_letters + string.digits + string.punctuation:
        ch = basic.normalize(ch)
        others[ch] = others.get(ch, 0) + 1
        others["a" + ch] = others.get("a" + ch, 0) + 1
    rest: list[str] = []
    if others:
        learned = learner.learn(others, vocab_size=budget, reserved_tokens=[], lower_thresh=1,
                                max_unique_chars=max(1000, budget))
        seen = set(head) | set(cjk)
        for t in learned:
            if t not in seen:
                seen.add(t)
                rest.append(t)
    vocab = head + cjk + rest
    return vocab[:vocab_size]


def write_vocab(tokens: Iterable[str], out_path: str) -> None:
    """One token a line, UTF-8, atomically (nothing is left behind if that fails)."""
    from tfcompact.files import atomic_write_bytes

    atomic_write_bytes(out_path, "".join(t + "\n" for t in tokens).encode("utf-8"))
