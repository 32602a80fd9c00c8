"""From config objects to a run: pick the model's GAN class, resolve what a resumed run inherits, train or evaluate.

Imported by :mod:`cogan_tf.evaluate` (to rebuild a GAN from a checkpoint), never the other way round."""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence

from cogan_tf import checkpoints, config as config_lib, device, gan as gan_lib, outputs, rundir, train
from cogan_tf.errors import DataError


def gan_class(model: str, model_cfg=None):
    """The GAN subclass of ``model`` (of the CoGAN's recipe in ``model_cfg``), imported on demand (the
    ClusterGAN's brings in scikit-learn)."""
    if model == "cogan" and getattr(model_cfg, "recipe", "original") != "original":
        from cogan_tf.cogan_paper import PaperCoGAN
        return PaperCoGAN
    if model == "cogan":
        from cogan_tf.cogan import CoGAN
        return CoGAN
    if model == "vanilla":
        from cogan_tf.vanilla import VanillaGAN
        return VanillaGAN
    if model == "clustergan":
        from cogan_tf.clustergan import ClusterGAN
        return ClusterGAN
    raise ValueError(f"unknown model {model!r}")


def make_gan(model_cfg, train_cfg: config_lib.TrainConfig, arrays=None, strategy=None,
             inherit: Sequence[str] = (), record: Optional[rundir.RunRecord] = None, training: bool = True,
             log=print) -> gan_lib.GAN:
    """The GAN object of ``train_cfg.model``; ``arrays`` replaces loading the data (tests);
    ``strategy`` replaces the one ``train_cfg.strategy`` names; the seed and the model-config fields in
    ``inherit`` come from the checkpoint being resumed, if any (``checkpoints.resolve_seed``,
    ``checkpoints.resolve_model_config``). ``record``: the run directory's record, if the caller has
    read it; ``training``: it is to be resumed (checkpoints with no record of their seed are refused)."""
    record = _record(model_cfg, train_cfg, record, training, log)
    train_cfg = checkpoints.resolve_seed(train_cfg, record, training)
    model_cfg = checkpoints.resolve_model_config(model_cfg, record, inherit)
    cls = gan_class(train_cfg.model, model_cfg)
    if strategy is None and train_cfg.strategy != "default":
        strategy = gan_lib.make_strategy(train_cfg.strategy, multiworker_options=dict(
            wait_for_workers=train_cfg.wait_for_workers, log=log))
    return cls(model_cfg, train_cfg, arrays=arrays, strategy=strategy)


def _record(model_cfg, train_cfg: config_lib.TrainConfig, record: Optional[rundir.RunRecord], training: bool = True,
            log=print) -> rundir.RunRecord:
    """``record`` if it is the record of this run's directory, else that directory read now; checked
    against the record inside its newest checkpoint (``checkpoints.with_embedded_record``)."""
    ckpt_dir = rundir.run_checkpoint_dir(model_cfg, train_cfg)
    if record is None or os.path.abspath(record.directory) != os.path.abspath(ckpt_dir):
        record = rundir.RunRecord.read(ckpt_dir)
    return checkpoints.with_embedded_record(record, training, log)


def stored_model_config(model_cfg, train_cfg: config_lib.TrainConfig, record: rundir.RunRecord, explicit=None,
                        log=print):
    """Evaluation's model config: the one the run's record holds (the given one if there is none).
    ``explicit`` maps the fields a flag set (``{"d_h0_filters": "--d_h0_filters=4"}``); a flag that
    conflicts with the record gets one line saying the recorded values are used."""
    ckpt_dir, saved = record.directory, record.config
    if not saved or saved.get("model") != train_cfg.model or not isinstance(saved.get("model_config"), dict):
        return model_cfg
    stored = config_lib.model_config_from_dict(train_cfg.model, saved["model_config"])
    conflicts = {}  # flag -> the recorded values it disagrees with (--corrected sets several fields)
    for field, flag in (explicit or {}).items():
        if hasattr(stored, field) and getattr(model_cfg, field) != getattr(stored, field):
            conflicts.setdefault(flag, []).append(f"{field}={getattr(stored, field)!r}")
    for flag, recorded in conflicts.items():
        log(f" [!] {flag} ignored: {ckpt_dir} was trained with {', '.join(recorded)}, which evaluation uses")
    return stored


def run(model_cfg, train_cfg: config_lib.TrainConfig, is_train: bool = True, log=print, arrays=None, strategy=None,
        inherit: Sequence[str] = (), explicit=None, record: Optional[rundir.RunRecord] = None):
    """Train (resuming if a checkpoint exists) or, with ``is_train=False``, restore and evaluate.
    Returns the GAN object (for ``python main.py``'s sample-quality report,
    :func:`cogan_tf.evaluate.report_for_gan`). ``inherit``: see ``make_gan``; ``record``: the run
    directory's record if the caller has read it (:func:`cogan_tf.rundir.check_before_tensorflow`).

    Evaluation rebuilds the architecture the run's record holds (see :func:`stored_model_config`;
    ``explicit``: the model-config fields set by flags); training-only settings never block it."""
    outputs.check_output_dirs(model_cfg, train_cfg, training=is_train)
    device.configure(train_cfg, log)  # before TensorFlow's first op: which devices, TF32, determinism
    # What the checkpoint directory holds, read once for the whole run.
    record = _record(model_cfg, train_cfg, record, is_train, log)
    if not is_train:
        model_cfg = stored_model_config(model_cfg, train_cfg, record, explicit, log)
    gan = make_gan(model_cfg, train_cfg, arrays=arrays, strategy=strategy, inherit=inherit, record=record,
                   training=is_train, log=log)
    log(device.describe(gan.strategy, gan.cfg))
    record = _record(gan.model_cfg, gan.cfg, record, is_train, log)
    for k in inherit:
        if getattr(gan.model_cfg, k) != getattr(model_cfg, k):
            log(f" [*] {k} = {getattr(gan.model_cfg, k)} from the checkpoint being resumed "
                f"(the default is {getattr(model_cfg, k)})")
    log(f" [*] {gan.name}: {dataclasses.asdict(gan.model_cfg)}; seed {gan.seed}")
    if is_train:
        train.fit(gan, log=log, record=record)
    else:
        train.evaluate(gan, log=log, record=record)
    return gan


def gan_from_checkpoint(checkpoint_dir: str, data_dir: str, model: Optional[str] = None, log=print,
                        record: Optional[rundir.RunRecord] = None):
    """Rebuild the GAN from the run's record (its config.json, checked against the record inside its
    newest checkpoint) and restore the latest checkpoint. ``record``: the run's, if the caller has found
    it (:func:`cogan_tf.rundir.find_run`)."""
    record = checkpoints.with_embedded_record(record or rundir.find_run(checkpoint_dir, model), training=False,
                                              log=log)
    kind = record.config["model"]
    model_cfg = config_lib.model_config_from_dict(kind, record.config["model_config"])
    train_cfg = record.train_config(data_dir)
    device.configure(train_cfg, log)
    gan = make_gan(model_cfg, train_cfg, record=record, training=False, log=log)
    expected = os.path.join(train_cfg.checkpoint_dir, gan.checkpoint_subdir())
    if os.path.abspath(expected) != os.path.abspath(record.directory):
        raise DataError(f"{record.directory}: its config.json describes a run that lives in {expected}")
    loop = train.restore(gan, log=log, record=record)
    if hasattr(gan, "restore_best"):
        gan.restore_best(loop, log=log)  # ClusterGAN with --val_size: the checkpoint kept by validation
    return gan
