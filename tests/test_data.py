import errno
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cogan_tf import data, pairs
from tests.conftest import (CANONICAL_COUNT, ROOT, damaged, not_writable, run_unprivileged, write_canonical_shaped,
                            write_fake_dataset)


def load_images(data_dir, dataset, splits=("train", "test")):
    """The given splits concatenated (the original CoGAN trains on train + test: 70,000 digits)."""
    parts = [data.load_split(data_dir, dataset, s) for s in splits]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, dtype):
    a = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    if dtype == np.uint8:
        a = np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    p = tmp_path / "x-idx"
    data.write_idx(str(p), a)
    b = data.read_idx(str(p))
    assert b.dtype == np.dtype(dtype) and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def test_idx_header_bytes_are_lecuns():
    b = data.encode_idx(np.zeros((60000, 28, 28), np.uint8)[:2])
    assert b[:16] == bytes.fromhex("00000803" "00000002" "0000001c" "0000001c")
    assert data.encode_idx(np.zeros(3, np.uint8))[:8] == bytes.fromhex("00000801" "00000003")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "shorter than the 4-byte header"),
        (b"\x00\x00", "shorter than the 4-byte header"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 20, "bad magic number 1f8b0800"),
        (b"\x00\x00\x07\x01" + b"\x00" * 8, "bad magic number"),
        (bytes.fromhex("00000803") + b"\x00\x00\x00\x02", "truncated IDX header"),
        (bytes.fromhex("00000801" "00000005") + b"\x01\x02", "truncated"),
        (bytes.fromhex("00000801" "00000002") + b"\x01\x02\x03", "trailing bytes"),
        (bytes.fromhex("00000800"), "0 dimensions"),
    ],
)
def test_idx_corrupt_inputs_name_the_file(tmp_path, content, message):
    p = tmp_path / "bad-idx"
    p.write_bytes(content)
    with pytest.raises(data.DataError, match=message) as e:
        data.read_idx(str(p))
    assert str(p) in str(e.value)


def test_idx_not_a_file(tmp_path):
    with pytest.raises(data.DataError, match="not a file"):
        data.read_idx(str(tmp_path))
    with pytest.raises(data.DataError, match="no such file"):
        data.read_idx(str(tmp_path / "missing"))


def test_loaders_shapes_and_concatenation(fake_data_dir):
    x, y = data.load_split(fake_data_dir, "mnist", "train")
    assert x.shape == (300, 28, 28, 1) and x.dtype == np.uint8 and y.shape == (300,)
    xa, ya = load_images(fake_data_dir, "mnist")
    assert xa.shape == (360, 28, 28, 1) and ya.shape == (360,)
    np.testing.assert_array_equal(xa[:300], x)


def test_loader_missing_names_download_command(tmp_path):
    with pytest.raises(data.DataError, match=r"python download.py fashion_mnist"):
        data.load_split(str(tmp_path), "fashion_mnist", "train")
    with pytest.raises(data.DataError, match="unknown dataset 'svhn'"):
        data.load_split(str(tmp_path), "svhn", "train")


def test_loader_label_count_mismatch(tmp_path):
    write_fake_dataset(tmp_path, n_train=10, n_test=5)
    data.write_idx(str(tmp_path / "mnist" / data.TRAIN_LABELS), np.zeros(9, np.uint8))
    with pytest.raises(data.DataError, match="expected 10 labels"):
        data.load_split(str(tmp_path), "mnist", "train")


def test_loader_refuses_a_header_with_other_rows_and_cols(tmp_path):
    # 14x56 holds as many bytes as 28x28: only the header's rows and cols tell them apart.
    write_fake_dataset(tmp_path, n_train=10, n_test=5)
    path = tmp_path / "mnist" / data.TRAIN_IMAGES
    data.write_idx(str(path), data.read_idx(str(path)).reshape(10, 14, 56))
    with pytest.raises(data.DataError) as e:
        data.load_split(str(tmp_path), "mnist", "train")
    assert str(e.value) == (f"{path}: header says 14x56 images, not 28x28; delete it and run "
                            "`python download.py mnist` again")


