"""Numbers, not only pictures: classifier-based evaluation of the three GANs, and of sample grids.

Samples (from an exported SavedModel, a checkpoint exported the same way, or 8x8 grid PNGs) are scored
with the project's classifier (:mod:`cogan_tf.evaluate.classifier`) by the pure functions of
:mod:`cogan_tf.evaluate.image_metrics`: for a CoGAN, the agreement of G1(z) with 1 - G2(z); per domain,
the classifier score, the Fréchet distance to the test images and the digit histogram; a ``real``
column as the floor to read them against. What each number means: docs/RESULTS.md, "How the numbers
are made". The command line is ``python -m cogan_tf.evaluate`` (:mod:`cogan_tf.evaluate.__main__`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from cogan_tf import data, fileio
from cogan_tf.evaluate.image_metrics import (class_histogram, classifier_score, feature_stats,
                                             frechet_distance_few, frechet_distance_from_stats,
                                             histogram_entropy_classes, label_agreement, mean_abs_difference,
                                             pixel_agreement, psd_sqrt)
from cogan_tf.errors import GridError, UsageError

DEFAULT_N = 10_000
GEN_BATCH = 500  # the faithful CoGAN's BatchNorm uses each batch's statistics: never call it on tiny batches


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
    """ACC / NMI / ARI from :mod:`cogan_tf.clustering`."""
    from cogan_tf import clustering  # imported late: scikit-learn is slow to import and only ClusterGAN needs it

    return {k: float(v) for k, v in clustering.clustering_report(y_true, y_pred).items()}


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
            from cogan_tf import clustering

            # Both protocols: the encoder's argmax (acc, purity, nmi, ari) and the paper's K-means on
            # [z_n, softmax] (kmeans_*; the paper's ACC is kmeans_purity), K-means seeded by the report's seed.
            z_n, probs = samples.encode(ref.test_images.astype(np.float32) / 255.0)
            scores = clustering.encoder_clustering(ref.test_labels, z_n, probs, seed=samples.seed or 0)
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
             f"{format_value(report['classifier_test_accuracy'], '{:.4f}')}"]
    cols = list(report["domains"]) + ["real"]
    blocks = {**report["domains"], "real": report["real"]}
    w = 26
    lines.append("")
    lines.append(f"  {'':{w}}" + "".join(f"{_DOMAIN_TITLES.get(c, c):>14}" for c in cols))
    for key, title, fmt in _DOMAIN_ROWS:
        lines.append(f"  {title:{w}}" + "".join(f"{format_value(blocks[c].get(key), fmt):>14}" for c in cols))
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
            lines += [f"  {k:{w}}{format_value(v, '{:.4f}'):>14}" for k, v in report[section].items()]
    lines += ["", f"  real: test-set score; Frechet distance of {report['n']} training images to the test set "
              "(the floor at this sample size)"]
    return "\n".join(lines)


def format_value(v, fmt: str) -> str:
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
        return f"{format_value(v, '{:.4f}'):>14}"

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
    from cogan_tf.evaluate import classifier

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
