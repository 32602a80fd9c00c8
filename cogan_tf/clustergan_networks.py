"""The ClusterGAN's networks: generator, discriminator and encoder, the last two on the same shape of
convolutional trunk (not the same weights), in two versions (``ClusterGanConfig.networks``):

- ``"original"``: JasonFengGit's PyTorch networks (docs/ORIGINAL.md §3.1) with PyTorch's layer settings
  (or, with ``init_std``, N(0, init_std^2) weights): LeakyReLU in G, BatchNorm with gamma (moving
  averages when sampling), D's and E's convolutions without padding (28 -> 13 -> 5, 3,200 features);
- ``"paper"``: the ClusterGAN paper authors' TensorFlow networks (docs/ORIGINAL.md §4.2, §4.3): ReLU in
  G; ``tf.contrib.layers.batch_norm``'s defaults (beta, no gamma, epsilon 1e-3, decay 0.999) on the
  batch's statistics always, sampling included (their code never leaves training mode), G's second one
  per channel after the reshape; "same" convolutions (28 -> 14 -> 7, 6,272 features); N(0, init_std^2)
  weights except D's and E's last layer, which keep ``fully_connected``'s Glorot-uniform default; zero
  biases.

The paper's networks compute their dense layers, and both networks their LeakyReLUs, with gradients written
out (:class:`Dense`, :class:`LeakyReLU`): the same functions and gradients, in less time for the critic's
gradient penalty and the G+E update (docs/PERFORMANCE.md), and a LeakyReLU gradient TensorFlow's graph
optimizer can handle; :func:`use_plain_layers` switches them back to Keras's own.
"""

from __future__ import annotations

from typing import Tuple

import keras
import tensorflow as tf
from keras import ops

from cogan_tf.config import ClusterGanConfig
from cogan_tf.layers import Dense
from cogan_tf.precision import as_float32
from cogan_tf.data import IMAGE_SHAPE
from cogan_tf.torch_layers import build_once, torch_default_init

NETWORKS = ("original", "paper")
# D's and E's flattened conv output: 128 channels at 5x5 ("valid") or 7x7 ("same").
CONV_FEATURES = {"original": 128 * 5 * 5, "paper": 128 * 7 * 7}


def is_papers(cfg: ClusterGanConfig) -> bool:
    if cfg.networks not in NETWORKS:
        raise ValueError(f"ClusterGanConfig.networks={cfg.networks!r}: choose one of {', '.join(NETWORKS)}")
    if cfg.networks == "paper" and cfg.init_std is None:
        raise ValueError("ClusterGanConfig.networks='paper' draws its weights N(0, init_std^2): set init_std")
    return cfg.networks == "paper"


class BatchStatsNorm(keras.layers.BatchNormalization):
    """The paper's batch_norm (contrib's with ``is_training=True`` everywhere): the batch's statistics in
    every call. Training updates the moving averages (kept, as the authors' variables, never read); a call
    with ``training=False`` (sampling, the export) normalises the same way without touching them, as the
    authors' sampling never ran their update ops. The output is Keras's training output, op for op."""

    def call(self, inputs, training=None, mask=None):
        if training:
            return super().call(inputs, training=True, mask=mask)
        x = ops.cast(inputs, "float32")
        mean, variance = self._moments(x, mask)
        out = ops.batch_normalization(x, mean, variance, axis=self.axis,
                                      offset=ops.cast(self.beta, x.dtype) if self.center else None,
                                      scale=ops.cast(self.gamma, x.dtype) if self.scale else None, epsilon=self.epsilon)
        return ops.cast(out, self.compute_dtype)


def batch_norm(cfg: ClusterGanConfig, name: str) -> keras.layers.BatchNormalization:
    """The original: PyTorch's BatchNorm defaults in Keras terms (momentum 0.1 -> 0.9, epsilon 1e-5, gamma
    1, beta 0). The paper's: contrib's batch_norm defaults (center, no scale, epsilon 1e-3, decay 0.999),
    on the batch's statistics always (:class:`BatchStatsNorm`)."""
    if is_papers(cfg):
        return BatchStatsNorm(momentum=0.999, epsilon=1e-3, center=True, scale=False, name=name)
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def initializers(cfg: ClusterGanConfig, fan_in: int, last: bool = False):
    """(kernel, bias) initializers: PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both (the
    original), or with ``cfg.init_std`` weights N(0, init_std^2) and zero biases; ``last`` (D's and E's
    last layer) of the paper's networks: Glorot-uniform, where the authors pass no initializer."""
    if cfg.init_std is None:
        return torch_default_init(fan_in), torch_default_init(fan_in)
    if last and is_papers(cfg):
        return keras.initializers.GlorotUniform(), keras.initializers.Zeros()
    return keras.initializers.RandomNormal(0.0, cfg.init_std), keras.initializers.Zeros()


