"""CoGAN port (cogan_tf/cogan.py): the update schedule, outputs, resume, export, and main.py's flags. (Its layers,
networks and losses: tests/test_layers.py, test_cogan_networks.py, test_losses.py; its speed levers:
test_cogan_fast.py.)"""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cogan_tf import config as C
from cogan_tf import runner
from cogan_tf.cogan import CoGAN
from cogan_tf.export import export_cogan
from tests.conftest import CORRECTED, FAITHFUL, ROOT, run_main_refusal, run_without_cogan_tf, train_config


def fake_domains(n=64, seed=0):
    x = np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    return [x, 255 - x]


def train_cfg(tmp_path, **kw):
    return train_config(tmp_path, **{**dict(batch_size=8), **kw})


# --- training step ----------------------------------------------------------------------------------

def one_step_gan(tmp_path, model_cfg, steps=1):
    gan = CoGAN(model_cfg, train_cfg(tmp_path), arrays=fake_domains())
    gan.build()
    before = {id(v): v.numpy().copy() for v in gan.g_vars + gan.d_vars}
    step = tf.function(gan.train_step)
    x1, x2 = gan.training_arrays()
    for _ in range(steps):
        out = step(x1[:8], x2[:8])
    return gan, before, out


def changed(gan, before, v):
    return not np.array_equal(before[id(v)], v.numpy())


def test_one_step_updates_ratio_and_weights_faithful(tmp_path):
    gan, before, out = one_step_gan(tmp_path, FAITHFUL)
    assert int(gan.d_opt.iterations) == 1 and int(gan.g_opt.iterations) == 2  # 1 D update : 2 G updates
    g, d = gan.generator, gan.discriminator
    for v in (g.h1.kernel, g.h2.kernel, g.act2.t, g.head1.kernel, g.head2.kernel):
        assert changed(gan, before, v), v.path
    for v in (d.stem1.h0.kernel, d.stem2.h0.kernel, d.stem2.h1.kernel, d.h2.kernel, d.h3.kernel, d.bn2.gamma):
        assert changed(gan, before, v), v.path
    for v in (g.h0.kernel, g.h0.bias, g.bn0.gamma, g.act0.t):  # dead h0 untouched
        assert not changed(gan, before, v), v.path
    assert set(out) >= {"d_loss", "g_loss", "d1_loss_real", "d2_loss_fake", "g1_loss", "g2_loss"}
    assert all(np.isfinite(float(v)) for v in out.values())


def test_one_step_corrected_trains_h0(tmp_path):
    gan, before, _ = one_step_gan(tmp_path, CORRECTED)
    g = gan.generator
    for v in (g.h0.kernel, g.bn0.gamma, g.act0.t):
        assert changed(gan, before, v), v.path


def test_second_g_update_uses_same_z(tmp_path, monkeypatch):
    # Replaying the step by hand with ONE z for all three updates reproduces the compiled step; a replay
    # that draws a fresh z for the G updates (the negative control) does not. Plain SGD: Adam's first
    # update is lr * sign(gradient), which turns float noise into whole steps. The comparison is by
    # norms against the control, not to the bit: BatchNorm over near-constant features amplifies the
    # rounding differences of multithreaded sums, which vary with load.
    import keras
    from cogan_tf import gan as gan_lib
    monkeypatch.setattr(gan_lib.GAN, "make_optimizer",
                        lambda self, lr, b1, b2, **kw: keras.optimizers.SGD(learning_rate=0.1))
    gan = CoGAN(FAITHFUL, train_cfg(tmp_path), arrays=fake_domains())
    gan.build()
    x1, x2 = [a[:8] for a in gan.training_arrays()]
    xf1, xf2 = tf.cast(x1, tf.float32) / 255, tf.cast(x2, tf.float32) / 255
    initial = [v.numpy().copy() for v in gan.generator.variables + gan.discriminator.variables]
    z_rng = tf.random.Generator.from_state(gan.rng.state.numpy(), gan.rng.algorithm)
    tf.function(gan.train_step)(x1, x2)
    z = z_rng.normal([8, 100])

    def replay(z_d, z_g):
        twin = CoGAN(FAITHFUL, train_cfg(tmp_path), arrays=fake_domains())
        twin.build()
        for v, value in zip(twin.generator.variables + twin.discriminator.variables, initial):
            v.assign(value)
        with tf.GradientTape() as tape:
            f1, f2 = twin.generator(z_d, training=True)
            dl = twin.d_losses(xf1, xf2, f1, f2, True)["d_loss"]
        twin.d_opt.apply_gradients(zip(tape.gradient(dl, twin.d_vars), twin.d_vars))
        for _ in range(2):
            with tf.GradientTape() as tape:
                f1, f2 = twin.generator(z_g, training=True)
                gl = twin.g_losses(f1, f2, True)["g_loss"]
            grads = tape.gradient(gl, twin.g_vars)
            twin.g_opt.apply_gradients([(g, v) for g, v in zip(grads, twin.g_vars) if g is not None])
        return twin

    def distance(a, b):
        return sum(float(np.sum((u.numpy() - v.numpy()) ** 2)) for u, v in zip(a.g_vars, b.g_vars)) ** 0.5

    same = distance(gan, replay(z, z))
    other = distance(gan, replay(z, z_rng.normal([8, 100])))
    moved = sum(float(np.sum((v.numpy() - w) ** 2)) for v, w in zip(gan.generator.variables, initial)) ** 0.5
    assert moved > 1e-2
    assert same < 0.05 * other, (same, other)


