"""Sample grids as the original writes them (8x8 cells of 28x28), read back, and animated GIFs of a
run's grids.

Two ways to map a generator's [0, 1] output to bytes: ``fixed`` (x 255) and ``stretch``, which is
what andrewliao11's CoGAN did without saying so (quirk Q3): its grids went through
``scipy.misc.imsave``, whose ``bytescale`` stretches each grid's own minimum..maximum to 0..255.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from PIL import Image

from cogan_tf import fileio
from cogan_tf.errors import GridError


def to_uint8(images: np.ndarray, value_range=(0.0, 1.0)) -> np.ndarray:
    """Map images in ``value_range`` to 0..255 (x 255 for [0, 1]), rounding and clipping."""
    lo, hi = value_range
    x = (np.asarray(images, dtype=np.float32) - lo) / (hi - lo)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def stretch_to_uint8(x: np.ndarray) -> np.ndarray:
    """scipy.misc.bytescale as ``scipy.misc.imsave`` applied it to a float array (scipy <= 1.1):
    ``uint8(clip((x - min) * 255 / (max - min), 0, 255) + 0.5)`` with min and max over the whole
    array (a constant array: max - min taken as 1), in float64."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo if hi != lo else 1.0
    return (np.clip((x - lo) * (255.0 / span), 0.0, 255.0) + 0.5).astype(np.uint8)


SCALINGS = ("stretch", "fixed")


def make_grid(images: np.ndarray, rows: int = 8, cols: int = 8, value_range=(0.0, 1.0),
              scaling: str = "fixed") -> np.ndarray:
    """Tile the first rows*cols images (N, H, W[, 1]) into one (rows*H, cols*W) uint8 array.

    ``scaling="fixed"`` maps ``value_range`` to 0..255; ``"stretch"`` maps the grid's own minimum and
    maximum to 0..255 (:func:`stretch_to_uint8`, the original CoGAN's grids)."""
    if scaling not in SCALINGS:
        raise GridError(f"grid scaling {scaling!r}: choose one of {', '.join(SCALINGS)}")
    images = np.asarray(images)
    if images.ndim == 4:
        if images.shape[-1] != 1:
            raise GridError(f"grids hold single-channel images, got shape {images.shape}")
        images = images[..., 0]
    if images.ndim != 3 or len(images) < rows * cols:
        raise GridError(f"need at least {rows * cols} images of shape (H, W[, 1]), got {images.shape}")
    h, w = images.shape[1:]
    cells = np.asarray(images[: rows * cols]).reshape(rows, cols, h, w).transpose(0, 2, 1, 3)
    grid = cells.reshape(rows * h, cols * w)
    return stretch_to_uint8(grid) if scaling == "stretch" else to_uint8(grid, value_range)


def save_png(path: str, array: np.ndarray, rgb: bool = False) -> None:
    """Write a uint8 grayscale array as PNG (``rgb``: three equal channels, as the original CoGAN's
    grids), atomically."""
    with fileio.atomic_path(path) as tmp:
        im = Image.fromarray(array, mode="L")
        (im.convert("RGB") if rgb else im).save(tmp, format="PNG")


def save_grid(path: str, images: np.ndarray, rows: int = 8, cols: int = 8, value_range=(0.0, 1.0),
              scaling: str = "fixed", rgb: bool = False) -> str:
    """Write an 8x8 grid PNG (224x224 for 28x28 images) of ``images`` to ``path``; returns ``path``."""
    save_png(path, make_grid(images, rows, cols, value_range, scaling), rgb=rgb)
    return path


def read_grid(path: str, cell: int = 28) -> np.ndarray:
    """Slice a grid PNG back into its cells: float32 (rows*cols, cell, cell, 1) in [0, 1], row-major."""
    if not os.path.isfile(path):
        raise GridError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    except (OSError, ValueError) as e:
        raise GridError(f"{path}: not a readable image ({e})") from None
    h, w = arr.shape
    if h % cell or w % cell:
        raise GridError(f"{path}: {w}x{h} pixels is not a grid of {cell}x{cell} cells")
    rows, cols = h // cell, w // cell
    return arr.reshape(rows, cell, cols, cell).transpose(0, 2, 1, 3).reshape(rows * cols, cell, cell, 1)


def save_gif(path: str, frame_paths: Sequence[str], duration_ms: int = 300) -> str:
    """An animated GIF of the given PNG frames, in order, written atomically."""
    if not frame_paths:
        raise GridError(f"{path}: no frames to animate")
    frames = [Image.open(p).convert("L") for p in frame_paths]
    with fileio.atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    return path