def leaky_relu_written_gradient(x, negative_slope: float):
    """TensorFlow's LeakyReLU, forward and backward the same ops (LeakyRelu, LeakyReluGrad), but with
    its gradient's dependence on ``x`` cut. That dependence is zero (the slope is piecewise constant):
    TensorFlow's gradient of LeakyReluGrad returns ``zeros_like(x)``, and a second derivative (the
    critic's gradient penalty) then backpropagates those zeros through every layer that computed ``x``:
    for D on the interpolates, four matmul and conv gradient ops on zeros per critic update. Cut here,
    the gradients are the same to the bit, without that work.

    LeakyReluGrad reads the output ``y``, not ``x``, as TensorFlow's ReLU gradient does: for a slope of
    0 or more, ``y > 0`` exactly where ``x > 0``, so the values are the same. Read from ``x``, the
    gradient would keep the bias output of the layer before in use, and Grappler's remapper, fusing
    conv + bias + LeakyReLU, fails on the whole step (``E0000 ... remapper failed`` in the log)."""

    @tf.custom_gradient
    def f(x):
        y = tf.nn.leaky_relu(x, alpha=negative_slope)

        def grad(dy):
            return tf.raw_ops.LeakyReluGrad(gradients=dy, features=tf.stop_gradient(y), alpha=negative_slope)

        return y, grad

    return f(x)


class LeakyReLU(keras.layers.LeakyReLU):
    """Keras's LeakyReLU with the gradient of :func:`leaky_relu_written_gradient`;
    ``written_gradient=False``: Keras's own (the benchmark's reference)."""

    def __init__(self, negative_slope: float = 0.3, written_gradient: bool = True, **kwargs):
        super().__init__(negative_slope=negative_slope, **kwargs)
        self.written_gradient = written_gradient

    def call(self, inputs):
        if not self.written_gradient:
            return super().call(inputs)
        return leaky_relu_written_gradient(inputs, self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "written_gradient": self.written_gradient}


def use_plain_layers(gan):
    """The dense layers (paper networks) and LeakyReLUs with Keras's own gradients (as first written),
    for the benchmark's reference rows and the tests; before the step is traced."""
    for model in (gan.generator, gan.discriminator, gan.encoder):
        for layer in model._flatten_layers():
            if isinstance(layer, (Dense, LeakyReLU)):
                layer.written_gradient = False
    return gan


def dense(cfg: ClusterGanConfig, units: int, fan_in: int, name: str, last: bool = False) -> keras.layers.Dense:
    """``nn.Linear(fan_in, units)`` (``fully_connected``); the paper's: :class:`Dense`."""
    kernel, bias = initializers(cfg, fan_in, last)
    layer = Dense if is_papers(cfg) else keras.layers.Dense
    return layer(units, kernel_initializer=kernel, bias_initializer=bias, name=name)


def conv(cfg: ClusterGanConfig, filters: int, in_channels: int, name: str) -> keras.layers.Conv2D:
    """4x4 stride 2: ``nn.Conv2d(in_channels, filters, 4, stride=2)`` (no padding: Keras's "valid"), or
    the authors' ``convolution2d`` (contrib's default padding "same")."""
    kernel, bias = initializers(cfg, in_channels * 4 * 4)
    return keras.layers.Conv2D(filters, 4, strides=2, padding="same" if is_papers(cfg) else "valid",
                               kernel_initializer=kernel, bias_initializer=bias, name=name)


def deconv(cfg: ClusterGanConfig, filters: int, name: str, activation=None) -> keras.layers.Conv2DTranspose:
    """``nn.ConvTranspose2d(_, filters, 4, stride=2, padding=1)`` and the authors' 4x4 stride 2 "same"
    ``convolution2d_transpose`` are both Keras's 4x4 stride 2 "same" (doubles height and width).
    PyTorch's default init reads fan_in as filters * 4 * 4 for a transposed conv."""
    kernel, bias = initializers(cfg, filters * 4 * 4)
    return keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", activation=activation,
                                        kernel_initializer=kernel, bias_initializer=bias, name=name)


def activation_layer(cfg: ClusterGanConfig, prefix: str, generator: bool = False):
    """LeakyReLU(leak) (:class:`LeakyReLU`, Keras's with its gradient written); the paper's generator: ReLU."""
    if generator and is_papers(cfg):
        return keras.layers.ReLU(name=f"{prefix}_relu")
    return LeakyReLU(negative_slope=cfg.leak, name=f"{prefix}_lrelu")


