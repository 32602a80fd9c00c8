"""cogan_tf/layers.py: the building blocks with the original's exact settings (the scalar PReLU; BatchNorm's epsilon,
momentum and batch statistics at inference; quirk Q2's one mean and variance on 2-D inputs), and the fused ops and
written gradients the speed levers use, each against the plain ops it replaces: Keras's BatchNormalization and
autodiff, TensorFlow's own gradients. They change no result beyond float rounding (tests/tolerance.py); in the
CoGAN's step: tests/test_cogan_fast.py."""

import numpy as np
import pytest
import tensorflow as tf

from cogan_tf.layers import BatchNorm, Conv, Dense, ScalarPReLU, scalar_batch_norm
from tests.conftest import scalar_bn_reference
from tests.tolerance import EPS, K, outputs_and_gradients, rel_max, sum_rounding

RNG = np.random.default_rng(7)


# --- the original's settings ------------------------------------------------------------------------------------

def test_scalar_prelu_is_max_x_tx():
    layer = ScalarPReLU()
    x = tf.constant([[-2.0, -0.5, 0.0, 3.0]])
    layer(x)
    assert layer.t.shape == () and len(layer.trainable_variables) == 1
    for t in (0.25, -0.5, 2.0):  # for t > 1 this is not Keras's PReLU
        layer.t.assign(t)
        np.testing.assert_allclose(layer(x).numpy(), np.maximum(x.numpy(), t * x.numpy()))


def test_batchnorm_settings_and_batch_statistics_at_inference():
    bn = BatchNorm()
    x = tf.constant(np.random.default_rng(0).normal(3.0, 2.0, (16, 5)), tf.float32)
    bn(x, training=True)
    assert bn.epsilon == 1e-5 and bn.momentum == 0.9
    moving = bn.moving_mean.numpy().copy()
    y = bn(x, training=False).numpy()
    expected = (x.numpy() - x.numpy().mean(0)) / np.sqrt(x.numpy().var(0) + 1e-5) * bn.gamma.numpy() + bn.beta.numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), moving)  # sampling leaves the averages alone
    # Moving averages: decay 0.9 from 0 after one batch.
    np.testing.assert_allclose(moving, 0.1 * x.numpy().mean(0), rtol=1e-5)
    bn2 = BatchNorm(batch_stats_at_inference=False)
    bn2(x, training=True)
    y2 = bn2(x, training=False).numpy()
    assert not np.allclose(y2, expected, atol=1e-2)


# --- Q2: one scalar mean and variance on 2-D inputs -------------------------------------------------------------

@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_2d_batchnorm_uses_scalar_statistics_outputs_and_gradients(fused, training):
    x = tf.constant(RNG.normal(2.0, 3.0, (16, 6)).astype(np.float32) * np.arange(1, 7, dtype=np.float32))
    w = tf.constant(RNG.normal(size=(16, 6)).astype(np.float32))
    bn = BatchNorm(scalar_2d_stats=True, fused=fused)
    bn.build((None, 6))
    bn.gamma.assign(RNG.normal(1.0, 0.5, 6).astype(np.float32))
    bn.beta.assign(RNG.normal(0.0, 0.5, 6).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = bn(x, training=training)
        ref = scalar_bn_reference(x, bn.gamma, bn.beta)
        loss, ref_loss = tf.reduce_sum(y * w), tf.reduce_sum(ref * w)
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-4, atol=1e-4)
    # Not the per-feature normalisation: the features have different scales here.
    per_feature = (x - tf.reduce_mean(x, 0)) / tf.sqrt(tf.math.reduce_variance(x, 0) + 1e-5) * bn.gamma + bn.beta
    assert np.abs(y.numpy() - per_feature.numpy()).max() > 0.1
    for a, b in zip(tape.gradient(loss, [x, bn.gamma, bn.beta]), tape.gradient(ref_loss, [x, bn.gamma, bn.beta])):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-4)
    if training:  # the moving averages hold the scalar statistics in every feature
        np.testing.assert_allclose(bn.moving_mean.numpy(), np.full(6, 0.1 * x.numpy().mean()), rtol=1e-4)
        np.testing.assert_allclose(bn.moving_variance.numpy(), np.full(6, 0.9 + 0.1 * x.numpy().var()), rtol=1e-4)


