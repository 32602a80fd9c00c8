"""Clustering curves of ClusterGAN runs against G+E updates, this port's runs beside encodings written by
other code (the ClusterGAN authors' own program, for one), every point scored by the same function
(:func:`cogan_tf.clustering.encoder_clustering`, as a port run's own ``cluster_report``): OUT.json (every
point), OUT.md (a table per update count: each side's mean, min and max over its runs, and whether the
port's mean lies within the other side's range) and OUT.png (the curves); optionally the paper's protocol at
the last common point on both sides. The encodings' format and the program: tools/clustergan_side_by_side.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np

from cogan_tf import cli, fileio
from cogan_tf.errors import DataError, UsageError
from cogan_tf.evaluate import clustergan_curve, clustergan_seeds

# The scores kept per point (test set); the plot and table show PLOT_KEYS.
CURVE_KEYS = ("kmeans_purity", "kmeans_acc", "kmeans_nmi", "kmeans_ari", "acc", "nmi")
PLOT_KEYS = (("kmeans_purity", "K-means purity (the paper's ACC)"), ("kmeans_acc", "K-means ACC (Hungarian)"),
             ("kmeans_nmi", "K-means NMI"))
PORT, OTHER = "port", "other"


def softmax(logits) -> np.ndarray:
    """float32 softmax over the last axis, max-subtracted (what the port's ``encode`` applies to its logits)."""
    x = np.asarray(logits, np.float32)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def score(z_n, probs, labels, seed: int, kmeans_on_zn: bool = True) -> Dict[str, float]:
    """One encoding's scores, as ``ClusterGAN.cluster_report`` computes them."""
    from cogan_tf import clustering

    report = clustering.encoder_clustering(np.asarray(labels).astype(np.int64), z_n, probs, seed=seed,
                                           kmeans_on_zn=kmeans_on_zn)
    return {k: float(report[k]) for k in CURVE_KEYS}


def read_encoding(path: str) -> dict:
    """One ``.npz`` of encodings: its G+E update count, run seed and splits, every array checked (shapes,
    types, finite values) so that a bad file is refused in one line before anything is scored."""
    try:
        with np.load(path, allow_pickle=False) as f:
            d = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz of encodings ({e})") from None
    missing = [k for k in ("ge_updates", "test_zn", "test_logits", "test_labels", "info") if k not in d]
    if missing:
        raise DataError(f"{path}: lacks {', '.join(missing)}; see the --encodings help for the format")
    try:
        seed = int(json.loads(str(d["info"]))["seed"])
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{path}: its info is not a JSON object with the run's seed") from None
    updates = d["ge_updates"]
    if updates.ndim != 0 or not np.issubdtype(updates.dtype, np.integer) or updates < 0:
        raise DataError(f"{path}: its ge_updates is {updates!r}, not a count (an integer, 0 or more)")
    splits = {}
    for s in ("test", "val"):
        if f"{s}_zn" not in d:
            continue
        zn, logits, labels = (d.get(f"{s}_{k}") for k in ("zn", "logits", "labels"))
        if logits is None or labels is None:
            raise DataError(f"{path}: has {s}_zn but not {s}_logits and {s}_labels")
        for key, a in ((f"{s}_zn", zn), (f"{s}_logits", logits)):
            if a.ndim != 2 or not np.issubdtype(a.dtype, np.floating) or len(a) != len(labels):
                raise DataError(f"{path}: its {key} is {a.dtype} of shape {a.shape}; want floats, a row per label "
                                f"({len(labels)})")
            if not np.all(np.isfinite(a)):
                raise DataError(f"{path}: its {key} holds {int(np.sum(~np.isfinite(a)))} NaN or infinite values; "
                                "encode with a model whose outputs are finite")
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{path}: its {s}_labels is {labels.dtype} of shape {labels.shape}; want integers (N,)")
        splits[s] = (zn, softmax(logits), labels)
    return {"path": path, "ge_updates": int(updates), "seed": seed, "splits": splits}


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What :func:`curves` reads, checked: the port runs' directories, the other side's encodings (read),
    the dataset's test labels they were checked against, and the outputs' prefix."""

    port_runs: Tuple[str, ...]
    encodings: Tuple[dict, ...]
    test_labels: np.ndarray
    out: str
    select: bool


def check_inputs(port_runs: Sequence[str], encodings: Sequence[str], data_dir: str, out: str,
                 select: bool = False) -> Inputs:
    """Every refusal before anything is scored or written (and before TensorFlow starts): the port runs
    (ClusterGAN runs of one dataset, whose ``curve.json`` can be reused and written; with ``select``, with
    a validation split), every encoding read and checked against the dataset's test labels, and OUT's
    three files."""
    from cogan_tf import data

    if not port_runs:
        raise UsageError("--port_runs: give at least one port run's --checkpoint_dir")
    if not encodings:
        raise UsageError("--encodings: give the other side's .npz files")
    records = [clustergan_curve.check(d)[0] for d in port_runs]
    if select:
        for d in port_runs:
            clustergan_seeds.check_run(d)
    datasets = sorted({r.config["dataset"] for r in records})
    if len(datasets) > 1:
        raise UsageError(f"--port_runs: runs of {' and '.join(datasets)}; give runs of one dataset")
    _, test_labels = data.load_split(data_dir, datasets[0], "test")
    read = []
    for path in encodings:
        enc = read_encoding(path)
        if "test" not in enc["splits"] or not np.array_equal(enc["splits"]["test"][2], test_labels):
            raise DataError(f"{path}: its test_labels are not the dataset's test labels in file order; "
                            "encode the dataset's test images in their file order")
        read.append(enc)
    cli.check_outputs([("--out", out + ext) for ext in (".json", ".md", ".png")],
                      inputs=list(port_runs) + list(encodings))
    return Inputs(tuple(port_runs), tuple(read), test_labels, out, select)


def port_points(checkpoint_dir: str, data_dir: str, log=print):
    """Every kept checkpoint of one port run on the test set, scored by :func:`cogan_tf.evaluate.clustergan_curve.curve` (its
    ``curve.json`` beside the checkpoints is reused); with the run's K-means rule."""
    result = clustergan_curve.curve(checkpoint_dir, data_dir, log=log)
    rows = [r for r in result["rows"] if r["kind"] == "checkpoint"]
    if not rows:
        raise DataError(f"{checkpoint_dir}: no checkpoints to score")
    seed = result["run"]["seed"]
    points = [{"path": os.path.join(result["run"]["checkpoint_dir"], r["checkpoint"]), "ge_updates": r["g_iterations"],
               "seed": seed, "scores": {"test": {k: r[k] for k in CURVE_KEYS}}} for r in rows]
    return points, "z_n" in result["protocols"]["kmeans_*"]


def other_points(encodings: Sequence[dict], kmeans_on_zn: bool, log=print) -> List[dict]:
    """The other side's encodings (read and checked by :func:`check_inputs`), scored."""
    points = []
    for enc in encodings:
        point = {"path": enc["path"], "ge_updates": enc["ge_updates"], "seed": enc["seed"],
                 "scores": {s: score(*v, enc["seed"], kmeans_on_zn) for s, v in enc["splits"].items()}}
        log(f"other seed {enc['seed']}, {enc['ge_updates']} G+E updates: test K-means purity "
            f"{point['scores']['test']['kmeans_purity']:.4f}")
        points.append(point)
    return points


def _stats(values: List[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "min": float(np.min(values)),
            "max": float(np.max(values)), "n": len(values)}


def summarize(port: List[dict], other: List[dict], split: str = "test") -> dict:
    """Per G+E update count present on both sides: each side's mean, std (numpy, ddof 0), min and max over
    its runs, and whether the port's mean lies within the other side's min..max."""
    def by_update(points):
        out: Dict[int, List[dict]] = {}
        for p in points:
            out.setdefault(p["ge_updates"], []).append(p)
        return out

    pu, ou = by_update(port), by_update(other)
    common = sorted(set(pu) & set(ou))
    if not common:
        raise UsageError(f"no G+E update count is on both sides (port: {sorted(pu)}, other: {sorted(ou)}); "
                         "save and dump at the same counts")
    rows = []
    for u in common:
        row = {"ge_updates": u, PORT: {}, OTHER: {}, "port_mean_within_other_range": {}}
        for key in CURVE_KEYS:
            ps = _stats([p["scores"][split][key] for p in pu[u]])
            os_ = _stats([p["scores"][split][key] for p in ou[u]])
            row[PORT][key], row[OTHER][key] = ps, os_
            row["port_mean_within_other_range"][key] = bool(os_["min"] <= ps["mean"] <= os_["max"])
        rows.append(row)
    return {"split": split, "rows": rows, "only_port": sorted(set(pu) - set(ou)), "only_other": sorted(set(ou) - set(pu))}


FINAL_KEYS = ("kmeans_purity", "kmeans_nmi", "kmeans_ari")


def selection(rows: List[dict]) -> dict:
    """The paper's protocol over runs, each ``{"seed", "validation": {...}, "test": {...}}``: the run with the best
    validation K-means purity (the first on a tie) and its test scores, and the mean +- std of the test scores."""
    best, stats = clustergan_seeds.select(rows, FINAL_KEYS)
    return {"n": len(rows), "best_seed": rows[best]["seed"],
            "best_validation_kmeans_purity": rows[best]["validation"]["kmeans_purity"],
            "best_test": {k: rows[best]["test"][k] for k in FINAL_KEYS}, "mean_std": stats}


def final_selection(port_runs: Sequence[str], other: List[dict], data_dir: str, updates: int) -> dict:
    """Both sides at ``updates`` G+E updates (each run's last point): the best of N by validation purity and the
    mean +- std. The port's runs are scored at their latest checkpoint on their own validation split
    (:func:`cogan_tf.evaluate.clustergan_seeds.score_run`), the other side's from the validation encodings of its .npz files."""
    port_rows = []
    for d in port_runs:
        r = clustergan_seeds.score_run(d, data_dir, "latest")
        if r["g_iterations"] != updates:
            raise UsageError(f"{d}: its latest checkpoint has {r['g_iterations']} G+E updates, not {updates}: "
                             "compare runs of one length")
        port_rows.append(r)
    other_rows = [{"seed": p["seed"], "validation": p["scores"]["val"], "test": p["scores"]["test"]}
                  for p in other if p["ge_updates"] == updates and "val" in p["scores"]]
    if not other_rows:
        raise UsageError(f"the other side has no validation encodings at {updates} G+E updates to select by")
    return {"ge_updates": updates, PORT: selection(port_rows), OTHER: selection(other_rows)}


def final_markdown(final: dict, port_label: str, other_label: str) -> str:
    lines = [f"\nAt {final['ge_updates']:,} G+E updates, the paper's protocol (test set; the best run by validation "
             "K-means purity, and the mean +- std over the runs, numpy's ddof 0):\n",
             "| | runs | best of N by validation purity | its test K-means purity (ACC) | NMI | ARI | mean +- std: "
             "K-means purity (ACC) | NMI | ARI |", "|---|---|---|---|---|---|---|---|---|"]
    for side, label in ((PORT, port_label), (OTHER, other_label)):
        f = final[side]
        lines.append(f"| {label} | {f['n']} | seed {f['best_seed']} ({f['best_validation_kmeans_purity']:.4f}) | "
                     + " | ".join(f"{f['best_test'][k]:.4f}" for k in FINAL_KEYS) + " | "
                     + " | ".join(f"{f['mean_std'][k]['mean']:.4f} +- {f['mean_std'][k]['std']:.4f}" for k in FINAL_KEYS)
                     + " |")
    return "\n".join(lines) + "\n"


def markdown(summary: dict, port_label: str, other_label: str) -> str:
    head = ("| G+E updates | score | " + f"{port_label}: mean (min-max) | {other_label}: mean (min-max) | "
            "port mean within the other's range |\n|---|---|---|---|---|\n")
    lines = []
    for row in summary["rows"]:
        for key, name in PLOT_KEYS:
            p, o = row[PORT][key], row[OTHER][key]
            lines.append(f"| {row['ge_updates']:,} | {name} | {p['mean']:.4f} ({p['min']:.4f}-{p['max']:.4f}) | "
                         f"{o['mean']:.4f} ({o['min']:.4f}-{o['max']:.4f}) | "
                         f"{'yes' if row['port_mean_within_other_range'][key] else '**no**'} |")
    n_p, n_o = summary["rows"][0][PORT]["kmeans_purity"]["n"], summary["rows"][0][OTHER]["kmeans_purity"]["n"]
    return (f"{summary['split']} set; {port_label}: {n_p} runs, {other_label}: {n_o} runs\n\n" + head
            + "\n".join(lines) + "\n")


def plot(port: List[dict], other: List[dict], path: str, port_label: str, other_label: str, split: str = "test"):
    """One panel per score in PLOT_KEYS: every run as a thin line, each side's mean as a thick one."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PLOT_KEYS), figsize=(5 * len(PLOT_KEYS), 4))
    for ax, (key, name) in zip(axes, PLOT_KEYS):
        for points, label, color in ((other, other_label, "tab:orange"), (port, port_label, "tab:blue")):
            seeds = sorted({p["seed"] for p in points})
            for s in seeds:
                run = sorted((p["ge_updates"], p["scores"][split][key]) for p in points if p["seed"] == s)
                ax.plot(*zip(*run), color=color, alpha=0.35, lw=1)
            updates = sorted({p["ge_updates"] for p in points})
            mean = [np.mean([p["scores"][split][key] for p in points if p["ge_updates"] == u]) for u in updates]
            ax.plot(updates, mean, color=color, lw=2.5, marker="o", label=f"{label} (mean of {len(seeds)}; thin: each run)")
        ax.set_title(name)
        ax.set_xlabel("G+E updates")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    with fileio.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def curves(inputs: Inputs, data_dir: str, port_label: str = "this port", other_label: str = "the authors' code",
           log=print) -> dict:
    """Score both sides of ``inputs`` (:func:`check_inputs`), write OUT.json, OUT.md and OUT.png; with
    ``inputs.select``, also the paper's best of N by validation purity and the mean +- std of each side at
    the last common point (:func:`final_selection`)."""
    port_runs, out, select = inputs.port_runs, inputs.out, inputs.select
    port, kmeans_on_zn = [], None
    for d in port_runs:
        points, kz = port_points(d, data_dir, log)
        if kmeans_on_zn is not None and kz != kmeans_on_zn:
            raise UsageError(f"{d}: K-means features differ from the other port runs': give runs of one setup")
        port, kmeans_on_zn = port + points, kz
    other = other_points(inputs.encodings, kmeans_on_zn, log)
    summary = summarize(port, other)
    if select:
        summary["final"] = final_selection(port_runs, other, data_dir, summary["rows"][-1]["ge_updates"])
    summary.update({"port_label": port_label, "other_label": other_label,
                    "kmeans_features": "z_n, softmax" if kmeans_on_zn else "softmax",
                    "std": "numpy's np.std over the runs (ddof 0)",
                    "points": {PORT: port, OTHER: other}})
    fileio.atomic_write_text(out + ".json", json.dumps(summary, indent=1) + "\n")
    fileio.atomic_write_text(out + ".md", markdown(summary, port_label, other_label)
                             + (final_markdown(summary["final"], port_label, other_label) if select else ""))
    plot(port, other, out + ".png", port_label, other_label)
    misses = [(r["ge_updates"], k) for r in summary["rows"] for k, _ in PLOT_KEYS
              if not r["port_mean_within_other_range"][k]]
    log(f"port mean within the other side's range at {len(summary['rows']) * len(PLOT_KEYS) - len(misses)} of "
        f"{len(summary['rows']) * len(PLOT_KEYS)} points" + (f"; outside: {misses}" if misses else "")
        + f"; wrote {out}.json, {out}.md, {out}.png")
    return summary
