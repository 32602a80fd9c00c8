"""The table (and a montage of grids) of a CoGAN ablation made by tools/cogan_ablation.sh.

    python tools/ablation_table.py OUT_DIR [--montage docs/grids/ablation/train_00_0499.png] [--grid train_00_0499]

Reads OUT_DIR/<variant>_s<seed>/report.json (written by `python -m cogan_tf.evaluate`) and prints one markdown row
per run and one mean row per variant, in the order the variants first appear in VARIANTS below. The montage has one
row per variant and, per seed, the run's top and bottom grid side by side, at half size (black where a variant has
no run with that seed).
"""

import argparse
import glob
import json
import os
import re
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from cogan_tf import fileio  # noqa: E402

VARIANTS = ("faithful", "loss_on_logits", "bn_per_feature", "h0_feeds_h1", "d_h0_filters_64", "corrected")
FLAGS = {"faithful": "faithful (no flag)", "d_h0_filters_64": "`--d_h0_filters 64`"}
LOST_SCORE = 1.5  # a domain whose classifier score is below this draws one kind of image or none: lost


def runs(out_dir):
    found = {}
    for path in glob.glob(os.path.join(out_dir, "*_s*", "report.json")):
        m = re.fullmatch(r"(.+)_s(\d+)", os.path.basename(os.path.dirname(path)))
        if m:
            with open(path) as f:
                found.setdefault(m.group(1), {})[int(m.group(2))] = json.load(f)
    order = [v for v in VARIANTS if v in found] + sorted(v for v in found if v not in VARIANTS)
    return [(v, found[v]) for v in order]


def row_values(r):
    d, p = r["domains"], r["pairs"]
    return [d["top"]["frechet_distance"], d["top"]["classifier_score"], d["bot"]["frechet_distance"],
            d["bot"]["classifier_score"], p["pixel_agreement"], p["label_agreement"]]


def table(out_dir):
    lines = ["| variant (flags) | seed | top FD | top score | bot FD | bot score | pixel agreement | label agreement "
             "| domains lost |", "|---|---|---|---|---|---|---|---|---|"]
    for variant, by_seed in runs(out_dir):
        name = FLAGS.get(variant, f"`--{variant}`")
        values = []
        for seed in sorted(by_seed):
            v = row_values(by_seed[seed])
            values.append(v)
            lost = sum(score < LOST_SCORE for score in (v[1], v[3]))
            lines.append(f"| {name} | {seed} | {v[0]:.1f} | {v[1]:.2f} | {v[2]:.1f} | {v[3]:.2f} | {v[4]:.3f} | "
                         f"{v[5]:.3f} | {lost} |")
        m = np.mean(values, axis=0)
        lost = sum(score < LOST_SCORE for v in values for score in (v[1], v[3]))
        lines.append(f"| **{name}, mean of {len(values)}** | | **{m[0]:.1f}** | **{m[1]:.2f}** | **{m[2]:.1f}** | "
                     f"**{m[3]:.2f}** | **{m[4]:.3f}** | **{m[5]:.3f}** | **{lost} of {2 * len(values)}** |")
    return "\n".join(lines)


def montage(out_dir, grid, path):
    rows = []
    found = runs(out_dir)
    seeds = sorted({seed for _, by_seed in found for seed in by_seed})  # a column pair per seed of any variant
    for variant, by_seed in found:
        cells = []
        for seed in seeds:
            if seed not in by_seed:  # this variant has no run with this seed: black cells
                cells += [np.zeros((112, 112), np.uint8)] * 2
                continue
            for side in ("top", "bot"):
                png = os.path.join(out_dir, f"{variant}_s{seed}", "samples", side, f"{grid}.png")
                if not os.path.isfile(png):
                    sys.exit(f"error: {png}: no such grid (--grid names one of samples/{side}/*.png without .png)")
                with Image.open(png) as im:
                    cells.append(np.asarray(im.convert("L").resize((112, 112))))
        rows.append(np.concatenate(cells, axis=1))
    with fileio.atomic_path(path) as tmp:
        Image.fromarray(np.concatenate(rows, axis=0)).save(tmp, format="PNG")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--montage", help="write a PNG of every run's grids here")
    ap.add_argument("--grid", default="train_00_0499", help="which grid the montage shows [train_00_0499]")
    a = ap.parse_args(argv)
    if not runs(a.out_dir):
        sys.exit(f"error: {a.out_dir}: no <variant>_s<seed>/report.json (run tools/cogan_ablation.sh first)")
    print(table(a.out_dir))
    if a.montage:
        montage(a.out_dir, a.grid, a.montage)
        print(f"wrote {a.montage}", file=sys.stderr)  # stdout is the table alone, to redirect into a file


if __name__ == "__main__":
    main(sys.argv[1:])
