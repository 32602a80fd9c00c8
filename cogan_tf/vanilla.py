"""Vanilla GAN (JasonFengGit's Generative-Adversarial-Networks, docs/ORIGINAL.md §2): MLP generator and
discriminator on MNIST scaled to [-1, 1], on the shared training loop.

PyTorch's default initial weights (:mod:`cogan_tf.torch_layers`), the per-epoch outputs
(:mod:`cogan_tf.history`) and the other choices this port shares with the ClusterGAN port are in
docs/PORTS.md. Specific to this model:
the loop drops the last partial batch, 117 steps of 512 per epoch instead of PyTorch's 118 with a
last batch of 96.
"""

from __future__ import annotations

import os
from typing import Dict

import numpy as np
import tensorflow as tf
import keras

from cogan_tf import data, images, levers
from cogan_tf.data import IMAGE_SHAPE, check_image_arrays
from cogan_tf.export import export_vanilla
from cogan_tf.history import EpochHistory, finish_outputs
from cogan_tf.layers import Dense
from cogan_tf.losses import discriminator_loss, generator_loss
from cogan_tf.config import TrainConfig, VanillaConfig
from cogan_tf.precision import as_float32
from cogan_tf.torch_layers import build_once, torch_dense
from cogan_tf.gan import GAN, Loop, apply_gradients, global_batch, replica_share

SAMPLE_SIZE = 64  # the original's fixed display noise: 64 samples, an 8x8 grid


# --- networks -----------------------------------------------------------------------------------------

class VanillaGenerator(keras.Model):
    """MLP z (128) -> h -> h -> h -> 784, LeakyReLU(0.2), tanh; images (N, 28, 28, 1) in [-1, 1].
    h = ``cfg.hidden``: 128 as the original runs, 1024 as its README describes."""

    def __init__(self, cfg: VanillaConfig = VanillaConfig(), **kwargs):
        super().__init__(name="vanilla_generator", **kwargs)
        self.cfg = cfg
        h = cfg.hidden
        self.h0 = torch_dense(h, cfg.z_dim, "g_h0")
        self.act0 = keras.layers.LeakyReLU(negative_slope=cfg.leak, name="g_h0_lrelu")
        self.h1 = torch_dense(h, h, "g_h1")
        self.act1 = keras.layers.LeakyReLU(negative_slope=cfg.leak, name="g_h1_lrelu")
        self.h2 = torch_dense(h, h, "g_h2")
        self.act2 = keras.layers.LeakyReLU(negative_slope=cfg.leak, name="g_h2_lrelu")
        self.h3 = torch_dense(int(np.prod(IMAGE_SHAPE)), h, "g_h3", activation="tanh")

    def build(self, input_shape):
        h = self.cfg.hidden
        for layer, n_in in ((self.h0, self.cfg.z_dim), (self.h1, h), (self.h2, h), (self.h3, h)):
            build_once(layer, (None, n_in))
        self.built = True

    def call(self, z, training=False):
        x = self.act0(self.h0(z))
        x = self.act1(self.h1(x))
        x = self.act2(self.h2(x))
        # PyTorch's view(-1, 1, 28, 28) and this reshape read the 784 outputs in the same order (C = 1).
        # float32 images also under a mixed dtype policy (--mixed_precision).
        return keras.ops.reshape(as_float32(self.h3(x)), (-1,) + IMAGE_SHAPE)


class ReplicaDropout(keras.layers.Dropout):
    """Keras's Dropout; under tf.distribute with several replicas, each replica draws its own mask. (Keras's
    draws the same numbers on every replica: each holds a copy of the same seed state, so row i of every
    replica's share would get the same mask.) The seed state still advances once per call, as on one device."""

    def call(self, inputs, training=False):
        ctx = tf.distribute.get_replica_context()
        if not training or self.rate == 0 or ctx is None or ctx.num_replicas_in_sync == 1:
            return super().call(inputs, training=training)
        seed = tf.cast(self.seed_generator.next(), tf.int32)  # the same on every replica
        seed = seed + tf.stack([0, tf.cast(ctx.replica_id_in_sync_group, tf.int32)])
        keep = tf.random.stateless_uniform(tf.shape(inputs), seed=seed) >= self.rate
        return tf.where(keep, inputs / (1.0 - self.rate), tf.zeros_like(inputs))


