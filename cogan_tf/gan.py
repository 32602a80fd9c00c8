"""The GAN base class every model subclasses, the run state its hooks see, and the tf.distribute
and optimizer helpers the models' steps share.

What differs between the models lives in a :class:`GAN` subclass (its networks, its step, its grids);
the loop that drives them is :mod:`cogan_tf.train`. Step counting follows the original CoGAN: a
counter starts at 1 and grows by one per step; grids are written when ``counter % sample_every == 1``
and checkpoints saved when ``counter % save_every == 2`` (and at the end), named ``<prefix>-<counter>``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import keras

from cogan_tf import config as config_lib, device, multiworker, precision, record as record_lib
from cogan_tf.adam import make_adam
from cogan_tf.errors import UsageError


class GAN:
    """What a model brings to the loop. Subclasses set the class attributes and implement the hooks."""

    name = "gan"
    checkpoint_prefix = "GAN.model"
    reshuffle_each_epoch = True  # the PyTorch DataLoader's shuffle=True; the original CoGAN: False

    def __init__(self, model_cfg, train_cfg: config_lib.TrainConfig, strategy=None):
        self.model_cfg = model_cfg
        self.train_cfg = train_cfg
        self.seed = train_cfg.seed if train_cfg.seed is not None else 0
        # Networks and optimizers are built under this strategy's scope (default: one device).
        self.strategy = strategy or tf.distribute.get_strategy()
        # --jit_compile under a tf.distribute strategy: XLA compiles the function each replica runs
        # (run_replicas), not the step around it, whose reductions across devices XLA cannot take
        # (TensorFlow supports XLA inside strategy.run with several replicas only when they are all GPUs).
        self.replica_xla = bool(train_cfg.jit_compile) and strategy is not None
        if self.replica_xla and self.strategy.num_replicas_in_sync > 1 and device.kind(self.strategy) != "gpu":
            names = ", ".join(device.strategy_devices(self.strategy))
            raise UsageError(f"--jit_compile with --strategy {train_cfg.strategy}: TensorFlow compiles a step across "
                             f"{self.strategy.num_replicas_in_sync} replicas with XLA only when all are GPUs (here "
                             f"{names}); drop --jit_compile, or train on GPUs")
        self._replica_fns: Dict[str, object] = {}
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

    def use_device_levers(self, device_kind: str) -> None:
        """Set the speed levers that pay on one device only for ``device_kind`` ("cpu" or "gpu";
        :mod:`cogan_tf.levers`). Called after ``build``."""

    def select(self, loop: "Loop", path: str) -> Optional["Selection"]:
        """After checkpoint ``path`` is written: whether the run keeps it as its best by a validation score
        (the ClusterGAN's ``--val_size``), which the loop then writes (:func:`cogan_tf.checkpoints.keep_best`);
        None (the default): no selection."""
        return None

    def restore_best(self, loop: "Loop", log=print) -> Optional[dict]:
        """For evaluation, after the loop restored the latest checkpoint: load the one the run kept by
        validation instead, if the model selects one (:func:`cogan_tf.checkpoints.restore_best`)."""
        return None

    def export(self, export_dir: str) -> str:
        """Write the generator(s) as a SavedModel under export_dir/<name>; returns the path."""
        raise NotImplementedError

    def export_about(self) -> Dict[str, str]:
        """What an export records beside the model (:func:`cogan_tf.outputs.export_marker`): the dataset it
        was trained on and the run's checkpoint folder."""
        return {"dataset": self.train_cfg.dataset,
                "run": os.path.abspath(os.path.join(self.train_cfg.checkpoint_dir, self.checkpoint_subdir()))}

    def write_report(self, loop: "Loop") -> None:
        """``--is_train False``: write evaluation grids (and reports) from the restored model."""
        raise NotImplementedError

    # --- shared helpers ----------------------------------------------------------------------------
    def compiled_step(self, step=None):
        """The loop's step: ``step`` (default ``train_step``) as a tf.function, compiled whole by XLA with
        ``--jit_compile`` on one device; under tf.distribute XLA compiles each replica's function instead
        (:meth:`run_replicas`)."""
        return tf.function(step or self.train_step,
                           jit_compile=bool(self.train_cfg.jit_compile) and not self.replica_xla)

    def run_replicas(self, fn, *args) -> Dict[str, tf.Tensor]:
        """``fn(*args)`` on every replica (each its share of the batch; on one device, a plain call), its
        dict of losses averaged over the replicas (each a mean over its share: together the global
        batch's mean). With XLA under tf.distribute, ``fn`` is compiled per replica."""
        if self.replica_xla:
            key = getattr(fn, "__name__", repr(fn))
            fn = self._replica_fns.setdefault(key, tf.function(fn, jit_compile=True))
        if self.strategy.num_replicas_in_sync == 1:
            return self.strategy.run(fn, args=args)
        moving = self._moving_statistics()
        out, stats = self.strategy.run(self._with_moving_statistics(fn, moving), args=args)
        mean = partial(self.strategy.reduce, tf.distribute.ReduceOp.MEAN, axis=None)
        set_to_mean(moving, mean(stats))
        return {k: mean(v) for k, v in out.items()}

    def _moving_statistics(self) -> List[tf.Variable]:
        """The networks' BatchNorm moving averages that each replica updates from its own share of the batch
        (synchronized BatchNorm's agree on every replica already)."""
        return [v for m in self.trackables().values() if isinstance(m, keras.Model) for layer in m._flatten_layers()
                if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized
                for v in (layer.moving_mean, layer.moving_variance)]

    @staticmethod
    def _with_moving_statistics(fn, moving):
        """``fn`` returning also this replica's values of ``moving``, flattened into one vector."""
        def replica_fn(*args):
            out = fn(*args)
            return out, tf.concat([tf.reshape(tf.cast(v, tf.float32), [-1]) for v in moving] or [tf.zeros([0])], 0)

        replica_fn.__name__ = getattr(fn, "__name__", "replica_fn")
        return replica_fn

    def checkpoint_subdir(self) -> str:
        cfg = self.train_cfg
        return record_lib.checkpoint_subdir(self.name, cfg.dataset, cfg.batch_size,
                                            getattr(self.model_cfg, "output_size", 28))

    def make_optimizer(self, learning_rate: float, beta1: float, beta2: float, **kwargs):
        """Adam with TF1's epsilon 1e-8 (Keras's default is 1e-7) in the run's arithmetic (``--adam``,
        :mod:`cogan_tf.adam`); under ``mixed_float16`` behind a
        dynamic LossScaleOptimizer. Called from ``build``, which :func:`build_gan` runs under the
        run's dtype policy: a GAN asking for mixed precision built outside it is refused here, rather
        than trained as float32 layers behind a loss scale."""
        want = precision.policy_name(getattr(self.train_cfg, "mixed_precision", None))
        if want != "float32" and keras.config.dtype_policy().name != want:
            raise RuntimeError(f"{self.name} with mixed_precision={want!r} must be built under that dtype "
                               f"policy: build it with cogan_tf.gan.build_gan(gan)")
        adam = make_adam(self.train_cfg.adam, learning_rate=learning_rate, beta_1=beta1, beta_2=beta2,
                         epsilon=1e-8, **kwargs)
        return precision.wrap_optimizer(adam)


def make_strategy(name: str, devices=None, multiworker_options=None):
    """``default`` (one device), ``mirrored`` (the GPUs of one machine, or ``devices``) or
    ``multiworker`` (machines described by TF_CONFIG): TensorFlow's own distribution engine."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return multiworker.make_strategy(**(multiworker_options or {}))
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


def global_batch(x, cfg: config_lib.TrainConfig):
    """The global batch size of a step's input ``x``: ``cfg.batch_size`` when ``x`` is split across
    replicas, else ``x``'s own (a Python int when the graph knows it, so draws for the batch have a
    static shape)."""
    if isinstance(x, tf.distribute.DistributedValues):
        return cfg.batch_size
    return x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]


def set_to_mean(variables, flat_mean) -> None:
    """After a step on several replicas: each BatchNorm moving average in ``variables`` (updated by every
    replica from the statistics of its own share) set, on every replica, to the replicas' mean
    ``flat_mean`` (all of them flattened into one vector: one all-reduce). Without it each replica's copy
    drifts its own way, and a checkpoint keeps the first replica's."""
    start = 0
    for v in variables:
        size = int(np.prod(v.shape))
        v.assign(tf.cast(tf.reshape(flat_mean[start:start + size], v.shape), v.dtype))
        start += size


