"""A CoGAN run's sample grids against another run's, step by step: ``python -m cogan_tf.evaluate
--grid_dirs RUN_SAMPLES REFERENCE_SAMPLES [--out report.json] [--plot curves.png]``.

Meant for this port's ``samples/`` against the ``samples/`` folder of a clone of andrewliao11's
CoGAN-tensorflow (the project does not ship those images). Each directory holds ``top/X.png`` and
``bot/X.png``; every name X that both directories hold as a pair is scored like ``--grids``
(``sampling.samples_from_grids`` and ``scoring.evaluate_samples``: the CoGAN paper's pixel agreement of
the 64 pairs under the runs' pair of domains (``--pair``, cogan_tf/pairs.py) with each domain's ink, label
agreement, classifier score, effective classes and Fréchet distance per domain), and its training step is read
off the name: ``train_EE_IIII`` is step EE * 546 + IIII + 1, the steps trained when it was written (546 =
floor(70000 / 128) steps per epoch; ``steps_per_epoch`` for other runs).

The original wrote its grids with ``scipy.misc.imsave``, which stretches each grid to 0..255 by its own
minimum and maximum (quirk Q3, docs/ORIGINAL.md §1.8). Both directories' grids are stretched that way before scoring
(``stretch``), so a grid written as output x 255 is scored on the same footing as a published one; an
already stretched grid is unchanged. The Fréchet distance of 64 cells is noisy (even 64 real digits score
~50): it is in the JSON and the plot, the table leaves it out.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from cogan_tf import fileio, images, pairs, published
from cogan_tf.evaluate import image_metrics, reports, samples as sampling, scoring
from cogan_tf.errors import GridError, UsageError

STEPS_PER_EPOCH = 546  # the original's floor(70000 / 128): both domains' 70,000 digits in batches of 128
_STEP_NAME = re.compile(r"^train_(\d+)_(\d+)$")
DOMAINS = ("top", "bot")
SIDES = ("run", "reference")


def grid_step(name: str, steps_per_epoch: int = STEPS_PER_EPOCH) -> Optional[int]:
    """``train_EE_IIII`` -> EE * steps_per_epoch + IIII + 1, the number of steps trained when that grid
    was written (the original's counter, which starts at 1, is one more); None for a name of another form."""
    m = _STEP_NAME.match(name)
    return None if m is None else int(m.group(1)) * steps_per_epoch + int(m.group(2)) + 1


def grid_names(directory: str, label: str) -> List[str]:
    """The names X with both ``top/X.png`` and ``bot/X.png`` in ``directory``, sorted."""
    if not os.path.isdir(directory):
        hint = ""
        if label == "REFERENCE":
            hint = (f"; andrewliao11's published grids: `python download.py {published.NAME}` puts them in "
                    f"data/{published.NAME}/samples (or clone them: {published.CLONE})")
        raise UsageError(f"{label} {directory}: no such directory{hint}")
    found = {}
    for d in DOMAINS:
        sub = os.path.join(directory, d)
        found[d] = ({f[:-4] for f in os.listdir(sub) if f.lower().endswith(".png")}
                    if os.path.isdir(sub) else set())
    if not found["top"] and not found["bot"]:
        raise UsageError(f"{label} {directory}: no top/*.png or bot/*.png grids here (give a run's samples/ "
                         "folder, the one holding top/ and bot/)")
    return sorted(found["top"] & found["bot"])


def _holds(names: Sequence[str]) -> str:
    if not names:
        return "no top/bot pair of the same name"
    shown = ", ".join(names[:3]) + (f", ... {names[-1]}" if len(names) > 3 else "")
    return f"{len(names)} pair{'s' if len(names) != 1 else ''} ({shown})"


def common_names(run_dir: str, reference_dir: str, steps_per_epoch: int = STEPS_PER_EPOCH):
    """``(names both hold, the run's names, the reference's names)``; names in step order (names
    without a step after them, by name). Refuses directories without a name in common."""
    run, ref = grid_names(run_dir, "RUN"), grid_names(reference_dir, "REFERENCE")
    common = sorted(set(run) & set(ref), key=lambda n: (grid_step(n, steps_per_epoch) is None,
                                                        grid_step(n, steps_per_epoch) or 0, n))
    if not common:
        raise UsageError(f"no grid name in common: RUN {run_dir} holds {_holds(run)}; "
                         f"REFERENCE {reference_dir} holds {_holds(ref)}")
    return common, run, ref


def stretch(cells: np.ndarray) -> np.ndarray:
    """A grid's cells (float in [0, 1]) as ``scipy.misc.imsave`` would have written them: its darkest pixel
    0, its brightest 1 (``images.stretch_to_uint8`` over the whole grid, back in [0, 1]); a grid that
    spans 0..255 already is unchanged."""
    return (images.stretch_to_uint8(cells) / 255.0).astype(np.float32)


def read_pair(directory: str, name: str, pair: str = pairs.DEFAULT_PAIR) -> sampling.Samples:
    """The 64 pairs of ``top/name.png`` and ``bot/name.png`` of domains ``pair``, each grid stretched
    (``stretch``)."""
    s = sampling.samples_from_grids([os.path.join(directory, "top", f"{name}.png"),
                                     os.path.join(directory, "bot", f"{name}.png")], pair)
    return sampling.in_memory(s.model, {d: stretch(v) for d, v in s.images.items()}, s.source, pair=pair)


def _scores(report: dict) -> dict:
    """The per-grid numbers kept from an ``evaluate_samples`` report (the settings and the real ink, the
    same for every grid, once in the whole report)."""
    out = {k: v for k, v in report["pairs"].items() if k not in ("pair", "threshold", "real")}
    for d in DOMAINS:
        out[d] = {k: report["domains"][d][k]
                  for k in ("classifier_score", "effective_classes", "frechet_distance", "histogram")}
    return out


@dataclasses.dataclass
class GridDirs:
    """Two directories' grids, read: ``pairs[side][name]`` for the names both hold."""

    run_dir: str
    reference_dir: str
    names: List[str]
    run_names: List[str]
    reference_names: List[str]
    pairs: Dict[str, Dict[str, sampling.Samples]]
    steps_per_epoch: int
    pair: str = pairs.DEFAULT_PAIR


def read_grid_dirs(run_dir: str, reference_dir: str, steps_per_epoch: int = STEPS_PER_EPOCH,
                   pair: str = pairs.DEFAULT_PAIR) -> GridDirs:
    """Read every grid pair both directories hold (both runs of domains ``pair``); a PNG that cannot be
    read faithfully, or of another size than the others (scores of grids of 2 and of 64 cells are not
    comparable), is refused by name (``errors.GridError``) before anything is decoded or scored."""
    names, run_names, ref_names = common_names(run_dir, reference_dir, steps_per_epoch)
    # The reference's grids first: on a tie, the run's are the odd ones.
    shapes = {p: images.grid_shape(p) for d in (reference_dir, run_dir) for n in names
              for p in (os.path.join(d, side, f"{n}.png") for side in DOMAINS)}
    usual, count = collections.Counter(shapes.values()).most_common(1)[0]
    for path, shape in shapes.items():
        if shape != usual:
            raise GridError(f"{path}: {shape}, where {count} of the {len(shapes)} grids are {usual}: "
                            "--grid_dirs compares grids of one size")
    read = {side: {n: read_pair(d, n, pair) for n in names} for side, d in zip(SIDES, (run_dir, reference_dir))}
    return GridDirs(run_dir, reference_dir, names, run_names, ref_names, read, steps_per_epoch, pair)


def check_plot(dirs: GridDirs) -> None:
    """Refuse a plot of grids without a training step, before the classifier loads."""
    if all(grid_step(n, dirs.steps_per_epoch) is None for n in dirs.names):
        raise UsageError("--plot: no grid name of the form train_EE_IIII in common, so no training step to "
                         "plot against")


def compare_grid_dirs(dirs: GridDirs, clf, ref: scoring.Reference,
                      threshold: float = image_metrics.DEFAULT_THRESHOLD) -> dict:
    """Score every grid pair both directories hold (see the module docstring); a JSON-ready dict."""
    names, pairs, steps_per_epoch = dirs.names, dirs.pairs, dirs.steps_per_epoch
    run_names, ref_names = dirs.run_names, dirs.reference_names
    run_dir, reference_dir = dirs.run_dir, dirs.reference_dir
    grids = []
    for n in names:
        row = {"name": n, "step": grid_step(n, steps_per_epoch)}
        for side in SIDES:
            row[side] = _scores(scoring.evaluate_samples(pairs[side][n], clf, ref, real=False, threshold=threshold))
        grids.append(row)
    cells = pairs["run"][names[0]].n
    return {
        "kind": "grid_dirs",
        "run": {"dir": run_dir, "pairs": len(run_names)},
        "reference": {"dir": reference_dir, "pairs": len(ref_names)},
        "only_in_run": sorted(set(run_names) - set(ref_names)),
        "only_in_reference": sorted(set(ref_names) - set(run_names)),
        "steps_per_epoch": steps_per_epoch,
        "stretched": True,
        "cells_per_grid": cells,
        "dataset": ref.dataset,
        "pair": dirs.pair,
        "threshold": threshold,
        "real_pairs": image_metrics.real_pair_scores(dirs.pair, ref.test_images, threshold),
        "classifier_test_accuracy": clf.test_accuracy,
        "grids": grids,
        "mean": {side: _mean([g[side] for g in grids]) for side in SIDES},
        "real": scoring.real_metrics(clf, ref, cells, 0),
    }


def _mean(rows: List[dict]) -> dict:
    out = {}
    for k, v in rows[0].items():
        if isinstance(v, dict):
            out[k] = _mean([r[k] for r in rows])
        elif isinstance(v, float):
            out[k] = float(np.mean([r[k] for r in rows]))
    return out


# --- output ----------------------------------------------------------------------------------------

# (title, getter) of the table's and the plot's columns; each shown for the run and the reference.
COLUMNS: Tuple[Tuple[str, Callable[[dict], float]], ...] = (
    ("pixel agr.", lambda s: s["pixel_agreement"]),
    ("label agr.", lambda s: s["label_agreement"]),
    ("score top", lambda s: s["top"]["classifier_score"]),
    ("score bot", lambda s: s["bot"]["classifier_score"]),
    ("classes top", lambda s: s["top"]["effective_classes"]),
    ("classes bot", lambda s: s["bot"]["effective_classes"]),
    ("ink top", lambda s: s["ink"]["top"]),
    ("ink bot", lambda s: s["ink"]["bot"]),
)


def format_table(report: dict) -> str:
    """One row per grid: the step, the name, and each column for the run and the reference."""
    w = 7
    lines = [f"RUN       {report['run']['dir']} ({report['run']['pairs']} grid pairs)",
             f"REFERENCE {report['reference']['dir']} ({report['reference']['pairs']} grid pairs)",
             f"{len(report['grids'])} grid names in common, {report['cells_per_grid']} pairs each, every grid "
             f"stretched to 0..1; {report['dataset']} classifier (test accuracy "
             f"{reports.format_value(report['classifier_test_accuracy'], '{:.4f}')})",
             f"pair {report['pair']}: pixel agreement of {report['pair']}(G1(z)) with G2(z), pixels binarised at "
             f">{report['threshold']:g} (unpaired real images: {report['real_pairs']['unpaired_agreement']:.3f}); "
             f"ink: fraction of pixels off the blank image (real: top {report['real_pairs']['ink']['top']:.3f}, "
             f"bot {report['real_pairs']['ink']['bot']:.3f}); bot scored as "
             f"{scoring.BOT_SCORED_AS[report['pair']]}",
             ""]
    head1 = f"{'step':>6} {'grid':<16}" + "".join(f" {t:^{2 * w + 1}}" for t, _ in COLUMNS)
    head2 = f"{'':>6} {'':<16}" + "".join(f" {'run':>{w}} {'ref':>{w}}" for _ in COLUMNS)
    lines += [head1, head2]

    def row(step, name, run, ref):
        cells = "".join(f" {get(run):>{w}.3f} {get(ref):>{w}.3f}" for _, get in COLUMNS)
        return f"{step:>6} {name:<16}" + cells

    for g in report["grids"]:
        lines.append(row("-" if g["step"] is None else g["step"], g["name"], g["run"], g["reference"]))
    lines.append(row("", "mean", report["mean"]["run"], report["mean"]["reference"]))
    for side in SIDES:
        blank = [g["name"] for g in report["grids"] if g[side].get("warning")]
        if blank:
            lines.append(f"WARNING: {side.upper()}: {_holds(blank)} with both domains blank in most cells: their "
                         "agreement says nothing of coupling")
    for side in ("run", "reference"):
        only = report[f"only_in_{side}"]
        if only:
            lines.append(f"not scored, only in {side.upper()}: {_holds(only)}")
    real = report["real"]
    lines.append(f"real test images: classifier score {real['classifier_score']:.3f}, effective classes "
                 f"{real['effective_classes']:.2f} (test set)")
    return "\n".join(lines)


def save_plot(path: str, report: dict) -> str:
    """The columns (and the Fréchet distances) against the training step, run and reference as two
    lines per panel (top solid, bot dashed); matplotlib's Agg canvas, written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    grids = [g for g in report["grids"] if g["step"] is not None]
    if not grids:
        raise UsageError("--plot: no grid name of the form train_EE_IIII, so no training step to plot against")
    steps = [g["step"] for g in grids]
    panels = ((f"pixel agreement ({report['pair']}(G1) vs G2)", (("", lambda s: s["pixel_agreement"]),)),
              ("label agreement", (("", lambda s: s["label_agreement"]),)),
              ("classifier score", (("top", lambda s: s["top"]["classifier_score"]),
                                    ("bot", lambda s: s["bot"]["classifier_score"]))),
              ("effective classes", (("top", lambda s: s["top"]["effective_classes"]),
                                     ("bot", lambda s: s["bot"]["effective_classes"]))),
              (f"Frechet distance ({report['cells_per_grid']} cells)",
               (("top", lambda s: s["top"]["frechet_distance"]), ("bot", lambda s: s["bot"]["frechet_distance"]))),
              ("ink (fraction of pixels)", (("top", lambda s: s["ink"]["top"]), ("bot", lambda s: s["ink"]["bot"]))))
    fig = Figure(figsize=(20, 8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 4).ravel()
    for ax, (title, lines) in zip(axes, panels):
        for side, color in (("run", "C0"), ("reference", "C1")):
            for label, get in lines:
                ax.plot(steps, [get(g[side]) for g in grids], color=color, marker=".", markersize=3,
                        linestyle="--" if label == "bot" else "-", label=f"{side} {label}".strip())
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.legend(fontsize="small")
    for ax in axes[len(panels):]:
        ax.axis("off")
    # The folders' last two names only: a figure meant for others should not carry this machine's paths.
    short = {side: os.path.join(*os.path.normpath(report[side]["dir"]).split(os.sep)[-2:]) for side in ("run", "reference")}
    axes[-1].text(0.0, 0.9, f"RUN: {short['run']}\nREFERENCE: {short['reference']}\n"
                  f"{len(grids)} grids, step = epoch * {report['steps_per_epoch']} + idx + 1",
                  fontsize="small", va="top", wrap=True)
    fig.tight_layout()
    with fileio.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def run(dirs: GridDirs, data_dir: str, dataset: str = "mnist", out: Optional[str] = None,
        plot: Optional[str] = None, clf=None, log: Callable[[str], None] = print,
        threshold: float = image_metrics.DEFAULT_THRESHOLD, **classifier_kwargs) -> dict:
    """The command on the grids ``read_grid_dirs`` read (and ``check_plot`` passed, with ``plot``): load
    the classifier, score, print the table, write the JSON (``out``) and the plot (``plot``).
    ``threshold``: the binarisation of the pixel agreement and the ink."""
    clf = clf or scoring.load_classifier(data_dir, dataset, log=log, **classifier_kwargs)
    report = compare_grid_dirs(dirs, clf, scoring.make_reference(clf, data_dir, dataset), threshold)
    log(format_table(report))
    if out:
        reports.write_report(out, report)
        log(f" [*] wrote {out}")
    if plot:
        save_plot(plot, report)
        log(f" [*] wrote {plot}")
    return report
