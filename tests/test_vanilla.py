"""Vanilla GAN port: layers and parameter counts against docs/ORIGINAL.md's tables, PyTorch's initial weights,
one step, per-epoch outputs, resume, seed, export, and a run at --hidden_size 1024. (Its losses: tests/test_losses.py;
main.py's per-model flag defaults: test_main.py.)"""

import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
import keras

from cogan_tf import config as C
from cogan_tf import runner
from cogan_tf.vanilla import VanillaDiscriminator, VanillaGAN, VanillaGenerator, dropout_seed_states
from tests.conftest import count_params, fake_images, quiet, run_without_cogan_tf, train_config

CFG = C.VanillaConfig()


def train_cfg(tmp_path, **kw):
    return train_config(tmp_path, **{**dict(model="vanilla", batch_size=8, learning_rate=2e-4, beta1=0.9, beta2=0.999, sample_every_epochs=1), **kw})


count = count_params


# --- networks ---------------------------------------------------------------------------------------

def test_layer_shapes():
    assert CFG.hidden == 128  # the width the original trains (docs/ORIGINAL.md §2.1)
    g, d = VanillaGenerator(CFG), VanillaDiscriminator(CFG)
    z = tf.random.normal([4, 128])
    h = g.act0(g.h0(z))
    assert h.shape == (4, 128)
    assert g.h1(h).shape == g.h2(h).shape == (4, 128)
    x = g(z)
    assert x.shape == (4, 28, 28, 1)
    assert float(tf.reduce_min(x)) >= -1 and float(tf.reduce_max(x)) <= 1  # tanh
    assert d.logits(x).shape == (4, 1)
    p = d(x)
    assert float(tf.reduce_min(p)) >= 0 and float(tf.reduce_max(p)) <= 1  # sigmoid
    assert g.h0.kernel.shape == (128, 128) and g.h3.kernel.shape == (128, 784)
    assert d.h0.kernel.shape == (784, 128) and d.h3.kernel.shape == (128, 1)
    assert [dr.rate for dr in d.dropouts] == [0.3, 0.3, 0.3]
    assert g.act0.negative_slope == d.act2.negative_slope == 0.2


def test_parameter_counts_by_hand():
    # Linear(in, out) = in*out + out. G: 128 -> 128 -> 128 -> 128 -> 784; D: 784 -> 128 -> 128 -> 128 -> 1.
    g_count = (128 * 128 + 128) + 2 * (128 * 128 + 128) + (128 * 784 + 784)
    d_count = (784 * 128 + 128) + 2 * (128 * 128 + 128) + (128 * 1 + 1)
    assert g_count == 150672 and d_count == 133633
    g, d = VanillaGenerator(CFG), VanillaDiscriminator(CFG)
    g.build((None, 128))
    d.build((None, 28, 28, 1))
    assert count(g.trainable_variables) == g.count_params() == g_count
    assert count(d.trainable_variables) == d_count
    assert len(g.trainable_variables) == len(d.trainable_variables) == 8


def test_parameter_counts_at_1024_hidden_units():
    # --hidden_size 1024, the width the original's README describes: G 128 -> 1024 -> 1024 -> 1024 -> 784, D 784 -> 1024 x 3 -> 1.
    g_count = (128 * 1024 + 1024) + 2 * (1024 * 1024 + 1024) + (1024 * 784 + 784)
    d_count = (784 * 1024 + 1024) + 2 * (1024 * 1024 + 1024) + (1024 * 1 + 1)
    assert g_count == 3034896 and d_count == 2904065
    wide = C.VanillaConfig(hidden=1024)
    g, d = VanillaGenerator(wide), VanillaDiscriminator(wide)
    g.build((None, 128))
    d.build((None, 28, 28, 1))
    assert g.h1.kernel.shape == (1024, 1024) and d.h3.kernel.shape == (1024, 1)
    assert count(g.trainable_variables) == g_count
    assert count(d.trainable_variables) == d_count