@pytest.mark.parametrize("bad", ["all zero", "float64 scaled to 0..1"])
def test_cogan_refuses_inverted_files_that_are_not_255_minus_x(fake_data_dir, bad):
    from cogan_tf.cogan import load_domains

    pairs.write_pair(fake_data_dir, "mnist", log=lambda s: None)
    x, _ = data.load_split(fake_data_dir, "mnist", "test")
    path = pairs.pair_path(fake_data_dir, "mnist", data.TEST_IMAGES)
    np.save(path, np.zeros_like(x) if bad == "all zero" else (255 - x) / 255.0)
    with pytest.raises(data.DataError) as e:
        load_domains(fake_data_dir, "mnist", disjoint=False, seed=0, log=lambda s: None)
    assert str(e.value) == (f"{path}: not 255 - x of its digits ({fake_data_dir}/mnist/{data.TEST_IMAGES}); "
                            "run `python invert.py --dataset mnist` to write it again")
    pairs.write_pair(fake_data_dir, "mnist", log=lambda s: None)  # what the message says to do
    x1, x2 = load_domains(fake_data_dir, "mnist", disjoint=False, seed=0, log=lambda s: None)
    np.testing.assert_array_equal(x2, 255 - x1)


def test_invert_values_dtype_shapes_idempotent(fake_data_dir):
    logs = []
    out = pairs.write_pair(fake_data_dir, "mnist", log=logs.append)
    assert set(out) == {data.TRAIN_IMAGES, data.TEST_IMAGES}
    x, _ = load_images(fake_data_dir, "mnist")
    inv = pairs.load_pair(fake_data_dir, "mnist")
    assert inv.dtype == np.uint8 and inv.shape == (360, 28, 28, 1)
    np.testing.assert_array_equal(inv.astype(int), 255 - x.astype(int))
    raw = np.load(out[data.TRAIN_IMAGES])
    assert raw.dtype == np.uint8 and raw.shape == (300, 28, 28, 1)
    mtime = os.path.getmtime(out[data.TRAIN_IMAGES])
    logs.clear()
    pairs.write_pair(fake_data_dir, "mnist", log=logs.append)
    assert all("up to date" in line for line in logs) and len(logs) == 2
    assert os.path.getmtime(out[data.TRAIN_IMAGES]) == mtime
    # A damaged file is repaired, and no temporary files are left behind.
    with open(out[data.TEST_IMAGES], "wb") as f:
        f.write(b"garbage")
    pairs.write_pair(fake_data_dir, "mnist", log=logs.append)
    np.testing.assert_array_equal(pairs.load_pair(fake_data_dir, "mnist"), inv)
    assert not [f for f in os.listdir(os.path.dirname(out[data.TEST_IMAGES])) if f.startswith(".tmp")]


def test_loader_accepts_original_float64_npy(fake_data_dir):
    x, _ = data.load_split(fake_data_dir, "mnist", "train")
    xt, _ = data.load_split(fake_data_dir, "mnist", "test")
    os.makedirs(os.path.join(fake_data_dir, "mnist", "invert"))
    np.save(pairs.pair_path(fake_data_dir, "mnist", data.TRAIN_IMAGES), (255 - x).astype(np.float64))
    np.save(pairs.pair_path(fake_data_dir, "mnist", data.TEST_IMAGES), (255.0 - xt[..., 0]))
    inv = pairs.load_pair(fake_data_dir, "mnist")
    assert inv.dtype == np.uint8 and inv.shape == (360, 28, 28, 1)
    np.testing.assert_array_equal(inv[:300], 255 - x)


def test_make_dataset_seeded_shuffle_drop_remainder_and_resume():
    a = np.arange(10, dtype=np.uint8)
    b = np.arange(10, dtype=np.uint8) + 100
    ds = data.make_dataset([a, b], batch_size=3, seeds=[1, 2])
    batches = [(x.numpy(), y.numpy()) for x, y in ds]
    assert len(batches) == 3 and all(len(x) == 3 for x, _ in batches)
    # Each domain has its own permutation, so pairs are not the same index.
    xs = np.concatenate([x for x, _ in batches])
    ys = np.concatenate([y for _, y in batches]) - 100
    assert not np.array_equal(xs, ys)
    np.testing.assert_array_equal(xs, a[data.epoch_permutation(10, 1)][:9])
    # Same seed, same order; resuming at batch 2 gives the third batch.
    again = list(data.make_dataset([a, b], 3, seeds=[1, 2], start_batch=2))
    np.testing.assert_array_equal(again[0][0].numpy(), batches[2][0])
    # Per-epoch reshuffle differs between epochs.
    e0 = np.concatenate([x.numpy() for (x,) in data.make_dataset([a], 5, seeds=[7], epoch=0)])
    e1 = np.concatenate([x.numpy() for (x,) in data.make_dataset([a], 5, seeds=[7], epoch=1)])
    assert sorted(e0) == sorted(e1) == list(range(10)) and not np.array_equal(e0, e1)
    with pytest.raises(ValueError, match="batch_size 11"):
        data.make_dataset([a], 11)


# --- The canonical files are verified on every load -------------------------------------------------


