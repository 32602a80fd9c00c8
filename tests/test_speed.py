"""The speed levers kept in the CoGAN step change no result beyond float rounding.

* the shared trunk computed once for both domains, against the straightforward step (trunk per domain);
* the first G update reusing the D update's G forward pass, against the step that recomputes it;
* both output heads as one two-channel deconv (``cogan.generate_pair``), against the two heads, and
  that deconv as a sub-pixel convolution (``cogan.subpixel_deconv``) against ``conv2d_transpose``;
* BatchNorm as TensorFlow's fused op and the PReLU with a written gradient, against Keras's
  BatchNormalization and autodiff of ``maximum`` (the layers as first written).
The references are the benchmark's own steps (cogan_tf/bench.py), run from the same initial weights,
data and z as the port's step.
"""

import numpy as np
import pytest
import tensorflow as tf
import keras

from cogan_tf import bench, config as C, runner
from cogan_tf.cogan import generate_pair, subpixel_deconv
from cogan_tf.layers import BatchNorm, ScalarPReLU

FAITHFUL = C.CoganConfig()
CORRECTED = C.CoganConfig(h0_feeds_h1=True, d_h0_filters=64, bn_batch_stats_at_inference=False,
                          loss_on_logits=True, bn_per_feature=True)  # --corrected


def make(m, batch=16, seed=3):
    rng = np.random.default_rng(seed)
    x1 = rng.integers(0, 256, (batch, 28, 28, 1), dtype=np.uint8)
    x2 = rng.integers(0, 256, (batch, 28, 28, 1), dtype=np.uint8)
    cfg = C.TrainConfig(batch_size=batch, seed=seed, checkpoint_dir="/nonexistent")
    gan = runner.make_gan(m, cfg, arrays=[x1, x2])
    keras.utils.set_random_seed(seed)
    gan.build()
    return gan, (tf.constant(x1), tf.constant(x2))


def run(gan, step, inputs, n=3):
    fn = tf.function(step)
    return [{k: float(v) for k, v in fn(*inputs).items()} for _ in range(n)]


def split_state(gan):
    """(trainable weights, BatchNorm moving averages) by name."""
    nets = gan.generator.variables + gan.discriminator.variables
    moving = {id(v) for layer in gan.generator._flatten_layers() + gan.discriminator._flatten_layers()
              if isinstance(layer, BatchNorm) for v in (layer.moving_mean, layer.moving_variance)}
    train = {v.path: v.numpy() for v in nets if id(v) not in moving}
    avg = {v.path: v.numpy() for v in nets if id(v) in moving}
    return train, avg


def assert_close(a, b, rtol, atol):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol, err_msg=k)


@pytest.mark.parametrize("m", [FAITHFUL, CORRECTED], ids=["faithful", "corrected"])
def test_reusing_g_forward_equals_recomputing_it(m):
    port, x = make(m)
    ref, x_ref = make(m)
    recompute = bench.reference_cogan_step(ref, fused_heads=True)  # the port's step, G run for every update
    for a, b in zip(run(port, port.train_step, x), run(ref, recompute, x_ref)):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-7), k
    (pw, pa), (rw, ra) = split_state(port), split_state(ref)
    assert_close(pw, rw, rtol=1e-6, atol=1e-7)  # in practice bit-identical
    # G's BatchNorm moving averages: the skipped G forward's update is made from the values before and
    # after the D update's one (m1 + k (m1 - m0)) instead of from the batch statistics: rounding only.
    assert_close(pa, ra, rtol=1e-5, atol=1e-6)
    assert int(port.g_opt.iterations) == int(ref.g_opt.iterations) == 6


def g_gradients(gan, fakes, z):
    with tf.GradientTape() as tape:
        fake1, fake2 = fakes(z)
        loss = gan.g_losses(fake1, fake2, training=True)["g_loss"]
    return (fake1, fake2), loss, tape.gradient(loss, gan.g_vars)


def assert_same_gradients(gan, g1, g2, atol=1e-6):
    # Tolerance relative to the largest gradient: the biases before a BatchNorm have a gradient that
    # is zero but for rounding (the BatchNorm subtracts them out again).
    scale = max(float(tf.reduce_max(tf.abs(a))) for a in g1 if a is not None)
    for v, a, b in zip(gan.g_vars, g1, g2):
        if a is None:
            assert b is None, v.path  # the faithful network's dead h0
            continue
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=atol * scale, err_msg=v.path)