def test_pytorch_default_initialisation():
    # nn.Linear: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)); the std of U(-b, b) is b/sqrt(3).
    keras.utils.set_random_seed(0)
    g = VanillaGenerator(CFG)
    g.build((None, 128))
    for layer, fan_in in ((g.h0, 128), (g.h1, CFG.hidden), (g.h3, CFG.hidden)):
        bound = 1 / math.sqrt(fan_in)
        w, b = layer.kernel.numpy(), layer.bias.numpy()
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
        assert np.abs(b).max() <= bound and np.abs(b).std() > 0
        assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    # Two layers of the same shape do not share their initial values.
    assert not np.array_equal(g.h1.kernel.numpy(), g.h2.kernel.numpy())


def test_dropout_only_in_training_and_one_mask_per_call():
    d = VanillaDiscriminator(CFG)
    x = tf.random.uniform([16, 28, 28, 1], -1, 1)
    np.testing.assert_array_equal(d.logits(x).numpy(), d.logits(x).numpy())
    a, b = d.logits(x, training=True).numpy(), d.logits(x, training=True).numpy()
    assert not np.allclose(a, b)
    # The first dropout zeroes about 30% of the units.
    h = d.act0(d.h0(tf.reshape(x, [16, 784])))
    zero = np.mean(d.drop0(h, training=True).numpy() == 0)
    assert 0.25 < zero < 0.35


# --- training step ----------------------------------------------------------------------------------

def test_one_step_updates_both_players_and_uses_two_z(tmp_path):
    gan = VanillaGAN(CFG, train_cfg(tmp_path), arrays=fake_images(64))
    keras.utils.set_random_seed(0)
    gan.build()
    before = {id(v): v.numpy().copy() for v in gan.g_vars + gan.d_vars}
    seeds = [s.numpy().copy() for s in dropout_seed_states(gan.discriminator.dropouts).values()]
    rng_before = gan.rng.state.numpy().copy()
    out = tf.function(gan.train_step)(gan.training_arrays()[0][:8])
    assert int(gan.d_opt.iterations) == int(gan.g_opt.iterations) == 1  # k = 1
    for v in gan.g_vars + gan.d_vars:
        assert not np.array_equal(before[id(v)], v.numpy()), v.path
    assert set(out) == {"d_loss", "d_loss_real", "d_loss_fake", "g_loss"}
    assert float(out["d_loss"]) == pytest.approx(float(out["d_loss_real"]) + float(out["d_loss_fake"]), rel=1e-6)
    # Two z draws of 8 x 128 normals (one for D's fakes, one for G's update); the three dropout
    # layers each drew masks (their seed states moved).
    replay = tf.random.Generator.from_state(rng_before, gan.rng.algorithm)
    replay.normal([8, 128])
    replay.normal([8, 128])
    np.testing.assert_array_equal(replay.state.numpy(), gan.rng.state.numpy())
    after = [s.numpy() for s in dropout_seed_states(gan.discriminator.dropouts).values()]
    assert len(seeds) == 3 and all(not np.array_equal(a, b) for a, b in zip(seeds, after))


def test_images_scaled_to_minus_one_one(tmp_path):
    # D on real images sees x / 127.5 - 1: black -> -1, white -> +1 (ToTensor + Normalize(0.5, 0.5)).
    gan = VanillaGAN(CFG, train_cfg(tmp_path), arrays=fake_images(64))
    gan.build()
    seen = []
    orig = gan.discriminator.logits
    gan.discriminator.logits = lambda x, training=False: (seen.append(x), orig(x, training))[1]
    x = np.zeros((8, 28, 28, 1), np.uint8)
    x[:, 0, 0, 0] = 255
    gan.train_step(tf.constant(x))
    real = seen[0].numpy()
    assert real.min() == -1.0 and real.max() == 1.0 and real[0, 0, 0, 0] == 1.0


