"""Checkpoints of a run: what is checkpointed, reading them, restoring the newest intact one (with
fallback), saving without debris or non-finite weights, and a resumed run's learning rate.

Every checkpoint the package reads (the record inside it, the weights, a ClusterGAN's best/ copy, an
export's variables) is read through :func:`newest_that_reads`, which reads each candidate's files
whole before anything is taken from it and falls back past the ones that do not read; nothing else in
the package opens a checkpoint (tests/test_checkpoints.py checks that).

Each checkpoint holds the run's record itself (config.json's text, :data:`RECORD_KEY`), so the seed
and data setup are not lost with config.json: :func:`embedded_record` reads it, and
:meth:`cogan_tf.record.RunRecord.settled` settles it with config.json when a run is prepared.
"""

from __future__ import annotations

import dataclasses
import errno
import glob
import json
import math
import os
import re
import shutil
from typing import Callable, List, Optional, Sequence, Tuple, TypeVar

import tensorflow as tf
import keras

from cogan_tf import config as config_lib, fileio, record as record_lib
from cogan_tf.errors import DataError, RunStopped, UsageError, first_line
from cogan_tf.gan import GAN, Loop, Selection
from cogan_tf.record import RunRecord, checkpoint_numbers


# The run's record (config.json's text) inside every checkpoint, under this name: a tf.string variable,
# readable with tf.train.load_variable(path, RECORD_KEY) without building anything.
RECORD = "run_record"
RECORD_KEY = f"{RECORD}/.ATTRIBUTES/VARIABLE_VALUE"
EPOCH_LOSSES = "epoch_losses"


def checkpoint(loop: Loop, gan: GAN, optimizers: bool = True) -> tf.train.Checkpoint:
    # Models, optimizers, the step counter (= data position: the order is a function of the random seed),
    # the RNG state, the epoch's losses so far and the run's record (so the seed and data setup travel
    # with the weights, not only in config.json beside them; restoring, it is read into a throwaway
    # variable), all in one checkpoint. Without ``optimizers``: what sampling and export read.
    objects = {k: v for k, v in gan.trackables().items()
               if optimizers or not isinstance(v, keras.optimizers.Optimizer)}
    objects[RECORD] = tf.Variable(record_lib.run_config_text(gan.name, gan.model_cfg, gan.train_cfg), trainable=False)
    objects[EPOCH_LOSSES] = loop.epoch_losses
    return tf.train.Checkpoint(step=loop.step, rng=gan.rng, **objects)


@dataclasses.dataclass(frozen=True)
class Contents:
    """A checkpoint whose files were read whole: its path and the run's record inside it (config.json's
    text; None when it holds none)."""

    path: str
    record: Optional[str]


def _read_whole(path: str) -> Contents:
    """Every tensor of checkpoint ``path`` read once, each checked by TensorFlow against its stored
    CRC32C: a truncated, zeroed or missing file fails here, before anything is taken from it."""
    reader = tf.train.load_checkpoint(path)
    record = None
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if name == RECORD_KEY:
            record = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return Contents(path, record)


T = TypeVar("T")


def newest_that_reads(paths: Sequence[str], use: Callable[[Contents], T]
                      ) -> Tuple[Optional[str], Optional[T], List[Tuple[str, str]]]:
    """The one way the package reads a checkpoint. ``paths`` newest first: each one's files are read
    whole (:func:`_read_whole`), then handed to ``use`` (restore the models, take the record); the first
    for which both succeed is the one used. Returns its path and what ``use`` returned, and ``(path,
    why)`` of each one passed over; ``(None, None, failures)`` when none reads."""
    failed = []
    for path in paths:
        try:
            return path, use(_read_whole(path)), failed
        except Exception as e:  # noqa: BLE001 - damaged files fail in TensorFlow's C++ and Python alike
            failed.append((path, first_line(e)))
    return None, None, failed


def _restore(loop: Loop, gan: GAN, contents: Contents, optimizers: bool) -> None:
    """Restore the checkpoint ``contents`` describes into ``gan`` and ``loop``; every object it holds must
    find its place (without ``optimizers``, theirs are left unread)."""
    status = checkpoint(loop, gan, optimizers=optimizers).restore(contents.path)
    status.assert_existing_objects_matched()
    if not optimizers:
        status.expect_partial()


def restore_weights(loop: Loop, gan: GAN, path: str) -> None:
    """Load the networks (and step) of checkpoint ``path``, not the optimizers: any checkpoint of the run
    (a ClusterGAN's best/ copy, an older one for a curve). One that does not read or restore is a
    one-line DataError naming it."""
    _, _, failed = newest_that_reads([path], lambda c: _restore(loop, gan, c, optimizers=False))
    if failed:
        raise DataError(f"{path}: checkpoint does not restore ({failed[0][1]})")


