"""Configuration objects: what the entry scripts build from flags and hand to the library.

``TrainConfig`` is the run (data, schedule, directories, seed, speed switches); the model configs are
the architecture and its quirks. The model config is stored beside each checkpoint, so a checkpoint
can be rebuilt without flags (``model_config_from_dict``); a stored value is checked against its
field's annotated type first (``field_types``, ``value_problem``).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Dict, Optional, Union

from cogan_tf.pairs import PAIRS

MODELS = ("cogan", "vanilla", "clustergan")
# --mixed_precision_dtype -> the Keras dtype policy of --mixed_precision (cogan_tf/precision.py).
MIXED_PRECISION = {"float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
MIXED_PRECISION_POLICIES = tuple(MIXED_PRECISION.values())
# --device: where a run trains (cogan_tf/device.py). auto: the GPUs TensorFlow sees, else the CPU.
DEVICES = ("auto", "cpu", "gpu")
# Adam's arithmetic (--adam, cogan_tf/adam.py): TF1's fused ApplyAdam kernel (the original CoGAN's) or Keras's.
ADAM_ARITHMETICS = ("tf1", "keras")


@dataclasses.dataclass(frozen=True)
class CoganConfig:
    """The CoGAN of docs/ORIGINAL.md §1. Defaults are the original's code, quirks included."""

    z_dim: int = 100
    c_dim: int = 1
    output_size: int = 28
    # Quirk: the original computes G's h0 but feeds z to h1, so h0 is dead. True: z -> h0 -> h1 (the intended chain, §1.2).
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
    # The pair of domains (cogan_tf/pairs.py, docs/ORIGINAL.md §5.2): domain 2 is this transform of the
    # digits. Recorded with every checkpoint and export, so resuming and scoring use the pair trained on.
    pair: str = "negative"
    real_target: float = 0.9
    fake_target: float = 0.1
    gen_target: float = 0.9
    g_updates_per_step: int = 2
    # "original": andrewliao11's networks and training (the rest of this config); "paper": the CoGAN paper's
    # digit network and its Caffe training; "conditional": the conditional GAN the paper compares it with, on
    # the same network (docs/ORIGINAL.md §5.4-§5.7; COGAN_RECIPES).
    recipe: str = "original"
    # The paper's network: how many of G's 5 layers (from z) and of D's 4 layers (from the output) the two
    # domains share; the paper's CoGAN: 4 and 3.
    g_shared_layers: int = 4
    d_shared_layers: int = 3
    # The paper's network's initial weights: "caffe" (its Caffe model's) or "pytorch" (the official PyTorch
    # version's), docs/ORIGINAL.md §5.4.
    paper_init: str = "caffe"

    @property
    def d_h0_channels(self) -> int:
        return self.c_dim if self.d_h0_filters is None else self.d_h0_filters


@dataclasses.dataclass(frozen=True)
class VanillaConfig:
    """The vanilla GAN of docs/ORIGINAL.md §2 (JasonFengGit)."""

    z_dim: int = 128
    # 128 is what the original trains: its `1024 if self.device == 'cuda' else 128` compares a torch.device
    # with a string, which is never equal, so it runs 128 units on a GPU too. 1024 is the width its README describes
    # (main.py --hidden_size 1024).
    hidden: int = 128
    dropout: float = 0.3
    leak: float = 0.2


@dataclasses.dataclass(frozen=True)
class ClusterGanConfig:
    """The ClusterGAN of docs/ORIGINAL.md §3 (JasonFengGit)."""

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
    # zero biases (the paper authors' 0.02; their networks keep Glorot-uniform on D's and E's last layer).
    init_std: Optional[float] = None
    # "original": JasonFengGit's networks (LeakyReLU G, BatchNorm with gamma, "valid" convolutions);
    # "paper": the paper authors' (ReLU G, BatchNorm without gamma on batch statistics always, "same"
    # convolutions), clustergan_networks.py.
    networks: str = "original"
    # The gradient penalty's interpolation weight e: "per_sample" (Gulrajani et al.) or "per_batch",
    # one scalar for the whole batch as the paper authors' tf.random_uniform([]).
    gp_eps: str = "per_sample"


