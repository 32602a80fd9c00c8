"""cogan_tf/paper_layers.py: the CoGAN paper's layers as Caffe defines them (its padded deconvolution, BatchNorm with
its own moving averages, per-channel PReLU, and AlterAdam with weight decay and learning-rate multipliers), and their
speed levers: G's l1 forward as a matmul and an overlap-add, BatchNorm as TensorFlow's fused op, the PReLU and the
dense layers with written gradients, each against the plain ops (``fast=False``), to float rounding. (The whole step
against the plain step: tests/test_cogan_paper.py.)"""

import math

import numpy as np
import pytest
import tensorflow as tf

from cogan_tf.paper_layers import (CaffeAdam, CaffeBatchNorm, CaffeDense, ChannelPReLU, caffe_deconv, channel_prelu,
                                   deconv_k3s2p1_matmul)
from tests.tolerance import call_and_differentiate, outputs_and_gradients, rel_max, sum_rounding


# --- Caffe's definitions ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("h, c_in, c_out, k, s, p", [(4, 16, 8, 3, 2, 1), (13, 8, 4, 3, 2, 1), (25, 8, 1, 6, 1, 1)])
def test_caffe_deconvolution_is_the_cropped_full_one(h, c_in, c_out, k, s, p):
    """Caffe computes a padded deconvolution as the full one with the border dropped; TensorFlow's SAME (the
    3x3 stride-2 layers) and explicit padding (the 6x6 output layers) give the same sums."""
    x = tf.random.normal([2, h, h, c_in])
    w = tf.random.normal([k, k, c_out, c_in])
    crop = caffe_deconv(x, w, s, p, method="crop")
    assert crop.shape[1] == (h - 1) * s + k - 2 * p
    for method in ("auto", "explicit"):
        np.testing.assert_allclose(caffe_deconv(x, w, s, p, method=method).numpy(), crop.numpy(), atol=1e-4)


def test_batchnorm_statistics_and_caffe_moving_averages():
    bn = CaffeBatchNorm()
    x1 = tf.random.normal([4, 3, 3, 2]) * 3 + 1
    x2 = tf.random.normal([4, 3, 3, 2]) * 2 - 1
    bn.build(x1.shape)
    bn.beta.assign([0.5, -0.5])
    mean, var = bn.moving_statistics()
    np.testing.assert_array_equal(mean.numpy(), 0.0)  # Caffe: 0 / 0 counts as 0 before the first update
    y = bn(x1, training=True)
    m1, v1 = tf.nn.moments(x1, [0, 1, 2])
    np.testing.assert_allclose(y.numpy(), ((x1 - m1) / tf.sqrt(v1 + 1e-5) + [0.5, -0.5]).numpy(), atol=1e-5)
    bn(x2, training=True)
    m2, v2 = tf.nn.moments(x2, [0, 1, 2])
    n = 36
    # Caffe: sums decayed by 0.999 and a normaliser 0.999 + 1; the variance with Bessel's correction.
    mean, var = bn.moving_statistics()
    np.testing.assert_allclose(mean.numpy(), ((0.999 * m1 + m2) / 1.999).numpy(), rtol=1e-5)
    np.testing.assert_allclose(var.numpy(), ((0.999 * v1 + v2) * n / (n - 1) / 1.999).numpy(), rtol=1e-4)
    # Inference (Caffe's deploy network) normalises with them.
    np.testing.assert_allclose(bn(x1, training=False).numpy(),
                               ((x1 - mean) / tf.sqrt(var + 1e-5) + [0.5, -0.5]).numpy(), atol=1e-5)


