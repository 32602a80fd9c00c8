"""ClusterGAN (JasonFengGit's Generative-Adversarial-Networks, docs/ORIGINAL.md §3) on the shared loop: a
GAN whose latent is z_n ~ N(0, sigma^2) (``z_dim``, 30) plus a one-hot class code z_c (10 classes), with an
encoder trained to recover both from the generated image; its class logits then cluster real images.

Two recipes (config.CLUSTERGAN_RECIPES): the original's networks and BCE GAN with one G+E update per 5 D
updates, and ``--recipe paper``, the ClusterGAN paper authors' networks and WGAN-GP critic
(docs/ORIGINAL.md §4). Where the port follows their code and where it differs, and why:
docs/PORTS.md, "Faithful to the originals' code, and where it differs". The networks are in
:mod:`cogan_tf.clustergan_networks`, the losses in :mod:`cogan_tf.losses`.
"""

from __future__ import annotations

import json
import os
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from cogan_tf import data, fileio, images, levers
from cogan_tf.export import export_clustergan
from cogan_tf import clustering
from cogan_tf.config import CLUSTERGAN_CRITICS, ClusterGanConfig, TrainConfig
from cogan_tf.precision import loss_scale
from cogan_tf.errors import UsageError
from cogan_tf.clustergan_networks import ClusterDiscriminator, ClusterEncoder, ClusterGenerator, Dense
from cogan_tf.losses import (coupled_weight_decay, critic_loss, discriminator_loss, generator_encoder_loss,
                             gradient_penalty)
from cogan_tf.data import IMAGE_SHAPE, check_image_arrays
from cogan_tf.history import EpochHistory, finish_outputs
from cogan_tf.checkpoints import BEST_DIR, best_record, restore_best
from cogan_tf.gan import GAN, Loop, Selection, apply_gradients, global_batch, replica_share

EVAL_SAMPLES = 100  # the original's per-epoch encoder check: 100 fresh samples
ENCODE_BATCH = 500
CRITICS = CLUSTERGAN_CRITICS
GP_EPS = ("per_sample", "per_batch")
BEST_BY = "kmeans_purity"  # the paper's model selection: its "ACC" on the validation split


GE_KEYS = ("ge_loss", "ge_adv_loss", "zn_loss", "zc_loss")


def batch_size(x):
    """The batch size of ``x``: a Python int when the graph knows it (the loop's batches always have
    it), so that everything drawn for the batch has a static shape; else a scalar tensor."""
    return x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]


# --- the model on the loop ---------------------------------------------------------------------------