def test_4d_batchnorm_keeps_per_channel_statistics():
    x = tf.constant(RNG.normal(0, 1, (4, 3, 3, 2)).astype(np.float32) * np.array([1.0, 10.0], np.float32))
    for fused in (True, False):
        bn = BatchNorm(scalar_2d_stats=True, fused=fused)
        y = bn(x, training=True).numpy()
        xn = x.numpy()
        expected = ((xn - xn.mean((0, 1, 2))) / np.sqrt(xn.var((0, 1, 2)) + 1e-5)) * bn.gamma.numpy() + bn.beta.numpy()
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


# --- the fused ops and written gradients of the speed levers ------------------------------------------------------

@pytest.mark.parametrize("shape", [(64, 1024), (64, 14, 14, 32)], ids=["dense", "conv"])
@pytest.mark.parametrize("at_inference", [True, False], ids=["batch_stats", "moving_averages"])
def test_fused_batchnorm_equals_keras_batchnorm(shape, at_inference):
    """Outputs, gradients (input, gamma, beta) and moving averages of the fused BatchNorm against
    Keras's own, in training and in inference mode, from the same weights and inputs."""
    fused, plain = BatchNorm(batch_stats_at_inference=at_inference), BatchNorm(batch_stats_at_inference=at_inference,
                                                                                  fused=False)
    fused.build(shape)
    plain.build(shape)
    fused.gamma.assign(tf.random.stateless_normal(fused.gamma.shape, seed=[0, 1]))
    fused.beta.assign(tf.random.stateless_normal(fused.beta.shape, seed=[0, 2]))
    for a, b in zip(fused.weights, plain.weights):
        b.assign(a)
    x = 3.0 * tf.random.stateless_normal(shape, seed=[0, 3]) + 0.5
    w = tf.random.stateless_normal(shape, seed=[0, 4])  # a loss that weighs every output differently
    # The statistics sum n = batch (x height x width) terms: an output is within one such sum's rounding
    # of the other's (relative to the outputs' size), a gradient within two chained sums' (the backward
    # pass sums the same n terms twice more).
    n = int(np.prod(shape[:-1]))
    out_tol, grad_tol = sum_rounding(n), sum_rounding(n, depth=2)
    for training in (True, False, True):
        outs, grads = outputs_and_gradients((fused, plain), x, w, training, lambda bn: [bn.gamma, bn.beta])
        assert rel_max(*outs) < out_tol, training
        for ga, gb in zip(*grads):
            assert rel_max(ga, gb) < grad_tol, training
        assert rel_max(fused.moving_mean, plain.moving_mean) < out_tol
        assert rel_max(fused.moving_variance, plain.moving_variance) < out_tol
    # Three calls, two in training mode: the moving averages moved twice, from (0, 1).
    assert float(tf.reduce_max(tf.abs(fused.moving_mean))) > 0.1
    assert float(tf.reduce_max(tf.abs(fused.moving_variance - 1.0))) > 0.5


def test_fused_batchnorm_refuses_what_it_cannot_fuse():
    """Synchronized statistics (a cross-replica sum between the op's halves) stay on Keras's path."""
    bn = BatchNorm(synchronized=True)
    bn.build((8, 4))
    assert not bn._fusable(tf.zeros((8, 4)), None)
    bn = BatchNorm()
    bn.build((8, 3, 4))
    assert not bn._fusable(tf.zeros((8, 3, 4)), None)
    bn = BatchNorm()
    bn.build((8, 4))
    assert bn._fusable(tf.zeros((8, 4)), None)


