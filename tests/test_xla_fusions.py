"""cogan_tf/xla_fusions.py: the CoGAN step's small XLA clusters change no result beyond float rounding: the
PReLU (and the paper network's per-channel one), and Q2's scalar-statistics BatchNorm fused with the PReLU after
it, each against the written gradients they compile (cogan_tf/layers.py, paper_layers.py), as layers and in the
faithful network's step (the paper network's step: tests/test_cogan_paper.py)."""

import re

import numpy as np
import pytest
import tensorflow as tf

from cogan_tf import cogan_fast, xla_fusions
from cogan_tf.layers import BatchNorm, ScalarPReLU, batchnorm_prelu, scalar_batch_norm, scalar_prelu
from cogan_tf.paper_layers import channel_prelu as paper_channel_prelu
from tests.conftest import FAITHFUL, assert_lever_changes_nothing, make_cogan as make
from tests.tolerance import call_and_differentiate, outputs_and_gradients, rel_max, sum_rounding


@pytest.mark.parametrize("t", [0.3, 1.7, -0.5, 0.0])
def test_xla_prelu_equals_the_written_gradient(t):
    """Values and input gradients identical (the same selects and products), ties (x = 0) included; the
    slope's gradient, a sum over all elements, to its rounding."""
    x = tf.concat([tf.random.stateless_normal([4, 999], seed=[1, 1]), tf.zeros([4, 3])], axis=1)
    w = tf.random.stateless_normal([4, 1002], seed=[1, 2])
    (ya, dxa, dta), (yb, dxb, dtb) = call_and_differentiate((xla_fusions.prelu, scalar_prelu), [x, tf.constant(t)], w)
    np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    np.testing.assert_array_equal(dxa.numpy(), dxb.numpy())
    scale = float(tf.reduce_sum(tf.abs(x * w)))
    assert abs(float(dta) - float(dtb)) <= sum_rounding(x.shape.num_elements(), scale)
    assert t == 1.7 or abs(float(dta)) > 1.0  # a real gradient (for t > 1 the positive side has the slope)


def test_xla_channel_prelu_equals_the_written_gradient():
    """The paper network's per-channel PReLU, Caffe's gradient (the slope where x <= 0, ties included): values
    and input gradients identical, the slopes' gradients (sums over the batch) to their rounding."""
    x = tf.concat([tf.random.stateless_normal([63, 5, 16], seed=[2, 1]), tf.zeros([1, 5, 16])], axis=0)
    w = tf.random.stateless_normal([64, 5, 16], seed=[2, 2])
    a = tf.random.stateless_uniform([16], seed=[2, 3], minval=-0.5, maxval=1.5)
    (ya, dxa, daa), (yb, dxb, dab) = call_and_differentiate((xla_fusions.channel_prelu, paper_channel_prelu), [x, a], w)
    np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    np.testing.assert_array_equal(dxa.numpy(), dxb.numpy())
    mass = float(tf.reduce_max(tf.reduce_sum(tf.abs(x * w), [0, 1])))
    np.testing.assert_allclose(daa.numpy(), dab.numpy(), rtol=0, atol=sum_rounding(64 * 5, mass))
    assert float(tf.reduce_min(tf.abs(daa))) > 0.0


