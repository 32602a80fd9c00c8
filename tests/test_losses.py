"""cogan_tf/losses.py: each loss against values computed by hand. The CoGAN's (label-smoothed sigmoid cross-entropy,
and quirk Q1: sigmoid(h3) taken as the logits, whose d_loss never goes below 2.21), the CoGAN paper's (Caffe's
softmax loss), the one BCE of the vanilla GAN and the ClusterGAN (on logits: a saturated D still teaches G), and the
ClusterGAN paper's WGAN-GP critic, gradient penalty and G+E objective."""

import math

import numpy as np
import pytest
import tensorflow as tf

from cogan_tf import losses
from cogan_tf.losses import critic_loss, discriminator_loss, generator_encoder_loss, generator_loss, gradient_penalty
from tests.conftest import np_bce, np_sigmoid

RNG = np.random.default_rng(7)


# --- the CoGAN's: label-smoothed sigmoid cross-entropy, Q1 ----------------------------------------------------

def ce(l, t):
    return max(l, 0) - l * t + math.log1p(math.exp(-abs(l)))


def test_cogan_losses_against_hand_computed_values():
    assert float(losses.sigmoid_ce(tf.constant([[0.0]]), 0.9)) == pytest.approx(math.log(2), abs=1e-6)
    r1, f1, r2, f2 = [2.0, -1.0], [0.5, -3.0], [1.0, 1.0], [0.0, 4.0]
    out = losses.cogan_d_losses(*(tf.constant(np.array(v)[:, None], tf.float32) for v in (r1, f1, r2, f2)))
    d1 = np.mean([ce(l, 0.9) for l in r1]) + np.mean([ce(l, 0.1) for l in f1])
    d2 = np.mean([ce(l, 0.9) for l in r2]) + np.mean([ce(l, 0.1) for l in f2])
    assert float(out["d1_loss"]) == pytest.approx(d1, rel=1e-5)
    assert float(out["d2_loss"]) == pytest.approx(d2, rel=1e-5)
    assert float(out["d_loss"]) == pytest.approx(d1 + d2, rel=1e-5)
    g = losses.cogan_g_losses(tf.constant([[0.5], [-3.0]]), tf.constant([[0.0], [4.0]]))
    g1 = np.mean([ce(0.5, 0.9), ce(-3.0, 0.9)])
    g2 = np.mean([ce(0.0, 0.9), ce(4.0, 0.9)])
    assert float(g["g_loss"]) == pytest.approx(g1 + g2, rel=1e-5)
    # ce(1.0, 0.9) by hand: 1 - 0.9 + log(1 + e^-1)
    assert ce(1.0, 0.9) == pytest.approx(0.1 + math.log(1 + math.exp(-1)))


def test_loss_of_h3_is_bce_of_double_sigmoid():
    h3 = RNG.normal(0, 3, (32, 1)).astype(np.float32)
    for t in (0.9, 0.1):
        got = float(losses.sigmoid_ce(losses.cogan_loss_logits(h3), t))
        np.testing.assert_allclose(got, np_bce(np_sigmoid(np_sigmoid(h3)), t), rtol=1e-5)
    # --loss_on_logits: the usual single sigmoid.
    got = float(losses.sigmoid_ce(losses.cogan_loss_logits(h3, loss_on_logits=True), 0.9))
    np.testing.assert_allclose(got, np_bce(np_sigmoid(h3), 0.9), rtol=1e-5)


def test_d_loss_never_below_2_21_and_g_loss_bounded():
    # The bound: p = sigmoid(sigmoid(h3)) lies in (0.5, 0.731), so BCE(p, 0.9) > BCE(0.731, 0.9) and
    # BCE(q, 0.1) > BCE(0.5, 0.1): d_loss > 2 * 1.106.
    bound = 2 * (np_bce(np_sigmoid(1.0), 0.9) + np_bce(0.5, 0.1))
    assert 2.21 < bound < 2.22
    for scale in (0.1, 3.0, 100.0):
        h = [RNG.normal(0, scale, (64, 1)).astype(np.float32) for _ in range(4)]
        for sign in (1.0, -1.0):  # the most confident D there is: real +big, fake -big, and the reverse
            h[0], h[2] = sign * np.abs(h[0]), sign * np.abs(h[2])
            h[1], h[3] = -sign * np.abs(h[1]), -sign * np.abs(h[3])
            d = losses.cogan_d_losses(*[losses.cogan_loss_logits(x) for x in h])
            assert float(d["d_loss"]) >= 2.21
            g = losses.cogan_g_losses(losses.cogan_loss_logits(h[1]), losses.cogan_loss_logits(h[3]))
            assert 2 * 0.413 < float(g["g_loss"]) < 2 * 0.6932
    # With the usual loss, D at its optimum goes far below the bound (4 x H(0.9) = 1.30).
    big = np.full((8, 1), np.log(9.0), np.float32)  # the optimum under label smoothing 0.9 / 0.1
    d = losses.cogan_d_losses(big, -big, big, -big)
    assert float(d["d_loss"]) < 1.5


