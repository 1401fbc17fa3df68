"""Teacher and student with different vocabularies: refused by default, mapped by token string
when the config says `distillation.vocab: map_tokens`."""
import numpy as np
import pytest
import tensorflow as tf

from tfcompact.configs import tiny_config
from tfcompact.errors import ConfigError
from tfcompact.models import build_pretraining_model
from tfcompact.train.distill import (check_same_vocab, teacher_on_student_tokens,
                                     vocab_table)

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _vocab(path, tokens):
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return str(path)


def test_same_vocab_is_required_unless_mapped(tmp_path):
    a = _vocab(tmp_path / "a.txt", SPECIAL + ["的", "是"])
    b = _vocab(tmp_path / "b.txt", SPECIAL + ["是", "的", "了"])
    check_same_vocab(a, _vocab(tmp_path / "a2.txt", SPECIAL + ["的", "是"]), "exp.yaml")
    with pytest.raises(ConfigError, match=r"^exp.yaml: the teacher's vocabulary .*b.txt differs "
                                          r".*distillation.vocab: map_tokens$"):
        check_same_vocab(a, b, "exp.yaml")
    check_same_vocab(a, b, "exp.yaml", "map_tokens")
    with pytest.raises(ConfigError, match="map_tokens needs"):
        check_same_vocab(a, None, "exp.yaml", "map_tokens")


def test_teacher_reads_the_students_tokens_through_the_table(tmp_path):
    student_tokens = SPECIAL + ["的", "是", "猫", "狗"]
    teacher_tokens = SPECIAL + ["狗", "了", "是", "的", "在"]  # no 猫: read as [UNK]
    table, missing = vocab_table(_vocab(tmp_path / "s.txt", student_tokens),
                                 _vocab(tmp_path / "t.txt", teacher_tokens))
    by_hand = [0, 1, 2, 3, 4, 8, 7, 1, 5]
    assert table.tolist() == by_hand and missing == 1
    config = tiny_config("bert", vocab_size=len(teacher_tokens), num_hidden_layers=1,
                         hidden_size=16, num_attention_heads=2, intermediate_size=32)
    teacher = build_pretraining_model("bert", config, name="teacher")
    mapped = teacher_on_student_tokens(teacher, table)
    ids = np.array([[2, 5, 6, 7, 8, 3]], np.int32)
    batch = {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids),
             "masked_lm_positions": np.array([[1, 3]], np.int32)}
    got = mapped(batch)
    want = teacher(dict(batch, input_ids=table[ids]))
    np.testing.assert_allclose(got["sequence_output"], want["sequence_output"], rtol=1e-6)
    assert got["mlm_logits"].shape[-1] == len(student_tokens)
    np.testing.assert_allclose(got["mlm_logits"], tf.gather(want["mlm_logits"], table, axis=-1),
                               rtol=1e-6)
    assert len(mapped.weights) == len(teacher.weights)  # nothing new to train or save
