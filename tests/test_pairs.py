"""The pairs of domains (cogan_tf/pairs.py): the edge transform against the official code's own cv2
operation, the others against their definitions, the files written for each pair, and main.py's refusals
of a pair it cannot train on. (invert.py, the program that writes them: test_invert.py.)"""

import json
import os

import cv2  # the `test` extra: the official CoGAN code's edge operation is the reference
import numpy as np
import pytest

from cogan_tf import data, pairs
from cogan_tf.errors import DataError
from tests.conftest import ROOT, run_script, write_fake_dataset


def official_edge(img):
    """cogan/tools/prepare_mnist.edge.cogan.py, line for line, on one uint8 28x28 image."""
    dilation = cv2.dilate(img, np.ones((3, 3), np.uint8), iterations=1)
    return dilation - img


def test_edge_is_the_official_operation_pixel_for_pixel_on_random_images():
    # Random bytes are a harsher case than digits: ink on the border and every value 0..255.
    x = np.random.default_rng(0).integers(0, 256, (200, 28, 28), dtype=np.uint8)
    x[:50] = (x[:50] > 200) * np.uint8(255)  # near-binary images, as most digit pixels are
    ours = pairs.transform("edge", x)
    assert ours.dtype == np.uint8 and ours.shape == x.shape
    np.testing.assert_array_equal(ours, np.stack([official_edge(i) for i in x]))
    # (N, 28, 28, 1), the training files' shape, gives the same images.
    np.testing.assert_array_equal(pairs.transform("edge", x[..., None])[..., 0], ours)


@pytest.mark.network
def test_edge_is_the_official_operation_pixel_for_pixel_on_real_digits(mnist_from_pypi, tmp_path):
    real_dir, _ = mnist_from_pypi
    data_dir = str(tmp_path / "data")
    os.makedirs(os.path.join(data_dir, "mnist"))
    for name in data.IDX_FILES:
        os.symlink(os.path.join(real_dir, "mnist", name), os.path.join(data_dir, "mnist", name))
    written = pairs.write_pair(data_dir, "mnist", "edge", log=lambda s: None)
    for split in ("train", "test"):
        x = data.load_split(real_dir, "mnist", split)[0][..., 0]
        edges = np.load(written[data.SPLIT_FILES[split][0]])[..., 0]
        np.testing.assert_array_equal(edges, np.stack([official_edge(i) for i in x]))
        assert 0.2 < np.mean(edges > 0) < 0.35  # an outer ring around every digit, not an empty image


def test_edge_on_floats_is_the_uint8_operation_scaled():
    x = np.random.default_rng(1).integers(0, 256, (20, 28, 28, 1), dtype=np.uint8)
    f = pairs.transform("edge", x.astype(np.float32) / 255)
    assert f.dtype == np.float32 and f.min() >= 0
    np.testing.assert_allclose(f * 255, pairs.transform("edge", x), atol=1e-4)


def test_negative_and_rotate_and_their_inverses():
    x = np.random.default_rng(2).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    np.testing.assert_array_equal(pairs.transform("negative", x), 255 - x)
    np.testing.assert_allclose(pairs.transform("negative", x / 255.0), 1 - x / 255.0)
    r = pairs.transform("rotate", x)
    # Counter-clockwise: the top row becomes the left column, read bottom up.
    np.testing.assert_array_equal(r[:, ::-1, 0, 0], x[:, 0, :, 0])
    np.testing.assert_array_equal(r[..., 0], np.stack([cv2.rotate(i, cv2.ROTATE_90_COUNTERCLOCKWISE) for i in x[..., 0]]))
    for pair in ("negative", "rotate"):
        np.testing.assert_array_equal(pairs.inverse(pair, pairs.transform(pair, x)), x)
    assert pairs.inverse("edge", x) is None
    with pytest.raises(DataError, match="unknown pair 'blur'"):
        pairs.transform("blur", x)


