"""The one training loop of all three GANs: data order, compiled steps, per-step log line, sample
grids, TensorBoard, checkpoints with exact resume, stop signals, and SavedModel export
(:func:`fit`); and ``--is_train False`` (:func:`evaluate`).

The models' hooks are in :mod:`cogan_tf.gan`, the checkpoint policy in :mod:`cogan_tf.checkpoints`.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf
import keras

from cogan_tf import checkpoints, data, rundir
from cogan_tf.errors import RunStopped, UsageError
from cogan_tf.gan import GAN, RunState, build_gan


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
                          "resume", status=128 + self.signum, requested=True)


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

    def __init__(self, gan: GAN, loop: RunState, step: int, total: int, log_dir: str, log=print):
        cfg = gan.cfg
        self.total, self.log, self.every = total, log, cfg.sample_every or loop.steps_per_epoch
        self.t0 = self.s0 = None
        spe = loop.steps_per_epoch
        epochs = f"{cfg.epoch} epochs x {spe} steps" if total == cfg.epoch * spe else f"--max_steps {total}"
        log(f" [*] {gan.name} on {cfg.dataset}, batch {cfg.batch_size}: {epochs} = {total:,} steps"
            + (f", resuming at step {step:,}" if step else ""))
        log(f" [*] outputs: checkpoints {loop.ckpt_dir}; grids {cfg.sample_dir}; SavedModel "
            f"{os.path.join(cfg.export_dir, gan.name)}; TensorBoard {log_dir} (tensorboard --logdir {cfg.log_dir})")
        self.bar = None
        if cfg.progress == "bar":
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
    others = rundir.other_runs(gan.model_cfg, gan.cfg)
    return "; ".join(f"{d} holds a {gan.name} run with batch_size {b}: pass --batch_size {b} for it"
                     for d, b in others)


def _record(gan: GAN, record: Optional[rundir.RunRecord]) -> rundir.RunRecord:
    """The run's record as the caller read it (runner.run reads it once per run), else read now."""
    return record if record is not None else rundir.RunRecord.read(rundir.run_checkpoint_dir(gan.model_cfg, gan.cfg))


def _prepare(gan: GAN, record: rundir.RunRecord, log=print, training: bool = True):
    """Build ``gan`` and restore its newest intact checkpoint: (loop, its path or None)."""
    cfg = gan.cfg
    keras.utils.set_random_seed(gan.seed)  # initial weights
    loop = RunState(gan, cfg, log)
    checkpoints.check_run_config(gan, loop, record, training=training)
    build_gan(gan)
    if getattr(cfg, "mixed_precision", None):
        log(f" [*] mixed precision: {cfg.mixed_precision} (float32 variables"
            + (", dynamic loss scaling)" if cfg.mixed_precision == "mixed_float16" else ")"))
    if training:
        checkpoints.remove_save_debris(loop.ckpt_dir, gan.checkpoint_prefix)  # of a write killed midway
    return loop, checkpoints.restore_newest(loop, gan, log, training=training)


def fit(gan: GAN, log=print, record: Optional[rundir.RunRecord] = None) -> RunState:
    """Train ``gan`` as configured, resuming from the newest intact checkpoint in its directory.

    Stops with a one-line :class:`RunStopped` error on a non-finite loss (nothing saved: the newest
    checkpoint stays the last good one), on SIGINT/SIGTERM (after a checkpoint of the current step),
    and when a checkpoint cannot be written (no half-written files left). ``record``: the run
    directory's record if the caller has read it (:func:`cogan_tf.runner.run`)."""
    cfg = gan.cfg
    rundir.check_output_dirs(gan.model_cfg, cfg, training=True)
    record = _record(gan, record)
    loop, restored = _prepare(gan, record, log)
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
                f"{os.path.join(cfg.export_dir, gan.name)}; {hint}")
    rundir.save_run_config(record.config_path, gan.name, gan.model_cfg, cfg)
    saver = checkpoints.Saver(loop, gan, restored)

    # One TensorBoard folder per run (model, dataset, batch size), as its checkpoint folder.
    log_dir = os.path.join(cfg.log_dir, f"{gan.name}_{os.path.basename(loop.ckpt_dir)}")
    loop.writer = tf.summary.create_file_writer(log_dir)
    step_fn = tf.function(gan.train_step, jit_compile=cfg.jit_compile)
    start = time.time()
    step = int(loop.step.numpy())
    progress = Progress(gan, loop, step, total, log_dir, log)
    epoch_losses: Dict[str, List[float]] = {}
    with StopSignals() as stop, contextlib.closing(progress):
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
                if cfg.log_every and progress.bar is None and (step % cfg.log_every == 0 or step == total):
                    log(gan.log_line(epoch, idx, spe, time.time() - start, losses))
                loop.scalar_summaries(losses, step)
                if cfg.sample_every and counter % cfg.sample_every == 1:
                    gan.sample(loop, epoch, idx)
                if cfg.save_every and counter % cfg.save_every == 2:
                    saver.save(counter, step)
                progress.step_done(step, losses)
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


def restore(gan: GAN, log=print, record: Optional[rundir.RunRecord] = None) -> RunState:
    """Build ``gan`` and restore its newest intact checkpoint; a clear error when there is none."""
    loop, path = _prepare(gan, _record(gan, record), log, training=False)
    if path is None:
        hint = _other_runs_hint(gan)
        raise UsageError(f"no checkpoint in {loop.ckpt_dir}: " + (hint or
                         f"train first with `python main.py --is_train True --model {gan.name}` "
                         "(or point --checkpoint_dir at one)"))
    return loop


def evaluate(gan: GAN, log=print, record: Optional[rundir.RunRecord] = None) -> RunState:
    """``--is_train False``: restore, write the model's evaluation outputs, export the SavedModel."""
    rundir.check_output_dirs(gan.model_cfg, gan.cfg, training=False)
    loop = restore(gan, log, record)
    gan.evaluate(loop)
    path = gan.export(gan.cfg.export_dir)
    log(f" [*] Exported SavedModel to {path}")
    return loop
