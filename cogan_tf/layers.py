"""Building blocks with the original's exact settings (docs/ORIGINAL.md §1.4), and the written gradients
the speed levers of several networks share (a transposed convolution's, a dense layer's input gradient)."""

from __future__ import annotations

import keras
import tensorflow as tf
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

    def __init__(self, written_gradient: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.written_gradient = written_gradient  # False: autodiff of ops.maximum (benchmark reference)

    def build(self, input_shape):
        # Not autocast: under --mixed_precision the slope's gradient, a sum over a whole activation
        # tensor, is taken in float32 (in float16 it would overflow at high loss scales).
        self.t = self.add_weight(shape=(), initializer=normal_init(), name="t", autocast=False)

    def call(self, x):
        if self.written_gradient:
            return scalar_prelu(x, ops.cast(self.t, "float32"))
        t = ops.cast(self.t, x.dtype)
        return ops.maximum(x, t * x)

    def get_config(self):
        return {**super().get_config(), "written_gradient": self.written_gradient}


@tf.custom_gradient
def scalar_prelu(x, t):
    """``max(x, t * x)`` with its gradient written out: the same values as TensorFlow's gradient of
    ``maximum`` (ties, x = t x, go to x, as Maximum's gradient sends them), in fewer full-size passes
    (one mask, one select, one product and one sum instead of two selects, two products and an add).
    ``t`` is the float32 slope; x may be float16/bfloat16 (mixed precision): the slope's gradient is
    then summed in float32 (the casts are no-ops in float32)."""
    tc = tf.cast(t, x.dtype)
    tx = tc * x
    keep = x >= tx

    def grad(dy):
        dx = tf.where(keep, dy, tc * dy)
        xdy = tf.cast(x, t.dtype) * tf.cast(dy, t.dtype)
        dt = tf.reduce_sum(tf.where(keep, tf.zeros_like(xdy), xdy))
        return dx, dt

    return tf.where(keep, x, tx), grad


class BatchNorm(keras.layers.BatchNormalization):
    """The original's batch_norm: epsilon 1e-5, moving-average decay 0.9, gamma ~ N(1, 0.02), beta 0.

    ``batch_stats_at_inference`` (the original's behaviour, on by default): the layer normalises with
    the statistics of the batch it is given also when ``training=False`` (sampling), without touching
    the moving averages, which are kept but, as in the original, unused. Off: Keras's usual moving
    averages at inference. ``synchronized`` computes batch statistics across tf.distribute replicas.

    ``scalar_2d_stats`` (quirk Q2, docs/ORIGINAL.md §1.6): on a 2-D input (batch, features), ONE scalar
    mean and variance over the whole batch x features matrix, as the original's fallback computes them,
    with the per-feature gamma and beta after; the moving averages hold that scalar in every feature.
    Off: Keras's per-feature statistics.
    """

    # Speed levers of the fused op that pay on a CPU only (cogan_tf/levers.py sets them per device): Q2's
    # scalar statistics as one fused channel of batch x features samples, and float32 inputs to the op
    # under mixed precision (cuDNN normalises float16/bfloat16 inputs with float32 statistics itself).
    fuse_scalar_stats = True
    fused_float32_input = True

    def __init__(self, batch_stats_at_inference: bool = True, name=None, synchronized: bool = False,
                 fused: bool = True, scalar_2d_stats: bool = False, **kwargs):
        kwargs.setdefault("momentum", 0.9)
        kwargs.setdefault("epsilon", 1e-5)
        kwargs.setdefault("gamma_initializer", keras.initializers.RandomNormal(1.0, STDDEV))
        super().__init__(name=name, synchronized=synchronized, **kwargs)
        self.batch_stats_at_inference = batch_stats_at_inference
        self.fused = fused
        self.scalar_2d_stats = scalar_2d_stats

    def _scalar(self, inputs) -> bool:
        return self.scalar_2d_stats and len(inputs.shape) == 2

    def _moments(self, inputs, mask):
        """Keras's per-feature moments, or (Q2) one scalar mean and variance over batch x features,
        broadcast to the per-feature shape that Keras's call and moving averages expect."""
        if not self._scalar(inputs) or mask is not None:
            return super()._moments(inputs, mask)
        mean, variance = ops.moments(inputs, axes=[0, 1], synchronized=self.synchronized)
        features = (inputs.shape[-1],)
        return ops.broadcast_to(mean, features), ops.broadcast_to(variance, features)

    def call(self, inputs, training=None, mask=None):
        update = bool(training and self.trainable)
        if self._fusable(inputs, mask) and (update or (not training and self.batch_stats_at_inference)):
            return self._fused(inputs, update=update)
        if training or not self.batch_stats_at_inference:
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, "float32")
        mean, variance = self._moments(x, mask)
        out = ops.batch_normalization(x, mean, variance, axis=self.axis, offset=ops.cast(self.beta, x.dtype),
                                      scale=ops.cast(self.gamma, x.dtype), epsilon=self.epsilon)
        return ops.cast(out, self.compute_dtype)

    def _fusable(self, inputs, mask) -> bool:
        """The normalisation on batch statistics as ONE op (TensorFlow's FusedBatchNormV3, which oneDNN
        and cuDNN implement) instead of Keras's moments + normalisation + their autodiff gradients: the
        same function (outputs and gradients equal to float rounding, tests/test_speed.py), fewer passes
        over the activations (docs/PERFORMANCE.md). Not for synchronized statistics (they need a
        cross-replica sum between the two halves), masks, or layers without gamma/beta or on another axis."""
        rank = len(inputs.shape)
        return (self.fused and not self.synchronized and mask is None and self.center and self.scale
                and not self.renorm and rank in (2, 4) and self.axis in (-1, rank - 1)
                and (self.fuse_scalar_stats or not self._scalar(inputs)))

    def _fused(self, inputs, update: bool):
        scalar = self._scalar(inputs)
        # The op takes float16/bfloat16 x with float32 scale, offset and statistics, and returns y in x's type.
        x = inputs if not (self.fused_float32_input or scalar) else ops.cast(inputs, "float32")
        gamma, beta = ops.cast(self.gamma, "float32"), ops.cast(self.beta, "float32")
        if scalar:
            # Q2: every element of the matrix is one sample of a single channel; the op normalises
            # with the scalar statistics and gamma/beta (per feature) are applied after it.
            x4 = tf.reshape(x, [-1, 1, 1, 1])
            scale, offset = tf.ones([1]), tf.zeros([1])
        else:
            x4 = tf.reshape(x, [-1, 1, 1, x.shape[-1]]) if len(x.shape) == 2 else x
            scale, offset = gamma, beta
        empty = tf.constant([], tf.float32)
        # epsilon given to the raw op as is: tf.nn.fused_batch_norm would raise 1e-5 to 1.001e-5.
        y, mean, var, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x4, scale=scale, offset=offset,
            mean=empty, variance=empty, epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC",
            is_training=True)
        if scalar:
            y = tf.reshape(y, tf.shape(x)) * gamma + beta
            mean, var = tf.broadcast_to(mean, gamma.shape), tf.broadcast_to(var, gamma.shape)
        if update:
            # The op returns the variance with Bessel's correction; Keras (and the original's
            # tf.nn.moments) average the biased one into the moving variance.
            n = tf.cast(tf.size(x) // (1 if scalar else x.shape[-1]), tf.float32)
            var = var * ((n - 1.0) / n)
            k = self.momentum
            self.moving_mean.assign(self.moving_mean * k + tf.stop_gradient(mean) * (1.0 - k))
            self.moving_variance.assign(self.moving_variance * k + tf.stop_gradient(var) * (1.0 - k))
        if len(x.shape) == 2 and not scalar:
            y = tf.reshape(y, tf.shape(x))
        return ops.cast(y, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "batch_stats_at_inference": self.batch_stats_at_inference,
                "fused": self.fused, "scalar_2d_stats": self.scalar_2d_stats}


def deconv_gradient(dy, kernel, x):
    """The gradients ``(dx, dkernel)`` of ``tf.nn.conv2d_transpose(x, kernel, ..., strides=2,
    padding="SAME")``: the two ops TensorFlow's own gradient of it makes. The written forms of a transposed
    convolution (a sub-pixel convolution, a matmul and overlap-add) return these, so their gradients are
    the plain layer's."""
    dx = tf.nn.conv2d(dy, kernel, strides=2, padding="SAME")
    dk = tf.raw_ops.Conv2DBackpropFilter(input=dy, filter_sizes=tf.shape(kernel), out_backprop=x,
                                         strides=[1, 2, 2, 1], padding="SAME")
    return dx, dk


def matmul_written_gradient(x, w):
    """``x @ w`` (a 2-D MatMul, as Keras's Dense) whose input gradient ``dy @ w^T`` is computed as a
    BatchMatMulV2 with ``adj_y`` instead of TensorFlow's MatMul with ``transpose_b``: the same sums,
    but oneDNN runs the latter about 3x slower on this CPU (for the ClusterGAN paper networks' 64-row
    gradients of their 6,272 x 1,024 layers; the two differ only by the order of their roundings). The
    weight gradient ``x^T @ dy`` is TensorFlow's own op. The gradient function is made of differentiable
    ops, so the critic's gradient penalty can differentiate it once more."""

    @tf.custom_gradient
    def f(x, w):
        def grad(dy):
            return (tf.raw_ops.BatchMatMulV2(x=dy, y=w, adj_y=True),
                    tf.raw_ops.MatMul(a=x, b=dy, transpose_a=True, grad_b=True))

        return tf.matmul(x, w), grad

    return f(x, w)
