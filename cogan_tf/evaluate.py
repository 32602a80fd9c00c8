"""Numbers, not only pictures: classifier-based evaluation of the three GANs, and of sample grids.

Modelled on TF-GAN's MNIST eval (``mnist_score``, ``mnist_frechet_distance``), with the classifier
trained by this project (:mod:`cogan_tf.classifier`). For a CoGAN, N pairs (G1(z), G2(z)) are scored:

- pixel agreement: the fraction of pixels where G1(z) and 1 - G2(z) agree after binarising at 0.5
  (the CoGAN paper's measure), and their mean absolute difference;
- label agreement: the classifier's digit for G1(z) equals its digit for 1 - G2(z);
- per domain, the classifier score (Inception-score style, exp E[KL(p(y|x) || p(y))], 1..10), the
  Fréchet distance in the classifier's penultimate features to the real test images, and the digit
  histogram (mode collapse shows here). The bottom domain is scored as 1 - G2(z) against the real
  (not inverted) test digits: the classifier only knows white-on-black digits.

The ``real`` column gives the same numbers for real images as the floor to read them against: the
score of the test set, and the Fréchet distance of N random training images to the test set (the
distance shrinks with N, so 64 grid cells are never near 0 even for real digits).

Sources: an exported SavedModel (the model kind is read off its signatures), a checkpoint (restored,
exported to a temporary directory and scored through that same SavedModel path), or pairs of 8x8
grid PNGs (this port's ``samples/top|bot`` or andrewliao11's published ones).

``python -m cogan_tf.evaluate --saved_model export/cogan [--out report.json]``;
``--compare A.json B.json`` prints two reports side by side; ``--grid_dirs RUN_SAMPLES REFERENCE_SAMPLES``
scores two runs' grids step by step (:mod:`cogan_tf.grid_compare`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from cogan_tf import data, fileio
from cogan_tf.errors import ClassifierError, DataError, GridError, UsageError

DEFAULT_N = 10_000
GEN_BATCH = 500  # the faithful CoGAN's BatchNorm uses each batch's statistics: never call it on tiny batches
BINARY_THRESHOLD = 0.5


# --- metrics: pure functions on numpy arrays ---------------------------------------------------------

def binarize(images, threshold: float = BINARY_THRESHOLD) -> np.ndarray:
    return np.asarray(images) > threshold


def pixel_agreement(top, bot_inverse, threshold: float = BINARY_THRESHOLD) -> float:
    """Fraction of pixels on which ``top`` and ``bot_inverse`` (= 1 - G2(z)) agree once binarised."""
    a, b = np.asarray(top), np.asarray(bot_inverse)
    if a.shape != b.shape:
        raise ValueError(f"pixel_agreement: shapes {a.shape} and {b.shape} differ")
    return float(np.mean(binarize(a, threshold) == binarize(b, threshold)))


def mean_abs_difference(top, bot_inverse) -> float:
    a, b = np.asarray(top, np.float64), np.asarray(bot_inverse, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"mean_abs_difference: shapes {a.shape} and {b.shape} differ")
    return float(np.mean(np.abs(a - b)))


def label_agreement(labels_a, labels_b) -> float:
    """Fraction of pairs whose two images get the same class."""
    a, b = np.asarray(labels_a), np.asarray(labels_b)
    if a.shape != b.shape:
        raise ValueError(f"label_agreement: shapes {a.shape} and {b.shape} differ")
    return float(np.mean(a == b))


def class_histogram(labels, n_classes: int = 10) -> np.ndarray:
    """Fraction of samples per class (sums to 1)."""
    labels = np.asarray(labels, np.int64)
    counts = np.bincount(labels, minlength=n_classes)[:n_classes].astype(np.float64)
    return counts / max(len(labels), 1)


def histogram_entropy_classes(hist) -> float:
    """exp(entropy) of a class histogram: the effective number of classes (10 when uniform, 1 when
    every sample is the same digit)."""
    p = np.asarray(hist, np.float64)
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def classifier_score(probs, eps: float = 1e-12) -> float:
    """exp(E_x[KL(p(y|x) || p(y))]) on the classifier's softmax (TF-GAN's ``mnist_score``): from 1
    (all samples alike or all ambiguous) to the number of classes (confident and balanced)."""
    p = np.asarray(probs, np.float64)
    py = p.mean(axis=0, keepdims=True)
    kl = np.sum(p * (np.log(p + eps) - np.log(py + eps)), axis=1)
    return float(np.exp(np.mean(kl)))


def feature_stats(features) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased) of a set of feature vectors (N, D)."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"feature_stats: need at least 2 feature vectors (N, D), got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)): the Fréchet distance of two Gaussians."""
    import scipy.linalg

    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    s1, s2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    with warnings.catch_warnings():
        # Classifier features that never fire make the covariances singular; sqrtm still returns a
        # usable root (checked below), so its warning about that is not shown.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        if not np.all(np.isfinite(covmean)):
            # As pytorch-fid: when the root fails, regularise the diagonal and take it again.
            offset = np.eye(len(s1)) * 1e-6
            covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)  # numerical noise gives tiny imaginary parts
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(fd, 0.0)


