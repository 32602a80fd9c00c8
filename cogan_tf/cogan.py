"""CoGAN (andrewliao11's CoGAN-tensorflow): MNIST digits (domain 1, "top") and inverted digits
(domain 2, "bot"), generated from the same z by coupled generators (REFERENCE.md §1)."""

from __future__ import annotations

import contextlib
import os
from typing import Dict

import numpy as np
import tensorflow as tf
import keras

from cogan_tf import data, export as export_lib, images, losses
from cogan_tf.config import CoganConfig, TrainConfig
from cogan_tf.layers import BatchNorm
from cogan_tf.networks import build_cogan, unique_variables
from cogan_tf.precision import as_float32
from cogan_tf.gan import GAN, RunState, apply_gradients, replica_share

SAMPLE_BATCH = 128  # the original draws 128 sample z once before training and shows the first 64


def load_domains(data_dir: str, dataset: str, disjoint: bool, seed: int, log=print):
    """Domain 1 (digits) and domain 2 (inverted digits) as uint8 (N, 28, 28, 1) arrays.

    Faithful: both hold the same 70,000 digits (train + test), each later shuffled with its own
    permutation. ``disjoint`` (the CoGAN paper): a seeded half of the digits for each domain.
    """
    splits = ("train", "test")
    xs = [data.load_split(data_dir, dataset, s)[0] for s in splits]
    x = np.concatenate(xs)
    missing = [p for p in (data.inverted_path(data_dir, dataset, data.SPLIT_FILES[s][0]) for s in splits)
               if not os.path.exists(p)]
    if missing:
        log(f" [*] {missing[0]} missing: running invert.py for you")
        data.write_inverted(data_dir, dataset, log=log)
    # Each file is checked to hold 255 - x of its digits (one comparison), or refused naming it.
    inv = data.load_inverted(data_dir, dataset, splits, originals=xs)
    if disjoint:
        perm = data.epoch_permutation(len(x), (seed, 0))
        half = len(x) // 2
        return [x[perm[:half]], inv[perm[half:2 * half]]]
    return [x, inv]


@contextlib.contextmanager
def moving_average_batchnorm(model):
    """Trace ``model`` with its BatchNorms on their moving averages at inference (the usual Keras mode)."""
    bns = [layer for layer in model._flatten_layers() if isinstance(layer, BatchNorm)]
    old = [b.batch_stats_at_inference for b in bns]
    for b in bns:
        b.batch_stats_at_inference = False
    try:
        yield
    finally:
        for b, o in zip(bns, old):
            b.batch_stats_at_inference = o


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


# The heads' 5x5 stride-2 SAME transposed convolution as a 3x3 convolution to 4x the channels plus
# depth_to_space: output pixel (2i + a, 2j + b) of the deconv sums input pixels i-1, i, i+1 (rows;
# columns alike) through kernel taps that depend only on the phase a (b): SUBPIXEL_TAPS[a][o] is the
# tap for the input row at offset o - 1 (None: that phase takes nothing from it). From TensorFlow's
# SAME padding for stride 2 and an even output size (1 row before, 2 after): output row r = 2i + k - 1.
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


@tf.custom_gradient
def subpixel_deconv(h, kernel):
    """``tf.nn.conv2d_transpose(h, kernel, [N, 2H, 2W, out], strides=2, padding="SAME")`` for a 5x5
    kernel, computed as a 3x3 convolution + depth_to_space: the same sums (outputs equal to rounding),
    and oneDNN runs a plain convolution with 4x the output channels much faster than a transposed one
    with 1 or 2 (docs/PERFORMANCE.md). The gradient is the transposed convolution's own (the same two
    ops TensorFlow's gradient of conv2d_transpose makes), so gradients are identical."""
    out = tf.nn.depth_to_space(tf.nn.conv2d(h, subpixel_kernel(kernel), strides=1, padding="SAME"), 2)

    def grad(dy):
        dh = tf.nn.conv2d(dy, kernel, strides=2, padding="SAME")
        dk = tf.raw_ops.Conv2DBackpropFilter(input=dy, filter_sizes=tf.shape(kernel), out_backprop=h,
                                             strides=[1, 2, 2, 1], padding="SAME")
        return dh, dk

    return out, grad


def generate_pair(generator, z, training=False, subpixel=True):
    """G1(z) and G2(z) for the training step: the shared trunk once, and both output heads as ONE
    transposed convolution with two output channels (their kernels side by side) instead of two with
    one each, computed (``subpixel``) as a convolution + depth_to_space (:func:`subpixel_deconv`).
    Each output channel is still its own sum, so the result is the generator's own (to rounding);
    oneDNN's kernels for one output channel and for transposed convolutions are slow
    (docs/PERFORMANCE.md). Falls back to ``generator(z)`` for heads other than the plain 5x5 stride-2
    SAME sigmoid deconvs of networks.py."""
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


