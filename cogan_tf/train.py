"""The one training loop of all three GANs: data order, compiled steps, per-step log line, sample
grids, TensorBoard, checkpoints with exact resume, and SavedModel export.

What differs between the models lives in a :class:`GAN` subclass (its networks, its step, its grids);
everything here is shared. Step counting follows the original CoGAN: a counter starts at 1 and grows
by one per step; grids are written when ``counter % sample_every == 1`` and checkpoints saved when
``counter % save_every == 2`` (and at the end), named ``<prefix>-<counter>``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import keras

from cogan_tf import config as config_lib
from cogan_tf import data, precision
from cogan_tf.cli import UsageError


class GAN:
    """What a model brings to the loop. Subclasses set the class attributes and implement the hooks."""

    name = "gan"
    checkpoint_prefix = "GAN.model"
    reshuffle_each_epoch = True  # the PyTorch DataLoader's shuffle=True; the original CoGAN: False

    def __init__(self, model_cfg, train_cfg: config_lib.TrainConfig, strategy=None):
        self.model_cfg = model_cfg
        self.cfg = train_cfg
        self.seed = train_cfg.seed if train_cfg.seed is not None else 0
        # Networks and optimizers are built under this strategy's scope (default: one device).
        self.strategy = strategy or tf.distribute.get_strategy()
        # z and any other randomness inside the compiled step: a seeded, checkpointed generator. It is
        # created outside the strategy's scope and drawn from in cross-replica context, for the global
        # batch, so a distributed step sees exactly the z of a one-device step on the same batch.
        self.rng = tf.random.Generator.from_seed(self.seed)

    # --- hooks -------------------------------------------------------------------------------------
    def build(self) -> None:
        """Create networks and optimizers (variables included)."""
        raise NotImplementedError

    def trackables(self) -> Dict[str, object]:
        """Models and optimizers to checkpoint."""
        raise NotImplementedError

    def training_arrays(self) -> List[np.ndarray]:
        """The uint8 arrays batched together each step, in their unshuffled order."""
        raise NotImplementedError

    def shuffle_seeds(self) -> Sequence:
        """One shuffle seed per training array."""
        return [(self.seed, i) for i in range(len(self.training_arrays()))]

    def train_step(self, *batch) -> Dict[str, tf.Tensor]:
        """One training step on a batch of uint8 arrays; returns scalar losses. Compiled by the loop."""
        raise NotImplementedError

    def log_line(self, epoch: int, idx: int, steps_per_epoch: int, elapsed: float, losses: Dict[str, float]) -> str:
        return (f"Epoch: [{epoch:2d}] [{idx:4d}/{steps_per_epoch:4d}] time: {elapsed:4.4f}, "
                f"d_loss: {losses['d_loss']:.8f}, g_loss: {losses['g_loss']:.8f}")

    def sample(self, loop: "Loop", epoch: int, idx: int) -> None:
        """Write sample grids (called when counter % sample_every == 1)."""

    def end_of_epoch(self, loop: "Loop", epoch: int, mean_losses: Dict[str, float]) -> None:
        """Per-epoch work (the PyTorch originals' grids, GIFs and loss plots)."""

    def end_of_training(self, loop: "Loop") -> None:
        """Work after the last step, before the final checkpoint and export."""

    def export(self, export_dir: str) -> str:
        """Write the generator(s) as a SavedModel under export_dir/<name>; returns the path."""
        raise NotImplementedError

    def evaluate(self, loop: "Loop") -> None:
        """``--is_train False``: write evaluation grids (and reports) from the restored model."""
        raise NotImplementedError

    # --- shared helpers ----------------------------------------------------------------------------
    def checkpoint_subdir(self) -> str:
        cfg = self.cfg
        return config_lib.checkpoint_subdir(self.name, cfg.dataset, cfg.batch_size,
                                            getattr(self.model_cfg, "output_size", 28))

    def make_optimizer(self, learning_rate: float, beta1: float, beta2: float, **kwargs):
        """Adam with TF1's epsilon 1e-8 (Keras's default is 1e-7); under ``mixed_float16`` behind a
        dynamic LossScaleOptimizer. Called from ``build``, which :func:`build_gan` runs under the
        run's dtype policy: a GAN asking for mixed precision built outside it is refused here, rather
        than trained as float32 layers behind a loss scale."""
        want = precision.policy_name(getattr(self.cfg, "mixed_precision", None))
        if want != "float32" and keras.config.dtype_policy().name != want:
            raise RuntimeError(f"{self.name} with mixed_precision={want!r} must be built under that dtype "
                               f"policy: build it with cogan_tf.train.build_gan(gan)")
        adam = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta1, beta_2=beta2, epsilon=1e-8, **kwargs)
        return precision.wrap_optimizer(adam)


