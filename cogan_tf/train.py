"""The one training loop of all three GANs: data order, compiled steps, per-step log line, sample
grids, TensorBoard, checkpoints with exact resume, stop signals, and SavedModel export
(:func:`fit`); and ``--is_train False`` (:func:`report`: restore, write the model's report, export).

Both take a prepared :class:`cogan_tf.run.Run` (folders checked, record settled, seed resolved, lock
held) and use it as it is. The models' hooks are in :mod:`cogan_tf.gan`, the checkpoint policy in
:mod:`cogan_tf.checkpoints`.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf
import keras

from cogan_tf import checkpoints, data, multiworker, outputs, record as record_lib
from cogan_tf.errors import RunStopped, UsageError, first_line
from cogan_tf.gan import GAN, Loop, build_gan
from cogan_tf.run import Run
from cogan_tf.stops import StopSignals


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(round(seconds / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


class Progress:
    """What a user plans with: at the start, one block naming the run, its length and where each output
    goes; every ``every`` steps a line with the rate and the time left; with ``bar``, a progress bar
    (losses in its postfix) instead of the per-step lines. The rate counts from the end of the first
    step of this process, which also traces and compiles the step."""

    def __init__(self, gan: GAN, loop: Loop, step: int, total: int, log_dir: str, log=print, bar: bool = True):
        cfg = gan.train_cfg
        self.total, self.log, self.every = total, log, cfg.sample_every or loop.steps_per_epoch
        self.t0 = self.s0 = None
        spe = loop.steps_per_epoch
        epochs = f"{cfg.epoch} epochs x {spe} steps" if total == cfg.epoch * spe else f"--max_steps {total}"
        log(f" [*] {gan.name} on {cfg.dataset}, batch {cfg.batch_size}: {epochs} = {total:,} steps"
            + (f", resuming at step {step:,}" if step else ""))
        log(f" [*] outputs: checkpoints {loop.ckpt_dir}; grids {cfg.sample_dir}; SavedModel "
            f"{os.path.join(cfg.export_dir, gan.name)}; TensorBoard {log_dir} (tensorboard --logdir {cfg.log_dir})")
        self.bar = None
        if cfg.progress == "bar" and bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=step, unit="step", dynamic_ncols=True)
            loop.log = self.bar.write  # hooks' lines above the bar, not through it

    def step_done(self, step: int, losses: Dict[str, float]) -> None:
        now = time.time()
        if self.t0 is None:
            self.t0, self.s0 = now, step
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items() if k in ("d_loss", "g_loss", "ge_loss")},
                                 refresh=False)
        elif step % self.every == 0 and step > self.s0:
            rate = (now - self.t0) / (step - self.s0)
            self.log(f" [*] step {step:,}/{self.total:,}: {rate:.3f} s/step, "
                     f"{_duration(rate * (self.total - step))} left")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _other_runs_hint(gan: GAN) -> str:
    others = record_lib.other_runs(gan.model_cfg, gan.train_cfg)
    return "; ".join(f"{d} holds a {gan.name} run with batch_size {b}: pass --batch_size {b} for it"
                     for d, b in others)


def _prepare(gan: GAN, run: Run, log=print, team: Optional[multiworker.Workers] = None):
    """Build ``gan`` and restore its newest intact checkpoint: (loop, its path or None). ``team``: this
    process's part in a run of several workers (default: the run's role)."""
    cfg, training = gan.train_cfg, run.training
    team = team or multiworker.Workers(gan.strategy, run.role)
    keras.utils.set_random_seed(gan.seed)  # initial weights
    loop = Loop(gan, cfg, log)
    team.check_same_run(gan)  # before the variables, whose creation is already a collective
    build_gan(gan)
    if getattr(cfg, "mixed_precision", None):
        log(f" [*] mixed precision: {cfg.mixed_precision} (float32 variables"
            + (", dynamic loss scaling)" if cfg.mixed_precision == "mixed_float16" else ")"))
    if training and team.chief:
        # Only under the run's lock (held by ``run``): another run's save in progress is not debris.
        checkpoints.remove_save_debris(loop.ckpt_dir, gan.checkpoint_prefix)  # of a write killed midway
        outputs.clean_export_leftovers(outputs.export_target(cfg), log)
    restored = loop.restored = checkpoints.restore_newest(loop, gan, log, training=training, repair_state=team.chief)
    team.check_same_step(int(loop.step.numpy()))
    return loop, restored


def due(counter: int, every: int, phase: int) -> bool:
    """The original's schedule, ``counter % every == phase`` (grids at 1, checkpoints at 2 with every
    100 / 500), kept for every ``every`` >= 1: the phase is taken modulo ``every``, else ``--save_every 1``
    or ``2`` would never fire."""
    return bool(every) and counter % every == phase % every


def _output_failure(e: OSError) -> str:
    """``<file> (<reason>)`` of a failed write, and what to do about it."""
    what = f"{e.filename} ({e.strerror})" if getattr(e, "filename", None) else str(e)
    fix = "free disk space" if checkpoints.is_disk_full(e) else "fix the folder"
    return f"could not write {what}; {fix}"


def fit(gan: GAN, run: Run, log=print) -> Loop:
    """Train ``gan`` (built from ``run``'s configs) as configured, resuming from the newest intact
    checkpoint in its directory.

    Stops with a one-line :class:`RunStopped` error on a non-finite loss (nothing saved: the newest
    checkpoint stays the last good one), on SIGINT/SIGTERM (after a checkpoint of the current step),
    when a checkpoint cannot be written (no half-written files left), and when a grid or the export
    cannot be written (after a checkpoint of the current step).

    One of several workers (``--strategy multiworker``): the chief alone writes grids, TensorBoard
    events, config.json and the run's lines; every worker takes part in each checkpoint save and the
    export, the others into temporary folders (:class:`cogan_tf.multiworker.Workers`); all stop after
    the same step, and a lost worker stops the others in one line."""
    cfg = gan.train_cfg
    team = multiworker.Workers(gan.strategy, run.role)
    chief = team.chief
    if not chief:
        log = _quiet  # the chief speaks for the run; the others only raise their errors
    record = run.record
    try:
        with team.on_lost_contact(lambda: ("at the start", "nothing was trained")):
            loop, restored = _prepare(gan, run, log, team=team)
    except OSError as e:  # the state file: written before any step
        raise RunStopped(f"{_output_failure(e)}, then run the same command (nothing was trained)") from None
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
        checkpoints.apply_optimizer_hyperparameters(gan, record.config, log)
    else:
        log(f" [*] no checkpoint in {loop.ckpt_dir}: starting a new run")
        hint = _other_runs_hint(gan)
        if hint:
            log(f" [!] new run in {loop.ckpt_dir}, whose export will replace "
                f"{outputs.export_target(cfg)}; {hint}")
    if chief:
        try:
            record_lib.save_run_config(record.config_path, gan.name, gan.model_cfg, cfg)
            outputs.claim_outputs(gan.model_cfg, cfg, training=True, log=log)
        except OSError as e:
            kept = f"; the newest checkpoint, {restored}, is kept" if restored else ""
            raise RunStopped(f"{_output_failure(e)}, then run the same command (nothing was trained{kept})") from None
    saver = checkpoints.Saver(loop, gan, restored, write_dir=team.save_dir(loop.ckpt_dir))

    log_dir = outputs.tensorboard_dir(gan.model_cfg, cfg)
    loop.writer = tf.summary.create_file_writer(log_dir) if chief else None
    step_fn, loss_names = _one_fetch_step(gan)
    start = time.time()
    step = int(loop.step.numpy())
    # Each loss of every step of the epoch so far, checkpointed: the epoch's means survive a resume.
    epoch_losses, unfinished_epoch = loop.restored_epoch_losses(step)
    lost = team.on_lost_contact(lambda: (f"step {step}", saver.kept()))
    # The progress block after the stop handlers: its lines (or bar) go through the guarded output.
    with StopSignals() as stop, contextlib.closing(Progress(gan, loop, step, total, log_dir, log, bar=chief)) as progress, \
            lost:

        def save(counter: int) -> str:
            loop.record_epoch_losses(epoch_losses)
            return saver.save(counter, step)

        def write_outputs(work, *args) -> None:
            """The chief's grids and plots; one that cannot be written stops the run after a checkpoint of
            this step."""
            if not chief:
                return
            try:
                work(*args)
            except OSError as e:
                kept = save(step + 1) if saver.counter_of_last() != step + 1 else saver.last
                raise RunStopped(f"step {step}: {_output_failure(e)}, then run the same command to resume "
                                 f"(saved {kept})") from None

        if unfinished_epoch is not None:  # a stop came between an epoch's last step and its records
            write_outputs(gan.end_of_epoch, loop, unfinished_epoch, _means(epoch_losses))
            epoch_losses = {}
        while step < total:
            epoch, first_idx = divmod(step, spe)
            ds = team.distribute(lambda: data.make_dataset(
                arrays, cfg.batch_size, seeds=gan.shuffle_seeds(), epoch=epoch if gan.reshuffle_each_epoch else None,
                start_batch=first_idx), cfg.batch_size)
            for idx, batch in enumerate(ds, start=first_idx):
                # The step's one wait for the device: all its losses in one fetch. A worker that stops
                # answering ends the run in one line (the watchdog's bound).
                with team.bounded():
                    losses = dict(zip(loss_names, step_fn(*batch).numpy().tolist()))
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
                if cfg.log_every and progress.bar is None and (step % cfg.log_every == 0 or step == total):
                    log(gan.log_line(epoch, idx, spe, time.time() - start, losses))
                if due(step, cfg.summary_every, 0):
                    loop.scalar_summaries(losses, step)
                if due(counter, cfg.sample_every, 1):
                    write_outputs(gan.sample, loop, epoch, idx)
                if idx == spe - 1:  # before this step's checkpoint and any stop: a completed epoch's records
                    write_outputs(gan.end_of_epoch, loop, epoch, _means(epoch_losses))
                    epoch_losses = {}
                if due(counter, cfg.save_every, 2):
                    save(counter)
                progress.step_done(step, losses)
                if team.agree_on_stop(stop):
                    if saver.counter_of_last() != counter:
                        save(counter)
                    _flush(loop)
                    raise stop.stopped(step, saver.last)
                if step >= total:
                    break
        write_outputs(gan.end_of_training, loop)
        if saver.counter_of_last() != step + 1:
            save(step + 1)
        _flush(loop)
        if team.agree_on_stop(stop):  # during the training's end work
            raise stop.stopped(step, saver.last, " (not exported: export it with --is_train False)")
        path = _export(gan, f"the checkpoint {saver.last} is safe: export it with `python main.py --is_train False` "
                            "and this run's flags", team)
        if team.agree_on_stop(stop):  # during the export, which was let finish
            raise stop.during_export(saver.last, path)
    log(f" [*] Exported SavedModel to {path}")
    return loop


def _one_fetch_step(gan: GAN):
    """(the compiled step returning its losses stacked in one float32 vector, their names in that order,
    known once the step is traced): the host then waits for the device once per step, one copy instead of
    one per loss (on a GPU each is a wait and a copy)."""
    names: List[str] = []

    def step(*batch):
        out = gan.train_step(*batch)
        names[:] = list(out)
        return tf.stack([tf.cast(v, tf.float32) for v in out.values()])

    step.__name__ = "train_step"
    return gan.compiled_step(step), names


def _quiet(*_) -> None:
    """The ``log`` of a worker other than the chief."""


def _flush(loop: Loop) -> None:
    if loop.writer is not None:
        loop.writer.flush()


def _means(epoch_losses: Dict[str, List[float]]) -> Dict[str, float]:
    return {k: float(np.mean(v)) for k, v in epoch_losses.items()}


def _export(gan: GAN, safe: str, team: Optional[multiworker.Workers] = None) -> str:
    """``gan.export`` with a failure in one line: ``safe`` says what survives and how to export again.
    A worker other than the chief exports into its temporary folder, removed again (TensorFlow has every
    worker take part in saving a distributed model; the chief's copy is the export)."""
    target = outputs.export_target(gan.train_cfg)
    export_dir = gan.train_cfg.export_dir if team is None else team.export_dir(gan.train_cfg.export_dir)
    try:
        path = gan.export(export_dir)
    except UsageError as e:
        raise RunStopped(f"{e}; {safe}") from None
    except (OSError, tf.errors.OpError) as e:
        why = f"{e.strerror}" if isinstance(e, OSError) and e.strerror else first_line(e)
        raise RunStopped(f"could not write the SavedModel {target} ({why}); {safe}") from None
    finally:
        if export_dir != gan.train_cfg.export_dir:
            shutil.rmtree(export_dir, ignore_errors=True)
    return path if export_dir == gan.train_cfg.export_dir else target


def restore(gan: GAN, run: Run, log=print) -> Loop:
    """Build ``gan`` and restore its newest intact checkpoint; a clear error when there is none."""
    loop, path = _prepare(gan, run, log)
    if path is None:
        hint = _other_runs_hint(gan)
        raise UsageError(f"no checkpoint in {loop.ckpt_dir}: " + (hint or
                         f"train first with `python main.py --is_train True --model {gan.name}` "
                         "(or point --checkpoint_dir at one)"))
    return loop


def report(gan: GAN, run: Run, log=print) -> Loop:
    """``--is_train False``: restore, write the model's evaluation outputs, export the SavedModel."""
    loop = restore(gan, run, log)
    try:
        outputs.claim_outputs(gan.model_cfg, gan.train_cfg, training=False, log=log)
    except OSError as e:
        raise RunStopped(_output_failure(e)) from None
    try:
        gan.write_report(loop)
    except OSError as e:
        raise RunStopped(_output_failure(e)) from None
    path = _export(gan, "fix it and run the same command again")
    log(f" [*] Exported SavedModel to {path}")
    return loop