class ClusterGAN(GAN):
    name = "clustergan"
    checkpoint_prefix = "ClusterGAN.model"
    reshuffle_each_epoch = True  # the PyTorch DataLoader's shuffle=True

    def __init__(self, model_cfg: ClusterGanConfig, train_cfg: TrainConfig, arrays=None, strategy=None):
        super().__init__(model_cfg, train_cfg, strategy=strategy)
        if model_cfg.critic not in CRITICS:
            raise ValueError(f"ClusterGanConfig.critic={model_cfg.critic!r}: choose one of {', '.join(CRITICS)}")
        if model_cfg.gp_eps not in GP_EPS:
            raise ValueError(f"ClusterGanConfig.gp_eps={model_cfg.gp_eps!r}: choose one of {', '.join(GP_EPS)}")
        self._arrays = None if arrays is None else check_image_arrays(arrays, "ClusterGAN")
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
        cfg, m = self.train_cfg, self.model_cfg
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

    def use_device_levers(self, device_kind: str) -> None:
        for model in (self.generator, self.discriminator, self.encoder):
            for layer in model._flatten_layers():
                if isinstance(layer, Dense):  # the paper networks' (JasonFengGit's use Keras's own)
                    layer.written_gradient = levers.on("dense_bmm_gradient", device_kind)

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
        x, y = data.load_split(self.train_cfg.data_dir, self.train_cfg.dataset, "train")
        if self.train_cfg.val_size:
            if self.train_cfg.val_size < self.model_cfg.n_classes:  # the validation K-means makes n_classes clusters
                raise UsageError(f"--val_size={self.train_cfg.val_size}: the validation clustering needs at least "
                                 f"{self.model_cfg.n_classes} images, one per cluster")
            if self.train_cfg.val_size > len(x) - self.train_cfg.batch_size:
                raise UsageError(f"--val_size={self.train_cfg.val_size}: leaves fewer than one batch of the {len(x)} "
                                 f"{self.train_cfg.dataset} training images to train on")
            train_idx, val_idx = data.holdout_split(len(x), self.train_cfg.val_size, self.seed)
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
        """One G+E update on this replica's share of the latent drawn for the global batch (all of it on
        one device); returns its losses."""
        m = self.model_cfg
        z, z_n, classes = replica_share(z), replica_share(z_n), replica_share(classes)
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            zn_hat, class_logits = self.encoder(fake, training=True)
            out = generator_encoder_loss(self.discriminator.logits(fake, training=True), zn_hat, z_n,
                                         class_logits, classes, m.betan, m.betac, critic=m.critic)
        # The weight decay is added to each replica's gradient (of scale * loss if loss-scaled) before the
        # division by the replicas: their sum then holds it once.
        apply_gradients(self.ge_opt, tape, out["ge_loss"], self.ge_vars, adjust=lambda grads: coupled_weight_decay(
            grads, self.ge_vars, m.weight_decay, scale=loss_scale(self.ge_opt)))
        return out

    def ge_step(self, z, z_n, classes) -> Dict[str, tf.Tensor]:
        """:meth:`ge_update` on every replica; its losses (the replicas' mean) kept in ``last_ge``."""
        out = self.run_replicas(self.ge_update, z, z_n, classes)
        for k in GE_KEYS:
            self.last_ge[k].assign(out[k])
        return out

    def held_ge(self) -> Dict[str, tf.Tensor]:
        return {k: self.last_ge[k].read_value() for k in GE_KEYS}

    def train_step(self, x):
        """One batch: the G+E update when D's update count is a multiple of ``g_every`` (5), then the
        D update, both on the batch's one draw of (z_n, z_c). ``--recipe paper``: :meth:`critic_step`.
        Under tf.distribute the latent is drawn for the global batch and each replica takes its share."""
        m = self.model_cfg
        if m.critic == "wgan_gp":
            return self.critic_step(x)
        z_n, z_c, classes = self.sample_latent(global_batch(x, self.train_cfg))
        z = tf.concat([z_n, z_c], axis=1)
        do_ge = tf.equal(self.d_opt.iterations % m.g_every, 0)
        ge = tf.cond(do_ge, lambda: self.ge_step(z, z_n, classes), self.held_ge)
        return {**self.run_replicas(self.d_update, x, z), **ge}

    def d_update(self, x, z) -> Dict[str, tf.Tensor]:
        """The original recipe's D update on this replica's share: G's fake batch recomputed after the
        G+E update, as the original."""
        x = tf.cast(x, tf.float32) / 255.0  # ToTensor: [0, 1]
        fake = self.generator(replica_share(z), training=True)
        with tf.GradientTape() as tape:
            d_out = discriminator_loss(self.discriminator.logits(x, training=True),
                                       self.discriminator.logits(fake, training=True))
        apply_gradients(self.d_opt, tape, d_out["d_loss"], self.d_vars)
        return d_out

    def critic_step(self, x):
        """``--recipe paper``: one WGAN-GP critic update on this batch with its own z; after every
        ``g_every``-th critic update (D's update count) one G+E update on a fresh z. A loop step is
        one critic update, so the 5 critic updates of each G+E update see 5 different batches and a
        checkpoint's step and D's update count say exactly where in the 5 the run stands."""
        d_out = self.critic_update(x)
        n = global_batch(x, self.train_cfg)
        ge_out = tf.cond(tf.equal(self.d_opt.iterations % self.model_cfg.g_every, 0),
                         lambda: self.fresh_ge_update(n), self.held_ge)
        return {**d_out, **ge_out}

    def critic_update(self, x) -> Dict[str, tf.Tensor]:
        """The critic half of :meth:`critic_step`: z and the penalty's e for this batch, G's fake batch,
        and one update of D on the Wasserstein loss plus the gradient penalty; returns the critic's losses."""
        n = global_batch(x, self.train_cfg)
        z_n, z_c, _ = self.sample_latent(n)
        return self.run_replicas(self.critic_replica_update, x, tf.concat([z_n, z_c], axis=1), self.draw_eps(n))

    def critic_replica_update(self, x, z, eps) -> Dict[str, tf.Tensor]:
        m = self.model_cfg
        x = tf.cast(x, tf.float32) / 255.0
        fake = self.generator(replica_share(z), training=True)  # the authors' G is never in eval mode
        eps = eps if self.model_cfg.gp_eps == "per_batch" else replica_share(eps)
        with tf.GradientTape() as tape:
            d_out = critic_loss(self.discriminator.logits(x, training=True),
                                self.discriminator.logits(fake, training=True),
                                self.penalty(lambda v: self.discriminator.logits(v, training=True), x, fake, eps)[0],
                                m.gp_lambda)
        apply_gradients(self.d_opt, tape, d_out["d_loss"], self.d_vars)
        return d_out

    def fresh_ge_update(self, n) -> Dict[str, tf.Tensor]:
        """The G+E half of :meth:`critic_step`: one G+E update on a z of its own (not the critic's),
        ``n`` images."""
        z_n, z_c, classes = self.sample_latent(n)
        return self.ge_step(tf.concat([z_n, z_c], axis=1), z_n, classes)

    def draw_eps(self, n):
        """The gradient penalty's interpolation weight(s) e ~ U(0, 1) from the run's RNG: one scalar for the
        batch (``gp_eps="per_batch"``, the authors') or one per sample."""
        return self.rng.uniform([] if self.model_cfg.gp_eps == "per_batch" else [n, 1, 1, 1])

    def penalty(self, critic, x, fake, eps=None):
        """(gradient penalty of ``critic`` at x_hat = e x + (1 - e) fake, e); e drawn by :meth:`draw_eps`
        unless given."""
        eps = self.draw_eps(batch_size(x)) if eps is None else eps
        return gradient_penalty(critic, x, fake, eps), eps

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
        """Images in [0, 1] from z_n and integer classes, G in inference mode (the original's
        ``generator.eval()``: BatchNorm moving averages; the paper's networks: this batch's statistics)."""
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

    def end_of_epoch(self, loop: Loop, epoch: int, mean_losses: Dict[str, float]):
        """Mean G+E and D losses, the encoder check, and every 10th epoch (0, 10, ...) a 10x10 grid of
        the class-ordered display noise, ``img_<epoch>.png``."""
        out = self.out_dir(self.train_cfg.sample_dir)
        values = {k: mean_losses[k] for k in ("ge_loss", "d_loss", "zn_loss", "zc_loss")}
        values.update(self.encoder_check(epoch))
        every = self.train_cfg.sample_every_epochs
        if every and epoch % every == 0:
            name = f"img_{epoch}.png"
            self.write_grid(os.path.join(out, name))
            values["grid"] = name
        EpochHistory(out).record(epoch, values)
        loop.scalar_summaries({f"epoch/{k}": v for k, v in values.items() if k != "grid"},
                              int(loop.step.numpy()))
        loop.log(f"epoch {epoch}: epoch_ge_loss: {values['ge_loss']:.5f}, epoch_d_loss: {values['d_loss']:.5f}, "
                 f"enc_mse_loss: {values['enc_mse_loss']:.5f}, enc_ce_loss: {values['enc_ce_loss']:.5f}"
                 + (f" [{values['grid']}]" if "grid" in values else ""))

    def end_of_training(self, loop: Loop):
        """The GIF of the epoch grids and the original's three plots: loss.png (G+E and D),
        enc_mse_loss.png and enc_cross_entropy_loss.png."""
        n_epochs = int(loop.step.numpy()) // max(loop.steps_per_epoch, 1)
        plots = {
            "loss.png": {"Generator-Encoder loss": "ge_loss", "Discriminator loss": "d_loss"},
            "enc_mse_loss.png": {"enc_mse_loss": "enc_mse_loss"},
            "enc_cross_entropy_loss.png": {"enc_cross_entropy_loss": "enc_ce_loss"},
        }
        for p in finish_outputs(EpochHistory(self.out_dir(self.train_cfg.sample_dir)), n_epochs, plots,
                                log=loop.log).values():
            loop.log(f" [*] wrote {p}")

    def kmeans_on_zn(self) -> bool:
        """K-means clusters [z_n, softmax], or the softmax alone when beta_n is 0 (z_n is then not
        trained: the authors' Fashion-MNIST setting, whose code makes the same choice)."""
        return self.model_cfg.betan != 0

    def cluster_report(self, x, labels) -> dict:
        """Both protocols on ``x`` against ``labels`` (:func:`clustering.encoder_clustering`): ACC / purity /
        NMI / ARI of the encoder's argmax, and of K-means (seeded) on the encoded [z_n, softmax]
        (``kmeans_*``; the paper's ACC is ``kmeans_purity``; the softmax alone if not
        :meth:`kmeans_on_zn`); cluster sizes, the argmax's best cluster -> label map."""
        z_n, probs = self.encode(x)
        labels = np.asarray(labels).astype(np.int64)
        report = clustering.encoder_clustering(labels, z_n, probs, seed=self.seed, kmeans_on_zn=self.kmeans_on_zn())
        report.update({
            "n": int(len(labels)),
            "cluster_to_label": {str(k): v for k, v in
                                 clustering.cluster_mapping(labels, np.argmax(probs, axis=1)).items()},
        })
        return report

    # --- model selection on the validation split (--val_size) ---------------------------------------
    def select(self, loop: Loop, path: str) -> Optional[Selection]:
        """With ``val_size``: score the validation split (both protocols); the checkpoint is the new best
        when its K-means purity (the paper's ACC) beats the best so far. The record (``best.json``) holds
        its step, G iterations and scores, and every validation score of the run so far; the loop writes
        it and the checkpoint's copy (:func:`cogan_tf.checkpoints.keep_best`)."""
        if not self.train_cfg.val_size:
            return None
        x, y = self.validation_set()
        rep = self.cluster_report(x, y)
        step = int(loop.step.numpy())
        entry = {"step": step, "g_iterations": self.g_iterations(), "checkpoint": os.path.basename(path),
                 **{k: rep[k] for k in ("acc", "purity", "nmi", "ari", "kmeans_acc", "kmeans_purity",
                                        "kmeans_nmi", "kmeans_ari")}}
        record = best_record(loop.ckpt_dir) or {"selected_by": BEST_BY, "val_size": self.train_cfg.val_size,
                                                "history": []}
        # Keyed by step: a run resumed from an older checkpoint replaces what it re-measures.
        record["history"] = sorted([h for h in record["history"] if h["step"] != step] + [entry],
                                   key=lambda h: h["step"])
        best = record.get("best")
        is_best = best is None or entry[BEST_BY] > best[BEST_BY] or best["step"] == step
        if is_best:
            record["best"] = {**entry, "checkpoint": os.path.join(BEST_DIR, os.path.basename(path))}
        replaced = best["checkpoint"] if is_best and best is not None and \
            best["checkpoint"] != record["best"]["checkpoint"] else None
        b = record["best"]
        line = (f" [*] validation ({len(y)} held-out images) at step {step}, G iters {entry['g_iterations']}: "
                f"ACC {entry['acc']:.4f}, K-means purity {entry['kmeans_purity']:.4f}; best: step {b['step']} "
                f"(K-means purity {b['kmeans_purity']:.4f})" + (" [kept]" if is_best else ""))
        return Selection(record, is_best, replaced, line)

    def restore_best(self, loop: Loop, log=print) -> dict:
        """After the loop restored the latest checkpoint: load the best one by validation score instead,
        if the run keeps one (the paper's model selection; :func:`cogan_tf.checkpoints.restore_best`).
        Returns which checkpoint the model now holds, also kept as ``restored_from`` for reports."""
        latest_step = int(loop.step.numpy())
        self.restored_from = {"path": loop.restored, "step": latest_step, "kept_by": "latest"}
        kept = restore_best(loop, self, log)
        if kept is None:
            return self.restored_from
        record, path = kept
        b = record["best"]
        self.restored_from = {"path": path, "step": b["step"], "g_iterations": b["g_iterations"],
                              "kept_by": f"best validation {record['selected_by']} ({record['val_size']} images)",
                              "validation": {k: v for k, v in b.items() if k not in ("checkpoint", "step")},
                              "latest_step": latest_step}
        log(f" [*] evaluating the best checkpoint by validation K-means purity: {path} (step {b['step']}, "
            f"G iters {b['g_iterations']}, validation K-means purity {b['kmeans_purity']:.4f}, ACC "
            f"{b['acc']:.4f}); the latest is step {latest_step}")
        return self.restored_from

    def write_report(self, loop: Loop):
        """``--is_train False``: cluster the test set with the encoder of the best checkpoint by
        validation score if the run kept one (``--val_size``), else of the latest; print both
        protocols' scores and write them to ``<evaluate_dir>/clustergan_clustering.json`` (with the
        checkpoint used); a class-ordered grid in ``<evaluate_dir>/clustergan/test_00.png``."""
        cfg = self.train_cfg
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
        return export_clustergan(self.generator, self.encoder, self.model_cfg, os.path.join(export_dir, self.name),
                                 self.export_about())