# --recipe for the CoGAN: the CoganConfig fields each recipe sets. "paper" and "conditional" train the paper's
# network (cogan_tf/paper_networks.py, docs/ORIGINAL.md §5.4, §5.5): the loss on D's logit with targets 1 and 0
# (Caffe's two-way softmax), per-channel BatchNorm statistics and Caffe's moving averages when sampling (its
# deploy network), one G update per D update.
_PAPER_TRAINING = dict(loss_on_logits=True, bn_per_feature=True, bn_batch_stats_at_inference=False, real_target=1.0,
                       fake_target=0.0, gen_target=1.0, g_updates_per_step=1)
COGAN_RECIPES = {"original": {}, "paper": dict(recipe="paper", **_PAPER_TRAINING),
                 "conditional": dict(recipe="conditional", **_PAPER_TRAINING)}
# CoganConfig.paper_init's values (cogan_tf/paper_layers.py).
PAPER_INITS = ("caffe", "pytorch")
# The largest g_shared_layers / d_shared_layers: the layer next to the image stays per domain.
COGAN_MAX_SHARED = {"g_shared_layers": 4, "d_shared_layers": 3}


def cogan_config(recipe: str = "original", **overrides) -> "CoganConfig":
    """The CoganConfig of a recipe, with ``overrides`` (explicit flags) on top."""
    if recipe not in COGAN_RECIPES:
        raise ValueError(f"unknown CoGAN recipe {recipe!r}: choose one of {', '.join(COGAN_RECIPES)}")
    return CoganConfig(**{**COGAN_RECIPES[recipe], **overrides})


# The values of ClusterGanConfig's string fields (config.json is checked against them).
CLUSTERGAN_CRITICS = ("bce", "wgan_gp")
CLUSTERGAN_NETWORKS = ("original", "paper")
CLUSTERGAN_GP_EPS = ("per_sample", "per_batch")


# --recipe: the ClusterGAN config fields each recipe sets (its batch, epochs and Adam are main.py's
# flag defaults). "paper": the ClusterGAN paper authors' code (docs/ORIGINAL.md §4): their networks, sigma
# 0.1, a WGAN-GP critic with one e per batch and 5 critic updates per G+E update (g_every), N(0, 0.02)
# weights, no weight decay (their l2_regularizer terms are never added to a loss), beta_n = beta_c = 10.
CLUSTERGAN_RECIPES = {
    "original": {},
    "paper": dict(recipe="paper", networks="paper", zn_sigma=0.1, critic="wgan_gp", gp_lambda=10.0, gp_eps="per_batch",
                  init_std=0.02, weight_decay=0.0, betan=10.0, betac=10.0, g_every=5),
}
# What a recipe changes for one dataset, resolved by main.py from --dataset (and recorded in config.json
# as the fields it sets). The authors' Fashion-MNIST runs: 40 dimensions of z_n and beta_n 0 (their
# README's `--dz 40 --beta_n 0`), so K-means clusters the softmax alone (ClusterGAN.cluster_report).
CLUSTERGAN_DATASET_VARIANTS = {("paper", "fashion_mnist"): dict(z_dim=40, betan=0.0)}


def clustergan_config(recipe: str = "original", dataset: Optional[str] = None, **overrides) -> "ClusterGanConfig":
    """The ClusterGanConfig of a recipe (its variant for ``dataset``, if it has one), with ``overrides``
    (explicit flags) on top."""
    if recipe not in CLUSTERGAN_RECIPES:
        raise ValueError(f"unknown ClusterGAN recipe {recipe!r}: choose one of {', '.join(CLUSTERGAN_RECIPES)}")
    variant = CLUSTERGAN_DATASET_VARIANTS.get((recipe, dataset), {})
    return ClusterGanConfig(**{**CLUSTERGAN_RECIPES[recipe], **variant, **overrides})