def psd_sqrt(m) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (negative rounding
    noise in its eigenvalues clipped to 0)."""
    w, v = np.linalg.eigh(np.asarray(m, np.float64))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_few(features, mu2, sigma2, sigma2_root=None) -> float:
    """The Fréchet distance of a small feature set (N <= D) to a Gaussian (mu2, sigma2), the same number
    as ``frechet_distance_from_stats(*feature_stats(features), mu2, sigma2)`` without a D x D matrix
    root: with X the centred features, S1 = X'X / (N - 1), and Tr((S1 S2)^(1/2)) is the sum of the
    square roots of the eigenvalues of Y Y' / (N - 1), Y = X S2^(1/2), an N x N matrix. For a 64-cell
    grid against 256 features: 0.5 ms instead of 2.3 s (measured here under load). ``sigma2_root``:
    S2^(1/2), if already known."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"frechet_distance_few: need at least 2 feature vectors (N, D), got {f.shape}")
    n = len(f)
    mu1 = f.mean(axis=0)
    x = f - mu1
    root = psd_sqrt(sigma2) if sigma2_root is None else sigma2_root
    y = x @ root
    eig = np.linalg.eigvalsh(y @ y.T / (n - 1))
    diff = mu1 - np.asarray(mu2, np.float64)
    fd = float(diff @ diff + np.sum(x * x) / (n - 1) + np.trace(sigma2) - 2.0 * np.sum(np.sqrt(np.clip(eig, 0, None))))
    return max(fd, 0.0)


