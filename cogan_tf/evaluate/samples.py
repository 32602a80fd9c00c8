"""What the evaluation scores: samples of a GAN, batch by batch, from an exported SavedModel (or a checkpoint
exported the same way), from images in memory, or from 8x8 grid PNGs (:class:`Samples`)."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from cogan_tf import pairs
from cogan_tf.errors import DataError, GridError, UsageError

DEFAULT_N = 10_000
# The largest --num_samples: 20 times the 50,000 the Frechet distance is usually quoted at; past it a
# number no longer moves, and the CPU-hours do.
MAX_N = 1_000_000
IMAGE_SHAPE = (28, 28, 1)
GEN_BATCH = 500  # the faithful CoGAN's BatchNorm uses each batch's statistics: never call it on tiny batches


# --- samples: what is scored ---------------------------------------------------------------------------

@dataclasses.dataclass
class Samples:
    """``n`` images in [0, 1], float32 (N, 28, 28, 1), by domain name, read in batches: ``draw()`` yields
    dicts of arrays, each call a new pass over the same samples.

    cogan: ``top`` = G1(z), ``bot`` = G2(z); vanilla and clustergan: ``images`` = G(z); a clustergan's
    batches also hold ``z_c``, the class code each image was drawn from. ``images`` (and ``z_c``) hold
    all of them when they are in memory (grids, :func:`generate`), None when they are drawn from a model
    batch by batch (:func:`sample_stream`: memory independent of ``n``). ``encode``: the model's encoder
    (images in [0, 1] -> (z_n, class probabilities)); ``kmeans_on_zn``: its K-means clusters [z_n, softmax]
    (False: the softmax alone, for a model trained without a z_n loss). ``pair``: a CoGAN's pair of
    domains (cogan_tf/pairs.py), which its export records; grids are told it.
    """

    model: str
    n: int
    source: str
    draw: Callable[[], Iterator[Dict[str, np.ndarray]]]
    seed: Optional[int] = None
    encode: Optional[Callable] = None
    images: Optional[Dict[str, np.ndarray]] = None
    z_c: Optional[np.ndarray] = None
    kmeans_on_zn: bool = True
    pair: str = pairs.DEFAULT_PAIR


def in_memory(model: str, images: Dict[str, np.ndarray], source: str, seed: Optional[int] = None,
              z_c: Optional[np.ndarray] = None, encode: Optional[Callable] = None,
              batch_size: int = GEN_BATCH, kmeans_on_zn: bool = True, pair: str = pairs.DEFAULT_PAIR) -> Samples:
    """Samples held in arrays, read back in batches of near-equal size."""
    n = len(next(iter(images.values())))
    arrays = dict(images, **({} if z_c is None else {"z_c": z_c}))

    def draw():
        for s in _batches(n, batch_size):
            yield {k: v[s] for k, v in arrays.items()}
    return Samples(model, n, source, draw, seed, encode, images, z_c, kmeans_on_zn, pair)


def model_kind(loaded) -> str:
    """"cogan", "vanilla" or "clustergan", read off a loaded SavedModel's ``serving_default``."""
    sig = _serving(loaded)
    inputs = set(sig.structured_input_signature[1])
    outputs = set(sig.structured_outputs)
    if {"top", "bot"} <= outputs:
        return "cogan"
    if {"z_n", "z_c"} <= inputs and "images" in outputs:
        return "clustergan"
    if inputs == {"z"} and "images" in outputs:
        return "vanilla"
    raise UsageError(f"SavedModel with inputs {sorted(inputs)} and outputs {sorted(outputs)} is none of "
                     "the exported generators (cogan: z -> top, bot; vanilla: z -> images; "
                     "clustergan: z_n, z_c -> images)")


def _serving(loaded):
    if "serving_default" not in loaded.signatures:
        raise UsageError("SavedModel has no serving_default signature")
    return loaded.signatures["serving_default"]


