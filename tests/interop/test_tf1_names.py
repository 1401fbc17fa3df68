"""TF1 names and shapes against hand-written lists from tf1_names.md, and parameter counts
against the published figures of recipes.md."""
import math

import pytest

from tfcompact.configs import (PRESETS, AlbertConfig, BertConfig, ElectraConfig, MobileBertConfig)
from tfcompact.errors import ConfigError
from tfcompact.interop.tf1_names import (classify_tf1_name, count_parameters, parameter_breakdown,
                                         tf1_variable_shapes)

V, P, T = 10, 12, 2


def _bert_layer(prefix, h, i):
    return [
        (f"{prefix}/attention/self/query/kernel", (h, h)), (f"{prefix}/attention/self/query/bias", (h,)),
        (f"{prefix}/attention/self/key/kernel", (h, h)), (f"{prefix}/attention/self/key/bias", (h,)),
        (f"{prefix}/attention/self/value/kernel", (h, h)), (f"{prefix}/attention/self/value/bias", (h,)),
        (f"{prefix}/attention/output/dense/kernel", (h, h)), (f"{prefix}/attention/output/dense/bias", (h,)),
        (f"{prefix}/attention/output/LayerNorm/beta", (h,)), (f"{prefix}/attention/output/LayerNorm/gamma", (h,)),
        (f"{prefix}/intermediate/dense/kernel", (h, i)), (f"{prefix}/intermediate/dense/bias", (i,)),
        (f"{prefix}/output/dense/kernel", (i, h)), (f"{prefix}/output/dense/bias", (h,)),
        (f"{prefix}/output/LayerNorm/beta", (h,)), (f"{prefix}/output/LayerNorm/gamma", (h,)),
    ]


def test_bert_names_and_order():
    cfg = BertConfig(vocab_size=V, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=16, max_position_embeddings=P)
    expected = [
        ("bert/embeddings/word_embeddings", (10, 8)),
        ("bert/embeddings/token_type_embeddings", (2, 8)),
        ("bert/embeddings/position_embeddings", (12, 8)),
        ("bert/embeddings/LayerNorm/beta", (8,)), ("bert/embeddings/LayerNorm/gamma", (8,)),
        *_bert_layer("bert/encoder/layer_0", 8, 16),
        *_bert_layer("bert/encoder/layer_1", 8, 16),
        ("bert/pooler/dense/kernel", (8, 8)), ("bert/pooler/dense/bias", (8,)),
        ("cls/predictions/transform/dense/kernel", (8, 8)), ("cls/predictions/transform/dense/bias", (8,)),
        ("cls/predictions/transform/LayerNorm/beta", (8,)), ("cls/predictions/transform/LayerNorm/gamma", (8,)),
        ("cls/predictions/output_bias", (10,)),
        ("cls/seq_relationship/output_weights", (2, 8)), ("cls/seq_relationship/output_bias", (2,)),
    ]
    for arch in ("bert", "tinybert"):
        assert list(tf1_variable_shapes(arch, cfg).items()) == expected
    backbone = tf1_variable_shapes("bert", cfg, pretraining=False)
    assert list(backbone.items()) == expected[:-7]
    no_nsp = tf1_variable_shapes("bert", cfg, sentence_head="none")
    assert "cls/seq_relationship/output_weights" not in no_nsp and "cls/predictions/output_bias" in no_nsp