def make_strategy(name: str, devices=None):
    """``default`` (one device), ``mirrored`` (the GPUs of one machine, or ``devices``) or
    ``multiworker`` (machines described by TF_CONFIG): TensorFlow's own distribution engine."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UsageError(f"--strategy={name}: choose default, mirrored or multiworker")


def replica_share(global_tensor):
    """This replica's contiguous slice of a tensor drawn for the global batch (all of it on one device)."""
    ctx = tf.distribute.get_replica_context()
    n = ctx.num_replicas_in_sync
    if n == 1:
        return global_tensor
    per = tf.shape(global_tensor)[0] // n
    start = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * per
    return global_tensor[start:start + per]


def replicas_in_sync() -> int:
    ctx = tf.distribute.get_replica_context()
    return ctx.num_replicas_in_sync if ctx is not None else tf.distribute.get_strategy().num_replicas_in_sync


def apply_gradients(optimizer, tape: tf.GradientTape, loss, variables) -> None:
    """One optimizer update of ``variables`` on ``loss``. Variables the loss does not reach (CoGAN's
    dead h0) get no gradient and are left out, as TF1's ``minimize`` left them untouched.

    Under tf.distribute the optimizer sums the replicas' gradients, so each replica's gradient (of a
    mean over its share of the batch) is divided by the number of replicas: the sum is then the
    gradient of the mean over the global batch, as on one device.

    A LossScaleOptimizer (``--mixed_precision``, float16) gets the gradient of its scaled loss; its
    ``apply_gradients`` unscales it, or skips the update and halves the scale if it is not finite."""
    n = replicas_in_sync()
    grads = precision.gradients(optimizer, tape, loss, variables)  # of scale * loss under loss scaling
    if n > 1 and precision.loss_scaled(optimizer):
        grads = precision.agree_on_finite(grads)  # one replica's overflow skips the step on all
    pairs = [(g if n == 1 else g / n, v) for g, v in zip(grads, variables) if g is not None]
    optimizer.apply_gradients(pairs)


class Loop:
    """State shared by the loop and a model's hooks: directories, writer, step, epoch geometry."""

    def __init__(self, gan: GAN, cfg: config_lib.TrainConfig, log=print):
        self.gan = gan
        self.cfg = cfg
        self.log = log  # where hooks print their lines (the original's stdout)
        self.ckpt_dir = os.path.join(cfg.checkpoint_dir, gan.checkpoint_subdir())
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.writer = None
        self.steps_per_epoch = 0
        self.arrays: List[np.ndarray] = []

    @property
    def counter(self) -> int:
        """The original's counter: 1 before the first step, +1 per step."""
        return int(self.step.numpy()) + 1

    def scalar_summaries(self, values: Dict[str, float], step: int) -> None:
        if self.writer is None:
            return
        with self.writer.as_default(step=step):
            for k, v in values.items():
                tf.summary.scalar(k, v)


def _checkpoint(loop: Loop, gan: GAN, optimizers: bool = True) -> tf.train.Checkpoint:
    # Models, optimizers, the step counter (= data position: the order is a function of the seed) and
    # the RNG state, all in one checkpoint. Without ``optimizers``: what sampling and export read.
    objects = {k: v for k, v in gan.trackables().items()
               if optimizers or not isinstance(v, keras.optimizers.Optimizer)}
    return tf.train.Checkpoint(step=loop.step, rng=gan.rng, **objects)


def _precision_flags(policy: Optional[str]) -> str:
    """How main.py is told to train in ``policy`` (a TrainConfig.mixed_precision value)."""
    if policy is None:
        return "without --mixed_precision"
    dtype = {v: k for k, v in config_lib.MIXED_PRECISION.items()}.get(policy, policy)
    return f"with --mixed_precision --mixed_precision_dtype {dtype}"


