"""python main.py --is_train True: train the CoGAN (or --model vanilla / clustergan).

Flags keep the original's names and defaults; this script only parses and checks them, builds the
config objects and calls the library. Bad values are refused here, before TensorFlow starts.
"""

import math
import os
import sys

from absl import flags

from cogan_tf import cli, config as config_lib, data, outputs, pairs, run as run_lib, tf_config
from cogan_tf.errors import UsageError

DATASET = "dataset"


def _per_model(field, fmt=str):
    """``cogan: 128; vanilla: 512; ...`` for a flag's help: each original's default of a TrainConfig field."""
    return ("; ".join(f"{m}: {fmt(config_lib.defaults_for(m)[field])}" for m in config_lib.MODELS)
            + f"; clustergan --recipe paper: {fmt(config_lib.defaults_for('clustergan', 'paper')[field])}")


def define_flags():
    """Define main's flags; only its program calls this (no flag is defined when the module is imported)."""
    flags.DEFINE_integer("epoch", None, f"Epochs to train [{_per_model('epoch')}]")
    flags.DEFINE_float("learning_rate", None, f"Adam learning rate [{_per_model('learning_rate')}]")
    flags.DEFINE_float("beta1", None, f"Adam beta1 [{_per_model('beta1')}]")
    flags.DEFINE_float("beta2", None, f"Adam beta2 [{_per_model('beta2')}]")
    flags.DEFINE_float("train_size", math.inf, "Use at most this many images [inf]")
    flags.DEFINE_integer("batch_size", None, f"Batch size [{_per_model('batch_size')}]")
    flags.DEFINE_integer("output_size", 64, "Image size [64]; MNIST always uses 28, as the original")
    flags.DEFINE_integer("c_dim", 3, "Image channels [3]; MNIST always uses 1, as the original")
    flags.DEFINE_string("dataset", None, f"Dataset: {', '.join(data.DATASETS)} "
                        f"[{'; '.join(f'{m}: {config_lib.defaults_for(m)[DATASET]}' for m in config_lib.MODELS)}, as the originals]")
    flags.DEFINE_string("data_dir", "data", "Directory holding <dataset>/ [data]")
    flags.DEFINE_string("checkpoint_dir", "checkpoint", "Checkpoints go to <checkpoint_dir>/<dataset>_<batch>_28; "
                        "naming another folder puts the run's other outputs under it too, unless they are named "
                        "[checkpoint]")
    flags.DEFINE_string("sample_dir", None, "Sample grids [samples, or <checkpoint_dir>/samples when --checkpoint_dir "
                        "is named]")
    # absl.logging defines its own --log_dir (for log files this program never writes); the original's
    # --log_dir is the TensorBoard directory, so it takes the name over.
    if "log_dir" in flags.FLAGS:
        delattr(flags.FLAGS, "log_dir")
    flags.DEFINE_string("log_dir", None, "TensorBoard event files [logs, or <checkpoint_dir>/logs]")
    flags.DEFINE_string("export_dir", None, "SavedModel export: <export_dir>/<model> [export, or "
                        "<checkpoint_dir>/export]")
    flags.DEFINE_string("evaluate_dir", None, "Grids and report written by --is_train False [evaluate, or "
                        "<checkpoint_dir>/evaluate]")
    flags.DEFINE_boolean("is_train", True, "True to train, False to restore the checkpoint and write grids [True]")
    flags.DEFINE_boolean("report", True, "With --is_train False: print and write the sample-quality report of "
                         "python -m cogan_tf.evaluate, with the classifier the package ships for the dataset [True]")
    flags.DEFINE_boolean("is_crop", False, "Accepted for compatibility; MNIST is never cropped [False]")
    flags.DEFINE_boolean("visualize", False, "Accepted for compatibility; no effect, as in the original [False]")
    flags.DEFINE_enum("model", "cogan", list(config_lib.MODELS), "Which GAN [cogan]")
    flags.DEFINE_integer("seed", None, "Seed for weights, data order and z; reproduces a run [0, or the checkpoint's]")
    flags.DEFINE_boolean("jit_compile", False, "Compile the training step with XLA; with several replicas, each "
                         "replica's step (TensorFlow supports that on GPUs only) [False]")
    flags.DEFINE_enum("device", "auto", list(config_lib.DEVICES), "Train on: auto (the GPUs TensorFlow sees, else the "
                      "CPU), cpu (even with GPUs), gpu (refused when TensorFlow sees none) [auto]")
    flags.DEFINE_boolean("tf32", False, "GPUs from Ampere on: float32 matmuls and convolutions in TensorFloat-32 "
                         "(10-bit mantissas; faster, results differ from float32). Recorded; a resume keeps it "
                         "[False: float32, as the original]")
    flags.DEFINE_boolean("deterministic", False, "TensorFlow's op determinism: a run on a GPU repeats bit for bit "
                         "(slower; an op without a deterministic kernel stops the run). Recorded; a resume keeps it "
                         "[False]")
    flags.DEFINE_string("adam", "tf1", "Adam's arithmetic: tf1 (TensorFlow's fused ApplyAdam, as TF1's AdamOptimizer "
                        "that the original CoGAN ran; the faster here) or keras (Keras's Adam: 1 - beta2 rounded "
                        "from double precision, a 1.3e-5 relative change in v's increment at beta2 0.999). Recorded; "
                        "a resume keeps it. Not for the CoGAN's --recipe paper / conditional (Caffe's Adam) [tf1]")
    flags.DEFINE_integer("log_every", 1, "Print the per-step line every N steps (0: never) [1]")
    flags.DEFINE_integer("summary_every", 10, "TensorBoard loss scalars every N steps (0: never); each costs host time "
                         "between steps, a GPU's idle time [10]")
    flags.DEFINE_enum("progress", "log", ["log", "bar"], "log: the original's per-step line, and every 100 steps a line "
                      "with the rate and the time left; bar: a progress bar (losses, rate, time left) instead [log]")
    flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multiworker"],
                      "tf.distribute: one device, all GPUs of this machine, or the machines in TF_CONFIG [default]")
    flags.DEFINE_boolean("check_only", False, "Check the flags, TF_CONFIG and output folders, then exit without "
                         "starting TensorFlow (python -m cogan_tf.launch checks its workers' flags so, once) [False]")
    flags.DEFINE_float("wait_for_workers", 600, "--strategy multiworker: seconds a worker waits for the others to "
                       "start before it gives up [600]")
    flags.DEFINE_boolean("sync_batchnorm", False, "CoGAN: BatchNorm statistics over the global batch across replicas [False]")
    flags.DEFINE_boolean("mixed_precision", False, "Mixed precision for GPUs: layers compute in --mixed_precision_dtype, "
                         "variables, BatchNorm statistics, losses and outputs stay float32; results differ from float32 "
                         "[False: float32, as the original]")
    flags.DEFINE_enum("mixed_precision_dtype", "float16", list(config_lib.MIXED_PRECISION),
                      "With --mixed_precision: float16 with dynamic loss scaling (the GPU choice), or bfloat16 without "
                      "loss scaling (TPUs, CPUs with bf16 units) [float16]")
    flags.DEFINE_integer("max_steps", None, "Stop after this many steps in total (a short run) [none; cogan --recipe "
                         "paper or conditional: 25000, the paper's length]")
    flags.DEFINE_float("zn_sigma", None, "ClusterGAN: standard deviation of z_n [1.0, the original; 0.1 with "
                       "--recipe paper]")
    flags.DEFINE_enum("recipe", None, list(RECIPES),
                      "Networks and training. CoGAN: original (andrewliao11's code); paper (the CoGAN paper's digit "
                      "network and its Caffe training: z ~ U(-1, 1), G's first 4 and D's last 3 layers shared, "
                      "dropout, Adam 2e-4 with weight decay 5e-4, one D and one G update per step, disjoint halves "
                      "of the digits, 25,000 steps); conditional (the conditional GAN the paper compares with: the "
                      "same network once, told the domain by an input bit, trained the same way). ClusterGAN: "
                      "original (JasonFengGit's code: BCE, sigma 1, 1 G+E per 5 D updates, batch 100, weight decay "
                      "2.5e-5); paper (the ClusterGAN paper authors' code: their networks, WGAN-GP critic, lambda "
                      "10, 5 critic batches per G+E update, sigma 0.1, N(0, 0.02) weights, no weight decay, batch "
                      "64; on fashion_mnist 40 dims of z_n and beta_n 0, as their Fashion-MNIST runs). Flags given "
                      "explicitly override the recipe's values [original]")
    flags.DEFINE_integer("g_shared_layers", None, "CoGAN --recipe paper: how many of G's 5 layers, from z, the two "
                         "domains share (0-4) [4]")
    flags.DEFINE_integer("d_shared_layers", None, "CoGAN --recipe paper: how many of D's 4 layers, from the output, "
                         "the two domains share (0-3) [3]")
    flags.DEFINE_enum("paper_init", None, list(config_lib.PAPER_INITS), "CoGAN --recipe paper / conditional: the initial weights; "
                      "caffe (the Caffe model's MSRA weights, zero biases: G's output layer starts with most pixels "
                      "saturated, docs/ORIGINAL.md §5.4) or pytorch (the official PyTorch version's Xavier-uniform "
                      "weights with gain sqrt(2), biases 0.1) [caffe]")
    flags.DEFINE_integer("hidden_size", None, "vanilla: units of each hidden layer of G and D [128, what the original trains on any "
                         "machine (docs/ORIGINAL.md §2.1); 1024 is the width its README describes]")
    flags.DEFINE_integer("val_size", None, "ClusterGAN: hold out this many training images (seeded) and keep the "
                         "checkpoint with the best validation clustering in <checkpoint dir>/best, which "
                         "--is_train False then evaluates (0: none) [--recipe paper: 5000, as its authors; else 0]")
    flags.DEFINE_integer("save_every", 500, "Save a checkpoint every N steps, when the step counter % N == 2, and at the end (0: only at the end) [500]")
    flags.DEFINE_boolean("wait_for_lock", False, "When another run is training in the same checkpoint folder, wait for "
                         "it to end instead of refusing to start [False]")
    flags.DEFINE_integer("keep_checkpoints", 5, "Checkpoints kept, the oldest deleted first (0: keep all) [5]")
    flags.DEFINE_integer("sample_every_epochs", 10, "vanilla, clustergan: a sample grid every N epochs (0: none), as the originals [10]")
    # CoGAN: one flag per quirk of the original (docs/ORIGINAL.md §1); the defaults are faithful.
    flags.DEFINE_boolean("h0_feeds_h1", False, "CoGAN: feed G's h0 into h1 (the intended chain) instead of z (quirk) [False]")
    flags.DEFINE_integer("d_h0_filters", None, "CoGAN: filters of D's h0; the original has c_dim (1), corrected 64 [1]")
    flags.DEFINE_enum("pair", pairs.DEFAULT_PAIR, list(pairs.PAIRS), "CoGAN: the second domain, a transform of the "
                      "digits that `python invert.py --pair P` writes: " + "; ".join(
                          f"{p}: {d}" for p, d in pairs.DESCRIPTIONS.items()) + f" [{pairs.DEFAULT_PAIR}]")
    flags.DEFINE_boolean("disjoint_domains", False, "CoGAN: give the domains disjoint halves of the digits, as the paper "
                         "[False; --recipe paper or conditional: True]")
    flags.DEFINE_boolean("bn_moving_average", False, "CoGAN: sample with BatchNorm moving averages instead of batch statistics (quirk) [False]")
    flags.DEFINE_boolean("loss_on_logits", False, "CoGAN: sigmoid cross-entropy on D's h3 instead of the original's "
                         "sigmoid(h3) taken as logits, a double sigmoid (quirk Q1) [False]")
    flags.DEFINE_boolean("bn_per_feature", False, "CoGAN: per-feature BatchNorm statistics on the dense layers instead of "
                         "the original's one scalar mean and variance over batch x features (quirk Q2) [False]")
    flags.DEFINE_enum("grid_scaling", "stretch", list(config_lib.GRID_SCALINGS),
                      "CoGAN: sample grids min-max stretched to 0..255 per grid, as the original's scipy.misc.imsave "
                      "(quirk Q3), or fixed: output x 255 [stretch]")
    flags.DEFINE_boolean("corrected", False, "CoGAN: every correction of the network and its training: loss_on_logits, "
                         "bn_per_feature, h0_feeds_h1, d_h0_filters 64, bn_moving_average [False]")


