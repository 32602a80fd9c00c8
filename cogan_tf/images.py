"""Sample grids as the original writes them (8x8 cells of 28x28), read back, and animated GIFs of a
run's grids.

Two ways to map a generator's [0, 1] output to bytes: ``fixed`` (x 255) and ``stretch``, which is
what andrewliao11's CoGAN did without saying so (quirk Q3): its grids went through
``scipy.misc.imsave``, whose ``bytescale`` stretches each grid's own minimum..maximum to 0..255.
"""

from __future__ import annotations

import dataclasses
import os
import struct
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


# The largest grid read: 100 x 100 cells of 28x28 (2800x2800 pixels, 31 MB as float32). Anything larger is
# not a grid of samples, and decoding it would cost minutes and gigabytes before saying so.
MAX_GRID_CELLS = 10_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale with alpha", 6: "RGBA"}


@dataclasses.dataclass(frozen=True)
class GridShape:
    """A grid PNG's size, from its header: ``rows`` x ``cols`` cells of ``cell`` x ``cell`` pixels."""

    width: int
    height: int
    cell: int = 28

    @property
    def rows(self) -> int:
        return self.height // self.cell

    @property
    def cols(self) -> int:
        return self.width // self.cell

    @property
    def cells(self) -> int:
        return self.rows * self.cols

    def __str__(self) -> str:
        return f"{self.width}x{self.height} pixels ({self.rows}x{self.cols} = {self.cells} cells)"


def grid_shape(path: str, cell: int = 28) -> GridShape:
    """A grid PNG's shape, read from its header alone (nothing is decoded); refuses, naming the file, what
    cannot be read faithfully as a grid: no PNG, a size that is not rows x cols cells of ``cell`` x
    ``cell``, more than :data:`MAX_GRID_CELLS` cells, 16 bits per channel."""
    if not os.path.isfile(path):
        raise GridError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            head = f.read(33)
    except OSError as e:
        raise GridError(f"{path}: not a readable image ({e.strerror or e})") from None
    if len(head) < 33 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise GridError(f"{path}: not a readable image (not a PNG file; grids are read from PNG)")
    width, height = struct.unpack(">II", head[16:24])
    depth, colour = head[24], head[25]
    if colour not in _COLOUR_TYPES:
        raise GridError(f"{path}: not a readable image (PNG colour type {colour})")
    if width % cell or height % cell or not width or not height:
        raise GridError(f"{path}: {width}x{height} pixels is not a grid of {cell}x{cell} cells")
    shape = GridShape(width, height, cell)
    if shape.cells > MAX_GRID_CELLS:
        raise GridError(f"{path}: {shape}: not a grid of samples (at most {MAX_GRID_CELLS:,} cells are read; an "
                        f"8x8 grid is {8 * cell}x{8 * cell} pixels)")
    if depth > 8:
        raise GridError(f"{path}: {depth}-bit {_COLOUR_TYPES[colour]}: grids are read as 8-bit greyscale, and "
                        f"{depth} bits would be clipped; save it with 8 bits per channel")
    return shape


def read_grid(path: str, cell: int = 28) -> np.ndarray:
    """Slice a grid PNG back into its cells: float32 (rows*cols, cell, cell, 1) in [0, 1], row-major.

    Read faithfully or refused, naming the file (:func:`grid_shape`'s checks first, from the header):
    8-bit (or fewer) greyscale, or RGB / palette images whose three channels are equal (the original's
    grids are RGB), without transparent pixels."""
    shape = grid_shape(path, cell)
    try:
        with Image.open(path) as im:
            pixels = np.asarray(im) if im.mode == "L" else np.asarray(im.convert("RGBA"))
    except (OSError, ValueError, SyntaxError) as e:
        raise GridError(f"{path}: not a readable image ({e})") from None
    if pixels.ndim == 3:
        if np.any(pixels[..., 3] != 255):
            raise GridError(f"{path}: has transparent pixels; a grid is opaque greyscale")
        if np.any(pixels[..., 0] != pixels[..., 1]) or np.any(pixels[..., 0] != pixels[..., 2]):
            raise GridError(f"{path}: a colour image (its channels differ); a grid is greyscale")
        pixels = pixels[..., 0]
    arr = pixels.astype(np.float32) / 255.0
    rows, cols = shape.rows, shape.cols
    return arr.reshape(rows, cell, cols, cell).transpose(0, 2, 1, 3).reshape(rows * cols, cell, cell, 1)


def save_gif(path: str, frame_paths: Sequence[str], duration_ms: int = 300) -> str:
    """An animated GIF of the given PNG frames, in order, written atomically."""
    if not frame_paths:
        raise GridError(f"{path}: no frames to animate")
    frames = [Image.open(p).convert("L") for p in frame_paths]
    with fileio.atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    return path
