"""ClusterGAN ``--recipe paper``: the recipe's values, the ClusterGAN paper authors' gradient penalty (one e per
batch), their Fashion-MNIST settings and its 5:1 critic loop, and a run with their networks printing no TensorFlow
error. (Their networks and written gradients: tests/test_clustergan_networks.py; the WGAN-GP losses:
test_losses.py; its evaluation over seeds and beside the authors' code: tests/test_clustergan_seeds.py,
tests/test_clustergan_side_by_side.py.)"""

import dataclasses
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cogan_tf import config as C
from cogan_tf.clustergan import ClusterGAN
from cogan_tf.losses import generator_encoder_loss
from tests.conftest import ROOT, fake_images, fit, write_fake_dataset
from tests.test_clustergan import built_gan, train_cfg

PAPER = C.clustergan_config("paper")
FASHION = C.clustergan_config("paper", "fashion_mnist")
# The paper's critic on JasonFengGit's networks, with one e per sample.
OLD_PAPER = dataclasses.replace(PAPER, networks="original", gp_eps="per_sample")


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


# --- the written gradients in a real run (the same gradients: tests/test_clustergan_networks.py) ---------------

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
