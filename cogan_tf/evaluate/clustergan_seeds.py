"""The ClusterGAN paper's selection protocol over N seeds: of N runs, the one with the best validation
K-means purity, and that run's test K-means purity (the paper's "ACC"), NMI and ARI; beside it the mean +- std
of the same test scores over the N runs (what the authors' README tabulates): OUT.json (every run's
validation and test scores of both protocols, the selection, the means) and OUT.md (one Markdown table).
Each run is scored at the checkpoint it kept by validation (what ``main.py --is_train False`` evaluates)
or at its latest (the authors score each run once, at its end). Standard deviations are numpy's default,
over the N runs (ddof 0). Seeds can be trained first, one main.py run each (:func:`train_seeds`). The
program: tools/clustergan_seeds.py.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

from cogan_tf import cli, fileio, record as record_lib
from cogan_tf.errors import DataError, UsageError
from cogan_tf.evaluate.clustergan_curve import g_iterations

# Test scores averaged over the runs: the paper's protocol (K-means purity = its ACC, NMI, ARI) and ours.
PAPER_KEYS = ("kmeans_purity", "kmeans_nmi", "kmeans_ari")
OURS_KEYS = ("acc", "nmi", "ari")
SELECTED_BY = "kmeans_purity"
# main.py flags the tool sets for each seed itself.
SET_PER_SEED = ("is_train", "model", "seed", "data_dir", "checkpoint_dir", "sample_dir", "log_dir", "export_dir",
                "evaluate_dir")
SUBDIRS = ("checkpoint", "samples", "logs", "export", "evaluate")


def seed_dirs(runs_root: str, seed: int) -> Dict[str, str]:
    """main.py's output flags of the run trained with random seed ``seed``:
    RUNS_ROOT/seed<S>/{checkpoint,samples,logs,export,evaluate}."""
    base = os.path.join(runs_root, f"seed{seed}")
    return {f"{name}_dir": os.path.join(base, sub) for name, sub in
            zip(("checkpoint", "sample", "log", "export", "evaluate"), SUBDIRS)}


def train_command(seed: int, runs_root: str, data_dir: str, main_flags: Sequence[str]) -> List[str]:
    """The main.py command line that trains (or resumes) one seed."""
    for arg in main_flags:
        name = arg[2:].split("=", 1)[0] if arg.startswith("--") else None
        if name in SET_PER_SEED:
            raise UsageError(f"--main_flags: {arg} is set by the tool for each seed; leave it out")
    dirs = seed_dirs(runs_root, seed)
    return ([sys.executable, "-m", "cogan_tf", "main", "--is_train=True", "--model=clustergan", f"--seed={seed}",
             f"--data_dir={data_dir}"] + [f"--{k}={v}" for k, v in dirs.items()] + list(main_flags))


def _this_package_first() -> Dict[str, str]:
    """The environment of a main.py run that imports the cogan_tf this process runs."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(cli.__file__)))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}


def train_seeds(seeds: Sequence[int], runs_root: str, data_dir: str, main_flags: Sequence[str], log=print) -> List[str]:
    """Train each seed with main.py, one after another; returns their checkpoint directories."""
    commands = [train_command(s, runs_root, data_dir, main_flags) for s in seeds]  # every refusal before any run
    for seed, cmd in zip(seeds, commands):
        log(f"seed {seed}: {shlex.join(cmd[1:])}")
        status = subprocess.run(cmd, env=_this_package_first()).returncode
        if status != 0:
            raise UsageError(f"seed {seed}: main.py exited with status {status} (its output is above); "
                             "fix that and run the same command: each seed resumes from its checkpoint")
    return [seed_dirs(runs_root, s)["checkpoint_dir"] for s in seeds]


def check_run(checkpoint_dir: str) -> record_lib.RunRecord:
    """A ClusterGAN run with a validation split to select by, read without TensorFlow; else one line."""
    record = record_lib.find_run(checkpoint_dir, "clustergan")
    if not record.config.get("val_size"):
        raise UsageError(f"{record.directory} was trained without --val_size: it has no validation split to "
                         "select by; train with --val_size 5000 (the authors' 5,000 images)")
    if not record.checkpoints():
        raise DataError(f"{record.directory}: no checkpoint files; train the run first")
    return record


