"""Checkpoints of a run: what is checkpointed, refusing a checkpoint made with another setup,
restoring the newest intact one (with fallback), saving without debris or non-finite weights, and
resolving what a resumed run inherits from its checkpoint (seed, model-config fields, learning rate).

What the checkpoint directory holds is read once per run into a :class:`cogan_tf.rundir.RunRecord`;
every function here that needs config.json takes that record.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import re
import shutil
from typing import List, Optional, Sequence, Tuple

import tensorflow as tf
import keras

from cogan_tf import config as config_lib, fileio
from cogan_tf.errors import RunStopped, UsageError, first_line
from cogan_tf.gan import GAN, RunState
from cogan_tf.rundir import RunRecord, checkpoint_numbers


def checkpoint(loop: RunState, gan: GAN, optimizers: bool = True, path: Optional[str] = None) -> tf.train.Checkpoint:
    # Models, optimizers, the step counter (= data position: the order is a function of the random seed),
    # the RNG state and the epoch's losses so far, all in one checkpoint. Without ``optimizers``: what
    # sampling and export read. ``path``: the checkpoint to be restored, which may predate the epoch's losses.
    objects = {k: v for k, v in gan.trackables().items()
               if optimizers or not isinstance(v, keras.optimizers.Optimizer)}
    if path is None or any(name.startswith("epoch_losses/") for name, _ in tf.train.list_variables(path)):
        objects["epoch_losses"] = loop.epoch_losses
    return tf.train.Checkpoint(step=loop.step, rng=gan.rng, **objects)


def _precision_flags(policy: Optional[str]) -> str:
    """How main.py is told to train in ``policy`` (a TrainConfig.mixed_precision value)."""
    if policy is None:
        return "without --mixed_precision"
    dtype = {v: k for k, v in config_lib.MIXED_PRECISION.items()}.get(policy, policy)
    return f"with --mixed_precision --mixed_precision_dtype {dtype}"


def check_run_config(gan: GAN, loop: RunState, record: RunRecord, training: bool = True) -> None:
    """Refuse to resume a checkpoint with another architecture, seed or data setup, or (``training``)
    another precision: a float16 run's optimizers carry a loss scale, and switching the arithmetic
    midway would make the resumed run neither of the two. Evaluating a checkpoint in another
    precision is fine: the weights are float32 either way. Evaluation checks the architecture only:
    seed, data setup and training settings never block it (runner.run evaluates with the
    architecture config.json records)."""
    saved = record.config
    if saved is None or not record.checkpoints(gan.checkpoint_prefix):
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


_why = first_line


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


def restore_newest(loop: RunState, gan: GAN, log=print, training: bool = True,
                   repair_state: bool = True) -> Optional[str]:
    """Restore the newest ``<prefix>-N`` in the run's directory whose files restore; returns its path,
    or None when there is no checkpoint file at all.

    A damaged newest checkpoint (truncated data, missing index) or a lost or unreadable ``checkpoint``
    state file falls back to the newest one that restores, with one line saying so; with ``training``
    the state file is then rewritten to name it. Checkpoint files none of which restores are refused
    in one line naming the directory: a run never trains over them. Evaluation (not ``training``)
    restores the models without the optimizers and writes nothing, and so does a worker other than
    the chief of a multi-worker run (not ``repair_state``), which reads the chief's folder."""
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
            path = os.path.join(ckpt_dir, name)
            status = checkpoint(loop, gan, optimizers=training, path=path).restore(path)
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
        if training and repair_state and recorded != name:
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


def is_disk_full(e: BaseException) -> bool:
    """A write that failed for want of space (a full disk, a quota, a file-size limit), not a bad folder.
    TensorFlow's errors carry no errno, only its text."""
    codes = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    return getattr(e, "errno", None) in codes or any(os.strerror(c) in str(e) for c in codes)


class Saver:
    """Checkpoint writes of one run: never a non-finite checkpoint, never debris from a failed write.

    ``write_dir``: where the files go instead of the run's folder, emptied after each save: a worker other
    than the chief of a multi-worker run, which takes part in every save as TensorFlow requires while
    only the chief's copy is kept. :attr:`last` names the chief's checkpoint on every worker."""

    def __init__(self, loop: RunState, gan: GAN, restored: Optional[str], write_dir: Optional[str] = None):
        self.loop, self.gan, self.write_dir = loop, gan, write_dir
        self.ckpt = checkpoint(loop, gan)
        self.manager = tf.train.CheckpointManager(self.ckpt, write_dir or loop.ckpt_dir,
                                                  max_to_keep=loop.cfg.keep_checkpoints,
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
        ckpt_dir = self.write_dir or self.loop.ckpt_dir
        before = set(os.listdir(ckpt_dir)) if os.path.isdir(ckpt_dir) else set()
        try:
            path = self.manager.save(checkpoint_number=counter)
        except (tf.errors.OpError, OSError) as e:
            remove_save_debris(ckpt_dir, self.gan.checkpoint_prefix, keep=before)
            full = is_disk_full(e)
            raise RunStopped(f"could not write the checkpoint {os.path.join(ckpt_dir, self.gan.checkpoint_prefix)}-"
                             f"{counter} ({_why(e)}); nothing half-written is left and {self.kept()}: "
                             f"{'free disk space' if full else 'fix the folder'} and run the same command to resume"
                             ) from None
        finally:
            if self.write_dir:
                shutil.rmtree(self.write_dir, ignore_errors=True)
        if self.write_dir:
            self.last = os.path.join(self.loop.ckpt_dir, os.path.basename(path))
            return self.last
        self.last = path
        self.gan.checkpoint_saved(self.loop, self.ckpt, self.last)
        return self.last


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


def resolve_seed(train_cfg: config_lib.TrainConfig, record: RunRecord) -> config_lib.TrainConfig:
    """No --seed: reuse the checkpoint's seed when resuming (the data order depends on it), else 0."""
    if train_cfg.seed is not None:
        return train_cfg
    saved = record.config
    seed = saved["seed"] if saved and saved.get("seed") is not None else 0
    return dataclasses.replace(train_cfg, seed=seed)


def resolve_model_config(model_cfg, record: RunRecord, inherit: Sequence[str] = ()):
    """Fields named in ``inherit`` (left unset on the command line) take the value of the checkpoint's
    config.json when there is one, as the random seed does: a vanilla checkpoint trained at 1024 hidden units
    before 128 became the default resumes at 1024."""
    theirs = record.model_config
    # The checkpoint files on disk, not the state file: a lost one still resumes (restore_newest).
    if theirs is None or not record.checkpoints():
        return model_cfg
    updates = {k: theirs[k] for k in inherit if k in theirs}
    return dataclasses.replace(model_cfg, **updates) if updates else model_cfg