FLAGS = flags.FLAGS
# Each model's --recipe values.
MODEL_RECIPES = {"cogan": tuple(config_lib.COGAN_RECIPES), "clustergan": tuple(config_lib.CLUSTERGAN_RECIPES)}
RECIPES = tuple(dict.fromkeys(r for rs in MODEL_RECIPES.values() for r in rs))
# CoGAN flags of the original network only: refused with --recipe paper / conditional.
ORIGINAL_NETWORK_ONLY = ("loss_on_logits", "bn_per_feature", "h0_feeds_h1", "d_h0_filters", "bn_moving_average",
                         "sync_batchnorm", "corrected")
# Flags that mean something only to the CoGAN: refused with the other models when given.
COGAN_ONLY = ("loss_on_logits", "bn_per_feature", "grid_scaling", "h0_feeds_h1", "d_h0_filters", "bn_moving_average",
              "sync_batchnorm", "corrected", "disjoint_domains", "pair")


def validate(f) -> None:
    """One-line refusals for values the original would have crashed on, or silently misused."""
    def bad(flag, why):
        raise UsageError(f"--{flag}={getattr(f, flag)}: {why}")

    if f.batch_size is not None and f.batch_size < 1:
        bad("batch_size", "must be at least 1")
    if f.epoch is not None and f.epoch < 0:
        bad("epoch", "must be 0 or more")
    if f.learning_rate is not None and not 0 < f.learning_rate < math.inf:
        bad("learning_rate", "must be a positive number")
    for b in ("beta1", "beta2"):
        if getattr(f, b) is not None and not 0 <= getattr(f, b) < 1:
            bad(b, "must be in [0, 1)")
    if f.dataset is not None and f.dataset not in data.DATASETS:
        bad("dataset", f"unknown dataset; choose one of {', '.join(data.DATASETS)}")
    if f.recipe is not None and f.recipe not in MODEL_RECIPES.get(f.model, ()):
        bad("recipe", f"not a recipe of --model {f.model}; "
            + "; ".join(f"{m}: {', '.join(rs)}" for m, rs in MODEL_RECIPES.items()))
    paper = f.model == "cogan" and f.recipe in ("paper", "conditional")
    for flag in ("g_shared_layers", "d_shared_layers"):
        value, most = getattr(f, flag), config_lib.COGAN_MAX_SHARED[flag]
        if value is not None and not (f.model == "cogan" and f.recipe == "paper"):
            bad(flag, "only for --model cogan --recipe paper"
                + (" (the conditional GAN shares everything)" if f.recipe == "conditional" else ""))
        if value is not None and not 0 <= value <= most:
            bad(flag, f"must be 0 to {most} (the layer next to the image stays per domain)")
    if f.paper_init is not None and not paper:
        bad("paper_init", "only for --model cogan --recipe paper or conditional")
    if paper:
        for flag in ORIGINAL_NETWORK_ONLY:
            if f[flag].present:
                bad(flag, f"only for the original CoGAN network, not --recipe {f.recipe}")
        if f.mixed_precision:
            bad("mixed_precision", f"not for --recipe {f.recipe}, whose layers compute in float32")
        if f["adam"].present:
            bad("adam", f"not for --recipe {f.recipe}, which trains with the Caffe model's Adam")
        if f.strategy != "default":
            bad("strategy", f"--recipe {f.recipe} trains on one device: drop --strategy")
    if f.adam not in config_lib.ADAM_ARITHMETICS:
        bad("adam", "choose tf1 (TF1's ApplyAdam, the original's) or keras (Keras's Adam)")
    if f.val_size is not None and f.model != "clustergan":
        bad("val_size", "only for --model clustergan")
    if f.val_size is not None and f.val_size < 0:
        bad("val_size", "must be 0 or more")
    if f.save_every < 0:
        bad("save_every", "must be 0 or more")
    if f.keep_checkpoints < 0:
        bad("keep_checkpoints", "must be 0 (keep all) or more")
    batch = f.batch_size if f.batch_size is not None else config_lib.defaults_for(f.model, f.recipe)["batch_size"]
    if math.isnan(f.train_size):
        bad("train_size", "must be a number of images (or inf: all of them)")
    if not f.train_size >= batch:
        bad("train_size", f"smaller than one batch ({batch}); lower --batch_size or raise --train_size")
    if f.log_every < 0:
        bad("log_every", "must be 0 or more")
    if f.summary_every < 0:
        bad("summary_every", "must be 0 or more")
    if f.max_steps is not None and f.max_steps < 0:
        bad("max_steps", "must be 0 or more")
    if f.sample_every_epochs < 0:
        bad("sample_every_epochs", "must be 0 or more")
    if f.d_h0_filters is not None and f.d_h0_filters < 1:
        bad("d_h0_filters", "must be at least 1")
    if f.hidden_size is not None and f.model != "vanilla":
        bad("hidden_size", "only for --model vanilla")
    if f.hidden_size is not None and f.hidden_size < 1:
        bad("hidden_size", "must be at least 1")
    if f.zn_sigma is not None and f.model != "clustergan":
        bad("zn_sigma", "only for --model clustergan")
    if f.zn_sigma is not None and not 0 < f.zn_sigma < math.inf:
        bad("zn_sigma", "must be a positive number")
    if f["mixed_precision_dtype"].present and not f.mixed_precision:
        bad("mixed_precision_dtype", "has no effect without --mixed_precision; add --mixed_precision or drop it")
    if f.seed is not None and f.seed < 0:
        bad("seed", "must be 0 or more")
    if f.seed is not None and f.seed >= config_lib.SEED_LIMIT:
        bad("seed", f"must be at most {config_lib.SEED_LIMIT - 1} (2^32 - 1: numpy's seeds are 32-bit)")
    for flag in COGAN_ONLY:
        if f[flag].present and f.model != "cogan":
            bad(flag, f"only for --model cogan, not {f.model}")
    if f.strategy == "multiworker" and not f.is_train:
        bad("strategy", "is for training; --is_train False evaluates in one process: drop --strategy")
    if f.strategy == "multiworker" and f.model != "cogan":
        bad("strategy", f"multiworker trains the CoGAN; --model {f.model} trains in one process: drop --strategy")
    if not 0 < f.wait_for_workers < math.inf:
        bad("wait_for_workers", "must be a positive number of seconds")
    if f["wait_for_workers"].present and f.strategy != "multiworker":
        bad("wait_for_workers", "is for --strategy multiworker")


