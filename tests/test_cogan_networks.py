"""cogan_tf/cogan_networks.py: CoGAN's coupled generator and discriminator, layer by layer as the original's
(docs/ORIGINAL.md §1.2, §1.3, its quirks included: G's h1 fed from z, D's h0 with one filter) and as --corrected
builds them, their parameters counted by hand, the dense layers' BatchNorm with scalar statistics (Q2) unless
--bn_per_feature, and weight sharing by layer instance: a shared variable is one object that gets both domains'
gradients, and the trunk run once gives what the two generators give."""

import numpy as np
import tensorflow as tf

from cogan_tf import config as C
from cogan_tf.cogan_networks import build_cogan, unique_variables
from tests.conftest import CORRECTED, FAITHFUL, count_params


def test_generator_layer_shapes_faithful():
    g, _ = build_cogan(FAITHFUL)
    z = tf.random.normal([4, 100])
    assert g.h1(z).shape == (4, 7 * 7 * 128)  # fed from z, not h0 (quirk)
    h = g.trunk(z, training=True)
    assert h.shape == (4, 14, 14, 128)
    top, bot = g(z, training=True)
    assert top.shape == bot.shape == (4, 28, 28, 1)
    assert float(tf.reduce_min(top)) >= 0 and float(tf.reduce_max(top)) <= 1  # sigmoid heads
    assert g.h0.kernel.shape == (100, 1024)


def test_discriminator_layer_shapes():
    _, d = build_cogan(FAITHFUL)
    x = tf.random.uniform([4, 28, 28, 1])
    h0 = d.stem1.h0(x)
    assert h0.shape == (4, 14, 14, 1)  # quirk: c_dim filters
    assert d.stem1.h1(h0).shape == (4, 7, 7, 64)
    assert d.h2.kernel.shape == (3136, 1024) and d.h3.kernel.shape == (1024, 1)
    l1, l2 = d((x, x), training=True)
    assert l1.shape == l2.shape == (4, 1)
    _, dc = build_cogan(CORRECTED)
    assert dc.stem2.h0(x).shape == (4, 14, 14, 64)


count = count_params


def test_parameter_counts_by_hand():
    # Generator (docs/ORIGINAL.md §1.2 table): Linear = in*out + out; Deconv 5x5 = 25*in*out + out;
    # BatchNorm = 2*C trainable (gamma, beta) + 2*C moving averages; scalar PReLU = 1.
    h0 = 100 * 1024 + 1024 + 2 * 1024 + 1
    h1_faithful = 100 * 6272 + 6272 + 2 * 6272 + 1
    h1_corrected = 1024 * 6272 + 6272 + 2 * 6272 + 1
    h2 = 25 * 128 * 128 + 128 + 2 * 128 + 1
    h3 = 25 * 128 * 1 + 1
    g, d = build_cogan(FAITHFUL)
    assert count(g.trainable_variables) == h0 + h1_faithful + h2 + 2 * h3 == 1167877
    assert count(g.non_trainable_variables) == 2 * (1024 + 6272 + 128)
    assert g.count_params() == 1167877 + 2 * (1024 + 6272 + 128)
    # Discriminator: Conv 5x5 = 25*in*out + out.
    d_h0 = 25 * 1 * 1 + 1 + 1
    d_h1 = 25 * 1 * 64 + 64 + 2 * 64 + 1
    d_h2 = 3136 * 1024 + 1024 + 2 * 1024 + 1
    d_h3 = 1024 + 1
    assert count(d.trainable_variables) == 2 * (d_h0 + d_h1) + d_h2 + d_h3 == 3219002
    assert count(d.non_trainable_variables) == 2 * (2 * 64) + 2 * 1024
    gc, dc = build_cogan(CORRECTED)
    assert count(gc.trainable_variables) == h0 + h1_corrected + h2 + 2 * h3
    d_h0c = 25 * 1 * 64 + 64 + 1
    d_h1c = 25 * 64 * 64 + 64 + 2 * 64 + 1
    assert count(dc.trainable_variables) == 2 * (d_h0c + d_h1c) + d_h2 + d_h3


def test_sharing_is_by_object_and_gets_both_domains_gradients():
    g, d = build_cogan(FAITHFUL)
    g_vars, d_vars = g.trainable_variables, d.trainable_variables
    assert len({id(v) for v in g_vars}) == len(g_vars) == len(unique_variables(g_vars))
    assert len({id(v) for v in d_vars}) == len(d_vars)
    shared_g = [g.h1.kernel, g.h2.kernel, g.bn2.gamma, g.act2.t]
    shared_d = [d.h2.kernel, d.h3.kernel, d.bn2.gamma, d.act2.t]
    for v in shared_g:
        assert sum(v is w for w in g_vars) == 1
    for v in shared_d:
        assert sum(v is w for w in d_vars) == 1
    z = tf.random.normal([8, 100])
    x = tf.random.uniform([8, 28, 28, 1])
    # Gradient of each domain's loss alone reaches the shared variables.
    for dom in (0, 1):
        with tf.GradientTape(persistent=True) as tape:
            out = g(z, training=True)[dom]
            gl = tf.reduce_mean(out)
            dl = tf.reduce_mean(d.logits(x, dom + 1, training=True))
        for v in shared_g:
            grad = tape.gradient(gl, v)
            assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0
        for v in shared_d:
            grad = tape.gradient(dl, v)
            assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0
        other_head = (g.head2 if dom == 0 else g.head1).kernel
        assert tape.gradient(gl, other_head) is None
        # h0 is dead in the faithful generator.
        assert tape.gradient(gl, g.h0.kernel) is None


def test_shared_trunk_once_equals_two_separate_generators():
    g, _ = build_cogan(FAITHFUL)
    z = tf.random.normal([16, 100])
    top, bot = g(z, training=False)
    np.testing.assert_allclose(top.numpy(), g.generate_one(z, 1).numpy(), atol=1e-6)
    np.testing.assert_allclose(bot.numpy(), g.generate_one(z, 2).numpy(), atol=1e-6)


def test_dense_layers_get_scalar_statistics_by_default_and_per_feature_with_the_flag():
    for per_feature in (False, True):
        g, d = build_cogan(C.CoganConfig(bn_per_feature=per_feature))
        for bn in (g.bn0, g.bn1, d.bn2, g.bn2, d.stem1.bn1, d.stem2.bn1):
            assert bn.scalar_2d_stats is (not per_feature)
