"""Clustering scores against hand-made cluster assignments and hand-computed values."""

import math

import numpy as np
import pytest

from cogan_tf import clustering


def test_a_permutation_of_the_labels_scores_one():
    y = np.repeat(np.arange(10), 7)
    perm = np.random.default_rng(0).permutation(10)
    assert not np.array_equal(perm, np.arange(10))
    y_pred = perm[y]
    assert clustering.clustering_report(y, y_pred) == pytest.approx({"acc": 1.0, "nmi": 1.0, "ari": 1.0})
    assert clustering.cluster_mapping(y, y_pred) == {int(perm[k]): k for k in range(10)}


def test_acc_of_a_known_confusion_is_the_one_to_one_matching_not_purity():
    # Cluster 0 holds labels 0,0,0,0,1 and cluster 1 holds 0,0,0,1,1: the majority label of both is 0.
    # One-to-one: {0->0, 1->1} matches 4 + 2 = 6 points, {0->1, 1->0} matches 1 + 3 = 4; ACC = 6/10.
    # (Purity, which lets both clusters take label 0, would say (4 + 3)/10.)
    y_true = [0, 0, 0, 0, 1, 0, 0, 0, 1, 1]
    y_pred = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert clustering.cluster_acc(y_true, y_pred) == pytest.approx(0.6)
    assert clustering.cluster_mapping(y_true, y_pred) == {0: 0, 1: 1}
    np.testing.assert_array_equal(clustering.contingency(y_true, y_pred), [[4, 1], [3, 2]])


def test_acc_of_three_clusters_by_hand():
    # Contingency (rows: clusters, columns: labels): c0 = [1, 0, 3], c1 = [2, 0, 1], c2 = [0, 3, 0].
    # Best: c0->2 (3) + c1->0 (2) + c2->1 (3) = 8 of 10.
    y_true = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    y_pred = [1, 1, 0, 2, 2, 2, 0, 0, 0, 1]
    assert clustering.cluster_acc(y_true, y_pred) == pytest.approx(0.8)
    assert clustering.cluster_mapping(y_true, y_pred) == {0: 2, 1: 0, 2: 1}


def test_more_clusters_than_labels():
    # c0 = {0}, c1 = {0}, c2 = {1, 1}: only one of c0, c1 can take label 0: ACC = 3/4.
    y_true, y_pred = [0, 0, 1, 1], [0, 1, 2, 2]
    assert clustering.cluster_acc(y_true, y_pred) == pytest.approx(0.75)
    mapping = clustering.cluster_mapping(y_true, y_pred)
    assert mapping[2] == 1 and len(mapping) == 2 and set(mapping.values()) == {0, 1}


