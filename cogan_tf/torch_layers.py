"""PyTorch's default initial weights for the Keras layers of the two PyTorch ports (the vanilla GAN and
the ClusterGAN, JasonFengGit's code), which both originals keep (they never re-initialise): every Linear /
Conv / ConvTranspose weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), not Keras's Glorot. The other
choices where PyTorch and Keras differ (losses from logits, Adam's epsilon, the last partial batch) are in
docs/PORTS.md, "Faithful to the originals' code, and where it differs".
"""

from __future__ import annotations

import math

import keras

from cogan_tf.layers import Dense


def torch_default_init(fan_in: int) -> keras.initializers.Initializer:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for weights (kaiming_uniform with
    a = sqrt(5), whose bound works out to the same) and for biases of Linear and conv layers. For a
    ConvTranspose2d PyTorch reads the fan from dimension 1 of its (in, out, k, k) weight, out_channels*k*k;
    Keras's fan_in of a Conv2DTranspose kernel (k, k, out, in) is the same number."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def build_once(layer, input_shape) -> None:
    """Build a sub-layer unless a call already did (a model's build may come after its layers ran)."""
    if not layer.built:
        layer.build(input_shape)


def torch_dense(units: int, fan_in: int, name: str, activation=None) -> Dense:
    """``nn.Linear(fan_in, units)`` with PyTorch's default initial weights (a Dense whose input gradient may be
    written, :class:`cogan_tf.layers.Dense`)."""
    return Dense(units, activation=activation, kernel_initializer=torch_default_init(fan_in),
                 bias_initializer=torch_default_init(fan_in), name=name)
