"""The original CoGAN as it ran (docs/ORIGINAL.md §1, Q1-Q3): the double-sigmoid loss, scalar BatchNorm
statistics on the dense layers, min-max stretched grids, in the CoGAN as it trains and exports; and the flags that
give the usual behaviour. (The losses and layers themselves: tests/test_losses.py, test_layers.py,
test_cogan_networks.py.)"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from cogan_tf import config as C
from cogan_tf import images, runner
from cogan_tf.errors import UsageError
from cogan_tf.cogan_networks import build_cogan
from tests.conftest import fit, np_bce, np_sigmoid, scalar_bn_reference, train_config

RNG = np.random.default_rng(7)


# --- Q1: sigmoid(h3) taken as the logits (the losses themselves: tests/test_losses.py) ------------------

def test_cogan_losses_use_the_double_sigmoid_by_default(tmp_path):
    x = RNG.integers(0, 256, (16, 28, 28, 1), dtype=np.uint8)
    for loss_on_logits in (False, True):
        gan = runner.make_gan(C.CoganConfig(loss_on_logits=loss_on_logits), train_config(tmp_path, batch_size=8),
                              arrays=[x, 255 - x])
        gan.build()
        imgs = tf.constant(x[:8], tf.float32) / 255.0
        h3 = gan.discriminator.logits(imgs, 1, training=True).numpy()
        got = float(gan.d_losses(imgs, imgs, imgs, imgs, training=True)["d1_loss_real"])
        p = np_sigmoid(h3) if loss_on_logits else np_sigmoid(np_sigmoid(h3))
        np.testing.assert_allclose(got, np_bce(p, 0.9), rtol=1e-4)


# --- Q2: one scalar mean and variance on 2-D inputs (the BatchNorm: tests/test_layers.py, test_cogan_networks.py)


def test_exported_generator_computes_what_training_computed(tmp_path):
    from cogan_tf.export import export_cogan
    from cogan_tf.cogan_fast import generate_pair

    g, _ = build_cogan(C.CoganConfig())
    z = tf.constant(RNG.normal(size=(64, 100)).astype(np.float32))
    path = export_cogan(g, 100, str(tmp_path / "cogan"))
    served = tf.saved_model.load(path).signatures["serving_default"](z=z)
    # The training step's generator (sub-pixel heads) in sampling mode, and a hand-computed h1 with
    # scalar statistics: g_h1's output is normalised by ONE mean and variance.
    top, bot = generate_pair(g, z, training=False)
    np.testing.assert_allclose(served["top"].numpy(), top.numpy(), atol=2e-5)
    np.testing.assert_allclose(served["bot"].numpy(), bot.numpy(), atol=2e-5)
    h = g.h1(z)
    np.testing.assert_allclose(g.bn1(h, training=False).numpy(),
                               scalar_bn_reference(h, g.bn1.gamma, g.bn1.beta).numpy(), rtol=1e-4, atol=1e-4)


# --- Q3: grids stretched to 0..255 per grid -------------------------------------------------------

def test_dim_grid_is_stretched_to_0_255_with_the_originals_rounding():
    x = RNG.uniform(0.2, 0.3, (64, 28, 28)).astype(np.float32)
    x[0, 0, 0], x[5, 3, 4] = 0.2, 0.3
    grid = images.make_grid(x, scaling="stretch")
    assert grid.min() == 0 and grid.max() == 255
    tiled = x.reshape(8, 8, 28, 28).transpose(0, 2, 1, 3).reshape(224, 224).astype(np.float64)
    lo, hi = tiled.min(), tiled.max()
    # scipy.misc.bytescale: truncation after adding 0.5, in float64
    for (r, c) in [(0, 0), (1, 1), (100, 57), (223, 223)]:
        assert grid[r, c] == int((tiled[r, c] - lo) * 255.0 / (hi - lo) + 0.5)
    # fixed: output x 255, rounded; the dim grid stays dim
    fixed = images.make_grid(x, scaling="fixed")
    assert fixed.max() <= 77 and fixed[0, 0] == 51
    # a constant grid: span taken as 1, everything 0 (as scipy's bytescale)
    assert images.make_grid(np.full((64, 28, 28), 0.4), scaling="stretch").max() == 0
    with pytest.raises(images.GridError, match="scaling"):
        images.make_grid(x, scaling="log")


def test_cogan_grids_are_stretched_rgb_by_default_and_fixed_with_the_flag(tmp_path):
    x = RNG.integers(0, 256, (32, 28, 28, 1), dtype=np.uint8)
    for scaling in ("stretch", "fixed"):
        cfg = train_config(tmp_path / scaling, batch_size=8, grid_scaling=scaling)
        gan = runner.make_gan(C.CoganConfig(), cfg, arrays=[x, 255 - x])
        gan.build()
        paths = gan.write_grids(str(tmp_path / scaling / "g"), "train_00_0099", gan.sample_z)
        with Image.open(paths["top"]) as im:
            assert im.mode == "RGB" and im.size == (224, 224)
            a = np.asarray(im)
        assert (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()
        out = gan.generate(gan.sample_z)["top"][:64]
        if scaling == "stretch":
            assert a.min() == 0 and a.max() == 255
        else:
            np.testing.assert_array_equal(a[..., 0], images.make_grid(out, scaling="fixed"))


# --- flags, config.json and old checkpoints --------------------------------------------------------

FLAGS_TO_CONFIG = r"""
from cogan_tf.scripts import main
main.define_flags()
for argv in ([], ["--corrected"], ["--loss_on_logits"], ["--bn_per_feature"], ["--grid_scaling", "fixed"]):
    main.FLAGS.unparse_flags()
    main.FLAGS(["main.py"] + argv)
    main.validate(main.FLAGS)
    m, t = main.build_configs(main.FLAGS)
    print(m.loss_on_logits, m.bn_per_feature, m.h0_feeds_h1, m.d_h0_filters, m.bn_batch_stats_at_inference,
          t.grid_scaling)