def apply_gradients(optimizer, tape: tf.GradientTape, loss, variables, adjust=None) -> None:
    """One optimizer update of ``variables`` on ``loss``. Variables the loss does not reach (CoGAN's
    dead h0) get no gradient and are left out, as TF1's ``minimize`` left them untouched.

    Under tf.distribute the optimizer sums the replicas' gradients, so each replica's gradient (of a
    mean over its share of the batch) is divided by the number of replicas: the sum is then the
    gradient of the mean over the global batch, as on one device.

    A LossScaleOptimizer (``--mixed_precision``, float16) gets the gradient of its scaled loss; its
    ``apply_gradients`` unscales it, or skips the update and halves the scale if it is not finite.
    ``adjust(grads) -> grads`` is applied to this replica's gradients before they are divided."""
    n = replicas_in_sync()
    grads = precision.gradients(optimizer, tape, loss, variables)  # of scale * loss under loss scaling
    if adjust is not None:
        grads = adjust(grads)  # e.g. a coupled weight decay: per replica, so that the sum holds it once
    if n > 1 and precision.loss_scaled(optimizer):
        grads = precision.agree_on_finite(grads)  # one replica's overflow skips the step on all
    pairs = [(g if n == 1 else g / n, v) for g, v in zip(grads, variables) if g is not None]
    optimizer.apply_gradients(pairs)


