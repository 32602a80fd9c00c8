"""Clustering scores, as the ClusterGAN paper reports them: ACC, NMI and ARI of predicted clusters
against true labels.

ACC is the accuracy under the best one-to-one matching of clusters to labels (the Hungarian
algorithm, scipy's ``linear_sum_assignment``); NMI and ARI are scikit-learn's. All three are
invariant to renaming the clusters, so a permutation of the labels scores 1.0 on each.
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm


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
