"""Parity with HuggingFace's TF1-checkpoint loaders (optional: needs torch + transformers).

`check_hf_parity` loads one of our TF1 exports with `transformers`'
`load_tf_weights_in_{bert,albert,electra,mobilebert}`, confirms that every HF parameter was
set (each one differs from a fresh initialisation), and compares HF's outputs with our Keras
model's on the same inputs. This is the check users of the original checkpoints care about
("it must just work" in HF), and it pins down details a name table alone cannot (transposes,
GELU flavour, LayerNorm epsilon, MobileBERT's extra output weights).
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from dataclasses import dataclass, field

import numpy as np

from tfcompact.architectures import ARCHITECTURES
from tfcompact.interop import hf_names



@dataclass
class ParityReport:
    """Result of one parity check."""
    arch: str
    component: str
    num_parameters: int
    unset_parameters: list[str] = field(default_factory=list)
    skipped_variables: list[str] = field(default_factory=list)
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    max_abs_value: dict[str, float] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values()) if self.max_abs_diff else float("nan")

    def line(self) -> str:
        diffs = ", ".join(f"{k} {v:.2e} (of max |value| {self.max_abs_value.get(k, float('nan')):.3g})"
                          for k, v in self.max_abs_diff.items())
        return (f"{self.arch}/{self.component}: {self.num_parameters} HF parameters, "
                f"{len(self.unset_parameters)} unset, {len(self.skipped_variables)} TF1 variables "
                f"skipped by HF; max |HF - ours|: {diffs}")


def hf_config(arch: str, config, component: str = "discriminator"):
    """The transformers config equivalent to one of our configs (the export's config.json, see
    `hf_names.hf_config_dict`), dropout off."""
    import transformers as hf

    d = hf_names.hf_config_dict(arch, config, component=component)
    d.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    if arch == "albert":
        d["classifier_dropout_prob"] = 0.0
    cls = getattr(hf, f"{hf_names.hf_stem(arch)}Config")
    return cls(**{k: v for k, v in d.items() if k not in ("architectures", "model_type")})


def _hf_model(arch: str, cfg, component: str):
    import transformers as hf

    if arch in ("bert", "tinybert"):
        return hf.BertForPreTraining(cfg), hf.load_tf_weights_in_bert
    if arch == "albert":
        return hf.AlbertForPreTraining(cfg), hf.load_tf_weights_in_albert
    if arch == "electra":
        from transformers.models.electra.modeling_electra import load_tf_weights_in_electra

        model = hf.ElectraForMaskedLM(cfg) if component == "generator" else hf.ElectraForPreTraining(cfg)
        return model, (lambda m, c, p: load_tf_weights_in_electra(
            m, c, p, discriminator_or_generator=component))
    if arch == "mobilebert":
        return hf.MobileBertForPreTraining(cfg), hf.load_tf_weights_in_mobilebert
    raise ValueError(f"no HF model for architecture {arch!r}")


class _SkipCollector(logging.Handler):
    """Collects the TF1 names HF's loaders report as skipped (logged, not raised)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.skipped: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("Skipping ") and len(msg.split()) > 1:
            self.skipped.append(msg.split()[1])


def load_hf_from_tf1(arch: str, config, checkpoint_prefix: str, component: str = "discriminator"):
    """(HF model in eval mode, HF parameters left at their fresh values, TF1 names HF skipped)."""
    import torch
    from transformers.utils import logging as hf_logging

    torch.manual_seed(0)
    cfg = hf_config(arch, config, component)
    model, loader = _hf_model(arch, cfg, component)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    collector = _SkipCollector()
    root = hf_logging.get_logger("transformers")
    old_level = root.level
    root.addHandler(collector)
    root.setLevel(logging.INFO)
    quiet = [h for h in root.handlers if h is not collector]
    levels = [h.level for h in quiet]
    for h in quiet:  # keep HF's per-variable INFO lines off the console
        h.setLevel(logging.WARNING)
    printed = io.StringIO()  # the ELECTRA loader print()s its progress and its skips
    try:
        with contextlib.redirect_stdout(printed):
            loader(model, cfg, checkpoint_prefix)
    finally:
        root.removeHandler(collector)
        root.setLevel(old_level)
        for h, level in zip(quiet, levels):
            h.setLevel(level)
    skipped = collector.skipped + [line.split()[1] for line in printed.getvalue().splitlines()
                                   if line.startswith("Skipping ") and len(line.split()) > 1]
    # zero-element parameters (e.g. MobileBERT's extra output weights when E == H) hold nothing
    unset = [n for n, p in model.named_parameters()
             if p.numel() > 0 and torch.equal(p.detach(), before[n])]
    model.eval()
    return model, unset, skipped


