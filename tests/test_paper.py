"""The CoGAN's --recipe paper / conditional: the paper's network (shapes, what the domains share for every
sharing setting), its layers against Caffe's definitions, its solver (AlterAdam), one real training step,
resume, the SavedModel, the recipe's defaults and every new flag's refusals."""

import dataclasses
import math
import os

import numpy as np
import pytest
import tensorflow as tf
import keras

from cogan_tf import config as C, record as record_lib, runner
from cogan_tf.errors import UsageError
from cogan_tf.cogan_paper import PaperCoGAN
from cogan_tf.paper_layers import CaffeAdam, CaffeBatchNorm, caffe_deconv, channel_prelu
from cogan_tf.paper_networks import build_paper_networks, caffe_multipliers, sharing
from tests.conftest import count_params, run_main_refusal, run_without_cogan_tf, train_config

PAPER = C.cogan_config("paper")
CONDITIONAL = C.cogan_config("conditional")


def fake_domains(n=32, seed=0):
    x = np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    return [x, 255 - x]


def cfg(tmp_path, **kw):
    return train_config(tmp_path, **{**dict(batch_size=8, epoch=100), **kw})


def shapes(model):
    return {v.path.split("/", 1)[1]: tuple(v.shape) for v in model.variables}


# --- the network ------------------------------------------------------------------------------------------------

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


# --- the layers -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("h, c_in, c_out, k, s, p", [(4, 16, 8, 3, 2, 1), (13, 8, 4, 3, 2, 1), (25, 8, 1, 6, 1, 1)])
def test_caffe_deconvolution_is_the_cropped_full_one(h, c_in, c_out, k, s, p):
    """Caffe computes a padded deconvolution as the full one with the border dropped; TensorFlow's SAME (the
    3x3 stride-2 layers) and explicit padding (the 6x6 output layers) give the same sums."""
    x = tf.random.normal([2, h, h, c_in])
    w = tf.random.normal([k, k, c_out, c_in])
    crop = caffe_deconv(x, w, s, p, method="crop")
    assert crop.shape[1] == (h - 1) * s + k - 2 * p
    for method in ("auto", "explicit"):
        np.testing.assert_allclose(caffe_deconv(x, w, s, p, method=method).numpy(), crop.numpy(), atol=1e-4)


def test_batchnorm_statistics_and_caffe_moving_averages():
    bn = CaffeBatchNorm()
    x1 = tf.random.normal([4, 3, 3, 2]) * 3 + 1
    x2 = tf.random.normal([4, 3, 3, 2]) * 2 - 1
    bn.build(x1.shape)
    bn.beta.assign([0.5, -0.5])
    mean, var = bn.moving_statistics()
    np.testing.assert_array_equal(mean.numpy(), 0.0)  # Caffe: 0 / 0 counts as 0 before the first update
    y = bn(x1, training=True)
    m1, v1 = tf.nn.moments(x1, [0, 1, 2])
    np.testing.assert_allclose(y.numpy(), ((x1 - m1) / tf.sqrt(v1 + 1e-5) + [0.5, -0.5]).numpy(), atol=1e-5)
    bn(x2, training=True)
    m2, v2 = tf.nn.moments(x2, [0, 1, 2])
    n = 36
    # Caffe: sums decayed by 0.999 and a normaliser 0.999 + 1; the variance with Bessel's correction.
    mean, var = bn.moving_statistics()
    np.testing.assert_allclose(mean.numpy(), ((0.999 * m1 + m2) / 1.999).numpy(), rtol=1e-5)
    np.testing.assert_allclose(var.numpy(), ((0.999 * v1 + v2) * n / (n - 1) / 1.999).numpy(), rtol=1e-4)
    # Inference (Caffe's deploy network) normalises with them.
    np.testing.assert_allclose(bn(x1, training=False).numpy(),
                               ((x1 - mean) / tf.sqrt(var + 1e-5) + [0.5, -0.5]).numpy(), atol=1e-5)


