"""From config objects to a run: pick the model's GAN class, resolve the seed, train or evaluate.

Imported by :mod:`cogan_tf.evaluate` (to rebuild a GAN from a checkpoint), never the other way round."""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

from cogan_tf import config as config_lib
from cogan_tf import train


def make_gan(model_cfg, train_cfg: config_lib.TrainConfig, arrays=None, strategy=None,
             inherit: Sequence[str] = ()) -> train.GAN:
    """The GAN object of ``train_cfg.model``; ``arrays`` replaces loading the data (tests);
    ``strategy`` replaces the one ``train_cfg.strategy`` names; the model-config fields in ``inherit``
    come from the checkpoint being resumed, if any (``train.resolve_model_config``)."""
    if train_cfg.model == "cogan":
        from cogan_tf.cogan import CoGAN
        cls = CoGAN
    elif train_cfg.model == "vanilla":
        from cogan_tf.vanilla import VanillaGAN
        cls = VanillaGAN
    elif train_cfg.model == "clustergan":
        from cogan_tf.clustergan import ClusterGAN
        cls = ClusterGAN
    else:
        raise ValueError(f"unknown model {train_cfg.model!r}")
    ckpt_dir = config_lib.run_checkpoint_dir(model_cfg, train_cfg)
    train_cfg = train.resolve_seed(train_cfg, ckpt_dir)
    model_cfg = train.resolve_model_config(model_cfg, ckpt_dir, inherit)
    if strategy is None and train_cfg.strategy != "default":
        strategy = train.make_strategy(train_cfg.strategy)
    return cls(model_cfg, train_cfg, arrays=arrays, strategy=strategy)


def stored_model_config(model_cfg, train_cfg: config_lib.TrainConfig, explicit=None, log=print):
    """Evaluation's model config: the one config.json beside the checkpoint records (the given one if
    there is none). ``explicit`` maps the fields a flag set (``{"d_h0_filters": "--d_h0_filters=4"}``);
    a flag that conflicts with the record gets one line saying the recorded values are used."""
    ckpt_dir = config_lib.run_checkpoint_dir(model_cfg, train_cfg)
    saved = config_lib.load_run_config(os.path.join(ckpt_dir, "config.json"))
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
        inherit: Sequence[str] = (), explicit=None):
    """Train (resuming if a checkpoint exists) or, with ``is_train=False``, restore and evaluate.
    Returns the GAN object (for ``python main.py``'s sample-quality report,
    :func:`cogan_tf.evaluate.report_for_gan`). ``inherit``: see ``make_gan``.

    Evaluation rebuilds the architecture config.json records (see :func:`stored_model_config`;
    ``explicit``: the model-config fields set by flags); training-only settings never block it."""
    config_lib.check_output_dirs(model_cfg, train_cfg, training=is_train)
    if not is_train:
        model_cfg = stored_model_config(model_cfg, train_cfg, explicit, log)
    gan = make_gan(model_cfg, train_cfg, arrays=arrays, strategy=strategy, inherit=inherit)
    for k in inherit:
        if getattr(gan.model_cfg, k) != getattr(model_cfg, k):
            log(f" [*] {k} = {getattr(gan.model_cfg, k)} from the checkpoint being resumed "
                f"(the default is {getattr(model_cfg, k)})")
    log(f" [*] {gan.name}: {dataclasses.asdict(gan.model_cfg)}; seed {gan.seed}")
    if is_train:
        train.fit(gan, log=log)
    else:
        train.evaluate(gan, log=log)
    return gan
