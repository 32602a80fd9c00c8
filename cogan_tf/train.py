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
import re
import shutil
import signal
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import keras

from cogan_tf import config as config_lib
from cogan_tf import data, fileio, precision
from cogan_tf.errors import RunStopped, UsageError


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

    def checkpoint_saved(self, loop: "Loop", ckpt: tf.train.Checkpoint, path: str) -> None:
        """Called after each checkpoint ``path`` is written (the ClusterGAN's validation keeps its best)."""

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
    precision is fine: the weights are float32 either way. Evaluation checks the architecture only:
    seed, data setup and training settings never block it (runner.run evaluates with the
    architecture config.json records)."""
    path = os.path.join(loop.ckpt_dir, "config.json")
    saved = config_lib.load_run_config(path)
    if saved is None or not checkpoint_numbers(loop.ckpt_dir, gan.checkpoint_prefix):
        return
    mine = {
        "model": gan.name,
        "model_config": config_lib.model_config_to_dict(gan.model_cfg),
    }
    if training:
        mine.update({
            "seed": gan.seed,
            "disjoint_domains": gan.cfg.disjoint_domains,
            "train_size": None if math.isinf(gan.cfg.train_size) else gan.cfg.train_size,
            "val_size": gan.cfg.val_size,  # the held-out images are not trained on: another data order
        })
    if isinstance(saved.get("model_config"), dict):
        # Fields added to a model config since the checkpoint was made take the value the code that
        # wrote it trained with (config.LEGACY_FIELD_VALUES), never silently today's default.
        saved = {**saved, "model_config": config_lib.complete_model_config_dict(gan.name, saved["model_config"])}
        theirs = saved["model_config"]
        diff = [k for k, v in mine["model_config"].items() if k in theirs and theirs[k] != v]
        if diff:
            flag_of = config_lib.FIELD_FLAGS.get(gan.name, {})
            said = ", ".join(f"{k}={theirs[k]!r} (here {mine['model_config'][k]!r}"
                             + (f", flag {flag_of[k]}" if k in flag_of else "") + ")" for k in diff)
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


# --- checkpoints on disk: find, restore with fallback, save without debris -------------------------------

def checkpoint_numbers(ckpt_dir: str, prefix: Optional[str] = None) -> List[int]:
    """The N of every ``<prefix>-N`` checkpoint (any prefix if None) with a file (index or data) in
    ``ckpt_dir``, newest (largest) first. What is on disk, not what the ``checkpoint`` state file says."""
    if not os.path.isdir(ckpt_dir):
        return []
    pattern = re.compile((".+" if prefix is None else re.escape(prefix)) + r"-(\d+)\.(?:index|data-\d+-of-\d+)")
    found = {int(m.group(1)) for m in map(pattern.fullmatch, os.listdir(ckpt_dir)) if m}
    return sorted(found, reverse=True)


# One line of the text-format CheckpointState proto TensorFlow writes: `key: "string"` or `key: number`.
_STATE_LINE = re.compile(r'\s*\w+:\s*(?:"(?:[^"\\]|\\.)*"|[-+0-9.eE]+)\s*')


def recorded_checkpoint(ckpt_dir: str) -> Tuple[Optional[str], str]:
    """The checkpoint (file name) the ``checkpoint`` state file names, and if it names none, why.
    Read here rather than by TensorFlow, which ignores an unreadable file with a multi-line warning."""
    path = os.path.join(ckpt_dir, "checkpoint")
    if not os.path.exists(path):
        return None, "is missing"
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError):
        return None, "is unreadable"
    m = re.fullmatch(r'\s*model_checkpoint_path:\s*"([^"]*)"\s*', lines[0]) if lines else None
    if m is None or not all(_STATE_LINE.fullmatch(line) for line in lines):
        return None, "is unreadable"
    return os.path.basename(m.group(1)), ""


def _write_checkpoint_state(ckpt_dir: str, name: str) -> None:
    """A ``checkpoint`` state file naming ``name`` (what CheckpointManager reads), written atomically.
    No timestamps: the manager then never deletes the checkpoints found on disk."""
    fileio.atomic_write_text(os.path.join(ckpt_dir, "checkpoint"),
                             f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n')


def _why(e: BaseException) -> str:
    """The first line of an exception, without TensorFlow's ``{{function_node ...}}`` prefix."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", str(e)).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else ''}".rstrip(": ")


