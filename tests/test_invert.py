"""cogan_tf/scripts/invert.py (``python invert.py``), the program that writes the second domain: each pair's
transform of both image files (only the pair asked for; an unknown pair refused), safe to run again (files
already right are left alone, so a read-only folder that holds them is fine), and refusing in one line a
missing or damaged image file or a folder it cannot write. What the files hold: test_pairs.py."""

import os
import subprocess
import sys

import numpy as np
import pytest

from cogan_tf import data, pairs
from tests.conftest import (ROOT, damaged, not_writable, run_script, run_unprivileged, write_canonical_shaped,
                            write_fake_dataset)


def test_invert_script_missing_input_and_success(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "invert.py"), "--data_dir", str(tmp_path)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"error: {tmp_path}/mnist/train-images-idx3-ubyte: not found; run `python download.py mnist` first"]
    write_fake_dataset(tmp_path, n_train=20, n_test=10)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "invert.py"), "--data_dir", str(tmp_path)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert np.load(pairs.pair_path(str(tmp_path), "mnist", data.TEST_IMAGES)).shape == (10, 28, 28, 1)


def test_invert_script_refuses_a_damaged_canonical_file(tmp_path):
    write_fake_dataset(tmp_path, n_train=20, n_test=10)
    path = write_canonical_shaped(tmp_path, "mnist", "test")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "invert.py"), "--data_dir", str(tmp_path)],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: " + damaged(path, "mnist")]
    assert not os.path.exists(pairs.pair_path(str(tmp_path), "mnist", data.TEST_IMAGES))


# --- a read-only data folder --------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["dataset folder", "invert folder"])
def test_invert_script_read_only_folder_is_one_line(tmp_path, read_only, which):
    data_dir = write_fake_dataset(tmp_path / "data", n_train=20, n_test=10)
    folder = os.path.join(data_dir, "mnist")
    if which == "invert folder":
        folder = os.path.join(folder, data.INVERT_DIR)
        os.makedirs(folder)
    read_only(folder)
    r = run_unprivileged("invert.py", "--data_dir", data_dir)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines() == ["error: " + not_writable(folder, data_dir)]
    assert not os.path.exists(pairs.pair_path(data_dir, "mnist", data.TRAIN_IMAGES))


def test_invert_script_read_only_folder_already_inverted_just_works(tmp_path, read_only):
    data_dir = write_fake_dataset(tmp_path / "data", n_train=20, n_test=10)
    pairs.write_pair(data_dir, "mnist", log=lambda s: None)
    read_only(os.path.join(data_dir, "mnist"), os.path.join(data_dir, "mnist", data.INVERT_DIR))
    r = run_unprivileged("invert.py", "--data_dir", data_dir)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("up to date") == 2


def test_invert_script_writes_each_pair_and_refuses_an_unknown_one(tmp_path):
    data_dir = write_fake_dataset(tmp_path / "data", n_train=20, n_test=10)
    r = run_script(os.path.join(ROOT, "invert.py"), "--data_dir", data_dir, "--pair", "edge")
    assert r.returncode == 0, r.stderr
    x, _ = data.load_split(data_dir, "mnist", "test")
    np.testing.assert_array_equal(np.load(pairs.pair_path(data_dir, "mnist", data.TEST_IMAGES, "edge")),
                                  pairs.transform("edge", x))
    assert not os.path.exists(os.path.join(data_dir, "mnist", "invert"))  # only the pair asked for
    r = run_script(os.path.join(ROOT, "invert.py"), "--data_dir", data_dir, "--pair", "blur")
    assert r.returncode != 0 and "--pair=blur: value should be one of <negative|edge|rotate>" in r.stderr
    assert not os.path.exists(os.path.join(data_dir, "mnist", "blur"))