def checkpoint_step(path: str) -> int:
    """The training steps checkpoint ``path`` had made, read without building a model (its files read
    whole first, as every read); one that does not read is a one-line DataError naming it."""
    _, step, failed = newest_that_reads(
        [path], lambda c: int(tf.train.load_variable(c.path, "step/.ATTRIBUTES/VARIABLE_VALUE")))
    if failed:
        raise DataError(f"{path}: no readable step counter ({failed[0][1]})")
    return step


def optimizer_iterations(path: str, optimizer: str) -> Optional[int]:
    """The update count of the optimizer checkpointed as ``optimizer`` (``ge_optimizer``; under a loss-scale
    wrapper its inner one) in checkpoint ``path``, read without building a model (its files read whole
    first, as every read); None when it holds no such optimizer, and one that does not read is a one-line
    DataError naming it."""
    def use(contents: Contents) -> Optional[int]:
        reader = tf.train.load_checkpoint(contents.path)
        names = [n for n in reader.get_variable_to_shape_map()
                 if n.startswith(optimizer + "/") and n.endswith("_iterations/.ATTRIBUTES/VARIABLE_VALUE")]
        return int(reader.get_tensor(min(names, key=len))) if names else None

    _, count, failed = newest_that_reads([path], use)
    if failed:
        raise DataError(f"{path}: no readable {optimizer} ({failed[0][1]})")
    return count


def restore_objects(objects: dict, path: str) -> None:
    """Restore checkpoint ``path`` into ``objects`` (name -> trackable, a subset of what it holds: the
    networks of a curve's point); one that does not read or restore is a one-line DataError naming it."""
    _, _, failed = newest_that_reads([path], lambda c: tf.train.Checkpoint(**objects).restore(c.path).expect_partial())
    if failed:
        raise DataError(f"{path}: does not restore ({failed[0][1]})")


def none_restores(ckpt_dir: str, names: Sequence[str], why: str) -> UsageError:
    """The refusal of checkpoint files none of which reads: a run never trains over them."""
    shown = names[0] + (f" ... -{names[-1].rsplit('-', 1)[1]}" if len(names) > 1 else "")
    return UsageError(f"{ckpt_dir}: {len(names)} checkpoint{'s' if len(names) > 1 else ''} ({shown}) but none "
                      f"restores ({why}): move them away to start afresh, or pass another --checkpoint_dir")


def embedded_record(record: RunRecord) -> Tuple[str, Optional[dict]]:
    """The newest checkpoint of ``record`` that reads (:func:`newest_that_reads`: the one restoring falls
    back to) and the record inside it; ``("", None)`` when there is no checkpoint. One without a record
    inside is not a checkpoint of this project's and is refused in one line, as are checkpoint files
    none of which reads are refused in one line (:func:`none_restores`); a damaged record is a
    one-line DataError naming the checkpoint."""
    paths = record.checkpoint_paths()
    if not paths:
        return "", None
    path, contents, failed = newest_that_reads(paths, lambda c: c)
    if path is None:
        raise none_restores(record.directory, [os.path.basename(p) for p in paths], failed[0][1])
    if contents.record is None:
        raise UsageError(f"{path}: no run record inside (every checkpoint main.py writes holds one): not a "
                         "checkpoint of this program; move it away, or use a fresh --checkpoint_dir")
    return path, record_lib.parse_run_config(contents.record, f"the record inside {path}",
                                         fix="move this checkpoint away to resume from an older one")


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