def check_distinct(dirs: Sequence[str]) -> None:
    """Each run once: the same run twice (also as a folder and its run's subfolder, or through a link)
    would count as two seeds, a best of 2 of one run."""
    seen: Dict[str, str] = {}
    for d in dirs:
        real = os.path.realpath(record_lib.find_run(d, "clustergan").directory if os.path.isdir(d) else d)
        if real in seen:
            raise UsageError(f"--checkpoint_dirs: {d} and {seen[real]} are the same run; give each run once")
        seen[real] = d


def score_run(checkpoint_dir: str, data_dir: str, which: str = "best") -> dict:
    """One run's validation and test scores (both protocols) at its kept-by-validation or latest checkpoint."""
    from cogan_tf import checkpoints, data, runner
    from cogan_tf.gan import Loop

    record = check_run(checkpoint_dir)
    gan = runner.gan_from_checkpoint(record.directory, data_dir, "clustergan", log=lambda s: None)
    kept = gan.restored_from
    if which == "latest":
        # The newest checkpoint that restores, whatever the `checkpoint` state file says (the loop's own reading).
        loop = Loop(gan, gan.train_cfg)
        path = checkpoints.restore_newest(loop, gan, log=lambda s: None, training=False)
        kept = {"path": path, "step": int(loop.step.numpy()), "kept_by": "latest"}
    x_val, y_val = gan.validation_set()
    x_test, y_test = data.load_split(data_dir, gan.train_cfg.dataset, "test")
    keys = PAPER_KEYS + OURS_KEYS
    val, test = gan.cluster_report(x_val, y_val), gan.cluster_report(x_test, y_test)
    return {"checkpoint_dir": record.directory, "seed": gan.seed, "dataset": gan.train_cfg.dataset,
            "model_config": record.config["model_config"], "val_size": gan.train_cfg.val_size,
            "checkpoint": os.path.relpath(kept["path"], record.directory), "kept_by": kept["kept_by"],
            "step": kept["step"], "g_iterations": g_iterations(kept["path"]),
            "kmeans_features": test["kmeans_features"],
            "validation": {k: val[k] for k in keys}, "test": {k: test[k] for k in keys}}


def select(rows: List[dict], keys: Sequence[str]):
    """(index of the run with the best validation K-means purity, the first on a tie; mean and std, numpy's ddof 0,
    of each test score in ``keys`` over the runs), of rows ``{"validation": {...}, "test": {...}}``."""
    best = max(range(len(rows)), key=lambda i: (rows[i]["validation"][SELECTED_BY], -i))
    stats = {k: {"mean": float(np.mean([r["test"][k] for r in rows])), "std": float(np.std([r["test"][k] for r in rows]))}
             for k in keys}
    return best, stats


def summarize(rows: List[dict]) -> dict:
    """Best of the runs by validation K-means purity (the first on a tie) and mean +- std of their test scores."""
    if not rows:
        raise UsageError("no runs to compare: give --checkpoint_dirs or --train_seeds")
    first = rows[0]
    for r in rows[1:]:
        for key in ("dataset", "model_config", "val_size"):
            if r[key] != first[key]:
                raise UsageError(f"{r['checkpoint_dir']} and {first['checkpoint_dir']} differ in {key}: the "
                                 "protocol compares seeds of one setup; give runs of one setup")
    best, stats = select(rows, PAPER_KEYS + OURS_KEYS)
    m = first["model_config"]
    return {"dataset": first["dataset"], "recipe": m.get("recipe", "original"), "n": len(rows),
            "val_size": first["val_size"], "kmeans_features": first["kmeans_features"],
            "selected_by": f"validation {SELECTED_BY}",
            "best_of_n": {"seed": rows[best]["seed"], "checkpoint_dir": rows[best]["checkpoint_dir"],
                          "validation_kmeans_purity": rows[best]["validation"][SELECTED_BY],
                          "test": rows[best]["test"]},
            "mean_std": stats, "std": "numpy's np.std over the runs (ddof 0)", "runs": rows}