def test_prelu_is_caffes_with_one_slope_per_channel():
    x = tf.constant([[-2.0, 3.0], [1.0, -4.0]])
    a = tf.constant([0.25, 0.5])
    with tf.GradientTape() as tape:
        tape.watch([x, a])
        y = channel_prelu(x, a)
        total = tf.reduce_sum(y * [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(y.numpy(), [[-0.5, 3.0], [1.0, -2.0]])
    dx, da = tape.gradient(total, [x, a])
    np.testing.assert_array_equal(dx.numpy(), [[0.25, 2.0], [3.0, 2.0]])
    np.testing.assert_array_equal(da.numpy(), [-2.0, -16.0])


@pytest.mark.parametrize("phase, lr_mult, decay_mult", [(1, 1.0, 1.0), (2, 2.0, 0.0), (0, 1.0, 0.0)])
def test_caffe_adam_by_hand(phase, lr_mult, decay_mult):
    """AlterAdam: the k-th update of a player corrects with the solver's counter t = 2k - 1 (D) or 2k (G);
    weight decay is added to the gradient; lr_mult scales the step."""
    w = tf.Variable([1.0, -2.0])
    opt = CaffeAdam(1e-2, 0.5, 0.999, weight_decay_l2=0.1, phase=phase, multipliers=lambda v: (lr_mult, decay_mult))
    opt.build([w])
    m = v = np.zeros(2)
    w_ref = np.array([1.0, -2.0])
    for k in (1, 2, 3):
        g = np.array([0.3, 0.1]) * k
        opt.apply_gradients([(tf.constant(g, tf.float32), w)])
        g = g + 0.1 * decay_mult * w_ref
        m = 0.5 * m + 0.5 * g
        v = 0.999 * v + 0.001 * g * g
        t = {0: k, 1: 2 * k - 1, 2: 2 * k}[phase]
        w_ref = w_ref - 1e-2 * lr_mult * math.sqrt(1 - 0.999 ** t) / (1 - 0.5 ** t) * m / (np.sqrt(v) + 1e-8)
        np.testing.assert_allclose(w.numpy(), w_ref, rtol=1e-5)


# --- training ---------------------------------------------------------------------------------------------------

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


# --- recipe defaults and flags ----------------------------------------------------------------------------------

def test_recipe_defaults():
    t = C.train_config("cogan", "paper")
    assert (t.disjoint_domains, t.max_steps, t.batch_size, t.learning_rate, t.beta1, t.beta2) == (
        True, 25000, 128, 2e-4, 0.5, 0.999)
    assert C.train_config("cogan").disjoint_domains is False
    assert (PAPER.g_shared_layers, PAPER.d_shared_layers, PAPER.real_target, PAPER.fake_target) == (4, 3, 1.0, 0.0)


MAIN_CONFIGS = r"""
from cogan_tf.scripts import main
main.define_flags()
for argv in (["--recipe", "paper", "--g_shared_layers", "2", "--d_shared_layers", "0"],
             ["--recipe", "conditional", "--disjoint_domains=False", "--max_steps", "500", "--paper_init", "pytorch"],
             []):
    main.FLAGS.unparse_flags()
    main.FLAGS(["main.py"] + argv)
    main.validate(main.FLAGS)
    m, t = main.build_configs(main.FLAGS)
    print(m.recipe, m.g_shared_layers, m.d_shared_layers, m.paper_init, m.real_target, t.disjoint_domains, t.max_steps,
          t.epoch)
"""


def test_main_resolves_the_recipe_and_sharing_flags():
    import subprocess
    import sys

    from tests.conftest import ROOT

    r = subprocess.run([sys.executable, "-c", MAIN_CONFIGS], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines() == [
        "paper 2 0 caffe 1.0 True 25000 1000",  # the paper's halves and length unless told otherwise
        "conditional 4 3 pytorch 1.0 False 500 1000",
        "original 4 3 caffe 0.9 False None 25",  # the original's defaults unchanged
    ]


@pytest.mark.parametrize("args, message", [
    (["--recipe", "paper", "--g_shared_layers", "5"],
     "error: --g_shared_layers=5: must be 0 to 4 (the layer next to the image stays per domain)"),
    (["--recipe", "paper", "--d_shared_layers", "4"],
     "error: --d_shared_layers=4: must be 0 to 3 (the layer next to the image stays per domain)"),
    (["--recipe", "paper", "--d_shared_layers=-1"],
     "error: --d_shared_layers=-1: must be 0 to 3 (the layer next to the image stays per domain)"),
    (["--g_shared_layers", "2"], "error: --g_shared_layers=2: only for --model cogan --recipe paper"),
    (["--recipe", "conditional", "--d_shared_layers", "1"],
     "error: --d_shared_layers=1: only for --model cogan --recipe paper (the conditional GAN shares everything)"),
    (["--model", "vanilla", "--recipe", "paper"], "error: --recipe=paper: not a recipe of --model vanilla; "
     "cogan: original, paper, conditional; clustergan: original, paper"),
    (["--model", "clustergan", "--recipe", "conditional"], "error: --recipe=conditional: not a recipe of --model "
     "clustergan; cogan: original, paper, conditional; clustergan: original, paper"),
    (["--recipe", "paper", "--corrected"], "error: --corrected=True: only for the original CoGAN network, not --recipe paper"),
    (["--recipe", "conditional", "--loss_on_logits", "False"],
     "error: --loss_on_logits=False: only for the original CoGAN network, not --recipe conditional"),
    (["--recipe", "paper", "--mixed_precision"],
     "error: --mixed_precision=True: not for --recipe paper, whose layers compute in float32"),
    (["--recipe", "paper", "--strategy", "mirrored"], "error: --strategy=mirrored: --recipe paper trains on one device: "
     "drop --strategy"),
    (["--paper_init", "pytorch"], "error: --paper_init=pytorch: only for --model cogan --recipe paper or conditional"),
])
def test_new_flags_refused_in_one_line_before_tensorflow(tmp_path, args, message):
    r = run_main_refusal(tmp_path, args, message)
    assert "tensorflow" not in r.stderr.lower()


def test_paper_gan_class_is_picked_by_the_recipe(tmp_path):
    assert runner.gan_class("cogan", PAPER) is PaperCoGAN
    assert runner.gan_class("cogan", CONDITIONAL) is PaperCoGAN
    assert runner.gan_class("cogan", C.CoganConfig()).__name__ == "CoGAN"
    assert os.path.basename(runner.gan_class("cogan").__module__) == "cogan_tf.cogan"
