"""The three written gradients of the CoGAN step (cogan_tf/layers.py) change no result beyond float rounding,
each against the plain ops it replaces and, in the faithful network's step, against the same step with that
lever alone off (``cogan_fast.use_layer_levers``):

* the dense layers' input gradient ``dy @ W^T`` as a BatchMatMulV2 with adj_y (``layers.Dense``);
* Q2's scalar-statistics BatchNorm by reductions with a written gradient (``layers.scalar_batch_norm``),
  against Keras's moments and autodiff and against the fused op over one channel;
* the input gradient of a 5x5 stride-2 SAME convolution (D's stems) as a sub-pixel convolution
  (``layers.Conv``);
and the first of them in the vanilla GAN, where it pays (``levers.DENSE_BMM_MIN_WEIGHTS``).
"""

import collections

import numpy as np
import pytest
import tensorflow as tf
import keras

from cogan_tf import cogan_fast
from cogan_tf.layers import BatchNorm, Conv, Dense, scalar_batch_norm
from tests.conftest import FAITHFUL, assert_lever_changes_nothing, make_cogan as make
from tests.tolerance import EPS, K, outputs_and_gradients, rel_max, sum_rounding


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


def op_counts(gan, x):
    """How many ops of each type the training step has (its nested functions' included)."""
    graph = tf.function(gan.train_step).get_concrete_function(*x).graph.as_graph_def()
    return collections.Counter([n.op for n in graph.node] + [n.op for f in graph.library.function for n in f.node_def])


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


@pytest.mark.parametrize("lever", ["dense_bmm_gradient", "written_scalar_batchnorm", "subpixel_stem_gradient"])
def test_the_step_equals_the_step_without_the_lever(lever):
    """The faithful network's first update, D's and G's losses and gradients, with the lever on (the port's
    step) and off, from the same weights, data and z, by the networks' rule (tests/tolerance.py), with the
    PReLU slopes at 1 (test_speed.test_fused_layers_step_equals_unfused says why)."""
    assert_lever_changes_nothing(lever)


def test_each_lever_changes_the_ops_it_names():
    """The port's step on a CPU against the same step with one lever off: the dense input gradients'
    BatchMatMulV2 (none with the GPU's levers, cogan_tf/levers.py: cuBLAS's MatMul there), D's stem input
    gradients' DepthToSpace (two per G update: one per domain's h0), Q2's two BatchNorms off the fused op."""
    port, x = make(FAITHFUL)
    on = op_counts(port, x)
    off = {}
    for lever in ("dense_bmm_gradient", "written_scalar_batchnorm", "subpixel_stem_gradient"):
        gan, _ = make(FAITHFUL)
        off[lever] = op_counts(cogan_fast.use_layer_levers(gan, **{lever: False}), x)
    gpu, _ = make(FAITHFUL)
    gpu.use_device_levers("gpu")
    assert on["BatchMatMulV2"] > 0 and off["dense_bmm_gradient"]["BatchMatMulV2"] == 0
    assert op_counts(gpu, x)["BatchMatMulV2"] == 0
    assert off["subpixel_stem_gradient"]["DepthToSpace"] < on["DepthToSpace"]
    assert off["written_scalar_batchnorm"]["FusedBatchNormV3"] > on["FusedBatchNormV3"] > 0


def test_vanilla_written_dense_gradients_where_they_pay():
    """The vanilla GAN takes the BatchMatMulV2 input gradient on a CPU for its layers of 2^19 weights or more
    (cogan_tf/levers.py): at 1,024 units the hidden layers and the image-sized ones, never the one-unit output,
    none at the default 128 units, none on a GPU. D's and G's gradients equal those of the plain layers, by the
    rule of their longest sums (1,024 terms) through the 8 layers of G and D."""
    from cogan_tf import config as C, gan as gan_lib, levers, runner
    from tests.tolerance import assert_gradients_close

    x = np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1), dtype=np.uint8)

    def built(hidden, kind="cpu"):
        cfg = C.train_config("vanilla", batch_size=8, seed=2, checkpoint_dir="/nonexistent")
        gan = runner.make_gan(C.VanillaConfig(hidden=hidden), cfg, arrays=[x])
        keras.utils.set_random_seed(2)
        gan_lib.build_gan(gan)
        gan.use_device_levers(kind)
        return gan

    def written(gan):
        return [layer.name for m in (gan.generator, gan.discriminator) for layer in m._flatten_layers()
                if isinstance(layer, Dense) and layer.written_gradient]

    assert written(built(128)) == [] and written(built(1024, "gpu")) == []
    port = built(1024)
    assert written(port) == ["g_h1", "g_h2", "g_h3", "d_h0", "d_h1", "d_h2"]
    assert levers.DENSE_BMM_MIN_WEIGHTS <= 784 * 1024
    plain = built(1024, "gpu")
    z = tf.random.stateless_normal([8, 128], seed=[3, 1])
    images = tf.cast(x, tf.float32) / 127.5 - 1.0
    grads = []
    for gan in (port, plain):
        with tf.GradientTape(persistent=True) as tape:
            fake = gan.generator(z, training=True)
            d_loss = tf.reduce_mean(gan.discriminator.logits(images) - gan.discriminator.logits(fake))
            g_loss = -tf.reduce_mean(gan.discriminator.logits(fake))
        grads.append((tape.gradient(d_loss, gan.d_vars), tape.gradient(g_loss, gan.g_vars)))
    rtol = sum_rounding(1024, 1.0, 8)
    assert assert_gradients_close(port.d_vars, grads[0][0], grads[1][0], rtol=rtol) == 8
    assert assert_gradients_close(port.g_vars, grads[0][1], grads[1][1], rtol=rtol) == 8