def _albert_group(g, k, h, i):
    p = f"bert/encoder/transformer/group_{g}/inner_group_{k}"
    return [
        (f"{p}/attention_1/self/query/kernel", (h, h)), (f"{p}/attention_1/self/query/bias", (h,)),
        (f"{p}/attention_1/self/key/kernel", (h, h)), (f"{p}/attention_1/self/key/bias", (h,)),
        (f"{p}/attention_1/self/value/kernel", (h, h)), (f"{p}/attention_1/self/value/bias", (h,)),
        (f"{p}/attention_1/output/dense/kernel", (h, h)), (f"{p}/attention_1/output/dense/bias", (h,)),
        (f"{p}/LayerNorm/beta", (h,)), (f"{p}/LayerNorm/gamma", (h,)),
        (f"{p}/ffn_1/intermediate/dense/kernel", (h, i)), (f"{p}/ffn_1/intermediate/dense/bias", (i,)),
        (f"{p}/ffn_1/intermediate/output/dense/kernel", (i, h)), (f"{p}/ffn_1/intermediate/output/dense/bias", (h,)),
        (f"{p}/LayerNorm_1/beta", (h,)), (f"{p}/LayerNorm_1/gamma", (h,)),
    ]


def test_albert_google_layout():
    cfg = AlbertConfig(vocab_size=V, embedding_size=4, hidden_size=8, num_hidden_layers=4,
                       num_attention_heads=2, intermediate_size=16, max_position_embeddings=P)
    expected = [
        ("bert/embeddings/word_embeddings", (10, 4)),
        ("bert/embeddings/token_type_embeddings", (2, 4)),
        ("bert/embeddings/position_embeddings", (12, 4)),
        ("bert/embeddings/LayerNorm/beta", (4,)), ("bert/embeddings/LayerNorm/gamma", (4,)),
        ("bert/encoder/embedding_hidden_mapping_in/kernel", (4, 8)),
        ("bert/encoder/embedding_hidden_mapping_in/bias", (8,)),
        *_albert_group(0, 0, 8, 16),
        ("bert/pooler/dense/kernel", (8, 8)), ("bert/pooler/dense/bias", (8,)),
        ("cls/predictions/transform/dense/kernel", (8, 4)), ("cls/predictions/transform/dense/bias", (4,)),
        ("cls/predictions/transform/LayerNorm/beta", (4,)), ("cls/predictions/transform/LayerNorm/gamma", (4,)),
        ("cls/predictions/output_bias", (10,)),
        ("cls/seq_relationship/output_weights", (2, 8)), ("cls/seq_relationship/output_bias", (2,)),
    ]
    assert list(tf1_variable_shapes("albert", cfg).items()) == expected
    # E == H: no embedding_hidden_mapping_in
    same = tf1_variable_shapes("albert", cfg.replace(embedding_size=8))
    assert not any("embedding_hidden_mapping_in" in n for n in same)
    # two hidden groups, two inner groups: group_{0,1}/inner_group_{0,1}
    grouped = tf1_variable_shapes("albert", cfg.replace(num_hidden_groups=2, inner_group_num=2))
    groups = sorted({n.split("/")[3] + "/" + n.split("/")[4] for n in grouped if "/transformer/" in n})
    assert groups == ["group_0/inner_group_0", "group_0/inner_group_1",
                      "group_1/inner_group_0", "group_1/inner_group_1"]


def test_albert_brightmart_layout():
    cfg = AlbertConfig(vocab_size=V, embedding_size=4, hidden_size=8, num_hidden_layers=4,
                       num_attention_heads=2, intermediate_size=16, max_position_embeddings=P,
                       layout="brightmart")
    expected = [
        ("bert/embeddings/word_embeddings", (10, 4)),
        ("bert/embeddings/word_embeddings_2", (4, 8)),
        ("bert/embeddings/token_type_embeddings", (2, 8)),
        ("bert/embeddings/position_embeddings", (12, 8)),
        ("bert/embeddings/LayerNorm/beta", (8,)), ("bert/embeddings/LayerNorm/gamma", (8,)),
        *_bert_layer("bert/encoder/layer_shared", 8, 16),
        ("bert/pooler/dense/kernel", (8, 8)), ("bert/pooler/dense/bias", (8,)),
        ("cls/predictions/transform/dense/kernel", (8, 8)), ("cls/predictions/transform/dense/bias", (8,)),
        ("cls/predictions/transform/LayerNorm/beta", (8,)), ("cls/predictions/transform/LayerNorm/gamma", (8,)),
        ("cls/predictions/output_bias", (10,)),
        ("cls/seq_relationship/output_weights", (2, 8)), ("cls/seq_relationship/output_bias", (2,)),
    ]
    assert list(tf1_variable_shapes("albert", cfg).items()) == expected