ModelConfig = Union[CoganConfig, VanillaConfig, ClusterGanConfig]
MODEL_CONFIGS = {"cogan": CoganConfig, "vanilla": VanillaConfig, "clustergan": ClusterGanConfig}
# The one flag <-> field table: per model, each main.py flag and the model-config fields it sets, in
# the order a field's own flag comes first (--corrected and --recipe set several fields: a flag of
# their own wins). main.py reads it for the flags a command line set; FIELD_FLAGS (derived) names
# the flag in one-line refusals.
FLAG_FIELDS = {
    "cogan": {"h0_feeds_h1": ("h0_feeds_h1",), "d_h0_filters": ("d_h0_filters",),
              "bn_moving_average": ("bn_batch_stats_at_inference",), "loss_on_logits": ("loss_on_logits",),
              "bn_per_feature": ("bn_per_feature",), "sync_batchnorm": ("sync_batchnorm",), "pair": ("pair",),
              "corrected": ("loss_on_logits", "bn_per_feature", "h0_feeds_h1", "d_h0_filters",
                            "bn_batch_stats_at_inference"),
              "g_shared_layers": ("g_shared_layers",), "d_shared_layers": ("d_shared_layers",),
              "paper_init": ("paper_init",),
              "recipe": ("recipe",) + tuple(_PAPER_TRAINING)},
    "vanilla": {"hidden_size": ("hidden",)},
    "clustergan": {"zn_sigma": ("zn_sigma",),
                   "recipe": ("recipe", "networks", "critic", "gp_lambda", "gp_eps", "init_std", "weight_decay",
                              "zn_sigma", "z_dim", "betan")},
}
# Per model: model-config field -> the flag that sets it ("--loss_on_logits").
FIELD_FLAGS = {model: {field: f"--{flag}" for flag, fields in reversed(table.items()) for field in fields}
               for model, table in FLAG_FIELDS.items()}
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
    # TensorBoard's per-step loss scalars every N steps (0: none): each is host work between two steps.
    summary_every: int = 10
    # "log": the original's per-step line (every log_every steps); "bar": a progress bar instead.
    progress: str = "log"
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
    # A second run on a checkpoint folder another run holds: False refuses it, True waits for the other to end.
    wait_for_lock: bool = False
    # --strategy multiworker: how long a worker waits for the others to start before it gives up (seconds).
    wait_for_workers: float = 600.0
    # Where to train (DEVICES; cogan_tf/device.py). Not recorded: a run may resume on another device.
    device: str = "auto"
    # TensorFloat-32 on GPUs that have it (Ampere and later): float32 matmuls and convolutions with 10-bit
    # mantissas. Off: float32 throughout, as the original computed. Recorded; a resume may not change it.
    tf32: bool = False
    # TensorFlow's op determinism (deterministic GPU kernels, or an error for an op that has none).
    # Recorded; a resume may not change it.
    deterministic: bool = False
    # Adam's arithmetic (ADAM_ARITHMETICS): "tf1", TF1's ApplyAdam kernel as the original CoGAN ran it (and
    # the fastest here, docs/PERFORMANCE.md); "keras", Keras's Adam. Recorded; a resume may not change it.
    adam: str = "tf1"


# Each original's run defaults: TrainConfig's own defaults are the CoGAN's, so build a run of another
# model with train_config(model), which starts from these.
MODEL_DEFAULTS = {
    "cogan": dict(dataset="mnist", batch_size=128, epoch=25, learning_rate=2e-4, beta1=0.5, beta2=0.999),
    "vanilla": dict(dataset="mnist", batch_size=512, epoch=500, learning_rate=2e-4, beta1=0.9, beta2=0.999),
    # The ClusterGAN's original trains on Fashion-MNIST.
    "clustergan": dict(dataset="fashion_mnist", batch_size=100, epoch=200, learning_rate=1e-4, beta1=0.5,
                       beta2=0.9),
}
# clustergan --recipe paper (the ClusterGAN paper authors' code, docs/ORIGINAL.md §4): their default dataset
# (MNIST), their 5,000 held-out validation images (§4.6), batch 64, and their length, 500,000 G+E updates
# of 5 critic batches each: 2,500,000 critic batches. An epoch here is one critic pass over the training
# images; on the authors' 55,000 that is 55,000 // 64 = 859 batches, so 2,500,000 / 859 = 2,910.4 -> 2,911
# epochs (500,109 G+E updates). On all 60,000 (--val_size 0: 937 batches) the same 2,911 epochs are 545,521.
# cogan --recipe paper / conditional (docs/ORIGINAL.md §5.5): the paper's disjoint halves of the digits and its
# 25,000 iterations (one D and one G update each: the Caffe solver's 50,000 alternating iterations); the
# epochs only bound it (25,000 steps are 92 epochs of 35,000 images at batch 128).
_PAPER_RUN = dict(disjoint_domains=True, max_steps=25000, epoch=1000)
RECIPE_DEFAULTS = {("clustergan", "paper"): dict(dataset="mnist", val_size=5000, batch_size=64, epoch=2911),
                   ("cogan", "paper"): _PAPER_RUN, ("cogan", "conditional"): _PAPER_RUN}