def test_gradient_reaching_h3_is_the_double_sigmoid_one():
    h3 = tf.constant(RNG.normal(0, 2, (16, 1)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(h3)
        loss = losses.sigmoid_ce(losses.cogan_loss_logits(h3), 0.9)
    p = np_sigmoid(h3.numpy())
    expected = (np_sigmoid(p) - 0.9) * p * (1 - p) / h3.shape[0]
    np.testing.assert_allclose(tape.gradient(loss, h3).numpy(), expected, rtol=1e-4, atol=1e-8)


# --- the CoGAN paper's: Caffe's SoftmaxWithLoss -------------------------------------------------------------------

def test_losses_are_caffes_softmax_loss_means():
    """Caffe's SoftmaxWithLoss over the stacked batches is a mean over all rows; the two-way softmax with
    labels 1/0 is the sigmoid cross-entropy of the difference of its two units."""
    r1, f1, r2, f2 = (tf.constant([[v]]) for v in (2.0, -1.0, 0.5, 1.0))
    out = losses.paper_d_losses(r1, f1, r2, f2)
    ce = lambda z, t: math.log1p(math.exp(-z)) if t else math.log1p(math.exp(z))  # noqa: E731
    assert float(out["d_loss"]) == pytest.approx((ce(2, 1) + ce(-1, 0) + ce(0.5, 1) + ce(1, 0)) / 4, rel=1e-6)
    assert float(out["d1_loss"]) == pytest.approx((ce(2, 1) + ce(-1, 0)) / 2, rel=1e-6)
    g = losses.paper_g_losses(f1, f2)
    assert float(g["g_loss"]) == pytest.approx((ce(-1, 1) + ce(1, 1)) / 2, rel=1e-6)
    two = tf.constant([[0.3, 2.3]])  # units (0: fake, 1: real): softmax CE with label 1 = sigmoid CE of 2.0
    assert float(tf.nn.sparse_softmax_cross_entropy_with_logits([1], two)[0]) == pytest.approx(ce(2, 1), rel=1e-6)


# --- the vanilla GAN's and the ClusterGAN's BCE on logits -----------------------------------------------------------

def bce_probs(probs, target: float, eps: float = 1e-7):
    """Mean binary cross-entropy of probabilities: PyTorch's ``nn.BCELoss`` on a sigmoid output, as the
    vanilla GAN and ClusterGAN originals use (PyTorch clamps the log at -100; here probabilities are
    clipped to [eps, 1 - eps])."""
    p = tf.clip_by_value(tf.cast(probs, tf.float32), eps, 1.0 - eps)
    t = tf.cast(target, tf.float32)
    return tf.reduce_mean(-(t * tf.math.log(p) + (1.0 - t) * tf.math.log(1.0 - p)))


def test_vanilla_losses_against_hand_computed_values():
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    real, fake = [2.0, -1.0, 0.0], [0.5, -3.0, 1.0]
    out = discriminator_loss(tf.constant(real)[:, None], tf.constant(fake)[:, None])
    # BCE real 1: -log sigmoid(l); fake 0: -log(1 - sigmoid(l)); d_loss is their sum.
    r = np.mean([-math.log(sig(v)) for v in real])
    f = np.mean([-math.log(1 - sig(v)) for v in fake])
    assert float(out["d_loss_real"]) == pytest.approx(r, rel=1e-6)
    assert float(out["d_loss_fake"]) == pytest.approx(f, rel=1e-6)
    assert float(out["d_loss"]) == pytest.approx(r + f, rel=1e-6)
    # Logit 0 is probability 1/2: log 2 whatever the target.
    assert float(generator_loss(tf.zeros([5, 1]))) == pytest.approx(math.log(2), rel=1e-6)
    assert float(generator_loss(tf.constant(fake)[:, None])) == pytest.approx(
        np.mean([-math.log(sig(v)) for v in fake]), rel=1e-6)
    # The same value as PyTorch's BCELoss on the sigmoid output (bce_probs).
    p = tf.sigmoid(tf.constant(fake)[:, None])
    assert float(bce_probs(p, 0.0)) == pytest.approx(f, rel=1e-5)


def test_saturated_discriminator_still_teaches_the_generator():
    # Why logits: at D(G(z)) = sigmoid(-20) ~ 2e-9 a loss on clipped probabilities has zero gradient;
    # the logit form keeps d/dl = sigmoid(l) - 1 ~ -1, as PyTorch's BCELoss does.
    l = tf.Variable([[-20.0]])
    with tf.GradientTape(persistent=True) as tape:
        g = generator_loss(l)
        clipped = bce_probs(tf.sigmoid(l), 1.0)
    assert float(tape.gradient(g, l)[0, 0]) == pytest.approx(-1.0, abs=1e-6)
    assert float(tape.gradient(clipped, l)[0, 0]) == 0.0


def test_clustergan_losses_against_hand_computed_values():
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    out = discriminator_loss(tf.constant([[1.0], [-2.0]]), tf.constant([[0.0], [3.0]]))
    r = (-math.log(sig(1.0)) - math.log(sig(-2.0))) / 2
    f = (math.log(2) - math.log(1 - sig(3.0))) / 2
    assert float(out["d_loss"]) == pytest.approx(r + f, rel=1e-6)  # summed, not averaged
    # G+E: D logits 0 (BCE = log 2); MSE over all 2x3 entries: (1 + 0 + 4 + 0 + 0 + 9) / 6 = 14/6;
    # CE: class 0 of logits [0, 0] is log 2; class 1 of [log 3, 0] is -log(1/4) = log 4.
    z_n = tf.constant([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    zn_hat = tf.constant([[0.0, 2.0, 1.0], [0.0, 0.0, 3.0]])
    logits = tf.constant([[0.0, 0.0], [math.log(3), 0.0]])
    ge = generator_encoder_loss(tf.zeros([2, 1]), zn_hat, z_n, logits, tf.constant([0, 1]), 10.0, 10.0)
    assert float(ge["ge_adv_loss"]) == pytest.approx(math.log(2), rel=1e-6)
    assert float(ge["zn_loss"]) == pytest.approx(14 / 6, rel=1e-6)
    assert float(ge["zc_loss"]) == pytest.approx((math.log(2) + math.log(4)) / 2, rel=1e-6)
    assert float(ge["ge_loss"]) == pytest.approx(math.log(2) + 10 * 14 / 6 + 10 * math.log(8) / 2, rel=1e-6)


# --- the ClusterGAN paper's WGAN-GP ---------------------------------------------------------------------------------

def test_gradient_penalty_against_hand_computation():
    # A linear critic D(x) = sum(w * x): its gradient is w at every x, so the penalty is (||w|| - 1)^2
    # whatever the interpolates, here (5 - 1)^2 = 16, and its gradient with respect to w is
    # 2 (||w|| - 1) w / ||w|| = 1.6 w (the second derivative through the inner gradient).
    w = tf.Variable([[[3.0], [0.0]], [[0.0], [4.0]]])  # (2, 2, 1), ||w|| = 5
    linear = lambda x: tf.reduce_sum(w * x, axis=[1, 2, 3])  # noqa: E731
    rng = np.random.default_rng(0)
    real, fake = (tf.constant(rng.random((3, 2, 2, 1)), tf.float32) for _ in range(2))
    eps = tf.constant(rng.random((3, 1, 1, 1)), tf.float32)
    with tf.GradientTape() as tape:
        gp = gradient_penalty(linear, real, fake, eps)
    assert float(gp) == pytest.approx(16.0, rel=1e-5)
    np.testing.assert_allclose(tape.gradient(gp, w).numpy(), 1.6 * w.numpy(), rtol=1e-5)

    # A quadratic critic D(x) = c * sum(x^2): gradient 2 c x_hat. Real images of ones (norm 2), fake
    # zeros, eps 0.25 and 0.5: x_hat = eps * real has norms 0.5 and 1, so with c = 1 the gradient norms
    # are 1 and 2, the penalty mean((1 - 1)^2, (2 - 1)^2) = 0.5, and d/dc of mean((2 c r_i - 1)^2) is
    # mean(4 r_i (2 c r_i - 1)) = (0 + 4) / 2 = 2. Also compiled, as inside the training step.
    c = tf.Variable(1.0)
    quadratic = lambda x: c * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])  # noqa: E731
    real, fake = tf.ones([2, 2, 2, 1]), tf.zeros([2, 2, 2, 1])
    eps = tf.constant([0.25, 0.5])[:, None, None, None]

    def penalty_and_grad():
        with tf.GradientTape() as tape:
            gp = gradient_penalty(quadratic, real, fake, eps)
        return gp, tape.gradient(gp, c)

    for fn in (penalty_and_grad, tf.function(penalty_and_grad)):
        gp, dc = fn()
        assert float(gp) == pytest.approx(0.5, rel=1e-5) and float(dc) == pytest.approx(2.0, rel=1e-5)


def test_wasserstein_losses_by_hand():
    out = critic_loss(tf.constant([[1.0], [3.0]]), tf.constant([[0.0], [-2.0]]), tf.constant(0.5), 10.0)
    assert float(out["d_wasserstein"]) == pytest.approx(2.0 - (-1.0))  # E[D(x)] - E[D(G(z))]
    assert float(out["d_loss"]) == pytest.approx(-3.0 + 10 * 0.5)
    assert float(out["d_gp"]) == pytest.approx(0.5)
    z = tf.zeros([2, 3])
    ge = generator_encoder_loss(tf.constant([[1.0], [-3.0]]), z, z, tf.zeros([2, 2]), tf.constant([0, 1]),
                                critic="wgan_gp")
    assert float(ge["ge_adv_loss"]) == pytest.approx(1.0)  # -E[D(G(z))] = -(1 - 3) / 2, no sigmoid
    assert float(ge["ge_loss"]) == pytest.approx(1.0 + 10 * math.log(2))