def test_electra_names():
    cfg = ElectraConfig(vocab_size=V, embedding_size=4, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=P,
                        generator_hidden_size=0.5)
    # generator: hidden 8, 1 head, FFN 32, 1 layer
    expected = [
        ("electra/embeddings/word_embeddings", (10, 4)),
        ("electra/embeddings/token_type_embeddings", (2, 4)),
        ("electra/embeddings/position_embeddings", (12, 4)),
        ("electra/embeddings/LayerNorm/beta", (4,)), ("electra/embeddings/LayerNorm/gamma", (4,)),
        ("electra/embeddings_project/kernel", (4, 16)), ("electra/embeddings_project/bias", (16,)),
        *_bert_layer("electra/encoder/layer_0", 16, 32),
        ("generator/embeddings_project/kernel", (4, 8)), ("generator/embeddings_project/bias", (8,)),
        *_bert_layer("generator/encoder/layer_0", 8, 32),
        ("generator_predictions/dense/kernel", (8, 4)), ("generator_predictions/dense/bias", (4,)),
        ("generator_predictions/LayerNorm/beta", (4,)), ("generator_predictions/LayerNorm/gamma", (4,)),
        ("generator_predictions/output_bias", (10,)),
        ("discriminator_predictions/dense/kernel", (16, 16)), ("discriminator_predictions/dense/bias", (16,)),
        ("discriminator_predictions/dense_1/kernel", (16, 1)), ("discriminator_predictions/dense_1/bias", (1,)),
    ]
    shapes = tf1_variable_shapes("electra", cfg)
    assert list(shapes.items()) == expected
    assert not any("pooler" in n for n in shapes)
    disc = tf1_variable_shapes("electra", cfg, pretraining=False)
    assert list(disc.items()) == expected[:7 + 16]
    gen = tf1_variable_shapes("electra", cfg, component="generator")
    assert list(gen.items()) == expected[:5] + expected[7 + 16:-4]
    # E == H: no embeddings_project for the discriminator
    same = tf1_variable_shapes("electra", cfg.replace(embedding_size=16))
    assert "electra/embeddings_project/kernel" not in same and "generator/embeddings_project/kernel" in same
    with pytest.raises(ConfigError, match="sentence"):
        tf1_variable_shapes("electra", cfg, sentence_head="nsp")


def _mobilebert_layer(n, norm, h, b, i, ffns, attention):
    p = f"bert/encoder/layer_{n}"
    names = [(f"{p}/bottleneck/input/dense/kernel", (h, b)), (f"{p}/bottleneck/input/dense/bias", (b,)),
             (f"{p}/bottleneck/input/{norm}/beta", (b,)), (f"{p}/bottleneck/input/{norm}/gamma", (b,))]
    if attention == "kq_shared":
        names += [(f"{p}/bottleneck/attention/dense/kernel", (h, b)), (f"{p}/bottleneck/attention/dense/bias", (b,)),
                  (f"{p}/bottleneck/attention/{norm}/beta", (b,)), (f"{p}/bottleneck/attention/{norm}/gamma", (b,))]
        qk, v = b, h
    elif attention == "bottleneck":
        qk, v = b, b
    else:  # IB-BERT teacher: Q/K/V from the H-wide input
        qk, v = h, h
    names += [(f"{p}/attention/self/query/kernel", (qk, b)), (f"{p}/attention/self/query/bias", (b,)),
              (f"{p}/attention/self/key/kernel", (qk, b)), (f"{p}/attention/self/key/bias", (b,)),
              (f"{p}/attention/self/value/kernel", (v, b)), (f"{p}/attention/self/value/bias", (b,)),
              (f"{p}/attention/output/dense/kernel", (b, b)), (f"{p}/attention/output/dense/bias", (b,)),
              (f"{p}/attention/output/{norm}/beta", (b,)), (f"{p}/attention/output/{norm}/gamma", (b,))]
    for j in range(ffns - 1):
        names += [(f"{p}/ffn_layer_{j}/intermediate/dense/kernel", (b, i)),
                  (f"{p}/ffn_layer_{j}/intermediate/dense/bias", (i,)),
                  (f"{p}/ffn_layer_{j}/output/dense/kernel", (i, b)),
                  (f"{p}/ffn_layer_{j}/output/dense/bias", (b,)),
                  (f"{p}/ffn_layer_{j}/output/{norm}/beta", (b,)),
                  (f"{p}/ffn_layer_{j}/output/{norm}/gamma", (b,))]
    names += [(f"{p}/intermediate/dense/kernel", (b, i)), (f"{p}/intermediate/dense/bias", (i,)),
              (f"{p}/output/dense/kernel", (i, b)), (f"{p}/output/dense/bias", (b,)),
              (f"{p}/output/{norm}/beta", (b,)), (f"{p}/output/{norm}/gamma", (b,)),
              (f"{p}/output/bottleneck/dense/kernel", (b, h)), (f"{p}/output/bottleneck/dense/bias", (h,)),
              (f"{p}/output/bottleneck/{norm}/beta", (h,)), (f"{p}/output/bottleneck/{norm}/gamma", (h,))]
    return names