def refusal(data_dir, dataset, split):
    """The one-line DataError load_split raises for ``split``."""
    with pytest.raises(data.DataError) as e:
        data.load_split(str(data_dir), dataset, split)
    return str(e.value)


@pytest.mark.parametrize("dataset", data.DATASETS)
def test_a_canonical_shaped_file_must_be_the_canonical_one(tmp_path, dataset):
    path = write_canonical_shaped(tmp_path, dataset, "test")
    assert refusal(tmp_path, dataset, "test") == damaged(path, dataset)


def test_canonical_labels_are_verified_too(tmp_path):
    write_fake_dataset(tmp_path, n_train=10, n_test=5)
    path = str(tmp_path / "mnist" / data.TRAIN_LABELS)
    data.write_idx(path, np.zeros(60000, np.uint8))
    assert refusal(tmp_path, "mnist", "train") == damaged(path, "mnist")


def test_a_damaged_header_of_the_canonical_size_is_refused(tmp_path):
    # 0x08 -> 0x09 (uint8 -> int8): same size, the header no longer claims the canonical shape and type.
    path = write_canonical_shaped(tmp_path, "mnist", "test")
    with open(path, "r+b") as f:
        f.seek(2)
        f.write(b"\x09")
    assert refusal(tmp_path, "mnist", "test") == damaged(path, "mnist")


def test_a_truncated_canonical_file_names_the_download(tmp_path):
    path = write_canonical_shaped(tmp_path, "fashion_mnist", "test")
    with open(path, "r+b") as f:
        f.truncate(7840016 - 784)
    assert refusal(tmp_path, "fashion_mnist", "test") == damaged(path, "fashion_mnist",
                                                                  "7839232 bytes, the canonical file has 7840016")


@pytest.mark.slow  # starts TensorFlow: 8 to 11 s
def test_main_refuses_a_damaged_canonical_file(tmp_path):
    write_fake_dataset(tmp_path / "data", n_train=20, n_test=10)
    path = write_canonical_shaped(tmp_path / "data", "mnist", "test")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "--is_train", "True", "--batch_size", "8",
                        "--max_steps", "0", "--data_dir", str(tmp_path / "data")], capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1] == "error: " + damaged(path, "mnist")
    assert "Traceback" not in r.stderr
    assert not os.path.exists(pairs.pair_path(str(tmp_path / "data"), "mnist", data.TEST_IMAGES))


@pytest.mark.network
def test_real_mnist_loads_and_one_flipped_byte_is_refused(mnist_from_pypi, tmp_path):
    real_dir, _ = mnist_from_pypi
    for split in ("train", "test"):
        assert len(data.load_split(real_dir, "mnist", split)[1]) == CANONICAL_COUNT[split]
    copy = tmp_path / "mnist"
    shutil.copytree(os.path.join(real_dir, "mnist"), copy, ignore=shutil.ignore_patterns("invert", "classifier"))
    path = copy / data.TRAIN_IMAGES
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(data.DataError) as e:
        data.load_split(str(tmp_path), "mnist", "train")
    assert str(e.value) == damaged(str(path), "mnist")


# --- A read-only data folder --------------------------------------------------------------------------


@pytest.mark.slow  # two runs of main.py, each starting TensorFlow
def test_main_read_only_folder_one_line_then_works_once_inverted(tmp_path, read_only):
    data_dir = write_fake_dataset(tmp_path / "data", n_train=20, n_test=10)
    folder = os.path.join(data_dir, "mnist")
    read_only(folder)
    args = ("--is_train", "True", "--batch_size", "8", "--max_steps", "0", "--data_dir", data_dir)
    r = run_unprivileged("main.py", *args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1] == "error: " + not_writable(folder, data_dir)
    assert "Traceback" not in r.stderr
    # What the message says: invert.py as a user who can write the folder; then the read-only folder is enough.
    os.chmod(folder, 0o755)
    pairs.write_pair(data_dir, "mnist", log=lambda s: None)
    read_only(folder, os.path.join(folder, data.INVERT_DIR))
    r = run_unprivileged("main.py", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]


def test_invert_other_write_failures_are_one_line(fake_data_dir, monkeypatch):
    def full(*_):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(data.np, "save", full)
    dst = pairs.pair_path(fake_data_dir, "mnist", data.TRAIN_IMAGES)
    with pytest.raises(data.DataError) as e:
        pairs.write_pair(fake_data_dir, "mnist", log=lambda s: None)
    assert str(e.value) == f"{dst}: cannot write (No space left on device)"
    assert os.listdir(os.path.dirname(dst)) == []