@pytest.mark.parametrize("t", [0.3, 1.7, -0.5, 0.0])
def test_prelu_written_gradient_equals_autodiff(t):
    """Values and gradients (x and the slope t) of the written gradient against autodiff of maximum,
    for slopes below and above 1 and negative, with ties (x = 0) included."""
    layers = [ScalarPReLU(), ScalarPReLU(written_gradient=False)]
    x = tf.concat([tf.random.stateless_normal([999], seed=[1, 1]), tf.zeros([3])], axis=0)
    w = tf.random.stateless_normal([1002], seed=[1, 2])
    res = []
    for layer in layers:
        layer.build((None,))
        layer.t.assign(t)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x) * w)
        res.append((layer(x), *tape.gradient(loss, [x, layer.t])))
    (ya, dxa, dta), (yb, dxb, dtb) = res
    np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    np.testing.assert_array_equal(dxa.numpy(), dxb.numpy())
    assert float(dta) == pytest.approx(float(dtb), rel=sum_rounding(1002))  # a sum over the 1,002 elements
    assert abs(float(dta)) > 1.0


def pair(make_layer, shape, off: str):
    """The lever's layer (``make_layer()``) and the plain one (its attribute ``off`` False), built on ``shape``,
    with the same weights."""
    a, b = make_layer(), make_layer()
    setattr(b, off, False)
    a.build(shape)
    b.build(shape)
    for i, (va, vb) in enumerate(zip(a.weights, b.weights)):
        va.assign(tf.random.stateless_normal(va.shape, seed=[7, i]) * 0.1)
        vb.assign(va)
    return a, b


@pytest.mark.parametrize("n_in, units", [(3136, 1024), (1024, 1)], ids=["d_h2", "d_h3"])
def test_dense_bmm_gradient_equals_matmul(n_in, units):
    """The same forward op and weight gradient (identical); the input gradient sums the same ``units`` terms
    in another kernel: to their rounding."""
    written, plain = pair(lambda: Dense(units), (None, n_in), "written_gradient")
    x = tf.random.stateless_normal([64, n_in], seed=[1, 1])
    w = tf.random.stateless_normal([64, units], seed=[1, 2])
    (ya, yb), (ga, gb) = outputs_and_gradients((written, plain), x, w, True, lambda d: [d.kernel, d.bias])
    np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    np.testing.assert_array_equal(ga[1].numpy(), gb[1].numpy())
    np.testing.assert_array_equal(ga[2].numpy(), gb[2].numpy())
    # Every term of a dx element is w * kernel: their absolute sum bounds the partial sums.
    scale = float(tf.reduce_max(tf.matmul(tf.abs(w), tf.abs(plain.kernel), transpose_b=True)))
    np.testing.assert_allclose(ga[0].numpy(), gb[0].numpy(), rtol=0, atol=sum_rounding(units, scale))
    assert float(tf.reduce_max(tf.abs(ga[0]))) > 0.1


@pytest.mark.parametrize("training", [True, False], ids=["training", "batch_stats_at_inference"])
def test_written_scalar_batchnorm_equals_keras_and_the_fused_op(training):
    """Q2's BatchNorm of g_h1's (batch, 6,272) matrix three ways: written gradient, Keras's moments and
    autodiff, the fused op over one channel. Outputs, input and parameter gradients and moving averages: the
    statistics sum all M values, the backward pass sums them twice more (tests/tolerance.py)."""
    shape = (16, 6272)
    layers = [BatchNorm(scalar_2d_stats=True) for _ in range(3)]
    layers[1].fused = False  # Keras's moments, normalisation and autodiff
    layers[2].written_scalar_stats = False  # the fused op over one channel
    for i, bn in enumerate(layers):
        bn.build(shape)
        if i == 0:
            bn.gamma.assign(tf.random.stateless_normal(bn.gamma.shape, seed=[0, 1]) * 0.3 + 1.0)
            bn.beta.assign(tf.random.stateless_normal(bn.beta.shape, seed=[0, 2]))
        else:
            for a, b in zip(layers[0].weights, bn.weights):
                b.assign(a)
    # Features with their own offsets and scales, as a dense layer's outputs have.
    x = (3.0 * tf.random.stateless_normal(shape, seed=[0, 3]) * tf.random.stateless_uniform([shape[1]], [0, 5])
         + tf.random.stateless_normal([shape[1]], seed=[0, 6]) + 0.5)
    w = tf.random.stateless_normal(shape, seed=[0, 4])
    m = int(np.prod(shape))
    out_tol, grad_tol = sum_rounding(m), sum_rounding(m, depth=2)
    outs, grads = [], []
    for bn in layers:
        (y,), (g,) = outputs_and_gradients([bn], x, w, training, lambda b: [b.gamma, b.beta])
        outs.append(y)
        grads.append(g)
    for other in (1, 2):
        assert rel_max(outs[0], outs[other]) < out_tol, other
        for a, b in zip(grads[0], grads[other]):
            assert rel_max(a, b) < grad_tol, other
        for name in ("moving_mean", "moving_variance"):
            assert rel_max(getattr(layers[0], name), getattr(layers[other], name)) < out_tol, (other, name)
    # One update from (0, 1) in training (momentum 0.9, the matrix's variance ~4); none at inference.
    expected = 0.9 + 0.1 * float(np.var(x.numpy(), dtype=np.float64)) if training else 1.0
    np.testing.assert_allclose(layers[0].moving_variance.numpy(), expected, rtol=out_tol)
    assert expected > 1.2 or not training


