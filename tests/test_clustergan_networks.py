"""cogan_tf/clustergan_networks.py: the ClusterGAN's generator, discriminator and encoder in both versions. The
original's (JasonFengGit's PyTorch networks, docs/ORIGINAL.md §3.1): shapes and parameter counts by hand, PyTorch's
BatchNorm settings and initial weights, its k4 s2 convolutions. The paper authors' (§4.2, §4.3): ReLU generator,
BatchNorm without gamma per channel and on batch statistics also when sampling, "same" convolutions into
6,272 x 1,024 dense layers, their initialisers layer by layer; and the written gradients (LeakyReLU, dense) giving
the same gradients as Keras's layers, to the bit or to float32 rounding."""

import math

import numpy as np
import pytest
import tensorflow as tf
import keras

from cogan_tf import config as C
from cogan_tf.clustergan_networks import (ClusterDiscriminator, ClusterEncoder, ClusterGenerator, Dense, LeakyReLU,
                                          use_plain_layers)
from cogan_tf.losses import critic_loss, generator_encoder_loss, gradient_penalty
from tests.conftest import count_params
from tests.tolerance import assert_gradients_close, sum_rounding

CFG = C.ClusterGanConfig()
PAPER = C.clustergan_config("paper")


# --- the original's networks ------------------------------------------------------------------------------------

count = count_params


def test_layer_shapes():
    g, d, e = ClusterGenerator(CFG), ClusterDiscriminator(CFG), ClusterEncoder(CFG)
    z = tf.random.normal([4, 40])
    h = g.h0(z)
    assert h.shape == (4, 1024)
    h = g.h1(g.act0(g.bn0(h)))
    assert h.shape == (4, 128 * 7 * 7)
    h = g.h2(tf.reshape(h, [4, 7, 7, 128]))
    assert h.shape == (4, 14, 14, 64)  # ConvTranspose2d(128, 64, 4, 2, 1): (7 - 1) * 2 - 2 + 4 = 14
    assert g.h3(h).shape == (4, 28, 28, 1)  # (14 - 1) * 2 - 2 + 4 = 28
    x = g(z, training=True)
    assert x.shape == (4, 28, 28, 1) and 0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1
    for trunk in (d.trunk, e.trunk):
        h = trunk.c0(x)
        assert h.shape == (4, 13, 13, 64)  # Conv2d(1, 64, 4, 2): (28 - 4) // 2 + 1 = 13
        assert trunk.c1(h).shape == (4, 5, 5, 128)  # (13 - 4) // 2 + 1 = 5; 128 * 5 * 5 = 3200
        assert trunk(x).shape == (4, 1024)
    assert d.logits(x).shape == (4, 1)
    p = d(x)
    assert 0 <= float(tf.reduce_min(p)) and float(tf.reduce_max(p)) <= 1
    z_n, logits = e(x)
    assert z_n.shape == (4, 30) and logits.shape == (4, 10)
    np.testing.assert_allclose(tf.concat([z_n, logits], 1).numpy(), e.h3(e.trunk(x)).numpy())


def test_parameter_counts_by_hand():
    # Linear(in, out) = in*out + out; Conv(in, out, 4x4) = 16*in*out + out; BatchNorm(C) = 2C trainable
    # (gamma, beta) + 2C moving statistics.
    g_count = ((40 * 1024 + 1024) + 2 * 1024            # Linear 40 -> 1024, BN1d(1024)
               + (1024 * 6272 + 6272) + 2 * 6272        # Linear 1024 -> 128*7*7, BN1d(6272)
               + (16 * 128 * 64 + 64) + 2 * 64          # ConvTranspose 128 -> 64, BN2d(64)
               + (16 * 64 * 1 + 1))                     # ConvTranspose 64 -> 1
    trunk = (16 * 1 * 64 + 64) + (16 * 64 * 128 + 128) + (3200 * 1024 + 1024)
    d_count = trunk + (1024 * 1 + 1)
    e_count = trunk + (1024 * 40 + 40)
    assert (g_count, d_count, e_count) == (6617665, 3411137, 3451112)
    g, d, e = ClusterGenerator(CFG), ClusterDiscriminator(CFG), ClusterEncoder(CFG)
    g.build((None, 40))
    d.build((None, 28, 28, 1))
    e.build((None, 28, 28, 1))
    assert count(g.trainable_variables) == g_count
    assert count(g.non_trainable_variables) == 2 * (1024 + 6272 + 64)
    assert count(d.trainable_variables) == d_count and count(e.trainable_variables) == e_count
    assert not d.non_trainable_variables and not e.non_trainable_variables
    # D and E have the same trunk layout but their own weights.
    assert not {id(v) for v in d.trainable_variables} & {id(v) for v in e.trainable_variables}