# --- the loop: outputs, resume, seed, export ----------------------------------------------------------

def test_epoch_outputs_resume_and_seed(tmp_path, weights):
    x = fake_images(64)  # 8 steps of 8 per epoch
    logs = []
    full = runner.run(CFG, train_cfg(tmp_path / "a", epoch=2), arrays=x, log=logs.append)
    # Interrupted after 5 steps (mid-epoch 0), resumed in a fresh object.
    runner.run(CFG, train_cfg(tmp_path / "b", epoch=2, max_steps=5), arrays=x, log=quiet)
    logs_b = []
    resumed = runner.run(CFG, train_cfg(tmp_path / "b", epoch=2), arrays=x, log=logs_b.append)
    assert any("Load SUCCESS" in line and "step 5" in line for line in logs_b)
    assert int(resumed.g_opt.iterations) == int(full.g_opt.iterations) == 16
    # Equal up to float noise: TF's multithreaded CPU kernels are not bit-reproducible under load (seen
    # in the ClusterGAN's version of this test). A wrong resume (another batch, z or dropout mask) moves the
    # weights by ~lr = 1e-4 per step, far outside this tolerance.
    for a, b in zip(weights(full, optimizers=True), weights(resumed, optimizers=True)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
    seeds_full = dropout_seed_states(full.discriminator.dropouts)
    seeds_resumed = dropout_seed_states(resumed.discriminator.dropouts)
    assert len(seeds_full) == 3
    for k, v in seeds_full.items():
        np.testing.assert_array_equal(v.numpy(), seeds_resumed[k].numpy())
    np.testing.assert_array_equal(full.rng.state.numpy(), resumed.rng.state.numpy())
    # A third run with the same seed is the same run; another seed is not.
    other = runner.run(CFG, train_cfg(tmp_path / "c", epoch=2, seed=4, max_steps=16), arrays=x, log=quiet)
    assert not all(np.array_equal(a, b)
               for a, b in zip(weights(full, optimizers=True), weights(other, optimizers=True)))

    # Per-epoch outputs, also for the resumed run: a grid per epoch (sample_every_epochs=1), the GIF of
    # both, the loss plot and the history of both epochs.
    from PIL import Image
    for root in (tmp_path / "a", tmp_path / "b"):
        out = root / "samples" / "vanilla"
        assert sorted(os.listdir(out)) == ["generator_results.gif", "img_0.png", "img_1.png", "loss.png",
                                           "losses.json"]
        with Image.open(out / "img_0.png") as im:
            assert im.size == (224, 224) and im.mode == "L"
        with Image.open(out / "generator_results.gif") as im:
            assert im.n_frames == 2
        with Image.open(out / "loss.png") as im:
            assert im.format == "PNG"
        hist = json.loads((out / "losses.json").read_text())["epochs"]
        assert sorted(hist) == ["0", "1"] and set(hist["1"]) == {"g_loss", "d_loss", "grid"}
    # The fixed display noise gives the same grid in both runs.
    grid_a = np.asarray(Image.open(tmp_path / "a/samples/vanilla/img_1.png"), np.int16)
    grid_b = np.asarray(Image.open(tmp_path / "b/samples/vanilla/img_1.png"), np.int16)
    assert np.abs(grid_a - grid_b).max() <= 1  # at most a rounding step apart
    assert any(line.startswith("epoch 1: epoch_g_loss: ") for line in logs)
    ck = tmp_path / "a" / "checkpoint" / "vanilla_mnist_8_28"
    assert "VanillaGAN.model-17.index" in os.listdir(ck)
    names = [n for n, _ in tf.train.list_variables(str(ck / "VanillaGAN.model-17"))]
    assert sum(n.startswith("d_h") and "_dropout_seed" in n for n in names) == 3
    assert os.listdir(tmp_path / "a" / "logs")


def test_grids_every_tenth_epoch_by_default(tmp_path):
    # Epochs 0..10 of one step each: the original's epoch % 10 == 0 gives grids at 0 and 10.
    x = fake_images(8)
    runner.run(CFG, train_cfg(tmp_path, epoch=11, sample_every_epochs=10), arrays=x, log=quiet)
    out = tmp_path / "samples" / "vanilla"
    assert sorted(f for f in os.listdir(out) if f.endswith(".png")) == ["img_0.png", "img_10.png", "loss.png"]


SAVED_MODEL_CHECK = r"""
import sys, numpy as np, tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
sig = m.signatures["serving_default"]
out = sig(z=tf.constant(np.load(sys.argv[2])))
np.save(sys.argv[3], out["images"].numpy())
print(sorted(sig.structured_input_signature[1]), sorted(out), "cogan_tf" in sys.modules)
"""


def test_saved_model_round_trip_in_fresh_process_and_evaluate(tmp_path):
    x = fake_images(16)
    runner.run(CFG, train_cfg(tmp_path, max_steps=2), arrays=x, log=quiet)
    gan = runner.run(CFG, train_cfg(tmp_path), is_train=False, arrays=x, log=quiet)
    assert sorted(os.listdir(tmp_path / "evaluate" / "vanilla")) == [f"test_0{i}.png" for i in range(4)]
    path = str(tmp_path / "export" / "vanilla")
    z = np.random.default_rng(0).standard_normal((5, 128)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    last = run_without_cogan_tf(SAVED_MODEL_CHECK, path, tmp_path / "z.npy", tmp_path / "out.npy", cwd=tmp_path)
    assert last == "['z'] ['images'] False"
    got = np.load(tmp_path / "out.npy")
    assert got.shape == (5, 28, 28, 1) and got.min() >= 0 and got.max() <= 1
    # (tanh + 1) / 2 of the in-memory generator.
    np.testing.assert_allclose(got, (gan.generator(tf.constant(z)).numpy() + 1) / 2, atol=1e-6)
    np.testing.assert_allclose(got, gan.generate(z), atol=1e-6)
    # The evaluate run exported over the training run's SavedModel: replaced atomically, nothing left over.
    assert not [f for f in os.listdir(os.path.dirname(path)) if f.startswith((".tmp", ".old"))]


# --- the wider network (--hidden_size 1024) ----------------------------------------------------------

def test_checkpoint_at_1024_units_resumes_only_at_1024(tmp_path):
    """A checkpoint of 1024 units (``--hidden_size 1024``) resumes with that width, is refused in one line
    naming the flag at the default 128, and is rebuilt at 1024 by ``python -m cogan_tf.evaluate
    --checkpoint_dir``."""
    from cogan_tf.errors import UsageError

    x = fake_images(16)
    wide = C.VanillaConfig(hidden=1024)
    runner.run(wide, train_cfg(tmp_path, max_steps=1), arrays=x, log=quiet)
    ck = tmp_path / "checkpoint" / "vanilla_mnist_8_28"
    saved = json.loads((ck / "config.json").read_text())
    assert saved["model_config"] == {"z_dim": 128, "hidden": 1024, "dropout": 0.3, "leak": 0.2}

    with pytest.raises(UsageError, match=r"trained with hidden=1024 \(here 128, flag --hidden_size\)"):
        runner.run(CFG, train_cfg(tmp_path, max_steps=2), arrays=x, log=quiet)
    logs = []
    gan = runner.run(wide, train_cfg(tmp_path, max_steps=2), arrays=x, log=logs.append)
    assert gan.generator.h1.kernel.shape == (1024, 1024)
    assert any("Load SUCCESS" in line and "step 1" in line for line in logs)
    assert int(gan.g_opt.iterations) == 2  # one step restored, one more trained
    restored = runner.gan_from_checkpoint(str(tmp_path / "checkpoint"), str(tmp_path), log=quiet)
    assert restored.model_cfg.hidden == 1024 and restored.discriminator.h0.kernel.shape == (784, 1024)