def build_configs(f):
    """Flags -> (model config, train config), with each model's original defaults where unset."""
    # Flags left unset take the model's (and recipe's) defaults from config.train_config.
    given = {k: f[k].value for k in ("dataset", "epoch", "learning_rate", "beta1", "beta2", "batch_size", "val_size",
                                     "max_steps")
             if f[k].value is not None}
    # The output folders follow a named --checkpoint_dir (outputs.run_folders).
    folders = outputs.run_folders(f.checkpoint_dir, {k: f[k].value for k in outputs.RUN_FOLDERS})
    if f["disjoint_domains"].present:  # else the recipe's default (the paper's: disjoint halves)
        given["disjoint_domains"] = f.disjoint_domains
    train_cfg = config_lib.train_config(
        f.model, f.recipe, **given, **folders, data_dir=f.data_dir, save_every=f.save_every,
        keep_checkpoints=f.keep_checkpoints or None, train_size=f.train_size, checkpoint_dir=f.checkpoint_dir,
        seed=f.seed, jit_compile=f.jit_compile, device=f.device, tf32=f.tf32, deterministic=f.deterministic,
        adam=f.adam, wait_for_lock=f.wait_for_lock, wait_for_workers=f.wait_for_workers, log_every=f.log_every,
        summary_every=f.summary_every, progress=f.progress, sample_every_epochs=f.sample_every_epochs,
        strategy=f.strategy,
        mixed_precision=config_lib.MIXED_PRECISION[f.mixed_precision_dtype] if f.mixed_precision else None,
        grid_scaling=f.grid_scaling)
    if f.model == "cogan" and f.recipe not in (None, "original"):
        paper = {k: getattr(f, k) for k in (*config_lib.COGAN_MAX_SHARED, "paper_init") if getattr(f, k) is not None}
        model_cfg = config_lib.cogan_config(f.recipe, pair=f.pair, **paper)
    elif f.model == "cogan":
        model_cfg = config_lib.CoganConfig(
            h0_feeds_h1=f.h0_feeds_h1 or f.corrected,
            d_h0_filters=64 if (f.corrected and f.d_h0_filters is None) else f.d_h0_filters,
            bn_batch_stats_at_inference=not (f.bn_moving_average or f.corrected),
            loss_on_logits=f.loss_on_logits or f.corrected,
            bn_per_feature=f.bn_per_feature or f.corrected,
            sync_batchnorm=f.sync_batchnorm, pair=f.pair)
    elif f.model == "clustergan":
        model_cfg = config_lib.model_config("clustergan", f.recipe, train_cfg.dataset,
                                            **({} if f.zn_sigma is None else {"zn_sigma": f.zn_sigma}))
    else:
        model_cfg = config_lib.model_config("vanilla", **({} if f.hidden_size is None else {"hidden": f.hidden_size}))
    return model_cfg, train_cfg


