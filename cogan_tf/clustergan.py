"""ClusterGAN (JasonFengGit's Generative-Adversarial-Networks, REFERENCE.md §3): a GAN whose latent is
z_n ~ N(0, 1) (30 dims) plus a one-hot class code z_c (10 classes), with an encoder trained to recover
both from the generated image; its class logits then cluster real images.

Faithful to the original's training code:

- each batch draws one (z_n, z_c); on every 5th batch (batch index % 5 == 0) G and E are updated first
  on BCE(D(G(z)), 1) + 10 * MSE(E_n(G(z)), z_n) + 10 * CE(E_logits(G(z)), class), then on every
  batch D is updated on BCE(D(x), 1) + BCE(D(G(z)), 0) with G(z) recomputed from the same z after
  the G+E update (G in training mode both times, so its BatchNorm statistics move twice on those
  batches, as in the original);
- G+E share one Adam(1e-4, betas (0.5, 0.9)) with PyTorch's ``weight_decay`` 2.5e-5: an L2 term
  ``wd * w`` added to the gradient before Adam's moments (coupled), not AdamW's decoupled decay;
  D has its own Adam without decay;
- the encoder MSE / CE curves are measured after each epoch on 100 fresh samples with G in
  inference mode (the original's ``generator.eval()``), not averaged over training batches.

Where it differs, and why:

- "Every 5th batch" counts batches over the whole run (D's update count), not within the epoch: the
  same batches whenever the steps per epoch are a multiple of 5 (600 at the defaults: 60,000 / 100).
- The per-epoch G+E loss is the mean over the G+E updates. The original divides the sum over its
  updates by all batches, so its curve is 1/5 of the loss it trained on.
- The display noise is ordered by class (row = class, 10 per row) as the original's README says; its
  code never passes ``display=True`` and draws random classes.
- BatchNorm: PyTorch's momentum 0.1 (Keras 0.9), epsilon 1e-5, gamma 1, beta 0; PyTorch's running
  variance uses the unbiased batch variance, Keras's the biased one (a factor 100/99 at batch 100).
- PyTorch flattens / reshapes NCHW, Keras NHWC: G's 6272 features are read as (7, 7, 128) here
  instead of (128, 7, 7), and D's and E's 3200 conv features are flattened in (5, 5, 128) order.
  Equivalent networks; it only matters when loading PyTorch weights (permute those rows / columns).
- Conv2DTranspose(4, strides 2, "same") is PyTorch's ConvTranspose2d(4, stride 2, padding 1) for
  these sizes (7 -> 14 -> 28, the same taps; tests check it against the PyTorch formula), and
  Conv2D(4, strides 2, "valid") is Conv2d(4, stride 2) (28 -> 13 -> 5).
- Initial weights: PyTorch's defaults (see :mod:`cogan_tf.torch_port`); the original's "# init weights"
  placeholders never change them.

``--recipe paper`` (``config.CLUSTERGAN_RECIPES``) trains as the ClusterGAN paper's authors' code
(sudiptodip15/ClusterGAN, REFERENCE.md §3) on these same networks:

- a WGAN-GP critic: D's logit is the critic's score (no sigmoid); the critic minimises
  E[D(G(z))] - E[D(x)] + lambda * E[(||grad D(x_hat)||_2 - 1)^2] at x_hat = e x + (1 - e) G(z), lambda 10,
  the penalty's gradient taken inside the compiled step (a nested tape); G+E minimise
  -E[D(G(z))] + beta_n * MSE + beta_c * CE;
- one loop step is one critic update on its own data batch and its own z; after every 5th critic
  update (D's update count, checkpointed) one G+E update on a fresh z, so 5 critic updates on 5
  different batches per G+E update, as the authors' ``d_iters = 5`` loop;
- z_n ~ N(0, 0.1^2); weights N(0, 0.02), biases 0; Adam 1e-4 (0.5, 0.9) without weight decay (the
  authors' ``l2_regularizer`` terms are never added to their loss); batch 64.

Where it differs from the authors' code, and why: e is drawn per sample (Gulrajani et al.'s WGAN-GP;
the authors draw one e per batch); their last Linear layers of D and E keep TF's Glorot default, here
every layer is N(0, 0.02) as the recipe says; their G uses ReLU and TF's BatchNorm without gamma, here
the original's LeakyReLU and BatchNorm stay (only the training recipe changes, not the networks); for the
same reason D's and E's two convolutions stay "valid" (28 -> 13 -> 5, 3,200 features) where the authors' are
"same" (28 -> 14 -> 7, 6,272 features). Their code's default run is 500,000 G iterations
(``train(num_batches=500000)``), not the ~10^5 of REFERENCE.md §3; the recipe's 534 epochs are ~10^5.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf
import keras

from cogan_tf import data, export as export_lib, fileio, images, losses
from cogan_tf import clustering
from cogan_tf.config import ClusterGanConfig, TrainConfig
from cogan_tf.precision import as_float32, gradients, loss_scale
from cogan_tf.errors import UsageError
from cogan_tf.torch_port import (IMAGE_SHAPE, EpochHistory, build_once, check_arrays, check_one_replica,
                                 epoch_summaries, finish_outputs, sample_every_epochs, torch_default_init)
from cogan_tf.checkpoints import checkpoint
from cogan_tf.gan import GAN, RunState, apply_gradients

CONV_FEATURES = 128 * 5 * 5  # D's and E's flattened conv output (the seed's prod)
EVAL_SAMPLES = 100  # the original's per-epoch encoder check: 100 fresh samples
ENCODE_BATCH = 500
CRITICS = ("bce", "wgan_gp")
BEST_DIR = "best"  # <checkpoint dir>/best: the checkpoint with the best validation score, and best.json
BEST_BY = "kmeans_purity"  # the paper's model selection: its "ACC" on the validation split


# --- networks -----------------------------------------------------------------------------------------

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


# --- losses -------------------------------------------------------------------------------------------

def discriminator_loss(real_logits, fake_logits) -> Dict[str, tf.Tensor]:
    """BCE real 1 / fake 0; ``d_loss`` is their sum (the original backpropagates both, unaveraged)."""
    real = losses.sigmoid_ce(real_logits, 1.0)
    fake = losses.sigmoid_ce(fake_logits, 0.0)
    return {"d_loss": real + fake, "d_loss_real": real, "d_loss_fake": fake}


def critic_loss(real_scores, fake_scores, penalty, gp_lambda: float = 10.0) -> Dict[str, tf.Tensor]:
    """WGAN-GP critic: ``d_loss`` = E[D(G(z))] - E[D(x)] + gp_lambda * penalty. Also reported:
    ``d_wasserstein`` = E[D(x)] - E[D(G(z))] (the critic's estimate of the distance) and ``d_gp``."""
    w = tf.reduce_mean(tf.cast(real_scores, tf.float32)) - tf.reduce_mean(tf.cast(fake_scores, tf.float32))
    return {"d_loss": -w + gp_lambda * penalty, "d_wasserstein": w, "d_gp": penalty}


def gradient_penalty(critic, real, fake, eps) -> tf.Tensor:
    """E[(||grad_x critic(x_hat)||_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake, ``eps`` one number
    per sample (shape [N, 1, 1, 1]). Call it under the critic update's tape: the gradient of the
    penalty with respect to the critic's weights then goes through this inner gradient (a second
    derivative). The critic has no BatchNorm, so the gradient of the summed scores with respect to
    x_hat is each sample's own gradient."""
    x_hat = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        total = tf.reduce_sum(tf.cast(critic(x_hat), tf.float32))
    grad = tape.gradient(total, x_hat)
    # + 1e-12: the square root's derivative at 0 would be infinite (a zero gradient, e.g. a dead critic).
    norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=tf.range(1, tf.rank(grad))) + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0))


