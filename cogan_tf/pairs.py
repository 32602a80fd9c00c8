"""The CoGAN's pairs of domains: the second domain is a fixed transform of the first (docs/ORIGINAL.md §5.2).

- ``negative``: ``255 - x``, andrewliao11's pair and the CoGAN paper's Task B (the default);
- ``edge``: the 3x3 grey dilation of the image minus the image, the official CoGAN code's
  ``cv2.dilate(img, np.ones((3, 3), np.uint8), iterations=1) - img`` on uint8 (the paper's Task A);
- ``rotate``: the image turned 90 degrees counter-clockwise (``np.rot90``), the paper's supplementary pair.

:func:`transform` is the one definition, used to make the training files (``python invert.py --pair P``)
and to score a trained pair (``cogan_tf.evaluate.image_metrics.PairScoreSums``). The files live in
``<data_dir>/<dataset>/<folder>/{train,t10k}-images-idx3-ubyte.npy``, uint8 (N, 28, 28, 1); ``negative``
keeps the original's folder ``invert/``. They are made from the verified IDX files and, when loaded for
training, checked to be exactly the transform of those files.
"""

from __future__ import annotations

import errno
import os
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from cogan_tf import data, fileio
from cogan_tf.errors import DataError

PAIRS = ("negative", "edge", "rotate")
DEFAULT_PAIR = "negative"
# The folder under <data_dir>/<dataset>/ holding each pair's second domain.
FOLDERS = {"negative": data.INVERT_DIR, "edge": "edge", "rotate": "rotate"}
# Each pair's second domain in a few words (--help, reports).
DESCRIPTIONS = {"negative": "255 - x", "edge": "3x3 dilation minus the image",
                "rotate": "turned 90 degrees counter-clockwise"}


def check_pair(pair: str) -> None:
    if pair not in PAIRS:
        raise DataError(f"unknown pair {pair!r}: choose one of {', '.join(PAIRS)}")


def _spatial_axes(images: np.ndarray):
    """(rows axis, cols axis) of images shaped (..., H, W) or (..., H, W, 1)."""
    if images.ndim >= 3 and images.shape[-1] == 1:
        return images.ndim - 3, images.ndim - 2
    if images.ndim < 2:
        raise ValueError(f"images of shape {images.shape}: need (..., H, W) or (..., H, W, 1)")
    return images.ndim - 2, images.ndim - 1


def _top(images: np.ndarray):
    """The full-ink value of the images' type: 255 for integers (uint8), 1.0 for floats in [0, 1]."""
    return np.iinfo(images.dtype).max if np.issubdtype(images.dtype, np.integer) else images.dtype.type(1.0)


def dilate3x3(images) -> np.ndarray:
    """The grey dilation with a 3x3 square: each pixel the maximum of its 3x3 neighbourhood, the
    neighbours outside the image left out (cv2.dilate's default border). Same dtype as ``images``."""
    x = np.asarray(images)
    r, c = _spatial_axes(x)
    fill = np.iinfo(x.dtype).min if np.issubdtype(x.dtype, np.integer) else -np.inf
    pad = [(0, 0)] * x.ndim
    pad[r] = pad[c] = (1, 1)
    p = np.pad(x, pad, constant_values=fill)
    rows, cols = x.shape[r], x.shape[c]
    out = None
    for dr in range(3):
        for dc in range(3):
            idx = [slice(None)] * x.ndim
            idx[r], idx[c] = slice(dr, dr + rows), slice(dc, dc + cols)
            out = p[tuple(idx)] if out is None else np.maximum(out, p[tuple(idx)])
    return out.astype(x.dtype, copy=False)


def transform(pair: str, images) -> np.ndarray:
    """The pair's second domain of first-domain ``images``: uint8 0..255 or float 0..1 (the generators'
    output), shaped (..., H, W) or (..., H, W, 1); the result has their shape and dtype.

    ``edge`` on floats is the uint8 operation scaled: a maximum commutes with multiplying by 255, so
    ``transform("edge", x / 255) == transform("edge", x) / 255`` up to rounding."""
    check_pair(pair)
    x = np.asarray(images)
    if pair == "negative":
        return (_top(x) - x).astype(x.dtype, copy=False)
    if pair == "edge":
        return dilate3x3(x) - x  # never negative: the 3x3 window holds the pixel itself
    r, c = _spatial_axes(x)
    return np.ascontiguousarray(np.rot90(x, k=1, axes=(r, c)))


def inverse(pair: str, images) -> Optional[np.ndarray]:
    """Second-domain ``images`` mapped back into the first domain where the transform can be undone
    (negative: itself; rotate: 90 degrees clockwise); None for ``edge``, which cannot."""
    check_pair(pair)
    x = np.asarray(images)
    if pair == "negative":
        return transform(pair, x)
    if pair == "rotate":
        r, c = _spatial_axes(x)
        return np.ascontiguousarray(np.rot90(x, k=-1, axes=(r, c)))
    return None


def invert_command(dataset: str, pair: str, data_dir: Optional[str] = None) -> str:
    """The command that writes ``pair``'s second domain of ``dataset``."""
    return ("python invert.py" + (f" --data_dir {data_dir}" if data_dir is not None else "")
            + (f" --pair {pair}" if pair != DEFAULT_PAIR else "") + f" --dataset {dataset}")


# --- the files of a pair's second domain -------------------------------------------------------------

def pair_path(data_dir: str, dataset: str, image_name: str, pair: str = DEFAULT_PAIR) -> str:
    """Where ``pair``'s second domain of the IDX file ``image_name`` is written."""
    return os.path.join(data.dataset_dir(data_dir, dataset), FOLDERS[pair], image_name + ".npy")


