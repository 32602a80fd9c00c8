"""The project's own digit classifier, for classifier-based evaluation (TF-GAN's ``mnist_score`` and
``mnist_frechet_distance`` use a frozen MNIST classifier the same way).

A small LeNet-like convnet, trained on the dataset's training images on first use, checked on its test
images and cached in ``<data_dir>/<dataset>/classifier/`` (weights + ``classifier.json`` with its test
accuracy). It is refused, not cached, when the test accuracy is below the dataset's target
(MNIST 99%, Fashion-MNIST 90%): a weak classifier would make every score meaningless.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from cogan_tf import data, fileio
from cogan_tf.errors import ClassifierError

CACHE_SUBDIR = "classifier"
WEIGHTS_FILE = "classifier.weights.h5"
INFO_FILE = "classifier.json"
# Bump when the architecture or training recipe changes: a cache of another version is retrained.
VERSION = 1
FEATURE_DIM = 256
N_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How the classifier of one dataset is trained, and the test accuracy it must reach."""

    epochs: int
    min_accuracy: float
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0


# MNIST: 3 epochs of this net reach ~99.1-99.2%; Fashion-MNIST is harder (LeNet-sized nets plateau
# around 90-91%), so it trains longer against a lower target.
RECIPES: Dict[str, Recipe] = {
    "mnist": Recipe(epochs=3, min_accuracy=0.99),
    "fashion_mnist": Recipe(epochs=8, min_accuracy=0.90),
}


