"""cogan_tf/paper_networks.py: the CoGAN paper's digit network as the Caffe model has it (docs/ORIGINAL.md §5.4:
shapes, parameters counted by hand), what the two domains share for every sharing setting, the conditional GAN told
the domain by one bit (§5.6), and the initial weights: Caffe's MSRA ones with its multipliers, or the PyTorch
version's (--paper_init), and why the choice matters (Caffe's saturate most of G's first images)."""

import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf
import keras

from cogan_tf import config as C
from cogan_tf.paper_networks import build_paper_networks, caffe_multipliers, sharing
from tests.conftest import count_params

PAPER = C.cogan_config("paper")
CONDITIONAL = C.cogan_config("conditional")


def shapes(model):
    return {v.path.split("/", 1)[1]: tuple(v.shape) for v in model.variables}


def test_paper_network_shapes_as_the_caffe_model():
    """Table 1 / the Caffe model: G 100 -> 1024x4x4 -> 512x7x7 -> 256x13x13 -> 128x25x25 -> 1x28x28; D 20 and 50
    5x5 convolutions with 2x2 max-pools (28 -> 24 -> 12 -> 8 -> 4), dense 800 -> 500 -> 2. No bias before a
    BatchNorm (it would be subtracted); BatchNorm has a bias (Caffe's Bias layer), no scale."""
    g, d = build_paper_networks(PAPER)
    gs = shapes(g)
    assert {k: v for k, v in gs.items() if k.endswith(("kernel", "bias", "/a", "beta"))} == {
        "g_l0/dense/kernel": (100, 16384), "g_l0/bn/beta": (1024,), "g_l0/prelu/a": (1024,),
        "g_l1/deconv/kernel": (3, 3, 512, 1024), "g_l1/bn/beta": (512,), "g_l1/prelu/a": (512,),
        "g_l2/deconv/kernel": (3, 3, 256, 512), "g_l2/bn/beta": (256,), "g_l2/prelu/a": (256,),
        "g_l3/deconv/kernel": (3, 3, 128, 256), "g_l3/bn/beta": (128,), "g_l3/prelu/a": (128,),
        "g1_l4/deconv/kernel": (6, 6, 1, 128), "g1_l4/deconv/bias": (1,),
        "g2_l4/deconv/kernel": (6, 6, 1, 128), "g2_l4/deconv/bias": (1,)}
    assert shapes(d) == {
        "d1_l0/conv/kernel": (5, 5, 1, 20), "d1_l0/conv/bias": (20,), "d2_l0/conv/kernel": (5, 5, 1, 20),
        "d2_l0/conv/bias": (20,), "d_l1/conv/kernel": (5, 5, 20, 50), "d_l1/conv/bias": (50,),
        "d_l2/dense/kernel": (800, 500), "d_l2/dense/bias": (500,), "d_l2/prelu/a": (500,),
        "d_l3/dense/kernel": (500, 2), "d_l3/dense/bias": (2,)}
    z = tf.random.uniform([3, 100], -1, 1)
    top, bot = g(z, training=True)
    assert top.shape == bot.shape == (3, 28, 28, 1) and float(tf.reduce_min(top)) >= 0 and float(tf.reduce_max(top)) <= 1
    l1, l2 = d.logits(top, bot, training=True, noise=tf.random.uniform([6, 500]))
    assert l1.shape == l2.shape == (3, 1)
    # By hand: G 1,638,400 + 4,718,592 + 1,179,648 + 294,912 + 2 x (4,608 + 1) + (1024 + 512 + 256 + 128) x 2 (beta,
    # slope); D 2 x 520 + 25,050 + 400,500 + 500 + 1,002.
    assert count_params(g.trainable_variables) == 7_844_610
    assert count_params(d.trainable_variables) == 428_092


