"""The CoGAN paper's digit network (docs/ORIGINAL.md §5.4) and the conditional GAN it is compared with (§5.6).

Generator, 5 layers: ``l0`` dense 100 -> 1024x4x4; ``l1``-``l3`` transposed convolutions to 512, 256, 128
channels (3x3, stride 2, pad 1: 4 -> 7 -> 13 -> 25), each of these four with BatchNorm and PReLU; ``l4`` a
transposed convolution to 1 channel (6x6, stride 1, pad 1: 25 -> 28) and a sigmoid.
Discriminator, 4 layers: ``l0`` convolution to 20 channels (5x5, no padding) and a 2x2 max-pool; ``l1`` the
same to 50 channels; ``l2`` dense 800 -> 500, PReLU, dropout 0.5; ``l3`` Caffe's two-way output, whose
softmax is the sigmoid of the difference of its two units: the logit returned.

The CoGAN shares G's first ``g_shared_layers`` layers and D's last ``d_shared_layers`` layers (the paper's
network: 4 and 3); a shared layer is one object called by both domains' branches, an unshared one exists
once per domain (names ``g1_l3``, ``g2_l3``). The conditional GAN has one G and one D, every layer once,
and is told the domain by a bit: appended to z, and a constant second image channel of D's input.
"""

from __future__ import annotations

from typing import List, Tuple

import keras
import tensorflow as tf

from cogan_tf.config import CoganConfig
from cogan_tf.paper_layers import CaffeBatchNorm, CaffeDeconv, CaffeDense, ChannelPReLU, initializers

G_LAYERS = 5
D_LAYERS = 4
DROPOUT = 0.5
G_CHANNELS = (1024, 512, 256, 128)


