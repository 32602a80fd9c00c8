"""The speed levers of the paper network's step (cogan_tf/paper_layers.py) change no result beyond float rounding:
G's l1 forward as a matmul and an overlap-add, BatchNorm as TensorFlow's fused op, the PReLU and the dense layers
with written gradients, each against the plain ops (``fast=False``), and the whole step against the plain step
(``PaperCoGAN.use_plain_layers``) from the same weights, data and random draws."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from cogan_tf import config as C, runner
from cogan_tf.paper_layers import (CaffeBatchNorm, CaffeDense, ChannelPReLU, caffe_deconv, deconv_k3s2p1_matmul)
from tests.tolerance import assert_gradients_close, call_and_differentiate, outputs_and_gradients, rel_max, sum_rounding

# The paper network at batch 16: its longest sums are the BatchNorm statistics of G's l3 (16 x 25 x 25 =
# 10,000 terms); a value passes at most 9 layers (G's 5, D's 4) forward, as many backward: 4.3e-4.
PAPER_RTOL = sum_rounding(10_000, 1.0, 9)


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


def make(plain: bool, batch=16, seed=3):
    rng = np.random.default_rng(seed)
    x = [rng.integers(0, 256, (batch, 28, 28, 1), dtype=np.uint8) for _ in range(2)]
    gan = runner.make_gan(C.cogan_config("paper"), C.TrainConfig(batch_size=batch, seed=seed,
                                                                  checkpoint_dir="/nonexistent"), arrays=x)
    keras.utils.set_random_seed(seed)
    gan.build()
    if plain:
        gan.use_plain_layers()
    return gan, [tf.constant(a) for a in x]


def one_pass_gradients(gan, x):
    """D's and G's gradients of one pass from the gan's current weights, on fixed z and dropout draws."""
    x1, x2 = (tf.cast(a, tf.float32) / 256.0 for a in x)
    z = tf.random.stateless_uniform([16, 100], seed=[6, 1], minval=-1, maxval=1)
    with tf.GradientTape(persistent=True) as tape:
        fake1, fake2 = gan.generator(z, training=True)
        d = gan.d_losses(x1, x2, fake1, fake2, training=True,
                         noise=tf.random.stateless_uniform([64, 500], seed=[6, 2]))["d_loss"]
        g = gan.g_losses(fake1, fake2, training=True, noise=tf.random.stateless_uniform([32, 500], seed=[6, 3]))["g_loss"]
    return (float(d), float(g)), tape.gradient(d, gan.d_vars), tape.gradient(g, gan.g_vars)


def test_port_step_equals_the_plain_step():
    """From the same weights, data and random draws: the gradients of one pass to rounding, and the first
    step's losses (later steps drift apart by Adam's sign-like first updates of near-zero gradients, as for
    the original network: docs/PERFORMANCE.md)."""
    port, x = make(plain=False)
    ref, x_ref = make(plain=True)
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(port.g_vars + port.d_vars, ref.g_vars + ref.d_vars))
    (la, da, ga), (lb, db, gb) = one_pass_gradients(port, x), one_pass_gradients(ref, x_ref)
    assert la == pytest.approx(lb, rel=PAPER_RTOL)
    assert assert_gradients_close(port.d_vars, da, db, rtol=PAPER_RTOL) == len(port.d_vars)
    assert assert_gradients_close(port.g_vars, ga, gb, rtol=PAPER_RTOL) == len(port.g_vars)
    a = tf.function(port.train_step)(*x)
    b = tf.function(ref.train_step)(*x_ref)
    assert a.keys() == b.keys()
    for k in a:
        assert float(a[k]) == pytest.approx(float(b[k]), rel=PAPER_RTOL), k