def _ours(model, arch: str, component: str, ids, mask, types, positions) -> dict[str, np.ndarray]:
    inputs = {"input_ids": ids, "input_mask": mask, "segment_ids": types}
    if arch == "electra":
        if component == "generator":
            out = dict(model.generator(inputs, training=False))
            out["mlm_logits"] = model.generator_head(out["sequence_output"], positions)
        else:
            out = dict(model.discriminator(inputs, training=False))
            out["rtd_logits"] = model.discriminator_head(out["sequence_output"])
    else:
        out = model({**inputs, "masked_lm_positions": positions}, training=False)
    return {k: np.asarray(v) for k, v in out.items() if not isinstance(v, (list, tuple))}


def _theirs(hf_model, arch: str, component: str, ids, mask, types, positions) -> dict[str, np.ndarray]:
    import torch

    with torch.no_grad():
        t = {"input_ids": torch.tensor(ids, dtype=torch.long),
             "attention_mask": torch.tensor(mask, dtype=torch.long),
             "token_type_ids": torch.tensor(types, dtype=torch.long)}
        out = hf_model(**t, output_hidden_states=True)
    seq = out.hidden_states[-1].numpy()
    res = {"sequence_output": seq}
    idx = positions.astype(np.int64)
    gather = lambda x: np.take_along_axis(x, idx[..., None], axis=1)  # noqa: E731
    if arch == "electra":
        if component == "generator":
            res["mlm_logits"] = gather(out.logits.numpy())
        else:
            res["rtd_logits"] = out.logits.numpy()
        return res
    res["mlm_logits"] = gather(out.prediction_logits.numpy())
    if arch != "mobilebert" or hf_model.config.classifier_activation:
        base = getattr(hf_model, ARCHITECTURES[arch].hf_model_type)
        with torch.no_grad():
            res["pooled_output"] = base(**t).pooler_output.numpy()
    logits = getattr(out, "sop_logits", None)
    if logits is None:
        logits = getattr(out, "seq_relationship_logits", None)
    if logits is not None:
        res["sentence_logits"] = logits.numpy()
    return res


def load_hf_export(arch: str, keras_model, config, out_dir: str, component: str = "discriminator"):
    """(HF model in eval mode, missing keys, unexpected keys) of our `export --format
    huggingface` of `keras_model`, loaded with `from_pretrained` as a user would."""
    import transformers as hf

    from tfcompact.interop.huggingface import export_huggingface

    os.makedirs(out_dir, exist_ok=True)
    export_huggingface(keras_model, arch, config, None, out_dir, component=component)
    with open(os.path.join(out_dir, "config.json"), encoding="utf-8") as f:
        cls = getattr(hf, json.load(f)["architectures"][0])
    model, info = cls.from_pretrained(out_dir, output_loading_info=True)
    return model.eval(), list(info["missing_keys"]), list(info["unexpected_keys"])