def _mobilebert_expected(norm, e, h, b, i, ffns, attention, layers=2, pooler=False, heads=True):
    names = [("bert/embeddings/word_embeddings", (10, e)),
             ("bert/embeddings/embedding_transformation/kernel", (3 * e, h)),
             ("bert/embeddings/embedding_transformation/bias", (h,)),
             ("bert/embeddings/token_type_embeddings", (2, h)),
             ("bert/embeddings/position_embeddings", (12, h)),
             (f"bert/embeddings/{norm}/beta", (h,)), (f"bert/embeddings/{norm}/gamma", (h,))]
    for n in range(layers):
        names += _mobilebert_layer(n, norm, h, b, i, ffns, attention)
    if pooler:
        names += [("bert/pooler/dense/kernel", (h, h)), ("bert/pooler/dense/bias", (h,))]
    if heads:
        names += [("cls/predictions/transform/dense/kernel", (h, h)),
                  ("cls/predictions/transform/dense/bias", (h,)),
                  ("cls/predictions/transform/LayerNorm/beta", (h,)),
                  ("cls/predictions/transform/LayerNorm/gamma", (h,)),
                  ("cls/predictions/output_bias", (10,))]
        if h != e:
            names += [("cls/predictions/extra_output_weights", (10, h - e))]
        names += [("cls/seq_relationship/output_weights", (2, h)), ("cls/seq_relationship/output_bias", (2,))]
    return names


def _mobilebert_cfg(**kw):
    base = dict(vocab_size=V, embedding_size=4, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=12, intra_bottleneck_size=8, max_position_embeddings=P)
    base.update(kw)
    return MobileBertConfig(**base)


def test_mobilebert_student_kq_shared_no_norm():
    cfg = _mobilebert_cfg(num_feedforward_networks=3)
    got = list(tf1_variable_shapes("mobilebert", cfg).items())
    assert got == _mobilebert_expected("FakeLayerNorm", 4, 16, 8, 12, 3, "kq_shared")
    backbone = list(tf1_variable_shapes("mobilebert", cfg, pretraining=False).items())
    assert backbone == _mobilebert_expected("FakeLayerNorm", 4, 16, 8, 12, 3, "kq_shared", heads=False)


def test_mobilebert_bottleneck_attention_layer_norm_pooler():
    cfg = _mobilebert_cfg(use_bottleneck_attention=True, num_feedforward_networks=2,
                          normalization_type="layer_norm", classifier_activation=True, embedding_size=16)
    got = list(tf1_variable_shapes("mobilebert", cfg).items())
    assert got == _mobilebert_expected("LayerNorm", 16, 16, 8, 12, 2, "bottleneck", pooler=True)
    assert not any("extra_output_weights" in n or "bottleneck/attention" in n for n, _ in got)