def assert_same_losses(steps_a, steps_b):
    """Whole steps: the first step's losses agree to rounding; later ones loosely. Weights are not
    compared element by element, nor later losses tightly: Adam's first updates are about
    lr * sign(gradient), so a gradient that is zero but for rounding (the biases before a BatchNorm)
    or merely tiny moves its weight by +-lr either way, and the runs drift apart: the very same step
    run eagerly and as a graph (the same ops, rounded in another order) differs by up to 1.8e-3 in its
    losses within three steps (``python tools/step_drift.py``). Later steps: 1e-2."""
    for i, (a, b) in enumerate(zip(steps_a, steps_b)):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-5 if i == 0 else 1e-2, abs=1e-6), (i, k)


@pytest.mark.parametrize("m", [FAITHFUL, CORRECTED], ids=["faithful", "corrected"])
def test_fused_heads_equal_the_two_heads(m):
    port, x = make(m)
    ref, x_ref = make(m)
    g = port.generator
    z = tf.random.stateless_normal([16, 100], seed=[1, 2])
    (a1, a2), la, ga = g_gradients(port, lambda z: g(z, training=True), z)
    for subpixel in (False, True):
        (b1, b2), lb, gb = g_gradients(port, lambda z: generate_pair(g, z, training=True, subpixel=subpixel), z)
        # Images in [0, 1]: the two-channel deconv is bit-identical in practice, the sub-pixel
        # convolution sums in another order (differences of ~4e-7).
        np.testing.assert_allclose(a1.numpy(), b1.numpy(), rtol=0, atol=1e-7 if not subpixel else 2e-6)
        np.testing.assert_allclose(a2.numpy(), b2.numpy(), rtol=0, atol=1e-7 if not subpixel else 2e-6)
        assert float(la) == pytest.approx(float(lb), rel=1e-6)
        assert_same_gradients(port, ga, gb, atol=1e-6 if not subpixel else 1e-5)  # (from those images)
    unfused = bench.reference_cogan_step(ref, reuse_g_forward=True)
    assert_same_losses(run(port, port.train_step, x), run(ref, unfused, x_ref))


def test_trunk_once_equals_trunk_per_domain():
    """Same gradients (the shared trunk's is one backprop of the summed heads' gradients instead of two
    backprops added up: rounding only) and the same losses along a few steps."""
    port, x = make(FAITHFUL)
    ref, x_ref = make(FAITHFUL)
    g = port.generator
    z = tf.random.stateless_normal([16, 100], seed=[1, 2])
    _, l1, g1 = g_gradients(port, lambda z: g(z, training=True), z)
    _, l2, g2 = g_gradients(port, lambda z: (g.generate_one(z, 1, training=True),
                                             g.generate_one(z, 2, training=True)), z)
    assert float(l1) == pytest.approx(float(l2), rel=1e-6)
    assert_same_gradients(port, g1, g2)
    # The same layers on both sides (the straightforward step also unfuses them: the lever below).
    trunk_per_domain = bench.reference_cogan_step(ref, trunk_per_domain=True)
    assert_same_losses(run(port, port.train_step, x), run(ref, trunk_per_domain, x_ref))


def rel_max(a, b):
    return float(tf.reduce_max(tf.abs(a - b)) / (tf.reduce_max(tf.abs(b)) + 1e-30))


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
    for training in (True, False, True):
        outs, grads = [], []
        for bn in (fused, plain):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = bn(x, training=training)
                loss = tf.reduce_sum(y * w)
            outs.append(y)
            grads.append(tape.gradient(loss, [x, bn.gamma, bn.beta]))
        assert rel_max(*outs) < 1e-5, training
        for ga, gb in zip(*grads):
            assert rel_max(ga, gb) < 1e-4, training
        assert rel_max(fused.moving_mean, plain.moving_mean) < 1e-5
        assert rel_max(fused.moving_variance, plain.moving_variance) < 1e-5
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
    assert float(dta) == pytest.approx(float(dtb), rel=1e-5)
    assert abs(float(dta)) > 1.0


# Biases right before a BatchNorm with per-channel statistics, which subtracts them out again: their
# gradient is zero but for rounding, and the two BatchNorms round differently. With the original's
# scalar statistics on the dense layers (Q2) only the mean over features of a dense bias is subtracted,
# so those biases get a real gradient and are compared like the other variables.
CONV_PRE_BATCHNORM_BIASES = ("d1_h1_conv/bias", "d2_h1_conv/bias", "g_h2/bias")
DENSE_PRE_BATCHNORM_BIASES = ("d_h2_lin/bias", "g_h0_lin/bias", "g_h1_lin/bias")


def pre_batchnorm_biases(m):
    return CONV_PRE_BATCHNORM_BIASES + (DENSE_PRE_BATCHNORM_BIASES if m.bn_per_feature else ())


