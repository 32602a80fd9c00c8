"""The report as text and as JSON: the table of one report, two reports side by side, and reading and
writing the JSON (atomically). :mod:`cogan_tf.evaluate` makes the reports.
"""

from __future__ import annotations

import json
import os
from typing import Dict

from cogan_tf import fileio
from cogan_tf.errors import DataError, UsageError


_DOMAIN_TITLES = {"top": "top G1(z)", "bot": "bot 1-G2(z)", "images": "G(z)", "real": "real"}
# The second domain's column of each pair (the classifier sees G2(z) mapped back where it can be).
_PAIR_TITLES = {"rotate": {"bot": "bot G2 turned"}, "edge": {"bot": "bot G2(z)", "real": "real top", "real_bot": "real edges"}}
_DOMAIN_ROWS = (("classifier_score", "classifier score", "{:.3f}"),
                ("frechet_distance", "Frechet distance to test", "{:.3f}"),
                ("effective_classes", "effective classes", "{:.2f}"))


def format_report(report: dict) -> str:
    """The report as a readable table."""
    drawn = "from grids" if report["seed"] is None else f"seed {report['seed']}"
    lines = [f"{report['model']} report: {report['source']}",
             f"  {report['n']} samples ({drawn}); {report['dataset']} classifier, test accuracy "
             f"{format_value(report['classifier_test_accuracy'], '{:.4f}')}"]
    cols = list(report["domains"]) + ["real"] + (["real_bot"] if "real_bot" in report else [])
    blocks = {**report["domains"], "real": report["real"], **({"real_bot": report["real_bot"]} if "real_bot" in report else {})}
    titles = {**_DOMAIN_TITLES, **_PAIR_TITLES.get(report.get("pair"), {})}
    w = 26
    lines.append("")
    lines.append(f"  {'':{w}}" + "".join(f"{titles.get(c, c):>14}" for c in cols))
    for key, title, fmt in _DOMAIN_ROWS:
        lines.append(f"  {title:{w}}" + "".join(f"{format_value(blocks[c].get(key), fmt):>14}" for c in cols))
    for d in range(10):
        lines.append(f"  {f'class {d} (%)':{w}}" + "".join(f"{100 * blocks[c]['histogram'][d]:>14.1f}" for c in cols))
    if "pairs" in report:
        lines += format_pairs(report["pairs"], w)
    features = report.get("clustering", {}).get("kmeans_features", "z_n, softmax")
    for section, title in (("clustering", "clustering of the test set by the encoder (argmax; kmeans_: the "
                                          f"paper's K-means on [{features}])"),
                           ("latent_code_vs_classifier", "class code z_c vs classifier digit")):
        if section in report:
            lines += ["", f"  {title}"]
            lines += [f"  {k:{w}}{format_value(v, '{:.4f}'):>14}" for k, v in report[section].items()]
    lines += ["", f"  real: test-set score; Frechet distance of {report['n']} training images to the test set "
              "(the floor at this sample size)"]
    return "\n".join(lines)


def format_pairs(p: dict, w: int = 26) -> list:
    """The CoGAN's pair section: the paper's pixel agreement, with each domain's ink beside it."""
    t = p["threshold"]
    lines = ["", f"  pairs: {p['pair']}(G1(z)) vs G2(z), the CoGAN paper's score; pixels binarised at >{t:g}",
             f"  {'pixel agreement':{w}}{p['pixel_agreement']:>14.4f}",
             f"  {'mean |difference|':{w}}{p['mean_abs_difference']:>14.4f}",
             f"  {'label agreement':{w}}{p['label_agreement']:>14.4f}",
             f"  {'unpaired real images':{w}}{p['real']['unpaired_agreement']:>14.4f}  (the agreement without coupling)",
             f"  {'':{w}}{'top G1(z)':>14}{'bot G2(z)':>14}{'real top':>14}{'real bot':>14}",
             f"  {'ink (pixels, %)':{w}}" + "".join(f"{100 * v:>14.2f}" for v in (
                 p["ink"]["top"], p["ink"]["bot"], p["real"]["ink"]["top"], p["real"]["ink"]["bot"])),
             f"  {'blank images (%)':{w}}{100 * p['blank']['top']:>14.2f}{100 * p['blank']['bot']:>14.2f}",
             f"  {'blank in both (% of pairs)':{w}}{100 * p['blank']['both']:>14.2f}"]
    if p.get("warning"):
        lines.append(f"  WARNING: {p['warning']}")
    return lines


def format_value(v, fmt: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, (bool, int)) or not isinstance(v, float):
        return str(v)
    return fmt.format(v)


def flatten(report: dict, prefix: str = "") -> Dict[str, object]:
    """Nested report -> {"domains.top.classifier_score": value, ...}; histograms per class."""
    out: Dict[str, object] = {}
    for k, v in report.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, list):
            out.update({f"{key}.{i}": x for i, x in enumerate(v)})
        else:
            out[key] = v
    return out


def format_compare(a: dict, b: dict, name_a: str = "A", name_b: str = "B") -> str:
    """Two reports side by side, with B - A for every number both have; text fields (source, ...)
    above the table, once when equal and both when they differ."""
    fa, fb = flatten(a), flatten(b)
    keys = list(fa) + [k for k in fb if k not in fa]
    is_num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    numeric = [k for k in keys if is_num(fa.get(k)) or is_num(fb.get(k))]
    lines = [f"A: {name_a}", f"B: {name_b}", ""]
    for k in keys:
        if k in numeric:
            continue
        va, vb = fa.get(k, "-"), fb.get(k, "-")
        lines += [f"{k}: {va}"] if va == vb else [f"{k}:", f"  A: {va}", f"  B: {vb}"]
    w = max([len(k) for k in numeric] + [10]) + 2
    lines += ["", f"{'':{w}}{'A':>14}{'B':>14}{'B - A':>14}"]

    def cell(v):
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:>14d}"
        return f"{format_value(v, '{:.4f}'):>14}"

    for k in numeric:
        va, vb = fa.get(k), fb.get(k)
        if is_num(va) and is_num(vb):
            diff = f"{vb - va:>+14d}" if isinstance(va, int) and isinstance(vb, int) else f"{vb - va:>+14.4f}"
        else:
            diff = f"{'':>14}"
        lines.append(f"{k:{w}}{cell(va)}{cell(vb)}{diff}")
    return "\n".join(lines)


def load_report(path: str) -> dict:
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such report (write one with --out)")
    try:
        with open(path) as f:
            report = json.load(f)
    except ValueError as e:
        raise UsageError(f"{path}: not a JSON report ({e})") from None
    if not isinstance(report, dict) or "domains" not in report:
        raise UsageError(f"{path}: not a report written by cogan_tf.evaluate")
    return report


def write_report(path: str, report: dict) -> str:
    try:
        fileio.atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    except OSError as e:  # the command line checks --out first; this is a disk that filled up meanwhile
        raise DataError(f"{path}: cannot write the report ({e.strerror or e})") from None
    return path
