"""How far two runs of the CoGAN step drift apart over a few steps when they differ only in float
rounding: the very same step run eagerly and as a graph, and the port's step against each reference
step that tests/test_cogan_fast.py compares it with (the heads as two deconvolutions, the trunk once per
domain, the layers as first written). Prints, per step, the largest relative difference of any loss.
The whole-step tolerances of tests/test_cogan_fast.py are set from these figures, taken under two
instruction sets (on an AVX-512 machine, oneDNN's kernels as on an AVX2-only one), docs/PERFORMANCE.md:

    python tools/step_drift.py
    ONEDNN_MAX_CPU_ISA=AVX2 python tools/step_drift.py

Why runs drift at all: Adam's first updates are about lr * sign(gradient), so a gradient that is zero
but for rounding (a bias in front of a BatchNorm) moves its weight by +-lr either way, and an input
within rounding of a PReLU's kink changes a gradient element by a whole term; from the second step on
the two runs train slightly different networks.
"""

from cogan_tf import cli

STEPS = 3


def make(m, batch=16, seed=3):
    """The set-up of tests/test_cogan_fast.py: a built CoGAN and one batch of random uint8 images per domain."""
    import keras
    import numpy as np
    import tensorflow as tf

    from cogan_tf import config as C, runner

    rng = np.random.default_rng(seed)
    x = [rng.integers(0, 256, (batch, 28, 28, 1), dtype=np.uint8) for _ in range(2)]
    gan = runner.make_gan(m, C.TrainConfig(batch_size=batch, seed=seed, checkpoint_dir="/nonexistent"), arrays=x)
    keras.utils.set_random_seed(seed)
    gan.build()
    return gan, tuple(tf.constant(a) for a in x)


def losses(m, variant: str, eager: bool = False):
    import tensorflow as tf

    from cogan_tf import cogan_fast

    gan, x = make(m)
    step = {"port": lambda: gan.train_step,
            "plain layers": lambda: cogan_fast.use_plain_layers(gan).train_step,
            "two-deconv heads": lambda: cogan_fast.reference_cogan_step(gan, reuse_g_forward=True),
            "trunk per domain": lambda: cogan_fast.reference_cogan_step(gan, trunk_per_domain=True)}[variant]()
    step = step if eager else tf.function(step)
    return [{k: float(v) for k, v in step(*x).items()} for _ in range(STEPS)]


def drift(a, b):
    return [max(abs(u[k] - v[k]) / abs(v[k]) for k in u) for u, v in zip(a, b)]


def main(argv):
    # No flags: absl answers --help (and cli.run refuses anything else) before TensorFlow starts.
    cli.start_tensorflow()
    from cogan_tf import config as C

    for name, m in (("faithful", C.CoganConfig()),
                    ("corrected", C.CoganConfig(h0_feeds_h1=True, d_h0_filters=64, bn_batch_stats_at_inference=False,
                                                loss_on_logits=True, bn_per_feature=True))):  # --corrected
        port = losses(m, "port")
        rows = [("plain layers, eager vs graph", drift(losses(m, "plain layers", eager=True),
                                                       losses(m, "plain layers")))]
        rows += [(f"port vs {v}", drift(port, losses(m, v)))
                 for v in ("plain layers", "two-deconv heads", "trunk per domain")]
        for label, d in rows:
            print(f"{name:9s} {label:30s} " + "  ".join(f"step {i}: {x:.1e}" for i, x in enumerate(d)))
    return 0


if __name__ == "__main__":
    cli.run(main)