class VanillaDiscriminator(keras.Model):
    """MLP 784 -> h -> h -> h -> 1 (h = ``cfg.hidden``), LeakyReLU(0.2) then Dropout(0.3) after each hidden layer,
    sigmoid. ``call`` returns the probability, ``logits`` the value before the sigmoid."""

    def __init__(self, cfg: VanillaConfig = VanillaConfig(), **kwargs):
        super().__init__(name="vanilla_discriminator", **kwargs)
        self.cfg = cfg
        h = cfg.hidden
        n_in = int(np.prod(IMAGE_SHAPE))
        self.h0 = torch_dense(h, n_in, "d_h0")
        self.act0 = keras.layers.LeakyReLU(negative_slope=cfg.leak, name="d_h0_lrelu")
        self.drop0 = ReplicaDropout(cfg.dropout, name="d_h0_dropout")
        self.h1 = torch_dense(h, h, "d_h1")
        self.act1 = keras.layers.LeakyReLU(negative_slope=cfg.leak, name="d_h1_lrelu")
        self.drop1 = ReplicaDropout(cfg.dropout, name="d_h1_dropout")
        self.h2 = torch_dense(h, h, "d_h2")
        self.act2 = keras.layers.LeakyReLU(negative_slope=cfg.leak, name="d_h2_lrelu")
        self.drop2 = ReplicaDropout(cfg.dropout, name="d_h2_dropout")
        self.h3 = torch_dense(1, h, "d_h3")

    def build(self, input_shape):
        h = self.cfg.hidden
        for layer, n_in in ((self.h0, int(np.prod(IMAGE_SHAPE))), (self.h1, h), (self.h2, h), (self.h3, h)):
            build_once(layer, (None, n_in))
        self.built = True

    @property
    def dropouts(self):
        return (self.drop0, self.drop1, self.drop2)

    def logits(self, x, training=False):
        x = keras.ops.reshape(x, (-1, int(np.prod(IMAGE_SHAPE))))
        x = self.drop0(self.act0(self.h0(x)), training=training)
        x = self.drop1(self.act1(self.h1(x)), training=training)
        x = self.drop2(self.act2(self.h2(x)), training=training)
        return as_float32(self.h3(x))

    def call(self, x, training=False):
        return keras.ops.sigmoid(self.logits(x, training=training))


def dropout_seed_states(dropouts) -> Dict[str, tf.Variable]:
    """The seed-generator state of each Dropout layer, by layer name. Keras keeps it outside what
    tf.train.Checkpoint finds through the model, so the GAN checkpoints it explicitly: a resumed run
    then draws the dropout masks the uninterrupted run would have drawn."""
    # (A rate of 0 draws nothing: Keras gives such a layer no seed state.)
    return {f"{layer.name}_seed": layer.seed_generator.state for layer in dropouts if hasattr(layer, "seed_generator")}


# --- the model on the loop ---------------------------------------------------------------------------