class CoGAN(GAN):
    name = "cogan"
    checkpoint_prefix = "CoGAN.model"
    reshuffle_each_epoch = False  # the original shuffles each domain once, before training
    subpixel_heads = True  # the training step's heads as conv + depth_to_space (generate_pair); False: as deconv

    def __init__(self, model_cfg: CoganConfig, train_cfg: TrainConfig, arrays=None, strategy=None):
        super().__init__(model_cfg, train_cfg, strategy=strategy)
        self._arrays = arrays
        rng = np.random.default_rng([self.seed, 1])
        self.sample_z = rng.standard_normal((SAMPLE_BATCH, model_cfg.z_dim)).astype(np.float32)
        self._sample_images = None

    def build(self):
        self.generator, self.discriminator = build_cogan(self.model_cfg)
        cfg = self.cfg
        # One optimizer per player over the deduplicated variables of its coupled model: a shared
        # variable is one object and gets exactly one Adam update per step (from both domains' losses).
        self.g_vars = unique_variables(self.generator.trainable_variables)
        self.d_vars = unique_variables(self.discriminator.trainable_variables)
        self.g_opt = self.make_optimizer(cfg.learning_rate, cfg.beta1, cfg.beta2)
        self.d_opt = self.make_optimizer(cfg.learning_rate, cfg.beta1, cfg.beta2)
        self.g_opt.build(self.g_vars)
        self.d_opt.build(self.d_vars)

    def trackables(self):
        return dict(generator=self.generator, discriminator=self.discriminator,
                    g_optimizer=self.g_opt, d_optimizer=self.d_opt)

    def training_arrays(self):
        if self._arrays is None:
            self._arrays = load_domains(self.cfg.data_dir, self.cfg.dataset, self.cfg.disjoint_domains, self.seed)
        return self._arrays

    def loss_logits(self, x, domain: int, training):
        """What the losses take as logits for D_domain on x: sigmoid(h3) as the original (Q1), or h3."""
        return losses.cogan_loss_logits(self.discriminator.logits(x, domain, training), self.model_cfg.loss_on_logits)

    def d_losses(self, x1, x2, fake1, fake2, training):
        m = self.model_cfg
        lg = self.loss_logits
        # Real and fake batches go through D separately: each gets its own BatchNorm statistics.
        return losses.cogan_d_losses(lg(x1, 1, training), lg(fake1, 1, training),
                                     lg(x2, 2, training), lg(fake2, 2, training),
                                     m.real_target, m.fake_target)

    def g_losses(self, fake1, fake2, training):
        lg = self.loss_logits
        return losses.cogan_g_losses(lg(fake1, 1, training), lg(fake2, 2, training), self.model_cfg.gen_target)

    def train_step(self, x1, x2):
        """One D update, then ``g_updates_per_step`` (2) G updates with the same z, as the original
        (its README: a fix against D converging too fast). Under tf.distribute, x1 and x2 are the
        replicas' shares of the global batch; z is drawn here once for the global batch."""
        distributed = isinstance(x1, tf.distribute.DistributedValues)
        batch = self.cfg.batch_size if distributed else tf.shape(x1)[0]
        z = self.rng.normal([batch, self.model_cfg.z_dim])
        out = self.strategy.run(self.replica_step, args=(x1, x2, z))
        if self.strategy.num_replicas_in_sync == 1:
            return out
        # Each replica's losses are means over its share; their mean is the global batch's mean.
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in out.items()}

    def replica_step(self, x1, x2, z):
        x1 = tf.cast(x1, tf.float32) / 255.0
        x2 = tf.cast(x2, tf.float32) / 255.0
        return self.updates(x1, x2, replica_share(z),
                            lambda z: generate_pair(self.generator, z, training=True, subpixel=self.subpixel_heads))

    def updates(self, x1, x2, z, fakes):
        """The step's updates on scaled images and z, with ``fakes(z) -> (G1(z), G2(z))`` in training mode
        (the benchmark passes other ways of computing them). G's weights do not change in the D update,
        so the first G update reuses its G forward pass (G(z) would come out the same) and only D, which
        the update changed, runs again: one G forward less per step (docs/PERFORMANCE.md). g_tape records
        that G forward for the first G update."""
        if self.model_cfg.g_updates_per_step < 1:
            raise ValueError("CoGAN needs g_updates_per_step >= 1")
        moving = batchnorm_moving_averages(self.generator)
        with tf.GradientTape() as g_tape:
            with tf.GradientTape() as tape:
                fake1, fake2 = fakes(z)
                d_out = self.d_losses(x1, x2, fake1, fake2, training=True)
            with g_tape.stop_recording():
                apply_gradients(self.d_opt, tape, d_out["d_loss"], self.d_vars)
                repeat_moving_average_update(moving)  # what the skipped G forward would have done
            g_out = self.g_losses(fake1, fake2, training=True)
        apply_gradients(self.g_opt, g_tape, g_out["g_loss"], self.g_vars)
        for _ in range(self.model_cfg.g_updates_per_step - 1):
            with tf.GradientTape() as tape:
                fake1, fake2 = fakes(z)
                g_out = self.g_losses(fake1, fake2, training=True)
            apply_gradients(self.g_opt, tape, g_out["g_loss"], self.g_vars)
        return {**d_out, **g_out}

    # --- outputs -----------------------------------------------------------------------------------
    def sample_images(self):
        """The first batch of the (shuffled) data: the original's fixed ``sample_images``."""
        if self._sample_images is None:
            arrays = self.training_arrays()
            ds = data.make_dataset(arrays, min(SAMPLE_BATCH, min(len(a) for a in arrays)),
                                   seeds=self.shuffle_seeds(), prefetch=False)
            x1, x2 = next(iter(ds))
            self._sample_images = (tf.cast(x1, tf.float32) / 255.0, tf.cast(x2, tf.float32) / 255.0)
        return self._sample_images

    def generate(self, z) -> Dict[str, np.ndarray]:
        top, bot = self.generator(tf.convert_to_tensor(z), training=False)
        return {"top": top.numpy(), "bot": bot.numpy()}

    def write_grids(self, out_dir: str, stem: str, z) -> Dict[str, str]:
        out = self.generate(z)
        # Q3: the original's grids are min-max stretched per grid, RGB with three equal channels.
        return {k: images.save_grid(os.path.join(out_dir, k, f"{stem}.png"), out[k], scaling=self.cfg.grid_scaling,
                                    rgb=True) for k in ("top", "bot")}

    def sample(self, loop: RunState, epoch: int, idx: int):
        log = loop.log
        paths = self.write_grids(self.cfg.sample_dir, f"train_{epoch:02d}_{idx:04d}", self.sample_z)
        x1, x2 = self.sample_images()
        z = tf.convert_to_tensor(self.sample_z[: len(x1)])
        fake1, fake2 = self.generator(z, training=False)
        d_out = self.d_losses(x1, x2, fake1, fake2, training=False)
        g_out = self.g_losses(fake1, fake2, training=False)
        log(f"[Sample T] d_loss: {float(d_out['d1_loss']):.8f}, g_loss: {float(g_out['g1_loss']):.8f}")
        log(f"[Sample B] d_loss: {float(d_out['d2_loss']):.8f}, g_loss: {float(g_out['g2_loss']):.8f}")
        if loop.writer is not None:
            step = int(loop.step.numpy())
            with loop.writer.as_default(step=step):
                tf.summary.histogram("z", z)
                for name, x, domain in (("d1", x1, 1), ("d1_", fake1, 1), ("d2", x2, 2), ("d2_", fake2, 2)):
                    h3 = self.discriminator.logits(x, domain)
                    # The original's histograms show its "D", which Q1 makes h3 itself; corrected: sigmoid(h3).
                    tf.summary.histogram(name, tf.sigmoid(h3) if self.model_cfg.loss_on_logits else h3)
                tf.summary.image("G1", fake1, max_outputs=8)
                tf.summary.image("G2", fake2, max_outputs=8)
        return paths

    def evaluate(self, loop: RunState, n_grids: int = 4):
        """Grids of the fixed sample z (test_00) and of further seeded z batches, in evaluate/top|bot."""
        log = loop.log
        rng = np.random.default_rng([self.seed, 2])
        for i in range(n_grids):
            z = self.sample_z if i == 0 else rng.standard_normal(self.sample_z.shape).astype(np.float32)
            paths = self.write_grids(self.cfg.evaluate_dir, f"test_{i:02d}", z)
            log(f" [*] wrote {paths['top']} and {paths['bot']}")

    def export(self, export_dir: str) -> str:
        return export_cogan(self.generator, self.model_cfg.z_dim, os.path.join(export_dir, self.name))


class _CoganServing(tf.Module):
    def __init__(self, generator):
        super().__init__()
        self.generator = generator


def export_cogan(generator, z_dim: int, path: str) -> str:
    """SavedModel: ``serving_default(z: float32 [batch, z_dim]) -> {"top", "bot"}: [batch, 28, 28, 1]``.

    ``serving_default`` uses the BatchNorm mode of the model config: by default the statistics of the
    batch given (as the original's sampler, which is what the published grids show, so results depend
    on the whole batch: pass batches of 64 or more). ``moving_average`` is the same generator with
    BatchNorm on its moving averages, for single images (not what the original ever produced).
    """
    module = _CoganServing(generator)
    spec = tf.TensorSpec([None, z_dim], tf.float32, name="z")

    def serve(z):
        top, bot = generator(z, training=False)
        return {"top": top, "bot": bot}

    default = tf.function(serve, input_signature=[spec]).get_concrete_function()
    with moving_average_batchnorm(generator):
        moving = tf.function(serve, input_signature=[spec]).get_concrete_function()
    module.serve = default
    module.serve_moving_average = moving
    return export_lib.save_module(module, {"serving_default": default, "moving_average": moving}, path)
