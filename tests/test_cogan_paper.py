"""cogan_tf/cogan_paper.py: the CoGAN's --recipe paper and conditional (PaperCoGAN): one real training step (one D
and one G update, every trainable variable moved, the recipe recorded), a fresh z for G's update and images scaled by
1/256 as Caffe's data layers do, an exact resume, the SavedModel and the evaluation's uniform z; and the port's step
against the plain step (``use_plain_layers``) from the same weights, data and random draws."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import keras

from cogan_tf import config as C, record as record_lib, runner
from cogan_tf.errors import UsageError
from cogan_tf.cogan_paper import PaperCoGAN
from tests.conftest import run_without_cogan_tf, train_config
from tests.tolerance import assert_gradients_close, sum_rounding

PAPER = C.cogan_config("paper")
CONDITIONAL = C.cogan_config("conditional")


def fake_domains(n=32, seed=0):
    x = np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    return [x, 255 - x]


def cfg(tmp_path, **kw):
    return train_config(tmp_path, **{**dict(batch_size=8, epoch=100), **kw})


def variables(gan):
    return {v.path: v.numpy() for v in gan.generator.variables + gan.discriminator.variables}


@pytest.mark.parametrize("model_cfg", [PAPER, CONDITIONAL], ids=["paper", "conditional"])
def test_one_real_training_step(tmp_path, model_cfg):
    """One step through the training loop: one D and one G update (each optimizer once), every trainable
    variable moved, G's BatchNorm moving averages updated twice (D's update runs G forward too)."""
    x = fake_domains()
    gan = runner.make_gan(model_cfg, cfg(tmp_path), arrays=x)
    keras.utils.set_random_seed(3)
    gan.build()
    before = variables(gan)
    out = runner.run(model_cfg, cfg(tmp_path, max_steps=1), arrays=x, log=lambda s: None)
    assert isinstance(out, PaperCoGAN) and out.model_cfg.recipe == model_cfg.recipe
    assert int(out.d_opt.iterations) == int(out.g_opt.iterations) == 1
    after = {v.path: v for v in out.generator.variables + out.discriminator.variables}
    for v in out.generator.trainable_variables + out.discriminator.trainable_variables:
        assert not np.array_equal(v.numpy(), before[v.path]), v.path
    weights = [v for p, v in after.items() if p.endswith("weight_sum")]
    assert len(weights) == 4 and all(float(w.numpy()) == pytest.approx(1.999) for w in weights)
    # config.json records the recipe and its sharing: the run is rebuilt from it.
    record = record_lib.RunRecord.read(str(tmp_path / "checkpoint" / "mnist_8_28"))
    assert C.model_config_from_dict("cogan", record.model_config) == model_cfg


def test_step_draws_fresh_z_for_g_and_scales_by_256(tmp_path, monkeypatch):
    gan = runner.make_gan(PAPER, cfg(tmp_path), arrays=fake_domains())
    gan.build()
    zs, seen = [], []
    draw = gan.draw_z
    monkeypatch.setattr(gan, "draw_z", lambda n: zs.append(draw(n)) or zs[-1])
    d_losses = gan.d_losses
    monkeypatch.setattr(gan, "d_losses", lambda x1, *a, **k: seen.append(x1) or d_losses(x1, *a, **k))
    x1 = tf.constant(np.full((8, 28, 28, 1), 255, np.uint8))
    gan.train_step(x1, x1)
    assert len(zs) == 2 and not np.allclose(zs[0], zs[1])
    assert float(tf.reduce_min(zs[0])) >= -1 and float(tf.reduce_max(zs[0])) <= 1
    assert float(seen[0][0, 0, 0, 0]) == 255 / 256  # Caffe's data layers scale by 0.00390625


def test_resume_continues_exactly(tmp_path):
    x = fake_domains()
    full = runner.run(PAPER, cfg(tmp_path / "a", max_steps=4), arrays=x, log=lambda s: None)
    runner.run(PAPER, cfg(tmp_path / "b", max_steps=2), arrays=x, log=lambda s: None)
    logs = []
    resumed = runner.run(PAPER, cfg(tmp_path / "b", max_steps=4), arrays=x, log=logs.append)
    assert any("Load SUCCESS" in line for line in logs)
    assert int(resumed.g_opt.iterations) == int(full.g_opt.iterations) == 4
    a, b = variables(full), variables(resumed)
    for k in a:
        # Two uninterrupted runs of the same command differ by up to 6e-6 here (oneDNN's multithreaded sums
        # are not summed in a fixed order); a wrong z, dropout draw or data batch would move weights by ~lr.
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-5, err_msg=k)
    np.testing.assert_array_equal(full.rng.state.numpy(), resumed.rng.state.numpy())
    with pytest.raises(UsageError, match="g_shared_layers"):  # another sharing is another network
        runner.run(dataclasses.replace(PAPER, g_shared_layers=2), cfg(tmp_path / "b", max_steps=6), arrays=x,
                   log=lambda s: None)


SAVED_MODEL_CHECK = r"""
import sys, numpy as np, tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
z = np.load(sys.argv[2])
out = m.signatures["serving_default"](z=tf.constant(z))
np.savez(sys.argv[3], top=out["top"].numpy(), bot=out["bot"].numpy(), uniform=m.z_uniform.numpy())
print("cogan_tf" in sys.modules)
"""


def test_saved_model_round_trip_and_the_evaluation_draws_uniform_z(tmp_path):
    from cogan_tf.evaluate import samples as sampling

    gan = runner.run(PAPER, cfg(tmp_path, max_steps=2), arrays=fake_domains(), log=lambda s: None)
    path = str(tmp_path / "export" / "cogan")
    z = gan.sample_noise(np.random.default_rng(0), 16)
    np.save(tmp_path / "z.npy", z)
    assert run_without_cogan_tf(SAVED_MODEL_CHECK, path, tmp_path / "z.npy", tmp_path / "o.npz", cwd=tmp_path) == "False"
    got = np.load(tmp_path / "o.npz")
    assert bool(got["uniform"])
    top, bot = gan.generator(tf.constant(z), training=False)  # Caffe's deploy network: moving averages
    np.testing.assert_allclose(got["top"], top.numpy(), atol=1e-5)
    np.testing.assert_allclose(got["bot"], bot.numpy(), atol=1e-5)
    # The report's samples are of z ~ U(-1, 1), as the model trained, drawn from the seed's generator.
    samples = sampling.generate(sampling.load_saved_model(path), n=8, seed=5, batch_size=8)
    z5 = np.random.default_rng(5).uniform(-1, 1, (8, 100)).astype(np.float32)
    np.testing.assert_allclose(samples.images["top"], gan.generator(tf.constant(z5))[0].numpy(), atol=1e-5)


# --- the port's step against the plain step ------------------------------------------------------------------

# The paper network at batch 16: its longest sums are the BatchNorm statistics of G's l3 (16 x 25 x 25 =
# 10,000 terms); a value passes at most 9 layers (G's 5, D's 4) forward, as many backward: 4.3e-4.
PAPER_RTOL = sum_rounding(10_000, 1.0, 9)


def make(plain: bool, batch=16, seed=3):
    rng = np.random.default_rng(seed)
    x = [rng.integers(0, 256, (batch, 28, 28, 1), dtype=np.uint8) for _ in range(2)]
    gan = runner.make_gan(C.cogan_config("paper"), C.TrainConfig(batch_size=batch, seed=seed,
                                                                  checkpoint_dir="/nonexistent"), arrays=x)
    keras.utils.set_random_seed(seed)
    gan.build()
    if plain:
        gan.use_plain_layers()
    return gan, [tf.constant(a) for a in x]


def one_pass_gradients(gan, x):
    """D's and G's gradients of one pass from the gan's current weights, on fixed z and dropout draws."""
    x1, x2 = (tf.cast(a, tf.float32) / 256.0 for a in x)
    z = tf.random.stateless_uniform([16, 100], seed=[6, 1], minval=-1, maxval=1)
    with tf.GradientTape(persistent=True) as tape:
        fake1, fake2 = gan.generator(z, training=True)
        d = gan.d_losses(x1, x2, fake1, fake2, training=True,
                         noise=tf.random.stateless_uniform([64, 500], seed=[6, 2]))["d_loss"]
        g = gan.g_losses(fake1, fake2, training=True, noise=tf.random.stateless_uniform([32, 500], seed=[6, 3]))["g_loss"]
    return (float(d), float(g)), tape.gradient(d, gan.d_vars), tape.gradient(g, gan.g_vars)


def test_port_step_equals_the_plain_step():
    """From the same weights, data and random draws: the gradients of one pass to rounding, and the first
    step's losses (later steps drift apart by Adam's sign-like first updates of near-zero gradients, as for
    the original network: docs/PERFORMANCE.md)."""
    port, x = make(plain=False)
    ref, x_ref = make(plain=True)
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(port.g_vars + port.d_vars, ref.g_vars + ref.d_vars))
    (la, da, ga), (lb, db, gb) = one_pass_gradients(port, x), one_pass_gradients(ref, x_ref)
    assert la == pytest.approx(lb, rel=PAPER_RTOL)
    assert assert_gradients_close(port.d_vars, da, db, rtol=PAPER_RTOL) == len(port.d_vars)
    assert assert_gradients_close(port.g_vars, ga, gb, rtol=PAPER_RTOL) == len(port.g_vars)
    a = tf.function(port.train_step)(*x)
    b = tf.function(ref.train_step)(*x_ref)
    assert a.keys() == b.keys()
    for k in a:
        assert float(a[k]) == pytest.approx(float(b[k]), rel=PAPER_RTOL), k