def markdown(summary: dict) -> str:
    """The summary as one Markdown table: a row per run, then the best of N and the mean +- std."""
    head = (f"ClusterGAN `--recipe {summary['recipe']}` on {summary['dataset']}, {summary['n']} seeds; test set; "
            f"selected by validation K-means purity ({summary['val_size']} held-out images); K-means on "
            f"[{summary['kmeans_features']}]\n\n"
            "| run | checkpoint step | G+E updates | val. K-means purity | test ACC (K-means purity) | NMI | ARI "
            "| argmax ACC (ours) | NMI | ARI |\n|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in summary["runs"]:
        t = r["test"]
        lines.append(f"| seed {r['seed']} | {r['step']:,} | {r['g_iterations']:,} | {r['validation'][SELECTED_BY]:.4f} | "
                     + " | ".join(f"{t[k]:.4f}" for k in PAPER_KEYS + OURS_KEYS) + " |")
    b = summary["best_of_n"]
    lines.append(f"| **best of {summary['n']} by validation purity** (seed {b['seed']}) | | | "
                 f"{b['validation_kmeans_purity']:.4f} | " + " | ".join(f"**{b['test'][k]:.4f}**" for k in PAPER_KEYS)
                 + " | " + " | ".join(f"{b['test'][k]:.4f}" for k in OURS_KEYS) + " |")
    s = summary["mean_std"]
    lines.append(f"| mean +- std over {summary['n']} | | | | "
                 + " | ".join(f"{s[k]['mean']:.4f} +- {s[k]['std']:.4f}" for k in PAPER_KEYS + OURS_KEYS) + " |")
    return head + "\n".join(lines) + "\n"


def check_outputs(out: str, checkpoint_dirs: Sequence[str]) -> None:
    """OUT.json and OUT.md can be written and replace none of the runs' files (checked before any work)."""
    cli.check_outputs([("--out", out + ".json"), ("--out", out + ".md")], inputs=list(checkpoint_dirs))


def seeds_report(checkpoint_dirs: Sequence[str], data_dir: str, out: str, which: str = "best", log=print) -> dict:
    """Score every run, select, write OUT.json and OUT.md; returns the summary."""
    if which not in ("best", "latest"):
        raise UsageError(f"--checkpoint={which}: choose best or latest")
    check_distinct(checkpoint_dirs)
    check_outputs(out, checkpoint_dirs)
    rows = []
    for d in checkpoint_dirs:
        r = score_run(d, data_dir, which)
        rows.append(r)
        log(f"seed {r['seed']}: {r['checkpoint']} (step {r['step']}, G iters {r['g_iterations']}): validation K-means "
            f"purity {r['validation'][SELECTED_BY]:.4f}; test K-means purity {r['test']['kmeans_purity']:.4f}, "
            f"NMI {r['test']['kmeans_nmi']:.4f}, ARI {r['test']['kmeans_ari']:.4f}")
    summary = summarize(rows)
    fileio.atomic_write_text(out + ".json", json.dumps(summary, indent=1) + "\n")
    fileio.atomic_write_text(out + ".md", markdown(summary))
    b = summary["best_of_n"]["test"]
    log(f"best of {len(rows)} by validation purity: seed {summary['best_of_n']['seed']}, test K-means purity "
        f"{b['kmeans_purity']:.4f}, NMI {b['kmeans_nmi']:.4f}, ARI {b['kmeans_ari']:.4f}; wrote {out}.json and {out}.md")
    return summary


def parse_seeds(text: Optional[str]) -> List[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()] if text else []
    except ValueError:
        raise UsageError(f"--train_seeds={text}: give comma-separated integers, e.g. 0,1,2,3,4") from None
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise UsageError(f"--train_seeds={text}: seeds must be 0 or more, each once")
    return seeds


def parse_main_flags(text: str) -> List[str]:
    try:
        return shlex.split(text)
    except ValueError as e:  # an unbalanced quote
        raise UsageError(f"--main_flags={text}: {e} (quote it as a shell would)") from None
