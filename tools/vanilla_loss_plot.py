"""The per-epoch mean G and D losses of several vanilla GAN runs in one plot, read from their printed lines
`epoch N: epoch_g_loss: X, epoch_d_loss: Y` (what `main.py --model vanilla` and tools/vanilla_torch_reference.py
print), to compare the port with the PyTorch reference:

    python tools/vanilla_loss_plot.py docs/vanilla_h128_loss.png port=RUN/train.log PyTorch=RUN/torch.log
"""

import re

# (not cogan_tf.vanilla, whose plot helper would start TensorFlow)
from cogan_tf import cli, fileio
from cogan_tf.errors import DataError, UsageError

LINE = re.compile(r"^epoch (\d+): epoch_g_loss: ([-+.\deE]+), epoch_d_loss: ([-+.\deE]+)")


def read_losses(path):
    """{epoch: (g_loss, d_loss)} from a run's printed lines (a later line for an epoch wins, as after a resume)."""
    out = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = LINE.match(line)
                if m:
                    out[int(m.group(1))] = (float(m.group(2)), float(m.group(3)))
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None
    if not out:
        raise DataError(f"{path}: no 'epoch N: epoch_g_loss: X, epoch_d_loss: Y' lines")
    return out


def save_plot(path, epochs, curves):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.2, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (label, ys) in enumerate(curves.items()):
        # One colour per run, G solid and D dashed.
        ax.plot(epochs, ys, color=f"C{i // 2}", linestyle="-" if label.endswith(" G") else "--", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean loss")
    ax.set_title("vanilla GAN, per-epoch mean losses")
    ax.legend()
    with fileio.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def main(argv):
    # No flags: the plot and the runs are plain arguments, OUT.png LABEL=LOG [LABEL=LOG ...].
    if len(argv) < 3:
        raise UsageError("give OUT.png, the plot to write, and one or more LABEL=LOG, a run's label and its "
                         "printed lines (see --help)")
    out, given = argv[1], argv[2:]
    pairs = [r.split("=", 1) for r in given]
    bad = next((r for r, p in zip(given, pairs) if len(p) != 2 or not all(p)), None)
    if bad is not None:
        raise UsageError(f"{bad}: give each run as LABEL=LOG")
    cli.check_outputs([("OUT.png", out)], inputs=[log for _, log in pairs])
    runs = {label: read_losses(path) for label, path in pairs}
    epochs = sorted(set.intersection(*(set(r) for r in runs.values())))
    if not epochs:
        raise DataError(f"no epoch is in every log ({', '.join(path for _, path in pairs)}): nothing to plot")
    curves = {}
    for label, r in runs.items():
        curves[f"{label} G"] = [r[e][0] for e in epochs]
        curves[f"{label} D"] = [r[e][1] for e in epochs]
    # Epochs shown from 1, as the tables in docs/PORTS.md count them.
    save_plot(out, [e + 1 for e in epochs], curves)
    print(f"wrote {out} ({len(epochs)} epochs of {', '.join(runs)})")
    return 0


if __name__ == "__main__":
    cli.run(main, plain_args=True)