class VanillaGAN(GAN):
    name = "vanilla"
    checkpoint_prefix = "VanillaGAN.model"
    reshuffle_each_epoch = True  # the PyTorch DataLoader's shuffle=True

    def __init__(self, model_cfg: VanillaConfig, train_cfg: TrainConfig, arrays=None, strategy=None):
        super().__init__(model_cfg, train_cfg, strategy=strategy)
        self._arrays = None if arrays is None else check_image_arrays(arrays, "VanillaGAN")
        # The original's noise_for_display: drawn once, the same 64 z for every grid of the run.
        rng = np.random.default_rng([self.seed, 1])
        self.sample_z = rng.standard_normal((SAMPLE_SIZE, model_cfg.z_dim)).astype(np.float32)

    def build(self):
        cfg, m = self.train_cfg, self.model_cfg
        self.generator = VanillaGenerator(m)
        self.discriminator = VanillaDiscriminator(m)
        self.generator.build((None, m.z_dim))
        self.discriminator.build((None,) + IMAGE_SHAPE)
        self.g_vars = self.generator.trainable_variables
        self.d_vars = self.discriminator.trainable_variables
        self.g_opt = self.make_optimizer(cfg.learning_rate, cfg.beta1, cfg.beta2)
        self.d_opt = self.make_optimizer(cfg.learning_rate, cfg.beta1, cfg.beta2)
        self.g_opt.build(self.g_vars)
        self.d_opt.build(self.d_vars)

    def use_device_levers(self, device_kind: str) -> None:
        for model in (self.generator, self.discriminator):
            for layer in model._flatten_layers():
                if isinstance(layer, Dense):
                    layer.written_gradient = (levers.on("dense_bmm_gradient", device_kind)
                                              and layer.kernel.shape.num_elements() >= levers.DENSE_BMM_MIN_WEIGHTS)

    def trackables(self):
        return dict(generator=self.generator, discriminator=self.discriminator, g_optimizer=self.g_opt,
                    d_optimizer=self.d_opt, **dropout_seed_states(self.discriminator.dropouts))

    def training_arrays(self):
        if self._arrays is None:
            # All of the training split, as the originals.
            self._arrays = [data.load_split(self.train_cfg.data_dir, self.train_cfg.dataset, "train")[0]]
        return self._arrays

    def train_step(self, x):
        """k = 1 D update, then one G update, each on its own fresh z (as the original). D runs in
        training mode (dropout on) in both, and sees the real and the fake batch in separate calls,
        so each gets its own dropout mask."""
        n = global_batch(x, self.train_cfg)
        # Both z for the global batch, in the order the updates use them; under tf.distribute each
        # replica takes its share.
        z_d = self.rng.normal([n, self.model_cfg.z_dim])
        z_g = self.rng.normal([n, self.model_cfg.z_dim])
        return self.run_replicas(self.replica_step, x, z_d, z_g)

    def replica_step(self, x, z_d, z_g):
        x = tf.cast(x, tf.float32) / 127.5 - 1.0  # ToTensor + Normalize((0.5,), (0.5,))
        fake = self.generator(replica_share(z_d), training=True)
        with tf.GradientTape() as tape:
            d_out = discriminator_loss(self.discriminator.logits(x, training=True),
                                       self.discriminator.logits(fake, training=True))
        apply_gradients(self.d_opt, tape, d_out["d_loss"], self.d_vars)
        with tf.GradientTape() as tape:
            g_loss = generator_loss(self.discriminator.logits(self.generator(replica_share(z_g), training=True),
                                                              training=True))
        apply_gradients(self.g_opt, tape, g_loss, self.g_vars)
        return {**d_out, "g_loss": g_loss}

    # --- outputs -----------------------------------------------------------------------------------
    def generate(self, z) -> np.ndarray:
        """Images in [0, 1] (the tanh output mapped by (x + 1) / 2), (N, 28, 28, 1)."""
        return (self.generator(tf.convert_to_tensor(z), training=False).numpy() + 1.0) / 2.0

    def out_dir(self, root: str) -> str:
        return os.path.join(root, self.name)

    def end_of_epoch(self, loop: Loop, epoch: int, mean_losses: Dict[str, float]):
        """As the original after each epoch: record the mean G and D losses; every 10th epoch
        (0, 10, 20, ...) an 8x8 grid of the fixed display noise, ``img_<epoch>.png``."""
        out = self.out_dir(self.train_cfg.sample_dir)
        values = {"g_loss": mean_losses["g_loss"], "d_loss": mean_losses["d_loss"]}
        every = self.train_cfg.sample_every_epochs
        if every and epoch % every == 0:
            name = f"img_{epoch}.png"
            images.save_grid(os.path.join(out, name), self.generate(self.sample_z))
            values["grid"] = name
        EpochHistory(out).record(epoch, values)
        loop.scalar_summaries({f"epoch/{k}": values[k] for k in ("g_loss", "d_loss")}, int(loop.step.numpy()))
        loop.log(f"epoch {epoch}: epoch_g_loss: {values['g_loss']:.5f}, epoch_d_loss: {values['d_loss']:.5f}"
                 + (f" [{values['grid']}]" if "grid" in values else ""))

    def end_of_training(self, loop: Loop):
        """The GIF of the epoch grids and the plot of the per-epoch mean G and D losses (loss.png)."""
        n_epochs = int(loop.step.numpy()) // max(loop.steps_per_epoch, 1)
        paths = finish_outputs(EpochHistory(self.out_dir(self.train_cfg.sample_dir)), n_epochs,
                               {"loss.png": {"Generator loss": "g_loss", "Discriminator loss": "d_loss"}},
                               log=loop.log)
        for p in paths.values():
            loop.log(f" [*] wrote {p}")

    def write_report(self, loop: Loop, n_grids: int = 4):
        """Grids of the fixed display noise (test_00) and of further seeded z, in <evaluate_dir>/vanilla."""
        rng = np.random.default_rng([self.seed, 2])
        for i in range(n_grids):
            z = self.sample_z if i == 0 else rng.standard_normal(self.sample_z.shape).astype(np.float32)
            path = images.save_grid(os.path.join(self.out_dir(self.train_cfg.evaluate_dir), f"test_{i:02d}.png"),
                                    self.generate(z))
            loop.log(f" [*] wrote {path}")

    def export(self, export_dir: str) -> str:
        return export_vanilla(self.generator, self.model_cfg.z_dim, os.path.join(export_dir, self.name),
                              self.export_about())