def restore_newest(loop: Loop, gan: GAN, log=print, training: bool = True,
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
    names = [f"{prefix}-{n}" for n in numbers]

    # Without the optimizers when evaluating: evaluation does not use them, and a float16 run's
    # (LossScaleOptimizer around Adam) do not restore into another precision's plain Adam; the weights
    # are float32. A checkpoint that fails is passed over, and every object is restored again from the
    # older one, so values a failed attempt assigned before it failed do not survive.
    def restore(contents: Contents) -> None:
        _restore(loop, gan, contents, optimizers=training)

    path, _, failed = newest_that_reads([os.path.join(ckpt_dir, n) for n in names], restore)
    if path is None:
        raise none_restores(ckpt_dir, names, failed[0][1])
    name = os.path.basename(path)
    if failed:
        passed = ", ".join(os.path.basename(f) for f, _ in failed)
        log(f" [!] {passed} {'does' if len(failed) == 1 else 'do'} not restore ({failed[0][1]}): "
            f"falling back to {name}, the newest checkpoint that does")
    elif recorded != name:
        why = problem or (f"names {recorded}, which is not on disk" if recorded not in names
                          else f"names the older {recorded}")
        log(f" [!] {os.path.join(ckpt_dir, 'checkpoint')} {why}: restored {name}, the newest checkpoint on disk")
    if training and repair_state and recorded != name:
        _write_checkpoint_state(ckpt_dir, name)
    log(f" [*] Load SUCCESS: {path} (step {int(loop.step.numpy())})")
    return path


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

    def __init__(self, loop: Loop, gan: GAN, restored: Optional[str], write_dir: Optional[str] = None):
        self.loop, self.gan, self.write_dir = loop, gan, write_dir
        self.ckpt = checkpoint(loop, gan)
        self.manager = tf.train.CheckpointManager(self.ckpt, write_dir or loop.ckpt_dir,
                                                  max_to_keep=loop.train_cfg.keep_checkpoints,
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
                             f"{counter} ({first_line(e)}); nothing half-written is left and {self.kept()}: "
                             f"{'free disk space' if full else 'fix the folder'} and run the same command to resume"
                             ) from None
        finally:
            if self.write_dir:
                shutil.rmtree(self.write_dir, ignore_errors=True)
        if self.write_dir:
            self.last = os.path.join(self.loop.ckpt_dir, os.path.basename(path))
            return self.last
        self.last = path
        selection = self.gan.select(self.loop, path)  # the model's validation: is this its best so far?
        if selection is not None:
            keep_best(self.loop, self.ckpt, path, selection)
        return self.last


# --- the checkpoint a run keeps by validation (GAN.select) ---------------------------------------------

BEST_DIR = "best"  # <checkpoint dir>/best: the checkpoint with the best validation score, and best.json


def best_record(ckpt_dir: str) -> Optional[dict]:
    """``<ckpt_dir>/best/best.json``, or None when the run keeps no best checkpoint; a damaged one is a
    one-line DataError naming it."""
    path = os.path.join(ckpt_dir, BEST_DIR, "best.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            record = json.loads(f.read().decode("utf-8"))
        b = record.get("best") if isinstance(record, dict) else None
        if not isinstance(record, dict) or not isinstance(record.get("history"), list) or (
                b is not None and not (isinstance(b, dict) and isinstance(b.get("checkpoint"), str)
                                       and isinstance(b.get("step"), int))):
            raise ValueError("not the record of a best checkpoint")
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: damaged ({first_line(e)}); delete it (and {os.path.dirname(path)}/*) to keep "
                        "the latest checkpoint instead, or restore it from a backup") from None
    return record


def keep_best(loop: Loop, ckpt: tf.train.Checkpoint, path: str, selection: Selection) -> None:
    """Write what the model selected after checkpoint ``path``: the checkpoint again into ``best/``
    (resumable: optimizers included) when it is the new best, ``best.json``, and the earlier best's
    copy removed once ``best.json`` no longer names it."""
    best_dir = os.path.join(loop.ckpt_dir, BEST_DIR)
    if selection.keep:
        os.makedirs(best_dir, exist_ok=True)
        ckpt.write(os.path.join(best_dir, os.path.basename(path)))
    fileio.atomic_write_text(os.path.join(best_dir, "best.json"), json.dumps(selection.record, indent=1) + "\n")
    if selection.replaced is not None:
        for f in glob.glob(os.path.join(loop.ckpt_dir, selection.replaced) + ".*"):
            os.remove(f)
    loop.log(selection.line)


def restore_best(loop: Loop, gan: GAN, log=print) -> Optional[Tuple[dict, str]]:
    """After the loop restored the latest checkpoint: load the one the run kept by validation instead
    (``best.json`` and its path), or None when it keeps none. A best checkpoint that does not restore
    (lost, damaged) leaves the latest in place, with one line saying so, and None."""
    record = best_record(loop.ckpt_dir)
    if record is None or "best" not in record:
        return None
    latest, latest_step = loop.restored, int(loop.step.numpy())
    path = os.path.join(loop.ckpt_dir, record["best"]["checkpoint"])
    try:
        restore_weights(loop, gan, path)
    except DataError as e:
        restore_weights(loop, gan, latest)  # whatever the failed attempt assigned is undone
        log(f" [!] the best checkpoint by validation, {e}: evaluating the latest, {latest} (step {latest_step}), "
            f"instead")
        return None
    return record, path


def apply_optimizer_hyperparameters(gan: GAN, saved: dict, log=print) -> None:
    """A resumed run trains with the hyperparameters it is given: the learning rate, which the
    checkpoint restored into the optimizers, is set back to the configured one (Adam's betas are not
    checkpointed, so they were already the configured ones). One line for each value that changed
    since the run that wrote the checkpoint (its record)."""
    opts = [o for o in gan.trackables().values() if isinstance(o, keras.optimizers.Optimizer)]
    for key in config_lib.OPTIMIZER_FIELDS:
        new, old = getattr(gan.train_cfg, key), saved[key]
        if key == "learning_rate":
            for opt in opts:
                opt.learning_rate.assign(new)
        if not math.isclose(old, new, rel_tol=1e-6):
            log(f" [*] {key} {old:.6g} -> {new:.6g} (resuming with the value given)")