def frechet_distance(features1, features2) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets."""
    return frechet_distance_from_stats(*feature_stats(features1), *feature_stats(features2))


# --- samples: what is scored ---------------------------------------------------------------------------

@dataclasses.dataclass
class Samples:
    """Generated images in [0, 1], float32 (N, 28, 28, 1), by domain name.

    cogan: ``{"top": G1(z), "bot": G2(z)}``; vanilla and clustergan: ``{"images": G(z)}``.
    ``z_c`` (clustergan) is the class code each image was generated from; ``encode`` the model's encoder
    (images in [0, 1] -> (z_n, class probabilities)).
    """

    model: str
    images: Dict[str, np.ndarray]
    source: str
    seed: Optional[int] = None
    z_c: Optional[np.ndarray] = None
    encode: Optional[Callable] = None

    @property
    def n(self) -> int:
        return len(next(iter(self.images.values())))


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


def _batches(n: int, batch_size: int) -> List[np.ndarray]:
    """Index chunks of near-equal size: no tiny last batch (the faithful CoGAN normalises each batch
    with its own statistics)."""
    return np.array_split(np.arange(n), max(1, math.ceil(n / batch_size)))


def generate(loaded, n: int = DEFAULT_N, seed: int = 0, batch_size: int = GEN_BATCH, source: str = "") -> Samples:
    """``n`` samples from a loaded SavedModel; z ~ N(0, 1) (and, for clustergan, z_n ~ N(0, sigma^2) with
    the export's ``zn_sigma``, and z_c uniform one-hot) drawn from a seeded numpy generator, so a seed
    reproduces a report."""
    import tensorflow as tf

    kind = model_kind(loaded)
    sig = _serving(loaded)
    specs = sig.structured_input_signature[1]
    rng = np.random.default_rng(seed)
    out: Dict[str, List[np.ndarray]] = {}
    z_c = None
    if kind == "clustergan":
        z_dim, n_classes = specs["z_n"].shape[-1], specs["z_c"].shape[-1]
        sigma = float(loaded.zn_sigma.numpy()) if hasattr(loaded, "zn_sigma") else 1.0  # older exports: 1
        z = (sigma * rng.standard_normal((n, z_dim))).astype(np.float32)
        z_c = rng.integers(0, n_classes, n)
        onehot = np.eye(n_classes, dtype=np.float32)[z_c]
        for idx in _batches(n, batch_size):
            for k, v in sig(z_n=tf.constant(z[idx]), z_c=tf.constant(onehot[idx])).items():
                out.setdefault(k, []).append(v.numpy())
    else:
        z = rng.standard_normal((n, specs["z"].shape[-1])).astype(np.float32)
        for idx in _batches(n, batch_size):
            for k, v in sig(z=tf.constant(z[idx])).items():
                out.setdefault(k, []).append(v.numpy())
    keys = ("top", "bot") if kind == "cogan" else ("images",)
    images = {k: np.concatenate(out[k]).astype(np.float32) for k in keys}
    encode = None
    if kind == "clustergan" and "encode" in loaded.signatures:
        enc = loaded.signatures["encode"]

        def encode(x, enc=enc):
            zs, probs = [], []
            for idx in _batches(len(x), batch_size):
                out = enc(images=tf.constant(x[idx], tf.float32))
                zs.append(out["z_n"].numpy())
                probs.append(out["class_probs"].numpy())
            return np.concatenate(zs), np.concatenate(probs)
    return Samples(kind, images, source, seed=seed, z_c=z_c, encode=encode)


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


def samples_from_grids(paths: Sequence[str]) -> Samples:
    """CoGAN pairs sliced out of 8x8 grid PNGs: 64 pairs per (TOP, BOT) pair of files."""
    from cogan_tf import images

    tops, bots = [], []
    for top, bot in grid_pairs(paths):
        t, b = images.read_grid(top), images.read_grid(bot)
        if t.shape != b.shape:
            raise GridError(f"{top} holds {len(t)} cells but {bot} holds {len(b)}")
        tops.append(t)
        bots.append(b)
    n = sum(len(t) for t in tops)
    if n < 2:
        # The Frechet distance needs two samples' covariance; a grid of ours or the original's holds 64.
        raise GridError(f"--grids {' '.join(paths)}: {n} pair of 28x28 cells; the report needs at least "
                               "2 (an 8x8 grid holds 64)")
    source = paths[0] if len(paths) == 2 else f"{len(paths) // 2} grid pairs ({paths[0]} ...)"
    return Samples("cogan", {"top": np.concatenate(tops), "bot": np.concatenate(bots)}, source)


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

    def frechet_distance(self, features) -> float:
        """Fréchet distance of ``features`` to the test set's: through ``frechet_distance_few`` when
        there are no more samples than feature dimensions (grids), else through the covariances."""
        f = np.asarray(features, np.float64)
        if len(f) > f.shape[1]:
            return frechet_distance_from_stats(*feature_stats(f), *self.test_stats)
        if self.test_root is None:
            self.test_root = psd_sqrt(self.test_stats[1])
        return frechet_distance_few(f, *self.test_stats, sigma2_root=self.test_root)


def make_reference(clf, data_dir: str, dataset: str) -> Reference:
    x_test, y_test = data.load_split(data_dir, dataset, "test")
    x_train, _ = data.load_split(data_dir, dataset, "train")
    probs, feats = clf.predict(x_test)
    return Reference(dataset, x_test, y_test, x_train, feature_stats(feats), probs)


def domain_metrics(images: np.ndarray, clf, ref: Reference) -> Tuple[dict, np.ndarray]:
    """Classifier score, Fréchet distance to the test set and class histogram of one domain."""
    probs, feats = clf.predict(images)
    labels = probs.argmax(axis=1)
    hist = class_histogram(labels)
    return {
        "classifier_score": classifier_score(probs),
        "frechet_distance": ref.frechet_distance(feats),
        "effective_classes": histogram_entropy_classes(hist),
        "histogram": [float(h) for h in hist],
    }, labels


def real_metrics(clf, ref: Reference, n: int, seed: int) -> dict:
    """The real-data floor: the test set's score, and the Fréchet distance of ``n`` random training
    images to the test set (same sample size as the generated set, so the same small-n bias)."""
    rng = np.random.default_rng([seed, 7])
    idx = rng.choice(len(ref.train_images), size=min(n, len(ref.train_images)), replace=False)
    _, feats = clf.predict(ref.train_images[idx])
    hist = class_histogram(ref.test_probs.argmax(axis=1))
    return {
        "classifier_score": classifier_score(ref.test_probs),
        "frechet_distance": ref.frechet_distance(feats),
        "frechet_distance_n": int(len(idx)),
        "effective_classes": histogram_entropy_classes(hist),
        "histogram": [float(h) for h in hist],
    }


def clustering_metrics(y_true, y_pred) -> dict:
    """ACC / NMI / ARI from :mod:`cogan_tf.metrics` (the ports issue's clustering report)."""
    from cogan_tf import metrics  # imported late: scikit-learn is slow to import and only ClusterGAN needs it

    return {k: float(v) for k, v in metrics.clustering_report(y_true, y_pred).items()}


def evaluate_samples(samples: Samples, clf, ref: Reference, real: bool = True) -> dict:
    """The full report (a JSON-ready dict) for ``samples``; ``real=False`` leaves out the real-data
    column (a caller scoring many grids computes it once)."""
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
    if samples.model == "cogan":
        top, bot = samples.images["top"], samples.images["bot"]
        bot_inv = 1.0 - bot
        report["domains"]["top"], top_labels = domain_metrics(top, clf, ref)
        report["domains"]["bot"], bot_labels = domain_metrics(bot_inv, clf, ref)
        report["domains"]["bot"]["scored_as"] = "1 - G2(z) against real test digits"
        report["pairs"] = {
            "pixel_agreement": pixel_agreement(top, bot_inv),
            "mean_abs_difference": mean_abs_difference(top, bot_inv),
            "label_agreement": label_agreement(top_labels, bot_labels),
        }
    else:
        report["domains"]["images"], labels = domain_metrics(samples.images["images"], clf, ref)
        if samples.z_c is not None:
            # How well the class code z_c picks the digit: best one-to-one matching of codes to digits.
            report["latent_code_vs_classifier"] = clustering_metrics(labels, samples.z_c)
        if samples.encode is not None:
            from cogan_tf import metrics

            # Both protocols: the encoder's argmax (acc, purity, nmi, ari) and the paper's K-means on
            # [z_n, softmax] (kmeans_*; the paper's ACC is kmeans_purity), K-means seeded by the report's seed.
            z_n, probs = samples.encode(ref.test_images.astype(np.float32) / 255.0)
            scores = metrics.encoder_clustering(ref.test_labels, z_n, probs, seed=samples.seed or 0)
            report["clustering"] = {**{k: v for k, v in scores.items() if not k.endswith("cluster_sizes")},
                                    "n": int(len(probs))}
    if real:
        report["real"] = real_metrics(clf, ref, n, samples.seed or 0)
    return report


# --- text output -------------------------------------------------------------------------------------

_DOMAIN_TITLES = {"top": "top G1(z)", "bot": "bot 1-G2(z)", "images": "G(z)", "real": "real"}
_DOMAIN_ROWS = (("classifier_score", "classifier score", "{:.3f}"),
                ("frechet_distance", "Frechet distance to test", "{:.3f}"),
                ("effective_classes", "effective classes", "{:.2f}"))


def format_report(report: dict) -> str:
    """The report as a readable table."""
    drawn = "from grids" if report["seed"] is None else f"seed {report['seed']}"
    lines = [f"{report['model']} report: {report['source']}",
             f"  {report['n']} samples ({drawn}); {report['dataset']} classifier, test accuracy "
             f"{_fmt(report['classifier_test_accuracy'], '{:.4f}')}"]
    cols = list(report["domains"]) + ["real"]
    blocks = {**report["domains"], "real": report["real"]}
    w = 26
    lines.append("")
    lines.append(f"  {'':{w}}" + "".join(f"{_DOMAIN_TITLES.get(c, c):>14}" for c in cols))
    for key, title, fmt in _DOMAIN_ROWS:
        lines.append(f"  {title:{w}}" + "".join(f"{_fmt(blocks[c].get(key), fmt):>14}" for c in cols))
    for d in range(10):
        lines.append(f"  {f'class {d} (%)':{w}}" + "".join(f"{100 * blocks[c]['histogram'][d]:>14.1f}" for c in cols))
    if "pairs" in report:
        p = report["pairs"]
        lines += ["", "  pairs (G1(z) vs 1 - G2(z))",
                  f"  {'pixel agreement (>0.5)':{w}}{p['pixel_agreement']:>14.4f}",
                  f"  {'mean |difference|':{w}}{p['mean_abs_difference']:>14.4f}",
                  f"  {'label agreement':{w}}{p['label_agreement']:>14.4f}"]
    for section, title in (("clustering", "clustering of the test set by the encoder (argmax; kmeans_: the "
                                          "paper's K-means on [z_n, softmax])"),
                           ("latent_code_vs_classifier", "class code z_c vs classifier digit")):
        if section in report:
            lines += ["", f"  {title}"]
            lines += [f"  {k:{w}}{_fmt(v, '{:.4f}'):>14}" for k, v in report[section].items()]
    lines += ["", f"  real: test-set score; Frechet distance of {report['n']} training images to the test set "
              "(the floor at this sample size)"]
    return "\n".join(lines)


def _fmt(v, fmt: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, (bool, int)) or not isinstance(v, float):
        return str(v)
    return fmt.format(v)


def flatten(report: dict, prefix: str = "") -> Dict[str, object]:
    """Nested report -> {"domains.top.classifier_score": value, ...}; histograms per class."""
    out: Dict[str, object] = {}
    for k, v in report.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, list):
            out.update({f"{key}.{i}": x for i, x in enumerate(v)})
        else:
            out[key] = v
    return out


def format_compare(a: dict, b: dict, name_a: str = "A", name_b: str = "B") -> str:
    """Two reports side by side, with B - A for every number both have; text fields (source, ...)
    above the table, once when equal and both when they differ."""
    fa, fb = flatten(a), flatten(b)
    keys = list(fa) + [k for k in fb if k not in fa]
    is_num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    numeric = [k for k in keys if is_num(fa.get(k)) or is_num(fb.get(k))]
    lines = [f"A: {name_a}", f"B: {name_b}", ""]
    for k in keys:
        if k in numeric:
            continue
        va, vb = fa.get(k, "-"), fb.get(k, "-")
        lines += [f"{k}: {va}"] if va == vb else [f"{k}:", f"  A: {va}", f"  B: {vb}"]
    w = max([len(k) for k in numeric] + [10]) + 2
    lines += ["", f"{'':{w}}{'A':>14}{'B':>14}{'B - A':>14}"]

    def cell(v):
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:>14d}"
        return f"{_fmt(v, '{:.4f}'):>14}"

    for k in numeric:
        va, vb = fa.get(k), fb.get(k)
        if is_num(va) and is_num(vb):
            diff = f"{vb - va:>+14d}" if isinstance(va, int) and isinstance(vb, int) else f"{vb - va:>+14.4f}"
        else:
            diff = f"{'':>14}"
        lines.append(f"{k:{w}}{cell(va)}{cell(vb)}{diff}")
    return "\n".join(lines)


