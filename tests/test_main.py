"""cogan_tf/scripts/main.py (``python main.py``), the training program's flags: each model's defaults (the
original's for each), a recipe resolved from the model and the dataset, explicit flags winning over both, and a flag
that does not fit the model refused in one line before TensorFlow starts. What each flag does to a run is tested
with its feature (test_cogan.py, test_clustergan.py, test_vanilla.py, test_outputs.py, test_adam.py, ...)."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_main_refusal


# --- each model's defaults --------------------------------------------------------------------------------

FLAG_DEFAULTS = r"""
from cogan_tf.scripts import main
main.define_flags()
for argv in (["main.py", "--model", "vanilla"], ["main.py", "--model", "clustergan"],
             ["main.py", "--model", "vanilla", "--batch_size", "64", "--beta1", "0.5"]):
    main.FLAGS.unparse_flags()
    main.FLAGS(argv)
    _, t = main.build_configs(main.FLAGS)
    print(t.batch_size, t.epoch, t.learning_rate, t.beta1, t.beta2, t.sample_every_epochs)
"""


def test_main_per_model_defaults_and_help():
    r = subprocess.run([sys.executable, "-c", FLAG_DEFAULTS], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split("\n")[:3] == ["512 500 0.0002 0.9 0.999 10", "100 200 0.0001 0.5 0.9 10",
                                        "64 500 0.0002 0.5 0.999 10"]
    h = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "--help"], capture_output=True, text=True,
                       cwd=ROOT)
    assert "vanilla: 512" in h.stdout and "clustergan: 100" in h.stdout and "--sample_every_epochs" in h.stdout


HIDDEN_FLAG = r"""
from cogan_tf.scripts import main
main.define_flags()
for argv in (["main.py", "--model", "vanilla"], ["main.py", "--model", "vanilla", "--hidden_size", "1024"]):
    main.FLAGS.unparse_flags()
    main.FLAGS(argv)
    main.validate(main.FLAGS)
    m, _ = main.build_configs(main.FLAGS)
    print(m.hidden)
"""


def test_main_hidden_size_flag():
    r = subprocess.run([sys.executable, "-c", HIDDEN_FLAG], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split("\n")[:2] == ["128", "1024"]
    assert "tensorflow" not in r.stderr.lower()


@pytest.mark.parametrize("args, message", [
    (["--hidden_size", "1024"], "error: --hidden_size=1024: only for --model vanilla"),
    (["--model", "clustergan", "--hidden_size", "128"], "error: --hidden_size=128: only for --model vanilla"),
    (["--model", "vanilla", "--hidden_size", "0"], "error: --hidden_size=0: must be at least 1"),
])
def test_main_refuses_bad_hidden_size(tmp_path, args, message):
    run_main_refusal(tmp_path, args, message)


# --- the ClusterGAN's dataset, recipe and overrides --------------------------------------------------------

CLUSTERGAN_FLAGS = r"""
from cogan_tf.scripts import main
main.define_flags()
from cogan_tf import cli
for argv in (["--model", "clustergan"], ["--model", "clustergan", "--dataset", "mnist"],
             ["--model", "clustergan", "--recipe", "paper"],
             ["--model", "clustergan", "--recipe", "paper", "--batch_size", "100", "--zn_sigma", "0.5",
              "--learning_rate", "2e-4", "--val_size", "0", "--keep_checkpoints", "0"],
             ["--model", "cogan"], ["--model", "vanilla"]):
    main.FLAGS.unparse_flags()
    main.FLAGS(cli.fold_bool_args(["main.py"] + argv, main.FLAGS))
    main.validate(main.FLAGS)
    m, t = main.build_configs(main.FLAGS)
    print(t.dataset, t.batch_size, t.epoch, t.learning_rate, t.beta1, t.beta2, t.val_size, t.keep_checkpoints,
          getattr(m, "recipe", "-"), getattr(m, "zn_sigma", "-"), getattr(m, "critic", "-"),
          getattr(m, "init_std", "-"), getattr(m, "weight_decay", "-"))
"""


def test_main_clustergan_dataset_recipe_and_overrides():
    r = subprocess.run([sys.executable, "-c", CLUSTERGAN_FLAGS], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines() == [
        "fashion_mnist 100 200 0.0001 0.5 0.9 0 5 original 1.0 bce None 2.5e-05",  # the original, on its dataset
        "mnist 100 200 0.0001 0.5 0.9 0 5 original 1.0 bce None 2.5e-05",
        "mnist 64 2911 0.0001 0.5 0.9 5000 5 paper 0.1 wgan_gp 0.02 0.0",  # the authors' dataset and held-out images
        "mnist 100 2911 0.0002 0.5 0.9 0 None paper 0.5 wgan_gp 0.02 0.0",  # explicit flags win
        "mnist 128 25 0.0002 0.5 0.999 0 5 original - - - -",  # the CoGAN's own recipe
        "mnist 512 500 0.0002 0.9 0.999 0 5 - - - - -",
    ]
    assert "tensorflow" not in r.stderr.lower()
    h = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "--help"], capture_output=True, text=True,
                       cwd=ROOT)
    assert "clustergan: fashion_mnist" in h.stdout and "--recipe" in h.stdout and "--val_size" in h.stdout


@pytest.mark.parametrize("args, message", [
    (["--model", "vanilla", "--recipe", "paper"], "error: --recipe=paper: not a recipe of --model vanilla; cogan: "
                                                  "original, paper, conditional; clustergan: original, paper"),
    (["--model", "vanilla", "--recipe", "original"], "error: --recipe=original: not a recipe of --model vanilla; "
                                                     "cogan: original, paper, conditional; clustergan: original, paper"),
    (["--val_size", "5000"], "error: --val_size=5000: only for --model clustergan"),
    (["--model", "clustergan", "--val_size=-1"], "error: --val_size=-1: must be 0 or more"),
    (["--save_every=-2"], "error: --save_every=-2: must be 0 or more"),
    (["--keep_checkpoints=-1"], "error: --keep_checkpoints=-1: must be 0 (keep all) or more"),
])
def test_bad_clustergan_flags_one_line(tmp_path, args, message):
    run_main_refusal(tmp_path, args, message)


MAIN_VARIANTS = r"""
from cogan_tf.scripts import main
main.define_flags()
from cogan_tf import cli
for argv in (["--recipe", "paper"], ["--recipe", "paper", "--dataset", "mnist"],
             ["--recipe", "paper", "--dataset", "fashion_mnist", "--zn_sigma", "0.2"], ["--dataset", "fashion_mnist"]):
    main.FLAGS.unparse_flags()
    main.FLAGS(cli.fold_bool_args(["main.py", "--model", "clustergan"] + argv, main.FLAGS))
    m, t = main.build_configs(main.FLAGS)
    print(t.dataset, m.recipe, m.networks, m.gp_eps, m.z_dim, m.betan, m.zn_sigma, t.epoch)
"""


def test_main_resolves_the_recipe_variant_from_the_dataset():
    r = subprocess.run([sys.executable, "-c", MAIN_VARIANTS], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines() == [
        "mnist paper paper per_batch 30 10.0 0.1 2911",  # the authors' default dataset, MNIST
        "mnist paper paper per_batch 30 10.0 0.1 2911",
        "fashion_mnist paper paper per_batch 40 0.0 0.2 2911",
        "fashion_mnist original original per_sample 30 10.0 1.0 200",
    ]