def defaults_for(model: str, recipe: Optional[str] = None) -> dict:
    """The TrainConfig fields whose defaults differ per model (and ClusterGAN recipe): dataset,
    batch_size, epoch, learning_rate, beta1, beta2 (and the paper recipe's val_size)."""
    if model not in MODEL_DEFAULTS:
        raise ValueError(f"unknown model {model!r}: choose one of {', '.join(MODELS)}")
    return {**MODEL_DEFAULTS[model], **RECIPE_DEFAULTS.get((model, recipe), {})}


def train_config(model: str = "cogan", recipe: Optional[str] = None, **fields) -> "TrainConfig":
    """A TrainConfig with ``model``'s original defaults (:func:`defaults_for`), ``fields`` on top."""
    return TrainConfig(model=model, **{**defaults_for(model, recipe), **fields})


def model_config(model: str, recipe: Optional[str] = None, dataset: Optional[str] = None, **fields) -> "ModelConfig":
    """The model config of ``model`` (the ClusterGAN's of ``recipe``, for ``dataset``), ``fields`` on top."""
    if model == "clustergan":
        return clustergan_config(recipe or "original", dataset, **fields)
    if model == "cogan":
        return cogan_config(recipe or "original", **fields)
    if recipe is not None:
        raise ValueError(f"recipe {recipe!r}: only the ClusterGAN has recipes")
    return MODEL_CONFIGS[model](**fields)


def model_config_to_dict(cfg: ModelConfig) -> dict:
    return dataclasses.asdict(cfg)


# The optimizer hyperparameters config.json records. A resumed run applies the values it is given
# (checkpoints.apply_optimizer_hyperparameters), one log line for each that changed.
OPTIMIZER_FIELDS = ("learning_rate", "beta1", "beta2")
# The TrainConfig switches of the arithmetic config.json records beside the precision; a resume may not change them.
ARITHMETIC_FIELDS = ("tf32", "deterministic", "adam")


def model_config_from_dict(model: str, d: dict) -> ModelConfig:
    return MODEL_CONFIGS[model](**d)


# --- validating a recorded config (config.json, and the record inside a checkpoint) -----------------

# The values a str field may take, where a fixed list exists; the other fields are checked by type.
FIELD_CHOICES = {"model": MODELS, "mixed_precision": MIXED_PRECISION_POLICIES, "grid_scaling": GRID_SCALINGS,
                 "device": DEVICES, "adam": ADAM_ARITHMETICS,
                 "recipe": tuple(dict.fromkeys((*CLUSTERGAN_RECIPES, *COGAN_RECIPES))), "critic": CLUSTERGAN_CRITICS,
                 "networks": CLUSTERGAN_NETWORKS, "gp_eps": CLUSTERGAN_GP_EPS, "pair": PAIRS}
# Seeds seed numpy (keras.utils.set_random_seed) and scikit-learn's K-means, both 32-bit.
SEED_LIMIT = 2 ** 32

_TYPE_NAMES = {bool: "true or false", int: "an integer >= 0", float: "a finite number", str: "a string"}


def field_types(cls) -> Dict[str, object]:
    """Field name -> its annotated type (``Optional[int]``, ``float``, ...) of a config dataclass: what a
    recorded value of that field must be. Read from the class, so a field added to it is covered."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def value_problem(name: str, tp, value) -> Optional[str]:
    """What ``value`` of field ``name`` (annotated ``tp``) should be instead ("an integer >= 0 or null"),
    or None if it fits. JSON has no int/bool distinction of its own: a bool is not an int here, and an
    int is a fine float. Integers are never negative: no recorded count, size or seed is."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is Union and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        if value is None:
            return None
        problem = value_problem(name, inner, value)
        return problem and f"{problem} or null"
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if ok and name == "seed" and value >= SEED_LIMIT:
            return f"an integer from 0 to {SEED_LIMIT - 1}"
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif tp is str:
        ok = isinstance(value, str) and value in FIELD_CHOICES.get(name, (value,))
        if isinstance(value, str) and not ok:
            return f"one of {', '.join(FIELD_CHOICES[name])}"
    else:
        raise TypeError(f"{name}: no check for a field of type {tp!r}")  # a new kind of field: add its check
    return None if ok else _TYPE_NAMES[tp]