def check_hf_parity(arch: str, config, keras_model, checkpoint_prefix: str, *,
                    component: str = "discriminator", batch: int = 2, seq: int = 16,
                    padded: bool = True, seed: int = 0, via: str = "tf1") -> ParityReport:
    """Load `checkpoint_prefix` (our TF1 export of `keras_model`) into HF and compare outputs.
    With `via="huggingface"`, export `keras_model` as a HuggingFace directory at
    `checkpoint_prefix` instead and load that with `from_pretrained` (unset = missing keys,
    skipped = unexpected keys).

    `padded=False` feeds full-length rows only: MobileBERT masks padding with -6 in the
    original (and here) but with the dtype minimum in HF, so padded rows legitimately differ.
    """
    if via == "huggingface":  # checkpoint_prefix: the directory to export into
        hf_model, unset, skipped = load_hf_export(arch, keras_model, config, checkpoint_prefix, component)
    else:
        hf_model, unset, skipped = load_hf_from_tf1(arch, config, checkpoint_prefix, component)
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, config.vocab_size, size=(batch, seq)).astype(np.int32)
    mask = np.ones((batch, seq), np.int32)
    if padded:
        mask[1:, seq // 2:] = 0
        ids = ids * mask
    types = np.zeros((batch, seq), np.int32)
    types[:, seq // 3:] = 1
    types *= mask
    positions = np.stack([np.sort(rng.choice(np.arange(1, seq // 2), 3, replace=False))
                          for _ in range(batch)]).astype(np.int32)
    ours = _ours(keras_model, arch, component, ids, mask, types, positions)
    theirs = _theirs(hf_model, arch, component, ids, mask, types, positions)
    report = ParityReport(arch, component, sum(1 for _ in hf_model.parameters()), unset, skipped)
    for k, v in theirs.items():
        if k in ours:
            a, b = ours[k], v
            if k == "sequence_output" and padded:
                keep = mask.astype(bool)  # padded positions are not defined outputs
                a, b = a[keep], b[keep]
            report.max_abs_diff[k] = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
            report.max_abs_value[k] = float(np.max(np.abs(a)))
    return report


def write_reports(reports: list[ParityReport], path: str) -> None:
    """Save reports as JSON (for the benchmark notes)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump([r.__dict__ for r in reports], f, indent=2)
    os.chmod(path, 0o644)


def parity_for(arch_or_preset: str, workdir: str, *, tiny: bool = True, seed: int = 0,
               scale: float = 0.05, via: str = "tf1") -> list[ParityReport]:
    """Build a randomly initialised model (tiny by default), export it as TF1 (or, with
    `via="huggingface"`, as a HuggingFace directory) and check it against HF; ELECTRA gives
    two reports (discriminator, generator)."""
    from tfcompact.configs import get_preset, tiny_config
    from tfcompact.interop.convert import export_tf1
    from tfcompact.models import build_pretraining_model

    if tiny:
        arch, config = arch_or_preset, tiny_config(arch_or_preset)
    else:
        preset = get_preset(arch_or_preset)
        arch, config = preset.arch, preset.config
    # HF's MobileBERT always has the NSP head; give ours one so every HF parameter has a source
    model = build_pretraining_model(arch, config, sentence_head="nsp" if arch == "mobilebert" else None)
    rng = np.random.default_rng(seed)
    for v in model.weights:
        if not v.path.endswith("seed_generator_state"):
            value = scale * rng.standard_normal(v.shape) + (1.0 if v.path.endswith("gamma") else 0.0)
            v.assign(value.astype(v.dtype))
    os.makedirs(workdir, exist_ok=True)
    components = ("discriminator", "generator") if arch == "electra" else ("discriminator",)
    if via == "huggingface":
        return [check_hf_parity(arch, config, model, os.path.join(workdir, f"hf_{c}"), component=c,
                                padded=arch != "mobilebert", via=via) for c in components]
    export_tf1(model, arch, config, None, workdir)
    prefix = os.path.join(workdir, "model.ckpt")
    return [check_hf_parity(arch, config, model, prefix, component=c, padded=arch != "mobilebert")
            for c in components]


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="HF parity of tfcompact's TF1 and HuggingFace exports")
    # One per HF model type (TinyBERT is a BERT there).
    default = [name for name, a in ARCHITECTURES.items() if name == a.hf_model_type]
    parser.add_argument("names", nargs="*", default=default,
                        help="architectures (tiny configs) or, with --presets, preset names")
    parser.add_argument("--presets", action="store_true", help="use full-size presets")
    parser.add_argument("--via", choices=("tf1", "huggingface"), default="tf1",
                        help="tf1: HF's load_tf_weights_in_* on our TF1 export; huggingface: "
                             "from_pretrained on our `export --format huggingface`")
    parser.add_argument("--scale", type=float, default=0.05,
                        help="std of the random weights (gammas 1 + that); 0.02 is BERT's init")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names:
            for report in parity_for(name, os.path.join(tmp, name), tiny=not args.presets,
                                     scale=args.scale, via=args.via):
                print(report.line())
