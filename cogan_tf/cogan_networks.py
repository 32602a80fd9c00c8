"""The networks: CoGAN's coupled generator and discriminator (docs/ORIGINAL.md §1.2, §1.3).

Weight sharing is by layer instance: each shared layer is built once, here, and called by both
domains' branches, so a shared variable is one object, appears once in ``trainable_variables`` and
receives the gradient of both domains' losses.

Under a mixed dtype policy (``--mixed_precision``) the layers compute in float16 / bfloat16 and the
networks return their images and logits as float32 (no op added in float32).
"""

from __future__ import annotations

from typing import Tuple

import keras
from keras import ops

from cogan_tf.config import CoganConfig
from cogan_tf.layers import BatchNorm, ScalarPReLU, batchnorm_prelu, conv, deconv, dense
from cogan_tf.precision import as_float32


def batchnorm_kwargs(cfg: CoganConfig) -> dict:
    """The BatchNorm settings of a CoGAN config. ``scalar_2d_stats`` (quirk Q2) only changes the 2-D
    layers (g_h0, g_h1, d_h2); the convolutional ones always get per-channel statistics."""
    return dict(batch_stats_at_inference=cfg.bn_batch_stats_at_inference, synchronized=cfg.sync_batchnorm,
                scalar_2d_stats=not cfg.bn_per_feature)