@dataclasses.dataclass(frozen=True)
class Selection:
    """A model's verdict on a checkpoint just written (:meth:`GAN.select`): ``record``, what the run's
    ``best/best.json`` is to hold (every validation so far, and the best); ``keep``, this checkpoint is the
    new best and is copied to ``best/``; ``replaced``, the copy of the earlier best it replaces (relative to
    the run's folder); ``line``, what to log."""

    record: dict
    keep: bool
    replaced: Optional[str]
    line: str


class Loop:
    """The run's state, shared by the loop and a model's hooks: its checkpoint directory, TensorBoard
    writer, step counter (checkpointed), epoch geometry and training arrays."""

    def __init__(self, gan: GAN, cfg: config_lib.TrainConfig, log=print):
        self.gan = gan
        self.train_cfg = cfg
        self.log = log  # where hooks print their lines (the original's stdout)
        self.ckpt_dir = os.path.join(cfg.checkpoint_dir, gan.checkpoint_subdir())
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        # JSON {"epoch": e, "losses": {name: [value per step]}}: the current epoch's losses at the last
        # checkpoint, so a resumed epoch's mean covers all its steps.
        self.epoch_losses = tf.Variable("", dtype=tf.string, trainable=False, name="epoch_losses")
        self.writer = None
        self.restored: Optional[str] = None  # the checkpoint restored at the start (None: a new run)
        self.steps_per_epoch = 0
        self.arrays: List[np.ndarray] = []

    @property
    def counter(self) -> int:
        """The original's counter: 1 before the first step, +1 per step."""
        return int(self.step.numpy()) + 1

    def record_epoch_losses(self, epoch_losses: Dict[str, List[float]]) -> None:
        """Store the losses of the epoch the latest step belongs to, for the next checkpoint."""
        epoch = (int(self.step.numpy()) - 1) // max(self.steps_per_epoch, 1)
        self.epoch_losses.assign(json.dumps({"epoch": epoch, "losses": epoch_losses}))

    def restored_epoch_losses(self, step: int) -> Tuple[Dict[str, List[float]], Optional[int]]:
        """(the current epoch's losses before ``step``, from the checkpoint; the epoch whose end-of-epoch
        work is still to do, or None). The latter when a run stopped in an epoch's last step before that work."""
        raw = self.epoch_losses.numpy().decode()
        if not raw or not step:
            return {}, None
        saved = json.loads(raw)
        epoch, losses = saved["epoch"], saved["losses"]
        spe = self.steps_per_epoch
        if step % spe:
            return (losses if epoch == step // spe else {}), None
        return ({}, None) if not losses or epoch != step // spe - 1 else (losses, epoch)

    def scalar_summaries(self, values: Dict[str, float], step: int) -> None:
        if self.writer is None:
            return
        with self.writer.as_default(step=step):
            for k, v in values.items():
                tf.summary.scalar(k, v)


def build_gan(gan: GAN) -> None:
    """``gan.build()`` under its strategy's scope and its precision's dtype policy (the previous global
    policy is restored afterwards), with the speed levers of the device it trains on (:mod:`cogan_tf.levers`)."""
    with gan.strategy.scope(), precision.policy_scope(getattr(gan.train_cfg, "mixed_precision", None)):
        gan.build()
    gan.use_device_levers(device.kind(gan.strategy))
