"""CoGAN (andrewliao11's CoGAN-tensorflow): MNIST digits (domain 1, "top") and inverted digits
(domain 2, "bot"), or another pair of cogan_tf/pairs.py, generated from the same z by coupled generators
(docs/ORIGINAL.md §1, §5)."""

from __future__ import annotations

import os
from typing import Dict

import numpy as np
import tensorflow as tf

from cogan_tf import cogan_fast, data, images, levers, losses, pairs
from cogan_tf.config import CoganConfig, TrainConfig
from cogan_tf.export import export_cogan
from cogan_tf.cogan_networks import build_cogan, unique_variables
from cogan_tf.gan import GAN, Loop, apply_gradients, replica_share

SAMPLE_BATCH = 128  # the original draws 128 sample z once before training and shows the first 64


def load_domains(data_dir: str, dataset: str, disjoint: bool, seed: int, log=print, pair: str = pairs.DEFAULT_PAIR):
    """Domain 1 (digits) and domain 2 (their ``pair`` transform, cogan_tf/pairs.py) as uint8
    (N, 28, 28, 1) arrays.

    Faithful: both hold the same 70,000 digits (train + test), each later shuffled with its own
    permutation. ``disjoint`` (the CoGAN paper): a seeded half of the digits for each domain.
    """
    splits = ("train", "test")
    xs = [data.load_split(data_dir, dataset, s)[0] for s in splits]
    x = np.concatenate(xs)
    missing = pairs.missing_files(data_dir, dataset, pair, splits)
    if missing and pair == pairs.DEFAULT_PAIR:
        # The default pair's negatives are written on the spot, so `python main.py` trains right after the
        # download; main.py refuses the other pairs' missing files before TensorFlow starts, naming the
        # command that writes them (their transform is a choice the user makes once, with invert.py).
        log(f" [*] {missing[0]} missing: running invert.py for you")
        pairs.write_pair(data_dir, dataset, pair, log=log)
    # Each file is checked to hold the transform of its digits (one comparison), or refused naming it.
    second = pairs.load_pair(data_dir, dataset, pair, splits, originals=xs)
    if disjoint:
        perm = data.epoch_permutation(len(x), (seed, 0))
        half = len(x) // 2
        return [x[perm[:half]], second[perm[half:2 * half]]]
    return [x, second]


