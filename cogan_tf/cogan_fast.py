"""The CoGAN step's speed levers, beside the plain step they replace (:meth:`cogan_tf.cogan.CoGAN.plain_updates`):

* both output heads as ONE transposed convolution with two output channels, computed as a 3x3
  convolution + depth_to_space (:func:`generate_pair`, :func:`subpixel_deconv`);
* the first G update reusing the D update's G forward pass (:func:`reused_forward_updates`);
* in :mod:`cogan_tf.layers`: BatchNorm as TensorFlow's fused op, Q2's scalar-statistics BatchNorm by
  reductions with a written gradient, the PReLU with a written gradient, the dense layers' input gradient
  as a BatchMatMulV2 and D's stem convolutions' input gradient as a sub-pixel convolution
  (:func:`use_plain_layers` turns them all off, :func:`use_layer_levers` each one on its own).

Each computes what the plain step computes, to float rounding: tests/test_cogan_fast.py runs the port's step
against :func:`reference_cogan_step` with each lever off. docs/PERFORMANCE.md has what each one buys.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf
import keras

from cogan_tf.gan import apply_gradients
from cogan_tf.layers import BatchNorm, Conv, Dense, ScalarPReLU, deconv_gradient, subpixel_transposed_conv
from cogan_tf.paper_layers import ChannelPReLU
from cogan_tf.precision import as_float32


def batchnorm_moving_averages(model):
    """(momentum, variable, its value now) for each BatchNorm moving average in ``model``."""
    bns = [layer for layer in model._flatten_layers() if isinstance(layer, BatchNorm)]
    return [(bn.momentum, v, tf.identity(v.value)) for bn in bns for v in (bn.moving_mean, bn.moving_variance)]


def repeat_moving_average_update(snapshot):
    """Make once more, with the same batch statistics s, the moving-average update each variable got
    since ``snapshot``: after m1 = k m0 + (1 - k) s, the next one is k m1 + (1 - k) s = m1 + k (m1 - m0)."""
    for k, v, v0 in snapshot:
        v1 = v.value
        v.assign(v1 + k * (v1 - v0))


@tf.custom_gradient
def subpixel_deconv(h, kernel):
    """``tf.nn.conv2d_transpose(h, kernel, [N, 2H, 2W, out], strides=2, padding="SAME")`` for a 5x5
    kernel, computed as a 3x3 convolution + depth_to_space: the same sums (outputs equal to rounding),
    and oneDNN runs a plain convolution with 4x the output channels much faster than a transposed one
    with 1 or 2 (docs/PERFORMANCE.md). The gradient is the transposed convolution's own (the same two
    ops TensorFlow's gradient of conv2d_transpose makes), so gradients are identical."""
    out = subpixel_transposed_conv(h, kernel)

    def grad(dy):
        return deconv_gradient(dy, kernel, h)

    return out, grad


def generate_pair(generator, z, training=False, subpixel=True):
    """G1(z) and G2(z) for the training step: the shared trunk once, and both output heads as ONE
    transposed convolution with two output channels (their kernels side by side) instead of two with
    one each, computed (``subpixel``) as a convolution + depth_to_space (:func:`subpixel_deconv`).
    Each output channel is still its own sum, so the result is the generator's own (to rounding);
    oneDNN's kernels for one output channel and for transposed convolutions are slow
    (docs/PERFORMANCE.md). Falls back to ``generator(z)`` for heads other than the plain 5x5 stride-2
    SAME sigmoid deconvs of cogan_networks.py."""
    h1, h2 = generator.head1, generator.head2
    plain = all(h.strides == (2, 2) and h.padding == "same" and h.use_bias and h.data_format == "channels_last"
                and h.output_padding is None and h.dilation_rate == (1, 1) and h.kernel_size == (5, 5)
                and h.activation is keras.activations.sigmoid for h in (h1, h2))
    if not plain:
        return generator(z, training=training)
    h = generator.trunk(z, training=training)
    # Outside the layers' calls nothing casts the float32 variables: under a mixed policy they are
    # cast here to the trunk's compute type, as the heads' own calls would, and the images come out
    # float32 as the generator's call returns them (no casts in float32).
    kernel = tf.concat([h1.kernel, h2.kernel], axis=2)  # (k, k, out, in): the out channels side by side
    if kernel.dtype != h.dtype:
        kernel = tf.cast(kernel, h.dtype)
    if subpixel and h.shape[1] is not None and h.shape[2] is not None:
        out = subpixel_deconv(h, kernel)
    else:
        shape = tf.stack([tf.shape(h)[0], 2 * h.shape[1], 2 * h.shape[2], kernel.shape[2]])
        out = tf.nn.conv2d_transpose(h, kernel, shape, strides=2, padding="SAME")
    bias = tf.concat([h1.bias, h2.bias], axis=0)
    if bias.dtype != out.dtype:
        bias = tf.cast(bias, out.dtype)
    out = as_float32(tf.sigmoid(tf.nn.bias_add(out, bias)))
    return out[..., :h1.filters], out[..., h1.filters:]


