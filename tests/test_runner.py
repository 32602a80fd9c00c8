"""cogan_tf/runner.py: from a prepared run to the model's GAN class: the CoGAN's recipe picks its class (the paper's
and the conditional GAN's are PaperCoGAN), each class imported on demand."""

import os

from cogan_tf import config as C, runner
from cogan_tf.cogan_paper import PaperCoGAN

PAPER = C.cogan_config("paper")
CONDITIONAL = C.cogan_config("conditional")


def test_paper_gan_class_is_picked_by_the_recipe(tmp_path):
    assert runner.gan_class("cogan", PAPER) is PaperCoGAN
    assert runner.gan_class("cogan", CONDITIONAL) is PaperCoGAN
    assert runner.gan_class("cogan", C.CoganConfig()).__name__ == "CoGAN"
    assert os.path.basename(runner.gan_class("cogan").__module__) == "cogan_tf.cogan"