def generator_encoder_loss(fake_logits, zn_hat, z_n, class_logits, classes, betan: float = 10.0,
                           betac: float = 10.0, critic: str = "bce") -> Dict[str, tf.Tensor]:
    """The G+E objective: BCE(D(G(z)), 1) (``critic="wgan_gp"``: -E[D(G(z))]) + betan * MSE(E_n, z_n)
    + betac * CE(E_logits, class). MSE is the mean over all entries (PyTorch's MSELoss), CE the mean
    over the batch of softmax cross-entropy with integer classes (PyTorch's CrossEntropyLoss)."""
    if critic == "wgan_gp":
        v = -tf.reduce_mean(tf.cast(fake_logits, tf.float32))
    else:
        v = losses.sigmoid_ce(fake_logits, 1.0)
    zn = tf.reduce_mean(tf.square(tf.cast(zn_hat, tf.float32) - tf.cast(z_n, tf.float32)))
    zc = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(classes, tf.int32), logits=tf.cast(class_logits, tf.float32)))
    return {"ge_loss": v + betan * zn + betac * zc, "ge_adv_loss": v, "zn_loss": zn, "zc_loss": zc}


def coupled_weight_decay(grads, variables, weight_decay: float, scale=None):
    """PyTorch Adam's ``weight_decay``: ``grad + wd * w`` fed to Adam (an L2 penalty through the
    adaptive moments), not AdamW's separate ``w -= lr * wd * w``. ``scale``: the gradients are of a
    loss multiplied by this loss scale (float16 mixed precision), so the penalty's gradient is too,
    and the optimizer's unscaling gives ``grad + wd * w`` again."""
    if not weight_decay:
        return list(grads)

    def penalty(g, v):
        p = weight_decay * tf.cast(v, g.dtype)
        return p if scale is None else tf.cast(scale, g.dtype) * p

    return [None if g is None else g + penalty(g, v) for g, v in zip(grads, variables)]


