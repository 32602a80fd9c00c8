"""The CoGAN paper's score over training: every checkpoint of a run, scored as ``python -m cogan_tf.evaluate``
scores an export (same samples, same pair transform, same report), and several runs' curves combined.

The paper picked its iteration count by a grid search and averaged five runs (docs/ORIGINAL.md §5.3):
:func:`score_checkpoints` gives one run's curve (pixel agreement, each domain's ink and classifier score,
per checkpoint), :func:`combine` the mean and spread over runs of different seeds with the best point and
the last. Keep every checkpoint with ``python main.py ... --save_every 500 --keep_checkpoints 0`` (the
loop keeps five by default). ``tools/cogan_curve.py`` is the command line.
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable, List, Optional, Sequence

import numpy as np

from cogan_tf.config import COGAN_MAX_SHARED
from cogan_tf.errors import DataError, UsageError
from cogan_tf.evaluate.image_metrics import DEFAULT_THRESHOLD
from cogan_tf.evaluate.samples import DEFAULT_N, load_saved_model, sample_stream
from cogan_tf.evaluate.scoring import evaluate_samples, load_classifier, make_reference

def point(report: dict, step: Optional[int] = None, source: str = "") -> dict:
    """One point of a curve: the pair section of an ``evaluate_samples`` report with each domain's
    classifier score and Fréchet distance beside it."""
    p = report["pairs"]
    return {"step": step, "source": source, "pair": report["pair"], "pixel_agreement": p["pixel_agreement"],
            "mean_abs_difference": p["mean_abs_difference"], "label_agreement": p["label_agreement"],
            "agreement_within_1px": p.get("agreement_within_1px"), "inked_in_one_only": p.get("inked_in_one_only"),
            "ink": p["ink"], "blank": p["blank"], "warning": p["warning"],
            "classifier_score": {d: report["domains"][d]["classifier_score"] for d in ("top", "bot")},
            "frechet_distance": {d: report["domains"][d]["frechet_distance"] for d in ("top", "bot")}}


def score_saved_model(path: str, clf, ref, n: int = DEFAULT_N, seed: int = 0,
                      threshold: float = DEFAULT_THRESHOLD, step: Optional[int] = None) -> dict:
    """One point: a CoGAN export (it records its pair), ``n`` pairs from z of ``seed``."""
    samples = sample_stream(load_saved_model(path), n=n, seed=seed, source=path)
    if samples.model != "cogan":
        raise UsageError(f"{path}: a {samples.model} export; the pair score is for a CoGAN's two domains")
    return point(evaluate_samples(samples, clf, ref, real=False, threshold=threshold), step, path)


def setting(record) -> dict:
    """What a run's curve may be combined by (``record``: its ``record.RunRecord``): its recipe and how many
    layers its networks share."""
    model_config = record.config.get("model_config", {})
    return {k: model_config.get(k) for k in ("recipe", "g_shared_layers", "d_shared_layers")}


def score_checkpoints(checkpoint_dir: str, data_dir: str, n: int = DEFAULT_N, seed: int = 0,
                      threshold: float = DEFAULT_THRESHOLD, model: Optional[str] = None, dataset: Optional[str] = None,
                      clf=None, done: Optional[dict] = None, log: Callable[[str], None] = print,
                      max_step: Optional[int] = None) -> dict:
    """The curve of one run: every checkpoint in ``checkpoint_dir`` (the run's folder, or the folder
    holding it), oldest first, restored into the run's generator, exported and scored (:func:`point`);
    with ``max_step``, only those of that step or earlier. ``done``: an earlier curve of the same run (its
    JSON); its points are reused for the checkpoints they name (path and step) when it was scored with the
    same sample count, seed and threshold."""
    import keras

    from cogan_tf import checkpoints, record as record_lib, runner

    record = record_lib.find_run(checkpoint_dir, model)
    gan = runner.gan_from_checkpoint(record.directory, data_dir, model, log=lambda s: None)
    dataset = dataset or gan.train_cfg.dataset
    paths = sorted(record.checkpoint_paths(), key=checkpoints.checkpoint_step)
    if max_step is not None:
        paths = [p for p in paths if checkpoints.checkpoint_step(p) <= max_step]
    if not paths:
        raise DataError(f"{record.directory}: no checkpoint to score"
                        + (f" at step {max_step:,} or earlier" if max_step is not None else ""))
    clf = clf or load_classifier(data_dir, dataset, log=log)
    ref = make_reference(clf, data_dir, dataset)
    # The models without their optimizers: what sampling needs, as evaluation restores them.
    objects = {k: v for k, v in gan.trackables().items() if not isinstance(v, keras.optimizers.Optimizer)}
    same = done is not None and (done.get("n"), done.get("seed"), done.get("threshold")) == (n, seed, threshold)
    kept = {(d.get("source"), d.get("step")): d for d in done["points"]} if same else {}
    points = []
    for path in paths:
        step = checkpoints.checkpoint_step(path)
        if (path, step) in kept:
            points.append(kept[(path, step)])
            continue
        checkpoints.restore_objects(objects, path)
        with tempfile.TemporaryDirectory(prefix="cogan_tf-curve-") as tmp:
            points.append(score_saved_model(gan.export(tmp), clf, ref, n, seed, threshold, step))
        points[-1]["source"] = path
        log(f" [*] step {step}: pixel agreement {points[-1]['pixel_agreement']:.4f} ({os.path.basename(path)})")
    return {"run": record.directory, "pair": points[0]["pair"], "dataset": dataset, "n": n, "seed": seed,
            "threshold": threshold, "setting": setting(record), "points": points,
            **best_and_last(points)}


def best_and_last(points: List[dict]) -> dict:
    """The point of highest pixel agreement among those without the blank warning (all of them if every
    one has it), and the last point."""
    clean = [p for p in points if not p.get("warning")] or points
    return {"best": max(clean, key=lambda p: p["pixel_agreement"]), "last": points[-1]}


def combine(curves: Sequence[dict]) -> dict:
    """Several runs' curves (of the same pair and settings, different seeds): per step that every run
    scored, the mean and standard deviation (ddof 0) of the pixel agreement and of each domain's ink and
    classifier score; the best step (highest mean) and the last common step."""
    _check_together(curves, "combine")
    by_step = [{p["step"]: p for p in c["points"]} for c in curves]
    steps = sorted(set.intersection(*(set(s) for s in by_step)))
    if not steps:
        raise UsageError("the runs have no checkpoint step in common; save them at the same steps (--save_every)")
    getters = {"pixel_agreement": lambda p: p["pixel_agreement"],
               "ink_top": lambda p: p["ink"]["top"], "ink_bot": lambda p: p["ink"]["bot"],
               "classifier_score_top": lambda p: p["classifier_score"]["top"],
               "classifier_score_bot": lambda p: p["classifier_score"]["bot"]}
    rows = []
    for step in steps:
        row = {"step": step, "warnings": sum(bool(s[step].get("warning")) for s in by_step)}
        for name, get in getters.items():
            values = np.array([get(s[step]) for s in by_step], np.float64)
            row[name] = {"mean": float(values.mean()), "std": float(values.std())}
        rows.append(row)
    best = max(rows, key=lambda r: r["pixel_agreement"]["mean"])
    return {"runs": [c["run"] for c in curves], "pair": curves[0]["pair"], "dataset": curves[0]["dataset"],
            "n": curves[0]["n"], "threshold": curves[0]["threshold"], "rows": rows, "best": best, "last": rows[-1]}


def _setting_text(s: Optional[dict]) -> str:
    if not s:
        return "unrecorded"
    return f"recipe {s.get('recipe')}, G shares {s.get('g_shared_layers')}, D shares {s.get('d_shared_layers')}"


def _check_together(curves: Sequence[dict], what: str) -> None:
    """Refuse curves that ``what`` (combine, sharing_table) cannot put together: scored on other pairs, data,
    sample counts or thresholds, or of settings that do not go together (:func:`check_settings`)."""
    if not curves:
        raise ValueError(f"{what}: no curve")
    for key in ("pair", "dataset", "n", "threshold"):
        values = {c[key] for c in curves}
        if len(values) > 1:
            raise UsageError(f"runs of different {key}s ({', '.join(map(str, sorted(values)))}) do not go together")
    check_settings([(c["run"], c.get("setting")) for c in curves], sharing=what == "sharing_table")


def check_settings(runs: Sequence[tuple], sharing: bool = False) -> None:
    """Refuse runs that do not go together, before they are scored: ``runs`` are (run, :func:`setting`)
    pairs. Combined as seeds they must have one setting; in a sharing table, one recipe (the paper's
    CoGAN's) and one run per setting."""
    if not sharing:
        texts = {_setting_text(s) for _, s in runs}
        if len(texts) > 1:
            raise UsageError(f"runs of different settings ({'; '.join(sorted(texts))}) are not seeds of one "
                             f"setting: score them apart, or tabulate them with --sharing_table")
        return
    recipes = {(s or {}).get("recipe") for _, s in runs}
    if recipes != {"paper"}:
        raise UsageError(f"runs of recipe {', '.join(sorted(map(str, recipes)))}: a sharing table is of the paper "
                         f"CoGAN's runs (--recipe paper), which alone share a chosen number of layers")
    seen = {}
    for run, s in runs:
        key = (s["g_shared_layers"], s["d_shared_layers"])
        if key in seen:
            raise UsageError(f"{seen[key]} and {run} share the same layers (G {key[0]}, D {key[1]}): give one run per "
                             f"setting")
        seen[key] = run


def sharing_table(curves: Sequence[dict]) -> dict:
    """The paper's Fig. 3 as a table: runs of one pair and recipe that differ in how many layers G and D share
    (one run per setting), each by its last point. Cells keyed ``"G/D"``; the JSON of ``cogan_curve.py
    --sharing_table``."""
    _check_together(curves, "sharing_table")
    cells = {}
    for c in curves:
        key = f"{c['setting']['g_shared_layers']}/{c['setting']['d_shared_layers']}"
        p = c["last"]
        cells[key] = {"run": c["run"], "step": p["step"], "pixel_agreement": p["pixel_agreement"],
                      "agreement_within_1px": p.get("agreement_within_1px"), "ink": p["ink"],
                      "classifier_score": p["classifier_score"], "label_agreement": p["label_agreement"],
                      "warning": p.get("warning")}
    return {"pair": curves[0]["pair"], "dataset": curves[0]["dataset"], "n": curves[0]["n"],
            "threshold": curves[0]["threshold"], "recipe": curves[0]["setting"]["recipe"], "cells": cells}


def format_sharing_table(table: dict, g_max: int = COGAN_MAX_SHARED["g_shared_layers"],
                         d_max: int = COGAN_MAX_SHARED["d_shared_layers"]) -> str:
    """The table in Markdown: a row per number of G layers shared, a column per number of D layers shared,
    each cell the pixel agreement at the run's last step (and the step) with what it is read against: each
    domain's ink, the first domain's classifier score, how often the classifier gives both images of a z the
    same label, and "blank" when most pairs are blank in both domains (their pixels agree without any
    coupling); empty where no run was given."""
    head = "| G layers shared | " + " | ".join(f"D shares {d}" for d in range(d_max + 1)) + " |"
    lines = [head, "|---" * (d_max + 2) + "|"]
    for g in range(g_max + 1):
        cells = []
        for d in range(d_max + 1):
            c = table["cells"].get(f"{g}/{d}")
            cells.append("" if c is None else _sharing_cell(c))
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _sharing_cell(c: dict) -> str:
    ink = c["ink"]
    return (f"{c['pixel_agreement']:.3f} ({c['step']:,}): ink {100 * ink['top']:.1f}% / {100 * ink['bot']:.1f}%, "
            f"score {c['classifier_score']['top']:.2f}, same label {100 * c['label_agreement']:.0f}%"
            + (", blank" if c["warning"] else ""))
