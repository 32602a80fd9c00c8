"""The clustering curve of a ClusterGAN run: every checkpoint of its folder (and the best/ copy kept by
--val_size) clusters the test set with its encoder, both protocols (the encoder's argmax: Hungarian ACC, NMI,
ARI; the paper's K-means on [z_n, softmax], or on the softmax alone when beta_n is 0: purity, NMI, ARI),
against the G+E updates ("G iterations") it had made; OUT.json (a row per checkpoint, and the run's validation
history if it kept one) and OUT.png (the two protocols side by side, the paper's figures dotted). Rows of an
earlier OUT.json are reused (a checkpoint does not change). The program: tools/clustergan_curve.py.
"""

from __future__ import annotations

import json
import os

from cogan_tf import cli, fileio, record as record_lib
from cogan_tf.errors import DataError

# The ClusterGAN paper's test figures (ACC = K-means purity, NMI, ARI), drawn for comparison.
PAPER = {"mnist": (0.95, 0.89, 0.89), "fashion_mnist": (0.63, 0.64, 0.50)}
KEYS = ("acc", "purity", "nmi", "ari", "kmeans_acc", "kmeans_purity", "kmeans_nmi", "kmeans_ari")


def g_iterations(path: str) -> int:
    """The G+E optimizer's update count stored in checkpoint ``path`` (read without building a model), -1 for
    a checkpoint without one."""
    from cogan_tf import checkpoints

    count = checkpoints.optimizer_iterations(path, "ge_optimizer")
    return -1 if count is None else count


def run_checkpoints(record: record_lib.RunRecord):
    """(path, kind) of every checkpoint of the run on disk (whatever its ``checkpoint`` state file says),
    oldest first, then the best/ copy."""
    paths = [(p, "checkpoint") for p in reversed(record.checkpoint_paths())]
    best = os.path.join(record.directory, "best", "best.json")
    if os.path.isfile(best):
        kept = fileio.read_json(best, "the record of the checkpoint kept by validation")
        rel = kept.get("best", {}).get("checkpoint") if isinstance(kept, dict) else None
        if rel:
            paths.append((os.path.join(record.directory, rel), "best"))
    return paths


def old_rows(path: str) -> dict:
    """The rows of an earlier OUT.json, by (checkpoint, kind); a file that is not one is refused in one line."""
    fix = "pass --recompute to score every checkpoint again, or another --out"
    try:
        curve = fileio.read_json(path, "a ClusterGAN clustering curve")
    except DataError as e:
        raise DataError(f"{e}; {fix}") from None
    rows = curve.get("rows") if isinstance(curve, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and {"checkpoint", "kind", *KEYS} <= set(r)
                                             for r in rows):
        raise DataError(f"{path}: not a ClusterGAN clustering curve (no rows of scores); {fix}")
    return {(r["checkpoint"], r["kind"]): r for r in rows}


def check(checkpoint_dir: str, out=None, recompute: bool = False):
    """Everything the curve reads and writes, before TensorFlow starts: the run (a ClusterGAN's), the
    earlier rows (unless ``recompute``) and the two outputs. Returns (record, out, old rows)."""
    record = record_lib.find_run(checkpoint_dir, "clustergan")
    out = out or os.path.join(record.directory, "curve")
    # The run's record and its best/ copy are what an OUT.json or OUT.png could replace.
    cli.check_outputs([("--out", out + ".json"), ("--out", out + ".png")],
                      inputs=[record.config_path, os.path.join(record.directory, "best")])
    old = old_rows(out + ".json") if os.path.exists(out + ".json") and not recompute else {}
    return record, out, old


