"""`tfcompact presets`: the published Chinese model presets and their parameter counts.

Counts come from the TF1 variable shapes (nothing is built), summed over the parts the
published figure covers, so the table shows that each preset reproduces its published size.
"""
from __future__ import annotations

import argparse
import json
import sys

from tfcompact.configs import PRESETS, Preset, get_preset
from tfcompact.interop.tf1_names import count_parameters, parameter_breakdown


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="PRESET",
                        help="only these presets (default: all)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list (config, counts per part, scope) instead of a table")
    parser.add_argument("--arch", choices=sorted({p.arch for p in PRESETS.values()}),
                        help="only presets of this architecture")


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M"


def preset_row(preset: Preset) -> dict:
    """The facts one table row (or JSON entry) shows for `preset`."""
    counted = count_parameters(preset)
    config = preset.config
    return {
        "name": preset.name,
        "arch": preset.arch,
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "params": counted,
        "published_params": preset.published_params,
        "difference_percent": round(100.0 * (counted - preset.published_params) / preset.published_params, 3),
        "params_scope": preset.params_scope,
        "readme_params": preset.readme_params,
        "teacher": preset.teacher,
        "params_by_part": parameter_breakdown(preset),
        "source": preset.source,
        "note": preset.note,
        "config": config.to_dict(),
    }


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table: name, architecture, layers, hidden, counted, published, diff."""
    header = ("preset", "arch", "layers", "hidden", "params", "published", "diff %", "counted parts")
    lines = [(r["name"], r["arch"], str(r["layers"]), str(r["hidden"]), _millions(r["params"]),
              _millions(r["published_params"]), f"{r['difference_percent']:+.2f}",
              r["params_scope"]) for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    right = {2, 3, 4, 5, 6}

    def fmt(cells) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(line) for line in lines])


def run(args: argparse.Namespace) -> int:
    presets = [get_preset(n) for n in args.names] if args.names else list(PRESETS.values())
    if args.arch:
        presets = [p for p in presets if p.arch == args.arch]
    rows = [preset_row(p) for p in presets]
    if args.json:
        json.dump(rows, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(format_table(rows))
        notes = [f"  {r['name']}: README says {_millions(r['readme_params'])}"
                 for r in rows if r["readme_params"] is not None]
        if notes:
            print("\nREADME figures that are rounded or for another vocabulary; the 'published' "
                  "column uses the reproducible figure (see `tfcompact presets --json NAME`):")
            print("\n".join(notes))
    return 0