# --- the loop: grids, checkpoints, resume, export -----------------------------------------------------

def test_first_grid_names_and_checkpoint_names(tmp_path):
    # 101 steps of batch 4 over 404 images: the original writes its first grids at counter 101 (after
    # step 100, idx 99) and its first checkpoint at counter 2.
    x = fake_domains(404)
    cfg = train_cfg(tmp_path, batch_size=4, sample_every=100, save_every=500, max_steps=101)
    logs = []
    runner.run(FAITHFUL, cfg, arrays=x, log=logs.append)
    assert sorted(os.listdir(tmp_path / "samples" / "top")) == ["train_00_0099.png"]
    assert sorted(os.listdir(tmp_path / "samples" / "bot")) == ["train_00_0099.png"]
    from PIL import Image
    with Image.open(tmp_path / "samples" / "top" / "train_00_0099.png") as im:
        assert im.size == (224, 224) and im.mode == "RGB"  # as the original's (Q3)
    ck = tmp_path / "checkpoint" / "mnist_4_28"
    names = sorted(f for f in os.listdir(ck) if f.endswith(".index"))
    assert names == ["CoGAN.model-102.index", "CoGAN.model-2.index"]
    assert json.loads((ck / "config.json").read_text())["model_config"] == dataclasses.asdict(FAITHFUL)
    assert any(line.startswith("[Sample T] d_loss: ") for line in logs)
    assert any(line.startswith("[Sample B] d_loss: ") for line in logs)
    assert os.listdir(tmp_path / "logs")


def test_log_line_format(tmp_path):
    logs = []
    runner.run(FAITHFUL, train_cfg(tmp_path, log_every=1, max_steps=2), arrays=fake_domains(), log=logs.append)
    steps = [line for line in logs if line.startswith("Epoch:")]
    assert len(steps) == 2
    import re
    assert re.fullmatch(r"Epoch: \[ 0\] \[   1/   8\] time: \d+\.\d{4}, d_loss: \d+\.\d{8}, g_loss: \d+\.\d{8}", steps[1])


def assert_progress_lines(logs, root):
    """What a user plans with (cogan_tf/train.py's Progress): the start block naming the run, its length and
    its outputs, a rate and time-left line every epoch here (no grids), TensorBoard events in the run's folder."""
    import re

    ck = os.path.join(str(root / "checkpoint"), "mnist_8_28")
    board = os.path.join(str(root / "logs"), "cogan_mnist_8_28")
    assert f" [*] no checkpoint in {ck}: starting a new run" in logs
    assert " [*] cogan on mnist, batch 8: 2 epochs x 8 steps = 16 steps" in logs
    assert (f" [*] outputs: checkpoints {ck}; grids {root / 'samples'}; SavedModel {root / 'export' / 'cogan'}; "
            f"TensorBoard {board} (tensorboard --logdir {root / 'logs'})") in logs
    rates = [line for line in logs if line.startswith(" [*] step ")]
    assert [line.split(":")[0] for line in rates] == [" [*] step 8/16", " [*] step 16/16"]
    assert re.fullmatch(r" \[\*\] step 8/16: \d+\.\d{3} s/step, \d+ s left", rates[0]), rates[0]
    assert os.listdir(root / "logs") == ["cogan_mnist_8_28"] and os.listdir(board)


