"""The per-epoch mean G and D losses of several vanilla GAN runs in one plot, read from their printed lines
`epoch N: epoch_g_loss: X, epoch_d_loss: Y` (what `main.py --model vanilla` and tools/vanilla_torch_reference.py
print), to compare the port with the PyTorch reference:

    python tools/vanilla_loss_plot.py docs/vanilla_h128_loss.png port=RUN/train.log PyTorch=RUN/torch.log
"""

import re
import sys

from cogan_tf import fileio  # (not cogan_tf.vanilla, whose plot helper would start TensorFlow)

LINE = re.compile(r"^epoch (\d+): epoch_g_loss: ([-+.\deE]+), epoch_d_loss: ([-+.\deE]+)")


def read_losses(path):
    """{epoch: (g_loss, d_loss)} from a run's printed lines (a later line for an epoch wins, as after a resume)."""
    out = {}
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if m:
                out[int(m.group(1))] = (float(m.group(2)), float(m.group(3)))
    if not out:
        sys.exit(f"error: {path}: no 'epoch N: epoch_g_loss: X, epoch_d_loss: Y' lines")
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
    if len(argv) < 2 or not all("=" in a for a in argv[1:]):
        sys.exit("usage: python tools/vanilla_loss_plot.py OUT.png LABEL=LOG [LABEL=LOG ...]")
    runs = {label: read_losses(path) for label, path in (a.split("=", 1) for a in argv[1:])}
    epochs = sorted(set.intersection(*(set(r) for r in runs.values())))
    curves = {}
    for label, r in runs.items():
        curves[f"{label} G"] = [r[e][0] for e in epochs]
        curves[f"{label} D"] = [r[e][1] for e in epochs]
    # Epochs shown from 1, as the tables in docs/PORTS.md count them.
    save_plot(argv[0], [e + 1 for e in epochs], curves)
    print(f"wrote {argv[0]} ({len(epochs)} epochs of {', '.join(runs)})")


if __name__ == "__main__":
    main(sys.argv[1:])
