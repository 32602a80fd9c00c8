"""The loop's host work between two steps: one fetch of all the step's losses (the step's one wait for the
device), and TensorBoard's loss scalars every --summary_every steps with the values the log line shows."""

import glob
import os
import re

import tensorflow as tf

from cogan_tf import config as C, gan as gan_lib, runner
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