GE_KEYS = ("ge_loss", "ge_adv_loss", "zn_loss", "zc_loss")


# --- the model on the loop ---------------------------------------------------------------------------

class ClusterGAN(GAN):
    name = "clustergan"
    checkpoint_prefix = "ClusterGAN.model"
    reshuffle_each_epoch = True  # the PyTorch DataLoader's shuffle=True

    def __init__(self, model_cfg: ClusterGanConfig, train_cfg: TrainConfig, arrays=None, strategy=None):
        super().__init__(model_cfg, train_cfg, strategy=strategy)
        if model_cfg.critic not in CRITICS:
            raise ValueError(f"ClusterGanConfig.critic={model_cfg.critic!r}: choose one of {', '.join(CRITICS)}")
        self._arrays = None if arrays is None else check_arrays(arrays, "ClusterGAN")
        if arrays is not None and train_cfg.val_size:
            raise ValueError("ClusterGAN: val_size holds out labelled images of data_dir; give no arrays")
        self._validation = None  # (images, labels) held out of the training images (--val_size)
        self.restored_from = None  # the checkpoint restore_best last restored, for reports
        m = model_cfg
        # Display noise, drawn once: 10 rows of 10, row = class (z_n different in every cell).
        rng = np.random.default_rng([self.seed, 1])
        self.sample_zn = (m.zn_sigma * rng.standard_normal((m.n_classes * 10, m.z_dim))).astype(np.float32)
        self.sample_classes = np.repeat(np.arange(m.n_classes), 10)
        self._encode_fn = None

    def build(self):
        check_one_replica(self)
        cfg, m = self.cfg, self.model_cfg
        self.generator = ClusterGenerator(m)
        self.discriminator = ClusterDiscriminator(m)
        self.encoder = ClusterEncoder(m)
        self.generator.build((None, m.z_dim + m.n_classes))
        self.discriminator.build((None,) + IMAGE_SHAPE)
        self.encoder.build((None,) + IMAGE_SHAPE)
        # One optimizer for G and E together (the original's itertools.chain of both parameter lists).
        self.ge_vars = self.generator.trainable_variables + self.encoder.trainable_variables
        self.d_vars = self.discriminator.trainable_variables
        self.ge_opt = self.make_optimizer(cfg.learning_rate, cfg.beta1, cfg.beta2)
        self.d_opt = self.make_optimizer(cfg.learning_rate, cfg.beta1, cfg.beta2)
        self.ge_opt.build(self.ge_vars)
        self.d_opt.build(self.d_vars)
        # The losses of the latest G+E update, reported on the batches in between (and checkpointed,
        # so a resumed run reports the same values).
        self.last_ge = {k: tf.Variable(0.0, trainable=False, name=f"last_{k}") for k in GE_KEYS}

    def trackables(self):
        return dict(generator=self.generator, discriminator=self.discriminator, encoder=self.encoder,
                    ge_optimizer=self.ge_opt, d_optimizer=self.d_opt, last_ge_losses=self.last_ge)

    def training_arrays(self):
        """The training split's images; with ``val_size`` without the held-out validation images."""
        if self._arrays is None:
            self._arrays = [self._split()[0]]
        return self._arrays

    def validation_set(self):
        """(images, labels) of the ``val_size`` training images held out for model selection."""
        if self._validation is None:
            self._split()
        return self._validation

    def _split(self):
        x, y = data.load_split(self.cfg.data_dir, self.cfg.dataset, "train")
        if self.cfg.val_size:
            if self.cfg.val_size > len(x) - self.cfg.batch_size:
                raise UsageError(f"--val_size={self.cfg.val_size}: leaves fewer than one batch of the {len(x)} "
                                 f"{self.cfg.dataset} training images to train on")
            train_idx, val_idx = data.holdout_split(len(x), self.cfg.val_size, self.seed)
            self._validation = (x[val_idx], y[val_idx])
            x = x[train_idx]
        return x, y

    def sample_latent(self, n):
        """z_n ~ N(0, zn_sigma^2), classes uniform in 0..n_classes-1 and their one-hot z_c, from the run's RNG."""
        m = self.model_cfg
        z_n = self.rng.normal([n, m.z_dim])
        if m.zn_sigma != 1.0:
            z_n = z_n * m.zn_sigma
        classes = self.rng.uniform([n], 0, m.n_classes, dtype=tf.int32)
        return z_n, tf.one_hot(classes, m.n_classes), classes

    def ge_update(self, z, z_n, classes) -> Dict[str, tf.Tensor]:
        """One G+E update; returns its losses (and keeps them in ``last_ge``)."""
        m = self.model_cfg
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            zn_hat, class_logits = self.encoder(fake, training=True)
            out = generator_encoder_loss(self.discriminator.logits(fake, training=True), zn_hat, z_n,
                                         class_logits, classes, m.betan, m.betac, critic=m.critic)
        grads = gradients(self.ge_opt, tape, out["ge_loss"], self.ge_vars)  # of scale * loss if loss-scaled
        grads = coupled_weight_decay(grads, self.ge_vars, m.weight_decay, scale=loss_scale(self.ge_opt))
        self.ge_opt.apply_gradients([(g, v) for g, v in zip(grads, self.ge_vars) if g is not None])
        for k in GE_KEYS:
            self.last_ge[k].assign(out[k])
        return out

    def held_ge(self) -> Dict[str, tf.Tensor]:
        return {k: self.last_ge[k].read_value() for k in GE_KEYS}

    def train_step(self, x):
        """One batch: the G+E update when D's update count is a multiple of ``g_every`` (5), then the
        D update, both on the batch's one draw of (z_n, z_c). ``--recipe paper``: :meth:`critic_step`."""
        m = self.model_cfg
        if m.critic == "wgan_gp":
            return self.critic_step(x)
        x = tf.cast(x, tf.float32) / 255.0  # ToTensor: [0, 1]
        z_n, z_c, classes = self.sample_latent(tf.shape(x)[0])
        z = tf.concat([z_n, z_c], axis=1)
        do_ge = tf.equal(self.d_opt.iterations % m.g_every, 0)
        ge = tf.cond(do_ge, lambda: self.ge_update(z, z_n, classes), self.held_ge)
        fake = self.generator(z, training=True)  # recomputed after the G+E update, as the original
        with tf.GradientTape() as tape:
            d_out = discriminator_loss(self.discriminator.logits(x, training=True),
                                       self.discriminator.logits(fake, training=True))
        apply_gradients(self.d_opt, tape, d_out["d_loss"], self.d_vars)
        return {**d_out, **ge}

    def critic_step(self, x):
        """``--recipe paper``: one WGAN-GP critic update on this batch with its own z; after every
        ``g_every``-th critic update (D's update count) one G+E update on a fresh z. A loop step is
        one critic update, so the 5 critic updates of each G+E update see 5 different batches and a
        checkpoint's step and D's update count say exactly where in the 5 the run stands."""
        m = self.model_cfg
        x = tf.cast(x, tf.float32) / 255.0
        n = tf.shape(x)[0]
        z_n, z_c, _ = self.sample_latent(n)
        fake = self.generator(tf.concat([z_n, z_c], axis=1), training=True)  # the authors' G is never in eval mode
        eps = self.rng.uniform([n, 1, 1, 1])
        with tf.GradientTape() as tape:
            d_out = critic_loss(self.discriminator.logits(x, training=True),
                                self.discriminator.logits(fake, training=True),
                                gradient_penalty(lambda v: self.discriminator.logits(v, training=True), x, fake, eps),
                                m.gp_lambda)
        apply_gradients(self.d_opt, tape, d_out["d_loss"], self.d_vars)

        def ge():
            z_n2, z_c2, classes2 = self.sample_latent(n)  # G+E's own z, not the critic's
            return self.ge_update(tf.concat([z_n2, z_c2], axis=1), z_n2, classes2)

        ge_out = tf.cond(tf.equal(self.d_opt.iterations % m.g_every, 0), ge, self.held_ge)
        return {**d_out, **ge_out}

    def log_line(self, epoch, idx, steps_per_epoch, elapsed, losses_):
        line = (f"Epoch: [{epoch:2d}] [{idx:4d}/{steps_per_epoch:4d}] time: {elapsed:4.4f}, "
                f"d_loss: {losses_['d_loss']:.8f}, ge_loss: {losses_['ge_loss']:.8f} "
                f"(zn {losses_['zn_loss']:.6f}, zc {losses_['zc_loss']:.6f})")
        if self.model_cfg.critic == "wgan_gp":
            line += f", W: {losses_['d_wasserstein']:.4f}, gp: {losses_['d_gp']:.4f}, G iters: {self.g_iterations()}"
        return line

    def g_iterations(self) -> int:
        """G+E updates so far (the paper counts its training in these)."""
        return int(self.ge_opt.iterations.numpy())

    # --- outputs -----------------------------------------------------------------------------------
    def one_hot(self, classes) -> np.ndarray:
        return np.eye(self.model_cfg.n_classes, dtype=np.float32)[np.asarray(classes)]

    def generate(self, z_n, classes) -> np.ndarray:
        """Images in [0, 1] from z_n and integer classes, G in inference mode (BatchNorm moving
        averages: the original's ``generator.eval()``)."""
        z = np.concatenate([np.asarray(z_n, np.float32), self.one_hot(classes)], axis=1)
        return self.generator(tf.constant(z), training=False).numpy()

    def encode(self, x) -> Tuple[np.ndarray, np.ndarray]:
        """(z_n, class probabilities) of images, uint8 0..255 or float in [0, 1], (N, 28, 28, 1)."""
        x = np.asarray(x)
        x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        if self._encode_fn is None:
            self._encode_fn = tf.function(lambda b: self.encoder(b, training=False))
        zs, ps = [], []
        for start in range(0, len(x), ENCODE_BATCH):
            z_n, logits = self._encode_fn(tf.constant(x[start:start + ENCODE_BATCH]))
            zs.append(z_n.numpy())
            ps.append(tf.nn.softmax(logits).numpy())
        return np.concatenate(zs), np.concatenate(ps)

    def out_dir(self, root: str) -> str:
        return os.path.join(root, self.name)

    def write_grid(self, path: str) -> str:
        n = self.model_cfg.n_classes
        return images.save_grid(path, self.generate(self.sample_zn, self.sample_classes), rows=n, cols=10)

    def encoder_check(self, epoch: int) -> Dict[str, float]:
        """The original's after-epoch check: MSE and CE of E on 100 fresh G samples, both in inference
        mode. Its noise comes from (seed, epoch), so a resumed run measures the same samples."""
        m = self.model_cfg
        rng = np.random.default_rng([self.seed, 3, epoch])
        z_n = (m.zn_sigma * rng.standard_normal((EVAL_SAMPLES, m.z_dim))).astype(np.float32)
        classes = rng.integers(0, m.n_classes, EVAL_SAMPLES)
        zn_hat, logits = self.encoder(tf.constant(self.generate(z_n, classes)), training=False)
        out = generator_encoder_loss(tf.zeros([EVAL_SAMPLES, 1]), zn_hat, z_n, logits, classes)
        return {"enc_mse_loss": float(out["zn_loss"]), "enc_ce_loss": float(out["zc_loss"])}

    def end_of_epoch(self, loop: RunState, epoch: int, mean_losses: Dict[str, float]):
        """Mean G+E and D losses, the encoder check, and every 10th epoch (0, 10, ...) a 10x10 grid of
        the class-ordered display noise, ``img_<epoch>.png``."""
        out = self.out_dir(self.cfg.sample_dir)
        values = {k: mean_losses[k] for k in ("ge_loss", "d_loss", "zn_loss", "zc_loss")}
        values.update(self.encoder_check(epoch))
        every = sample_every_epochs(self.cfg)
        if every and epoch % every == 0:
            name = f"img_{epoch}.png"
            self.write_grid(os.path.join(out, name))
            values["grid"] = name
        EpochHistory(out).record(epoch, values)
        epoch_summaries(loop, {k: v for k, v in values.items() if k != "grid"})
        loop.log(f"epoch {epoch}: epoch_ge_loss: {values['ge_loss']:.5f}, epoch_d_loss: {values['d_loss']:.5f}, "
                 f"enc_mse_loss: {values['enc_mse_loss']:.5f}, enc_ce_loss: {values['enc_ce_loss']:.5f}"
                 + (f" [{values['grid']}]" if "grid" in values else ""))

    def end_of_training(self, loop: RunState):
        """The GIF of the epoch grids and the original's three plots: loss.png (G+E and D),
        enc_mse_loss.png and enc_cross_entropy_loss.png."""
        n_epochs = int(loop.step.numpy()) // max(loop.steps_per_epoch, 1)
        plots = {
            "loss.png": {"Generator-Encoder loss": "ge_loss", "Discriminator loss": "d_loss"},
            "enc_mse_loss.png": {"enc_mse_loss": "enc_mse_loss"},
            "enc_cross_entropy_loss.png": {"enc_cross_entropy_loss": "enc_ce_loss"},
        }
        for p in finish_outputs(EpochHistory(self.out_dir(self.cfg.sample_dir)), n_epochs, plots,
                                log=loop.log).values():
            loop.log(f" [*] wrote {p}")

    def cluster_report(self, x, labels) -> dict:
        """Both protocols on ``x`` against ``labels`` (:func:`clustering.encoder_clustering`): ACC / purity /
        NMI / ARI of the encoder's argmax, and of K-means (seeded) on the encoded [z_n, softmax]
        (``kmeans_*``; the paper's ACC is ``kmeans_purity``); cluster sizes, the argmax's best
        cluster -> label map."""
        z_n, probs = self.encode(x)
        labels = np.asarray(labels).astype(np.int64)
        report = clustering.encoder_clustering(labels, z_n, probs, seed=self.seed)
        report.update({
            "n": int(len(labels)),
            "cluster_to_label": {str(k): v for k, v in
                                 clustering.cluster_mapping(labels, np.argmax(probs, axis=1)).items()},
        })
        return report

    # --- model selection on the validation split (--val_size) ---------------------------------------
    @staticmethod
    def best_record(ckpt_dir: str) -> Optional[dict]:
        """``<ckpt_dir>/best/best.json``, or None when the run keeps no best checkpoint."""
        path = os.path.join(ckpt_dir, BEST_DIR, "best.json")
        if not os.path.isfile(path):
            return None
        with open(path) as f:
            return json.load(f)

    def checkpoint_saved(self, loop: RunState, ckpt: tf.train.Checkpoint, path: str) -> None:
        """With ``val_size``: score the validation split (both protocols) and, when its K-means purity
        (the paper's ACC) beats the best so far, write this checkpoint also to ``<ckpt_dir>/best/``
        (resumable: optimizers included) with ``best.json`` (its step, G iterations and scores, and
        every validation score of the run so far)."""
        if not self.cfg.val_size:
            return
        x, y = self.validation_set()
        rep = self.cluster_report(x, y)
        step = int(loop.step.numpy())
        entry = {"step": step, "g_iterations": self.g_iterations(), "checkpoint": os.path.basename(path),
                 **{k: rep[k] for k in ("acc", "purity", "nmi", "ari", "kmeans_acc", "kmeans_purity",
                                        "kmeans_nmi", "kmeans_ari")}}
        record = self.best_record(loop.ckpt_dir) or {"selected_by": BEST_BY, "val_size": self.cfg.val_size,
                                                     "history": []}
        # Keyed by step: a run resumed from an older checkpoint replaces what it re-measures.
        record["history"] = sorted([h for h in record["history"] if h["step"] != step] + [entry],
                                   key=lambda h: h["step"])
        best = record.get("best")
        is_best = best is None or entry[BEST_BY] > best[BEST_BY] or best["step"] == step
        best_dir = os.path.join(loop.ckpt_dir, BEST_DIR)
        if is_best:
            os.makedirs(best_dir, exist_ok=True)
            written = ckpt.write(os.path.join(best_dir, os.path.basename(path)))
            record["best"] = {**entry, "checkpoint": os.path.relpath(written, loop.ckpt_dir)}
        fileio.atomic_write_text(os.path.join(best_dir, "best.json"), json.dumps(record, indent=1) + "\n")
        if is_best and best is not None and best["checkpoint"] != record["best"]["checkpoint"]:
            for f in glob.glob(os.path.join(loop.ckpt_dir, best["checkpoint"]) + ".*"):
                os.remove(f)  # the previous best, now that best.json points at the new one
        b = record["best"]
        loop.log(f" [*] validation ({len(y)} held-out images) at step {step}, G iters {entry['g_iterations']}: "
                 f"ACC {entry['acc']:.4f}, K-means purity {entry['kmeans_purity']:.4f}; best: step {b['step']} "
                 f"(K-means purity {b['kmeans_purity']:.4f})" + (" [kept]" if is_best else ""))

    def restore_weights(self, loop: RunState, path: str) -> None:
        """Load the networks (and step) of checkpoint ``path``, not the optimizers."""
        # The loop's own checkpoint layout, so any checkpoint of the run (or its best/ copy) loads.
        checkpoint(loop, self, optimizers=False).restore(path).expect_partial()

    def restore_best(self, loop: RunState, log=print) -> dict:
        """After the loop restored the latest checkpoint: load the best one by validation score instead,
        if the run keeps one (the paper's model selection). Returns which checkpoint the model now holds."""
        latest = tf.train.latest_checkpoint(loop.ckpt_dir)
        latest_step = int(loop.step.numpy())
        record = self.best_record(loop.ckpt_dir)
        if record is None or "best" not in record:
            self.restored_from = {"path": latest, "step": latest_step, "kept_by": "latest"}
            return self.restored_from
        b = record["best"]
        path = os.path.join(loop.ckpt_dir, b["checkpoint"])
        self.restore_weights(loop, path)
        self.restored_from = {"path": path, "step": b["step"], "g_iterations": b["g_iterations"],
                              "kept_by": f"best validation {record['selected_by']} ({record['val_size']} images)",
                              "validation": {k: v for k, v in b.items() if k not in ("checkpoint", "step")},
                              "latest_step": latest_step}
        log(f" [*] evaluating the best checkpoint by validation K-means purity: {path} (step {b['step']}, "
            f"G iters {b['g_iterations']}, validation K-means purity {b['kmeans_purity']:.4f}, ACC "
            f"{b['acc']:.4f}); the latest is step {latest_step}")
        return self.restored_from

    def evaluate(self, loop: RunState):
        """``--is_train False``: cluster the test set with the encoder of the best checkpoint by
        validation score if the run kept one (``--val_size``), else of the latest; print both
        protocols' scores and write them to ``<evaluate_dir>/clustergan_clustering.json`` (with the
        checkpoint used); a class-ordered grid in ``<evaluate_dir>/clustergan/test_00.png``."""
        cfg = self.cfg
        kept = self.restore_best(loop, log=loop.log)
        x, y = data.load_split(cfg.data_dir, cfg.dataset, "test")
        report = {"dataset": cfg.dataset, "split": "test", "step": int(loop.step.numpy()), "checkpoint": kept,
                  **self.cluster_report(x, y)}
        loop.log(f" [*] clustering of the {report['n']} {cfg.dataset} test images (step {report['step']}): "
                 f"ACC {report['acc']:.4f}, NMI {report['nmi']:.4f}, ARI {report['ari']:.4f} (encoder argmax); "
                 f"K-means purity {report['kmeans_purity']:.4f}, NMI {report['kmeans_nmi']:.4f}, "
                 f"ARI {report['kmeans_ari']:.4f} (the paper's protocol)")
        path = os.path.join(cfg.evaluate_dir, f"{self.name}_clustering.json")
        fileio.atomic_write_text(path, json.dumps(report, indent=2, sort_keys=True) + "\n")
        loop.log(f" [*] wrote {path}")
        grid = self.write_grid(os.path.join(self.out_dir(cfg.evaluate_dir), "test_00.png"))
        loop.log(f" [*] wrote {grid}")
        return report

    def export(self, export_dir: str) -> str:
        return export_clustergan(self.generator, self.encoder, self.model_cfg, os.path.join(export_dir, self.name))