"""


def test_corrected_switches_on_every_correction_and_each_flag_alone():
    import subprocess
    import sys

    from tests.conftest import ROOT

    r = subprocess.run([sys.executable, "-c", FLAGS_TO_CONFIG], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().split("\n") == [
        "False False False None True stretch",  # faithful: Q1, Q2, Q3 and the three older quirks
        "True True True 64 False stretch",  # --corrected: every correction of the network and its training
        "True False False None True stretch",
        "False True False None True stretch",
        "False False False None True fixed",
    ]


def test_config_json_records_the_settings_and_a_resume_with_others_is_refused(tmp_path):
    x = RNG.integers(0, 256, (32, 28, 28, 1), dtype=np.uint8)
    cfg = train_config(tmp_path, batch_size=8, max_steps=2)
    fit(runner.make_gan(C.CoganConfig(), cfg, arrays=[x, 255 - x]))
    ckpt_dir = tmp_path / "checkpoint" / "mnist_8_28"
    saved = json.loads((ckpt_dir / "config.json").read_text())
    assert saved["model_config"]["loss_on_logits"] is False and saved["model_config"]["bn_per_feature"] is False
    assert saved["grid_scaling"] == "stretch"
    # Resumed with Q1 and Q2 corrected, it is refused in one line naming both flags; as trained, it resumes.
    cfg = train_config(tmp_path, batch_size=8, max_steps=3)
    corrected = C.CoganConfig(loss_on_logits=True, bn_per_feature=True)
    with pytest.raises(UsageError, match="--loss_on_logits.*--bn_per_feature|--bn_per_feature.*--loss_on_logits"):
        fit(runner.make_gan(corrected, cfg, arrays=[x, 255 - x]))
    loop = fit(runner.make_gan(C.CoganConfig(), cfg, arrays=[x, 255 - x]))
    assert int(loop.step.numpy()) == 3


def test_cogan_only_flags_refused_for_other_models(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    for flag in ("--loss_on_logits", "--bn_per_feature", "--grid_scaling=fixed"):
        r = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "--model", "vanilla", flag],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert r.returncode == 2 and "only for --model cogan" in r.stderr and len(r.stderr.strip().splitlines()) == 1
