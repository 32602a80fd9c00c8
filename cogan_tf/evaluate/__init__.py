"""Numbers, not only pictures: classifier-based evaluation of the three GANs, and of sample grids.

Samples (from an exported SavedModel, a checkpoint exported the same way, or 8x8 grid PNGs) are scored
batch by batch, so memory does not grow with their number, with the project's classifier
(:mod:`cogan_tf.evaluate.classifier`) by the functions and running sums of
:mod:`cogan_tf.evaluate.image_metrics`: for a CoGAN, the CoGAN paper's pixel agreement of the pair's
transform of G1(z) with G2(z), with each domain's ink; per domain,
the classifier score, the Fréchet distance to the test images and the digit histogram; a ``real``
column as the floor to read them against. What each number means: docs/RESULTS.md, "How the numbers
are made". The table and the JSON: :mod:`cogan_tf.evaluate.reports`. The command line is
``python -m cogan_tf.evaluate`` (:mod:`cogan_tf.evaluate.__main__`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from cogan_tf import data, outputs, pairs
from cogan_tf.errors import DataError, GridError, UsageError
from cogan_tf.evaluate.image_metrics import (DEFAULT_THRESHOLD, ClassifierScoreSums, FeatureMoments, Mean,
                                             PairScoreSums, class_counts, class_histogram, classifier_score,
                                             feature_stats, frechet_distance_few, frechet_distance_from_stats,
                                             histogram_entropy_classes, psd_sqrt, real_pair_scores)
# Re-exported: the metrics and the report's text and JSON are read through this package.
from cogan_tf.evaluate.image_metrics import label_agreement, mean_abs_difference, pixel_agreement  # noqa: F401
from cogan_tf.evaluate.reports import (flatten, format_compare, format_report, format_value, scored_dataset,  # noqa: F401
                                       load_report, write_report)

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


# --- the report --------------------------------------------------------------------------------------

@dataclasses.dataclass
class Reference:
    """What generated images are measured against: the real test images, through the classifier."""

    dataset: str
    test_images: np.ndarray
    test_labels: np.ndarray
    train_images: np.ndarray
    test_stats: Tuple[np.ndarray, np.ndarray]
    test_probs: np.ndarray
    test_root: Optional[np.ndarray] = None  # the test covariance's square root, made on first use
    # Per pair without an inverse (edge): the reference of its second domain, made on first use (of_pair).
    transformed: Dict[str, "Reference"] = dataclasses.field(default_factory=dict)

    def of_pair(self, clf, pair: str) -> "Reference":
        """What a CoGAN's second domain is scored against: this reference when the pair can be undone
        (G2(z) is mapped back into the first domain), else the pair's transform of the real images."""
        if pairs.inverse(pair, self.test_images[:1]) is not None:
            return self
        if pair not in self.transformed:
            x_test, x_train = pairs.transform(pair, self.test_images), pairs.transform(pair, self.train_images)
            probs, feats = clf.predict(x_test)
            self.transformed[pair] = Reference(f"{self.dataset} {pair}", x_test, self.test_labels, x_train,
                                               feature_stats(feats), probs)
        return self.transformed[pair]

    def moments(self) -> FeatureMoments:
        """An accumulator for features measured against this reference (keeping them while few)."""
        return FeatureMoments(keep=len(self.test_stats[0]))

    def frechet_distance(self, features) -> float:
        m = self.moments()
        m.add(features)
        return self.frechet_distance_of(m)

    def frechet_distance_of(self, moments: FeatureMoments) -> float:
        """Fréchet distance of the features accumulated in ``moments`` to the test set's: through
        ``frechet_distance_few`` when there are no more samples than feature dimensions (grids), else
        through the covariances."""
        few = moments.rows()
        if few is None:
            return frechet_distance_from_stats(*moments.stats(), *self.test_stats)
        if self.test_root is None:
            self.test_root = psd_sqrt(self.test_stats[1])
        return frechet_distance_few(few, *self.test_stats, sigma2_root=self.test_root)


def make_reference(clf, data_dir: str, dataset: str) -> Reference:
    x_test, y_test = data.load_split(data_dir, dataset, "test")
    x_train, _ = data.load_split(data_dir, dataset, "train")
    probs, feats = clf.predict(x_test)
    return Reference(dataset, x_test, y_test, x_train, feature_stats(feats), probs)