@pytest.mark.parametrize("training", [True, False], ids=["training", "batch_stats_at_inference"])
def test_xla_batchnorm_prelu_equals_the_two_layers(training):
    """Q2's BatchNorm of a (16, 6,272) matrix and a PReLU (slope 0.2) after it, fused in XLA and as the two
    layers with their written gradients: outputs, the gradients of x, gamma, beta and the slope, and the
    moving averages, by the rule of the scalar statistics (tests/test_layers.py)."""
    shape = (16, 6272)
    pairs = []
    for fused in (True, False):
        bn, act = BatchNorm(scalar_2d_stats=True), ScalarPReLU()
        bn.xla_prelu_fusion = fused
        bn.build(shape)
        act.build(shape)
        bn.gamma.assign(tf.random.stateless_normal([shape[1]], seed=[0, 1]) * 0.3 + 1.0)
        bn.beta.assign(tf.random.stateless_normal([shape[1]], seed=[0, 2]))
        act.t.assign(0.2)
        pairs.append((bn, act))
    x = (3.0 * tf.random.stateless_normal(shape, seed=[0, 3]) * tf.random.stateless_uniform([shape[1]], [0, 5])
         + tf.random.stateless_normal([shape[1]], seed=[0, 6]) + 0.5)
    w = tf.random.stateless_normal(shape, seed=[0, 4])

    class Both:  # the two layers as one callable, for outputs_and_gradients
        def __init__(self, bn, act):
            self.bn, self.act = bn, act

        def __call__(self, x, training):
            return batchnorm_prelu(self.bn, self.act, x, training)

    m = int(np.prod(shape))
    outs, grads = outputs_and_gradients([Both(*p) for p in pairs], x, w, training,
                                        lambda b: [b.bn.gamma, b.bn.beta, b.act.t])
    assert rel_max(*outs) < sum_rounding(m)
    # A pre-activation within rounding of the kink can land on either side of it in the two computations,
    # which changes its own input gradient by a whole term (test_cogan_fast.test_fused_layers_step_equals_unfused):
    # x's gradient is compared away from the kink, the sums (gamma, beta, slope) everywhere.
    z = scalar_batch_norm(x, tf.convert_to_tensor(pairs[0][0].gamma), tf.convert_to_tensor(pairs[0][0].beta), 1e-5)[0]
    away = tf.abs(z) > 1e-3
    assert float(tf.reduce_mean(tf.cast(away, tf.float32))) > 0.99
    (dxa, *sums_a), (dxb, *sums_b) = grads
    assert rel_max(tf.where(away, dxa, 0.0), tf.where(away, dxb, 0.0)) < sum_rounding(m, depth=2)
    for a, b in zip(sums_a, sums_b):
        assert rel_max(a, b) < sum_rounding(m, depth=2)
    for name in ("moving_mean", "moving_variance"):
        assert rel_max(getattr(pairs[0][0], name), getattr(pairs[1][0], name)) < sum_rounding(m)
    moved = float(tf.reduce_max(tf.abs(pairs[0][0].moving_mean)))
    assert moved > 0.01 if training else moved == 0.0


@pytest.mark.parametrize("lever", ["xla_prelu", "xla_batchnorm_prelu"])
def test_the_step_equals_the_step_without_the_cluster(lever):
    """The faithful network's first update with the cluster (the port's step) and without it, by the networks'
    rule (tests/tolerance.py), PReLU slopes at 1 (test_cogan_fast.test_fused_layers_step_equals_unfused); and the
    step has the XLA-compiled functions only with it."""
    port, ref, x = assert_lever_changes_nothing(lever)
    a, b = xla_calls(port, x), xla_calls(ref, x)
    # Without the PReLU cluster no call; without the BatchNorm one, the PReLU's calls only (its own are fewer:
    # one function each way for two layers).
    assert (b == {} if lever == "xla_prelu" else set(b) == {"prelu"}) and "prelu" in a
    assert lever == "xla_prelu" or "bn_prelu" in a


OUTPUTS = {"prelu": {"forward": 2, "backward": 2}, "bn_prelu": {"forward": 4, "backward": 4}}


def xla_calls(gan, x) -> dict:
    """The calls of functions XLA compiles in the step's graph: how many, by the function's name in
    cogan_tf/xla_fusions.py (without "_forward", "_backward"); and that each call outputs only what the
    function returns (a tape that records a compiled call has it return its intermediate values as well)."""
    graph = tf.function(gan.train_step).get_concrete_function(*x).graph.as_graph_def()
    library = {f.signature.name: f for f in graph.library.function}
    calls = {}
    for node in graph.node:
        f = library.get(node.attr["f"].func.name) if node.op.endswith("PartitionedCall") else None
        if f is not None and f.attr["_XlaMustCompile"].b:
            name = re.fullmatch(r"__inference__(\w+)_(forward|backward)_\d+", f.signature.name)
            assert name is not None, f.signature.name  # not a tape's "__forward_" variant
            assert len(f.signature.output_arg) == OUTPUTS[name.group(1)][name.group(2)], f.signature.name
            calls[name.group(1)] = calls.get(name.group(1), 0) + 1
    return calls


def test_the_clusters_are_off_on_a_gpu_and_in_the_plain_layers():
    gan, x = make(FAITHFUL)
    gan.use_device_levers("gpu")
    assert xla_calls(gan, x) == {}
    plain, _ = make(FAITHFUL)
    assert xla_calls(cogan_fast.use_plain_layers(plain), x) == {}