def test_batchnorm_and_init_are_pytorchs():
    keras.utils.set_random_seed(0)
    g = ClusterGenerator(CFG)
    g.build((None, 40))
    for bn in (g.bn0, g.bn1, g.bn2):
        assert bn.momentum == 0.9 and bn.epsilon == 1e-5  # torch momentum 0.1
        assert np.all(bn.gamma.numpy() == 1) and np.all(bn.beta.numpy() == 0)
    # U(-1/sqrt(fan_in), 1/sqrt(fan_in)); for ConvTranspose2d PyTorch's fan_in is out_channels * 4 * 4.
    for layer, fan_in in ((g.h0, 40), (g.h1, 1024), (g.h2, 64 * 16), (g.h3, 1 * 16)):
        bound = 1 / math.sqrt(fan_in)
        w = layer.kernel.numpy()
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound, layer.name
        assert np.abs(layer.bias.numpy()).max() <= bound
    d = ClusterDiscriminator(CFG)
    d.build((None, 28, 28, 1))
    assert np.abs(d.trunk.c1.kernel.numpy()).max() <= 1 / math.sqrt(64 * 16)


def torch_conv_transpose(x, w, b, stride=2, pad=1):
    """PyTorch's ConvTranspose2d written out: out[i*s - p + k] += x[i] * w[:, :, k]; w (in, out, kh, kw)."""
    n, h, wd, _ = x.shape
    k = w.shape[2]
    full = np.zeros((n, (h - 1) * stride + k, (wd - 1) * stride + k, w.shape[1]))
    for i in range(h):
        for j in range(wd):
            contribution = np.einsum("nc,cokl->nklo", x[:, i, j, :], w)
            full[:, i * stride:i * stride + k, j * stride:j * stride + k, :] += contribution
    ho, wo = (h - 1) * stride - 2 * pad + k, (wd - 1) * stride - 2 * pad + k
    return full[:, pad:pad + ho, pad:pad + wo, :] + b


def torch_conv(x, w, b, stride=2):
    """PyTorch's Conv2d without padding: out[i] = sum_k x[i*s + k] * w[:, :, k]; w (out, in, kh, kw)."""
    n, h, wd, _ = x.shape
    k = w.shape[2]
    ho, wo = (h - k) // stride + 1, (wd - k) // stride + 1
    out = np.zeros((n, ho, wo, w.shape[0]))
    for i in range(ho):
        for j in range(wo):
            patch = x[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
            out[:, i, j, :] = np.einsum("nklc,ockl->no", patch, w)
    return out + b


def test_keras_convs_are_pytorchs_k4_s2_convs():
    g, d = ClusterGenerator(CFG), ClusterDiscriminator(CFG)
    g.build((None, 40))
    d.build((None, 28, 28, 1))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 7, 128)).astype(np.float32)
    # Keras's transposed kernel is (kh, kw, out, in); PyTorch's (in, out, kh, kw).
    w = np.transpose(g.h2.kernel.numpy(), (3, 2, 0, 1))
    np.testing.assert_allclose(g.h2(x).numpy(), torch_conv_transpose(x, w, g.h2.bias.numpy()), atol=1e-4)
    x = rng.standard_normal((2, 28, 28, 1)).astype(np.float32)
    w = np.transpose(d.trunk.c0.kernel.numpy(), (3, 2, 0, 1))  # (kh, kw, in, out) -> (out, in, kh, kw)
    np.testing.assert_allclose(d.trunk.c0(x).numpy(), torch_conv(x, w, d.trunk.c0.bias.numpy()), atol=1e-4)