def reused_forward_updates(gan, x1, x2, z, fakes):
    """:meth:`CoGAN.plain_updates` with one G forward less per step: G's weights do not change in the
    D update, so the first G update reuses its G forward pass (G(z) would come out the same) and only
    D, which the update changed, runs again (docs/PERFORMANCE.md). g_tape records that G forward for
    the first G update; the G BatchNorm moving-average update the skipped forward would have made is
    made by :func:`repeat_moving_average_update`."""
    if gan.model_cfg.g_updates_per_step < 1:
        raise ValueError("CoGAN needs g_updates_per_step >= 1")
    moving = batchnorm_moving_averages(gan.generator)
    with tf.GradientTape() as g_tape:
        with tf.GradientTape() as tape:
            fake1, fake2 = fakes(z)
            d_out = gan.d_losses(x1, x2, fake1, fake2, training=True)
        with g_tape.stop_recording():
            apply_gradients(gan.d_opt, tape, d_out["d_loss"], gan.d_vars)
            repeat_moving_average_update(moving)  # what the skipped G forward would have done
        g_out = gan.g_losses(fake1, fake2, training=True)
    apply_gradients(gan.g_opt, g_tape, g_out["g_loss"], gan.g_vars)
    for _ in range(gan.model_cfg.g_updates_per_step - 1):
        with tf.GradientTape() as tape:
            fake1, fake2 = fakes(z)
            g_out = gan.g_losses(fake1, fake2, training=True)
        apply_gradients(gan.g_opt, tape, g_out["g_loss"], gan.g_vars)
    return {**d_out, **g_out}


def use_plain_layers(gan):
    """The layers as first written, and as the original graph computes them: BatchNorm as separate
    moments and normalisation ops differentiated by autodiff (Keras's BatchNormalization; the original's
    TF 0.12 batch norm was not fused either) instead of the fused op or the written gradient, the PReLUs'
    gradient by autodiff of ``maximum`` instead of the written one, and the dense layers' and convolutions'
    gradients TensorFlow's own."""
    for model in (gan.generator, gan.discriminator):
        for layer in model._flatten_layers():
            if isinstance(layer, BatchNorm):
                layer.fused = False
            if isinstance(layer, (ScalarPReLU, Dense)):
                layer.written_gradient = False
            if isinstance(layer, Conv):
                layer.subpixel_input_gradient = False
    return gan


# The layer levers of the CoGAN step by name (those of cogan_tf/levers.py a run sets per device; and
# fused_scalar_batchnorm, the fused op over one channel that Q2's statistics take where the written gradient is
# off, for the benchmark's row): the layer class each one is an attribute of, and the attribute.
LAYER_LEVERS = {"dense_bmm_gradient": (Dense, "written_gradient"),
                "written_scalar_batchnorm": (BatchNorm, "written_scalar_stats"),
                "subpixel_stem_gradient": (Conv, "subpixel_input_gradient"),
                "xla_prelu": ((ScalarPReLU, ChannelPReLU), "xla"),
                "xla_batchnorm_prelu": (BatchNorm, "xla_prelu_fusion"),
                "fused_scalar_batchnorm": (BatchNorm, "fuse_scalar_stats"),
                "batchnorm_float32_input": (BatchNorm, "fused_float32_input")}


def use_layer_levers(gan, **on):
    """Set the layer levers named in ``on`` (:data:`LAYER_LEVERS`) in both networks, e.g.
    ``use_layer_levers(gan, dense_bmm_gradient=False)``: the step with that lever off."""
    for name, value in on.items():
        cls, attr = LAYER_LEVERS[name]
        for model in (gan.generator, gan.discriminator):
            for layer in model._flatten_layers():
                if isinstance(layer, cls):
                    setattr(layer, attr, bool(value))
    return gan


def reference_cogan_step(gan, trunk_per_domain: bool = False, reuse_g_forward: bool = False,
                         fused_heads: bool = False) -> Callable:
    """The CoGAN step (1 D update, then ``g_updates_per_step`` G updates with the same z) with each speed
    lever of the port's step on or off, for the tests and the benchmark's reference rows:

    * ``trunk_per_domain``: G1 and G2 each computed on their own (``generate_one``: the shared trunk
      runs once per domain, forward and backward), as the original graph does; else once for both;
    * ``reuse_g_forward``: the first G update reuses the D update's G forward pass (the port's step);
    * ``fused_heads``: both output heads as one two-channel deconv, computed as a sub-pixel convolution
      (:func:`generate_pair`).

    All settings give the same trainable weights to rounding (tests/test_cogan_fast.py). The G BatchNorm
    moving averages: updated once per domain with ``trunk_per_domain``; with ``reuse_g_forward`` the
    skipped forward's update is replayed, as in the port's step.
    """
    g, m = gan.generator, gan.model_cfg

    def fakes(z):
        if trunk_per_domain:
            return g.generate_one(z, 1, training=True), g.generate_one(z, 2, training=True)
        if fused_heads:
            return generate_pair(g, z, training=True)
        return g(z, training=True)

    updates = reused_forward_updates if reuse_g_forward else type(gan).plain_updates

    def step(x1, x2):
        x1 = tf.cast(x1, tf.float32) / 255.0
        x2 = tf.cast(x2, tf.float32) / 255.0
        z = gan.rng.normal([tf.shape(x1)[0], m.z_dim])
        return updates(gan, x1, x2, z, fakes)

    return step