def remove_save_debris(ckpt_dir: str, prefix: str, keep: Optional[set] = None) -> None:
    """Remove what an interrupted or failed checkpoint write leaves: ``<prefix>-N_temp`` directories,
    ``*.tempstate*`` files and ``checkpoint.tmp*`` state files; with ``keep`` (the directory's entries
    before a failed save) also every entry the save created."""
    if not os.path.isdir(ckpt_dir):
        return
    temp = re.compile(re.escape(prefix) + r"-\d+_temp|.*\.tempstate\d*|checkpoint\.tmp[0-9a-f]*")
    for name in os.listdir(ckpt_dir):
        if temp.fullmatch(name) or (keep is not None and name not in keep):
            path = os.path.join(ckpt_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.remove(path)
                except OSError:
                    pass


def restore_newest(loop: Loop, gan: GAN, log=print, training: bool = True) -> Optional[str]:
    """Restore the newest ``<prefix>-N`` in the run's directory whose files restore; returns its path,
    or None when there is no checkpoint file at all.

    A damaged newest checkpoint (truncated data, missing index) or a lost or unreadable ``checkpoint``
    state file falls back to the newest one that restores, with one line saying so; with ``training``
    the state file is then rewritten to name it. Checkpoint files none of which restores are refused
    in one line naming the directory: a run never trains over them. Evaluation (not ``training``)
    restores the models without the optimizers and writes nothing."""
    ckpt_dir, prefix = loop.ckpt_dir, gan.checkpoint_prefix
    numbers = checkpoint_numbers(ckpt_dir, prefix)
    if not numbers:
        return None
    recorded, problem = recorded_checkpoint(ckpt_dir)
    failed = []
    for n in numbers:
        name = f"{prefix}-{n}"
        try:
            # Without the optimizers: evaluation does not use them, and a float16 run's (LossScaleOptimizer
            # around Adam) do not restore into another precision's plain Adam; the weights are float32.
            status = _checkpoint(loop, gan, optimizers=training).restore(os.path.join(ckpt_dir, name))
            status.assert_existing_objects_matched()
            if not training:
                status.expect_partial()
        except Exception as e:  # noqa: BLE001 - damaged files fail in TensorFlow's C++ and Python alike
            # Every object is restored again from the older checkpoint, so values a failed attempt
            # assigned before it failed do not survive.
            failed.append((name, _why(e)))
            continue
        path = os.path.join(ckpt_dir, name)
        if failed:
            names = ", ".join(f for f, _ in failed)
            log(f" [!] {names} {'does' if len(failed) == 1 else 'do'} not restore ({failed[0][1]}): "
                f"falling back to {name}, the newest checkpoint that does")
        elif recorded != name:
            why = problem or (f"names {recorded}, which is not on disk" if recorded not in
                              [f"{prefix}-{m}" for m in numbers] else f"names the older {recorded}")
            log(f" [!] {os.path.join(ckpt_dir, 'checkpoint')} {why}: restored {name}, the newest checkpoint on disk")
        if training and recorded != name:
            _write_checkpoint_state(ckpt_dir, name)
        log(f" [*] Load SUCCESS: {path} (step {int(loop.step.numpy())})")
        return path
    raise UsageError(
        f"{ckpt_dir}: {len(numbers)} checkpoint{'s' if len(numbers) > 1 else ''} ({prefix}-{numbers[0]}"
        f"{f' ... -{numbers[-1]}' if len(numbers) > 1 else ''}) but none restores ({failed[0][1]}): "
        "move them away to start afresh, or pass another --checkpoint_dir")


def nonfinite_variables(gan: GAN) -> List[str]:
    """Names of the models' and optimizers' float variables holding a NaN or an infinity: checked
    before every checkpoint write (the export follows the last one), not every step."""
    bad = []
    for obj in gan.trackables().values():
        if not isinstance(obj, (keras.layers.Layer, keras.optimizers.Optimizer)):
            continue
        for v in obj.variables:
            if tf.as_dtype(v.dtype).is_floating and not bool(tf.reduce_all(tf.math.is_finite(v.value))):
                bad.append(v.path if hasattr(v, "path") else v.name)
    return bad


class _Saver:
    """Checkpoint writes of one run: never a non-finite checkpoint, never debris from a failed write."""

    def __init__(self, loop: Loop, gan: GAN, restored: Optional[str]):
        self.loop, self.gan = loop, gan
        self.ckpt = _checkpoint(loop, gan)
        self.manager = tf.train.CheckpointManager(self.ckpt, loop.ckpt_dir, max_to_keep=loop.cfg.keep_checkpoints,
                                                  checkpoint_name=gan.checkpoint_prefix)
        self.last = restored  # the newest good checkpoint of this run

    def counter_of_last(self) -> Optional[int]:
        return None if self.last is None else int(self.last.rsplit("-", 1)[1])

    def kept(self) -> str:
        return (f"the newest checkpoint, {self.last}, is the last good one" if self.last
                else f"no checkpoint was written to {self.loop.ckpt_dir}")

    def save(self, counter: int, step: int) -> str:
        bad = nonfinite_variables(self.gan)
        if bad:
            names = ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else "")
            raise RunStopped(f"step {step}: non-finite weights ({names}); stopped without saving: {self.kept()}; "
                             "lower --learning_rate")
        ckpt_dir = self.loop.ckpt_dir
        before = set(os.listdir(ckpt_dir)) if os.path.isdir(ckpt_dir) else set()
        try:
            self.last = self.manager.save(checkpoint_number=counter)
        except (tf.errors.OpError, OSError) as e:
            remove_save_debris(ckpt_dir, self.gan.checkpoint_prefix, keep=before)
            raise RunStopped(f"could not write the checkpoint {os.path.join(ckpt_dir, self.gan.checkpoint_prefix)}-"
                             f"{counter} ({_why(e)}); nothing half-written is left and {self.kept()}: free space "
                             "(or fix the directory) and run the same command to resume") from None
        self.gan.checkpoint_saved(self.loop, self.ckpt, self.last)
        return self.last