# --- the paper authors' networks ------------------------------------------------------------------------------------

def built(cfg=PAPER, seed=0):
    keras.utils.set_random_seed(seed)
    g, d, e = ClusterGenerator(cfg), ClusterDiscriminator(cfg), ClusterEncoder(cfg)
    g.build((None, cfg.z_dim + cfg.n_classes))
    d.build((None, 28, 28, 1))
    e.build((None, 28, 28, 1))
    return g, d, e


def excess_kurtosis(w):
    w = np.asarray(w, np.float64).ravel()
    return float(np.mean((w - w.mean()) ** 4) / np.var(w) ** 2 - 3)


def bn_batch_stats(x, beta, eps=1e-3):
    """contrib's batch_norm in training mode: the batch's mean and biased variance over every axis but
    the last, epsilon 1e-3, plus beta, no gamma."""
    axes = tuple(range(x.ndim - 1))
    return (x - x.mean(axes)) / np.sqrt(x.var(axes) + eps) + beta


def conv_same(x, w, b, stride=2):
    """TensorFlow's "SAME" conv written out: out = ceil(in / stride), the padding split with the odd pixel
    after; w (kh, kw, in, out)."""
    n, h, _, _ = x.shape
    k = w.shape[0]
    out = -(-h // stride)
    pad = max((out - 1) * stride + k - h, 0)
    xp = np.pad(x, ((0, 0), (pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2), (0, 0)))
    y = np.zeros((n, out, out, w.shape[3]))
    for i in range(out):
        for j in range(out):
            y[:, i, j, :] = np.einsum("nklc,klco->no", xp[:, i * stride:i * stride + k, j * stride:j * stride + k, :], w)
    return y + b


def lrelu(v):
    return np.where(v > 0, v, 0.2 * v)


def test_paper_generator_relu_batchnorm_without_gamma_per_channel_after_the_reshape():
    g, _, _ = built()
    assert all(isinstance(a, keras.layers.ReLU) for a in (g.act0, g.act1, g.act2))
    for bn, channels in ((g.bn0, 1024), (g.bn1, 128), (g.bn2, 64)):
        # contrib's batch_norm defaults: beta, no gamma (scale=False), epsilon 1e-3, decay 0.999.
        assert sorted(v.path.rsplit("/", 1)[1] for v in bn.variables) == ["beta", "moving_mean", "moving_variance"]
        assert [v.shape for v in bn.trainable_variables] == [(channels,)] and bn.gamma is None
        assert (bn.center, bn.scale, bn.epsilon, bn.momentum) == (True, False, 1e-3, 0.999)
    rng = np.random.default_rng(0)
    for bn in (g.bn0, g.bn1, g.bn2):  # beta non-zero, so that it shows in the output
        bn.beta.assign(rng.normal(0, 0.5, bn.beta.shape).astype(np.float32))
    z = rng.standard_normal((6, 40)).astype(np.float32)

    def by_hand(per_channel):
        """Dense, BN (per feature), ReLU; dense, reshape to (7, 7, 128) and BN per channel over (batch, 7, 7)
        (or, the original's order, BN per feature, then the reshape), ReLU; the transposed convs are
        Keras's (checked against PyTorch's above, test_keras_convs_are_pytorchs_k4_s2_convs)."""
        h = np.maximum(bn_batch_stats(z @ g.h0.kernel.numpy() + g.h0.bias.numpy(), g.bn0.beta.numpy()), 0)
        h = h @ g.h1.kernel.numpy() + g.h1.bias.numpy()
        if per_channel:
            h = bn_batch_stats(h.reshape(6, 7, 7, 128), g.bn1.beta.numpy())
        else:
            h = bn_batch_stats(h, np.tile(g.bn1.beta.numpy(), 49)).reshape(6, 7, 7, 128)
        h = np.maximum(bn_batch_stats(g.h2(np.maximum(h, 0).astype(np.float32)).numpy(), g.bn2.beta.numpy()), 0)
        return g.h3(h.astype(np.float32)).numpy()

    out = g(z, training=True).numpy()
    np.testing.assert_allclose(out, by_hand(per_channel=True), atol=2e-5)
    assert np.abs(out - by_hand(per_channel=False)).max() > 1e-3


def test_paper_generator_uses_batch_statistics_also_when_sampling():
    g, _, _ = built()
    z = np.random.default_rng(1).standard_normal((8, 40)).astype(np.float32)
    train_out = g(z, training=True).numpy()
    for bn in (g.bn0, g.bn1, g.bn2):  # moving averages far off: never read
        bn.moving_mean.assign(tf.fill(bn.moving_mean.shape, 50.0))
        bn.moving_variance.assign(tf.fill(bn.moving_variance.shape, 1e4))
    np.testing.assert_allclose(g(z, training=False).numpy(), train_out, atol=1e-6)
    # An image depends on the rest of its batch; a z alone normalises to beta: every z the same image.
    other = np.concatenate([z[:1], -z[1:]])
    assert np.abs(g(other, training=False).numpy()[0] - train_out[0]).max() > 1e-3
    np.testing.assert_allclose(g(z[:1]).numpy(), g(z[1:2]).numpy(), atol=1e-6)
    # The original samples with its moving averages.
    o, _, _ = built(CFG)
    assert not np.allclose(o(z, training=False).numpy(), o(z, training=True).numpy(), atol=1e-3)


def test_paper_trunks_are_same_convolutions_into_6272_by_1024_dense_layers():
    g, d, e = built()
    x = np.random.default_rng(2).random((3, 28, 28, 1)).astype(np.float32)
    for net in (d, e):
        t = net.trunk
        assert t.h2.kernel.shape == (6272, 1024)  # 7 * 7 * 128 = 6,272
        assert t.act0.negative_slope == t.act1.negative_slope == t.act2.negative_slope == pytest.approx(0.2)
        c0 = conv_same(x, t.c0.kernel.numpy(), t.c0.bias.numpy())
        assert c0.shape == (3, 14, 14, 64)
        np.testing.assert_allclose(t.c0(x).numpy(), c0, atol=1e-5)
        c1 = conv_same(lrelu(c0), t.c1.kernel.numpy(), t.c1.bias.numpy())
        assert c1.shape == (3, 7, 7, 128)
        # Flattened NHWC row-major (contrib's flatten), then Linear 1024 and LeakyReLU 0.2.
        expected = lrelu(lrelu(c1).reshape(3, 6272) @ t.h2.kernel.numpy() + t.h2.bias.numpy())
        np.testing.assert_allclose(t(x).numpy(), expected, atol=1e-4)
    assert d.logits(x).shape == (3, 1) and [a.shape for a in e(x)] == [(3, 30), (3, 10)]
    # Parameters by hand, as the authors' graph: 27 trainable tensors, 6 moving statistics.
    trunk = (16 * 64 + 64) + (16 * 64 * 128 + 128) + (6272 * 1024 + 1024)
    assert count_params(d.trainable_variables) == trunk + 1024 + 1
    assert count_params(e.trainable_variables) == trunk + 1024 * 40 + 40
    assert count_params(g.trainable_variables) == ((40 * 1024 + 1024) + 1024 + (1024 * 6272 + 6272) + 128
                                                   + (16 * 128 * 64 + 64) + 64 + (16 * 64 + 1))
    assert len(g.trainable_variables + d.trainable_variables + e.trainable_variables) == 27
    assert count_params(g.non_trainable_variables) == 2 * (1024 + 128 + 64)


def test_paper_initialisers_layer_by_layer():
    g, d, e = built()
    normal = [g.h0, g.h1, g.h2, g.h3] + [layer for t in (d.trunk, e.trunk) for layer in (t.c0, t.c1, t.h2)]
    for layer in normal + [d.h3, e.h3]:
        assert np.all(layer.bias.numpy() == 0), layer.name
    for layer in normal:
        w = layer.kernel.numpy()
        # The sample std of n normal draws has std 0.02 / sqrt(2n) (<= 0.00044 here: n >= 1024).
        assert abs(w.std() - 0.02) < 0.003 and abs(w.mean()) < 0.003, layer.name
        if w.size > 100_000:  # normal, not uniform: excess kurtosis 0 (a uniform's is -1.2)
            assert abs(excess_kurtosis(w)) < 0.05, layer.name
    # The last layers of D and E: fully_connected's default, Glorot-uniform U(+-sqrt(6 / (fan_in + fan_out))).
    for layer, fan_out in ((d.h3, 1), (e.h3, 40)):
        w, bound = layer.kernel.numpy(), math.sqrt(6 / (1024 + fan_out))
        assert 0.97 * bound < np.abs(w).max() <= bound, layer.name
        assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.08), layer.name
    assert excess_kurtosis(e.h3.kernel.numpy()) == pytest.approx(-1.2, abs=0.05)
    for bn in (g.bn0, g.bn1, g.bn2):
        assert np.all(bn.beta.numpy() == 0)


