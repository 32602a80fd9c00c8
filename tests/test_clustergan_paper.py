"""ClusterGAN ``--recipe paper``: the ClusterGAN paper authors' networks (ReLU generator, BatchNorm without
gamma on batch statistics always, "same" convolutions, Glorot-uniform last layers), their gradient
penalty (one e per batch), their Fashion-MNIST settings and its 5:1 critic loop. (Its evaluation over
seeds and beside the authors' code: tests/test_clustergan_seeds.py, tests/test_clustergan_side_by_side.py.)"""

import dataclasses
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import keras

from cogan_tf import config as C
from cogan_tf.clustergan import ClusterGAN
from cogan_tf.clustergan_networks import (ClusterDiscriminator, ClusterEncoder, ClusterGenerator, Dense, LeakyReLU,
                                          use_plain_layers)
from cogan_tf.losses import critic_loss, generator_encoder_loss, gradient_penalty
from tests.conftest import ROOT, count_params, fake_images, fit, write_fake_dataset
from tests.test_clustergan import built_gan, train_cfg
from tests.tolerance import assert_gradients_close, sum_rounding

CFG = C.ClusterGanConfig()
PAPER = C.clustergan_config("paper")
FASHION = C.clustergan_config("paper", "fashion_mnist")
# The paper's critic on JasonFengGit's networks, with one e per sample.
OLD_PAPER = dataclasses.replace(PAPER, networks="original", gp_eps="per_sample")


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


# --- the recipe ---------------------------------------------------------------------------------------

