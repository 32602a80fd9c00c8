"""How far two runs of the CoGAN step drift apart when they differ only in float rounding: the port's
step run eagerly against the same step as a graph, and the fused layers (BatchNorm, PReLU) against the
unfused ones. Prints, per step, the largest relative difference of any loss. The figures behind the
whole-step tolerances of tests/test_speed.py and docs/PERFORMANCE.md. Run it once more under another
instruction set to see that they hold there too (on an AVX-512 machine, oneDNN's kernels as on an
AVX2-only one):

    python tools/step_drift.py
    ONEDNN_MAX_CPU_ISA=AVX2 python tools/step_drift.py
"""

import keras
import numpy as np
import tensorflow as tf

from cogan_tf import cogan_fast, config as C, runner


def make(m, batch=16, seed=3):
    """The set-up of tests/test_speed.py: a built CoGAN and one batch of random uint8 images per domain."""
    rng = np.random.default_rng(seed)
    x = [rng.integers(0, 256, (batch, 28, 28, 1), dtype=np.uint8) for _ in range(2)]
    gan = runner.make_gan(m, C.TrainConfig(batch_size=batch, seed=seed, checkpoint_dir="/nonexistent"), arrays=x)
    keras.utils.set_random_seed(seed)
    gan.build()
    return gan, tuple(tf.constant(a) for a in x)


def losses(m, plain: bool, eager: bool, steps: int = 3):
    gan, x = make(m)
    if plain:
        cogan_fast.use_plain_layers(gan)
    step = gan.train_step if eager else tf.function(gan.train_step)
    return [{k: float(v) for k, v in step(*x).items()} for _ in range(steps)]


def main():
    for name, m in (("faithful", C.CoganConfig()),
                    ("corrected", C.CoganConfig(h0_feeds_h1=True, d_h0_filters=64, bn_batch_stats_at_inference=False,
                                                loss_on_logits=True, bn_per_feature=True))):  # --corrected
        ref = losses(m, plain=True, eager=False)
        for label, plain, eager in (("unfused, eager vs graph", True, True), ("fused vs unfused, graph", False, False)):
            run = losses(m, plain, eager)
            drift = [max(abs(a[k] - b[k]) / abs(b[k]) for k in a) for a, b in zip(run, ref)]
            print(f"{name:9s} {label:24s} " + "  ".join(f"step {i}: {d:.1e}" for i, d in enumerate(drift)))


if __name__ == "__main__":
    main()
