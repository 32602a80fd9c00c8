"""cogan_tf/bench/steps.py, the steps the benchmark's rows time beside each model's own ``train_step``: a row's
``step`` picks a builder of :data:`steps.STEPS`, else its variant one of :data:`steps.COGAN_STEPS`, else the model's
own step; every builder is reachable from a row; and TensorFlow is imported only when a builder is called, so the
command line refuses bad flags before it starts."""

import subprocess
import sys

from cogan_tf.bench import rows as bench_rows, steps as step_lib
from tests.conftest import ROOT, without_tensorflow


class Gan:
    """What the builders read of a GAN: its step, the ClusterGAN's critic update, the CoGAN's head lever."""

    subpixel_heads = True

    def train_step(self, *x):
        return "train_step"

    def critic_update(self, *x):
        return "critic_update"


def test_a_row_gets_its_own_step_its_variants_or_the_models():
    gan = Gan()
    assert step_lib.step_for(gan, "port") == gan.train_step
    assert step_lib.step_for(gan, "paper_critic", step="paper_critic") == gan.critic_update
    assert gan.subpixel_heads
    assert step_lib.step_for(gan, "deconv_heads") == gan.train_step and gan.subpixel_heads is False


def test_every_builder_is_reachable_from_a_row():
    assert set(step_lib.COGAN_STEPS) <= set(bench_rows.COGAN_VARIANTS)
    named = {r.step for r in bench_rows.clustergan_paper_rows(4, False, bench_rows.CLUSTERGAN_VARIANTS)
             + bench_rows.cogan_paper_rows(4, False, bench_rows.COGAN_PAPER_VARIANTS)} - {None}
    assert named == set(step_lib.STEPS)


def test_importing_the_steps_does_not_start_tensorflow(tmp_path):
    r = subprocess.run([sys.executable, "-c", "from cogan_tf.bench import steps; print(len(steps.COGAN_STEPS))"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, env=without_tensorflow(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == [str(len(step_lib.COGAN_STEPS))]
