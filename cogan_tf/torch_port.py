"""What the two PyTorch ports (the vanilla GAN and the ClusterGAN, JasonFengGit's code) share: PyTorch's
default initial weights, the per-epoch bookkeeping of the originals (a loss history that survives
resuming, grids every N epochs, at the end a GIF of the grids and loss plots) and the input checks.

Choices where PyTorch and Keras differ, documented once here:

- Initial weights: PyTorch's defaults, which both originals keep (they never re-initialise): every
  Linear / Conv / ConvTranspose weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), where fan_in
  is in_features, in_channels*k*k, and for ConvTranspose2d out_channels*k*k (PyTorch reads the
  fan from dimension 1 of its (in, out, k, k) weight); Keras's fan_in of a Conv2DTranspose kernel
  (k, k, out, in) is the same number. Not Keras's Glorot default.
- Losses are computed from logits (``losses.sigmoid_ce``): the same value as PyTorch's BCELoss on the
  sigmoid output, and the same gradient, where clipping the probabilities would zero the gradient
  of a saturated discriminator (PyTorch's BCELoss does not clip the gradient, it clamps the log).
- Adam: TF's epsilon-hat form (epsilon added to sqrt(v) before bias correction), epsilon 1e-8.
- Batches: the loop drops the last partial batch of an epoch (the DataLoader keeps it).
"""

from __future__ import annotations

import json
import math
import os
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
import keras

from cogan_tf import data, fileio, images
from cogan_tf.config import TrainConfig
from cogan_tf.gan import RunState
from cogan_tf.layers import Dense

IMAGE_SHAPE = (28, 28, 1)
DEFAULT_SAMPLE_EVERY_EPOCHS = 10


# --- PyTorch's default initialisation ---------------------------------------------------------------

def torch_default_init(fan_in: int) -> keras.initializers.Initializer:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for weights (kaiming_uniform with
    a = sqrt(5), whose bound works out to the same) and for biases of Linear and conv layers."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def build_once(layer, input_shape) -> None:
    """Build a sub-layer unless a call already did (a model's build may come after its layers ran)."""
    if not layer.built:
        layer.build(input_shape)


def torch_dense(units: int, fan_in: int, name: str, activation=None) -> Dense:
    """``nn.Linear(fan_in, units)`` with PyTorch's default initial weights (a Dense whose input gradient may be
    written, :class:`cogan_tf.layers.Dense`)."""
    return Dense(units, activation=activation, kernel_initializer=torch_default_init(fan_in),
                 bias_initializer=torch_default_init(fan_in), name=name)


# --- per-epoch bookkeeping ----------------------------------------------------------------------------

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


def epoch_summaries(loop: RunState, values: Mapping[str, float]) -> None:
    """Per-epoch means as TensorBoard scalars ``epoch/<name>``, at the global step."""
    if loop.writer is None:
        return
    with loop.writer.as_default(step=int(loop.step.numpy())):
        for k, v in values.items():
            tf.summary.scalar(f"epoch/{k}", v)


def sample_every_epochs(cfg: TrainConfig) -> int:
    return int(getattr(cfg, "sample_every_epochs", DEFAULT_SAMPLE_EVERY_EPOCHS))


def training_images(data_dir: str, dataset: str) -> np.ndarray:
    """The 60,000 training images (the train split only, as the PyTorch originals), uint8 (N, 28, 28, 1)."""
    return data.load_split(data_dir, dataset, "train")[0]


def check_arrays(arrays, name: str):
    arrays = list(arrays)
    if len(arrays) != 1 or np.asarray(arrays[0]).shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{name}: expected arrays=[uint8 images of shape (N, 28, 28, 1)]")
    return arrays

