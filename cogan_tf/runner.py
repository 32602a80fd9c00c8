"""From a prepared run (:mod:`cogan_tf.run`) to a trained or evaluated GAN: the model's GAN class, built
from the run's configs and handed to the loop.

Imported by :mod:`cogan_tf.evaluate` (to rebuild a GAN from a checkpoint), never the other way round."""

from __future__ import annotations

import dataclasses
from typing import Optional

from cogan_tf import config as config_lib, device, gan as gan_lib, record as record_lib, run as run_lib, train
from cogan_tf.run import Run


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


def make_gan(model_cfg, train_cfg: config_lib.TrainConfig, arrays=None, strategy=None, log=print) -> gan_lib.GAN:
    """The GAN object of ``train_cfg.model`` (seed None: 0); ``arrays`` replaces loading the data (tests);
    ``strategy`` replaces the one ``train_cfg.strategy`` names."""
    if train_cfg.seed is None:
        train_cfg = dataclasses.replace(train_cfg, seed=0)
    cls = gan_class(train_cfg.model, model_cfg)
    if strategy is None and train_cfg.strategy != "default":
        strategy = gan_lib.make_strategy(train_cfg.strategy, multiworker_options=dict(
            wait_for_workers=train_cfg.wait_for_workers, log=log))
    return cls(model_cfg, train_cfg, arrays=arrays, strategy=strategy)


def execute(run: Run, log=print, arrays=None, strategy=None) -> gan_lib.GAN:
    """Train the prepared ``run`` (resuming if it names a checkpoint) or, if it is an evaluation, restore
    and evaluate it. Returns the GAN object (for ``python main.py``'s sample-quality report,
    :func:`cogan_tf.evaluate.scoring.report_for_gan`)."""
    gan = make_gan(run.model_cfg, run.train_cfg, arrays=arrays, strategy=strategy, log=log)
    log(device.describe(gan.strategy, gan.train_cfg))
    log(f" [*] {gan.name}: {dataclasses.asdict(gan.model_cfg)}; seed {gan.seed}")
    if run.training:
        train.fit(gan, run, log=log)
    else:
        train.report(gan, run, log=log)
    return gan


def run(model_cfg, train_cfg: config_lib.TrainConfig, is_train: bool = True, log=print, arrays=None, strategy=None,
        explicit=None) -> gan_lib.GAN:
    """:func:`cogan_tf.run.prepare` then :func:`execute`, the lock released at the end: a whole run in
    this process (the benchmark, tests)."""
    with run_lib.prepare(model_cfg, train_cfg, training=is_train, explicit=explicit, data_files=arrays is None,
                         log=log) as prepared:
        return execute(prepared, log=log, arrays=arrays, strategy=strategy)


def gan_from_checkpoint(checkpoint_dir: str, data_dir: str, model: Optional[str] = None, log=print,
                        record: Optional[record_lib.RunRecord] = None):
    """Rebuild the GAN from the run's record (its config.json, settled with the record inside its newest
    checkpoint) and restore the latest checkpoint. ``record``: the run's, if the caller has found it
    (:func:`cogan_tf.record.find_run`)."""
    prepared = run_lib.existing(record or record_lib.find_run(checkpoint_dir, model), data_dir, log=log)
    gan = make_gan(prepared.model_cfg, prepared.train_cfg, log=log)
    loop = train.restore(gan, prepared, log=log)
    gan.restore_best(loop, log=log)  # ClusterGAN with --val_size: the checkpoint kept by validation
    return gan
