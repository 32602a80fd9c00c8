"""Configuration objects: what the entry scripts build from flags and hand to the library.

``TrainConfig`` is the run (data, schedule, directories, seed, speed switches); the model configs are
the architecture and its quirks. The model config is stored beside each checkpoint, so a checkpoint
can be rebuilt without flags (``load_model_config``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Optional, Union

from cogan_tf import fileio
from cogan_tf.errors import DataError, UsageError

MODELS = ("cogan", "vanilla", "clustergan")
# --mixed_precision_dtype -> the Keras dtype policy of --mixed_precision (cogan_tf/precision.py).
MIXED_PRECISION = {"float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
MIXED_PRECISION_POLICIES = tuple(MIXED_PRECISION.values())


@dataclasses.dataclass(frozen=True)
class CoganConfig:
    """The CoGAN of REFERENCE.md §1. Defaults are the original's code, quirks included."""

    z_dim: int = 100
    c_dim: int = 1
    output_size: int = 28
    # Quirk: the original computes G's h0 but feeds z to h1, so h0 is dead. True: z -> h0 -> h1 (the seed's table).
    h0_feeds_h1: bool = False
    # Quirk: D's h0 has c_dim (1) filters. The corrected network has 64.
    d_h0_filters: Optional[int] = None
    # Quirk: BatchNorm uses the batch's statistics also when sampling (the original's sampler).
    bn_batch_stats_at_inference: bool = True
    # Quirk Q1: the original's losses take sigmoid(h3) as their logits (a double sigmoid). True: h3.
    loss_on_logits: bool = False
    # Quirk Q2: BatchNorm on the 2-D layers (g_h0, g_h1, d_h2) normalises with ONE scalar mean and
    # variance over batch x features. True: per-feature statistics.
    bn_per_feature: bool = False
    # BatchNorm statistics across tf.distribute replicas (the global batch), see README.
    sync_batchnorm: bool = False
    real_target: float = 0.9
    fake_target: float = 0.1
    gen_target: float = 0.9
    g_updates_per_step: int = 2

    @property
    def d_h0_channels(self) -> int:
        return self.c_dim if self.d_h0_filters is None else self.d_h0_filters


@dataclasses.dataclass(frozen=True)
class VanillaConfig:
    """The vanilla GAN of REFERENCE.md §2 (JasonFengGit)."""

    z_dim: int = 128
    # 128 is what the original trains: its `1024 if self.device == 'cuda' else 128` compares a torch.device
    # with a string, which is never equal, so it runs 128 units on a GPU too. 1024 is the seed's text
    # (main.py --hidden_size 1024).
    hidden: int = 128
    dropout: float = 0.3
    leak: float = 0.2


@dataclasses.dataclass(frozen=True)
class ClusterGanConfig:
    """The ClusterGAN of REFERENCE.md §3 (JasonFengGit)."""

    z_dim: int = 30
    n_classes: int = 10
    leak: float = 0.2
    betan: float = 10.0
    betac: float = 10.0
    weight_decay: float = 2.5e-5
    g_every: int = 5
    # Standard deviation of z_n: the original's N(0, 1). The ClusterGAN paper draws z_n ~ N(0, 0.1^2).
    zn_sigma: float = 1.0
    # The recipe these values started from (CLUSTERGAN_RECIPES), recorded with the checkpoint.
    recipe: str = "original"
    # "bce": the original's sigmoid discriminator and BCE losses; "wgan_gp": the paper authors' critic
    # (no sigmoid, Wasserstein losses, gradient penalty gp_lambda on random interpolates).
    critic: str = "bce"
    gp_lambda: float = 10.0
    # None: PyTorch's default initial weights (the original); a number: weights N(0, init_std^2) and
    # zero biases (the paper authors' 0.02).
    init_std: Optional[float] = None


# --recipe: the ClusterGAN config fields each recipe sets (its batch, epochs and Adam are main.py's
# flag defaults). "paper": the ClusterGAN paper authors' code (REFERENCE.md §3): sigma 0.1, a WGAN-GP
# critic with 5 critic updates per G+E update (g_every), N(0, 0.02) weights, no weight decay (their
# l2_regularizer terms are never added to a loss), beta_n = beta_c = 10.
CLUSTERGAN_RECIPES = {
    "original": {},
    "paper": dict(recipe="paper", zn_sigma=0.1, critic="wgan_gp", gp_lambda=10.0, init_std=0.02,
                  weight_decay=0.0, betan=10.0, betac=10.0, g_every=5),
}