# The paper networks' longest sums are the 6,272-term dot products of the h2 layers (and of G's h1 input
# gradient); a critic gradient through its penalty passes D's 4 layers three times (forward, the input
# gradient, its gradient), a G+E gradient G's and E's 4 layers forward and back: at most 12 chained sums.
PAPER_RTOL = sum_rounding(6272, 1.0, 12)


def set_written(nets, dense: bool, leaky_relu: bool):
    for net in nets:
        for layer in net._flatten_layers():
            if isinstance(layer, Dense):
                layer.written_gradient = dense
            if isinstance(layer, LeakyReLU):
                layer.written_gradient = leaky_relu


def critic_gradients(d, x, fake, eps):
    """The critic's losses and D's gradients of its loss, gradient penalty (a second derivative)
    included, as the critic update computes them: in a graph, traced with the layers' current settings."""
    def critic(v):
        return d.logits(v, training=True)

    @tf.function
    def run():
        with tf.GradientTape() as tape:
            out = critic_loss(critic(x), critic(fake), gradient_penalty(critic, x, fake, eps), PAPER.gp_lambda)
        return out, tape.gradient(out["d_loss"], d.trainable_variables)

    out, grads = run()
    return {k: float(v) for k, v in out.items()}, [g.numpy() for g in grads]