@pytest.mark.parametrize("pair", ["edge", "rotate"])
def test_write_pair_files_verified_idempotent_and_refused_when_wrong(fake_data_dir, pair):
    from cogan_tf.cogan import load_domains

    logs = []
    out = pairs.write_pair(fake_data_dir, "mnist", pair, log=logs.append)
    assert os.path.dirname(out[data.TRAIN_IMAGES]) == os.path.join(fake_data_dir, "mnist", pair)
    logs.clear()
    pairs.write_pair(fake_data_dir, "mnist", pair, log=logs.append)
    assert len(logs) == 2 and all("up to date" in line for line in logs)
    x1, x2 = load_domains(fake_data_dir, "mnist", disjoint=False, seed=0, log=lambda s: None, pair=pair)
    np.testing.assert_array_equal(x2, pairs.transform(pair, x1))
    # Another pair's file in its place (the negatives) is refused, naming the command that writes it again.
    x, _ = data.load_split(fake_data_dir, "mnist", "test")
    path = pairs.pair_path(fake_data_dir, "mnist", data.TEST_IMAGES, pair)
    np.save(path, 255 - x)
    with pytest.raises(DataError) as e:
        load_domains(fake_data_dir, "mnist", disjoint=False, seed=0, log=lambda s: None, pair=pair)
    assert str(e.value) == (f"{path}: not the {pair} transform of its digits ({pairs.DESCRIPTIONS[pair]}) "
                            f"({fake_data_dir}/mnist/{data.TEST_IMAGES}); run `python invert.py --pair {pair} "
                            "--dataset mnist` to write it again")


@pytest.mark.parametrize("pair", pairs.PAIRS)
def test_disjoint_domains_for_every_pair(fake_data_dir, pair):
    from cogan_tf.cogan import load_domains

    pairs.write_pair(fake_data_dir, "mnist", pair, log=lambda s: None)
    x1, x2 = load_domains(fake_data_dir, "mnist", disjoint=True, seed=4, log=lambda s: None, pair=pair)
    assert len(x1) == len(x2) == 180
    # Domain 2 is the transform of the other half: none of its images is the transform of a domain-1 image.
    firsts = {a.tobytes() for a in pairs.transform(pair, x1)}
    assert not any(b.tobytes() in firsts for b in x2)
    everything = np.concatenate([data.load_split(fake_data_dir, "mnist", s)[0] for s in ("train", "test")])
    back = {a.tobytes() for a in pairs.transform(pair, everything)}
    assert all(b.tobytes() in back for b in x2)


def test_main_refuses_a_missing_pair_before_tensorflow_naming_the_command(tmp_path):
    data_dir = write_fake_dataset(tmp_path / "data", n_train=20, n_test=10)
    args = ("--is_train", "True", "--batch_size", "8", "--max_steps", "0", "--data_dir", data_dir)
    r = run_script(os.path.join(ROOT, "main.py"), *args, "--pair", "rotate", cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    path = pairs.pair_path(data_dir, "mnist", data.TRAIN_IMAGES, "rotate")
    assert r.stderr.strip().splitlines() == [
        f"error: {path}: not found; run `python invert.py --data_dir {data_dir} --pair rotate --dataset mnist` first"]
    assert not os.path.exists(tmp_path / "checkpoint")  # refused before anything was made
    r = run_script(os.path.join(ROOT, "main.py"), *args, "--pair", "rotate", "--model", "vanilla", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: --pair=rotate: only for --model cogan, not vanilla"]


def test_a_checkpoint_records_its_pair_and_resuming_with_another_is_refused(tmp_path):
    from cogan_tf import config as C, runner
    from tests.conftest import train_config

    data_dir = write_fake_dataset(tmp_path / "data", n_train=20, n_test=10)
    for pair in ("rotate", "edge"):
        pairs.write_pair(data_dir, "mnist", pair, log=lambda s: None)
    x = data.load_split(data_dir, "mnist", "train")[0]
    cfg = train_config(tmp_path, batch_size=8, max_steps=0, data_dir=data_dir)
    runner.run(C.CoganConfig(pair="rotate"), cfg, arrays=[x, pairs.transform("rotate", x)], log=lambda s: None)
    with open(tmp_path / "checkpoint" / "mnist_8_28" / "config.json") as f:
        assert json.load(f)["model_config"]["pair"] == "rotate"
    args = ("--is_train", "True", "--batch_size", "8", "--max_steps", "0", "--seed", "3", "--data_dir", data_dir,
            "--checkpoint_dir", str(tmp_path / "checkpoint"))
    r = run_script(os.path.join(ROOT, "main.py"), *args, "--pair", "edge", cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines() == [
        f"error: {tmp_path}/checkpoint/mnist_8_28 holds a checkpoint trained with pair='rotate' (here 'edge', flag "
        "--pair): pass the flags it was trained with to resume it, or a fresh --checkpoint_dir"]
