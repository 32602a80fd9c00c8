r"""The CoGAN paper's score over training: every checkpoint of one or more CoGAN runs (seeds of one setting),
scored by cogan_tf.evaluate.curve (the pair's pixel agreement with each domain's ink and classifier
score), the runs combined step by step (mean and spread), the best step and the last.

    python tools/cogan_curve.py --checkpoint_dir runs/edge_s0/mnist_128_28,runs/edge_s1/mnist_128_28 \
        --data_dir data --out docs/cogan_edge_curve.json --plot docs/cogan_edge_curve.png

Train with `python main.py ... --save_every 500 --keep_checkpoints 0` so every checkpoint is kept. Points
already in OUT.json (same --num_samples, --seed and --agreement_threshold) are reused.

Runs that differ in how many layers they share (--g_shared_layers, --d_shared_layers) are not seeds of one
setting: `--sharing_table` scores each and tabulates their last points (the paper's Fig. 3), with `--max_step`
to read every run at the same step:

    python tools/cogan_curve.py --sharing_table --max_step 2001 \
        --checkpoint_dir runs/share_g0d3/mnist_128_28,runs/share_g4d3/mnist_128_28 --data_dir data \
        --out docs/cogan_sharing.json
"""

import json
import os

from absl import flags

from cogan_tf import cli, fileio
from cogan_tf.errors import UsageError
from cogan_tf.evaluate.image_metrics import DEFAULT_THRESHOLD
from cogan_tf.evaluate.reports import write_report
from cogan_tf.evaluate.samples import DEFAULT_N, MAX_N

def define_flags():
    flags.DEFINE_list("checkpoint_dir", None, "One run's checkpoint folder, or several (comma-separated) of one "
                      "setting")
    flags.DEFINE_string("data_dir", "data", "Directory holding <dataset>/ [data]")
    flags.DEFINE_string("dataset", None, "Real data and classifier [the runs' dataset]")
    flags.DEFINE_integer("num_samples", DEFAULT_N, f"Pairs per checkpoint, from as many z [{DEFAULT_N}, the paper's]")
    flags.DEFINE_integer("seed", 0, "Seed of the z [0]")
    flags.DEFINE_float("agreement_threshold", DEFAULT_THRESHOLD, f"Pixels binarised at this value "
                       f"[{DEFAULT_THRESHOLD}]")
    flags.DEFINE_string("out", None, "Write the curves as JSON here (and reuse its points) [none]")
    flags.DEFINE_string("plot", None, "Plot the pixel agreement, ink and classifier scores against the step to this "
                        "PNG [none]")
    flags.DEFINE_integer("max_step", None, "Score only the checkpoints of this step or earlier [all]")
    flags.DEFINE_bool("sharing_table", False, "The runs differ in how many layers G and D share: table each run's "
                      "last point by its sharing instead of combining them as seeds [False]")


def plot(path: str, result: dict) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    panels = (("pixel agreement", lambda p: [p["pixel_agreement"]], ("",)),
              ("ink (fraction of pixels)", lambda p: [p["ink"]["top"], p["ink"]["bot"]], ("top", "bot")),
              ("classifier score", lambda p: [p["classifier_score"]["top"], p["classifier_score"]["bot"]],
               ("top", "bot")))
    for ax, (title, get, labels) in zip(axes, panels):
        for i, c in enumerate(result["curves"]):
            steps = [p["step"] for p in c["points"]]
            values = list(zip(*(get(p) for p in c["points"])))
            for v, label, style in zip(values, labels, ("-", "--")):
                run = (f"G {c['setting']['g_shared_layers']} / D {c['setting']['d_shared_layers']}"
                       if "sharing_table" in result else f"seed {c['seed_of_run']}")
                ax.plot(steps, v, style, color=f"C{i}", marker=".", label=f"{run} {label}".strip())
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.legend(fontsize="small")
    fig.suptitle(f"{result['curves'][0]['pair']} pair, {result['curves'][0]['dataset']}: "
                 f"{result['curves'][0]['n']} pairs per checkpoint")
    fig.tight_layout()
    with fileio.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def main(argv):
    f = flags.FLAGS
    if not f.checkpoint_dir:
        raise UsageError("--checkpoint_dir: give one or more CoGAN runs' checkpoint folders")
    if not 2 <= f.num_samples <= MAX_N:
        raise UsageError(f"--num_samples={f.num_samples}: give 2 to {MAX_N:,}")
    if f.max_step is not None and f.max_step < 1:
        raise UsageError(f"--max_step={f.max_step}: give a step of 1 or more")
    if not 0 < f.agreement_threshold < 1:
        raise UsageError(f"--agreement_threshold={f.agreement_threshold}: give a value between 0 and 1 (exclusive)")
    for flag in ("out", "plot"):
        why = getattr(f, flag) and fileio.unwritable_file(getattr(f, flag))
        if why:
            raise UsageError(f"--{flag}={getattr(f, flag)}: {why}")
    done = {}
    if f.out and os.path.isfile(f.out):
        with open(f.out) as fh:
            done = {c["run"]: c for c in json.load(fh).get("curves", [])}
    cli.start_tensorflow()
    from cogan_tf import record as record_lib
    from cogan_tf.evaluate import curve
    from cogan_tf.evaluate.scoring import load_classifier

    records = [record_lib.find_run(d, "cogan") for d in f.checkpoint_dir]
    curve.check_settings([(r.directory, curve.setting(r)) for r in records], sharing=f.sharing_table)
    clf, curves = None, []
    for d, record in zip(f.checkpoint_dir, records):
        clf = clf or load_classifier(f.data_dir, f.dataset or record.config["dataset"])
        c = curve.score_checkpoints(d, f.data_dir, f.num_samples, f.seed, f.agreement_threshold, "cogan", f.dataset,
                                    clf=clf, done=done.get(record.directory), max_step=f.max_step)
        c["seed_of_run"] = record.config.get("seed")
        curves.append(c)
        print(f"{d}: best step {c['best']['step']} ({c['best']['pixel_agreement']:.4f}), last step "
              f"{c['last']['step']} ({c['last']['pixel_agreement']:.4f})")
    if f.sharing_table:
        result = {"curves": curves, "sharing_table": curve.sharing_table(curves)}
        print(curve.format_sharing_table(result["sharing_table"]))
    else:
        result = {"curves": curves, "combined": curve.combine(curves) if len(curves) > 1 else None}
    if result.get("combined"):
        b, last = result["combined"]["best"], result["combined"]["last"]
        print(f"{len(curves)} runs: best step {b['step']} ({b['pixel_agreement']['mean']:.4f} +- "
              f"{b['pixel_agreement']['std']:.4f}), last step {last['step']} ({last['pixel_agreement']['mean']:.4f} "
              f"+- {last['pixel_agreement']['std']:.4f})")
    if f.out:
        write_report(f.out, result)
        print(f" [*] wrote {f.out}")
    if f.plot:
        plot(f.plot, result)
        print(f" [*] wrote {f.plot}")
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main, list_flags=("checkpoint_dir",))