class DomainScores:
    """Classifier score, Fréchet distance to the test set and class histogram of one domain, accumulated
    batch by batch (``add``); the class labels are kept (2 bytes each) only with ``keep_labels``."""

    def __init__(self, ref: Reference, keep_labels: bool = False):
        self.ref, self.score, self.moments = ref, ClassifierScoreSums(), ref.moments()
        self.counts = np.zeros(10)
        self.labels: Optional[List[np.ndarray]] = [] if keep_labels else None

    def add(self, clf, images: np.ndarray) -> np.ndarray:
        """Score one batch; returns its class labels."""
        probs, feats = clf.predict(images)
        labels = probs.argmax(axis=1)
        self.score.add(probs)
        self.moments.add(feats)
        self.counts += class_counts(labels)
        if self.labels is not None:
            self.labels.append(labels.astype(np.int16))
        return labels

    def metrics(self) -> dict:
        hist = self.counts / max(self.moments.n, 1)
        return {
            "classifier_score": self.score.value(),
            "frechet_distance": self.ref.frechet_distance_of(self.moments),
            "effective_classes": histogram_entropy_classes(hist),
            "histogram": [float(h) for h in hist],
        }


def real_metrics(clf, ref: Reference, n: int, seed: int) -> dict:
    """The real-data floor: the test set's score, and the Fréchet distance of ``n`` random training
    images to the test set (same sample size as the generated set, so the same small-n bias)."""
    rng = np.random.default_rng([seed, 7])
    idx = rng.choice(len(ref.train_images), size=min(n, len(ref.train_images)), replace=False)
    moments = ref.moments()
    for s in _batches(len(idx), GEN_BATCH):
        moments.add(clf.predict(ref.train_images[idx[s]])[1])
    hist = class_histogram(ref.test_probs.argmax(axis=1))
    return {
        "classifier_score": classifier_score(ref.test_probs),
        "frechet_distance": ref.frechet_distance_of(moments),
        "frechet_distance_n": int(len(idx)),
        "effective_classes": histogram_entropy_classes(hist),
        "histogram": [float(h) for h in hist],
    }


def clustering_metrics(y_true, y_pred) -> dict:
    """ACC / NMI / ARI from :mod:`cogan_tf.clustering`."""
    from cogan_tf import clustering  # imported late: scikit-learn is slow to import and only ClusterGAN needs it

    return {k: float(v) for k, v in clustering.clustering_report(y_true, y_pred).items()}


def evaluate_samples(samples: Samples, clf, ref: Reference, real: bool = True,
                     threshold: float = DEFAULT_THRESHOLD) -> dict:
    """The full report (a JSON-ready dict) for ``samples``, read once, batch by batch, into running
    sums (memory independent of their number); ``real=False`` leaves out the real-data column (a
    caller scoring many grids computes it once). ``threshold``: the binarisation of the CoGAN's pixel
    agreement and ink (``image_metrics.PairScoreSums``)."""
    n = samples.n
    report = {
        "model": samples.model,
        "source": samples.source,
        "n": n,
        "seed": samples.seed,
        "dataset": ref.dataset,
        "classifier_test_accuracy": clf.test_accuracy,
        "domains": {},
    }
    cogan = samples.model == "cogan"
    pair = samples.pair
    bot_ref = ref.of_pair(clf, pair) if cogan else ref
    domains = {d: DomainScores(r, keep_labels=samples.model == "clustergan")
               for d, r in ((("top", ref), ("bot", bot_ref)) if cogan else (("images", ref),))}
    pair_sums = PairScoreSums(pair, threshold) if cogan else None
    same_label = Mean()
    codes: List[np.ndarray] = []
    for batch in samples.draw():
        if cogan:
            top, bot = batch["top"], batch["bot"]
            back = pairs.inverse(pair, bot)  # the classifier knows digits: G2(z) mapped back where it can be
            top_labels = domains["top"].add(clf, top)
            bot_labels = domains["bot"].add(clf, bot if back is None else back)
            pair_sums.add(top, bot)
            same_label.add(np.sum(top_labels == bot_labels), len(top_labels))
        else:
            domains["images"].add(clf, batch["images"])
            if "z_c" in batch:
                codes.append(batch["z_c"])
    report["domains"] = {d: scores.metrics() for d, scores in domains.items()}
    if cogan:
        report["pair"] = pair
        report["domains"]["bot"]["scored_as"] = BOT_SCORED_AS[pair]
        report["pairs"] = {**pair_sums.value(), "label_agreement": same_label.value(),
                           "real": real_pair_scores(pair, ref.test_images, threshold)}
    else:
        if codes:
            # How well the class code z_c picks the class: best one-to-one matching of codes to classes.
            report["latent_code_vs_classifier"] = clustering_metrics(np.concatenate(domains["images"].labels),
                                                                     np.concatenate(codes))
        if samples.encode is not None:
            from cogan_tf import clustering

            # Both protocols: the encoder's argmax (acc, purity, nmi, ari) and the paper's K-means on
            # [z_n, softmax] (kmeans_*; the paper's ACC is kmeans_purity), K-means seeded by the report's seed;
            # on the softmax alone for a model trained without a z_n loss (beta_n 0), as ClusterGAN.cluster_report.
            z_n, probs = samples.encode(ref.test_images.astype(np.float32) / 255.0)
            scores = clustering.encoder_clustering(ref.test_labels, z_n, probs, seed=samples.seed or 0,
                                                   kmeans_on_zn=samples.kmeans_on_zn)
            report["clustering"] = {**{k: v for k, v in scores.items() if not k.endswith("cluster_sizes")},
                                    "n": int(len(probs))}
    if real:
        report["real"] = real_metrics(clf, ref, n, samples.seed or 0)
        if cogan and bot_ref is not ref:
            report["real_bot"] = real_metrics(clf, bot_ref, n, samples.seed or 0)
    return report