def test_scalar_batch_norm_statistics_and_a_changed_term():
    """The statistics it returns are the matrix's mean and biased variance; and the rule above fails for one
    term of the written gradient left out (the mean of dxhat), however small next to the rest."""
    x = tf.random.stateless_normal([8, 300], seed=[3, 1]) * 2.0 + 0.7
    gamma = tf.random.stateless_normal([300], seed=[3, 2]) + 1.0
    beta = tf.zeros([300])
    _, mean, var = scalar_batch_norm(x, gamma, beta, 1e-5)
    assert float(mean) == pytest.approx(float(np.mean(x.numpy(), dtype=np.float64)), rel=1e-5)
    assert float(var) == pytest.approx(float(np.var(x.numpy(), dtype=np.float64)), rel=1e-5)
    w = tf.random.stateless_normal([8, 300], seed=[3, 3])
    with tf.GradientTape() as tape:
        tape.watch(x)
        dx = tape.gradient(tf.reduce_sum(scalar_batch_norm(x, gamma, beta, 1e-5)[0] * w), x)
    r = 1.0 / np.sqrt(float(var) + 1e-5)
    dy, xc = w.numpy() * gamma.numpy(), x.numpy() - float(mean)
    m = x.numpy().size
    full = r * (dy - dy.sum() / m - xc * r * r * (dy * xc).sum() / m)
    assert rel_max(dx, tf.constant(full, tf.float32)) < sum_rounding(m, depth=2)
    without_mean = r * (dy - xc * r * r * (dy * xc).sum() / m)
    assert rel_max(dx, tf.constant(without_mean, tf.float32)) > sum_rounding(m, depth=2)


@pytest.mark.parametrize("side, c_in, filters", [(28, 1, 1), (14, 1, 64), (14, 64, 64)],
                         ids=["d_h0", "d_h1", "corrected_d_h1"])
def test_subpixel_stem_gradient_equals_conv_gradient(side, c_in, filters):
    """The same forward op and kernel gradient (identical); the input gradient sums at most 3 x 3 taps of
    ``filters`` channels, the transposed convolution's sums in another order: to their rounding."""
    written, plain = pair(lambda: Conv(filters, 5, strides=2, padding="same"), (None, side, side, c_in),
                          "subpixel_input_gradient")
    x = tf.random.stateless_normal([4, side, side, c_in], seed=[4, 1])
    w = tf.random.stateless_normal([4, side // 2, side // 2, filters], seed=[4, 2])
    (ya, yb), (ga, gb) = outputs_and_gradients((written, plain), x, w, True, lambda c: [c.kernel, c.bias])
    np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    np.testing.assert_allclose(ga[1].numpy(), gb[1].numpy(), rtol=K * EPS, atol=K * EPS * float(tf.reduce_max(tf.abs(gb[1]))))
    np.testing.assert_array_equal(ga[2].numpy(), gb[2].numpy())
    shape = tf.stack([4, side, side, c_in])
    scale = float(tf.reduce_max(tf.nn.conv2d_transpose(tf.abs(w), tf.abs(plain.kernel), shape, 2, "SAME")))
    np.testing.assert_allclose(ga[0].numpy(), gb[0].numpy(), rtol=0, atol=sum_rounding(9 * filters, scale))
    assert written._subpixel(x) and not plain._subpixel(x)