def load_report(path: str) -> dict:
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such report (write one with --out)")
    try:
        with open(path) as f:
            report = json.load(f)
    except ValueError as e:
        raise UsageError(f"{path}: not a JSON report ({e})") from None
    if not isinstance(report, dict) or "domains" not in report:
        raise UsageError(f"{path}: not a report written by cogan_tf.evaluate")
    return report


def write_report(path: str, report: dict) -> str:
    fileio.atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    return path


# --- entry points used by the CLI and main.py --------------------------------------------------------

def load_classifier(data_dir: str, dataset: str, retrain: bool = False, epochs: Optional[int] = None, log=print):
    from cogan_tf import classifier

    recipe = classifier.RECIPES[dataset]
    if epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=epochs)
    return classifier.load_or_train(data_dir, dataset, retrain=retrain, recipe=recipe, log=log)


def run_report(samples: Samples, data_dir: str, dataset: str = "mnist", out: Optional[str] = None, clf=None,
               retrain_classifier: bool = False, log: Callable[[str], None] = print) -> dict:
    """Score ``samples``, print the table through ``log`` and write JSON to ``out`` (if given)."""
    clf = clf or load_classifier(data_dir, dataset, retrain_classifier, log=log)
    report = evaluate_samples(samples, clf, make_reference(clf, data_dir, dataset))
    log(format_report(report))
    if out:
        write_report(out, report)
        log(f" [*] wrote {out}")
    return report


