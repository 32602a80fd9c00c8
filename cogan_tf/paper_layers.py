"""Building blocks of the CoGAN paper's digit network with the Caffe model's settings (docs/ORIGINAL.md §5.4):
MSRA initial weights, Caffe's BatchNorm (no scale; a separate per-channel bias; its own moving averages),
its per-channel PReLU, its padded transposed convolution, and its alternating Adam with weight decay
and per-variable learning-rate multipliers (:class:`CaffeAdam`).

Each layer has a ``fast`` switch: on, the same function with a written gradient or TensorFlow's fused op
(docs/PERFORMANCE.md); off, the plain Keras/TensorFlow ops, the reference of tests/test_paper_layers.py.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple

import keras
import tensorflow as tf
from keras import ops

from cogan_tf import xla_fusions
from cogan_tf.config import PAPER_INITS
from cogan_tf.layers import deconv_gradient, matmul_written_gradient


def msra():
    """Caffe's ``msra`` filler: N(0, 2 / fan_in), untruncated. Keras's fan-in of a Dense kernel (in, out),
    a Conv2D kernel (k, k, in, out) and a transposed-convolution kernel (k, k, out, in) is Caffe's for the
    same layer (its deconvolution blob is (in, out, k, k), whose count / num is out * k * k)."""
    return keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")


# The initial weights of ``--paper_init`` (docs/ORIGINAL.md §5.4): "caffe", the Caffe model's MSRA weights and
# zero biases; "pytorch", the official PyTorch version's ``xavier_uniform(gain=sqrt(2))`` weights and 0.1 biases.
PYTORCH_BIAS = 0.1


def pytorch_xavier(fan_sum: int):
    """``torch.nn.init.xavier_uniform(w, gain=sqrt(2))``: U(-a, a), a = sqrt(2) sqrt(6 / (fan_in + fan_out)),
    with ``fan_sum`` the PyTorch layer's fan_in + fan_out (given, because the PyTorch version builds D's
    dense layers and G's first one as convolutions, whose fans differ from a dense layer's)."""
    a = math.sqrt(2.0) * math.sqrt(6.0 / fan_sum)
    return keras.initializers.RandomUniform(-a, a)


def initializers(init: str, fan_sum: int):
    """(kernel, bias) initialisers of one layer for ``--paper_init`` ``init``; ``fan_sum`` as
    :func:`pytorch_xavier` takes it."""
    if init == "caffe":
        return msra(), keras.initializers.Zeros()
    if init == "pytorch":
        return pytorch_xavier(fan_sum), keras.initializers.Constant(PYTORCH_BIAS)
    raise ValueError(f"unknown paper init {init!r}; choose one of {', '.join(PAPER_INITS)}")


class CaffeBatchNorm(keras.layers.Layer):
    """Caffe's BatchNorm layer followed by its Bias layer, as the Caffe model stacks them: per-channel
    (last axis) normalisation with epsilon 1e-5, no scale, a trained per-channel bias ``beta`` (initially 0).

    Training normalises with the batch's statistics and updates Caffe's moving averages: sums decayed by
    0.999 per call with a normaliser (``moving_mean = s_mean / s_weight``), the variance with Bessel's
    correction. At inference the layer uses them (Caffe's deploy network), or, with
    ``batch_stats_at_inference``, the batch's own statistics. ``fast``: TensorFlow's FusedBatchNormV3
    (scale fixed at 1), else moments and normalisation differentiated by autodiff."""

    FRACTION = 0.999
    EPSILON = 1e-5

    def __init__(self, batch_stats_at_inference: bool = False, fast: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.batch_stats_at_inference = batch_stats_at_inference
        self.fast = fast

    def build(self, input_shape):
        c = (input_shape[-1],)
        self.beta = self.add_weight(shape=c, initializer="zeros", name="beta")
        self.mean_sum = self.add_weight(shape=c, initializer="zeros", trainable=False, name="mean_sum")
        self.variance_sum = self.add_weight(shape=c, initializer="zeros", trainable=False, name="variance_sum")
        self.weight_sum = self.add_weight(shape=(), initializer="zeros", trainable=False, name="weight_sum")

    def moving_statistics(self) -> Tuple[tf.Tensor, tf.Tensor]:
        """Caffe's ``use_global_stats`` mean and variance (both 0 before the first update, as Caffe's)."""
        w = tf.convert_to_tensor(self.weight_sum)
        scale = tf.where(w == 0.0, 0.0, 1.0 / tf.where(w == 0.0, 1.0, w))
        return self.mean_sum * scale, self.variance_sum * scale

    def call(self, x, training=False):
        if not training and not self.batch_stats_at_inference:
            mean, variance = self.moving_statistics()
            return tf.nn.batch_normalization(x, mean, variance, self.beta, None, self.EPSILON)
        axes = list(range(len(x.shape) - 1))
        if self.fast:
            x4 = tf.reshape(x, [-1, 1, 1, x.shape[-1]]) if len(x.shape) == 2 else x
            empty = tf.constant([], tf.float32)
            y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=x4, scale=tf.ones_like(self.beta), offset=self.beta, mean=empty, variance=empty,
                epsilon=self.EPSILON, exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
            y = tf.reshape(y, tf.shape(x))
            n = tf.cast(tf.size(x) // x.shape[-1], tf.float32)
            unbiased = variance  # the op returns the variance with Bessel's correction
        else:
            mean, variance = tf.nn.moments(x, axes)
            y = tf.nn.batch_normalization(x, mean, variance, self.beta, None, self.EPSILON)
            n = tf.cast(tf.size(x) // x.shape[-1], tf.float32)
            unbiased = variance * n / tf.maximum(n - 1.0, 1.0)
        if training:
            k = self.FRACTION
            self.weight_sum.assign(self.weight_sum * k + 1.0)
            self.mean_sum.assign(self.mean_sum * k + tf.stop_gradient(mean))
            self.variance_sum.assign(self.variance_sum * k + tf.stop_gradient(unbiased))
        return y


class ChannelPReLU(keras.layers.Layer):
    """Caffe's PReLU: ``max(x, 0) + a * min(x, 0)`` with one slope ``a`` per channel (last axis), initially
    0.25. ``fast``: a written gradient (one mask, Caffe's own backward: slope a where x <= 0), else autodiff
    of the formula (which gives 0 instead of a at x == 0 exactly); with ``xla`` (a lever, cogan_tf/levers.py)
    the written gradient as one XLA cluster each way (``xla_fusions.channel_prelu``)."""

    xla = True

    def __init__(self, fast: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.fast = fast

    def build(self, input_shape):
        self.a = self.add_weight(shape=(input_shape[-1],), initializer=keras.initializers.Constant(0.25), name="a")

    def call(self, x):
        a = tf.convert_to_tensor(self.a)
        if self.fast:
            return (xla_fusions.channel_prelu if self.xla else channel_prelu)(x, a)
        return tf.maximum(x, 0.0) + a * tf.minimum(x, 0.0)


@tf.custom_gradient
def channel_prelu(x, a):
    """:class:`ChannelPReLU` with Caffe's gradient: dx = dy where x > 0, a dy elsewhere; da = the sum
    over all but the last axis of dy x where x <= 0."""
    positive = x > 0
    y = tf.where(positive, x, a * x)

    def grad(dy):
        with tf.name_scope("prelu_grad"):  # a custom gradient's ops are outside the layer's scope otherwise
            dx = tf.where(positive, dy, a * dy)
            da = tf.reduce_sum(tf.where(positive, tf.zeros_like(x), x * dy), axis=list(range(len(x.shape) - 1)))
        return dx, da

    return y, grad


class CaffeDeconv(keras.layers.Layer):
    """Caffe's Deconvolution layer: a transposed convolution with ``kernel`` x ``kernel`` taps, ``stride`` and
    symmetric ``pad``, so an input of side h gives ``(h - 1) * stride + kernel - 2 * pad`` (4 -> 7 -> 13 -> 25
    with 3, 2, 1; 25 -> 28 with 6, 1, 1). Kernel (k, k, out, in) as ``tf.nn.conv2d_transpose`` takes it,
    MSRA initial weights, or ``init``'s (:func:`initializers`). ``use_bias=False`` where a BatchNorm follows,
    which would subtract the bias.
    ``matmul_forward`` (3x3, stride 2, pad 1 only; ``fast``): the forward pass as one matmul and an
    overlap-add (:func:`deconv_k3s2p1_matmul`)."""

    def __init__(self, filters: int, kernel: int, stride: int, pad: int, use_bias: bool = True,
                 matmul_forward: bool = False, fast: bool = True, init: str = "caffe", **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.stride, self.pad, self.use_bias = filters, kernel, stride, pad, use_bias
        self.init = init
        self.matmul_forward = matmul_forward and (kernel, stride, pad) == (3, 2, 1)
        self.fast = fast

    def build(self, input_shape):
        k = self.kernel_size
        kernel_init, bias_init = initializers(self.init, (self.filters + input_shape[-1]) * k * k)
        self.kernel = self.add_weight(shape=(k, k, self.filters, input_shape[-1]), initializer=kernel_init,
                                      name="kernel")
        self.bias = (self.add_weight(shape=(self.filters,), initializer=bias_init, name="bias") if self.use_bias
                     else None)

    def call(self, x):
        kernel = tf.convert_to_tensor(self.kernel)
        if self.fast and self.matmul_forward:
            y = deconv_k3s2p1_matmul(x, kernel)
        else:
            y = caffe_deconv(x, kernel, self.stride, self.pad)
        return y if self.bias is None else tf.nn.bias_add(y, self.bias)


def caffe_deconv(x, kernel, stride: int, pad: int, method: str = "auto"):
    """Caffe's padded transposed convolution: the full transposed convolution with ``pad`` rows and columns
    dropped from each side (how Caffe computes it, col2im and the border cropped: ``method="crop"``).

    ``"auto"``: TensorFlow's "SAME" transposed convolution where its padding is Caffe's (the output side
    ``(h - 1) s + k - 2 p`` with 0 < k - 2 p <= s: SAME then pads p on each side), which oneDNN runs; else
    explicit padding (the 6x6 output layers: TensorFlow's own kernel, faster than oneDNN's for one output
    channel, docs/PERFORMANCE.md). TensorFlow's explicit padding of the 3x3 layers is not run by oneDNN and
    was ~10x slower. All three compute the same sums (tests/test_paper_layers.py)."""
    k = kernel.shape[0]
    n, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
    full = ((h - 1) * stride + k, (w - 1) * stride + k)
    out = tf.stack([n, full[0] - 2 * pad, full[1] - 2 * pad, kernel.shape[2]])
    if method == "crop":
        y = tf.nn.conv2d_transpose(x, kernel, tf.stack([n, full[0], full[1], kernel.shape[2]]), strides=stride,
                                   padding="VALID")
        return y[:, pad:full[0] - pad, pad:full[1] - pad, :]
    if method == "auto" and 0 < k - 2 * pad <= stride:
        return tf.nn.conv2d_transpose(x, kernel, out, strides=stride, padding="SAME")
    return tf.nn.conv2d_transpose(x, kernel, out, strides=stride, padding=[[0, 0], [pad, pad], [pad, pad], [0, 0]])


@tf.custom_gradient
def deconv_k3s2p1_matmul(x, kernel):
    """``caffe_deconv(x, kernel, 2, 1)`` for a 3x3 kernel, its forward pass as ONE matmul, (N h w, in) x
    (in, 9 out), each input pixel's 3x3 patch of outputs, and their overlap-add: full output row r = 2 i + ky
    gets tap ky of input row i, so the even rows take taps 0 (row m) and 2 (row m - 1), the odd rows tap 1;
    the four row/column phases are interleaved by depth_to_space and the pad cropped. oneDNN runs this
    matmul about twice as fast as the transposed convolution for the 4x4x1024 -> 7x7x512 layer
    (docs/PERFORMANCE.md). The gradient is the transposed convolution's own (the two ops TensorFlow's
    gradient of conv2d_transpose makes), so gradients are identical to the plain layer's."""
    _, _, c_out, c_in = kernel.shape
    h, w = x.shape[1], x.shape[2]
    cols = tf.matmul(tf.reshape(x, [-1, c_in]), tf.reshape(tf.transpose(kernel, [3, 0, 1, 2]), [c_in, 9 * c_out]))
    cols = tf.reshape(cols, [-1, h, w, 3, 3, c_out])
    even, odd = ((0, 0), (2, 1)), ((1, 0),)  # (tap, shift): row m of a phase takes input row m - shift

    def phase(rows, columns):
        acc = None
        for ky, dy in rows:
            for kx, dx in columns:
                v = tf.pad(cols[:, :, :, ky, kx, :], [[0, 0], [dy, 1 - dy], [dx, 1 - dx], [0, 0]])
                acc = v if acc is None else acc + v
        return acc  # (N, h + 1, w + 1, out)

    phases = [phase(even, even), phase(even, odd), phase(odd, even), phase(odd, odd)]
    y = tf.nn.depth_to_space(tf.concat(phases, -1), 2)[:, 1:2 * h, 1:2 * w, :]

    def grad(dy):
        return deconv_gradient(dy, kernel, x)

    return y, grad


