"""Clustering scores: ACC, purity, NMI and ARI of predicted clusters against true labels, and the
two ways a ClusterGAN's encoder is turned into clusters.

ACC is the accuracy under the best one-to-one matching of clusters to labels (the Hungarian
algorithm, scipy's ``linear_sum_assignment``); purity lets several clusters take the same label
(each cluster counts its most frequent label), so purity >= ACC; NMI and ARI are scikit-learn's.
All four are invariant to renaming the clusters, so a permutation of the labels scores 1.0 on each.

The ClusterGAN paper's "ACC" is the purity of K-means (10 clusters) on the encoded
``[z_n, softmax(logits)]`` (its authors' ``metric.compute_purity``); this port's first protocol is
the Hungarian ACC of the encoder's argmax. :func:`encoder_clustering` scores both.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm
from sklearn.cluster import KMeans


def _as_labels(y, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of integer labels, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError(f"{name}: labels must be integers")
        y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"{name}: labels must be 0 or more")
    return y.astype(np.int64)


def _check_pair(y_true, y_pred) -> Tuple[np.ndarray, np.ndarray]:
    y_true = _as_labels(y_true, "y_true")
    y_pred = _as_labels(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("no labels to score")
    return y_true, y_pred


def contingency(y_true, y_pred) -> np.ndarray:
    """Counts ``w[c, k]`` of points in predicted cluster ``c`` with true label ``k``, as a square
    matrix of side ``max(#clusters, #labels)`` (missing rows or columns are zeros)."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    n = int(max(y_true.max(), y_pred.max())) + 1
    w = np.zeros((n, n), dtype=np.int64)
    np.add.at(w, (y_pred, y_true), 1)
    return w


def cluster_mapping(y_true, y_pred) -> Dict[int, int]:
    """The best one-to-one map {cluster: label}, maximising the number of matched points. Clusters
    left without a label (more clusters than labels) are left out."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    w = contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(w, maximize=True)
    clusters, labels = set(y_pred.tolist()), set(y_true.tolist())
    return {int(r): int(c) for r, c in zip(rows, cols) if r in clusters and c in labels}


def cluster_acc(y_true, y_pred) -> float:
    """Clustering accuracy: the fraction of points whose cluster maps to their label under the best
    one-to-one matching of clusters to labels."""
    w = contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(w, maximize=True)
    return float(w[rows, cols].sum()) / float(w.sum())


def nmi(y_true, y_pred, average_method: str = "arithmetic") -> float:
    """Normalised mutual information (scikit-learn; ``arithmetic`` is its default normalisation
    since 0.22, ``geometric`` its earlier one)."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(skm.normalized_mutual_info_score(y_true, y_pred, average_method=average_method))


def ari(y_true, y_pred) -> float:
    """Adjusted Rand index (scikit-learn): 1 for identical partitions, about 0 for random ones."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(skm.adjusted_rand_score(y_true, y_pred))


def clustering_report(y_true, y_pred) -> Dict[str, float]:
    """``{"acc", "nmi", "ari"}`` of predicted clusters against true labels."""
    return {"acc": cluster_acc(y_true, y_pred), "nmi": nmi(y_true, y_pred), "ari": ari(y_true, y_pred)}


def purity(y_true, y_pred) -> float:
    """Sum over clusters of the count of the cluster's most frequent true label, over N."""
    w = contingency(y_true, y_pred)
    return float(w.max(axis=1).sum()) / float(w.sum())


def kmeans_clusters(features, n_clusters: int = 10, seed: int = 0) -> np.ndarray:
    """scikit-learn's KMeans (k-means++, 10 initialisations, the best inertia kept), seeded."""
    x = np.asarray(features, np.float64)
    return KMeans(n_clusters=n_clusters, random_state=seed, n_init=10).fit(x).labels_.astype(np.int64)


def scores(y_true, y_pred, prefix: str = "") -> Dict[str, float]:
    """``{"acc", "purity", "nmi", "ari"}`` of predicted clusters, each key behind ``prefix``."""
    return {prefix + "acc": cluster_acc(y_true, y_pred), prefix + "purity": purity(y_true, y_pred),
            prefix + "nmi": nmi(y_true, y_pred), prefix + "ari": ari(y_true, y_pred)}


def encoder_clustering(y_true, z_n, class_probs, seed: int = 0, n_clusters: Optional[int] = None,
                       kmeans_on_zn: bool = True) -> Dict[str, object]:
    """Both protocols on one encoding of a labelled set:

    - ``acc``, ``purity``, ``nmi``, ``ari``: the encoder's argmax class as the cluster (this port's);
    - ``kmeans_acc``, ``kmeans_purity``, ``kmeans_nmi``, ``kmeans_ari``: K-means with ``n_clusters``
      (default: the number of classes of the encoder) on ``[z_n, class_probs]``, seeded (the paper's
      protocol; its ACC is ``kmeans_purity``); with ``kmeans_on_zn`` False on ``class_probs`` alone (a model
      trained without a z_n loss, beta_n 0), named in ``kmeans_features``;

    with each protocol's cluster sizes (``cluster_sizes``, ``kmeans_cluster_sizes``).
    """
    y_true = _as_labels(y_true, "y_true")
    probs = np.asarray(class_probs, np.float64)
    k = probs.shape[1] if n_clusters is None else n_clusters
    pred = probs.argmax(axis=1)
    features = [np.asarray(z_n, np.float64), probs] if kmeans_on_zn else [probs]
    km = kmeans_clusters(np.concatenate(features, axis=1), k, seed)
    return {**scores(y_true, pred), **scores(y_true, km, "kmeans_"),
            "cluster_sizes": np.bincount(pred, minlength=k).tolist(),
            "kmeans_cluster_sizes": np.bincount(km, minlength=k).tolist(),
            "kmeans_features": "z_n, softmax" if kmeans_on_zn else "softmax"}
