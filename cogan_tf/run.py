"""A run decided once, before its loop: :func:`prepare` turns the configs and the folders into a
:class:`Run`, which the loop (:func:`cogan_tf.train.fit`) and the evaluation take as they are.

In order, each done here and nowhere else:

1. before TensorFlow starts: the output folders checked (:func:`cogan_tf.outputs.check_output_dirs`),
   the record read (config.json, :class:`cogan_tf.record.RunRecord`) and a resume of another setup
   refused, a pair's data files checked, the run's lock taken (:class:`cogan_tf.outputs.RunLock`);
2. then TensorFlow starts: the device is chosen (:func:`cogan_tf.device.configure`) and, under the
   lock, the record inside the newest checkpoint that reads is settled with config.json; that
   checkpoint is where the run resumes;
3. the seed resolved (:func:`cogan_tf.record.resolved_seed`), and for an evaluation the architecture
   the record holds.

:func:`existing` does steps 2 and 3 for a run found on disk (the evaluation program and tools).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional

from cogan_tf import cli, config as config_lib, device, outputs, pairs, tf_config
from cogan_tf import record as record_lib
from cogan_tf.config import ModelConfig, TrainConfig
from cogan_tf.errors import DataError
from cogan_tf.record import RunRecord


@dataclasses.dataclass(frozen=True)
class Run:
    """A prepared run: its resolved configs, its record (config.json settled with the record inside its
    newest checkpoint), the checkpoint it resumes from (None: a new run) and, training as the chief,
    the lock on its checkpoint folder; ``role``, this process's part of a run of several workers (TF_CONFIG,
    read once). Release the lock with :meth:`close` (or use it in ``with``)."""

    model_cfg: ModelConfig
    train_cfg: TrainConfig
    training: bool
    record: RunRecord
    resume: Optional[str] = None
    role: tf_config.Role = tf_config.Role()
    lock: Optional[outputs.RunLock] = None

    @property
    def chief(self) -> bool:
        return self.role.chief

    @property
    def directory(self) -> str:
        """The run's checkpoint folder."""
        return self.record.directory

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def prepare(model_cfg: ModelConfig, train_cfg: TrainConfig, training: bool = True,
            explicit: Optional[Dict[str, str]] = None, role: Optional[tf_config.Role] = None, check_only: bool = False,
            data_files: bool = True, log=print) -> Optional[Run]:
    """The run of ``model_cfg`` and ``train_cfg``, decided (see the module's docstring). Refusals are
    one-line errors; those that need no TensorFlow come before it starts. ``explicit``: the model-config
    fields set by flags (an evaluation names the ones the record overrides); ``role``: this process's part of a run of
    several workers (default: read from TF_CONFIG). ``check_only``: only the checks that need neither
    TensorFlow nor the lock, then None. ``data_files``: the training reads the data files (not arrays it
    is handed), so a pair's missing files are refused here."""
    role = role or tf_config.role(train_cfg.strategy)
    if role.chief:  # the others write none of the folders, and do not probe them while the chief does
        outputs.check_output_dirs(model_cfg, train_cfg, training=training)
    directory = record_lib.run_checkpoint_dir(model_cfg, train_cfg)
    record = RunRecord.read(directory)
    _refuse_another_setup(record, model_cfg, train_cfg, training)
    if training and data_files and getattr(model_cfg, "pair", pairs.DEFAULT_PAIR) != pairs.DEFAULT_PAIR:
        # A pair's second domain is written once by invert.py (the default's is written on the spot).
        pairs.require_files(train_cfg.data_dir, train_cfg.dataset, model_cfg.pair)
    if check_only:
        return None
    lock = None
    if training and role.chief:  # of several workers, the chief alone
        lock = outputs.RunLock.acquire(directory, wait=train_cfg.wait_for_lock, log=log)
    try:
        cli.start_tensorflow()
        device.configure(train_cfg, log)  # before TensorFlow's first op: which devices, TF32, determinism
        if lock is not None and lock.waited:  # the run that held the folder has written to it since
            record = RunRecord.read(directory)
            _refuse_another_setup(record, model_cfg, train_cfg, training)
        settled, resume = _settle(record, training, log)
        if settled.config != record.config:  # the checkpoint's own record says otherwise: check that
            _refuse_another_setup(settled, model_cfg, train_cfg, training)
        train_cfg = record_lib.resolved_seed(train_cfg, settled)
        if not training:
            model_cfg = record_lib.stored_model_config(model_cfg, train_cfg, settled, explicit, log)
        return Run(model_cfg, train_cfg, training, settled, resume, role, lock)
    except BaseException:
        if lock is not None:
            lock.abandon()  # a refused run leaves nothing behind
        raise


def existing(record: RunRecord, data_dir: str, log=print) -> Run:
    """The evaluation of the run ``record`` describes (found by :func:`cogan_tf.record.find_run`), rebuilt
    from its record alone: settled with the record inside its newest checkpoint, its configs read from it."""
    cli.start_tensorflow()
    record, resume = _settle(record, training=False, log=log)
    model_cfg = config_lib.model_config_from_dict(record.config["model"], record.config["model_config"])
    train_cfg = record.train_config(data_dir)
    device.configure(train_cfg, log)
    expected = record_lib.run_checkpoint_dir(model_cfg, train_cfg)
    if os.path.abspath(expected) != os.path.abspath(record.directory):
        raise DataError(f"{record.directory}: its config.json describes a run that lives in {expected}")
    return Run(model_cfg, train_cfg, False, record, resume)


def _refuse_another_setup(record: RunRecord, model_cfg: ModelConfig, train_cfg: TrainConfig,
                          training: bool) -> None:
    """A resume with another model, architecture, seed or data setup (training), or an evaluation of
    another model, refused in one line (:func:`cogan_tf.record.check_setup`)."""
    if record.config is None:
        return
    if training:
        record_lib.check_setup(record, train_cfg.model, model_cfg, record_lib.resolved_seed(train_cfg, record),
                               training=True)
    elif record.config["model"] != train_cfg.model:
        record_lib.check_setup(record, train_cfg.model, model_cfg, train_cfg, training=False)


def _settle(record: RunRecord, training: bool, log):
    """(``record`` settled with the record inside its newest checkpoint that reads, that checkpoint's
    path or None): :meth:`cogan_tf.record.RunRecord.settled`. Reading a checkpoint takes TensorFlow."""
    if not record.checkpoint_paths():
        return record, None
    from cogan_tf import checkpoints  # TensorFlow: after every refusal that needs none

    path, embedded = checkpoints.embedded_record(record)
    settled, line = record.settled(path, embedded, training)
    if line:
        log(line)
    return settled, path