class StopSignals:
    """SIGINT (Ctrl-C) and SIGTERM while training: the first one is remembered, and the loop stops at
    the end of the step with a checkpoint. The handlers go back to the system's default at once, so a
    second signal ends the process immediately (without that checkpoint). Outside the main thread,
    where Python cannot install handlers, nothing changes."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: Optional[int] = None
        self._previous: Dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
        for s in self._previous:
            signal.signal(s, signal.SIG_DFL)

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def stopped(self, step: int, saved: str, what: str = "") -> RunStopped:
        name = signal.Signals(self.signum).name
        return RunStopped(f"stopped by {name} after step {step}: saved {saved}{what}; run the same command to "
                          "resume", status=128 + self.signum)


def apply_optimizer_hyperparameters(gan: GAN, saved: Optional[dict], log=print) -> None:
    """A resumed run trains with the hyperparameters it is given: the learning rate, which the
    checkpoint restored into the optimizers, is set back to the configured one (Adam's betas are not
    checkpointed, so they were already the configured ones). One line for each value that changed
    since the run that wrote the checkpoint (its config.json; the restored learning rate if that
    predates the record)."""
    opts = [o for o in gan.trackables().values() if isinstance(o, keras.optimizers.Optimizer)]
    saved = saved or {}
    for key in config_lib.OPTIMIZER_FIELDS:
        new = getattr(gan.cfg, key)
        if key == "learning_rate":
            old = saved.get(key, float(opts[0].learning_rate.numpy()) if opts else new)
            for opt in opts:
                opt.learning_rate.assign(new)
        else:
            old = saved.get(key, new)
        if not math.isclose(old, new, rel_tol=1e-6):
            log(f" [*] {key} {old:.6g} -> {new:.6g} (resuming with the value given)")


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
    # The checkpoint files on disk, not the state file: a lost one still resumes (restore_newest).
    if not isinstance(theirs, dict) or not checkpoint_numbers(ckpt_dir):
        return model_cfg
    updates = {k: theirs[k] for k in inherit if k in theirs}
    return dataclasses.replace(model_cfg, **updates) if updates else model_cfg


def build_gan(gan: GAN) -> None:
    """``gan.build()`` under its strategy's scope and its precision's dtype policy (the previous global
    policy is restored afterwards)."""
    with gan.strategy.scope(), precision.policy_scope(getattr(gan.cfg, "mixed_precision", None)):
        gan.build()


def _other_runs_hint(gan: GAN) -> str:
    others = config_lib.other_runs(gan.model_cfg, gan.cfg)
    return "; ".join(f"{d} holds a {gan.name} run with batch_size {b}: pass --batch_size {b} for it"
                     for d, b in others)


def _prepare(gan: GAN, cfg: config_lib.TrainConfig, log=print, training: bool = True):
    """Build ``gan`` and restore its newest intact checkpoint: (loop, its path or None)."""
    keras.utils.set_random_seed(gan.seed)  # initial weights
    loop = Loop(gan, cfg, log)
    check_run_config(gan, loop, training=training)
    build_gan(gan)
    if getattr(cfg, "mixed_precision", None):
        log(f" [*] mixed precision: {cfg.mixed_precision} (float32 variables"
            + (", dynamic loss scaling)" if cfg.mixed_precision == "mixed_float16" else ")"))
    if training:
        remove_save_debris(loop.ckpt_dir, gan.checkpoint_prefix)  # of a write killed midway
    return loop, restore_newest(loop, gan, log, training=training)


def fit(gan: GAN, log=print) -> Loop:
    """Train ``gan`` as configured, resuming from the newest intact checkpoint in its directory.

    Stops with a one-line :class:`RunStopped` error on a non-finite loss (nothing saved: the newest
    checkpoint stays the last good one), on SIGINT/SIGTERM (after a checkpoint of the current step),
    and when a checkpoint cannot be written (no half-written files left)."""
    cfg = gan.cfg
    config_lib.check_output_dirs(gan.model_cfg, cfg, training=True)
    config_path = os.path.join(config_lib.run_checkpoint_dir(gan.model_cfg, cfg), "config.json")
    saved_config = config_lib.load_run_config(config_path)
    loop, restored = _prepare(gan, cfg, log)
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

    if restored:
        apply_optimizer_hyperparameters(gan, saved_config, log)
    else:
        log(" [!] Load failed... (no checkpoint yet, training from scratch)")
        hint = _other_runs_hint(gan)
        if hint:
            log(f" [!] new run in {loop.ckpt_dir}, whose export will replace "
                f"{os.path.join(cfg.export_dir, gan.name)}; {hint}")
    config_lib.save_run_config(config_path, gan.name, gan.model_cfg, cfg)
    saver = _Saver(loop, gan, restored)

    loop.writer = tf.summary.create_file_writer(cfg.log_dir)
    step_fn = tf.function(gan.train_step, jit_compile=cfg.jit_compile)
    start = time.time()
    step = int(loop.step.numpy())
    epoch_losses: Dict[str, List[float]] = {}
    with StopSignals() as stop:
        while step < total:
            epoch, first_idx = divmod(step, spe)
            ds = data.make_dataset(arrays, cfg.batch_size, seeds=gan.shuffle_seeds(),
                                   epoch=epoch if gan.reshuffle_each_epoch else None, start_batch=first_idx)
            if gan.strategy.num_replicas_in_sync > 1:
                ds = gan.strategy.experimental_distribute_dataset(ds)  # the global batch split across replicas
            for idx, batch in enumerate(ds, start=first_idx):
                losses = {k: float(v) for k, v in step_fn(*batch).items()}
                step += 1
                # The losses are fetched every step anyway: checking them costs nothing. A NaN step is
                # neither logged nor saved, so the newest checkpoint stays the last good one.
                bad = [f"{k} {v}" for k, v in losses.items() if not math.isfinite(v)]
                if bad:
                    raise RunStopped(f"step {step}: non-finite loss ({', '.join(bad)}); stopped without saving: "
                                     f"{saver.kept()}; lower --learning_rate")
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
                    saver.save(counter, step)
                if stop.signum is not None:
                    if saver.counter_of_last() != counter:
                        saver.save(counter, step)
                    loop.writer.flush()
                    raise stop.stopped(step, saver.last)
                if step >= total:
                    break
            if idx == spe - 1:
                gan.end_of_epoch(loop, epoch, {k: float(np.mean(v)) for k, v in epoch_losses.items()})
                epoch_losses = {}
        gan.end_of_training(loop)
        if saver.counter_of_last() != step + 1:
            saver.save(step + 1, step)
        loop.writer.flush()
        if stop.signum is not None:  # during the last epoch's or the training's end work
            raise stop.stopped(step, saver.last, " (not exported)")
    path = gan.export(cfg.export_dir)
    log(f" [*] Exported SavedModel to {path}")
    return loop


def restore(gan: GAN, log=print) -> Loop:
    """Build ``gan`` and restore its newest intact checkpoint; a clear error when there is none."""
    loop, path = _prepare(gan, gan.cfg, log, training=False)
    if path is None:
        hint = _other_runs_hint(gan)
        raise UsageError(f"no checkpoint in {loop.ckpt_dir}: " + (hint or
                         f"train first with `python main.py --is_train True --model {gan.name}` "
                         "(or point --checkpoint_dir at one)"))
    return loop


def evaluate(gan: GAN, log=print) -> Loop:
    """``--is_train False``: restore, write the model's evaluation outputs, export the SavedModel."""
    config_lib.check_output_dirs(gan.model_cfg, gan.cfg, training=False)
    loop = restore(gan, log)
    gan.evaluate(loop)
    path = gan.export(gan.cfg.export_dir)
    log(f" [*] Exported SavedModel to {path}")
    return loop
