"""cogan_tf/gan.py: what every model's GAN shares. A GAN asking for mixed precision is built under its dtype policy
(by build_gan) or refused; and the run state its hooks see (Loop) hands back, at a resume, the losses of the epoch
the checkpoint's step belongs to, and says whether that epoch's end-of-epoch work is still to do. (Its optimizer
update under loss scaling and tf.distribute: tests/test_precision.py.)"""

import pytest

from cogan_tf import config as C, gan as gan_lib, runner
from tests.conftest import MODELS, arrays_for, fake_images, train_config


def test_mixed_gan_built_outside_its_policy_is_refused(tmp_path):
    cfg = train_config(tmp_path, model="vanilla", mixed_precision="mixed_float16", **MODELS["vanilla"])
    gan = runner.make_gan(C.VanillaConfig(), cfg, arrays=arrays_for("vanilla"))
    with pytest.raises(RuntimeError, match="build it with cogan_tf.gan.build_gan"):
        gan.build()


def test_the_loop_hands_back_the_losses_of_the_epoch_it_resumes_in(tmp_path):
    gan = runner.make_gan(C.VanillaConfig(), train_config(tmp_path, model="vanilla", batch_size=8),
                          arrays=fake_images(24))
    loop = gan_lib.Loop(gan, gan.train_cfg)
    loop.steps_per_epoch = 3
    assert loop.counter == 1 and loop.restored_epoch_losses(0) == ({}, None)  # a new run: nothing saved
    # Saved after step 3, epoch 0's last, before its end-of-epoch work (a stop in that step): the losses and the
    # epoch whose work is still to do.
    epoch_0 = {"d_loss": [1.0, 2.0, 3.0]}
    loop.step.assign(3)
    loop.record_epoch_losses(epoch_0)
    assert loop.counter == 4 and loop.restored_epoch_losses(3) == (epoch_0, 0)
    # Saved after step 4, epoch 1's first: its losses so far; nothing left to do for epoch 0.
    epoch_1 = {"d_loss": [4.0]}
    loop.step.assign(4)
    loop.record_epoch_losses(epoch_1)
    assert loop.restored_epoch_losses(4) == (epoch_1, None)
    # Losses of another epoch than the step's are not taken.
    assert loop.restored_epoch_losses(3) == ({}, None) and loop.restored_epoch_losses(7) == ({}, None)
