"""cogan_tf/cogan_fast.py: the speed levers kept in the CoGAN step change no result beyond float rounding.

* the shared trunk computed once for both domains, against the straightforward step (trunk per domain);
* the first G update reusing the D update's G forward pass, against the step that recomputes it;
* both output heads as one two-channel deconv (``cogan_fast.generate_pair``), against the two heads, and
  that deconv as a sub-pixel convolution (``cogan_fast.subpixel_deconv``) against ``conv2d_transpose``;
* BatchNorm as TensorFlow's fused op, the PReLU with a written gradient and the written gradients of
  cogan_tf/layers.py together (each layer alone: tests/test_layers.py), against Keras's BatchNormalization,
  autodiff of ``maximum`` and TensorFlow's own gradients (the layers as first written); and each of the three
  written gradients (the dense layers' input gradient as a BatchMatMulV2, Q2's scalar-statistics BatchNorm, D's
  stem convolutions' input gradient as a sub-pixel convolution) against the same step with that lever alone off
  (``cogan_fast.use_layer_levers``), with the ops each one puts in the step;
* on a GPU (cogan_tf/levers.py), the CPU-only levers off: the same losses.
The references are the plain step with each lever off (cogan_fast.reference_cogan_step, also the
benchmark's reference rows), run from the same initial weights,
data and z as the port's step.
"""

import collections

import numpy as np
import pytest
import tensorflow as tf

from cogan_tf import cogan_fast
from cogan_tf.cogan_fast import generate_pair, subpixel_deconv
from cogan_tf.layers import BatchNorm, ScalarPReLU
from tests.conftest import (CORRECTED, FAITHFUL, assert_lever_changes_nothing, assert_same_first_update,
                            first_update_gradients, layers_by_name, make_cogan as make, pre_batchnorm_biases,
                            set_prelu_slopes)
from tests.tolerance import (COGAN_RTOL, EPS, K, assert_cancelled_gradient, assert_gradients_close, rel_max,
                             sum_rounding)


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


# The faithful case repeats the corrected one's coverage (the corrected network also replays the moving
# average of g_bn0, which the faithful network never uses): slow.
@pytest.mark.parametrize("m", [pytest.param(FAITHFUL, marks=pytest.mark.slow), CORRECTED], ids=["faithful", "corrected"])
def test_reusing_g_forward_equals_recomputing_it(m):
    port, x = make(m)
    ref, x_ref = make(m)
    recompute = cogan_fast.reference_cogan_step(ref, fused_heads=True)  # the port's step, G run for every update
    for a, b in zip(run(port, port.train_step, x), run(ref, recompute, x_ref)):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=COGAN_RTOL), k
    (pw, pa), (rw, ra) = split_state(port), split_state(ref)
    # The reused forward pass is the recomputed one (the same ops on the same inputs), so the gradients,
    # and Adam's elementwise arithmetic on them, are equal: the weights agree to Adam's own roundings.
    assert_close(pw, rw, rtol=K * EPS, atol=0)
    # G's BatchNorm moving averages: the skipped G forward's update is made from the values before and
    # after the D update's one (m1 + k (m1 - m0)) instead of from the batch statistics: three roundings
    # of values of the averages' size per update, three updates.
    for k in pa:
        np.testing.assert_allclose(pa[k], ra[k], rtol=0, atol=K * 9 * EPS * np.abs(ra[k]).max(), err_msg=k)
    assert int(port.g_opt.iterations) == int(ref.g_opt.iterations) == 6


def g_gradients(gan, fakes, z):
    with tf.GradientTape() as tape:
        fake1, fake2 = fakes(z)
        loss = gan.g_losses(fake1, fake2, training=True)["g_loss"]
    return (fake1, fake2), loss, tape.gradient(loss, gan.g_vars)


# Whole steps drift apart from rounding alone (tools/step_drift.py says why). Largest relative
# difference of any loss within three steps, over AVX-512 and AVX2 (ONEDNN_MAX_CPU_ISA=AVX2) kernels,
# docs/PERFORMANCE.md: the port's step against the two-deconv heads or the trunk per domain 3.1e-3,
# against the plain layers 1.4e-2; the very same step eagerly and as a graph 5.2e-3. The tolerances are
# about three times the largest.
LATER_STEPS_LEVERS = 1e-2
LATER_STEPS_PLAIN_LAYERS = 5e-2


def assert_same_losses(steps_a, steps_b):
    """Whole steps: the first step's losses agree to rounding (the networks' rule, tests/tolerance.py);
    later ones loosely (LATER_STEPS_LEVERS). Weights are not compared element by element after Adam's
    updates: its first updates are about lr * sign(gradient), so a gradient that is zero but for rounding
    (the biases before a BatchNorm) moves its weight by +-lr either way."""
    for i, (a, b) in enumerate(zip(steps_a, steps_b)):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=COGAN_RTOL if i == 0 else LATER_STEPS_LEVERS), (i, k)