class CaffeDense(keras.layers.Layer):
    """Caffe's InnerProduct: MSRA weights, zero bias (none where a BatchNorm follows), or ``init``'s
    (:func:`initializers`; ``fan_sum(inputs)``, the PyTorch layer's fans where they are not this layer's).
    ``fast``: the input gradient as a BatchMatMulV2 (:func:`matmul_written_gradient`)."""

    def __init__(self, units: int, use_bias: bool = True, fast: bool = True, init: str = "caffe",
                 fan_sum: Optional[Callable[[int], int]] = None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.use_bias, self.fast = units, use_bias, fast
        self.init, self.fan_sum = init, fan_sum

    def build(self, input_shape):
        fans = self.fan_sum(input_shape[-1]) if self.fan_sum else input_shape[-1] + self.units
        kernel_init, bias_init = initializers(self.init, fans)
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer=kernel_init, name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer=bias_init, name="bias") if self.use_bias else None

    def call(self, x):
        w = tf.convert_to_tensor(self.kernel)
        y = matmul_written_gradient(x, w) if self.fast else tf.matmul(x, w)
        return y if self.bias is None else y + self.bias


class CaffeAdam(keras.optimizers.Adam):
    """The Caffe model's solver, AlterAdam, for one player: Adam (base rate, beta1 0.5, beta2 0.999,
    delta 1e-8 added to sqrt(v) as Caffe's), with

    * the bias correction of the solver's iteration counter, which counts the other player's updates too:
      D is updated at Caffe's even iterations and G at its odd ones, so this player's k-th update (k from 1)
      is corrected with t = 2 k - 1 (``phase`` 1, D) or 2 k (``phase`` 2, G), not with k;
    * L2 weight decay added to the gradient before Adam (Caffe's ``Regularize``), ``weight_decay`` times
      each variable's decay multiplier;
    * per-variable learning-rate multipliers (Caffe's ``lr_mult``: 2 for the dense layers' biases).

    ``multipliers(variable) -> (lr_mult, decay_mult)`` is asked once per variable when the optimizer is
    built. With ``phase`` 0 and no decay and multipliers 1 it is Keras's Adam (epsilon aside)."""

    def __init__(self, learning_rate: float, beta_1: float, beta_2: float, weight_decay_l2: float = 0.0,
                 phase: int = 0, multipliers: Optional[Callable] = None, **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=1e-8, **kwargs)
        self.weight_decay_l2 = weight_decay_l2
        self.phase = phase
        self._multipliers_of = multipliers or (lambda v: (1.0, 1.0))
        self._mults: Sequence[Tuple[float, float]] = ()

    def build(self, var_list):
        super().build(var_list)
        self._mults = [tuple(map(float, self._multipliers_of(v))) for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        lr_mult, decay_mult = self._mults[self._get_variable_index(variable)]
        gradient = ops.cast(gradient, variable.dtype)
        if self.weight_decay_l2 and decay_mult:
            gradient = gradient + (self.weight_decay_l2 * decay_mult) * variable
        lr = ops.cast(learning_rate, variable.dtype) * lr_mult
        k = ops.cast(self.iterations + 1, variable.dtype)
        t = k if not self.phase else 2.0 * k - (2 - self.phase)
        alpha = lr * ops.sqrt(1 - ops.power(ops.cast(self.beta_2, variable.dtype), t)) / (
            1 - ops.power(ops.cast(self.beta_1, variable.dtype), t))
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        self.assign_sub(variable, ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), self.epsilon)))
