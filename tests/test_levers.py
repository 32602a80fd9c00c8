"""cogan_tf/levers.py: each lever says on which device it pays, and each model's GAN sets its levers by the device
it trains on (``use_device_levers``, which cogan_tf.gan.build_gan calls): the CoGAN's, the vanilla GAN's dense
input gradient from levers.DENSE_BMM_MIN_WEIGHTS on (with the gradients of the plain layers), the ClusterGAN paper
networks'. That each lever computes what the plain step computes: tests/test_cogan_fast.py, test_layers.py,
test_xla_fusions.py, test_clustergan_networks.py."""

import numpy as np
import tensorflow as tf
import keras

from cogan_tf import config as C
from cogan_tf.clustergan_networks import LeakyReLU
from cogan_tf.layers import BatchNorm, Conv, Dense  # the ClusterGAN paper networks' Dense too
from tests.conftest import FAITHFUL, make_cogan as make
from tests.test_clustergan import built_gan
from tests.tolerance import sum_rounding

PAPER = C.clustergan_config("paper")


def test_the_device_levers_follow_the_device():
    from cogan_tf import levers

    gan, _ = make(FAITHFUL)
    layers = [layer for model in (gan.generator, gan.discriminator) for layer in model._flatten_layers()]
    bns = [layer for layer in layers if isinstance(layer, BatchNorm)]
    dense = [layer for layer in layers if isinstance(layer, Dense)]
    convs = [layer for layer in layers if isinstance(layer, Conv)]
    assert len(bns) == 6 and len(dense) == 4 and len(convs) == 4  # g_bn0 and g_h0 too (the dead h0)
    for kind, expected in (("gpu", False), ("cpu", True)):
        gan.use_device_levers(kind)
        assert gan.subpixel_heads is expected
        assert {b.fused_float32_input for b in bns} == {expected}
        assert {d.written_gradient for d in dense} == {c.subpixel_input_gradient for c in convs} == {expected}
        assert {b.written_scalar_stats for b in bns} == {True}  # both devices
    assert {lever.device for lever in levers.LEVERS} == {"cpu", "both"}  # each lever says where it pays
    assert levers.on("reuse_g_forward", "gpu") and not levers.on("dense_bmm_gradient", "gpu")


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


def test_on_a_gpu_the_dense_gradient_is_cublas_own_and_the_leaky_relu_stays_written(tmp_path):
    """The per-device levers (cogan_tf/levers.py): the BatchMatMulV2 input gradient is for oneDNN; a GPU
    build takes Keras's own (the combination the test above proves equal), a CPU build the written one."""
    gan = built_gan(tmp_path, PAPER)
    layers = [layer for net in (gan.generator, gan.discriminator, gan.encoder) for layer in net._flatten_layers()]
    for kind, dense in (("gpu", False), ("cpu", True)):
        gan.use_device_levers(kind)
        assert {layer.written_gradient for layer in layers if isinstance(layer, Dense)} == {dense}
        assert {layer.written_gradient for layer in layers if isinstance(layer, LeakyReLU)} == {True}