def explicit_fields(f) -> dict:
    """Model-config field -> the flag that set it on the command line (``--d_h0_filters=4``), from config.py's
    one flag <-> field table: for the line --is_train False gives a flag that disagrees with the checkpoint's
    config.json."""
    out = {}
    for flag, fields in config_lib.FLAG_FIELDS.get(f.model, {}).items():
        if f[flag].present:
            for field in fields:
                out.setdefault(field, f"--{flag}={f[flag].value}")
    return out


def main(argv):
    validate(FLAGS)
    model_cfg, train_cfg = build_configs(FLAGS)
    role = tf_config.role(train_cfg.strategy)  # TF_CONFIG, read before TensorFlow starts
    # Every refusal that needs no TensorFlow comes before it starts (which trains for hours before
    # writing the export): output folders, a damaged config.json, a checkpoint of another setup.
    prepare = dict(training=FLAGS.is_train, explicit=explicit_fields(FLAGS), role=role)
    if FLAGS.check_only:
        run_lib.prepare(model_cfg, train_cfg, check_only=True, **prepare)
        print(" [*] the flags, TF_CONFIG and output folders are good")
        return 0
    if not role.chief:
        # The chief speaks for the run; the others' lines would repeat its own. Errors still reach stderr.
        sys.stdout = open(os.devnull, "w")
    if role.multi and cli.QUIET_TENSORFLOW:
        # A lost worker is reported in one line (cogan_tf.multiworker); TensorFlow's C++ would log it first,
        # as several ERROR lines per failed collective.
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with run_lib.prepare(model_cfg, train_cfg, **prepare) as run:  # starts TensorFlow after its checks
        from cogan_tf import runner

        gan = runner.execute(run)
    if not FLAGS.is_train and FLAGS.report:
        from cogan_tf.evaluate import scoring

        scoring.report_for_gan(gan, out=os.path.join(run.train_cfg.evaluate_dir, f"{gan.name}_report.json"))
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
