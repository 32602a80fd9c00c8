"""The evaluation's report: samples (:mod:`cogan_tf.evaluate.samples`) scored with the project's classifier by
the running sums of :mod:`cogan_tf.evaluate.image_metrics`, against the real test images (:class:`Reference`),
and the entry points the command line and main.py call."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from cogan_tf import data, outputs, pairs
from cogan_tf.evaluate.image_metrics import (DEFAULT_THRESHOLD, ClassifierScoreSums, FeatureMoments, Mean,
                                             PairScoreSums, class_counts, class_histogram, classifier_score,
                                             feature_stats, frechet_distance_few, frechet_distance_from_stats,
                                             histogram_entropy_classes, psd_sqrt, real_pair_scores)
from cogan_tf.evaluate.reports import format_report, scored_dataset, write_report
from cogan_tf.evaluate.samples import DEFAULT_N, GEN_BATCH, Samples, _batches, load_saved_model, sample_stream

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
            back = pairs.inverse(pair, bot)  # the classifier knows the first domain: G2(z) mapped back where it can be
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
BOT_SCORED_AS = {"negative": "1 - G2(z) against the real test images",
                 "rotate": "G2(z) turned back 90 degrees, against the real test images",
                 "edge": "G2(z) as it is, against the edges of the real test images"}


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
    data_dir = data_dir or gan.train_cfg.data_dir
    dataset = dataset or gan.train_cfg.dataset
    source = os.path.join(gan.train_cfg.checkpoint_dir, gan.checkpoint_subdir())
    restored = getattr(gan, "restored_from", None)  # ClusterGAN: which checkpoint (latest or best) it holds
    if restored:
        source = f"{restored['path']} ({restored['kept_by']})"
    with tempfile.TemporaryDirectory(prefix="cogan_tf-eval-") as tmp:
        path = gan.export(tmp)
        return report_for_saved_model(path, data_dir, dataset, n=n, seed=seed, out=out, source=source,
                                      log=log, **kwargs)
