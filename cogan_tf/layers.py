"""Building blocks with the original's exact settings (REFERENCE.md §1 "Building blocks")."""

from __future__ import annotations

import keras
from keras import ops

STDDEV = 0.02


def normal_init():
    """N(0, 0.02): the original's Linear and Deconv weights."""
    return keras.initializers.RandomNormal(0.0, STDDEV)


def truncated_init():
    """Truncated normal, stddev 0.02 (cut at 2 sigma, as TF1's): the original's Conv weights."""
    return keras.initializers.TruncatedNormal(0.0, STDDEV)


def dense(units: int, name: str) -> keras.layers.Dense:
    """The original's ``linear``: weights N(0, 0.02), bias 0."""
    return keras.layers.Dense(units, kernel_initializer=normal_init(), bias_initializer="zeros", name=name)


def conv(filters: int, name: str, kernel: int = 5) -> keras.layers.Conv2D:
    """The original's ``conv2d``: 5x5, stride 2, SAME, truncated-normal weights, bias 0."""
    return keras.layers.Conv2D(filters, kernel, strides=2, padding="same", kernel_initializer=truncated_init(),
                               bias_initializer="zeros", name=name)


def deconv(filters: int, name: str, activation=None, kernel: int = 5) -> keras.layers.Conv2DTranspose:
    """The original's ``deconv2d``: 5x5, stride 2, SAME (doubles height and width), N(0, 0.02), bias 0."""
    return keras.layers.Conv2DTranspose(filters, kernel, strides=2, padding="same", activation=activation,
                                        kernel_initializer=normal_init(), bias_initializer="zeros", name=name)


class ScalarPReLU(keras.layers.Layer):
    """``max(x, t * x)`` with ONE trained scalar slope ``t`` per layer, initialised from N(0, 0.02).

    Keras's own PReLU has one slope per unit, starts at 0 and computes ``x if x > 0 else a * x``;
    the original's differs in all three, and for t > 1 the two functions differ too.
    """

    def build(self, input_shape):
        self.t = self.add_weight(shape=(), initializer=normal_init(), name="t")

    def call(self, x):
        return ops.maximum(x, ops.cast(self.t, x.dtype) * x)


class BatchNorm(keras.layers.BatchNormalization):
    """The original's batch_norm: epsilon 1e-5, moving-average decay 0.9, gamma ~ N(1, 0.02), beta 0.

    ``batch_stats_at_inference`` (the original's behaviour, on by default): the layer normalises with
    the statistics of the batch it is given also when ``training=False`` (sampling), without touching
    the moving averages, which are kept but, as in the original, unused. Off: Keras's usual moving
    averages at inference. ``synchronized`` computes batch statistics across tf.distribute replicas.
    """

    def __init__(self, batch_stats_at_inference: bool = True, name=None, synchronized: bool = False, **kwargs):
        kwargs.setdefault("momentum", 0.9)
        kwargs.setdefault("epsilon", 1e-5)
        kwargs.setdefault("gamma_initializer", keras.initializers.RandomNormal(1.0, STDDEV))
        super().__init__(name=name, synchronized=synchronized, **kwargs)
        self.batch_stats_at_inference = batch_stats_at_inference

    def call(self, inputs, training=None, mask=None):
        if training or not self.batch_stats_at_inference:
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, "float32")
        mean, variance = self._moments(x, mask)
        out = ops.batch_normalization(x, mean, variance, axis=self.axis, offset=ops.cast(self.beta, x.dtype),
                                      scale=ops.cast(self.gamma, x.dtype), epsilon=self.epsilon)
        return ops.cast(out, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "batch_stats_at_inference": self.batch_stats_at_inference}
