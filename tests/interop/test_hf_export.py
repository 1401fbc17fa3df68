"""`tfcompact export --format huggingface` loads in `transformers` with no conversion step, no
missing or unused weights and no warnings, and computes what our SavedModel computes;
`tfcompact import-hf` reads HF's own `save_pretrained` output, and HF -> ours -> HF is
bit-identical.

Skipped unless the `interop` extra (torch CPU + transformers) is installed.
"""
import json
import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import tensorflow as tf  # noqa: E402
from conftest import make_model_dir, write_vocab  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from sm_helpers import features, keras_outputs  # noqa: E402

TOLERANCE = 1e-5

# (arch, sentence head, component, config overrides)
CASES = [
    ("bert", "nsp", None, {}),
    ("bert", "none", None, {}),
    ("albert", "sop", None, {"num_hidden_layers": 4, "num_hidden_groups": 2, "inner_group_num": 2}),
    ("electra", None, "discriminator", {}),
    ("electra", None, "generator", {}),
    ("mobilebert", "nsp", None, {"classifier_activation": True}),
    # E == H, as the Chinese base releases: HF still holds a zero-element extra output weight
    ("mobilebert", "nsp", None, {"embedding_size": 64}),
]


class _Warnings(logging.Handler):
    """transformers' WARNING records while loading (missing / unused weights and the like)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


def load_quietly(cls, path):
    handler = _Warnings()
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        model, info = cls.from_pretrained(path, output_loading_info=True)
    finally:
        logger.removeHandler(handler)
    return model.eval(), {k: v for k, v in info.items() if v}, handler.records


def export(tmp_path, cli, arch, head, component, overrides):
    d, config, model = make_model_dir(tmp_path, arch, sentence_head=head, seed=5, **overrides)
    out = tmp_path / "hf"
    args = ["export", "--model_dir", d, "--format", "huggingface", "--output", out]
    if component:
        args += ["--component", component]
    code, stdout, err = cli(*args)
    assert code == 0, err
    sm = tmp_path / "sm"
    args = ["export", "--model_dir", d, "--format", "savedmodel", "--output", sm]
    code, _, err = cli(*(args + (["--component", component] if component else [])))
    assert code == 0, err
    return d, config, model, out, sm


def hf_run(hf_model, ids, mask, types):
    t = {"input_ids": torch.tensor(ids, dtype=torch.long), "attention_mask": torch.tensor(mask, dtype=torch.long),
         "token_type_ids": torch.tensor(types, dtype=torch.long)}
    with torch.no_grad():
        return hf_model(**t, output_hidden_states=True)


@pytest.mark.parametrize("arch,head,component,overrides", CASES,
                         ids=[f"{a}-{h or c}" for a, h, c, _ in CASES])
def test_export_loads_cleanly_and_matches_savedmodel(tmp_path, cli, arch, head, component, overrides):
    d, config, model, out, sm = export(tmp_path, cli, arch, head, component, overrides)
    written = json.loads((out / "config.json").read_text())
    cls = getattr(transformers, written["architectures"][0])
    hf_model, info, warned = load_quietly(cls, str(out))
    assert info == {} and warned == [], (info, warned)
    # AutoModel (the backbone) takes every weight it has; heads are "not used" at INFO level only
    base, base_info, base_warned = load_quietly(transformers.AutoModel, str(out))
    if head == "none":  # an MLM-only model ships no (never trained) pooler: HF says so
        assert base_info.get("missing_keys") == ["pooler.dense.bias", "pooler.dense.weight"]
    else:
        assert "missing_keys" not in base_info and base_warned == [], (base_info, base_warned)
    if head not in (None, "none"):  # the MLM-only class takes its part of a pretraining export
        stem = written["architectures"][0][:-len("ForPreTraining")]
        _, mlm_info, mlm_warned = load_quietly(getattr(transformers, f"{stem}ForMaskedLM"), str(out))
        assert "missing_keys" not in mlm_info and mlm_warned == [], (mlm_info, mlm_warned)

    enc = tf.saved_model.load(str(sm / "encoder"))
    padded = arch != "mobilebert"  # HF's MobileBERT masks padding with the dtype minimum, not -6
    ids, mask, types, positions = features(3, 16, config.vocab_size, seed=7)
    if not padded:
        ids, mask, types = ids[:1], mask[:1], types[:1]
        positions = positions[:1]
    ours = enc({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types})
    theirs = hf_run(hf_model, ids, mask, types)
    keep = mask.astype(bool)
    np.testing.assert_allclose(theirs.hidden_states[-1].numpy()[keep], ours["sequence_output"].numpy()[keep],
                               atol=TOLERANCE)
    idx = torch.tensor(positions, dtype=torch.long)[..., None]
    if arch == "electra" and component == "discriminator":
        ref = keras_outputs(model, arch, ids, mask, types, positions)
        rtd = model.discriminator_head(ref["sequence_output"])
        np.testing.assert_allclose(theirs.logits.numpy()[keep], np.asarray(rtd)[keep], atol=TOLERANCE)
        return
    mlm = enc.signatures["mlm"](input_word_ids=tf.constant(ids), input_mask=tf.constant(mask),
                                input_type_ids=tf.constant(types),
                                masked_lm_positions=tf.constant(positions))["mlm_logits"].numpy()
    logits = theirs.logits if arch == "electra" else theirs.prediction_logits if head != "none" \
        else theirs.logits
    got = torch.take_along_dim(logits, idx, dim=1).numpy()
    np.testing.assert_allclose(got, mlm, atol=TOLERANCE * max(1.0, np.abs(mlm).max()))
    if head not in (None, "none"):
        ref = keras_outputs(model, arch, ids, mask, types, positions)
        sentence = theirs.sop_logits if arch == "albert" else theirs.seq_relationship_logits
        np.testing.assert_allclose(sentence.numpy(), np.asarray(ref["sentence_logits"]), atol=TOLERANCE)
        pooled = hf_run(base, ids, mask, types).pooler_output.numpy()
        np.testing.assert_allclose(pooled, ours["pooled_output"].numpy(), atol=TOLERANCE)


def test_tokenizer_files_give_our_ids(tmp_path, cli):
    d, config, model, out, sm = export(tmp_path, cli, "bert", "nsp", None, {})
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(out))
    assert type(hf_tok).__name__ == "BertTokenizerFast"
    slow = transformers.BertTokenizer.from_pretrained(str(out))
    vocab = (tmp_path / "bert_vocab.txt").read_text(encoding="utf-8").split("\n")
    # CJK characters of the vocabulary, one missing from it, Latin and accented letters
    texts = [vocab[5] + vocab[9] + "龘" + vocab[40], "ABC " + vocab[6] + "，" + vocab[7], "Éa" + vocab[8]]
    pre = tf.saved_model.load(str(sm / "preprocessing"))
    ours = pre(tf.constant(texts))
    for i, text in enumerate(texts):
        n = int(ours["input_mask"][i].numpy().sum())
        want = ours["input_word_ids"][i, :n].numpy().tolist()
        assert hf_tok(text)["input_ids"] == want
        assert slow(text)["input_ids"] == want


# ----------------------------------------------------------------------------------------------
# HF -> ours -> HF
# ----------------------------------------------------------------------------------------------

def hf_model_dir(tmp_path, name, model, vocab_size, safe=True):
    path = tmp_path / name
    model.save_pretrained(str(path), safe_serialization=safe)
    write_vocab(path / "vocab.txt", vocab_size)
    return path


def small_hf_config(cls, **kw):
    sizes = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=40, hidden_act="gelu")
    sizes.update(kw)
    return cls(**sizes)


def tensors_of(path):
    return load_file(str(path / "model.safetensors"))


def assert_bit_identical(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert np.array_equal(a[k].view(np.uint32), b[k].view(np.uint32)), k


@pytest.mark.parametrize("kind", ["bert", "albert", "mobilebert"])
def test_hf_round_trip_is_bit_identical(tmp_path, cli, kind):
    torch.manual_seed(0)
    if kind == "bert":
        model = transformers.BertForPreTraining(small_hf_config(transformers.BertConfig))
    elif kind == "albert":
        model = transformers.AlbertForPreTraining(small_hf_config(
            transformers.AlbertConfig, embedding_size=16, hidden_act="gelu_new", num_hidden_layers=4,
            num_hidden_groups=2, inner_group_num=1))
    else:
        model = transformers.MobileBertForPreTraining(small_hf_config(
            transformers.MobileBertConfig, embedding_size=16, intra_bottleneck_size=16, true_hidden_size=16,
            num_attention_heads=4, hidden_act="relu", num_feedforward_networks=2))
    src = hf_model_dir(tmp_path, "src", model, 120)
    code, out, err = cli("import-hf", "--model_dir", src, "--output", tmp_path / "ours")
    assert code == 0, err
    code, out, err = cli("export", "--model_dir", tmp_path / "ours", "--format", "huggingface",
                         "--output", tmp_path / "back")
    assert code == 0, err
    assert_bit_identical(tensors_of(src), tensors_of(tmp_path / "back"))
    before = json.loads((src / "config.json").read_text())
    after = json.loads((tmp_path / "back" / "config.json").read_text())
    for key in ("hidden_act", "hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size",
                "embedding_size", "num_hidden_groups", "key_query_shared_bottleneck", "true_hidden_size"):
        assert before.get(key) == after.get(key), key
    reloaded, info, warned = load_quietly(type(model), str(tmp_path / "back"))
    assert info == {} and warned == []


def test_electra_pair_round_trip_and_pytorch_bin(tmp_path, cli):
    torch.manual_seed(1)
    disc = transformers.ElectraForPreTraining(small_hf_config(transformers.ElectraConfig, embedding_size=16))
    gen = transformers.ElectraForMaskedLM(small_hf_config(
        transformers.ElectraConfig, embedding_size=16, hidden_size=16, num_attention_heads=1,
        intermediate_size=64))
    # as trained, generator and discriminator share one embedding layer
    gen.electra.embeddings.load_state_dict(disc.electra.embeddings.state_dict())
    d_dir = hf_model_dir(tmp_path, "disc", disc, 120)
    g_dir = hf_model_dir(tmp_path, "gen", gen, 120, safe=False)  # pytorch_model.bin: torch reads it
    code, _, err = cli("import-hf", "--model_dir", d_dir, "--output", tmp_path / "nogen")
    assert code != 0 and "--generator" in err
    code, out, err = cli("import-hf", "--model_dir", d_dir, "--generator", g_dir, "--output", tmp_path / "ours")
    assert code == 0, err
    for component, src in (("discriminator", d_dir), ("generator", g_dir)):
        back = tmp_path / f"back_{component}"
        code, _, err = cli("export", "--model_dir", tmp_path / "ours", "--format", "huggingface",
                           "--component", component, "--output", back)
        assert code == 0, err
        if component == "discriminator":
            original = tensors_of(src)
        else:
            state = torch.load(str(src / "pytorch_model.bin"), weights_only=True)
            original = {k: v.numpy() for k, v in state.items() if k != "generator_lm_head.weight"}
        assert_bit_identical(original, tensors_of(back))