def check_run_config(gan: GAN, loop: Loop, training: bool = True) -> None:
    """Refuse to resume a checkpoint with another architecture, seed or data setup, or (``training``)
    another precision: a float16 run's optimizers carry a loss scale, and switching the arithmetic
    midway would make the resumed run neither of the two. Evaluating a checkpoint in another
    precision is fine: the weights are float32 either way."""
    path = os.path.join(loop.ckpt_dir, "config.json")
    saved = config_lib.load_run_config(path)
    if saved is None or tf.train.latest_checkpoint(loop.ckpt_dir) is None:
        return
    mine = {
        "model": gan.name,
        "model_config": config_lib.model_config_to_dict(gan.model_cfg),
        "seed": gan.seed,
        "disjoint_domains": gan.cfg.disjoint_domains,
        "train_size": None if math.isinf(gan.cfg.train_size) else gan.cfg.train_size,
    }
    if isinstance(saved.get("model_config"), dict):
        # Fields added to a model config since the checkpoint was made take the value the code that
        # wrote it trained with (config.LEGACY_FIELD_VALUES), never silently today's default.
        saved = {**saved, "model_config": config_lib.complete_model_config_dict(gan.name, saved["model_config"])}
        theirs = saved["model_config"]
        diff = [k for k, v in mine["model_config"].items() if k in theirs and theirs[k] != v]
        if diff:
            said = ", ".join(f"{k}={theirs[k]!r} (here {mine['model_config'][k]!r}"
                             + (f", flag {config_lib.COGAN_FIELD_FLAGS[k]}" if k in config_lib.COGAN_FIELD_FLAGS
                                and gan.name == "cogan" else "") + ")" for k in diff)
            raise UsageError(f"{loop.ckpt_dir} holds a checkpoint trained with {said}: pass the flags it was "
                             f"trained with to resume it, or a fresh --checkpoint_dir")
    for key, value in mine.items():
        if key in saved and saved[key] != value:
            raise UsageError(
                f"{loop.ckpt_dir} holds a checkpoint made with {key}={saved[key]!r}, not {value!r}: "
                f"pass the same flags to resume it, or a fresh --checkpoint_dir")
    # Checkpoints from before --mixed_precision have no entry: they are float32.
    theirs, ours = saved.get("mixed_precision"), getattr(gan.cfg, "mixed_precision", None)
    if training and theirs != ours:
        raise UsageError(
            f"{loop.ckpt_dir} holds a checkpoint trained in {theirs or 'float32'}, not {ours or 'float32'}: "
            f"resume it {_precision_flags(theirs)}, or use a fresh --checkpoint_dir")


def resolve_seed(train_cfg: config_lib.TrainConfig, ckpt_dir: str) -> config_lib.TrainConfig:
    """No --seed: reuse the checkpoint's seed when resuming (the data order depends on it), else 0."""
    if train_cfg.seed is not None:
        return train_cfg
    saved = config_lib.load_run_config(os.path.join(ckpt_dir, "config.json"))
    seed = saved["seed"] if saved and saved.get("seed") is not None else 0
    return dataclasses.replace(train_cfg, seed=seed)


def resolve_model_config(model_cfg, ckpt_dir: str, inherit: Sequence[str] = ()):
    """Fields named in ``inherit`` (left unset on the command line) take the value of the checkpoint's
    config.json when there is one, as the seed does: a vanilla checkpoint trained at 1024 hidden units
    before 128 became the default resumes at 1024."""
    saved = config_lib.load_run_config(os.path.join(ckpt_dir, "config.json"))
    theirs = saved.get("model_config") if saved else None
    if not isinstance(theirs, dict) or tf.train.latest_checkpoint(ckpt_dir) is None:
        return model_cfg
    updates = {k: theirs[k] for k in inherit if k in theirs}
    return dataclasses.replace(model_cfg, **updates) if updates else model_cfg


def build_gan(gan: GAN) -> None:
    """``gan.build()`` under its strategy's scope and its precision's dtype policy (the previous global
    policy is restored afterwards)."""
    with gan.strategy.scope(), precision.policy_scope(getattr(gan.cfg, "mixed_precision", None)):
        gan.build()


def _prepare(gan: GAN, cfg: config_lib.TrainConfig, log=print, training: bool = True):
    keras.utils.set_random_seed(gan.seed)  # initial weights
    loop = Loop(gan, cfg, log)
    check_run_config(gan, loop, training=training)
    build_gan(gan)
    if getattr(cfg, "mixed_precision", None):
        log(f" [*] mixed precision: {cfg.mixed_precision} (float32 variables"
            + (", dynamic loss scaling)" if cfg.mixed_precision == "mixed_float16" else ")"))
    ckpt = _checkpoint(loop, gan)
    manager = tf.train.CheckpointManager(ckpt, loop.ckpt_dir, max_to_keep=5,
                                         checkpoint_name=gan.checkpoint_prefix)
    return loop, ckpt, manager


