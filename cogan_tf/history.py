"""The per-epoch outputs of the two PyTorch ports (the vanilla GAN and the ClusterGAN), as the originals
write them: a loss history that survives resuming (``losses.json``), and at the end of a run the GIF of
the epoch grids and the loss plots drawn from it.
"""

from __future__ import annotations

import json
import os
from typing import Dict, Mapping, Optional, Sequence

from cogan_tf import fileio, images


class EpochHistory:
    """Per-epoch values (mean losses, grid file name) in ``<dir>/losses.json``, keyed by epoch and
    rewritten atomically after every epoch. Keyed, not appended, so an epoch re-run after resuming
    from an older checkpoint replaces its entry; the plots and the GIF of a resumed run therefore
    cover the whole run."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.path = os.path.join(out_dir, "losses.json")
        self.epochs: Dict[int, dict] = {}
        if os.path.exists(self.path):
            try:
                with open(self.path) as f:
                    self.epochs = {int(k): v for k, v in json.load(f)["epochs"].items()}
            except (ValueError, KeyError, TypeError):
                self.epochs = {}  # damaged: start again rather than stop training

    def record(self, epoch: int, values: Mapping[str, object]) -> None:
        self.epochs[int(epoch)] = dict(values)
        payload = {"epochs": {str(k): v for k, v in sorted(self.epochs.items())}}
        fileio.atomic_write_text(self.path, json.dumps(payload, indent=1, sort_keys=True) + "\n")

    def upto(self, n_epochs: int) -> Dict[int, dict]:
        """Entries of epochs 0..n_epochs-1 (leaving out any of an earlier, longer run)."""
        return {k: v for k, v in sorted(self.epochs.items()) if k < n_epochs}


def save_loss_plot(path: str, epochs: Sequence[int], curves: Mapping[str, Sequence[float]],
                   title: Optional[str] = None) -> str:
    """A PNG line plot of per-epoch values (matplotlib's Agg canvas, no display needed), atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.4, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, ys in curves.items():
        ax.plot(list(epochs), list(ys), label=label)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("mean loss")
    if title:
        ax.set_title(title)
    ax.legend()
    with fileio.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def finish_outputs(history: EpochHistory, n_epochs: int, plots: Mapping[str, Mapping[str, str]],
                   log=print) -> Dict[str, str]:
    """The end of a run: ``generator_results.gif`` of the epoch grids in order and one PNG per entry
    of ``plots`` ({file name: {label: history key}}). Returns {name: path} of what was written."""
    done = history.upto(n_epochs)
    out = {}
    frames = [os.path.join(history.out_dir, v["grid"]) for v in done.values()
              if v.get("grid") and os.path.isfile(os.path.join(history.out_dir, v["grid"]))]
    if frames:
        out["gif"] = images.save_gif(os.path.join(history.out_dir, "generator_results.gif"), frames)
    else:
        log(" [!] no epoch grids yet: no GIF written")
    if done:
        epochs = list(done)
        for name, keys in plots.items():
            curves = {label: [done[e].get(key, float("nan")) for e in epochs] for label, key in keys.items()}
            out[name] = save_loss_plot(os.path.join(history.out_dir, name), epochs, curves)
    else:
        log(" [!] no complete epoch yet: no loss plot written")
    return out
