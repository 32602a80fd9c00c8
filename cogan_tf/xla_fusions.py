"""Small XLA clusters for the elementwise work of the CoGAN step: each computes what a written gradient of
:mod:`cogan_tf.layers` computes, in one pass over the activations instead of several (TensorFlow runs each op
of a graph as its own pass; XLA fuses a cluster's elementwise ops and reductions into a few loops). Compiled
per shape at the first call; the rest of the step stays TensorFlow's (oneDNN's convolutions and matmuls: XLA
compiling the whole step was 2x slower, docs/PERFORMANCE.md).

* :func:`prelu`: the scalar PReLU ``max(x, t x)``, forward and backward (``layers.scalar_prelu``'s gradient);
  :func:`channel_prelu`: the paper network's per-channel PReLU (``paper_layers.channel_prelu``'s);
* :func:`scalar_batch_norm_prelu`: quirk Q2's scalar-statistics BatchNorm followed by that PReLU, forward and
  backward, the normalisation's scale and shift fused into the PReLU (``layers.scalar_batch_norm``'s gradient).

Gradients equal the written ones to float rounding (the sums in another order; tests/test_xla_fusions.py).
"""

from __future__ import annotations

import tensorflow as tf


def untaped(*tensors):
    """``tensors`` as a gradient tape does not see them: a tape recording a compiled function's call has it
    return its intermediate values too, for a gradient that the custom gradient around it never asks for
    (for the BatchNorm cluster 7 more outputs, each written in full)."""
    return [tf.stop_gradient(t) for t in tensors]


@tf.function(jit_compile=True)
def _prelu_forward(x, t):
    tx = t * x
    keep = x >= tx
    return tf.where(keep, x, tx), keep


@tf.function(jit_compile=True)
def _prelu_backward(x, keep, dy, t):
    dx = tf.where(keep, dy, t * dy)
    xdy = tf.cast(x, tf.float32) * tf.cast(dy, tf.float32)  # the slope's gradient summed in float32
    return dx, tf.reduce_sum(tf.where(keep, tf.zeros_like(xdy), xdy))


@tf.custom_gradient
def prelu(x, t):
    """``max(x, t * x)`` for a float32 scalar ``t`` (x may be float16/bfloat16), ties to x as
    ``layers.scalar_prelu``: values and input gradient identical to it, the slope's gradient to rounding."""
    tc = tf.cast(t, x.dtype)
    y, keep = _prelu_forward(*untaped(x, tc))

    def grad(dy):
        with tf.name_scope("prelu_grad"):
            return _prelu_backward(x, keep, dy, tc)

    return y, grad


@tf.function(jit_compile=True)
def _channel_prelu_forward(x, a):
    positive = x > 0
    return tf.where(positive, x, a * x), positive


@tf.function(jit_compile=True)
def _channel_prelu_backward(x, positive, dy, a):
    dx = tf.where(positive, dy, a * dy)
    return dx, tf.reduce_sum(tf.where(positive, tf.zeros_like(x), x * dy), axis=list(range(len(x.shape) - 1)))


@tf.custom_gradient
def channel_prelu(x, a):
    """Caffe's PReLU with one slope per channel (last axis), ``paper_layers.channel_prelu``'s values and
    gradients (slope ``a`` where x <= 0): values and input gradient identical, the slopes' gradient to rounding."""
    y, positive = _channel_prelu_forward(*untaped(x, a))

    def grad(dy):
        with tf.name_scope("prelu_grad"):
            return _channel_prelu_backward(x, positive, dy, a)

    return y, grad


@tf.function(jit_compile=True)
def _bn_prelu_forward(x, gamma, beta, t, epsilon):
    mean = tf.reduce_mean(x)
    xc = x - mean
    var = tf.reduce_mean(tf.square(xc))
    z = xc * (gamma * tf.math.rsqrt(var + epsilon)) + beta
    tz = t * z
    keep = z >= tz
    return tf.where(keep, z, tz), mean, var, keep


@tf.function(jit_compile=True)
def _bn_prelu_backward(x, keep, dy, gamma, beta, t, mean, var, epsilon):
    r = tf.math.rsqrt(var + epsilon)
    xc = x - mean
    scale = gamma * r
    z = xc * scale + beta  # recomputed here: one read of x instead of a write and a read of z
    dz = tf.where(keep, dy, t * dy)
    dt = tf.reduce_sum(tf.where(keep, tf.zeros_like(dy), z * dy))
    m = tf.cast(tf.size(x), x.dtype)
    dbeta = tf.reduce_sum(dz, 0)
    dgamma = tf.reduce_sum(dz * xc, 0) * r
    a = tf.reduce_sum(gamma * dbeta) * (r / m)
    b = tf.reduce_sum(gamma * dgamma) * (r * r / m)
    return dz * scale - (xc * b + a), dgamma, dbeta, dt


def scalar_batch_norm_prelu(x, gamma, beta, t, epsilon: float):
    """``prelu(layers.scalar_batch_norm(x, gamma, beta, epsilon)[0], t)`` for a float32 (batch, features)
    ``x``: returns ``(y, mean, biased variance)``; the statistics are for the moving averages and are not
    differentiated."""
    eps = tf.constant(epsilon, x.dtype)

    @tf.custom_gradient
    def f(x, gamma, beta, t):
        y, mean, var, keep = _bn_prelu_forward(*untaped(x, gamma, beta, t), eps)

        def grad(dy, *_):
            with tf.name_scope("batchnorm_grad"):
                return _bn_prelu_backward(x, keep, dy, gamma, beta, t, mean, var, eps)

        return (y, mean, var), grad

    return f(x, gamma, beta, t)