def missing_files(data_dir: str, dataset: str, pair: str, splits: Sequence[str] = ("train", "test")) -> List[str]:
    return [p for p in (pair_path(data_dir, dataset, data.SPLIT_FILES[s][0], pair) for s in splits)
            if not os.path.exists(p)]


def require_files(data_dir: str, dataset: str, pair: str, splits: Sequence[str] = ("train", "test")) -> None:
    """Refuse, in one line naming the command that writes them, a pair whose files are not there
    (what ``main.py`` checks before TensorFlow starts)."""
    check_pair(pair)
    missing = missing_files(data_dir, dataset, pair, splits)
    if missing:
        raise DataError(f"{missing[0]}: not found; run `{invert_command(dataset, pair, _shown_dir(data_dir))}` first")


def _shown_dir(data_dir: str) -> Optional[str]:
    return None if os.path.normpath(data_dir) == "data" else data_dir


def write_pair(data_dir: str, dataset: str = "mnist", pair: str = DEFAULT_PAIR, log: Callable = print) -> Dict[str, str]:
    """Write ``transform(pair, x)`` of both image files of ``dataset`` (verified by their sha256,
    ``data.read_dataset_file``) as uint8 .npy (N, 28, 28, 1) in the pair's folder.

    Idempotent: a file that already holds the right content is left alone, so a read-only folder whose
    files are right is fine; each file is written atomically. Returns {image file name: .npy path}.
    """
    data.check_dataset_name(dataset)
    check_pair(pair)
    out = {}
    for split in ("train", "test"):
        image_name = data.SPLIT_FILES[split][0]
        second = transform(pair, data.read_dataset_file(data_dir, dataset, image_name)[..., None]).astype(np.uint8)
        dst = pair_path(data_dir, dataset, image_name, pair)
        if os.path.exists(dst):
            try:
                if np.array_equal(read_npy_images(dst, dataset, pair), second):
                    log(f"{dst}: up to date")
                    out[image_name] = dst
                    continue
            except DataError:
                pass
            log(f"{dst}: stale or damaged, rewriting")
        try:
            with fileio.atomic_path(dst) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, second)
        except OSError as e:
            raise _unwritable(e, dst, data_dir, dataset, pair) from None
        log(f"{dst}: wrote {second.shape} uint8")
        out[image_name] = dst
    return out


def _unwritable(e: OSError, dst: str, data_dir: str, dataset: str, pair: str) -> DataError:
    """The one line for a pair's file that cannot be written: the folder that refused, and what to do."""
    if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DataError(f"{dst}: cannot write ({e.strerror or e})")
    # The pair's folder when it exists, else the dataset folder it could not be made in.
    folder = os.path.dirname(dst)
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    what = "inverted images" if pair == DEFAULT_PAIR else f"{pair} images"
    return DataError(
        f"{folder}: not writable ({e.strerror}), so the {what} cannot be written there; make it writable, "
        f"run `{invert_command(dataset, pair, data_dir)}` as a user who can write it, or point "
        f"--data_dir at a writable copy of {data.dataset_dir(data_dir, dataset)}")


def read_npy_images(path: str, dataset: str = "mnist", pair: str = DEFAULT_PAIR) -> np.ndarray:
    """A pair's .npy as uint8 (N, 28, 28, 1): this port's uint8, or the original invert.py's float64."""
    again = f"run `{invert_command(dataset, pair)}` again"
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy file ({e}); {again}") from None
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] != 1:
        raise DataError(f"{path}: expected images of shape (N, 28, 28, 1), got {arr.shape}")
    if arr.dtype != np.uint8:
        # The original invert.py saved float64 values 0..255.
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise DataError(f"{path}: values outside 0..255")
        arr = np.rint(arr).astype(np.uint8)
    return arr


def _not_transform(pair: str) -> str:
    return ("not 255 - x of its digits" if pair == "negative"
            else f"not the {pair} transform of its digits ({DESCRIPTIONS[pair]})")


def load_pair(data_dir: str, dataset: str = "mnist", pair: str = DEFAULT_PAIR,
              splits: Sequence[str] = ("train", "test"), originals: Optional[Sequence[np.ndarray]] = None) -> np.ndarray:
    """The second domain written by ``invert.py`` for the given splits, concatenated, uint8.

    With ``originals`` (each split's images, as ``data.load_split`` returns them), each file must hold
    exactly ``transform(pair, x)`` of its split: an all-zero file, or one rescaled to 0..1, would
    otherwise train the second domain on black images without a word."""
    check_pair(pair)
    parts = []
    for i, split in enumerate(splits):
        path = pair_path(data_dir, dataset, data.SPLIT_FILES[split][0], pair)
        if not os.path.exists(path):
            raise DataError(f"{path}: not found; run `{invert_command(dataset, pair)}` first")
        part = read_npy_images(path, dataset, pair)
        if originals is not None:
            x = originals[i]
            if part.shape != x.shape or not np.array_equal(part, transform(pair, x)):
                src = os.path.join(data.dataset_dir(data_dir, dataset), data.SPLIT_FILES[split][0])
                what = (f"{len(part)} images of {part.shape[1:3]} for {len(x)} of {x.shape[1:3]}"
                        if part.shape != x.shape else _not_transform(pair))
                raise DataError(f"{path}: {what} ({src}); run `{invert_command(dataset, pair)}` to write it again")
        parts.append(part)
    return np.concatenate(parts)
