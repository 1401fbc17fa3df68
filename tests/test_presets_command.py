"""`tfcompact presets`: the table and the JSON listing, run through the real command line."""
import json

from tfcompact import cli

# name: (arch, layers, hidden, published figure in millions as printed), from recipes.md
EXPECTED_ROWS = {
    "albert_tiny_zh": ("albert", 4, 312, "4.08M"),
    "albert_xxlarge_zh": ("albert", 12, 4096, "221.50M"),
    "electra_small_zh": ("electra", 12, 256, "12.28M"),
    "electra_large_zh": ("electra", 24, 1024, "324.00M"),
    "mobilebert_base_f4_zh": ("mobilebert", 12, 768, "32.20M"),
    "ibbert_teacher": ("mobilebert", 24, 512, "293.00M"),
    "tinybert_4l_312_zh": ("tinybert", 4, 312, "11.40M"),
    "roberta_wwm_ext_large_zh": ("bert", 24, 1024, "325.00M"),
}


def _table_rows(text):
    rows = {}
    for line in text.splitlines():
        cells = line.split()
        if len(cells) >= 8 and cells[0].endswith(("_zh", "_teacher")) and cells[2].isdigit():
            rows[cells[0]] = cells
    return rows


def test_presets_table(capsys):
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:7] == ["preset", "arch", "layers", "hidden", "params", "published", "diff"]
    rows = _table_rows(out)
    assert len(rows) == 20
    for name, (arch, layers, hidden, published) in EXPECTED_ROWS.items():
        cells = rows[name]
        assert cells[1:4] == [arch, str(layers), str(hidden)], name
        assert cells[5] == published, name
    for name, cells in rows.items():
        counted, published = float(cells[4].rstrip("M")), float(cells[5].rstrip("M"))
        diff = float(cells[6])
        assert abs(diff) <= 0.5, name
        # the printed millions are rounded to 0.01M, so allow for that in the recomputed diff
        assert abs(100 * (counted - published) / published - diff) <= 100 * 0.01 / published + 0.01, name
    # the README figures that differ are listed under the table
    assert "albert_base_zh: README says 12.00M" in out


def test_presets_json_one_architecture(capsys):
    assert cli.main(["presets", "--json", "--arch", "mobilebert"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["name"] for r in rows) == ["ibbert_teacher", "mobilebert_base_f2_zh",
                                               "mobilebert_base_f4_zh", "mobilebert_large_f2_zh",
                                               "mobilebert_large_f4_zh"]
    f2 = next(r for r in rows if r["name"] == "mobilebert_base_f2_zh")
    assert f2["published_params"] == 26_300_000
    assert abs(f2["params"] / 26.26e6 - 1) < 0.001  # recipes.md's own count
    assert f2["params_scope"] == "embeddings+encoder+mlm_head"
    assert f2["config"]["intra_bottleneck_size"] == 144
    assert f2["config"]["key_query_shared_bottleneck"] is False
    assert "pooler" not in f2["params_by_part"]


def test_presets_by_name_and_unknown_name(capsys):
    assert cli.main(["presets", "electra_base_zh"]) == 0
    rows = _table_rows(capsys.readouterr().out)
    assert list(rows) == ["electra_base_zh"]
    assert cli.main(["presets", "electra_bsae_zh"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "electra_base_zh" in err
