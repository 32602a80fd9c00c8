"""The report as text and as JSON: the table of one report, two reports side by side, and reading and
writing the JSON (atomically). :mod:`cogan_tf.evaluate` makes the reports.
"""

from __future__ import annotations

import json
from typing import Callable, Dict, Optional

from cogan_tf import data, fileio, outputs
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
    digits = report["dataset"] == "mnist"
    for d, name in enumerate(data.CLASS_NAMES.get(report["dataset"], map(str, range(10)))):
        label = f"class {d} (%)" if digits else f"class {d} {name} (%)"  # a digit names itself
        lines.append(f"  {label:{w}}" + "".join(f"{100 * blocks[c]['histogram'][d]:>14.1f}" for c in cols))
    if "pairs" in report:
        lines += format_pairs(report["pairs"], w)
    features = report.get("clustering", {}).get("kmeans_features", "z_n, softmax")
    for section, title in (("clustering", "clustering of the test set by the encoder (argmax; kmeans_: the "
                                          f"paper's K-means on [{features}])"),
                           ("latent_code_vs_classifier",
                            f"class code z_c vs classifier {'digit' if digits else 'class'}")):
        if section in report:
            lines += ["", f"  {title}"]
            lines += [f"  {k:{w}}{format_value(v, '{:.4f}'):>14}" for k, v in report[section].items()]
    lines += ["", f"  real: test-set score; Frechet distance of {report['n']} training images to the test set "
              "(the floor at this sample size)"]
    return "\n".join(lines)


def format_pairs(p: dict, w: int = 26) -> list:
    """The CoGAN's pair section: the paper's pixel agreement, with each domain's ink beside it, and where
    the disagreeing pixels are (reports written before that part have it left out)."""
    t, real = p["threshold"], p["real"]
    lines = ["", f"  pairs: {p['pair']}(G1(z)) vs G2(z), the CoGAN paper's score; pixels binarised at >{t:g}",
             f"  {'pixel agreement':{w}}{p['pixel_agreement']:>14.4f}",
             f"  {'mean |difference|':{w}}{p['mean_abs_difference']:>14.4f}"]
    if "agreement_within_1px" in p:
        only = p["inked_in_one_only"]
        lines += [f"  {'agreement within 1 pixel':{w}}{p['agreement_within_1px']:>14.4f}  (ink 1 pixel off agrees)",
                  f"  {'inked in one image only':{w}}{100 * only['transform']:>13.2f}%{100 * only['bot']:>13.2f}%"
                  f"  (% of pixels: in {p['pair']}(G1) only, in G2 only)"]
    lines += [f"  {'label agreement':{w}}{p['label_agreement']:>14.4f}",
              f"  {'unpaired real images':{w}}{real['unpaired_agreement']:>14.4f}  (the agreement without coupling)"]
    if "shifted_1px_agreement" in real:
        lines.append(f"  {'real pairs 1 pixel apart':{w}}{real['shifted_1px_agreement']:>14.4f}"
                     "  (each test image against its own pair moved 1 pixel)")
    lines += [f"  {'':{w}}{'top G1(z)':>14}{'bot G2(z)':>14}{'real top':>14}{'real bot':>14}",
              f"  {'ink (pixels, %)':{w}}" + "".join(f"{100 * v:>14.2f}" for v in (
                  p["ink"]["top"], p["ink"]["bot"], real["ink"]["top"], real["ink"]["bot"])),
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
    """A report written by ``python -m cogan_tf.evaluate --out``, or a one-line DataError naming ``path``."""
    report = fileio.read_json(path, "a JSON report of python -m cogan_tf.evaluate (written with --out)")
    if not isinstance(report, dict) or not isinstance(report.get("domains"), dict):
        raise DataError(f"{path}: not a report written by python -m cogan_tf.evaluate (no \"domains\" object)")
    return report


def write_report(path: str, report: dict) -> str:
    try:
        fileio.atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    except OSError as e:  # the command line checks --out first; this is a disk that filled up meanwhile
        raise DataError(f"{path}: cannot write the report ({e.strerror or e})") from None
    return path


def scored_dataset(given: Optional[str], recorded: Optional[str], source: str, where: str,
                   log: Callable[[str], None] = print) -> str:
    """The dataset a model is scored against: the one it was trained on (``recorded``, read from ``where``),
    which a contradicting ``given`` (--dataset) may not replace; ``given``, else mnist, when nothing is
    recorded (an export without its marker file: one line says so)."""
    if recorded is None:
        if given is None:
            log(f" [!] {source} does not record the dataset it was trained on (no {outputs.EXPORT_MARKER}): scored "
                "against mnist; pass --dataset to choose")
        return given or "mnist"
    if recorded not in data.DATASETS:
        raise DataError(f"{source}: {where} records the dataset {recorded!r}, none of {', '.join(data.DATASETS)}")
    if given is not None and given != recorded:
        raise UsageError(f"--dataset={given}: {source} was trained on {recorded} ({where}); drop --dataset to score "
                         f"it against {recorded}")
    return recorded