@pytest.mark.parametrize("g_shared", range(5))
@pytest.mark.parametrize("d_shared", [0, 3])
def test_each_sharing_setting_shares_exactly_its_layers(g_shared, d_shared):
    """G's first g_shared layers and D's last d_shared are one object for both domains; every other layer is
    two. A domain's output depends on the shared layers and its own, never on the other domain's."""
    m = dataclasses.replace(PAPER, g_shared_layers=g_shared, d_shared_layers=d_shared)
    g, d = build_paper_networks(m)
    assert sharing(g, d) == {"g": [i < g_shared for i in range(5)], "d": [i >= 4 - d_shared for i in range(4)]}
    per_layer = [3, 3, 3, 3, 2]  # kernel, beta, slope; the output layer: kernel, bias
    assert len(g.trainable_variables) == sum(n * (1 if i < g_shared else 2) for i, n in enumerate(per_layer))
    assert len(d.trainable_variables) == sum(n * (1 if i >= 4 - d_shared else 2) for i, n in enumerate([2, 2, 3, 2]))
    z = tf.random.uniform([4, 100], -1, 1)
    x = tf.random.uniform([4, 28, 28, 1])
    noise = tf.random.uniform([8, 500])
    with tf.GradientTape(persistent=True) as tape:
        top = tf.reduce_sum(g(z, training=True)[0])
        l1 = tf.reduce_sum(d.logits(x, x, training=True, noise=noise)[0])
    for out, model, own, other in ((top, g, "g1_", "g2_"), (l1, d, "d1_", "d2_")):
        grads = tape.gradient(out, model.trainable_variables)
        # Stacked through the shared layers, the other domain's rows get an exactly zero gradient.
        reached = {v.path.split("/")[1] for v, gr in zip(model.trainable_variables, grads)
                   if gr is not None and np.any(gr.numpy() != 0)}
        layers = {v.path.split("/")[1] for v in model.trainable_variables}
        assert not any(name.startswith(other) for name in reached)
        shared = {name for name in layers if not name.startswith(("g1_", "g2_", "d1_", "d2_"))}
        assert reached == shared | {name for name in layers if name.startswith(own)}


def test_conditional_gan_is_one_network_told_the_domain_by_a_bit():
    g, d = build_paper_networks(CONDITIONAL)
    assert sharing(g, d) == {"g": [True] * 5, "d": [True] * 4}
    assert shapes(g)["g_l0/dense/kernel"] == (101, 16384) and shapes(g)["g_l4/deconv/kernel"] == (6, 6, 1, 128)
    assert shapes(d)["d_l0/conv/kernel"] == (5, 5, 2, 20)
    # One parameter more per G dense output (the bit) and per conv0 filter tap; one output layer, not two.
    assert count_params(g.trainable_variables) == 7_844_610 - 4_609 + 16_384
    assert count_params(d.trainable_variables) == 428_092 - 520 + 500
    z = tf.random.uniform([2, 100], -1, 1)
    top, bot = g(z, training=False)
    assert float(tf.reduce_max(tf.abs(top - bot))) > 1e-3  # the bit changes the image
    # The bit is G's 101st input: G(z, 0) is the generator run on [z, 0].
    h = tf.concat([z, tf.zeros([2, 1])], 1)
    for i in range(5):
        h = getattr(g, f"g_l{i}")(h, training=False)
    np.testing.assert_allclose(h.numpy(), top.numpy(), atol=1e-6)


def test_caffe_initialisation_and_multipliers():
    """MSRA N(0, 2/fan_in) weights (Caffe's fan-in of a deconvolution is out x k x k), zero biases, PReLU
    slopes 0.25; weight decay on the kernels alone, twice the rate for D's dense biases."""
    keras.utils.set_random_seed(0)
    g, d = build_paper_networks(PAPER)
    v = {x.path.split("/", 1)[1]: x.numpy() for x in g.variables + d.variables}
    for name, fan_in in (("g_l0/dense/kernel", 100), ("g_l1/deconv/kernel", 9 * 512), ("g_l2/deconv/kernel", 9 * 256),
                         ("d_l1/conv/kernel", 25 * 20), ("d_l2/dense/kernel", 800)):
        assert v[name].std() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05), name
        assert abs(v[name].mean()) < 0.05 * math.sqrt(2 / fan_in) * 10
    assert not v["d_l2/dense/bias"].any() and not v["g_l1/bn/beta"].any()
    np.testing.assert_array_equal(v["g_l2/prelu/a"], 0.25)
    mults = {x.path.split("/", 1)[1]: caffe_multipliers(x) for x in g.trainable_variables + d.trainable_variables}
    assert {k for k, (_, decay) in mults.items() if decay} == {k for k in mults if k.endswith("kernel")}
    assert {k for k, (lr, _) in mults.items() if lr == 2} == {"d_l2/dense/bias", "d_l3/dense/bias"}