def build_model(seed: int = 0):
    """LeNet-like: conv5x5(32)-pool-conv5x5(64)-pool-dense(256)-dropout-dense(10 logits).

    Returns a Keras model mapping images (N, 28, 28, 1) in [0, 1] to ``(features, logits)``; the
    256 ``features`` (the penultimate layer) are what the Fréchet distance is computed on.
    """
    import keras

    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input((28, 28, 1), name="images")
    x = keras.layers.Conv2D(32, 5, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(64, 5, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    features = keras.layers.Dense(FEATURE_DIM, activation="relu", name="features")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(features)
    logits = keras.layers.Dense(N_CLASSES, name="logits")(x)
    return keras.Model(inputs, [features, logits], name="digit_classifier")


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 0..255 or float [0, 1] images -> float32 (N, 28, 28, 1) in [0, 1]."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32, copy=False)


class Classifier:
    """A trained classifier: softmax probabilities and penultimate features of images in [0, 1]."""

    def __init__(self, model, info: Optional[dict] = None):
        import tensorflow as tf

        self.model = model
        self.info = dict(info or {})
        self._forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    @property
    def test_accuracy(self) -> Optional[float]:
        return self.info.get("test_accuracy")

    def predict(self, images: np.ndarray, batch_size: int = 1000) -> Tuple[np.ndarray, np.ndarray]:
        """``(probs (N, 10), features (N, 256))`` as float64 numpy arrays."""
        import tensorflow as tf

        x = to_float(images)
        probs, feats = [], []
        for i in range(0, len(x), batch_size):
            f, logits = self._forward(tf.constant(x[i:i + batch_size]))
            probs.append(tf.nn.softmax(logits).numpy())
            feats.append(f.numpy())
        if not probs:
            return np.zeros((0, N_CLASSES)), np.zeros((0, FEATURE_DIM))
        return np.concatenate(probs).astype(np.float64), np.concatenate(feats).astype(np.float64)

    def labels(self, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        return self.predict(images, batch_size)[0].argmax(axis=1)

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(self.labels(images) == np.asarray(labels)))


def train(x_train, y_train, x_test, y_test, recipe: Recipe, log: Callable[[str], None] = print) -> Classifier:
    """Train a fresh classifier on the given arrays; its ``info`` holds the test accuracy."""
    import keras
    import tensorflow as tf

    start = time.time()
    model = build_model(recipe.seed)
    x_train, x_test = to_float(x_train), to_float(x_test)
    y_train = np.asarray(y_train, np.int64)
    # Train the logits head only; the features output rides along without a loss.
    trainer = keras.Model(model.input, model.outputs[1])
    trainer.compile(optimizer=keras.optimizers.Adam(recipe.learning_rate),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ds = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
          .shuffle(len(x_train), seed=recipe.seed, reshuffle_each_iteration=True)
          .batch(recipe.batch_size).prefetch(tf.data.AUTOTUNE))
    for epoch in range(recipe.epochs):
        hist = trainer.fit(ds, epochs=1, verbose=0, shuffle=False)  # ds shuffles itself
        log(f" [classifier] epoch {epoch + 1}/{recipe.epochs}: loss {hist.history['loss'][-1]:.4f}")
    clf = Classifier(model)
    acc = clf.accuracy(x_test, y_test)
    clf.info = {
        "version": VERSION,
        "test_accuracy": acc,
        "n_train": int(len(x_train)),
        "n_test": int(len(x_test)),
        "train_seconds": round(time.time() - start, 1),
        **dataclasses.asdict(recipe),
    }
    log(f" [classifier] test accuracy {acc:.4f} ({len(x_test)} images), {clf.info['train_seconds']} s")
    return clf


def cache_dir(data_dir: str, dataset: str) -> str:
    return os.path.join(data.dataset_dir(data_dir, dataset), CACHE_SUBDIR)


def save(clf: Classifier, directory: str) -> str:
    """Weights and ``classifier.json``, written together into ``directory`` atomically."""
    with fileio.atomic_path(directory, is_dir=True) as tmp:
        clf.model.save_weights(os.path.join(tmp, WEIGHTS_FILE))
        with open(os.path.join(tmp, INFO_FILE), "w") as f:
            json.dump(clf.info, f, indent=2, sort_keys=True)
            f.write("\n")
    return directory


def load(directory: str) -> Classifier:
    """A cached classifier; :class:`ClassifierError` when the cache is missing, damaged or outdated."""
    info_path = os.path.join(directory, INFO_FILE)
    weights_path = os.path.join(directory, WEIGHTS_FILE)
    if not (os.path.isfile(info_path) and os.path.isfile(weights_path)):
        raise ClassifierError(f"{directory}: no cached classifier")
    try:
        with open(info_path) as f:
            info = json.load(f)
    except (OSError, ValueError) as e:
        raise ClassifierError(f"{info_path}: unreadable ({e})") from None
    if info.get("version") != VERSION:
        raise ClassifierError(f"{directory}: classifier version {info.get('version')}, this code is {VERSION}")
    model = build_model(info.get("seed", 0))
    try:
        model.load_weights(weights_path)
    except (OSError, ValueError) as e:
        raise ClassifierError(f"{weights_path}: unreadable ({e})") from None
    return Classifier(model, info)


def load_or_train(data_dir: str, dataset: str = "mnist", retrain: bool = False, recipe: Optional[Recipe] = None,
                  log: Callable[[str], None] = print) -> Classifier:
    """The cached classifier of ``dataset``, trained (and cached) first when there is none, when the
    cache is damaged or outdated, or when ``retrain``. Refuses one below ``recipe.min_accuracy``."""
    data.check_dataset_name(dataset)
    recipe = recipe or RECIPES[dataset]
    directory = cache_dir(data_dir, dataset)
    if not retrain:
        try:
            clf = load(directory)
        except ClassifierError as e:
            if os.path.exists(directory):
                log(f" [classifier] {e}: training a new one")
        else:
            if clf.test_accuracy is not None and clf.test_accuracy >= recipe.min_accuracy:
                log(f" [classifier] {directory}: test accuracy {clf.test_accuracy:.4f}")
                return clf
            log(f" [classifier] {directory}: cached accuracy {clf.test_accuracy} below "
                f"{recipe.min_accuracy}: training a new one")
    x_train, y_train = data.load_split(data_dir, dataset, "train")
    x_test, y_test = data.load_split(data_dir, dataset, "test")
    log(f" [classifier] training on {len(x_train)} {dataset} images ({recipe.epochs} epochs)")
    clf = train(x_train, y_train, x_test, y_test, recipe, log=log)
    clf.info["dataset"] = dataset
    if clf.test_accuracy < recipe.min_accuracy:
        raise ClassifierError(
            f"{dataset} classifier reached test accuracy {clf.test_accuracy:.4f}, below the required "
            f"{recipe.min_accuracy}; not cached (retry with more --classifier_epochs)")
    save(clf, directory)
    log(f" [classifier] cached in {directory}")
    return clf