def plot(path: str, rows, dataset: str, title: str, features: str = "z_n, softmax") -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = sorted((r for r in rows if r["kind"] == "checkpoint"), key=lambda r: r["g_iterations"])
    x = [r["g_iterations"] for r in rows]
    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    panels = (("encoder argmax (ours)", ("acc", "nmi", "ari"), ("ACC (Hungarian)", "NMI", "ARI")),
              (f"K-means on [{features}] (the paper's)", ("kmeans_purity", "kmeans_nmi", "kmeans_ari"),
               ("purity (the paper's ACC)", "NMI", "ARI")))
    colors = ("tab:blue", "tab:orange", "tab:green")
    for i, (name, keys, labels) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        for key, label, c in zip(keys, labels, colors):
            ax.plot(x, [r[key] for r in rows], marker="o", ms=3, color=c, label=label)
        if i == 1 and dataset in PAPER:
            for value, label, c in zip(PAPER[dataset], ("paper: ACC", "NMI", "ARI"), colors):
                ax.axhline(value, color=c, ls=":", lw=1, label=f"{label} {value:.2f}")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("G+E updates (G iterations)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best", ncol=2 if i == 1 else 1)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with fileio.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    return path


def curve(checkpoint_dir: str, data_dir: str, out=None, recompute: bool = False, title=None, log=print) -> dict:
    """Score every checkpoint of the run in ``checkpoint_dir``; write and return the curve."""
    from cogan_tf import checkpoints, data, runner
    from cogan_tf.gan import Loop

    record, out, old = check(checkpoint_dir, out, recompute)
    ckpt_dir, saved = record.directory, record.config
    gan = runner.gan_from_checkpoint(ckpt_dir, data_dir, "clustergan", log=lambda s: None)
    loop = Loop(gan, gan.train_cfg)
    x, y = data.load_split(data_dir, gan.train_cfg.dataset, "test")
    rows = []
    for path, kind in run_checkpoints(record):
        key = (os.path.relpath(path, ckpt_dir), kind)
        if key in old:
            rows.append(old[key])
            continue
        checkpoints.restore_weights(loop, gan, path)
        report = gan.cluster_report(x, y)
        row = {"checkpoint": key[0], "kind": kind, "step": int(loop.step.numpy()), "g_iterations": g_iterations(path),
               **{k: report[k] for k in KEYS}}
        rows.append(row)
        log(f"{row['checkpoint']:34s} step {row['step']:7d}  G iters {row['g_iterations']:6d}  "
            f"argmax ACC {row['acc']:.4f} NMI {row['nmi']:.4f} ARI {row['ari']:.4f}  "
            f"K-means purity {row['kmeans_purity']:.4f} NMI {row['kmeans_nmi']:.4f} ARI {row['kmeans_ari']:.4f}")
    m = saved["model_config"]
    features = "z_n, softmax" if gan.kmeans_on_zn() else "softmax"
    result = {
        "run": {"checkpoint_dir": ckpt_dir, "dataset": gan.train_cfg.dataset, "recipe": m.get("recipe", "original"),
                "seed": saved.get("seed"), "batch_size": saved.get("batch_size"), "val_size": saved.get("val_size", 0)},
        "test_images": int(len(y)),
        "protocols": {"acc/nmi/ari": "encoder argmax, Hungarian ACC",
                      "kmeans_*": f"K-means (10 clusters, random_state = seed, n_init 10) on [{features}]; "
                                  "the paper's ACC is kmeans_purity"},
        "paper": dict(zip(("acc", "nmi", "ari"), PAPER.get(gan.train_cfg.dataset, (None,) * 3))),
        "rows": sorted(rows, key=lambda r: (r["kind"] != "checkpoint", r["step"])),
        "validation": checkpoints.best_record(ckpt_dir),
    }
    fileio.atomic_write_text(out + ".json", json.dumps(result, indent=1) + "\n")
    title = title or (f"ClusterGAN --recipe {result['run']['recipe']} on {gan.train_cfg.dataset}, "
                      f"seed {saved.get('seed')}: {len(y)} test images")
    plot(out + ".png", result["rows"], gan.train_cfg.dataset, title, features)
    log(f"wrote {out}.json and {out}.png")
    return result