def test_mobilebert_teacher_shapes_with_prefix():
    cfg = _mobilebert_cfg(intra_bottleneck_size=32, key_query_shared_bottleneck=False,
                          num_feedforward_networks=1, normalization_type="layer_norm")
    got = tf1_variable_shapes("mobilebert", cfg, prefix="teacher/")
    expected = [("teacher/" + n, s) for n, s in _mobilebert_expected("LayerNorm", 4, 16, 32, 12, 1, "plain")]
    assert list(got.items()) == expected
    assert not any("ffn_layer" in n for n in got)


def test_classify_every_name():
    cfg = _mobilebert_cfg()
    parts = {n: classify_tf1_name(n) for n in tf1_variable_shapes("mobilebert", cfg)}
    assert parts["bert/embeddings/embedding_transformation/kernel"] == "embeddings"
    assert parts["cls/predictions/extra_output_weights"] == "mlm_head"
    assert parts["cls/seq_relationship/output_bias"] == "sentence_head"
    assert classify_tf1_name("bert/encoder/embedding_hidden_mapping_in/kernel") == "embeddings"
    assert classify_tf1_name("generator/encoder/layer_0/output/dense/bias") == "generator"
    assert classify_tf1_name("discriminator_predictions/dense_1/bias") == "discriminator_head"


# ---- parameter counts ---------------------------------------------------------------------

def bert_backbone_count(v, h, layers, i, p=512, t=2, pooler=True):
    """BERT embeddings + encoder (+ pooler) from the formula (Q,K,V,O, two LNs, FFN)."""
    embeddings = v * h + t * h + p * h + 2 * h
    layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
    return embeddings + layers * layer + (h * h + h if pooler else 0)


def test_count_matches_formula_exactly():
    # BERT-base English: the well-known 110M (109.5M)
    en = BertConfig(vocab_size=30522)
    assert count_parameters(("bert", en), "embeddings+encoder+pooler") == bert_backbone_count(30522, 768, 12, 3072)
    assert abs(bert_backbone_count(30522, 768, 12, 3072) / 110e6 - 1) < 0.01
    # with pretraining heads: MLM (H²+H + 2H + V) and NSP (2H + 2)
    assert count_parameters(("bert", en)) == bert_backbone_count(30522, 768, 12, 3072) + \
        (768 * 768 + 768 + 2 * 768 + 30522) + (2 * 768 + 2)
    # MobileBERT zh base-f2, recipes.md formula: 21128·E + 3E·H + H + 512·H + 4H + encoder + H² + 3H + V
    h, b, i, e, v = 768, 144, 512, 768, 21128
    emb = v * e + 3 * e * h + h + 512 * h + 4 * h
    layer = (h * b + b + 2 * b) + 3 * (b * b + b) + (b * b + b + 2 * b) + 2 * (b * i + i + i * b + b + 2 * b) \
        + (b * h + h + 2 * h)
    assert count_parameters("mobilebert_base_f2_zh") == emb + 12 * layer + h * h + 3 * h + v