def test_resume_continues_exactly(tmp_path, weights):
    x = fake_domains(64)
    # Uninterrupted: 2 epochs of 8 steps.
    full_logs = []
    full = runner.run(FAITHFUL, train_cfg(tmp_path / "a", epoch=2), arrays=x, log=full_logs.append)
    assert_progress_lines(full_logs, tmp_path / "a")
    # Interrupted after 5 steps (checkpoint at the end), then resumed in a fresh GAN object.
    runner.run(FAITHFUL, train_cfg(tmp_path / "b", epoch=2, max_steps=5), arrays=x, log=lambda s: None)
    logs = []
    resumed = runner.run(FAITHFUL, train_cfg(tmp_path / "b", epoch=2), arrays=x, log=logs.append)
    assert any("Load SUCCESS" in line and "step 5" in line for line in logs)
    assert " [*] cogan on mnist, batch 8: 2 epochs x 8 steps = 16 steps, resuming at step 5" in logs
    assert int(resumed.g_opt.iterations) == int(full.g_opt.iterations) == 32
    for a, b in zip(weights(full), weights(resumed)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_array_equal(full.rng.state.numpy(), resumed.rng.state.numpy())


def test_checkpoint_holds_every_variable(tmp_path):
    # Trainable variables are also reachable through the optimizers; the BatchNorm moving averages are
    # reachable only through the models, so every one of them must be in the checkpoint.
    runner.run(FAITHFUL, train_cfg(tmp_path, max_steps=1), arrays=fake_domains(), log=lambda s: None)
    path = tf.train.latest_checkpoint(str(tmp_path / "checkpoint" / "mnist_8_28"))
    names = [n for n, _ in tf.train.list_variables(path)]
    assert sum("moving_mean" in n for n in names) == 3 + 3  # G: bn0..bn2; D: bn1 x2, bn2
    assert sum("moving_variance" in n for n in names) == 6


def test_resume_refuses_other_architecture(tmp_path):
    x = fake_domains(64)
    runner.run(FAITHFUL, train_cfg(tmp_path, max_steps=1), arrays=x, log=lambda s: None)
    from cogan_tf.errors import UsageError
    with pytest.raises(UsageError, match="h0_feeds_h1"):
        runner.run(dataclasses.replace(FAITHFUL, h0_feeds_h1=True), train_cfg(tmp_path, max_steps=2),
                   arrays=x, log=lambda s: None)


def test_seed_reproduces_a_run(tmp_path, weights):
    x = fake_domains(64)
    a = runner.run(FAITHFUL, train_cfg(tmp_path / "a", max_steps=3), arrays=x, log=lambda s: None)
    b = runner.run(FAITHFUL, train_cfg(tmp_path / "b", max_steps=3), arrays=x, log=lambda s: None)
    c = runner.run(FAITHFUL, train_cfg(tmp_path / "c", max_steps=3, seed=4), arrays=x, log=lambda s: None)
    for u, v in zip(weights(a), weights(b)):
        np.testing.assert_array_equal(u, v)
    assert not all(np.array_equal(u, v) for u, v in zip(weights(a), weights(c)))


def test_evaluate_without_checkpoint_is_refused(tmp_path):
    from cogan_tf.errors import UsageError
    with pytest.raises(UsageError, match="no checkpoint in .*mnist_8_28: train first"):
        runner.run(FAITHFUL, train_cfg(tmp_path), is_train=False, arrays=fake_domains(), log=lambda s: None)


def test_evaluate_writes_grids_and_export(tmp_path):
    x = fake_domains(64)
    runner.run(FAITHFUL, train_cfg(tmp_path, max_steps=2), arrays=x, log=lambda s: None)
    runner.run(FAITHFUL, train_cfg(tmp_path), is_train=False, arrays=x, log=lambda s: None)
    assert sorted(os.listdir(tmp_path / "evaluate" / "top"))[:2] == ["test_00.png", "test_01.png"]
    assert os.path.isfile(tmp_path / "export" / "cogan" / "saved_model.pb")


SAVED_MODEL_CHECK = r"""
import sys, json, numpy as np, tensorflow as tf
assert "cogan_tf" not in sys.modules
m = tf.saved_model.load(sys.argv[1])
z = np.load(sys.argv[2])
out = m.signatures["serving_default"](z=tf.constant(z))
ma = m.signatures["moving_average"](z=tf.constant(z))
np.savez(sys.argv[3], top=out["top"].numpy(), bot=out["bot"].numpy(), ma_top=ma["top"].numpy())
print("cogan_tf" in sys.modules)
"""


def test_saved_model_round_trip_in_fresh_process(tmp_path):
    gan, _, _ = one_step_gan(tmp_path, FAITHFUL, steps=2)
    path = export_cogan(gan.generator, 100, str(tmp_path / "export" / "cogan"))
    z = np.random.default_rng(0).standard_normal((64, 100)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    last = run_without_cogan_tf(SAVED_MODEL_CHECK, path, tmp_path / "z.npy", tmp_path / "out.npz", cwd=tmp_path)
    assert last == "False"
    got = np.load(tmp_path / "out.npz")
    top, bot = gan.generator(tf.constant(z), training=False)
    assert got["top"].shape == got["bot"].shape == (64, 28, 28, 1)
    np.testing.assert_allclose(got["top"], top.numpy(), atol=1e-5)
    np.testing.assert_allclose(got["bot"], bot.numpy(), atol=1e-5)
    # The moving-average signature is a different BatchNorm mode, hence different images.
    assert not np.allclose(got["ma_top"], got["top"], atol=1e-3)
    # Re-exporting replaces the directory atomically (no .tmp left behind).
    export_cogan(gan.generator, 100, path)
    assert not [f for f in os.listdir(os.path.dirname(path)) if f.startswith((".tmp", ".old"))]


# --- main.py flags ----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--batch_size", "0"], "error: --batch_size=0: must be at least 1"),
    (["--epoch=-1"], "error: --epoch=-1: must be 0 or more"),
    (["--dataset", "celebA"], "error: --dataset=celebA: unknown dataset; choose one of mnist, fashion_mnist"),
    (["--train_size", "100"], "error: --train_size=100.0: smaller than one batch (128); lower --batch_size or raise --train_size"),
    (["--learning_rate", "0"], "error: --learning_rate=0.0: must be a positive number"),
    (["--beta1", "1.5"], "error: --beta1=1.5: must be in [0, 1)"),
    (["--is_train", "True", "extra"], "error: unexpected arguments 'extra' (see --help)"),
    (["--zn_sigma", "0.1"], "error: --zn_sigma=0.1: only for --model clustergan"),
    (["--model", "clustergan", "--zn_sigma", "0"], "error: --zn_sigma=0.0: must be a positive number"),
    (["--mixed_precision_dtype", "bfloat16"],
     "error: --mixed_precision_dtype=bfloat16: has no effect without --mixed_precision; add --mixed_precision or drop it"),
    (["--mixed_precision", "False", "--mixed_precision_dtype", "float16"],
     "error: --mixed_precision_dtype=float16: has no effect without --mixed_precision; add --mixed_precision or drop it"),
    (["--seed=-1"], "error: --seed=-1: must be 0 or more"),
    (["--seed", "4294967296"], "error: --seed=4294967296: must be at most 4294967295 (2^32 - 1: numpy's seeds are "
                               "32-bit)"),
    (["--model", "vanilla", "--corrected"], "error: --corrected=True: only for --model cogan, not vanilla"),
    (["--model", "clustergan", "--d_h0_filters", "64"], "error: --d_h0_filters=64: only for --model cogan, not clustergan"),
    (["--model", "vanilla", "--h0_feeds_h1", "True"], "error: --h0_feeds_h1=True: only for --model cogan, not vanilla"),
])
def test_bad_flags_one_line_before_tensorflow(tmp_path, args, message):
    r = run_main_refusal(tmp_path, args, message)
    assert "tensorflow" not in r.stderr.lower()


def test_the_largest_seed_trains(tmp_path):
    from cogan_tf import runner
    from tests.conftest import fake_images, quiet, train_config

    seed = C.SEED_LIMIT - 1  # 2^32 - 1: numpy's largest
    gan = runner.run(C.model_config("vanilla"), train_config(tmp_path, model="vanilla", batch_size=8, max_steps=1,
                                                             seed=seed), arrays=fake_images(16),
                     log=quiet)
    assert gan.seed == seed


def test_main_missing_data_names_the_command(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "--is_train", "True",
                        "--data_dir", str(tmp_path / "nodata")], capture_output=True, text=True, cwd=str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path}/nodata/mnist/train-images-idx3-ubyte: not found; run `python download.py mnist` first")
