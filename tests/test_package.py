"""What installing puts on the path: the cogan_tf package only (with the shipped classifiers), and its
programs run from any directory as ``python -m cogan_tf PROGRAM``."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT


def test_the_wheel_holds_only_the_package_and_its_classifiers(tmp_path):
    """Built from the tracked files (no network: the installed setuptools builds it)."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    src = tmp_path / "src"
    for f in files:
        if os.path.isfile(os.path.join(ROOT, f)):
            os.makedirs(src / os.path.dirname(f), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, f), src / f)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp_path / "wheel"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = os.listdir(tmp_path / "wheel")
    names = zipfile.ZipFile(tmp_path / "wheel" / wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"cogan_tf", wheel.split("-")[0] + "-" + wheel.split("-")[1] + ".dist-info"}
    assert {"cogan_tf/classifiers/mnist.npz", "cogan_tf/classifiers/fashion_mnist.npz",
            "cogan_tf/__main__.py", "cogan_tf/scripts/main.py"} <= set(names)


def run_outside(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, *args], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=300)


def test_no_top_level_script_leaks_onto_the_path(tmp_path):
    """From another directory the root scripts are not importable (absl would define their flags twice);
    the package is."""
    for name in ("main", "download", "invert"):
        r = run_outside(tmp_path, "-c", f"import {name}")
        assert r.returncode == 1 and f"No module named '{name}'" in r.stderr, (name, r.stderr[-500:])
    assert run_outside(tmp_path, "-c", "import cogan_tf").returncode == 0


@pytest.mark.parametrize("program, args, message", [
    ("main", ["--batch_size", "0"], "error: --batch_size=0: must be at least 1"),
    ("download", [], "error: name the datasets to fetch, e.g. python download.py mnist (choose from mnist, "
                     "fashion_mnist, andrewliao11)"),
    ("invert", ["--data_dir", "nowhere"], "error: nowhere/mnist/train-images-idx3-ubyte: not found; run "
                                          "`python download.py mnist` first"),
])
def test_python_m_cogan_tf_runs_each_program_from_any_directory(tmp_path, program, args, message):
    r = run_outside(tmp_path, "-m", "cogan_tf", program, *args)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == message, r.stderr[-1000:]


def test_python_m_cogan_tf_names_its_programs(tmp_path):
    r = run_outside(tmp_path, "-m", "cogan_tf", "train")
    assert r.returncode == 2
    assert r.stderr.strip() == ("error: unknown program 'train'; usage: python -m cogan_tf "
                                "{main,download,invert,evaluate,bench,launch} [flags]")
    r = run_outside(tmp_path, "-m", "cogan_tf", "evaluate", "--help")  # absl's --help
    assert "--grid_dirs" in r.stdout and "python -m cogan_tf.evaluate" in r.stdout