class GBlock(keras.layers.Layer):
    """One generator layer: l0 (dense, reshape to 4x4x1024), l1-l3 (transposed convolution) with
    BatchNorm and PReLU, or l4, the output (transposed convolution, sigmoid)."""

    def __init__(self, index: int, cfg: CoganConfig, channels: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.index = index
        batch_stats, init = cfg.bn_batch_stats_at_inference, cfg.paper_init
        if index == 0:
            # The PyTorch version's l0 is a 4x4 transposed convolution from z: fans (z + 1024) x 16.
            self.op = CaffeDense(4 * 4 * G_CHANNELS[0], use_bias=False, init=init, name="dense",
                                 fan_sum=lambda n: (n + G_CHANNELS[0]) * 16)
        elif index < G_LAYERS - 1:
            # l1 (4x4x1024 -> 7x7x512), the largest: its forward pass as a matmul (CaffeDeconv).
            self.op = CaffeDeconv(G_CHANNELS[index], 3, 2, 1, use_bias=False, matmul_forward=index == 1, init=init,
                                  name="deconv")
        else:
            self.op = CaffeDeconv(channels, 6, 1, 1, init=init, name="deconv")
        if index < G_LAYERS - 1:
            self.bn = CaffeBatchNorm(batch_stats_at_inference=batch_stats, name="bn")
            self.act = ChannelPReLU(name="prelu")

    def call(self, h, training=False):
        h = self.op(h)
        if self.index == 0:
            h = tf.reshape(h, [-1, 4, 4, G_CHANNELS[0]])
        if self.index == G_LAYERS - 1:
            return tf.sigmoid(h)
        return self.act(self.bn(h, training=training))


class DBlock(keras.layers.Layer):
    """One discriminator layer: l0, l1 (convolution, no activation, max-pool), l2 (dense 500, PReLU,
    dropout) or l3 (the two-way output, returned as the logit of its softmax)."""

    def __init__(self, index: int, cfg: CoganConfig, in_channels: int = 1, **kwargs):
        """``in_channels``: of the image (l0's input)."""
        super().__init__(**kwargs)
        self.index = index
        init = cfg.paper_init
        if index < 2:
            filters = (20, 50)[index]
            kernel_init, bias_init = initializers(init, ((in_channels, 20)[index] + filters) * 25)
            self.op = keras.layers.Conv2D(filters, 5, padding="valid", kernel_initializer=kernel_init,
                                          bias_initializer=bias_init, name="conv")
        elif index == 2:
            # The PyTorch version's l2 is a 4x4 convolution of the 50 4x4 maps: fans (50 + 500) x 16.
            self.op = CaffeDense(500, init=init, fan_sum=lambda n: n + 500 * 16, name="dense")
            self.act = ChannelPReLU(name="prelu")
        else:
            self.op = CaffeDense(2, init=init, name="dense")

    def call(self, h, training=False, noise=None):
        if self.index < 2:
            return tf.nn.max_pool2d(self.op(h), 2, 2, "VALID")
        if self.index == 2:
            h = self.act(self.op(tf.reshape(h, [tf.shape(h)[0], -1])))
            if training:
                if noise is None:
                    raise ValueError("the paper's D in training needs the dropout noise of its batch")
                h = tf.where(noise >= DROPOUT, h / (1.0 - DROPOUT), 0.0)  # Caffe's dropout: kept units x 2
            return h
        two = self.op(h)
        return two[:, 1:2] - two[:, 0:1]


def _attach(model, name: str, layer) -> str:
    """Hold ``layer`` as an attribute (so checkpoints track its non-trainable variables too); its name."""
    setattr(model, name, layer)
    return name


class PaperGenerator(keras.Model):
    """G1 and G2 of the paper's CoGAN: the first ``cfg.g_shared_layers`` layers shared, the rest per domain."""

    def __init__(self, cfg: CoganConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        k = cfg.g_shared_layers
        # Each entry: the attribute names of layer i for (domain 1, domain 2); one name twice when shared.
        self.layer_names: List[Tuple[str, str]] = []
        for i in range(G_LAYERS):
            if i < k:
                name = _attach(self, f"g_l{i}", GBlock(i, cfg, cfg.c_dim, name=f"g_l{i}"))
                self.layer_names.append((name, name))
            else:
                self.layer_names.append(tuple(_attach(self, f"g{d}_l{i}", GBlock(i, cfg, cfg.c_dim, name=f"g{d}_l{i}"))
                                              for d in (1, 2)))

    def block(self, i: int, domain: int) -> GBlock:
        return getattr(self, self.layer_names[i][domain - 1])

    def shared(self, i: int) -> bool:
        return self.layer_names[i][0] == self.layer_names[i][1]

    def call(self, z, training=False):
        h = z
        i = 0
        while i < G_LAYERS and self.shared(i):
            h = self.block(i, 1)(h, training=training)
            i += 1
        out = []
        for d in (1, 2):
            hd = h
            for j in range(i, G_LAYERS):
                hd = self.block(j, d)(hd, training=training)
            out.append(hd)
        return out[0], out[1]


class PaperDiscriminator(keras.Model):
    """D1 and D2 of the paper's CoGAN: the last ``cfg.d_shared_layers`` layers shared. The shared layers
    run once on both domains' batches stacked (D has no BatchNorm: the same as running them apart)."""

    def __init__(self, cfg: CoganConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        first_shared = D_LAYERS - cfg.d_shared_layers
        self.layer_names: List[Tuple[str, str]] = []
        for i in range(D_LAYERS):
            if i >= first_shared:
                name = _attach(self, f"d_l{i}", DBlock(i, cfg, cfg.c_dim, name=f"d_l{i}"))
                self.layer_names.append((name, name))
            else:
                self.layer_names.append(tuple(_attach(self, f"d{d}_l{i}",
                                                      DBlock(i, cfg, cfg.c_dim, name=f"d{d}_l{i}")) for d in (1, 2)))
        self.first_shared = first_shared

    def block(self, i: int, domain: int) -> DBlock:
        return getattr(self, self.layer_names[i][domain - 1])

    def logits(self, x1, x2, training=False, noise=None):
        """(D1's logits on x1, D2's on x2), each (N, 1); ``noise``: uniform [0, 1) numbers for the dropout
        of all the rows, x1's first (in training)."""
        n1 = tf.shape(x1)[0]
        noises = (None, None) if noise is None else (noise[:n1], noise[n1:])
        hs = [x1, x2]
        for i in range(self.first_shared):
            hs = [self.block(i, d)(h, training=training, noise=noises[d - 1]) for d, h in zip((1, 2), hs)]
        if self.first_shared == D_LAYERS:
            return hs[0], hs[1]
        h = tf.concat(hs, axis=0)
        for i in range(self.first_shared, D_LAYERS):
            h = self.block(i, 1)(h, training=training, noise=noise)
        return h[:n1], h[n1:]

    def call(self, inputs, training=False):
        return self.logits(inputs[0], inputs[1], training=training)


def domain_bits(n, bit: float, shape=()):
    return tf.fill(tf.concat([[n], tf.constant(shape, tf.int32)], 0), tf.constant(bit, tf.float32))


class ConditionalGenerator(keras.Model):
    """The conditional GAN's G: the paper's five layers once, the domain bit appended to z (0: domain 1)."""

    def __init__(self, cfg: CoganConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.layer_names = [(_attach(self, f"g_l{i}", GBlock(i, cfg, cfg.c_dim, name=f"g_l{i}")),) * 2
                            for i in range(G_LAYERS)]

    def call(self, z, training=False):
        """G(z, 0) and G(z, 1), computed as one batch (BatchNorm statistics over both)."""
        n = tf.shape(z)[0]
        h = tf.concat([tf.concat([z, domain_bits(n, 0.0, (1,))], 1), tf.concat([z, domain_bits(n, 1.0, (1,))], 1)], 0)
        for i in range(G_LAYERS):
            h = getattr(self, self.layer_names[i][0])(h, training=training)
        return h[:n], h[n:]


class ConditionalDiscriminator(keras.Model):
    """The conditional GAN's D: the paper's four layers once; the domain bit is a constant second channel
    of the image (0: domain 1)."""

    def __init__(self, cfg: CoganConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.layer_names = [(_attach(self, f"d_l{i}", DBlock(i, cfg, cfg.c_dim + 1, name=f"d_l{i}")),) * 2
                            for i in range(D_LAYERS)]

    def logits(self, x1, x2, training=False, noise=None):
        n1 = tf.shape(x1)[0]
        side = x1.shape[1:3]
        h = tf.concat([tf.concat([x1, domain_bits(n1, 0.0, (*side, 1))], -1),
                       tf.concat([x2, domain_bits(tf.shape(x2)[0], 1.0, (*side, 1))], -1)], 0)
        for i in range(D_LAYERS):
            h = getattr(self, self.layer_names[i][0])(h, training=training, noise=noise)
        return h[:n1], h[n1:]

    def call(self, inputs, training=False):
        return self.logits(inputs[0], inputs[1], training=training)


def build_paper_networks(cfg: CoganConfig):
    """A built generator and discriminator of ``cfg.recipe`` ("paper": the CoGAN; "conditional")."""
    if cfg.recipe == "conditional":
        g, d = ConditionalGenerator(cfg, name="generator"), ConditionalDiscriminator(cfg, name="discriminator")
    else:
        g, d = PaperGenerator(cfg, name="generator"), PaperDiscriminator(cfg, name="discriminator")
    z = tf.zeros((2, cfg.z_dim))
    x = tf.zeros((2, cfg.output_size, cfg.output_size, cfg.c_dim))
    g(z)
    d((x, x))
    return g, d


def caffe_multipliers(variable) -> Tuple[float, float]:
    """(lr_mult, decay_mult) of a variable of these networks, as the Caffe model sets them: weights decay
    (1), nothing else does; the dense layers' biases of D learn at twice the rate (Caffe's InnerProduct
    layers; G's first dense layer has no bias here), every other variable at the base rate."""
    path = variable.path
    if path.endswith("/kernel"):
        return 1.0, 1.0
    if path.endswith("dense/bias"):
        return 2.0, 0.0
    return 1.0, 0.0


def sharing(g, d) -> dict:
    """For the tests and the docs: which layers of G and D are shared (one object for both domains)."""
    return {"g": [a == b for a, b in g.layer_names], "d": [a == b for a, b in d.layer_names]}