class _ClusterServing(tf.Module):
    def __init__(self, generator, encoder):
        super().__init__()
        self.generator = generator
        self.encoder = encoder


def export_clustergan(generator, encoder, cfg: ClusterGanConfig, path: str) -> str:
    """SavedModel with two signatures, both in inference mode (BatchNorm moving averages):

    - ``serving_default(z_n: [batch, z_dim], z_c: [batch, n_classes] one-hot) -> {"images"}``,
      images [batch, 28, 28, 1] in [0, 1];
    - ``encode(images: [batch, 28, 28, 1] float in [0, 1]) -> {"z_n", "class_probs"}``; the cluster
      of an image is the argmax of ``class_probs``.

    The module's ``zn_sigma`` (a scalar variable) is the standard deviation of the z_n the generator was
    trained on (1.0, or the paper's 0.1 with ``--zn_sigma``): draw z_n ~ N(0, zn_sigma^2).
    """
    module = _ClusterServing(generator, encoder)
    module.zn_sigma = tf.Variable(float(cfg.zn_sigma), trainable=False, name="zn_sigma")

    @tf.function(input_signature=[tf.TensorSpec([None, cfg.z_dim], tf.float32, name="z_n"),
                                  tf.TensorSpec([None, cfg.n_classes], tf.float32, name="z_c")])
    def serve(z_n, z_c):
        return {"images": generator(tf.concat([z_n, z_c], axis=1), training=False)}

    @tf.function(input_signature=[tf.TensorSpec([None] + list(IMAGE_SHAPE), tf.float32, name="images")])
    def encode(images_):
        z_n, logits = encoder(images_, training=False)
        return {"z_n": z_n, "class_probs": tf.nn.softmax(logits)}

    module.serve = serve
    module.encode = encode
    return export_lib.save_module(module, {"serving_default": serve.get_concrete_function(),
                                           "encode": encode.get_concrete_function()}, path)