# How a CoGAN's second domain meets the classifier (trained on the first domain's images).
BOT_SCORED_AS = {"negative": "1 - G2(z) against real test digits",
                 "rotate": "G2(z) turned back 90 degrees, against real test digits",
                 "edge": "G2(z) as it is, against the edges of the real test digits"}


# --- entry points used by the CLI and main.py --------------------------------------------------------

def load_classifier(data_dir: str, dataset: str, retrain: bool = False, epochs: Optional[int] = None, log=print):
    from cogan_tf.evaluate import classifier

    recipe = classifier.RECIPES[dataset]
    if epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=epochs)
    return classifier.load_or_train(data_dir, dataset, retrain=retrain, recipe=recipe, log=log)


def run_report(samples: Samples, data_dir: str, dataset: str = "mnist", out: Optional[str] = None, clf=None,
               retrain_classifier: bool = False, log: Callable[[str], None] = print,
               threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Score ``samples``, print the table through ``log`` and write JSON to ``out`` (if given)."""
    clf = clf or load_classifier(data_dir, dataset, retrain_classifier, log=log)
    report = evaluate_samples(samples, clf, make_reference(clf, data_dir, dataset), threshold=threshold)
    log(format_report(report))
    if out:
        write_report(out, report)
        log(f" [*] wrote {out}")
    return report


def report_for_saved_model(path: str, data_dir: str, dataset: Optional[str] = None, n: int = DEFAULT_N, seed: int = 0,
                           out: Optional[str] = None, source: Optional[str] = None, **kwargs) -> dict:
    """The report for an exported generator SavedModel (cogan, vanilla or clustergan), against the dataset
    its export records (:func:`scored_dataset`)."""
    recorded = (outputs.read_export_marker(path) or {}).get("dataset")
    dataset = scored_dataset(dataset, recorded, source or path, outputs.EXPORT_MARKER, kwargs.get("log", print))
    samples = sample_stream(load_saved_model(path), n=n, seed=seed, source=source or path)
    return run_report(samples, data_dir, dataset, out=out, **kwargs)


def report_for_gan(gan, data_dir: Optional[str] = None, n: int = DEFAULT_N, seed: int = 0, out: Optional[str] = None,
                   dataset: Optional[str] = None, log: Callable[[str], None] = print, **kwargs) -> dict:
    """The report for a built (restored) GAN object: its generator is exported to a temporary
    SavedModel and scored exactly as ``--saved_model`` would be (one code path for every source)."""
    data_dir = data_dir or gan.cfg.data_dir
    dataset = dataset or gan.cfg.dataset
    source = os.path.join(gan.cfg.checkpoint_dir, gan.checkpoint_subdir())
    restored = getattr(gan, "restored_from", None)  # ClusterGAN: which checkpoint (latest or best) it holds
    if restored:
        source = f"{restored['path']} ({restored['kept_by']})"
    with tempfile.TemporaryDirectory(prefix="cogan_tf-eval-") as tmp:
        path = gan.export(tmp)
        return report_for_saved_model(path, data_dir, dataset, n=n, seed=seed, out=out, source=source,
                                      log=log, **kwargs)