def report_for_saved_model(path: str, data_dir: str, dataset: str = "mnist", n: int = DEFAULT_N, seed: int = 0,
                           out: Optional[str] = None, source: Optional[str] = None, **kwargs) -> dict:
    """The report for an exported generator SavedModel (cogan, vanilla or clustergan)."""
    samples = generate(load_saved_model(path), n=n, seed=seed, source=source or path)
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


def find_run_config(checkpoint_dir: str, model: Optional[str] = None) -> Tuple[str, dict]:
    """``(directory holding the checkpoint, its config.json)``: ``checkpoint_dir`` itself or one
    subdirectory of it (``checkpoint/mnist_128_28``), narrowed by ``model`` when several exist."""
    from cogan_tf import config as config_lib

    if not os.path.isdir(checkpoint_dir):
        raise DataError(f"{checkpoint_dir}: no such checkpoint directory")
    candidates = [checkpoint_dir] + [os.path.join(checkpoint_dir, d) for d in sorted(os.listdir(checkpoint_dir))]
    found = []
    for d in candidates:
        cfg = config_lib.load_run_config(os.path.join(d, "config.json")) if os.path.isdir(d) else None
        if cfg is not None and (model is None or cfg.get("model") == model):
            found.append((d, cfg))
    if not found:
        what = f" for --model {model}" if model else ""
        raise DataError(f"{checkpoint_dir}: no config.json{what} here or in a subdirectory; every checkpoint "
                             "written by main.py has one (or evaluate its --saved_model export instead)")
    if len(found) > 1:
        raise UsageError(f"{checkpoint_dir} holds several checkpoints ({', '.join(d for d, _ in found)}): "
                         "point --checkpoint_dir at one, or pass --model")
    return found[0]