class CoGAN(GAN):
    name = "cogan"
    checkpoint_prefix = "CoGAN.model"
    reshuffle_each_epoch = False  # the original shuffles each domain once, before training
    pixel_scale = 255.0  # uint8 images to [0, 1]
    # The speed levers of the training step (cogan_fast.py), on; off, the step is plain_updates. Those that
    # pay on a CPU only are set per device when the GAN is built (use_device_levers, cogan_tf/levers.py).
    reuse_g_forward = True  # the first G update reuses the D update's G forward pass
    subpixel_heads = True  # the heads as conv + depth_to_space (cogan_fast.generate_pair); False: as deconv

    def __init__(self, model_cfg: CoganConfig, train_cfg: TrainConfig, arrays=None, strategy=None):
        super().__init__(model_cfg, train_cfg, strategy=strategy)
        self._arrays = arrays
        self.sample_z = self.sample_noise(np.random.default_rng([self.seed, 1]), SAMPLE_BATCH)
        self._sample_images = None

    def sample_noise(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` z for grids and evaluation, drawn as the model's training draws them: N(0, 1)."""
        return rng.standard_normal((n, self.model_cfg.z_dim)).astype(np.float32)

    def build(self):
        self.generator, self.discriminator = build_cogan(self.model_cfg)
        cfg = self.train_cfg
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

    def use_device_levers(self, device_kind: str) -> None:
        self.subpixel_heads = levers.on("subpixel_heads", device_kind)
        cogan_fast.use_layer_levers(self, **{lever.name: levers.on(lever.name, device_kind) for lever in levers.LEVERS
                                             if lever.name in cogan_fast.LAYER_LEVERS})

    def training_arrays(self):
        if self._arrays is None:
            t = self.train_cfg
            self._arrays = load_domains(t.data_dir, t.dataset, t.disjoint_domains, self.seed, pair=self.model_cfg.pair)
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
        batch = self.train_cfg.batch_size if distributed else tf.shape(x1)[0]
        z = self.rng.normal([batch, self.model_cfg.z_dim])
        return self.run_replicas(self.replica_step, x1, x2, z)

    def replica_step(self, x1, x2, z):
        x1 = tf.cast(x1, tf.float32) / self.pixel_scale
        x2 = tf.cast(x2, tf.float32) / self.pixel_scale
        updates = cogan_fast.reused_forward_updates if self.reuse_g_forward else CoGAN.plain_updates
        return updates(self, x1, x2, replica_share(z), lambda z: cogan_fast.generate_pair(
            self.generator, z, training=True, subpixel=self.subpixel_heads))

    def plain_updates(self, x1, x2, z, fakes=None):
        """The step as the original computes it (docs/ORIGINAL.md §1.7), on images scaled to [0, 1]:
        one D update on the sum of both domains' losses, then ``g_updates_per_step`` G updates with
        the same z, G run again for each. ``fakes(z) -> (G1(z), G2(z))`` is how G runs (default: the
        generator's own call). The port trains with :func:`cogan_fast.reused_forward_updates`, which
        computes the same with one G forward less (tests/test_cogan_fast.py)."""
        fakes = fakes or (lambda z: self.generator(z, training=True))
        with tf.GradientTape() as tape:
            fake1, fake2 = fakes(z)
            d_out = self.d_losses(x1, x2, fake1, fake2, training=True)
        apply_gradients(self.d_opt, tape, d_out["d_loss"], self.d_vars)  # G is not updated here
        for _ in range(self.model_cfg.g_updates_per_step):
            with tf.GradientTape() as tape:
                fake1, fake2 = fakes(z)
                g_out = self.g_losses(fake1, fake2, training=True)
            apply_gradients(self.g_opt, tape, g_out["g_loss"], self.g_vars)  # D is not updated here
        return {**d_out, **g_out}

    # --- outputs -----------------------------------------------------------------------------------
    def sample_images(self):
        """The first batch of the (shuffled) data: the original's fixed ``sample_images``."""
        if self._sample_images is None:
            arrays = self.training_arrays()
            ds = data.make_dataset(arrays, min(SAMPLE_BATCH, min(len(a) for a in arrays)),
                                   seeds=self.shuffle_seeds(), prefetch=False)
            x1, x2 = next(iter(ds))
            self._sample_images = (tf.cast(x1, tf.float32) / self.pixel_scale,
                                   tf.cast(x2, tf.float32) / self.pixel_scale)
        return self._sample_images

    def generate(self, z) -> Dict[str, np.ndarray]:
        top, bot = self.generator(tf.convert_to_tensor(z), training=False)
        return {"top": top.numpy(), "bot": bot.numpy()}

    def write_grids(self, out_dir: str, stem: str, z) -> Dict[str, str]:
        out = self.generate(z)
        # Q3: the original's grids are min-max stretched per grid, RGB with three equal channels.
        return {k: images.save_grid(os.path.join(out_dir, k, f"{stem}.png"), out[k],
                                    scaling=self.train_cfg.grid_scaling, rgb=True) for k in ("top", "bot")}

    def sample(self, loop: Loop, epoch: int, idx: int):
        log = loop.log
        paths = self.write_grids(self.train_cfg.sample_dir, f"train_{epoch:02d}_{idx:04d}", self.sample_z)
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
                for name, values in self.d_outputs(x1, x2, fake1, fake2).items():
                    tf.summary.histogram(name, values)
                tf.summary.image("G1", fake1, max_outputs=8)
                tf.summary.image("G2", fake2, max_outputs=8)
        return paths

    def d_outputs(self, x1, x2, fake1, fake2) -> Dict[str, tf.Tensor]:
        """D's verdicts on real and fake batches for TensorBoard's histograms. The original's show its "D",
        which Q1 makes h3 itself; corrected: sigmoid(h3)."""
        out = {}
        for name, x, domain in (("d1", x1, 1), ("d1_", fake1, 1), ("d2", x2, 2), ("d2_", fake2, 2)):
            h3 = self.discriminator.logits(x, domain)
            out[name] = tf.sigmoid(h3) if self.model_cfg.loss_on_logits else h3
        return out

    def write_report(self, loop: Loop, n_grids: int = 4):
        """Grids of the fixed sample z (test_00) and of further seeded z batches, in evaluate/top|bot."""
        log = loop.log
        rng = np.random.default_rng([self.seed, 2])
        for i in range(n_grids):
            z = self.sample_z if i == 0 else self.sample_noise(rng, len(self.sample_z))
            paths = self.write_grids(self.train_cfg.evaluate_dir, f"test_{i:02d}", z)
            log(f" [*] wrote {paths['top']} and {paths['bot']}")

    def export(self, export_dir: str) -> str:
        return export_cogan(self.generator, self.model_cfg.z_dim, os.path.join(export_dir, self.name),
                            pair=self.model_cfg.pair, about=self.export_about())