def _batches(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices of near-equal size covering ``range(n)`` (as ``np.array_split``): no tiny last
    batch (the faithful CoGAN normalises each batch with its own statistics)."""
    k = max(1, math.ceil(n / batch_size))
    size, extra = divmod(n, k)
    start = 0
    for i in range(k):
        stop = start + size + (i < extra)
        yield slice(start, stop)
        start = stop


def sample_stream(loaded, n: int = DEFAULT_N, seed: int = 0, batch_size: int = GEN_BATCH, source: str = "") -> Samples:
    """``n`` samples from a loaded SavedModel, generated batch by batch whenever they are read; z ~ N(0, 1),
    or U(-1, 1) for an export that says so (``z_uniform``: the CoGAN's ``--recipe paper``), and for
    clustergan z_n ~ N(0, sigma^2) with the export's ``zn_sigma`` and z_c uniform one-hot; drawn from a
    seeded numpy generator, so a seed reproduces a report."""
    import tensorflow as tf

    kind = model_kind(loaded)
    sig = _serving(loaded)
    specs = sig.structured_input_signature[1]
    keys = ("top", "bot") if kind == "cogan" else ("images",)
    _check_specs(specs, sig.structured_outputs, keys, source or "SavedModel")
    z_c = None
    if kind == "clustergan":
        z_dim, n_classes = specs["z_n"].shape[-1], specs["z_c"].shape[-1]
        sigma = float(loaded.zn_sigma.numpy()) if hasattr(loaded, "zn_sigma") else 1.0  # not ours: N(0, 1)
        # The codes come after all n * z_dim normals in the generator's stream (z was once drawn whole):
        # the normals are drawn once here to reach them, and again batch by batch in draw().
        rng = np.random.default_rng(seed)
        for s in _batches(n, batch_size):
            rng.standard_normal((s.stop - s.start, z_dim))
        z_c = rng.integers(0, n_classes, n)
        onehot = np.eye(n_classes, dtype=np.float32)
    else:
        z_dim = specs["z"].shape[-1]
    # A CoGAN export of the paper's network records that it was trained on z ~ U(-1, 1).
    uniform = bool(loaded.z_uniform.numpy()) if hasattr(loaded, "z_uniform") else False

    def draw():
        rng = np.random.default_rng(seed)
        for s in _batches(n, batch_size):
            shape = (s.stop - s.start, z_dim)
            z = rng.uniform(-1.0, 1.0, shape) if uniform else rng.standard_normal(shape)
            if z_c is None:
                feed = {"z": tf.constant(z.astype(np.float32))}
            else:
                feed = {"z_n": tf.constant((sigma * z).astype(np.float32)), "z_c": tf.constant(onehot[z_c[s]])}
            try:
                out = sig(**feed)
            except tf.errors.OpError as e:
                raise DataError(f"{source or 'SavedModel'}: its generator fails on z of shape {z.shape} "
                                f"({str(e).strip().splitlines()[0][:200]})") from None
            batch = {k: out[k].numpy().astype(np.float32) for k in keys}
            for k, v in batch.items():
                if v.shape[1:] != IMAGE_SHAPE:  # an output whose shape the signature left open
                    raise DataError(f"{source or 'SavedModel'}: its output {k!r} has shape {v.shape}, not "
                                    f"(batch, {', '.join(map(str, IMAGE_SHAPE))})")
            if z_c is not None:
                batch["z_c"] = z_c[s]
            yield batch

    encode = None
    if kind == "clustergan" and "encode" in loaded.signatures:
        enc = loaded.signatures["encode"]

        def encode(x, enc=enc):
            zs, probs = [], []
            for s in _batches(len(x), batch_size):
                out = enc(images=tf.constant(x[s], tf.float32))
                zs.append(out["z_n"].numpy())
                probs.append(out["class_probs"].numpy())
            return np.concatenate(zs), np.concatenate(probs)
    # Exports record whether K-means clusters z_n too (a SavedModel that does not say: it does).
    kmeans_on_zn = bool(loaded.kmeans_on_zn.numpy()) if hasattr(loaded, "kmeans_on_zn") else True
    return Samples(kind, n, source, draw, seed, encode, kmeans_on_zn=kmeans_on_zn, pair=exported_pair(loaded, source))


def exported_pair(loaded, source: str = "") -> str:
    """The pair of domains a CoGAN export records (a SavedModel without the record: the negatives)."""
    if not hasattr(loaded, "pair"):
        return pairs.DEFAULT_PAIR
    pair = loaded.pair.numpy().decode()
    if pair not in pairs.PAIRS:
        raise UsageError(f"{source or 'SavedModel'}: records the pair {pair!r}, none of {', '.join(pairs.PAIRS)}")
    return pair


def _check_specs(inputs, outputs, keys, source: str) -> None:
    """Refuse, before anything is drawn or the classifier loads, a signature of the right names but not
    the exported generators' shapes: float32 (batch, n) inputs and (batch, 28, 28, 1) images."""
    for name, spec in inputs.items():
        if spec.dtype.name != "float32" or spec.shape.rank != 2 or spec.shape[-1] is None:
            raise UsageError(f"{source}: SavedModel input {name!r} is {spec.dtype.name} of shape {spec.shape}; "
                             "an exported generator takes float32 (batch, n)")
    for name in keys:
        shape = outputs[name].shape
        if shape.rank is not None and (shape.rank != 4 or any(d not in (None, e) for d, e in
                                                               zip(shape[1:], IMAGE_SHAPE))):
            raise UsageError(f"{source}: SavedModel output {name!r} has shape {shape}; an exported generator "
                             f"gives (batch, {', '.join(map(str, IMAGE_SHAPE))}) images")


def generate(loaded, n: int = DEFAULT_N, seed: int = 0, batch_size: int = GEN_BATCH, source: str = "") -> Samples:
    """:func:`sample_stream`'s samples, all generated now and held in memory (for a small ``n``; the
    report reads a model's samples batch by batch)."""
    stream = sample_stream(loaded, n, seed, batch_size, source)
    parts = list(stream.draw())
    images = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k != "z_c"}
    z_c = np.concatenate([p["z_c"] for p in parts]) if "z_c" in parts[0] else None
    return in_memory(stream.model, images, source, seed, z_c, stream.encode, batch_size, stream.kmeans_on_zn,
                     stream.pair)


def load_saved_model(path: str):
    from cogan_tf import export

    return export.load(path)


def grid_pairs(paths: Sequence[str]) -> List[Tuple[str, str]]:
    """``TOP BOT [TOP2 BOT2 ...]`` -> [(TOP, BOT), ...], refusing an odd count or swapped pairs."""
    paths = list(paths)
    if not paths or len(paths) % 2:
        raise UsageError(f"--grids takes pairs TOP.png BOT.png [TOP2.png BOT2.png ...]; got {len(paths)} "
                         f"path{'s' if len(paths) != 1 else ''}")
    pairs = list(zip(paths[0::2], paths[1::2]))
    for top, bot in pairs:
        if _parent(top) == "bot" or _parent(bot) == "top":
            raise UsageError(f"--grids {top} {bot}: looks swapped; give each pair as TOP.png BOT.png")
    return pairs


def _parent(path: str) -> str:
    return os.path.basename(os.path.dirname(os.path.abspath(path)))


def samples_from_grids(paths: Sequence[str], pair: str = pairs.DEFAULT_PAIR) -> Samples:
    """CoGAN pairs of domains ``pair`` sliced out of 8x8 grid PNGs: 64 pairs per (TOP, BOT) pair of files.
    Every file's header is checked (``images.grid_shape``) before any is decoded."""
    from cogan_tf import images

    files = grid_pairs(paths)
    for top, bot in files:
        t, b = images.grid_shape(top), images.grid_shape(bot)
        if t != b:
            raise GridError(f"{top} holds {t.cells} cells but {bot} holds {b.cells}")
    tops = [images.read_grid(top) for top, _ in files]
    bots = [images.read_grid(bot) for _, bot in files]
    n = sum(len(t) for t in tops)
    if n < 2:
        # The Frechet distance needs two samples' covariance; a grid of ours or the original's holds 64.
        raise GridError(f"--grids {' '.join(paths)}: {n} pair of 28x28 cells; the report needs at least "
                               "2 (an 8x8 grid holds 64)")
    source = paths[0] if len(paths) == 2 else f"{len(paths) // 2} grid pairs ({paths[0]} ...)"
    return in_memory("cogan", {"top": np.concatenate(tops), "bot": np.concatenate(bots)}, source, pair=pair)