def test_prelu_is_caffes_with_one_slope_per_channel():
    x = tf.constant([[-2.0, 3.0], [1.0, -4.0]])
    a = tf.constant([0.25, 0.5])
    with tf.GradientTape() as tape:
        tape.watch([x, a])
        y = channel_prelu(x, a)
        total = tf.reduce_sum(y * [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(y.numpy(), [[-0.5, 3.0], [1.0, -2.0]])
    dx, da = tape.gradient(total, [x, a])
    np.testing.assert_array_equal(dx.numpy(), [[0.25, 2.0], [3.0, 2.0]])
    np.testing.assert_array_equal(da.numpy(), [-2.0, -16.0])


@pytest.mark.parametrize("phase, lr_mult, decay_mult", [(1, 1.0, 1.0), (2, 2.0, 0.0), (0, 1.0, 0.0)])
def test_caffe_adam_by_hand(phase, lr_mult, decay_mult):
    """AlterAdam: the k-th update of a player corrects with the solver's counter t = 2k - 1 (D) or 2k (G);
    weight decay is added to the gradient; lr_mult scales the step."""
    w = tf.Variable([1.0, -2.0])
    opt = CaffeAdam(1e-2, 0.5, 0.999, weight_decay_l2=0.1, phase=phase, multipliers=lambda v: (lr_mult, decay_mult))
    opt.build([w])
    m = v = np.zeros(2)
    w_ref = np.array([1.0, -2.0])
    for k in (1, 2, 3):
        g = np.array([0.3, 0.1]) * k
        opt.apply_gradients([(tf.constant(g, tf.float32), w)])
        g = g + 0.1 * decay_mult * w_ref
        m = 0.5 * m + 0.5 * g
        v = 0.999 * v + 0.001 * g * g
        t = {0: k, 1: 2 * k - 1, 2: 2 * k}[phase]
        w_ref = w_ref - 1e-2 * lr_mult * math.sqrt(1 - 0.999 ** t) / (1 - 0.5 ** t) * m / (np.sqrt(v) + 1e-8)
        np.testing.assert_allclose(w.numpy(), w_ref, rtol=1e-5)


# --- the speed levers, each against the plain ops -------------------------------------------------------------------

@pytest.mark.parametrize("n, c_in, c_out", [(2, 1024, 512), (8, 64, 32)], ids=["l1", "small"])
def test_matmul_deconv_equals_the_transposed_convolution(n, c_in, c_out):
    """Outputs to the rounding of their sums (each output pixel sums at most 4 taps x c_in terms, in another
    order); the gradients are the transposed convolution's own ops on the same numbers: identical."""
    x = tf.random.stateless_normal([n, 4, 4, c_in], seed=[2, 1])
    k = tf.random.stateless_normal([3, 3, c_out, c_in], seed=[2, 2]) * 0.05
    w = tf.random.stateless_normal([n, 7, 7, c_out], seed=[2, 3])  # a loss that weighs every output differently
    (ya, dxa, dka), (yb, dxb, dkb) = call_and_differentiate(
        (deconv_k3s2p1_matmul, lambda x, k: caffe_deconv(x, k, 2, 1)), [x, k], w)
    assert ya.shape == yb.shape == (n, 7, 7, c_out)
    scale = float(tf.reduce_max(caffe_deconv(tf.abs(x), tf.abs(k), 2, 1)))
    np.testing.assert_allclose(ya.numpy(), yb.numpy(), rtol=0, atol=sum_rounding(4 * c_in, scale))
    np.testing.assert_array_equal(dxa.numpy(), dxb.numpy())
    np.testing.assert_array_equal(dka.numpy(), dkb.numpy())


@pytest.mark.parametrize("shape", [(16, 4, 4, 64), (16, 13, 13, 8)])
def test_fused_batchnorm_equals_moments_and_normalisation(shape):
    """Outputs, gradients (input, beta) and Caffe's moving sums of the fused op against tf.nn.moments and
    batch_normalization with autodiff, over three calls (two of them training)."""
    fused, plain = CaffeBatchNorm(), CaffeBatchNorm(fast=False)
    for bn in (fused, plain):
        bn.build(shape)
        bn.beta.assign(tf.random.stateless_normal(bn.beta.shape, seed=[3, 1]))
    x = 3.0 * tf.random.stateless_normal(shape, seed=[3, 2]) + 0.5
    w = tf.random.stateless_normal(shape, seed=[3, 3])
    n = int(np.prod(shape[:-1]))
    for training in (True, False, True):
        outs, grads = outputs_and_gradients((fused, plain), x, w, training, lambda bn: [bn.beta])
        assert rel_max(*outs) < sum_rounding(n), training
        for ga, gb in zip(*grads):
            assert rel_max(ga, gb) < sum_rounding(n, depth=2), training
    for a, b in ((fused.mean_sum, plain.mean_sum), (fused.variance_sum, plain.variance_sum)):
        assert rel_max(a, b) < sum_rounding(n)
    assert float(fused.weight_sum.numpy()) == float(plain.weight_sum.numpy()) == pytest.approx(1.999)


@pytest.mark.parametrize("xla", [True, False], ids=["xla_cluster", "tensorflow_ops"])
def test_written_prelu_equals_autodiff(xla):
    """Values and input gradients identical (no input is exactly 0, where Caffe's gradient takes the slope and
    autodiff of the formula 0); the slopes' gradient a sum over the batch, to its rounding. The written gradient
    as an XLA cluster (the lever xla_prelu) and as TensorFlow's ops."""
    fast, plain = ChannelPReLU(), ChannelPReLU(fast=False)
    fast.xla = xla
    x = tf.random.stateless_normal([64, 7, 7, 16], seed=[4, 1])
    w = tf.random.stateless_normal([64, 7, 7, 16], seed=[4, 2])
    res = []
    for layer in (fast, plain):
        layer.build(x.shape)
        layer.a.assign(tf.random.stateless_uniform([16], seed=[4, 3], minval=-0.5, maxval=1.5))
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * w)
        res.append((y, *tape.gradient(loss, [x, layer.a])))
    (ya, dxa, daa), (yb, dxb, dab) = res
    np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    np.testing.assert_array_equal(dxa.numpy(), dxb.numpy())
    mass = float(tf.reduce_max(tf.reduce_sum(tf.abs(x * w), [0, 1, 2])))
    np.testing.assert_allclose(daa.numpy(), dab.numpy(), rtol=0, atol=sum_rounding(64 * 49, mass))


def test_written_dense_gradient_equals_matmuls():
    fast, plain = CaffeDense(500), CaffeDense(500, fast=False)
    x = tf.random.stateless_normal([32, 800], seed=[5, 1])
    w = tf.random.stateless_normal([32, 500], seed=[5, 2])
    res = []
    for layer in (fast, plain):
        layer.build(x.shape)
        layer.kernel.assign(tf.random.stateless_normal([800, 500], seed=[5, 3]) * 0.05)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * w)
        res.append((y, *tape.gradient(loss, [x, layer.kernel, layer.bias])))
    (ya, *ga), (yb, *gb) = res
    np.testing.assert_array_equal(ya.numpy(), yb.numpy())  # the forward op is the same
    mass = float(tf.reduce_max(tf.abs(w) @ tf.abs(tf.transpose(fast.kernel))))
    np.testing.assert_allclose(ga[0].numpy(), gb[0].numpy(), rtol=0, atol=sum_rounding(500, mass))
    np.testing.assert_array_equal(ga[1].numpy(), gb[1].numpy())  # the weight gradient is TensorFlow's own op
    np.testing.assert_array_equal(ga[2].numpy(), gb[2].numpy())