def assert_same_gradients_but_pre_batchnorm_biases(variables, g1, g2, biases=CONV_PRE_BATCHNORM_BIASES):
    scale = max(float(tf.reduce_max(tf.abs(a))) for a in g1 if a is not None)
    checked = 0
    for v, a, b in zip(variables, g1, g2):
        if a is None:
            assert b is None, v.path  # the faithful network's dead h0
        elif v.path.endswith(biases):
            assert max(float(tf.reduce_max(tf.abs(a))), float(tf.reduce_max(tf.abs(b)))) < 1e-4 * scale, v.path
        else:
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5 * float(tf.reduce_max(tf.abs(b))),
                                       err_msg=v.path)
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("m", [FAITHFUL, CORRECTED], ids=["faithful", "corrected"])
def test_fused_layers_step_equals_unfused(m):
    """The port's step against the same step with the layers as first written: D's and G's gradients
    of the first update to rounding (but for the biases in front of a BatchNorm, whose gradient is zero
    but for rounding), and the losses along three steps."""
    port, x = make(m)
    ref, x_ref = make(m)
    bench.use_plain_layers(ref)
    z = tf.random.stateless_normal([16, 100], seed=[1, 2])
    x1, x2 = (tf.cast(v, tf.float32) / 255.0 for v in x)
    grads = []
    for gan in (port, ref):
        with tf.GradientTape(persistent=True) as tape:
            fake1, fake2 = gan.generator(z, training=True)
            d_loss = gan.d_losses(x1, x2, fake1, fake2, training=True)["d_loss"]
            g_loss = gan.g_losses(fake1, fake2, training=True)["g_loss"]
        grads.append((d_loss, tape.gradient(d_loss, gan.d_vars), g_loss, tape.gradient(g_loss, gan.g_vars)))
    (da, dga, ga, gga), (db, dgb, gb, ggb) = grads
    assert float(da) == pytest.approx(float(db), rel=1e-6)
    assert float(ga) == pytest.approx(float(gb), rel=1e-6)
    for variables, a, b in ((port.d_vars, dga, dgb), (port.g_vars, gga, ggb)):
        assert_same_gradients_but_pre_batchnorm_biases(variables, a, b, pre_batchnorm_biases(m))
    # Whole steps: loosely. The faithful D (one h0 filter) amplifies rounding: the same unfused step run
    # eagerly and as a graph differs by up to 1.8e-3 in its losses within 3 steps; the whole port step
    # against the one with unfused layers by up to 8e-3 (corrected network: 6e-5 and 2.5e-3;
    # python tools/step_drift.py).
    steps_a, steps_b = run(port, port.train_step, x), run(ref, ref.train_step, x_ref)
    for a, b in zip(steps_a, steps_b):
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=3e-2), k
    for k in ("d_loss", "d1_loss", "d2_loss"):  # the first D update's losses: before any update
        assert steps_a[0][k] == pytest.approx(steps_b[0][k], rel=1e-5), k


@pytest.mark.parametrize("size,c_in,c_out", [(14, 128, 2), (7, 16, 1), (5, 8, 3)])
def test_subpixel_deconv_equals_conv2d_transpose(size, c_in, c_out):
    """The 5x5 stride-2 SAME transposed convolution as conv + depth_to_space: the same outputs to
    rounding at every output phase (odd and even rows and columns, borders included), and the very
    same gradients (its gradient is the transposed convolution's own two ops)."""
    h = tf.random.stateless_normal([4, size, size, c_in], seed=[5, 1])
    kernel = 0.1 * tf.random.stateless_normal([5, 5, c_out, c_in], seed=[5, 2])
    dy = tf.random.stateless_normal([4, 2 * size, 2 * size, c_out], seed=[5, 3])

    def through(f):
        with tf.GradientTape() as tape:
            tape.watch([h, kernel])
            y = f(h, kernel)
        return y, tape.gradient(y, [h, kernel], output_gradients=dy)

    y_ref, g_ref = through(lambda h, k: tf.nn.conv2d_transpose(h, k, [4, 2 * size, 2 * size, c_out], 2, "SAME"))
    for fn in (subpixel_deconv, tf.function(subpixel_deconv)):
        y, g = through(fn)
        assert y.shape == y_ref.shape
        assert rel_max(y, y_ref) < 1e-5
        for phase in ((0, 0), (0, 1), (1, 0), (1, 1)):  # each phase is computed by its own taps
            assert rel_max(y[:, phase[0]::2, phase[1]::2], y_ref[:, phase[0]::2, phase[1]::2]) < 1e-5
        for a, b in zip(g, g_ref):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6 * float(tf.reduce_max(tf.abs(b))))