def ge_gradients(g, d, e, z_n, classes):
    nets = g.trainable_variables + e.trainable_variables

    @tf.function
    def run():
        with tf.GradientTape() as tape:
            fake = g(tf.concat([z_n, tf.one_hot(classes, 10)], axis=1), training=True)
            zn_hat, logits = e(fake, training=True)
            out = generator_encoder_loss(d.logits(fake, training=True), zn_hat, z_n, logits, classes, critic="wgan_gp")
        return out, tape.gradient(out["ge_loss"], nets)

    out, grads = run()
    return {k: float(v) for k, v in out.items()}, [v.numpy() for v in grads], nets


def critic_inputs(seed=5, n=8):
    rng = np.random.default_rng(seed)
    x, fake = rng.random((2, n, 28, 28, 1)).astype(np.float32)
    return tf.constant(x), tf.constant(fake), tf.constant(0.37)


def test_written_gradients_in_the_paper_networks_and_written_leaky_relus_in_both():
    g, d, e = built()
    layers = [layer for net in (g, d, e) for layer in net._flatten_layers()]
    assert sum(isinstance(layer, Dense) for layer in layers) == 6  # G's h0, h1; D's and E's h2, h3
    assert sum(isinstance(layer, LeakyReLU) for layer in layers) == 6  # D's and E's three
    assert all(layer.written_gradient for layer in layers if isinstance(layer, (Dense, LeakyReLU)))
    gan = use_plain_layers(type("Nets", (), dict(generator=g, discriminator=d, encoder=e))())
    assert not any(layer.written_gradient for layer in layers if isinstance(layer, (Dense, LeakyReLU)))
    assert gan.discriminator is d
    o = [layer for net in built(CFG) for layer in net._flatten_layers()]
    assert not any(isinstance(layer, Dense) for layer in o)  # the original's networks: Keras's Dense
    assert sum(isinstance(layer, LeakyReLU) and layer.written_gradient for layer in o) == 9  # G's three too
    # The same weights and variables either way: checkpoints of either load in the other.
    assert [v.path for v in d.variables] == [v.path for v in built(CFG)[1].variables]