def clustergan_config(recipe: str = "original", **overrides) -> "ClusterGanConfig":
    """The ClusterGanConfig of a recipe, with ``overrides`` (explicit flags) on top."""
    if recipe not in CLUSTERGAN_RECIPES:
        raise ValueError(f"unknown ClusterGAN recipe {recipe!r}: choose one of {', '.join(CLUSTERGAN_RECIPES)}")
    return ClusterGanConfig(**{**CLUSTERGAN_RECIPES[recipe], **overrides})


ModelConfig = Union[CoganConfig, VanillaConfig, ClusterGanConfig]
MODEL_CONFIGS = {"cogan": CoganConfig, "vanilla": VanillaConfig, "clustergan": ClusterGanConfig}
# What a model config field meant before it existed: a config.json written by older code has no entry
# for it and was trained with this value, which is not always today's default. (The CoGAN port
# trained with the usual single sigmoid and per-feature statistics until Q1/Q2 became the defaults.)
# Fields not listed here were added with the old behaviour as their default.
LEGACY_FIELD_VALUES = {"cogan": {"loss_on_logits": True, "bn_per_feature": True}}
# The main.py flag that sets each model config field (for one-line refusals), per model.
FIELD_FLAGS = {
    "cogan": {"loss_on_logits": "--loss_on_logits", "bn_per_feature": "--bn_per_feature",
              "h0_feeds_h1": "--h0_feeds_h1", "d_h0_filters": "--d_h0_filters",
              "bn_batch_stats_at_inference": "--bn_moving_average"},
    "vanilla": {"hidden": "--hidden_size"},
    "clustergan": {"zn_sigma": "--zn_sigma", "recipe": "--recipe", "critic": "--recipe", "gp_lambda": "--recipe",
                   "init_std": "--recipe", "weight_decay": "--recipe"},
}
# How the CoGAN's sample grids map the generator's [0, 1] output to bytes (images.py).
GRID_SCALINGS = ("stretch", "fixed")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One run. Defaults are the original CoGAN's flags."""

    model: str = "cogan"
    dataset: str = "mnist"
    data_dir: str = "data"
    epoch: int = 25
    learning_rate: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 128
    train_size: float = math.inf
    checkpoint_dir: str = "checkpoint"
    sample_dir: str = "samples"
    log_dir: str = "logs"
    export_dir: str = "export"
    evaluate_dir: str = "evaluate"
    seed: Optional[int] = None
    jit_compile: bool = False
    log_every: int = 1
    sample_every: int = 100
    save_every: int = 500
    # The CoGAN paper's split: the two domains get disjoint halves of the digits (the original: the same digits).
    disjoint_domains: bool = False
    strategy: str = "default"
    # None: float32 throughout (the original). "mixed_float16" (GPUs, dynamic loss scaling) or
    # "mixed_bfloat16": layers compute in that type, variables stay float32 (cogan_tf/precision.py).
    mixed_precision: Optional[str] = None
    max_steps: Optional[int] = None  # stop early after this many steps in total (tests, benchmarks)
    # Models that write their grids per epoch (vanilla, clustergan: the originals' every 10th epoch).
    sample_every_epochs: int = 10
    # CoGAN grids, quirk Q3: "stretch" as the original's scipy.misc.imsave (each grid min-max stretched
    # to 0..255); "fixed": output x 255.
    grid_scaling: str = "stretch"
    # ClusterGAN: hold out this many training images (seeded) to keep the checkpoint with the best
    # validation clustering, as the ClusterGAN paper did (0: train on all, no selection).
    val_size: int = 0
    # Checkpoints kept in the checkpoint directory (the oldest are deleted); None keeps all of them.
    keep_checkpoints: Optional[int] = 5


def model_config_to_dict(cfg: ModelConfig) -> dict:
    return dataclasses.asdict(cfg)


# The optimizer hyperparameters config.json records. A resumed run applies the values it is given
# (train.apply_optimizer_hyperparameters), one log line for each that changed.
OPTIMIZER_FIELDS = ("learning_rate", "beta1", "beta2")


