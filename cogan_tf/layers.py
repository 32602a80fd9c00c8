"""Building blocks with the original's exact settings (docs/ORIGINAL.md §1.4), and the written gradients
the speed levers of several networks share (a transposed convolution's, a dense layer's and a stride-2
convolution's input gradients, Q2's scalar-statistics BatchNorm)."""

from __future__ import annotations

from typing import Tuple

import keras
import tensorflow as tf
from keras import ops

from cogan_tf import xla_fusions

STDDEV = 0.02


def normal_init():
    """N(0, 0.02): the original's Linear and Deconv weights."""
    return keras.initializers.RandomNormal(0.0, STDDEV)


def truncated_init():
    """Truncated normal, stddev 0.02 (cut at 2 sigma, as TF1's): the original's Conv weights."""
    return keras.initializers.TruncatedNormal(0.0, STDDEV)


def dense(units: int, name: str) -> "Dense":
    """The original's ``linear``: weights N(0, 0.02), bias 0."""
    return Dense(units, kernel_initializer=normal_init(), bias_initializer="zeros", name=name)


def conv(filters: int, name: str, kernel: int = 5) -> "Conv":
    """The original's ``conv2d``: 5x5, stride 2, SAME, truncated-normal weights, bias 0."""
    return Conv(filters, kernel, strides=2, padding="same", kernel_initializer=truncated_init(),
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

    # Speed lever (cogan_tf/levers.py sets it per device): the written gradient's passes as one XLA cluster
    # each way (cogan_tf/xla_fusions.py).
    xla = True

    def __init__(self, written_gradient: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.written_gradient = written_gradient  # False: autodiff of ops.maximum (benchmark reference)

    def build(self, input_shape):
        # Not autocast: under --mixed_precision the slope's gradient, a sum over a whole activation
        # tensor, is taken in float32 (in float16 it would overflow at high loss scales).
        self.t = self.add_weight(shape=(), initializer=normal_init(), name="t", autocast=False)

    def call(self, x):
        if self.written_gradient:
            return (xla_fusions.prelu if self.xla else scalar_prelu)(x, ops.cast(self.t, "float32"))
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
        with tf.name_scope("prelu_grad"):  # a custom gradient's ops are outside the layer's scope otherwise
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

    # Speed levers (cogan_tf/levers.py sets them per device): Q2's scalar statistics by reductions with a
    # written gradient (:func:`scalar_batch_norm`); else, on a CPU, as one fused channel of batch x features
    # samples; and float32 inputs to the fused op under mixed precision (cuDNN normalises float16/bfloat16
    # inputs with float32 statistics itself).
    written_scalar_stats = True
    fuse_scalar_stats = True
    fused_float32_input = True
    # With a written-gradient PReLU after it (batchnorm_prelu): the written scalar statistics and the PReLU as
    # one XLA cluster each way (cogan_tf/xla_fusions.py).
    xla_prelu_fusion = True

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
        batch_stats, update = self._batch_stats(training)
        if batch_stats and self._written_scalar(inputs, mask):
            return self._scalar_written(inputs, update=update)
        if batch_stats and self._fusable(inputs, mask):
            return self._fused(inputs, update=update)
        if training or not self.batch_stats_at_inference:
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, "float32")
        mean, variance = self._moments(x, mask)
        out = ops.batch_normalization(x, mean, variance, axis=self.axis, offset=ops.cast(self.beta, x.dtype),
                                      scale=ops.cast(self.gamma, x.dtype), epsilon=self.epsilon)
        return ops.cast(out, self.compute_dtype)

    def _plain_statistics(self, mask) -> bool:
        """What neither fast path takes: synchronized statistics (a cross-replica sum between the halves),
        masks, layers without gamma/beta or with renormalisation."""
        return not self.fused or self.synchronized or mask is not None or not (self.center and self.scale) or self.renorm

    def _written_scalar(self, inputs, mask) -> bool:
        """Q2's scalar statistics by :func:`scalar_batch_norm`."""
        return self.written_scalar_stats and self._scalar(inputs) and not self._plain_statistics(mask)

    def _fusable(self, inputs, mask) -> bool:
        """The normalisation on batch statistics as ONE op (TensorFlow's FusedBatchNormV3, which oneDNN
        and cuDNN implement) instead of Keras's moments + normalisation + their autodiff gradients: the
        same function (outputs and gradients equal to float rounding, tests/test_layers.py), fewer passes
        over the activations (docs/PERFORMANCE.md). Not for :meth:`_plain_statistics`, or inputs other
        than 2-D or 4-D on the last axis."""
        rank = len(inputs.shape)
        return (not self._plain_statistics(mask) and rank in (2, 4) and self.axis in (-1, rank - 1)
                and (self.fuse_scalar_stats or not self._scalar(inputs)))

    def _batch_stats(self, training) -> Tuple[bool, bool]:
        """(normalise with the batch's statistics, update the moving averages) for a call in ``training``."""
        update = bool(training and self.trainable)
        return update or (not training and self.batch_stats_at_inference), update

    def _scalar_written(self, inputs, update: bool):
        x = ops.cast(inputs, "float32")
        gamma, beta = ops.cast(self.gamma, "float32"), ops.cast(self.beta, "float32")
        y, mean, var = scalar_batch_norm(x, gamma, beta, self.epsilon)
        if update:
            self._update_moving_averages(tf.broadcast_to(mean, gamma.shape), tf.broadcast_to(var, gamma.shape))
        return ops.cast(y, self.compute_dtype)

    def _update_moving_averages(self, mean, biased_variance):
        """Keras's (and the original's) moving averages of the batch statistics, with the biased variance."""
        k = self.momentum
        self.moving_mean.assign(self.moving_mean * k + tf.stop_gradient(mean) * (1.0 - k))
        self.moving_variance.assign(self.moving_variance * k + tf.stop_gradient(biased_variance) * (1.0 - k))

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
            self._update_moving_averages(mean, var * ((n - 1.0) / n))
        if len(x.shape) == 2 and not scalar:
            y = tf.reshape(y, tf.shape(x))
        return ops.cast(y, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "batch_stats_at_inference": self.batch_stats_at_inference,
                "fused": self.fused, "scalar_2d_stats": self.scalar_2d_stats}


def batchnorm_prelu(bn: BatchNorm, act: ScalarPReLU, x, training=False):
    """``act(bn(x, training=training))``; where ``bn`` takes Q2's scalar statistics with its written gradient and
    ``act`` has its written gradient, both as one XLA cluster each way (``xla_fusions.scalar_batch_norm_prelu``,
    when ``bn.xla_prelu_fusion`` and ``act.xla``): the normalisation's scale and shift and the PReLU in one pass."""
    batch_stats, update = bn._batch_stats(training)
    if not (batch_stats and bn.xla_prelu_fusion and bn._written_scalar(x, None) and act.written_gradient and act.xla
            and bn.built and act.built):  # the layers' own calls build them
        return act(bn(x, training=training))
    with tf.name_scope(bn.name):
        gamma, beta = tf.convert_to_tensor(bn.gamma), tf.convert_to_tensor(bn.beta)
        y, mean, var = xla_fusions.scalar_batch_norm_prelu(ops.cast(x, "float32"), ops.cast(gamma, "float32"),
                                                           ops.cast(beta, "float32"), tf.convert_to_tensor(act.t),
                                                           bn.epsilon)
        if update:
            bn._update_moving_averages(tf.broadcast_to(mean, gamma.shape), tf.broadcast_to(var, gamma.shape))
    return ops.cast(y, bn.compute_dtype)


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


def scalar_batch_norm(x, gamma, beta, epsilon: float):
    """Q2's BatchNorm of a (batch, features) matrix (docs/ORIGINAL.md §1.6): ONE mean and variance over all
    its values, then the per-feature ``gamma`` and ``beta``. Returns ``(y, mean, biased variance)``; the
    statistics are for the moving averages and are not differentiated.

    The same function as Keras's moments + normalisation (outputs and gradients equal to rounding,
    tests/test_layers.py), by plain reductions and a written gradient: the fused op would normalise the matrix
    as one channel of batch x features values, for which oneDNN has no fast kernel (docs/PERFORMANCE.md).
    With xc = x - mean, r = 1/sqrt(var + eps) and M values, the backward pass needs the two per-feature
    sums the parameters' gradients are (d beta = sum dy, d gamma = r sum dy xc), and from them two scalars:
    dx = r gamma dy - r sum(gamma d beta) / M - r^2 xc sum(gamma d gamma) / M."""

    @tf.custom_gradient
    def f(x, gamma, beta):
        mean = tf.reduce_mean(x)
        xc = x - mean
        var = tf.reduce_mean(tf.square(xc))
        r = tf.math.rsqrt(var + epsilon)
        scale = gamma * r

        def grad(dy, *_):  # the statistics' output gradients: not differentiated
            with tf.name_scope("batchnorm_grad"):
                m = tf.cast(tf.size(x), x.dtype)
                dbeta = tf.reduce_sum(dy, 0)
                dgamma = tf.reduce_sum(dy * xc, 0) * r
                a = tf.reduce_sum(gamma * dbeta) * (r / m)
                b = tf.reduce_sum(gamma * dgamma) * (r * r / m)
                return dy * scale - (xc * b + a), dgamma, dbeta

        return (xc * scale + beta, mean, var), grad

    return f(x, gamma, beta)


class Dense(keras.layers.Dense):
    """Keras's Dense (same weights, same forward op) with its input gradient written out
    (:func:`matmul_written_gradient`); ``written_gradient=False``: Keras's own (the plain step; on a GPU,
    cogan_tf/levers.py)."""

    def __init__(self, units: int, written_gradient: bool = True, **kwargs):
        super().__init__(units, **kwargs)
        self.written_gradient = written_gradient

    def call(self, inputs, training=None):
        if not self.written_gradient:
            return super().call(inputs, training=training)
        # A tensor read of the kernel (cast to the compute dtype under a mixed policy), not the variable:
        # the gradient reaches the variable through the read.
        x = matmul_written_gradient(inputs, tf.convert_to_tensor(self.kernel))
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def get_config(self):
        return {**super().get_config(), "written_gradient": self.written_gradient}


# The 5x5 stride-2 SAME transposed convolution (the gradient of the same convolution with respect to its
# input) as a 3x3 convolution to 4x the channels plus depth_to_space: output pixel (2i + a, 2j + b) sums
# input pixels i-1, i, i+1 (rows; columns alike) through kernel taps that depend only on the phase a (b):
# SUBPIXEL_TAPS[a][o] is the tap for the input row at offset o - 1 (None: that phase takes nothing from it).
# From TensorFlow's SAME padding for stride 2 and an even output size (1 row before, 2 after): output row
# r = 2i + k - 1.
SUBPIXEL_TAPS = ((3, 1, None), (4, 2, 0))


def subpixel_kernel(kernel):
    """A (5, 5, out, in) conv2d_transpose kernel as the (3, 3, in, 4 * out) kernel of the same
    transposed convolution written as conv2d + depth_to_space(2): output channel (2a + b) * out + c
    is phase (a, b) of channel c; the taps a phase does not use are zeros."""
    k, _, c_out, c_in = kernel.shape
    flat = tf.concat([tf.reshape(tf.transpose(kernel, [0, 1, 3, 2]), [k * k, c_in, c_out]),
                      tf.zeros([1, c_in, c_out], kernel.dtype)], axis=0)  # row k*k: the zero tap
    index = [[[k * k if SUBPIXEL_TAPS[a][oy] is None or SUBPIXEL_TAPS[b][ox] is None
               else SUBPIXEL_TAPS[a][oy] * k + SUBPIXEL_TAPS[b][ox] for a in (0, 1) for b in (0, 1)]
              for ox in range(3)] for oy in range(3)]
    taps = tf.gather(flat, index)  # (3, 3, 4 phases, in, out)
    return tf.reshape(tf.transpose(taps, [0, 1, 3, 2, 4]), [3, 3, c_in, 4 * c_out])


def subpixel_transposed_conv(h, kernel):
    """``tf.nn.conv2d_transpose(h, kernel, [N, 2H, 2W, out], strides=2, padding="SAME")`` for a (5, 5, out,
    in) kernel, as a 3x3 convolution + depth_to_space: the same sums in another order (36 taps per input
    pixel, 11 of them zeros, for the 25 of the transposed convolution), and oneDNN runs a plain
    convolution with 4x the output channels much faster than a transposed one with 1 or 2 (docs/PERFORMANCE.md)."""
    return tf.nn.depth_to_space(tf.nn.conv2d(h, subpixel_kernel(kernel), strides=1, padding="SAME"), 2)


@tf.custom_gradient
def conv_subpixel_input_gradient(x, kernel):
    """``tf.nn.conv2d(x, kernel, strides=2, padding="SAME")`` for a 5x5 kernel and an input of even height
    and width, whose input gradient (the transposed convolution of the output gradient) is computed as
    :func:`subpixel_transposed_conv`; the forward pass and the kernel gradient are TensorFlow's own ops."""

    def grad(dy):
        dk = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(kernel), out_backprop=dy,
                                             strides=[1, 2, 2, 1], padding="SAME")
        return subpixel_transposed_conv(dy, kernel), dk

    return tf.nn.conv2d(x, kernel, strides=2, padding="SAME"), grad