def gan_from_checkpoint(checkpoint_dir: str, data_dir: str, model: Optional[str] = None, log=print):
    """Rebuild the GAN from the config.json beside its checkpoint and restore the latest checkpoint."""
    from cogan_tf import config as config_lib, runner, train

    ckpt_dir, saved = find_run_config(checkpoint_dir, model)
    kind = saved["model"]
    model_cfg = config_lib.model_config_from_dict(kind, saved["model_config"])
    train_size = saved.get("train_size")
    train_cfg = config_lib.TrainConfig(
        model=kind, dataset=saved.get("dataset", "mnist"), data_dir=data_dir,
        batch_size=saved.get("batch_size", 128), seed=saved.get("seed"),
        disjoint_domains=saved.get("disjoint_domains", False),
        train_size=math.inf if train_size is None else train_size, val_size=saved.get("val_size", 0),
        checkpoint_dir=os.path.dirname(os.path.abspath(ckpt_dir)))
    gan = runner.make_gan(model_cfg, train_cfg)
    expected = os.path.join(train_cfg.checkpoint_dir, gan.checkpoint_subdir())
    if os.path.abspath(expected) != os.path.abspath(ckpt_dir):
        raise DataError(f"{ckpt_dir}: its config.json describes a run that lives in {expected}")
    loop = train.restore(gan, log=log)
    if hasattr(gan, "restore_best"):
        gan.restore_best(loop, log=log)  # ClusterGAN with --val_size: the checkpoint kept by validation
    return gan


