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
from cogan_tf.layers import Dense
from tests.conftest import FAITHFUL, assert_lever_changes_nothing, make_cogan as make
from tests.tolerance import sum_rounding


def op_counts(gan, x):
    """How many ops of each type the training step has (its nested functions' included)."""
    graph = tf.function(gan.train_step).get_concrete_function(*x).graph.as_graph_def()
    return collections.Counter([n.op for n in graph.node] + [n.op for f in graph.library.function for n in f.node_def])


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
