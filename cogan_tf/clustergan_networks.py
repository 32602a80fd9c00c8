"""The ClusterGAN's networks (docs/ORIGINAL.md §3.1): generator, discriminator and encoder, the last
two on the same shape of convolutional trunk (not the same weights), with PyTorch's layer settings
(or, with ``init_std``, the paper authors' N(0, 0.02) weights).
"""

from __future__ import annotations

from typing import Tuple

import keras

from cogan_tf.config import ClusterGanConfig
from cogan_tf.precision import as_float32
from cogan_tf.torch_port import IMAGE_SHAPE, build_once, torch_default_init

CONV_FEATURES = 128 * 5 * 5  # D's and E's flattened conv output


def batch_norm(name: str) -> keras.layers.BatchNormalization:
    """PyTorch's BatchNorm defaults in Keras terms: momentum 0.1 -> 0.9, epsilon 1e-5, gamma 1, beta 0."""
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def initializers(cfg: ClusterGanConfig, fan_in: int):
    """(kernel, bias) initializers: PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both (the
    original), or with ``cfg.init_std`` weights N(0, init_std^2) and zero biases (the paper's recipe)."""
    if cfg.init_std is None:
        return torch_default_init(fan_in), torch_default_init(fan_in)
    return keras.initializers.RandomNormal(0.0, cfg.init_std), keras.initializers.Zeros()


def dense(cfg: ClusterGanConfig, units: int, fan_in: int, name: str) -> keras.layers.Dense:
    """``nn.Linear(fan_in, units)``."""
    kernel, bias = initializers(cfg, fan_in)
    return keras.layers.Dense(units, kernel_initializer=kernel, bias_initializer=bias, name=name)


def conv(cfg: ClusterGanConfig, filters: int, in_channels: int, name: str) -> keras.layers.Conv2D:
    """``nn.Conv2d(in_channels, filters, 4, stride=2)`` (no padding): Keras's 4x4 stride 2 "valid"."""
    kernel, bias = initializers(cfg, in_channels * 4 * 4)
    return keras.layers.Conv2D(filters, 4, strides=2, padding="valid", kernel_initializer=kernel,
                               bias_initializer=bias, name=name)


def deconv(cfg: ClusterGanConfig, filters: int, name: str, activation=None) -> keras.layers.Conv2DTranspose:
    """``nn.ConvTranspose2d(_, filters, 4, stride=2, padding=1)``: Keras's 4x4 stride 2 "same" (doubles
    height and width). PyTorch's default init reads fan_in as filters * 4 * 4 for a transposed conv."""
    kernel, bias = initializers(cfg, filters * 4 * 4)
    return keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", activation=activation,
                                        kernel_initializer=kernel, bias_initializer=bias, name=name)


def lrelu(cfg: ClusterGanConfig, name: str):
    return keras.layers.LeakyReLU(negative_slope=cfg.leak, name=name)


class ClusterGenerator(keras.Model):
    """z = [z_n, z_c] (40) -> Linear 1024, BN, LReLU -> Linear 128*7*7, BN, LReLU -> (7, 7, 128) ->
    Deconv 4x4 s2 -> 14x14x64, BN, LReLU -> Deconv 4x4 s2 -> 28x28x1, sigmoid."""

    def __init__(self, cfg: ClusterGanConfig = ClusterGanConfig(), **kwargs):
        super().__init__(name="clustergan_generator", **kwargs)
        self.cfg = cfg
        self.h0 = dense(cfg, 1024, cfg.z_dim + cfg.n_classes, "g_h0")
        self.bn0 = batch_norm("g_bn0")
        self.act0 = lrelu(cfg, "g_h0_lrelu")
        self.h1 = dense(cfg, 128 * 7 * 7, 1024, "g_h1")
        self.bn1 = batch_norm("g_bn1")
        self.act1 = lrelu(cfg, "g_h1_lrelu")
        self.h2 = deconv(cfg, 64, "g_h2")
        self.bn2 = batch_norm("g_bn2")
        self.act2 = lrelu(cfg, "g_h2_lrelu")
        self.h3 = deconv(cfg, 1, "g_h3", activation="sigmoid")

    def build(self, input_shape):
        build_once(self.h0, (None, self.cfg.z_dim + self.cfg.n_classes))
        build_once(self.bn0, (None, 1024))
        build_once(self.h1, (None, 1024))
        build_once(self.bn1, (None, 128 * 7 * 7))
        build_once(self.h2, (None, 7, 7, 128))
        build_once(self.bn2, (None, 14, 14, 64))
        build_once(self.h3, (None, 14, 14, 64))
        self.built = True

    def call(self, z, training=False):
        x = self.act0(self.bn0(self.h0(z), training=training))
        x = self.act1(self.bn1(self.h1(x), training=training))
        x = keras.ops.reshape(x, (-1, 7, 7, 128))  # PyTorch: (128, 7, 7), see the module docstring
        x = self.act2(self.bn2(self.h2(x), training=training))
        return as_float32(self.h3(x))  # float32 images also under a mixed dtype policy (--mixed_precision)