class CoupledGenerator(keras.Model):
    """G1 and G2: a shared trunk h0..h2 and one h3 head (deconv + sigmoid) per domain."""

    def __init__(self, cfg: CoganConfig = CoganConfig(), **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        s4 = cfg.output_size // 4
        self._s4 = s4
        bn = batchnorm_kwargs(cfg)
        # Shared by G1 and G2 (one object each): h0, h1, h2 with their BatchNorms and PReLUs.
        self.h0 = dense(1024, "g_h0_lin")
        self.bn0 = BatchNorm(name="g_bn0", **bn)
        self.act0 = ScalarPReLU(name="g_h0_prelu")
        self.h1 = dense(s4 * s4 * 128, "g_h1_lin")
        self.bn1 = BatchNorm(name="g_bn1", **bn)
        self.act1 = ScalarPReLU(name="g_h1_prelu")
        self.h2 = deconv(128, "g_h2")
        self.bn2 = BatchNorm(name="g_bn2", **bn)
        self.act2 = ScalarPReLU(name="g_h2_prelu")
        # Not shared: one output head per domain.
        self.head1 = deconv(cfg.c_dim, "g1_h3", activation="sigmoid")
        self.head2 = deconv(cfg.c_dim, "g2_h3", activation="sigmoid")

    def build(self, input_shape):
        z_dim = input_shape[-1]
        # h0 is built even where the faithful network never calls it (quirk: dead, but its
        # variables exist and are in the optimizer's list, as in the original).
        self.h0.build((None, z_dim))
        self.bn0.build((None, 1024))
        self.act0.build((None, 1024))
        self.h1.build((None, 1024 if self.cfg.h0_feeds_h1 else z_dim))
        self.bn1.build((None, self._s4 * self._s4 * 128))
        self.act1.build((None, self._s4 * self._s4 * 128))
        self.h2.build((None, self._s4, self._s4, 128))
        self.bn2.build((None, 2 * self._s4, 2 * self._s4, 128))
        self.act2.build((None, 2 * self._s4, 2 * self._s4, 128))
        self.head1.build((None, 2 * self._s4, 2 * self._s4, 128))
        self.head2.build((None, 2 * self._s4, 2 * self._s4, 128))
        self.built = True

    def trunk(self, z, training=False):
        """The shared h0..h2. G1 and G2 get the same z, so their trunk activations are identical:
        computing it once for both is exactly the original's two computations."""
        if self.cfg.h0_feeds_h1:
            h = batchnorm_prelu(self.bn0, self.act0, self.h0(z), training)
        else:
            # Quirk of the original: h0 is computed there but h1 is fed z; h0's output is never
            # used (not even its BatchNorm update runs), so it is not computed here at all.
            h = z
        h = batchnorm_prelu(self.bn1, self.act1, self.h1(h), training)
        h = ops.reshape(h, (-1, self._s4, self._s4, 128))
        return self.act2(self.bn2(self.h2(h), training=training))

    def call(self, z, training=False) -> Tuple:
        h = self.trunk(z, training=training)
        return as_float32(self.head1(h)), as_float32(self.head2(h))

    def generate_one(self, z, domain: int, training=False):
        """One domain's G alone, trunk included: the 'straightforward' computation (benchmark baseline)."""
        head = self.head1 if domain == 1 else self.head2
        return as_float32(head(self.trunk(z, training=training)))


class DiscriminatorStem(keras.layers.Layer):
    """One domain's own D layers: h0 (conv, PReLU; quirk: c_dim filters, no BN) and h1 (conv to 64,
    BN, PReLU). Held as attributes (not in a Python list) so that tf.train.Checkpoint tracks the
    BatchNorm moving averages too."""

    def __init__(self, cfg: CoganConfig, domain: int, **kwargs):
        super().__init__(name=f"d{domain}_stem", **kwargs)
        bn = batchnorm_kwargs(cfg)
        self.h0 = conv(cfg.d_h0_channels, f"d{domain}_h0_conv")
        self.act0 = ScalarPReLU(name=f"d{domain}_h0_prelu")
        self.h1 = conv(64, f"d{domain}_h1_conv")
        self.bn1 = BatchNorm(name=f"d{domain}_bn1", **bn)
        self.act1 = ScalarPReLU(name=f"d{domain}_h1_prelu")

    def call(self, x, training=False):
        h = self.act0(self.h0(x))
        return self.act1(self.bn1(self.h1(h), training=training))


class CoupledDiscriminator(keras.Model):
    """D1 and D2: h0, h1 per domain (each with its own BatchNorm), shared h2 and h3 (logits)."""

    def __init__(self, cfg: CoganConfig = CoganConfig(), **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        bn = batchnorm_kwargs(cfg)
        self.stem1 = DiscriminatorStem(cfg, 1)
        self.stem2 = DiscriminatorStem(cfg, 2)
        # Shared by D1 and D2 (one object each).
        self.h2 = dense(1024, "d_h2_lin")
        self.bn2 = BatchNorm(name="d_bn2", **bn)
        self.act2 = ScalarPReLU(name="d_h2_prelu")
        self.h3 = dense(1, "d_h3_lin")

    def stem(self, domain: int) -> DiscriminatorStem:
        return self.stem1 if domain == 1 else self.stem2

    def logits(self, x, domain: int, training=False):
        """D_domain's logit for a batch x (N, 28, 28, c) in [0, 1]. Real and fake batches are passed
        separately, as in the original, so each gets its own BatchNorm statistics."""
        h = self.stem(domain)(x, training=training)
        h = ops.reshape(h, (-1, h.shape[1] * h.shape[2] * h.shape[3]))
        h = batchnorm_prelu(self.bn2, self.act2, self.h2(h), training)
        return as_float32(self.h3(h))

    def call(self, inputs, training=False):
        x1, x2 = inputs
        return self.logits(x1, 1, training=training), self.logits(x2, 2, training=training)


def build_cogan(cfg: CoganConfig = CoganConfig()):
    """A built (variables created) coupled generator and discriminator."""
    g = CoupledGenerator(cfg, name="generator")
    d = CoupledDiscriminator(cfg, name="discriminator")
    z = ops.zeros((2, cfg.z_dim))
    x = ops.zeros((2, cfg.output_size, cfg.output_size, cfg.c_dim))
    g.build((None, cfg.z_dim))
    g(z)
    d((x, x))
    return g, d


def unique_variables(variables):
    """Variables deduplicated by identity, in first-seen order."""
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out