# The PyTorch version's fan_in + fan_out of each layer (its l0 a 4x4 transposed convolution from z, D's l2 a 4x4
# convolution): the bound of xavier_uniform(gain=sqrt(2)) is sqrt(2) sqrt(6 / that).
PYTORCH_FANS = {"g_l0/dense/kernel": (100 + 1024) * 16, "g_l1/deconv/kernel": (1024 + 512) * 9,
                "g_l3/deconv/kernel": (256 + 128) * 9, "g1_l4/deconv/kernel": (128 + 1) * 36,
                "d1_l0/conv/kernel": (1 + 20) * 25, "d_l1/conv/kernel": (20 + 50) * 25,
                "d_l2/dense/kernel": (50 + 500) * 16, "d_l3/dense/kernel": 500 + 2}


def test_pytorch_initialisation_is_the_pytorch_versions():
    """--paper_init pytorch: U(-a, a) weights, a = sqrt(2) sqrt(6 / (fan_in + fan_out)) with the PyTorch layer's
    fans, and 0.1 biases; BatchNorm biases 0, PReLU slopes 0.25 as with caffe."""
    keras.utils.set_random_seed(0)
    g, d = build_paper_networks(C.cogan_config("paper", paper_init="pytorch"))
    v = {x.path.split("/", 1)[1]: x.numpy() for x in g.variables + d.variables}
    for name, fans in PYTORCH_FANS.items():
        a = math.sqrt(2) * math.sqrt(6 / fans)
        assert np.abs(v[name]).max() <= a and np.abs(v[name]).max() > 0.95 * a, name
        assert v[name].std() == pytest.approx(a / math.sqrt(3), rel=0.1), name
    for name in ("g1_l4/deconv/bias", "d1_l0/conv/bias", "d_l2/dense/bias", "d_l3/dense/bias"):
        np.testing.assert_array_equal(v[name], np.float32(0.1))
    assert not v["g_l1/bn/beta"].any()
    np.testing.assert_array_equal(v["g_l2/prelu/a"], 0.25)
    gc, dc = build_paper_networks(C.cogan_config("conditional", paper_init="pytorch"))
    kernel = next(x for x in dc.variables if x.path.endswith("d_l0/conv/kernel")).numpy()  # image + bit: 2 channels
    assert np.abs(kernel).max() <= math.sqrt(2) * math.sqrt(6 / ((2 + 20) * 25))


@pytest.mark.parametrize("init, saturated", [("caffe", (0.5, 1.0)), ("pytorch", (0.0, 0.05))])
def test_caffe_weights_start_with_most_output_pixels_saturated(init, saturated):
    """The finding behind --paper_init (docs/ORIGINAL.md §5.4): the Caffe model's MSRA output layer (fan-in
    6 x 6 = 36, so std 0.236 over 128 x 36 inputs per pixel) gives pre-sigmoid values of std ~10, so most of
    G's first images are 0 or 1; the PyTorch version's weights do not."""
    keras.utils.set_random_seed(1)
    g, _ = build_paper_networks(C.cogan_config("paper", paper_init=init))
    top, bottom = g(tf.random.uniform([64, 100], -1, 1, seed=2), training=True)
    for images in (top, bottom):
        share = float(tf.reduce_mean(tf.cast((images < 0.01) | (images > 0.99), tf.float32)))
        assert saturated[0] <= share <= saturated[1], (init, share)
