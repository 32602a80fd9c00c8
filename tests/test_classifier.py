"""The evaluation classifier: a real (small) training run, its outputs, and the cache in the data directory."""

import json
import os
import time

import numpy as np
import pytest

from cogan_tf import data
from cogan_tf.evaluate import classifier

SMALL = classifier.Recipe(epochs=2, min_accuracy=0.95, batch_size=64)


def learnable_digits(n, seed=0):
    """Fake but learnable "digits": class k is a bright 7x7 block at its own place in a 3x4 layout,
    jittered by up to 2 pixels, on uniform noise. uint8 (n, 28, 28), labels (n,)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = rng.integers(0, 80, (n, 28, 28), dtype=np.uint8)
    for i, k in enumerate(y):
        r, c = divmod(int(k), 4)
        dr, dc = rng.integers(-2, 3, 2)
        top, left = np.clip(r * 9 + 1 + dr, 0, 21), np.clip(c * 7 + dc, 0, 21)
        x[i, top:top + 7, left:left + 7] = 255
    return x, y


def write_learnable_dataset(data_dir, dataset="mnist", n_train=1200, n_test=300):
    d = os.path.join(str(data_dir), dataset)
    for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        x, y = learnable_digits(n, seed)
        img, lab = data.SPLIT_FILES[split]
        data.write_idx(os.path.join(d, img), x)
        data.write_idx(os.path.join(d, lab), y)
    return str(data_dir)


def test_architecture_outputs_features_and_logits():
    model = classifier.build_model()
    feats, logits = model(np.zeros((3, 28, 28, 1), np.float32))
    assert feats.shape == (3, classifier.FEATURE_DIM) and logits.shape == (3, 10)
    # LeNet-sized: conv 832 + 51,264, dense 3136*256+256, logits 2570.
    assert model.count_params() == 832 + 51264 + 3136 * 256 + 256 + 2570


def test_small_training_run_reaches_stated_accuracy():
    """2 epochs on 1,200 learnable images must classify >= 95% of 300 unseen ones."""
    x, y = learnable_digits(1200, seed=1)
    xt, yt = learnable_digits(300, seed=2)
    start = time.time()
    clf = classifier.train(x, y, xt, yt, SMALL, log=lambda s: None)
    assert clf.test_accuracy >= 0.95, clf.test_accuracy
    assert time.time() - start < 30
    probs, feats = clf.predict(xt[:50])  # uint8 accepted, scaled to [0, 1]
    assert probs.shape == (50, 10) and feats.shape == (50, classifier.FEATURE_DIM)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(clf.predict(xt[:50].astype(np.float32) / 255.0)[0], probs, rtol=1e-5, atol=1e-6)
    assert clf.info["n_train"] == 1200 and clf.info["epochs"] == 2


def test_cache_is_written_reused_and_retrained(tmp_path, monkeypatch):
    data_dir = write_learnable_dataset(tmp_path / "data")
    logs = []
    clf = classifier.load_or_train(data_dir, "mnist", recipe=SMALL, log=logs.append)
    cache = classifier.cache_dir(data_dir, "mnist")
    assert sorted(os.listdir(cache)) == [classifier.INFO_FILE, classifier.WEIGHTS_FILE]
    with open(os.path.join(cache, classifier.INFO_FILE)) as f:
        info = json.load(f)
    assert info["test_accuracy"] == clf.test_accuracy >= 0.95 and info["dataset"] == "mnist"
    assert not [p for p in os.listdir(os.path.dirname(cache)) if p.startswith(".tmp")]

    # Reused: no training, same outputs.
    calls = []
    real_train = classifier.train
    monkeypatch.setattr(classifier, "train", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    x, _ = learnable_digits(20, seed=5)
    again = classifier.load_or_train(data_dir, "mnist", recipe=SMALL, log=logs.append)
    assert calls == []
    np.testing.assert_allclose(again.predict(x)[0], clf.predict(x)[0], rtol=1e-5, atol=1e-6)

    # Retrained on request, and when the cache is damaged.
    classifier.load_or_train(data_dir, "mnist", retrain=True, recipe=SMALL, log=logs.append)
    assert calls == [1]
    with open(os.path.join(cache, classifier.INFO_FILE), "w") as f:
        f.write("{not json")
    classifier.load_or_train(data_dir, "mnist", recipe=SMALL, log=logs.append)
    assert calls == [1, 1]
    assert any("unreadable" in line for line in logs)


def test_below_target_is_refused_and_not_cached(tmp_path):
    data_dir = write_learnable_dataset(tmp_path / "data", n_train=200, n_test=100)
    impossible = classifier.Recipe(epochs=1, min_accuracy=1.01, batch_size=64)
    with pytest.raises(classifier.ClassifierError, match=r"below the required 1.01; not cached"):
        classifier.load_or_train(data_dir, "mnist", recipe=impossible, log=lambda s: None)
    assert not os.path.exists(classifier.cache_dir(data_dir, "mnist"))


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(data.DataError, match="run `python download.py mnist` first"):
        classifier.load_or_train(str(tmp_path), "mnist", log=lambda s: None)


def test_targets_are_stated():
    assert classifier.RECIPES["mnist"].min_accuracy == 0.99
    assert classifier.RECIPES["fashion_mnist"].min_accuracy == 0.90