def checkpoint_subdir(model: str, dataset: str, batch_size: int, output_size: int = 28) -> str:
    """The run's directory under --checkpoint_dir: the original's ``mnist_128_28`` for the CoGAN,
    ``<model>_mnist_512_28`` for the others."""
    if model == "cogan":
        return f"{dataset}_{batch_size}_{output_size}"
    return f"{model}_{dataset}_{batch_size}_{output_size}"


def run_checkpoint_dir(model_cfg: ModelConfig, train_cfg: "TrainConfig") -> str:
    return os.path.join(train_cfg.checkpoint_dir, checkpoint_subdir(
        train_cfg.model, train_cfg.dataset, train_cfg.batch_size, getattr(model_cfg, "output_size", 28)))


def other_runs(model_cfg: ModelConfig, train_cfg: "TrainConfig") -> list:
    """``(directory, batch_size)`` of the other runs of the same model and dataset under
    --checkpoint_dir (another --batch_size gives another directory), for a one-line hint."""
    mine = run_checkpoint_dir(model_cfg, train_cfg)
    root = train_cfg.checkpoint_dir
    out = []
    if not os.path.isdir(root):
        return out
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        try:
            saved = load_run_config(os.path.join(d, "config.json"))
        except (OSError, ValueError):
            continue
        if (os.path.abspath(d) != os.path.abspath(mine) and isinstance(saved, dict)
                and saved.get("model") == train_cfg.model and saved.get("dataset") == train_cfg.dataset
                and os.path.abspath(run_checkpoint_dir(model_cfg, dataclasses.replace(
                    train_cfg, batch_size=saved.get("batch_size")))) == os.path.abspath(d)):
            out.append((d, saved.get("batch_size")))
    return out


def output_dirs(model_cfg: ModelConfig, train_cfg: "TrainConfig", training: bool = True) -> dict:
    """Flag -> directory this run writes into: training writes checkpoints, grids, TensorBoard logs and
    the export; evaluation its grids and the export."""
    if training:
        return {"checkpoint_dir": run_checkpoint_dir(model_cfg, train_cfg), "sample_dir": train_cfg.sample_dir,
                "log_dir": train_cfg.log_dir, "export_dir": train_cfg.export_dir}
    return {"evaluate_dir": train_cfg.evaluate_dir, "export_dir": train_cfg.export_dir}


def check_output_dirs(model_cfg: ModelConfig, train_cfg: "TrainConfig", training: bool = True) -> None:
    """Create every directory the run writes into and write a probe file there, so that a path under a
    regular file (or on a read-only disk) is refused in one line before training, not after it."""
    for flag, path in output_dirs(model_cfg, train_cfg, training).items():
        why = fileio.unwritable_dir(path)
        if why:
            raise UsageError(f"--{flag}={getattr(train_cfg, flag)}: cannot write into {path} ({why}); "
                             "pick another directory")


def save_run_config(path: str, model: str, model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
    """Write the model config (and what the data order depends on, and the optimizer's
    hyperparameters) as JSON beside a checkpoint."""
    payload = {
        "model": model,
        "model_config": dataclasses.asdict(model_cfg),
        "seed": train_cfg.seed,
        "dataset": train_cfg.dataset,
        "batch_size": train_cfg.batch_size,
        "disjoint_domains": train_cfg.disjoint_domains,
        "train_size": None if math.isinf(train_cfg.train_size) else train_cfg.train_size,
        "mixed_precision": train_cfg.mixed_precision,
        "grid_scaling": train_cfg.grid_scaling,
        **{k: getattr(train_cfg, k) for k in OPTIMIZER_FIELDS},
        "val_size": train_cfg.val_size,
    }
    fileio.atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def load_run_config(path: str) -> Optional[dict]:
    """The config.json at ``path`` (None if there is none); a damaged one is a one-line DataError."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        saved = e
    if not isinstance(saved, dict):
        raise DataError(f"{path}: not a run's config.json ({saved}); put the right one back, or delete it "
                        "(the next training run writes it again)")
    return saved


def complete_model_config_dict(model: str, d: dict) -> dict:
    """A saved model config with the fields it lacks filled in as the code that wrote it used them:
    :data:`LEGACY_FIELD_VALUES` where that differs from today's default, else the default."""
    defaults = dataclasses.asdict(MODEL_CONFIGS[model]())
    return {**defaults, **LEGACY_FIELD_VALUES.get(model, {}), **d}


def model_config_from_dict(model: str, d: dict) -> ModelConfig:
    return MODEL_CONFIGS[model](**complete_model_config_dict(model, d))