def main_argv_fold(argv: Sequence[str], list_flags=("grids", "compare", "grid_dirs")) -> List[str]:
    """``--grids A B C D`` -> ``--grids=A,B,C,D`` (and ``--compare``, ``--grid_dirs``): several paths after one flag,
    as the issue spells it, for absl's comma-separated list flags."""
    out: List[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name = arg[2:] if arg.startswith("--") and "=" not in arg else None
        if name in list_flags:
            j = i + 1
            while j < len(argv) and not argv[j].startswith("--"):
                j += 1
            out.append(f"--{name}={','.join(argv[i + 1:j])}")
            i = j
            continue
        out.append(arg)
        i += 1
    return out


if __name__ == "__main__":
    import sys

    from absl import flags

    from cogan_tf import cli

    flags.DEFINE_string("saved_model", None, "Exported generator SavedModel to score (e.g. export/cogan)")
    flags.DEFINE_string("checkpoint_dir", None, "Checkpoint to restore and score (its config.json rebuilds the model)")
    flags.DEFINE_enum("model", None, ["cogan", "vanilla", "clustergan"],
                      "With --checkpoint_dir holding several runs: which one")
    flags.DEFINE_list("grids", None, "CoGAN grid PNG pairs: --grids TOP.png BOT.png [TOP2.png BOT2.png ...]")
    flags.DEFINE_list("compare", None, "Print two JSON reports side by side: --compare A.json B.json")
    flags.DEFINE_list("grid_dirs", None, "Score two CoGAN runs' grids step by step: --grid_dirs RUN_SAMPLES "
                      "REFERENCE_SAMPLES (each holding top/ and bot/; e.g. this port's samples/ and those of a "
                      "clone of andrewliao11/CoGAN-tensorflow)")
    flags.DEFINE_string("plot", None, "With --grid_dirs: also plot the scores against the training step to this PNG")
    flags.DEFINE_integer("steps_per_epoch", None, "With --grid_dirs: the step of train_EE_IIII is "
                         "EE * steps_per_epoch + IIII + 1 [546, the original's floor(70000 / 128)]")
    flags.DEFINE_string("out", None, "Also write the report as JSON here")
    flags.DEFINE_string("data_dir", "data", "Directory holding <dataset>/ [data]")
    flags.DEFINE_string("dataset", None, "Real data and classifier: mnist or fashion_mnist "
                                         "[the checkpoint's dataset, else mnist]")
    flags.DEFINE_integer("num_samples", DEFAULT_N, f"Samples (CoGAN: pairs) drawn from a model [{DEFAULT_N}]")
    flags.DEFINE_integer("seed", 0, "Seed of the z drawn from a model [0]")
    flags.DEFINE_boolean("retrain_classifier", False, "Train the classifier again even if one is cached [False]")
    flags.DEFINE_integer("classifier_epochs", None, "Epochs when (re)training the classifier "
                                                    "[mnist 3, fashion_mnist 8]")
    FLAGS = flags.FLAGS

    def main(argv):
        f = FLAGS
        sources = [s for s in ("saved_model", "checkpoint_dir", "grids", "compare", "grid_dirs") if getattr(f, s)]
        if len(sources) > 1:
            raise UsageError(f"give one of --saved_model, --checkpoint_dir, --grids, --compare, --grid_dirs (got "
                             f"{', '.join('--' + s for s in sources)})")
        if not sources and not f.retrain_classifier:
            raise UsageError("nothing to evaluate: give --saved_model, --checkpoint_dir, --grids, --compare or "
                             "--grid_dirs (or --retrain_classifier alone to train the classifier)")
        for only in ("plot", "steps_per_epoch"):
            if getattr(f, only) is not None and not f.grid_dirs:
                raise UsageError(f"--{only} goes with --grid_dirs RUN_SAMPLES REFERENCE_SAMPLES")
        if f.steps_per_epoch is not None and f.steps_per_epoch < 1:
            raise UsageError(f"--steps_per_epoch={f.steps_per_epoch}: must be at least 1")
        if f.num_samples < 2:
            raise UsageError(f"--num_samples={f.num_samples}: need at least 2")
        if f.dataset is not None and f.dataset not in data.DATASETS:
            raise UsageError(f"--dataset={f.dataset}: choose one of {', '.join(data.DATASETS)}")
        if f.classifier_epochs is not None and f.classifier_epochs < 1:
            raise UsageError(f"--classifier_epochs={f.classifier_epochs}: must be at least 1")
        if f.compare:
            if len(f.compare) != 2:
                raise UsageError(f"--compare takes two JSON reports, got {len(f.compare)}")
            a, b = (load_report(p) for p in f.compare)
            print(format_compare(a, b, *f.compare))
            return 0
        if f.grid_dirs:
            from cogan_tf import grid_compare

            if len(f.grid_dirs) != 2:
                raise UsageError(f"--grid_dirs takes two directories, RUN_SAMPLES REFERENCE_SAMPLES; got "
                                 f"{len(f.grid_dirs)}")
            grid_compare.run(*f.grid_dirs, f.data_dir, f.dataset or "mnist", out=f.out, plot=f.plot,
                             steps_per_epoch=f.steps_per_epoch or grid_compare.STEPS_PER_EPOCH,
                             retrain=f.retrain_classifier, epochs=f.classifier_epochs)
            return 0
        # The model or grids first: a missing or bad input is refused before the classifier trains.
        dataset = f.dataset or "mnist"
        gan = samples = None
        if f.checkpoint_dir:
            gan = gan_from_checkpoint(f.checkpoint_dir, f.data_dir, f.model)
            dataset = f.dataset or gan.cfg.dataset
        elif f.saved_model:
            samples = generate(load_saved_model(f.saved_model), n=f.num_samples, seed=f.seed, source=f.saved_model)
        elif f.grids:
            samples = samples_from_grids(f.grids)
        clf = load_classifier(f.data_dir, dataset, f.retrain_classifier, f.classifier_epochs)
        if gan is not None:
            report_for_gan(gan, f.data_dir, n=f.num_samples, seed=f.seed, out=f.out, dataset=dataset, clf=clf)
        elif samples is not None:
            run_report(samples, f.data_dir, dataset, out=f.out, clf=clf)
        else:
            print(f"{dataset} classifier: test accuracy {clf.test_accuracy:.4f}")
        return 0

    sys.argv = main_argv_fold(sys.argv)
    cli.run(main, known_errors=(ClassifierError,))
