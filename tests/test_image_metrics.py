"""The image metrics, each against hand-made inputs with known answers."""

import math

import numpy as np
import pytest

from cogan_tf.evaluate import image_metrics as im


def test_pixel_agreement_known_answers():
    rng = np.random.default_rng(0)
    # Values away from the 0.5 threshold, so "the opposite" flips every binarised pixel.
    top = np.where(rng.random((50, 28, 28, 1)) < 0.5, rng.uniform(0, 0.4, (50, 28, 28, 1)),
                   rng.uniform(0.6, 1, (50, 28, 28, 1)))
    bot = 1.0 - top  # a perfect pair: G2(z) is the inverse of G1(z)
    assert im.pixel_agreement(top, 1.0 - bot) == 1.0
    assert im.mean_abs_difference(top, 1.0 - bot) == pytest.approx(0.0, abs=1e-12)
    # A pair and its non-inverse: bot == top, so 1 - bot disagrees with top on every pixel.
    assert im.pixel_agreement(top, 1.0 - top) == 0.0
    # By hand: 3 of 4 pixels agree; |differences| 0.1, 0.1, 0.2, 0.8.
    a = np.array([0.9, 0.1, 0.7, 0.1])
    b = np.array([0.8, 0.0, 0.9, 0.9])
    assert im.pixel_agreement(a, b) == 0.75
    assert im.mean_abs_difference(a, b) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="differ"):
        im.pixel_agreement(a, b[:3])


def test_label_agreement_and_histogram():
    assert im.label_agreement([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    hist = im.class_histogram(np.arange(1000) % 10)
    np.testing.assert_allclose(hist, 0.1)
    assert im.histogram_entropy_classes(hist) == pytest.approx(10.0)
    collapsed = im.class_histogram([7] * 30)
    assert collapsed[7] == 1.0 and collapsed.sum() == 1.0
    assert im.histogram_entropy_classes(collapsed) == pytest.approx(1.0)
    assert im.histogram_entropy_classes([0.5, 0.5] + [0] * 8) == pytest.approx(2.0)


def test_classifier_score_known_answers():
    onehot = np.eye(10)[np.arange(100) % 10]
    assert im.classifier_score(onehot) == pytest.approx(10.0, rel=1e-6)  # confident and balanced
    assert im.classifier_score(np.eye(10)[[3] * 100]) == pytest.approx(1.0)  # all the same digit
    assert im.classifier_score(np.full((100, 10), 0.1)) == pytest.approx(1.0)  # all ambiguous
    # By hand: p(y|x) = [1, 0], [0.5, 0.5]; p(y) = [0.75, 0.25].
    kl1 = math.log(1 / 0.75)
    kl2 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert im.classifier_score([[1.0, 0.0], [0.5, 0.5]]) == pytest.approx(math.exp((kl1 + kl2) / 2), rel=1e-9)


def test_frechet_distance_zero_for_identical_sets():
    f = np.random.default_rng(1).normal(size=(500, 8))
    assert im.frechet_distance(f, f) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_closed_form_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 0.25])
    # Diagonal covariances: |mu1 - mu2|^2 + sum (sqrt v1 - sqrt v2)^2 = 5 + (1 + 1 + 0) = 7.
    assert im.frechet_distance_from_stats(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(7.0)
    # One dimension: (m1 - m2)^2 + (s1 - s2)^2.
    assert im.frechet_distance_from_stats([2.0], [[9.0]], [0.0], [[1.0]]) == pytest.approx(4 + 4)
    # Sampled: the estimate from 20,000 draws is close to the closed form.
    rng = np.random.default_rng(2)
    f1 = mu1 + np.sqrt(v1) * rng.standard_normal((20000, 3))
    f2 = mu2 + np.sqrt(v2) * rng.standard_normal((20000, 3))
    assert im.frechet_distance(f1, f2) == pytest.approx(7.0, abs=0.15)


def test_frechet_distance_full_covariance_matches_symmetric_form():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = a @ a.T + np.eye(4), b @ b.T + np.eye(4)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)

    def psd_sqrt(m):
        w, v = np.linalg.eigh(m)
        return v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T

    r1 = psd_sqrt(s1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * psd_sqrt(r1 @ s2 @ r1))
    assert im.frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_with_fewer_samples_than_dimensions_is_finite():
    rng = np.random.default_rng(4)
    fd = im.frechet_distance(rng.normal(size=(20, 64)), rng.normal(size=(20, 64)))
    assert np.isfinite(fd) and fd > 0


def test_frechet_distance_few_equals_the_covariance_form():
    # 64 samples of 96 ReLU features (a rank-deficient covariance, some features dead), as a grid's 64 cells
    # give in the classifier's 256 features.
    rng = np.random.default_rng(6)
    w = rng.normal(size=(40, 96))
    few = np.maximum(rng.normal(size=(64, 40)) @ w + 2 * rng.normal(size=96), 0)
    many = np.maximum(rng.normal(size=(1000, 40)) @ w, 0)
    few[:, :10] = many[:, :10] = 0
    mu2, s2 = im.feature_stats(many)
    expected = im.frechet_distance(few, many)
    assert im.frechet_distance_few(few, mu2, s2) == pytest.approx(expected, rel=1e-6)
    assert im.frechet_distance_few(few, mu2, s2, sigma2_root=im.psd_sqrt(s2)) == pytest.approx(expected, rel=1e-6)
    # One dimension, two points -1 and 5: sample mean 2, unbiased variance 18, against N(0, 1).
    assert im.frechet_distance_few([[-1.0], [5.0]], [0.0], [[1.0]]) == pytest.approx(
        im.frechet_distance_from_stats([2.0], [[18.0]], [0.0], [[1.0]]))
    np.testing.assert_allclose(im.psd_sqrt(s2) @ im.psd_sqrt(s2), s2, atol=1e-8 * np.abs(s2).max())