def fit(gan: GAN, log=print) -> Loop:
    """Train ``gan`` as configured, resuming from the latest checkpoint in its directory."""
    cfg = gan.cfg
    config_lib.check_output_dirs(gan.model_cfg, cfg, training=True)
    loop, ckpt, manager = _prepare(gan, cfg, log)
    loop.arrays = arrays = gan.training_arrays()
    n = min(len(a) for a in arrays)
    if not math.isinf(cfg.train_size):
        n = min(n, int(cfg.train_size))
    spe = loop.steps_per_epoch = n // cfg.batch_size
    if spe < 1:
        raise UsageError(f"--batch_size {cfg.batch_size} is larger than the {n} training images")
    arrays = [a[:n] for a in arrays]
    total = cfg.epoch * spe
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)

    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log(f" [*] Load SUCCESS: {manager.latest_checkpoint} (step {int(loop.step.numpy())})")
    else:
        log(" [!] Load failed... (no checkpoint yet, training from scratch)")
    config_lib.save_run_config(os.path.join(loop.ckpt_dir, "config.json"), gan.name, gan.model_cfg, cfg)

    loop.writer = tf.summary.create_file_writer(cfg.log_dir)
    step_fn = tf.function(gan.train_step, jit_compile=cfg.jit_compile)
    start = time.time()
    step = int(loop.step.numpy())
    epoch_losses: Dict[str, List[float]] = {}
    while step < total:
        epoch, first_idx = divmod(step, spe)
        ds = data.make_dataset(arrays, cfg.batch_size, seeds=gan.shuffle_seeds(),
                               epoch=epoch if gan.reshuffle_each_epoch else None, start_batch=first_idx)
        if gan.strategy.num_replicas_in_sync > 1:
            ds = gan.strategy.experimental_distribute_dataset(ds)  # the global batch split across replicas
        for idx, batch in enumerate(ds, start=first_idx):
            losses = {k: float(v) for k, v in step_fn(*batch).items()}
            step += 1
            loop.step.assign(step)
            counter = step + 1
            for k, v in losses.items():
                epoch_losses.setdefault(k, []).append(v)
            if cfg.log_every and (step % cfg.log_every == 0 or step == total):
                log(gan.log_line(epoch, idx, spe, time.time() - start, losses))
            loop.scalar_summaries(losses, step)
            if cfg.sample_every and counter % cfg.sample_every == 1:
                gan.sample(loop, epoch, idx)
            if cfg.save_every and counter % cfg.save_every == 2:
                manager.save(checkpoint_number=counter)
            if step >= total:
                break
        if idx == spe - 1:
            gan.end_of_epoch(loop, epoch, {k: float(np.mean(v)) for k, v in epoch_losses.items()})
            epoch_losses = {}
    gan.end_of_training(loop)
    if manager.latest_checkpoint != os.path.join(loop.ckpt_dir, f"{gan.checkpoint_prefix}-{step + 1}"):
        manager.save(checkpoint_number=step + 1)
    loop.writer.flush()
    path = gan.export(cfg.export_dir)
    log(f" [*] Exported SavedModel to {path}")
    return loop


def restore(gan: GAN, log=print) -> Loop:
    """Build ``gan`` and restore its latest checkpoint; a clear error when there is none."""
    loop, ckpt, manager = _prepare(gan, gan.cfg, log, training=False)
    if not manager.latest_checkpoint:
        raise UsageError(f"no checkpoint in {loop.ckpt_dir}: train first with `python main.py --is_train True"
                         f" --model {gan.name}` (or point --checkpoint_dir at one)")
    # Not the optimizers: evaluation does not use them, and a float16 run's (LossScaleOptimizer around
    # Adam) do not restore into another precision's plain Adam; the weights are float32 in every run.
    _checkpoint(loop, gan, optimizers=False).restore(manager.latest_checkpoint).expect_partial()
    log(f" [*] Load SUCCESS: {manager.latest_checkpoint} (step {int(loop.step.numpy())})")
    return loop


def evaluate(gan: GAN, log=print) -> Loop:
    """``--is_train False``: restore, write the model's evaluation outputs, export the SavedModel."""
    config_lib.check_output_dirs(gan.model_cfg, gan.cfg, training=False)
    loop = restore(gan, log)
    gan.evaluate(loop)
    path = gan.export(gan.cfg.export_dir)
    log(f" [*] Exported SavedModel to {path}")
    return loop