def test_nmi_and_ari_by_hand():
    # Independent partitions: mutual information 0, so NMI 0. ARI: every cell of the 2x2 contingency
    # holds 1, so sum C(n_ij, 2) = 0; rows and columns each sum C(2, 2) * 2 = 2; C(4, 2) = 6;
    # expected index 2 * 2 / 6 = 2/3, max index (2 + 2)/2 = 2: ARI = (0 - 2/3) / (2 - 2/3) = -0.5.
    y_true, y_pred = [0, 0, 1, 1], [0, 1, 0, 1]
    assert clustering.nmi(y_true, y_pred) == pytest.approx(0.0, abs=1e-12)
    assert clustering.ari(y_true, y_pred) == pytest.approx(-0.5)
    # Label 1 split into two clusters (natural logs): H(true) = H(1/3, 2/3), H(pred) = log 3, and
    # since the clusters refine the labels, I(true; pred) = H(true).
    y_true = [0, 0, 1, 1, 1, 1]
    y_pred = [0, 0, 1, 1, 2, 2]
    h_true = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3))
    h_pred = math.log(3)
    mi = h_true  # y_pred refines y_true, so I(true; pred) = H(true)
    assert clustering.nmi(y_true, y_pred) == pytest.approx(mi / ((h_true + h_pred) / 2))
    assert clustering.nmi(y_true, y_pred, "geometric") == pytest.approx(mi / math.sqrt(h_true * h_pred))
    # ARI: sum C(n_ij, 2) = 3 (three pairs of 2); rows (clusters): 3 * C(2,2) = 3; columns: C(2,2) +
    # C(4,2) = 7; C(6,2) = 15; expected 3 * 7 / 15 = 1.4; max (3 + 7)/2 = 5: (3 - 1.4)/(5 - 1.4).
    assert clustering.ari(y_true, y_pred) == pytest.approx((3 - 1.4) / (5 - 1.4))


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="y_true has 3 labels but y_pred 2"):
        clustering.cluster_acc([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="no labels"):
        clustering.cluster_acc([], [])
    with pytest.raises(ValueError, match="1-D"):
        clustering.cluster_acc(np.zeros((2, 2), int), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="integers"):
        clustering.cluster_acc([0.5, 1.0], [0, 1])
    # Integer-valued floats and uint8 labels (the IDX files' dtype) are fine.
    assert clustering.cluster_acc(np.array([0.0, 1.0]), np.array([1, 0], np.uint8)) == 1.0


def test_purity_lets_clusters_share_a_label():
    # Cluster 0 holds labels 0,0,0 and cluster 1 holds 0,0,1. Purity counts each cluster's majority:
    # (3 + 2) / 6, both clusters taking label 0; one-to-one ACC must give cluster 1 label 1: (3 + 1) / 6.
    y_true = [0, 0, 0, 0, 0, 1]
    y_pred = [0, 0, 0, 1, 1, 1]
    assert clustering.purity(y_true, y_pred) == pytest.approx(5 / 6)
    assert clustering.cluster_acc(y_true, y_pred) == pytest.approx(4 / 6)
    # Each point its own cluster: purity 1 (why purity needs the number of clusters fixed), ACC 2/6.
    assert clustering.purity(y_true, np.arange(6)) == 1.0
    assert clustering.cluster_acc(y_true, np.arange(6)) == pytest.approx(2 / 6)


def test_kmeans_is_seeded_and_both_encoder_protocols_are_scored():
    # Three labelled groups that z_n separates (blobs at 0, 5, 10) while the class probabilities are the
    # same for every point (argmax always class 0): the argmax protocol puts everything in one cluster,
    # K-means on [z_n, probs] recovers the groups.
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    z_n = 5.0 * y[:, None] + 0.1 * rng.standard_normal((60, 2))
    probs = np.tile([0.5, 0.3, 0.2], (60, 1))
    out = clustering.encoder_clustering(y, z_n, probs, seed=0)
    assert out["acc"] == pytest.approx(1 / 3) and out["purity"] == pytest.approx(1 / 3)
    assert out["nmi"] == pytest.approx(0.0) and out["ari"] == pytest.approx(0.0)
    assert out["kmeans_purity"] == out["kmeans_acc"] == 1.0
    assert out["kmeans_nmi"] == pytest.approx(1.0) and out["kmeans_ari"] == pytest.approx(1.0)
    assert out["cluster_sizes"] == [60, 0, 0] and sorted(out["kmeans_cluster_sizes"]) == [20, 20, 20]
    assert out["kmeans_features"] == "z_n, softmax"
    # Without z_n (a model trained without a z_n loss) K-means sees only the identical probabilities.
    alone = clustering.encoder_clustering(y, z_n, probs, seed=0, kmeans_on_zn=False)
    assert alone["kmeans_features"] == "softmax" and alone["kmeans_purity"] == pytest.approx(1 / 3)
    # Seeded: the same seed gives the same clusters (K-means' cluster numbers depend on its initialisation).
    x = rng.standard_normal((200, 3))
    a, b = clustering.kmeans_clusters(x, 10, seed=1), clustering.kmeans_clusters(x, 10, seed=1)
    np.testing.assert_array_equal(a, b)
    assert len(set(a.tolist())) == 10
