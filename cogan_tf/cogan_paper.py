"""``--recipe paper`` and ``--recipe conditional`` of the CoGAN: the CoGAN paper's digit network trained as
its Caffe model is (docs/ORIGINAL.md §5), and the conditional GAN of the paper's comparison on the same
network and data. Both are :class:`PaperCoGAN`; the recipe picks the networks (cogan_tf/paper_networks.py).

The data, grids, checkpoints and export are the CoGAN's (:class:`cogan_tf.cogan.CoGAN`); what differs is the
networks, z ~ U(-1, 1), real images scaled by 1/256 (Caffe's ``scale: 0.00390625``), and the step: one D
update, then one G update on a fresh z, each with its own dropout draws, under Caffe's alternating Adam
(:class:`cogan_tf.paper_layers.CaffeAdam`).
"""

from __future__ import annotations

import os
from typing import Dict

import numpy as np
import tensorflow as tf

from cogan_tf import losses
from cogan_tf.cogan import CoGAN, export_cogan
from cogan_tf.cogan_networks import unique_variables
from cogan_tf.gan import apply_gradients
from cogan_tf.paper_layers import CaffeAdam, CaffeBatchNorm, CaffeDeconv, CaffeDense, ChannelPReLU
from cogan_tf.paper_networks import build_paper_networks, caffe_multipliers

WEIGHT_DECAY = 5e-4  # the Caffe solver's weight_decay (L2 on the weights, docs/ORIGINAL.md §5.5)
D_HIDDEN = 500  # units of D's dropout layer


class PaperCoGAN(CoGAN):
    pixel_scale = 256.0  # Caffe's data layers: scale 0.00390625

    def __init__(self, model_cfg, train_cfg, arrays=None, strategy=None):
        super().__init__(model_cfg, train_cfg, arrays=arrays, strategy=strategy)
        if self.strategy.num_replicas_in_sync != 1:
            raise ValueError(f"--recipe {model_cfg.recipe} trains on one device")
        self.sample_z = self.sample_noise(np.random.default_rng([self.seed, 1]), self.sample_z.shape[0])

    def sample_noise(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """z ~ U(-1, 1), the Caffe model's RandomNoise layer."""
        return rng.uniform(-1.0, 1.0, (n, self.model_cfg.z_dim)).astype(np.float32)

    def build(self):
        cfg = self.train_cfg
        self.generator, self.discriminator = build_paper_networks(self.model_cfg)
        self.g_vars = unique_variables(self.generator.trainable_variables)
        self.d_vars = unique_variables(self.discriminator.trainable_variables)
        # Caffe's AlterAdam: D updated at the solver's even iterations (phase 1), G at its odd ones (phase 2).
        self.d_opt = CaffeAdam(cfg.learning_rate, cfg.beta1, cfg.beta2, WEIGHT_DECAY, phase=1,
                               multipliers=caffe_multipliers)
        self.g_opt = CaffeAdam(cfg.learning_rate, cfg.beta1, cfg.beta2, WEIGHT_DECAY, phase=2,
                               multipliers=caffe_multipliers)
        self.g_opt.build(self.g_vars)
        self.d_opt.build(self.d_vars)

    def use_plain_layers(self) -> "PaperCoGAN":
        """Every layer's plain Keras/TensorFlow ops instead of its written gradient or fused op (the
        reference of tests/test_cogan_paper.py and the benchmark's ``paper_plain`` row)."""
        for model in (self.generator, self.discriminator):
            for layer in model._flatten_layers():
                if isinstance(layer, (CaffeBatchNorm, ChannelPReLU, CaffeDense, CaffeDeconv)):
                    layer.fast = False
        return self

    # --- losses -------------------------------------------------------------------------------------------
    def d_losses(self, x1, x2, fake1, fake2, training, noise=None):
        """D's losses, each domain's real and fake batches through D together (no BatchNorm in D)."""
        m = self.model_cfg
        b = tf.shape(x1)[0]
        l1, l2 = self.discriminator.logits(tf.concat([x1, fake1], 0), tf.concat([x2, fake2], 0), training=training,
                                           noise=noise)
        return losses.paper_d_losses(l1[:b], l1[b:], l2[:b], l2[b:], m.real_target, m.fake_target)

    def g_losses(self, fake1, fake2, training, noise=None):
        l1, l2 = self.discriminator.logits(fake1, fake2, training=training, noise=noise)
        return losses.paper_g_losses(l1, l2, self.model_cfg.gen_target)

    def d_outputs(self, x1, x2, fake1, fake2) -> Dict[str, tf.Tensor]:
        b = tf.shape(x1)[0]
        l1, l2 = self.discriminator.logits(tf.concat([x1, fake1], 0), tf.concat([x2, fake2], 0))
        return {"d1": tf.sigmoid(l1[:b]), "d1_": tf.sigmoid(l1[b:]), "d2": tf.sigmoid(l2[:b]), "d2_": tf.sigmoid(l2[b:])}

    # --- the step ----------------------------------------------------------------------------------------------
    def train_step(self, x1, x2):
        """One step on a batch of uint8 images of each domain (one device: the recipe refuses strategies)."""
        return self.paper_updates(tf.cast(x1, tf.float32) / self.pixel_scale,
                                  tf.cast(x2, tf.float32) / self.pixel_scale)

    def paper_updates(self, x1, x2):
        """One iteration of the paper's training (docs/ORIGINAL.md §5.5): a D update on both domains'
        real and fake batches, then a G update on a fresh z. Random numbers in a fixed order from the run's
        generator: z, D's dropout (4 batches), z, D's dropout (2 batches)."""
        b = tf.shape(x1)[0]
        z = self.draw_z(b)
        fake1, fake2 = self.generator(z, training=True)  # G is not differentiated in D's update
        noise = self.rng.uniform([4 * b, D_HIDDEN])
        with tf.GradientTape() as tape:
            d_out = self.d_losses(x1, x2, fake1, fake2, training=True, noise=noise)
        apply_gradients(self.d_opt, tape, d_out["d_loss"], self.d_vars)  # G is not updated here
        z = self.draw_z(b)
        noise = self.rng.uniform([2 * b, D_HIDDEN])
        with tf.GradientTape() as tape:
            fake1, fake2 = self.generator(z, training=True)
            g_out = self.g_losses(fake1, fake2, training=True, noise=noise)
            # Caffe's loss is a mean over all 4 b rows, the reals included (whose part G does not move):
            # the fakes' mean counts half.
            objective = 0.5 * g_out["g_loss"]
        apply_gradients(self.g_opt, tape, objective, self.g_vars)  # D is not updated here
        return {**d_out, **g_out}

    def draw_z(self, n):
        return self.rng.uniform([n, self.model_cfg.z_dim], -1.0, 1.0)

    def export(self, export_dir: str) -> str:
        return export_cogan(self.generator, self.model_cfg.z_dim, os.path.join(export_dir, self.name),
                            pair=self.model_cfg.pair, z_uniform=True, about=self.export_about())