def head_terms(g, z):
    """The largest sum of |terms| behind any output logit of either head: the deconvolution of the
    trunk's |activations| with the heads' |kernels| (plus |bias|), the bound on every partial sum."""
    h = tf.abs(g.trunk(z, training=True))
    out = 0.0
    for head in (g.head1, g.head2):
        k = tf.abs(head.kernel)
        mass = tf.nn.conv2d_transpose(h, k, [h.shape[0], 2 * h.shape[1], 2 * h.shape[2], k.shape[2]], 2, "SAME")
        out = max(out, float(tf.reduce_max(mass + tf.abs(head.bias))))
    return out


def assert_same_images(a, b, g, z):
    """G's images, sigmoid(logit) with each logit a sum of up to 9 taps x 128 channels of the deconv
    (stride 2: 3 x 3 of the 5 x 5 taps reach an output pixel): the logits' rounding (tests/tolerance.py)
    times the sigmoid's slope, at most 1/4, plus the sigmoid's own roundings of a value <= 1."""
    tol = 0.25 * sum_rounding(9 * 128, head_terms(g, z)) + K * EPS
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=tol)


# The heads are the same layers in both networks: the corrected case repeats the faithful one (slow).
@pytest.mark.parametrize("m", [FAITHFUL, pytest.param(CORRECTED, marks=pytest.mark.slow)], ids=["faithful", "corrected"])
def test_fused_heads_equal_the_two_heads(m):
    port, x = make(m)
    ref, x_ref = make(m)
    g = port.generator
    z = tf.random.stateless_normal([16, 100], seed=[1, 2])
    (a1, a2), la, ga = g_gradients(port, lambda z: g(z, training=True), z)
    for subpixel in (False, True):
        (b1, b2), lb, gb = g_gradients(port, lambda z: generate_pair(g, z, training=True, subpixel=subpixel), z)
        # The two-channel deconv sums each output channel's terms as the one-channel ones do (equal in
        # practice on one machine, an ulp apart on another); the sub-pixel convolution sums them in
        # another order (~4e-7 apart here).
        assert_same_images(a1, b1, g, z)
        assert_same_images(a2, b2, g, z)
        assert float(la) == pytest.approx(float(lb), rel=COGAN_RTOL)
        assert assert_gradients_close(port.g_vars, ga, gb) >= 10
    unfused = cogan_fast.reference_cogan_step(ref, reuse_g_forward=True)
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
    assert float(l1) == pytest.approx(float(l2), rel=COGAN_RTOL)
    assert assert_gradients_close(port.g_vars, g1, g2) >= 10
    # The same layers on both sides (the straightforward step also unfuses them: the lever below).
    trunk_per_domain = cogan_fast.reference_cogan_step(ref, trunk_per_domain=True)
    assert_same_losses(run(port, port.train_step, x), run(ref, trunk_per_domain, x_ref))


@pytest.mark.parametrize("m", [FAITHFUL, CORRECTED], ids=["faithful", "corrected"])
def test_fused_layers_step_equals_unfused(m):
    """The port's step against the same step with the layers as first written: D's and G's gradients
    of the first update to rounding (the biases in front of a BatchNorm, whose gradient is zero but for
    rounding, against their own bound), and the losses along three steps.

    The gradients are compared with every PReLU slope at 1, where the networks are smooth. At the
    real slopes a pre-activation within rounding of 0 can land on the other side of the PReLU's kink in
    one computation and not in the other; that changes its local slope from 1 to t, and the gradient of
    the weights below it by one whole term, an O(1) difference that no rounding tolerance can hold (seen
    under AVX2 for 20 of the 1,600 elements of the corrected D's h0 kernel, all in one channel). It is
    a property of piecewise-linear networks, not of the levers; the written PReLU gradient, ties included,
    is compared with autodiff at real slopes in tests/test_layers.py (test_prelu_written_gradient_equals_autodiff)."""
    port, x = make(m)
    ref, x_ref = make(m)
    cogan_fast.use_plain_layers(ref)
    z = tf.random.stateless_normal([16, 100], seed=[1, 2])
    slopes = [layer.t.numpy() for layer in layers_by_name(port).values() if isinstance(layer, ScalarPReLU)]
    for gan in (port, ref):
        set_prelu_slopes(gan, 1.0)
    assert_same_first_update(port, ref, x, z, pre_batchnorm_biases(m))
    for gan in (port, ref):
        for layer, t in zip([la for la in layers_by_name(gan).values() if isinstance(la, ScalarPReLU)], slopes):
            layer.t.assign(t)
    # Whole steps at the real slopes: loosely (LATER_STEPS_PLAIN_LAYERS: the faithful D, with one h0
    # filter, amplifies rounding most).
    steps_a, steps_b = run(port, port.train_step, x), run(ref, ref.train_step, x_ref)
    for a, b in zip(steps_a, steps_b):
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=LATER_STEPS_PLAIN_LAYERS), k
    for k in ("d_loss", "d1_loss", "d2_loss"):  # the first D update's losses: before any update
        assert steps_a[0][k] == pytest.approx(steps_b[0][k], rel=COGAN_RTOL), k