def test_written_leaky_relu_gives_the_critic_the_same_gradients_to_the_bit():
    """The LeakyReLU's gradient cut from its input changes no value: the work it saves (the penalty's
    second derivative backpropagated as zeros through D on the interpolates) only ever added zeros."""
    _, d, _ = built()
    x, fake, eps = critic_inputs()
    set_written([d], dense=False, leaky_relu=False)
    plain = critic_gradients(d, x, fake, eps)
    set_written([d], dense=False, leaky_relu=True)
    written = critic_gradients(d, x, fake, eps)
    assert written[0] == plain[0]
    for a, b in zip(written[1], plain[1]):
        np.testing.assert_array_equal(a, b)


def test_written_leaky_relu_gives_the_original_networks_the_same_gradients_to_the_bit():
    """In the original's networks too (G's LeakyReLUs as well as D's and E's): G+E's gradients to the bit."""
    g, d, e = built(CFG)
    z_n = tf.constant(np.random.default_rng(7).standard_normal((8, 30)), tf.float32)
    classes = tf.constant(np.arange(8) % 10, tf.int32)
    set_written([g, d, e], dense=False, leaky_relu=False)
    plain = ge_gradients(g, d, e, z_n, classes)
    set_written([g, d, e], dense=False, leaky_relu=True)
    written = ge_gradients(g, d, e, z_n, classes)
    assert written[0] == plain[0] and len(written[1]) == len(plain[1]) > 10
    for a, b in zip(written[1], plain[1]):
        np.testing.assert_array_equal(a, b)


def test_written_dense_gradients_equal_keras_to_rounding():
    """The dense layers' input gradient as a BatchMatMulV2: the critic's gradients (through its penalty's
    second derivative) and G+E's to float32 rounding, the losses (the same forward ops) to the bit."""
    g, d, e = built()
    x, fake, eps = critic_inputs()
    z_n = tf.constant(0.1 * np.random.default_rng(6).standard_normal((8, 30)), tf.float32)
    classes = tf.constant(np.arange(8) % 10, tf.int32)
    set_written([g, d, e], dense=False, leaky_relu=True)
    plain = critic_gradients(d, x, fake, eps), ge_gradients(g, d, e, z_n, classes)
    set_written([g, d, e], dense=True, leaky_relu=True)
    written = critic_gradients(d, x, fake, eps), ge_gradients(g, d, e, z_n, classes)
    assert written[0][0] == plain[0][0] and written[1][0] == plain[1][0]
    assert assert_gradients_close(d.trainable_variables, written[0][1], plain[0][1], rtol=PAPER_RTOL) == 8
    assert assert_gradients_close(written[1][2], written[1][1], plain[1][1], rtol=PAPER_RTOL) == 19  # G: 11, E: 8
    # Not the same ops: the dense layers' input gradients round differently (else this test would not
    # tell the two apart).
    assert any(not np.array_equal(a, b) for a, b in zip(written[0][1] + written[1][1], plain[0][1] + plain[1][1]))