class Conv(keras.layers.Conv2D):
    """Keras's Conv2D; for the original's 5x5 stride-2 SAME convolution on an input of even side, its input
    gradient as a sub-pixel convolution (``subpixel_input_gradient``, :func:`conv_subpixel_input_gradient`):
    for D's one-channel inputs oneDNN's transposed-convolution kernel is slow (docs/PERFORMANCE.md).
    Off: Keras's own (the plain step; on a GPU, cogan_tf/levers.py)."""

    def __init__(self, *args, subpixel_input_gradient: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.subpixel_input_gradient = subpixel_input_gradient

    def _subpixel(self, inputs) -> bool:
        h, w = inputs.shape[1], inputs.shape[2]
        return (self.subpixel_input_gradient and self.kernel_size == (5, 5) and self.strides == (2, 2)
                and self.padding == "same" and self.dilation_rate == (1, 1) and self.groups == 1
                and self.data_format == "channels_last" and h is not None and w is not None
                and h % 2 == 0 and w % 2 == 0)

    def convolution_op(self, inputs, kernel):
        if self._subpixel(inputs):
            return conv_subpixel_input_gradient(inputs, tf.convert_to_tensor(kernel))
        return super().convolution_op(inputs, kernel)

    def get_config(self):
        return {**super().get_config(), "subpixel_input_gradient": self.subpixel_input_gradient}
