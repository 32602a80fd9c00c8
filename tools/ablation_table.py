"""The table (and a montage of grids) of a CoGAN ablation made by tools/cogan_ablation.sh.

    python tools/ablation_table.py OUT_DIR [--montage docs/grids/ablation/train_00_0499.png] [--grid train_00_0499]

Reads OUT_DIR/<variant>_s<seed>/report.json (written by `python -m cogan_tf.evaluate`) and prints one markdown row
per run and one mean row per variant, in the order the variants first appear in VARIANTS below. The montage has one
row per variant and, per seed, the run's top and bottom grid side by side, at half size (black where a variant has
no run with that seed).
"""

import glob
import os
import re
import sys

import numpy as np
from absl import flags
from PIL import Image

from cogan_tf import cli, fileio, images
from cogan_tf.errors import DataError, UsageError
from cogan_tf.evaluate.reports import load_report

VARIANTS = ("faithful", "loss_on_logits", "bn_per_feature", "h0_feeds_h1", "d_h0_filters_64", "corrected")
VARIANT_FLAGS = {"faithful": "faithful (no flag)", "d_h0_filters_64": "`--d_h0_filters 64`"}
LOST_SCORE = 1.5  # a domain whose classifier score is below this draws one kind of image or none: lost
CELL = 112  # a grid's side in the montage: half of an 8x8 grid's 224


def runs(out_dir):
    """[(variant, {seed: the run's table values})], every report read and checked."""
    found = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "*_s*", "report.json"))):
        m = re.fullmatch(r"(.+)_s(\d+)", os.path.basename(os.path.dirname(path)))
        if m:
            found.setdefault(m.group(1), {})[int(m.group(2))] = row_values(load_report(path), path)
    order = [v for v in VARIANTS if v in found] + sorted(v for v in found if v not in VARIANTS)
    return [(v, found[v]) for v in order]


def row_values(r, path):
    """The table's numbers of one CoGAN report, or a one-line DataError naming it."""
    try:
        d, p = r["domains"], r["pairs"]
        values = [d["top"]["frechet_distance"], d["top"]["classifier_score"], d["bot"]["frechet_distance"],
                  d["bot"]["classifier_score"], p["pixel_agreement"], p["label_agreement"]]
    except (KeyError, TypeError):
        values = None
    if values is None or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise DataError(f"{path}: not a CoGAN report (its domains top and bot and its pairs need their "
                        "frechet_distance, classifier_score, pixel_agreement and label_agreement numbers)")
    return values


def table(found):
    lines = ["| variant (flags) | seed | top FD | top score | bot FD | bot score | pixel agreement | label agreement "
             "| domains lost |", "|---|---|---|---|---|---|---|---|---|"]
    for variant, by_seed in found:
        name = VARIANT_FLAGS.get(variant, f"`--{variant}`")
        values = []
        for seed in sorted(by_seed):
            v = by_seed[seed]
            values.append(v)
            lost = sum(score < LOST_SCORE for score in (v[1], v[3]))
            lines.append(f"| {name} | {seed} | {v[0]:.1f} | {v[1]:.2f} | {v[2]:.1f} | {v[3]:.2f} | {v[4]:.3f} | "
                         f"{v[5]:.3f} | {lost} |")
        m = np.mean(values, axis=0)
        lost = sum(score < LOST_SCORE for v in values for score in (v[1], v[3]))
        lines.append(f"| **{name}, mean of {len(values)}** | | **{m[0]:.1f}** | **{m[1]:.2f}** | **{m[2]:.1f}** | "
                     f"**{m[3]:.2f}** | **{m[4]:.3f}** | **{m[5]:.3f}** | **{lost} of {2 * len(values)}** |")
    return "\n".join(lines)


def half_size(png):
    """A grid PNG (read as ``python -m cogan_tf.evaluate --grids`` reads one, refused in one line if it
    cannot be) at CELL x CELL pixels."""
    shape = images.grid_shape(png)
    grid = images.make_grid(images.read_grid(png), shape.rows, shape.cols)
    return np.asarray(Image.fromarray(grid).resize((CELL, CELL)))


def montage(out_dir, found, grid):
    """The montage's pixels: a row per variant, per seed the run's top and bottom grid."""
    rows = []
    seeds = sorted({seed for _, by_seed in found for seed in by_seed})  # a column pair per seed of any variant
    for variant, by_seed in found:
        cells = []
        for seed in seeds:
            if seed not in by_seed:  # this variant has no run with this seed: black cells
                cells += [np.zeros((CELL, CELL), np.uint8)] * 2
                continue
            for side in ("top", "bot"):
                png = os.path.join(out_dir, f"{variant}_s{seed}", "samples", side, f"{grid}.png")
                if not os.path.isfile(png):
                    raise UsageError(f"{png}: no such grid (--grid names one of samples/{side}/*.png without .png)")
                cells.append(half_size(png))
        rows.append(np.concatenate(cells, axis=1))
    return np.concatenate(rows, axis=0)


def define_flags():
    flags.DEFINE_string("montage", None, "Also write a PNG of every run's grids here [none]")
    flags.DEFINE_string("grid", "train_00_0499", "Which grid the montage shows [train_00_0499]")


def main(argv):
    f = flags.FLAGS
    if len(argv) < 2:
        raise UsageError("give OUT_DIR, the folder tools/cogan_ablation.sh wrote its runs to (see --help)")
    if len(argv) > 2:
        raise UsageError(f"unexpected arguments {' '.join(argv[2:])!r}: give one OUT_DIR (see --help)")
    out_dir = argv[1]
    # Inputs and the output checked first; the table is printed only when everything can be done.
    cli.check_outputs([("--montage", f.montage)], inputs=[out_dir])
    found = runs(out_dir)
    if not found:
        raise UsageError(f"{out_dir}: no <variant>_s<seed>/report.json (run tools/cogan_ablation.sh first)")
    pixels = montage(out_dir, found, f.grid) if f.montage else None
    print(table(found))
    if f.montage:
        with fileio.atomic_path(f.montage) as tmp:
            Image.fromarray(pixels).save(tmp, format="PNG")
        print(f"wrote {f.montage}", file=sys.stderr)  # stdout is the table alone, to redirect into a file
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main, plain_args=True)
