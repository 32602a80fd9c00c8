"""A model is scored against the dataset it was trained on: its export records it (cogan_tf_export.json), its
checkpoint folder's config.json too, and ``python -m cogan_tf.evaluate`` uses it; a --dataset that contradicts the
record is refused in one line before TensorFlow starts. A Fashion-MNIST report names classes, not digits."""

import json
import os
import subprocess
import sys

import pytest

from cogan_tf import outputs
from tests.conftest import ROOT, write_fake_dataset

RUN = ["--model", "clustergan", "--dataset", "fashion_mnist", "--batch_size", "8", "--train_size", "16",
       "--max_steps", "1", "--sample_every_epochs", "0", "--log_every", "0", "--data_dir", "data"]


def program(cwd, *args, module=None, tensorflow=True):
    """main.py (or ``python -m module``) in ``cwd``; without ``tensorflow``, importing TensorFlow fails, so what
    the program does must be done before TensorFlow starts."""
    path = [ROOT]
    if not tensorflow:
        shim = os.path.join(str(cwd), "no_tensorflow")
        os.makedirs(os.path.join(shim, "tensorflow"), exist_ok=True)
        with open(os.path.join(shim, "tensorflow", "__init__.py"), "w") as f:
            f.write("raise ImportError('TensorFlow was started')\n")
        path.insert(0, shim)
    cmd = [sys.executable, "-m", module] if module else [sys.executable, os.path.join(ROOT, "main.py")]
    return subprocess.run(cmd + list(args), cwd=str(cwd), capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(path)})


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """A ClusterGAN trained (one step) on Fashion-MNIST-shaped data by main.py, with its export; MNIST-shaped
    data beside it."""
    root = tmp_path_factory.mktemp("fashion")
    write_fake_dataset(root / "data", "fashion_mnist", n_train=40, n_test=20)
    write_fake_dataset(root / "data", "mnist", n_train=40, n_test=20)
    r = program(root, *RUN)
    assert r.returncode == 0, r.stderr
    return root


def test_the_export_records_the_dataset_and_the_run(fashion):
    marker = json.loads((fashion / "export" / "clustergan" / outputs.EXPORT_MARKER).read_text())
    assert marker == {"exported_by": "cogan_tf", "model": "clustergan", "dataset": "fashion_mnist",
                      "run": str(fashion / "checkpoint" / "clustergan_fashion_mnist_8_28")}


def test_an_export_is_scored_against_the_dataset_it_was_trained_on(fashion):
    r = program(fashion, "--saved_model", "export/clustergan", "--data_dir", "data", "--num_samples", "20",
                module="cogan_tf.evaluate")
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert "  20 samples (seed 0); fashion_mnist classifier, test accuracy 0.9190" in lines, lines
    assert any(line.startswith("  class 9 Ankle boot (%)") for line in lines), lines
    assert any(line == "  class code z_c vs classifier class" for line in lines), lines
    assert "digit" not in r.stdout


@pytest.mark.parametrize("source", ["--saved_model=export/clustergan", "--checkpoint_dir=checkpoint"])
def test_a_contradicting_dataset_is_refused_before_tensorflow(fashion, source):
    r = program(fashion, source, "--dataset", "mnist", "--data_dir", "data", module="cogan_tf.evaluate",
                tensorflow=False)
    where, record = (("export/clustergan", outputs.EXPORT_MARKER) if "saved_model" in source else
                     ("checkpoint/clustergan_fashion_mnist_8_28", "config.json"))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: --dataset=mnist: {where} was trained on fashion_mnist ({record}); drop --dataset to score it "
        "against fashion_mnist"], r.stderr


def test_an_export_that_records_no_dataset_says_what_it_is_scored_against(fashion, tmp_path):
    import shutil

    shutil.copytree(fashion / "export" / "clustergan", tmp_path / "plain")
    os.remove(tmp_path / "plain" / outputs.EXPORT_MARKER)  # as a SavedModel made elsewhere
    r = program(fashion, "--saved_model", str(tmp_path / "plain"), "--data_dir", "data", "--num_samples", "20",
                module="cogan_tf.evaluate")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.splitlines()[0] == (f" [!] {tmp_path}/plain does not record the dataset it was trained on (no "
                                        f"{outputs.EXPORT_MARKER}): scored against mnist; pass --dataset to choose")
    assert "  20 samples (seed 0); mnist classifier, test accuracy 0.9913" in r.stdout.splitlines()
