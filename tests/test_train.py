"""cogan_tf/train.py: the one training loop's host work between two steps, one fetch of all the step's losses (the
step's one wait for the device) and TensorBoard's loss scalars every --summary_every steps with the values the log
line shows; and what a user plans with, the progress bar instead of the per-step lines and durations for humans.
(The start block, the rate lines and the per-run TensorBoard folder are checked on tests/test_cogan.py's resume
runs, assert_progress_lines, which train and resume anyway; checkpoints, stops and failures in whole runs:
tests/test_no_run_lost.py.)"""

import glob
import os
import re

import numpy as np
import tensorflow as tf

from cogan_tf import config as C, gan as gan_lib, runner, train
from tests.conftest import fake_images, train_config


def test_each_step_fetches_its_losses_once(tmp_path, monkeypatch):
    fetches = []

    class Fetched:
        """The step's output: counts the host's reads of it."""

        def __init__(self, t):
            self.t = t

        def numpy(self):
            fetches.append(1)
            return self.t.numpy()

    compiled = gan_lib.GAN.compiled_step

    def counted(self, step=None):
        fn = compiled(self, step)
        return lambda *batch: Fetched(fn(*batch))

    monkeypatch.setattr(gan_lib.GAN, "compiled_step", counted)
    lines = []
    runner.run(C.VanillaConfig(), train_config(tmp_path, model="vanilla", batch_size=8, max_steps=6, log_every=1),
               arrays=fake_images(64), log=lines.append)
    assert len(fetches) == 6
    assert len([line for line in lines if line.startswith("Epoch:")]) == 6  # the original's line, every step


def test_tensorboard_loss_scalars_every_n_steps(tmp_path):
    lines = []
    cfg = train_config(tmp_path, model="vanilla", batch_size=8, max_steps=7, log_every=1, summary_every=3)
    runner.run(C.VanillaConfig(), cfg, arrays=fake_images(64), log=lines.append)
    logged = [float(m.group(1)) for m in (re.search(r"d_loss: ([0-9.]+)", line) for line in lines
                                          if line.startswith("Epoch:"))]
    written = {}
    for path in glob.glob(os.path.join(cfg.log_dir, "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "d_loss":
                    written[event.step] = float(tf.make_ndarray(value.tensor))
    assert sorted(written) == [3, 6]
    for step, value in written.items():
        assert round(value, 8) == logged[step - 1]  # the step's own losses, as its line shows them


# --- what a user plans with ------------------------------------------------------------------------------------

def fake_domains(n=64):
    x = np.random.default_rng(0).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    return [x, 255 - x]


def test_progress_bar_replaces_the_per_step_lines(tmp_path, capsys):
    logs = []
    cfg = train_config(tmp_path, batch_size=8, max_steps=3, log_every=1, progress="bar")
    runner.run(C.CoganConfig(), cfg, arrays=fake_domains(), log=logs.append)
    assert not [line for line in logs if line.startswith("Epoch:") or line.startswith(" [*] step ")]
    bar = capsys.readouterr().err.replace("\r", "\n")
    assert re.search(r"100%\|.*\| 3/3 \[.*step.*d_loss=\d+\.\d{4}, g_loss=\d+\.\d{4}\]", bar), bar[-500:]


def test_durations_for_humans():
    assert train._duration(42.4) == "42 s"
    assert train._duration(600) == "10 min"
    assert train._duration(3 * 3600 + 7 * 60 + 20) == "3 h 07 min"