def test_the_tolerances_catch_a_one_term_change():
    """The rules above fail for a real difference, however small next to the network: one tap of a
    head's 5 x 5 kernel left out of the sub-pixel convolution; BatchNorm's epsilon, one term of its
    normalisation, at 1e-3 instead of 1e-5 in the plain layers; and the rounding bound of a cancelled
    bias applied to a bias whose gradient is real (D's h0, followed by a PReLU, not a BatchNorm)."""
    port, x = make(CORRECTED)
    g = port.generator
    z = tf.random.stateless_normal([16, 100], seed=[1, 2])
    a1, _ = g(z, training=True)
    kernel = g.head1.kernel
    one_tap_less = tf.tensor_scatter_nd_update(kernel, [[2, 2, 0, 7]], [0.0])
    h = g.trunk(z, training=True)
    b1 = tf.sigmoid(subpixel_deconv(h, one_tap_less) + g.head1.bias)
    with pytest.raises(AssertionError):
        assert_same_images(a1, b1, g, z)

    ref, _ = make(CORRECTED)
    cogan_fast.use_plain_layers(ref)
    for layer in layers_by_name(ref).values():
        if isinstance(layer, BatchNorm):
            layer.epsilon = 1e-3
    for gan in (port, ref):
        set_prelu_slopes(gan, 1.0)
    with pytest.raises(AssertionError):
        assert_same_first_update(port, ref, x, z, pre_batchnorm_biases(CORRECTED))

    (_, dg, _, _), deltas = first_update_gradients(port, x, z, record=["d1_h0_prelu"])
    grad = next(gr for v, gr in zip(port.d_vars, dg) if v.path.endswith("d1_h0_conv/bias"))
    with pytest.raises(AssertionError):
        assert_cancelled_gradient(grad, deltas["d1_h0_prelu"][0])


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
    tol = sum_rounding(9 * c_in)  # an output sums at most 3 x 3 taps of c_in channels, in another order
    for fn in (subpixel_deconv, tf.function(subpixel_deconv)):
        y, g = through(fn)
        assert y.shape == y_ref.shape
        assert rel_max(y, y_ref) < tol
        for phase in ((0, 0), (0, 1), (1, 0), (1, 1)):  # each phase is computed by its own taps
            assert rel_max(y[:, phase[0]::2, phase[1]::2], y_ref[:, phase[0]::2, phase[1]::2]) < tol
        for a, b in zip(g, g_ref):  # the same two ops on the same inputs: equal but for a few ulps
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=K * EPS, atol=K * EPS * float(tf.reduce_max(tf.abs(b))))


def op_types(gan, x):
    """The op types of ``gan``'s training step (its nested functions' included)."""
    graph = tf.function(gan.train_step).get_concrete_function(*x).graph.as_graph_def()
    return {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}


@pytest.mark.parametrize("m", [FAITHFUL, pytest.param(CORRECTED, marks=pytest.mark.slow)], ids=["faithful", "corrected"])
def test_the_gpu_levers_equal_the_plain_step(m):
    """On a GPU the CPU-only levers are off (cogan_tf/levers.py): the heads as cuDNN's transposed
    convolution, not the sub-pixel one, and Q2's scalar statistics as plain moments, not a fused op over one
    channel. That step, run here, against the port's step with two one-channel heads: the same losses."""
    port, x = make(m)
    port.use_device_levers("gpu")
    ref, x_ref = make(m)
    cpu = op_types(ref, x_ref)
    gpu = op_types(port, x)
    assert "DepthToSpace" in cpu and "DepthToSpace" not in gpu and "Conv2DBackpropInput" in gpu
    assert_same_losses(run(port, port.train_step, x), run(ref, cogan_fast.reference_cogan_step(
        ref, reuse_g_forward=True), x_ref))


def op_counts(gan, x):
    """How many ops of each type the training step has (its nested functions' included)."""
    graph = tf.function(gan.train_step).get_concrete_function(*x).graph.as_graph_def()
    return collections.Counter([n.op for n in graph.node] + [n.op for f in graph.library.function for n in f.node_def])


@pytest.mark.parametrize("lever", ["dense_bmm_gradient", "written_scalar_batchnorm", "subpixel_stem_gradient"])
def test_the_step_equals_the_step_without_the_lever(lever):
    """The faithful network's first update, D's and G's losses and gradients, with the lever on (the port's
    step) and off, from the same weights, data and z, by the networks' rule (tests/tolerance.py), with the
    PReLU slopes at 1 (test_fused_layers_step_equals_unfused says why)."""
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