class ConvTrunk(keras.layers.Layer):
    """The part D and E have in common (not shared: each has its own): Conv 4x4 s2 -> 64, LReLU,
    Conv 4x4 s2 -> 128, LReLU, flatten (3200), Linear 1024, LReLU."""

    def __init__(self, cfg: ClusterGanConfig, prefix: str, **kwargs):
        super().__init__(name=f"{prefix}_trunk", **kwargs)
        self.c0 = conv(cfg, 64, 1, f"{prefix}_c0")
        self.act0 = lrelu(cfg, f"{prefix}_c0_lrelu")
        self.c1 = conv(cfg, 128, 64, f"{prefix}_c1")
        self.act1 = lrelu(cfg, f"{prefix}_c1_lrelu")
        self.h2 = dense(cfg, 1024, CONV_FEATURES, f"{prefix}_h2")
        self.act2 = lrelu(cfg, f"{prefix}_h2_lrelu")

    def build(self, input_shape):
        build_once(self.c0, (None,) + IMAGE_SHAPE)
        build_once(self.c1, (None, 13, 13, 64))
        build_once(self.h2, (None, CONV_FEATURES))
        self.built = True

    def call(self, x):
        x = self.act1(self.c1(self.act0(self.c0(x))))
        x = keras.ops.reshape(x, (-1, CONV_FEATURES))  # PyTorch flattens (128, 5, 5); here (5, 5, 128)
        return self.act2(self.h2(x))


class ClusterDiscriminator(keras.Model):
    """The conv trunk, then Linear 1024 -> 1 and a sigmoid (``call``; ``logits`` before it, which is
    the WGAN-GP critic's score under ``--recipe paper``)."""

    def __init__(self, cfg: ClusterGanConfig = ClusterGanConfig(), **kwargs):
        super().__init__(name="clustergan_discriminator", **kwargs)
        self.trunk = ConvTrunk(cfg, "d")
        self.h3 = dense(cfg, 1, 1024, "d_h3")

    def build(self, input_shape):
        build_once(self.trunk, (None,) + IMAGE_SHAPE)
        build_once(self.h3, (None, 1024))
        self.built = True

    def logits(self, x, training=False):
        return as_float32(self.h3(self.trunk(x)))

    def call(self, x, training=False):
        return keras.ops.sigmoid(self.logits(x, training=training))


class ClusterEncoder(keras.Model):
    """The conv trunk, then Linear 1024 -> z_dim + n_classes: the first z_dim outputs are z_n, the
    last n_classes the class logits (softmax: class probabilities; argmax: the cluster)."""

    def __init__(self, cfg: ClusterGanConfig = ClusterGanConfig(), **kwargs):
        super().__init__(name="clustergan_encoder", **kwargs)
        self.cfg = cfg
        self.trunk = ConvTrunk(cfg, "e")
        self.h3 = dense(cfg, cfg.z_dim + cfg.n_classes, 1024, "e_h3")

    def build(self, input_shape):
        build_once(self.trunk, (None,) + IMAGE_SHAPE)
        build_once(self.h3, (None, 1024))
        self.built = True

    def call(self, x, training=False) -> Tuple:
        out = as_float32(self.h3(self.trunk(x)))
        return out[:, : self.cfg.z_dim], out[:, self.cfg.z_dim:]