class ClusterGenerator(keras.Model):
    """z = [z_n, z_c] -> Linear 1024, BN, act -> Linear 128*7*7, BN, act -> (7, 7, 128) -> Deconv 4x4 s2
    -> 14x14x64, BN, act -> Deconv 4x4 s2 -> 28x28x1, sigmoid. The paper's: act = ReLU and the second BN
    after the reshape (per channel), always on batch statistics; the original's: LeakyReLU, the second BN
    before the reshape (per feature), moving averages when not training."""

    def __init__(self, cfg: ClusterGanConfig = ClusterGanConfig(), **kwargs):
        super().__init__(name="clustergan_generator", **kwargs)
        self.cfg = cfg
        self.papers = is_papers(cfg)
        self.h0 = dense(cfg, 1024, cfg.z_dim + cfg.n_classes, "g_h0")
        self.bn0 = batch_norm(cfg, "g_bn0")
        self.act0 = activation_layer(cfg, "g_h0", generator=True)
        self.h1 = dense(cfg, 128 * 7 * 7, 1024, "g_h1")
        self.bn1 = batch_norm(cfg, "g_bn1")
        self.act1 = activation_layer(cfg, "g_h1", generator=True)
        self.h2 = deconv(cfg, 64, "g_h2")
        self.bn2 = batch_norm(cfg, "g_bn2")
        self.act2 = activation_layer(cfg, "g_h2", generator=True)
        self.h3 = deconv(cfg, 1, "g_h3", activation="sigmoid")

    def build(self, input_shape):
        build_once(self.h0, (None, self.cfg.z_dim + self.cfg.n_classes))
        build_once(self.bn0, (None, 1024))
        build_once(self.h1, (None, 1024))
        build_once(self.bn1, (None, 7, 7, 128) if self.papers else (None, 128 * 7 * 7))
        build_once(self.h2, (None, 7, 7, 128))
        build_once(self.bn2, (None, 14, 14, 64))
        build_once(self.h3, (None, 14, 14, 64))
        self.built = True

    def call(self, z, training=False):
        # The authors' batch_norm runs with is_training=True everywhere: the batch's statistics also when
        # sampling (BatchStatsNorm), so an image depends on the other z of its batch (one z alone: its BN
        # output is beta).
        x = self.act0(self.bn0(self.h0(z), training=training))
        x = self.h1(x)
        if self.papers:
            x = keras.ops.reshape(x, (-1, 7, 7, 128))
            x = self.act1(self.bn1(x, training=training))
        else:
            x = self.act1(self.bn1(x, training=training))
            x = keras.ops.reshape(x, (-1, 7, 7, 128))  # PyTorch: (128, 7, 7), see docs/PORTS.md
        x = self.act2(self.bn2(self.h2(x), training=training))
        return as_float32(self.h3(x))  # float32 images also under a mixed dtype policy (--mixed_precision)


class ConvTrunk(keras.layers.Layer):
    """The part D and E have in common (not shared: each has its own): Conv 4x4 s2 -> 64, LReLU,
    Conv 4x4 s2 -> 128, LReLU, flatten (3,200; the paper's 6,272), Linear 1024, LReLU."""

    def __init__(self, cfg: ClusterGanConfig, prefix: str, **kwargs):
        super().__init__(name=f"{prefix}_trunk", **kwargs)
        self.c0_side = 14 if is_papers(cfg) else 13  # 28 -> 14 ("same") or (28 - 4) // 2 + 1 = 13 ("valid")
        self.features = CONV_FEATURES[cfg.networks]
        self.c0 = conv(cfg, 64, 1, f"{prefix}_c0")
        self.act0 = activation_layer(cfg, f"{prefix}_c0")
        self.c1 = conv(cfg, 128, 64, f"{prefix}_c1")
        self.act1 = activation_layer(cfg, f"{prefix}_c1")
        self.h2 = dense(cfg, 1024, self.features, f"{prefix}_h2")
        self.act2 = activation_layer(cfg, f"{prefix}_h2")

    def build(self, input_shape):
        build_once(self.c0, (None,) + IMAGE_SHAPE)
        build_once(self.c1, (None, self.c0_side, self.c0_side, 64))
        build_once(self.h2, (None, self.features))
        self.built = True

    def call(self, x):
        x = self.act1(self.c1(self.act0(self.c0(x))))
        # NHWC, row-major: contrib's flatten; PyTorch flattens (128, 5, 5), here (5, 5, 128)
        x = keras.ops.reshape(x, (-1, self.features))
        return self.act2(self.h2(x))


class ClusterDiscriminator(keras.Model):
    """The conv trunk, then Linear 1024 -> 1 and a sigmoid (``call``; ``logits`` before it, which is
    the WGAN-GP critic's score under ``--recipe paper``)."""

    def __init__(self, cfg: ClusterGanConfig = ClusterGanConfig(), **kwargs):
        super().__init__(name="clustergan_discriminator", **kwargs)
        self.trunk = ConvTrunk(cfg, "d")
        self.h3 = dense(cfg, 1, 1024, "d_h3", last=True)

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
        self.h3 = dense(cfg, cfg.z_dim + cfg.n_classes, 1024, "e_h3", last=True)

    def build(self, input_shape):
        build_once(self.trunk, (None,) + IMAGE_SHAPE)
        build_once(self.h3, (None, 1024))
        self.built = True

    def call(self, x, training=False) -> Tuple:
        out = as_float32(self.h3(self.trunk(x)))
        return out[:, : self.cfg.z_dim], out[:, self.cfg.z_dim:]
