"""The speed levers kept in the CoGAN step change no result beyond float rounding.

* the shared trunk computed once for both domains, against the straightforward step (trunk per domain);
* the first G update reusing the D update's G forward pass, against the step that recomputes it;
* both output heads as one two-channel deconv (``cogan.generate_pair``), against the two heads.
The references are the benchmark's own steps (cogan_tf/bench.py), run from the same initial weights,
data and z as the port's step.
"""

import numpy as np
import pytest
import tensorflow as tf
import keras

from cogan_tf import bench, config as C, runner
from cogan_tf.cogan import generate_pair
from cogan_tf.layers import BatchNorm

FAITHFUL = C.CoganConfig()
CORRECTED = C.CoganConfig(h0_feeds_h1=True, d_h0_filters=64, bn_batch_stats_at_inference=False)


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


def assert_same_gradients(gan, g1, g2):
    # Tolerance relative to the largest gradient: the biases before a BatchNorm have a gradient that
    # is zero but for rounding (the BatchNorm subtracts them out again).
    scale = max(float(tf.reduce_max(tf.abs(a))) for a in g1 if a is not None)
    for v, a, b in zip(gan.g_vars, g1, g2):
        if a is None:
            assert b is None, v.path  # the faithful network's dead h0
            continue
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6 * scale, err_msg=v.path)


def assert_same_losses(steps_a, steps_b):
    """Whole steps: the first step's losses agree to rounding; later ones loosely. Weights are not
    compared element by element, nor later losses tightly: Adam's first updates are about
    lr * sign(gradient), so a gradient that is zero but for rounding (the biases before a BatchNorm)
    or merely tiny moves its weight by +-lr either way, and the runs drift apart by ~1e-4."""
    for i, (a, b) in enumerate(zip(steps_a, steps_b)):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-5 if i == 0 else 2e-3, abs=1e-6), (i, k)


@pytest.mark.parametrize("m", [FAITHFUL, CORRECTED], ids=["faithful", "corrected"])
def test_fused_heads_equal_the_two_heads(m):
    port, x = make(m)
    ref, x_ref = make(m)
    g = port.generator
    z = tf.random.stateless_normal([16, 100], seed=[1, 2])
    (a1, a2), la, ga = g_gradients(port, lambda z: g(z, training=True), z)
    (b1, b2), lb, gb = g_gradients(port, lambda z: generate_pair(g, z, training=True), z)
    np.testing.assert_allclose(a1.numpy(), b1.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a2.numpy(), b2.numpy(), rtol=1e-6, atol=1e-7)
    assert float(la) == pytest.approx(float(lb), rel=1e-6)
    assert_same_gradients(port, ga, gb)
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
    assert_same_losses(run(port, port.train_step, x), run(ref, bench.straightforward_cogan_step(ref), x_ref))