def test_paper_recipe_values_the_fashion_variant_and_the_original_unchanged():
    assert C.clustergan_config("original") == C.ClusterGanConfig()
    assert C.clustergan_config("original", "fashion_mnist") == C.ClusterGanConfig()  # no variant of the original
    assert (PAPER.recipe, PAPER.networks, PAPER.zn_sigma, PAPER.critic, PAPER.gp_lambda, PAPER.gp_eps, PAPER.init_std,
            PAPER.weight_decay, PAPER.z_dim, PAPER.betan, PAPER.betac, PAPER.g_every) == (
        "paper", "paper", 0.1, "wgan_gp", 10.0, "per_batch", 0.02, 0.0, 30, 10.0, 10.0, 5)
    assert C.clustergan_config("paper", "mnist") == PAPER
    # The authors' Fashion-MNIST runs: `--dz 40 --beta_n 0`, the rest as MNIST.
    assert dataclasses.replace(FASHION, z_dim=30, betan=10.0) == PAPER and (FASHION.z_dim, FASHION.betan) == (40, 0.0)
    assert C.clustergan_config("paper", "fashion_mnist", zn_sigma=0.5).zn_sigma == 0.5  # an explicit value wins
    with pytest.raises(ValueError, match="unknown ClusterGAN recipe 'paper2'"):
        C.clustergan_config("paper2")
    # 500,000 G+E updates of 5 critic batches of 64 on the authors' 55,000 images (859 batches an epoch).
    epochs = C.train_config("clustergan", "paper").epoch
    assert (epochs - 1) * (55000 // 64) < 5 * 500_000 <= epochs * (55000 // 64)


MAIN_VARIANTS = r"""
from cogan_tf.scripts import main
main.define_flags()
from cogan_tf import cli
for argv in (["--recipe", "paper"], ["--recipe", "paper", "--dataset", "mnist"],
             ["--recipe", "paper", "--dataset", "fashion_mnist", "--zn_sigma", "0.2"], ["--dataset", "fashion_mnist"]):
    main.FLAGS.unparse_flags()
    main.FLAGS(cli.fold_bool_args(["main.py", "--model", "clustergan"] + argv, main.FLAGS))
    m, t = main.build_configs(main.FLAGS)
    print(t.dataset, m.recipe, m.networks, m.gp_eps, m.z_dim, m.betan, m.zn_sigma, t.epoch)
"""


def test_main_resolves_the_recipe_variant_from_the_dataset():
    r = subprocess.run([sys.executable, "-c", MAIN_VARIANTS], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines() == [
        "mnist paper paper per_batch 30 10.0 0.1 2911",  # the authors' default dataset, MNIST
        "mnist paper paper per_batch 30 10.0 0.1 2911",
        "fashion_mnist paper paper per_batch 40 0.0 0.2 2911",
        "fashion_mnist original original per_sample 30 10.0 1.0 200",
    ]


# --- the generator ------------------------------------------------------------------------------------

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
        Keras's (checked against PyTorch's in test_clustergan)."""
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


# --- the discriminator and the encoder -----------------------------------------------------------------

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


# --- the gradient penalty: one e per batch ---------------------------------------------------------------

def test_paper_penalty_draws_one_e_per_batch_checked_by_hand(tmp_path):
    # A tiny critic D(x) = c * sum(x^2): its gradient at x_hat is 2 c x_hat. Real image i is r_i
    # everywhere (2x2: norm 2 r_i), fake zero, so x_hat_i = e_i r_i and the gradient norm is 4 c e_i r_i:
    # the penalty is mean_i((4 c e_i r_i - 1)^2).
    c = 0.7
    critic = lambda v: c * tf.reduce_sum(tf.square(v), axis=[1, 2, 3])  # noqa: E731
    r = np.array([0.5, 1.0, 2.0])
    real = tf.constant((r[:, None, None, None] * np.ones((3, 2, 2, 1))).astype(np.float32))
    fake = tf.zeros([3, 2, 2, 1])
    drawn = {}
    for cfg, shape in ((PAPER, ()), (OLD_PAPER, (3, 1, 1, 1))):
        gan = ClusterGAN(cfg, train_cfg(tmp_path), arrays=fake_images(40))
        replay = tf.random.Generator.from_state(gan.rng.state.numpy(), gan.rng.algorithm)
        gp, eps = gan.penalty(critic, real, fake)
        assert tuple(eps.shape) == shape
        e = np.broadcast_to(replay.uniform(list(shape)).numpy().reshape(-1), (3,))  # from the run's RNG
        np.testing.assert_allclose(np.broadcast_to(eps.numpy().reshape(-1), (3,)), e)
        assert float(gp) == pytest.approx(float(np.mean((4 * c * e * r - 1) ** 2)), rel=1e-5)
        drawn[cfg.gp_eps] = e
    assert len(set(drawn["per_batch"])) == 1 and len(set(drawn["per_sample"])) == 3


# --- the written gradients (docs/PERFORMANCE.md): the same gradients, in less time ---------------------------

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


@pytest.mark.parametrize("recipe", ["paper", "original"])
def test_a_run_prints_no_tensorflow_error(tmp_path, recipe):
    """A LeakyReLU gradient that read the activation's input (Keras's own, or a written one) kept the conv's
    bias output in use, and Grappler's remapper, fusing conv + bias + LeakyReLU in the G+E branch, gave up
    on the whole step with an ``E0000 ... remapper failed`` line in every run. The gradient reads the
    output (the same values: see the tests above), and a run as a user starts it prints no TensorFlow error."""
    data_dir = write_fake_dataset(tmp_path / "data", n_train=40, n_test=20)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # main.py's own log level
    r = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "--model", "clustergan", "--recipe", recipe,
                        "--dataset", "mnist", "--data_dir", data_dir, "--batch_size", "8", "--max_steps", "1",
                        "--val_size", "0", "--sample_every_epochs", "0", "--log_every", "0", "--save_every", "0"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not re.findall(r"^[EF]\d{4} .*", r.stderr, re.M), r.stderr[-3000:]


# --- the Fashion-MNIST settings ----------------------------------------------------------------------------

def test_fashion_variant_has_40_dims_of_z_n_an_untrained_z_n_head_and_clusters_the_softmax(tmp_path):
    gan = built_gan(tmp_path, FASHION)
    assert gan.generator.h0.kernel.shape == (50, 1024) and gan.encoder.h3.kernel.shape == (1024, 50)
    assert gan.sample_zn.shape == (100, 40) and gan.sample_latent(4)[0].shape == (4, 40)
    # beta_n = 0: the G+E loss gives E's z_n outputs no gradient (its class outputs do get one).
    z_n, z_c, classes = gan.sample_latent(4)
    with tf.GradientTape() as tape:
        fake = gan.generator(tf.concat([z_n, z_c], 1), training=True)
        zn_hat, logits = gan.encoder(fake, training=True)
        loss = generator_encoder_loss(gan.discriminator.logits(fake), zn_hat, z_n, logits, classes, FASHION.betan,
                                      FASHION.betac, critic="wgan_gp")["ge_loss"]
    grad = tape.gradient(loss, gan.encoder.h3.kernel).numpy()
    assert np.all(grad[:, :40] == 0) and np.abs(grad[:, 40:]).max() > 0
    # K-means on the softmax alone: z_n that is pure noise, large enough to decide K-means on [z_n, softmax],
    # does not matter.
    labels = np.repeat(np.arange(10), 20)
    noise = 5 * np.random.default_rng(0).standard_normal((200, 40))
    scores = {}
    for cfg in (FASHION, dataclasses.replace(FASHION, betan=10.0)):
        g = ClusterGAN(cfg, train_cfg(tmp_path), arrays=fake_images(40))
        g.encode = lambda x: (noise, np.eye(10)[labels])  # noqa: B023 - an encoder that clusters perfectly
        scores[cfg.betan] = g.cluster_report(np.zeros((200, 28, 28, 1), np.uint8), labels)
    assert scores[0.0]["kmeans_features"] == "softmax" and scores[10.0]["kmeans_features"] == "z_n, softmax"
    assert scores[0.0]["kmeans_purity"] == pytest.approx(1.0) and scores[10.0]["kmeans_purity"] < 0.9


# --- the loop: 5 critic updates, then one G+E update -----------------------------------------------------------

@pytest.fixture(scope="module")
def paper_steps(tmp_path_factory):
    """A --recipe paper GAN stepped 10 times on 10 different batches, with what each step moved."""
    gan = built_gan(tmp_path_factory.mktemp("paper"), PAPER)
    step = tf.function(gan.train_step)
    x = gan.training_arrays()[0]
    watched = {"g": gan.generator.h1.kernel, "e": gan.encoder.h3.kernel, "d": gan.discriminator.h3.kernel}
    rec = {"moved": [], "outputs": [], "rng": []}
    for i in range(10):
        before = {k: v.numpy().copy() for k, v in watched.items()}
        rng_before = gan.rng.state.numpy().copy()
        out = step(x[4 * i:4 * i + 4])
        rec["rng"].append((rng_before, gan.rng.state.numpy().copy()))
        rec["outputs"].append({k: float(v) for k, v in out.items()})
        rec["moved"].append({k: not np.array_equal(before[k], v.numpy()) for k, v in watched.items()})
    rec["gan"] = gan
    return rec


def test_paper_five_critic_updates_then_one_ge_update_on_fresh_z(paper_steps):
    gan = paper_steps["gan"]
    assert [i for i, m in enumerate(paper_steps["moved"]) if m["g"]] == [4, 9]  # after critic updates 5 and 10
    assert all(m["g"] == m["e"] and m["d"] for m in paper_steps["moved"])
    assert int(gan.d_opt.iterations) == 10 and int(gan.ge_opt.iterations) == 2
    outs = paper_steps["outputs"]
    assert set(outs[0]) == {"d_loss", "d_wasserstein", "d_gp", "ge_loss", "ge_adv_loss", "zn_loss", "zc_loss"}
    assert all(np.isfinite(v) for o in outs for v in o.values())
    assert outs[4]["d_loss"] == pytest.approx(outs[4]["d_gp"] * 10 - outs[4]["d_wasserstein"], rel=1e-5)

    def replay(state, draws):
        r = tf.random.Generator.from_state(state, gan.rng.algorithm)
        for shape, dtype in draws:
            if dtype == "normal":
                r.normal(shape)
            else:
                r.uniform(shape, 0, 10, dtype=tf.int32) if dtype == tf.int32 else r.uniform(shape)
        return r.state.numpy()

    critic_draws = [([4, 30], "normal"), ([4], tf.int32), ([], tf.float32)]  # z_n, class, one e for the batch
    before, after = paper_steps["rng"][0]
    np.testing.assert_array_equal(replay(before, critic_draws), after)
    # The G+E update draws a z of its own after the critic's: z_n and class once more.
    before, after = paper_steps["rng"][4]
    np.testing.assert_array_equal(replay(before, critic_draws + [([4, 30], "normal"), ([4], tf.int32)]), after)


class BatchSpyGAN(ClusterGAN):
    """Records, per critic update, the image ids of its batch and G+E's update count."""

    def build(self):
        super().build()
        self.seen = tf.Variable(tf.fill([10, 4], -1), trainable=False)
        self.g_count = tf.Variable(tf.fill([10], -1), trainable=False)

    def train_step(self, x):
        out = super().train_step(x)
        i = tf.cast(self.d_opt.iterations, tf.int32) - 1
        self.seen[i].assign(tf.cast(x[:, 0, 0, 0], tf.int32) // 5)
        self.g_count[i].assign(tf.cast(self.ge_opt.iterations, tf.int32))
        return out


def test_paper_loop_gives_each_critic_update_its_own_batch_and_resumes_exactly(tmp_path, weights):
    x = [np.repeat(5 * np.arange(40, dtype=np.uint8), 784).reshape(40, 28, 28, 1)]  # image i is all 5 * i
    full = BatchSpyGAN(PAPER, train_cfg(tmp_path / "a", sample_every_epochs=0), arrays=x)
    fit(full)
    seen = full.seen.numpy()
    # One epoch of 10 batches of 4: every image once, so the 5 critic updates before each G+E update
    # saw 5 disjoint batches; G+E moved after the 5th and the 10th.
    assert sorted(seen.ravel().tolist()) == list(range(40))
    assert full.g_count.numpy().tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 2]
    # Interrupted after 3 critic updates (mid-way to the first G+E update) and resumed: the same batches
    # from there on and the same weights.
    fit(BatchSpyGAN(PAPER, train_cfg(tmp_path / "b", max_steps=3, sample_every_epochs=0), arrays=x))
    resumed = BatchSpyGAN(PAPER, train_cfg(tmp_path / "b", sample_every_epochs=0), arrays=x)
    fit(resumed)
    np.testing.assert_array_equal(resumed.seen.numpy()[3:], seen[3:])
    assert resumed.g_count.numpy().tolist()[3:] == [0, 1, 1, 1, 1, 1, 2]
    np.testing.assert_array_equal(resumed.rng.state.numpy(), full.rng.state.numpy())
    for a, b in zip(weights(full, optimizers=True), weights(resumed, optimizers=True)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