# Published figures from recipes.md (README where it is precise to 0.5 %, else recipes.md's count).
PUBLISHED = {
    "albert_tiny_zh": 4.08e6, "albert_small_zh": 4.74e6, "albert_base_zh": 10.55e6,
    "albert_large_zh": 16.55e6, "albert_xlarge_zh": 57.6e6, "albert_xxlarge_zh": 221.5e6,
    "electra_small_zh": 12.28e6, "electra_small_ex_zh": 24.5e6, "electra_base_zh": 102e6,
    "electra_large_zh": 324e6,
    "mobilebert_base_f2_zh": 26.3e6, "mobilebert_base_f4_zh": 32.2e6,
    "mobilebert_large_f2_zh": 40.6e6, "mobilebert_large_f4_zh": 52.9e6,
    "ibbert_teacher": 293e6,
    "tinybert_4l_312_zh": 11.4e6, "tinybert_6l_768_zh": 59.7e6,
    "bert_base_zh": 102e6, "roberta_wwm_ext_zh": 102e6, "roberta_wwm_ext_large_zh": 325e6,
}
# recipes.md's own counts ("mine"), where given: a second, finer check.
MINE = {
    "electra_base_zh": 101.7e6, "electra_large_zh": 324.5e6,
    "mobilebert_base_f2_zh": 26.26e6, "mobilebert_base_f4_zh": 32.23e6,
    "mobilebert_large_f2_zh": 40.68e6, "mobilebert_large_f4_zh": 52.93e6,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_preset_counts_within_half_a_percent(name):
    counted = count_parameters(name)
    assert abs(counted / PUBLISHED[name] - 1) <= 0.005, (name, counted)
    assert abs(PRESETS[name].published_params / PUBLISHED[name] - 1) < 1e-9
    if name in MINE:
        assert abs(counted / MINE[name] - 1) <= 0.001, (name, counted)


def test_published_scopes_are_what_recipes_md_counts():
    assert set(PUBLISHED) == set(PRESETS)
    # MobileBERT: embeddings + encoder + MLM head, no pooler/NSP
    assert PRESETS["mobilebert_base_f4_zh"].params_scope == "embeddings+encoder+mlm_head"
    # ELECTRA: the discriminator without heads; adding the generator would break the match
    assert PRESETS["electra_small_zh"].params_scope == "embeddings+encoder"
    assert count_parameters("electra_small_zh", "embeddings+encoder+generator") > 1.04 * 12.28e6
    # base-f4 with the README's intermediate 768 would be 35.8M (recipes.md)
    f4 = PRESETS["mobilebert_base_f4_zh"].config.replace(intermediate_size=768)
    assert abs(count_parameters(("mobilebert", f4), "embeddings+encoder+mlm_head") / 35.8e6 - 1) < 0.005


def test_english_cross_checks_from_recipes():
    # TinyBERT 4L-312 with the English vocab: 14.35M (+0.24M fit_dense)
    tb = PRESETS["tinybert_4l_312_zh"].config.replace(vocab_size=30522)
    assert abs(count_parameters(("tinybert", tb), "embeddings+encoder+pooler") / 14.35e6 - 1) < 0.001
    # MobileBERT English student: emb+enc 24.6M; pre-training adds V×(H−E) = 11.7M
    student = MobileBertConfig(vocab_size=30522, hidden_dropout_prob=0.0)
    assert abs(count_parameters(("mobilebert", student), "embeddings+encoder") / 24.6e6 - 1) < 0.002
    extra = tf1_variable_shapes("mobilebert", student)["cls/predictions/extra_output_weights"]
    assert abs(math.prod(extra) / 11.7e6 - 1) < 0.005
    # IB-BERT teacher English: 294.2M (embeddings + encoder)
    teacher = PRESETS["ibbert_teacher"].config.replace(vocab_size=30522)
    assert abs(count_parameters(("mobilebert", teacher), "embeddings+encoder") / 294.2e6 - 1) < 0.001
    # TinyBERT 6L-768 English: 67M
    tb6 = PRESETS["tinybert_6l_768_zh"].config.replace(vocab_size=30522)
    assert abs(count_parameters(("tinybert", tb6), "embeddings+encoder+pooler") / 67e6 - 1) < 0.005


def test_breakdown_and_scope_errors():
    parts = parameter_breakdown("albert_tiny_zh")
    assert sum(parts.values()) == count_parameters("albert_tiny_zh", "all")
    assert parts["sentence_head"] == 2 * 312 + 2
    with pytest.raises(ConfigError, match="poolr"):
        count_parameters("albert_tiny_zh", "embeddings+poolr")
    with pytest.raises(ConfigError, match="BertConfig"):
        tf1_variable_shapes("albert", BertConfig(vocab_size=10))
