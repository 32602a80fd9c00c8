"""The project's own digit classifier, for classifier-based evaluation (TF-GAN's ``mnist_score`` and
``mnist_frechet_distance`` use a frozen MNIST classifier the same way).

A small LeNet-like convnet. The package ships one trained per dataset (``cogan_tf/classifiers/``, the
weights' sha256 pinned in :data:`SHIPPED`), so every user scores with the very same classifier and the
first evaluation trains nothing. ``--retrain_classifier`` trains one with the same recipe, caches it in
``<data_dir>/<dataset>/classifier/``, uses it and says how far it differs from the shipped one. A
retrained classifier below the dataset's target (MNIST 99%, Fashion-MNIST 90%) is refused: a weak
classifier would make every score meaningless.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
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


@dataclasses.dataclass(frozen=True)
class Shipped:
    """A classifier the package ships: its weights file's sha256, and its accuracy on the dataset's 10,000
    test images measured with exactly these (float16-rounded) weights by tools/ship_classifier.py."""

    sha256: str
    test_accuracy: float


SHIPPED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "classifiers")
# Trained with RECIPES (seed 0) by `python tools/ship_classifier.py --data_dir data mnist fashion_mnist`.
SHIPPED: Dict[str, Shipped] = {
    "mnist": Shipped(sha256="02088c87d8ac43fd7a978fe3f34e78e71e7bb3dec57aa68b368ca605b08ccf05", test_accuracy=0.9913),
    "fashion_mnist": Shipped(sha256="3e8a3e5b3079ea22d2f08121352ee06e74873761fc4d569611b049e28fcea589",
                             test_accuracy=0.919),
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


def shipped_path(dataset: str) -> str:
    return os.path.join(SHIPPED_DIR, f"{dataset}.npz")


def write_shipped(clf: Classifier, path: str) -> None:
    """The classifier's weights rounded to float16 (half the size) as a compressed .npz, w0, w1, ... in
    Keras's order; the float16 weights are the shipped classifier, measured as such."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{f"w{i}": w.astype(np.float16) for i, w in enumerate(clf.model.get_weights())})
    fileio.atomic_write_bytes(path, buf.getvalue())


def load_shipped(dataset: str, check: bool = True) -> Classifier:
    """The classifier the package ships for ``dataset``; its file is checked against the pinned sha256
    (``check``) and refused in one line when it differs."""
    path = shipped_path(dataset)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ClassifierError(f"{path}: {e.strerror}; reinstall cogan_tf, or pass --retrain_classifier") from None
    pinned = SHIPPED.get(dataset)
    if check and (pinned is None or hashlib.sha256(raw).hexdigest() != pinned.sha256):
        raise ClassifierError(f"{path}: not the shipped classifier (its sha256 differs from the pinned one); "
                              "reinstall cogan_tf, or pass --retrain_classifier")
    try:
        with np.load(io.BytesIO(raw)) as z:
            weights = [z[f"w{i}"].astype(np.float32) for i in range(len(z.files))]
        model = build_model(RECIPES[dataset].seed)
        model.set_weights(weights)
    except (OSError, ValueError, KeyError) as e:
        raise ClassifierError(f"{path}: unreadable ({e})") from None
    info = {**dataclasses.asdict(RECIPES[dataset]), "version": VERSION, "dataset": dataset, "shipped": path,
            "test_accuracy": pinned.test_accuracy if pinned else None}
    return Classifier(model, info)


def load_or_train(data_dir: str, dataset: str = "mnist", retrain: bool = False, recipe: Optional[Recipe] = None,
                  log: Callable[[str], None] = print) -> Classifier:
    """The shipped classifier of ``dataset``; with ``retrain``, a new one trained with ``recipe`` (the
    dataset's by default) on ``data_dir``, cached, compared with the shipped one in a line, and refused
    below ``recipe.min_accuracy``."""
    data.check_dataset_name(dataset)
    if not retrain:
        clf = load_shipped(dataset)
        log(f" [classifier] the shipped {dataset} classifier ({clf.info['shipped']}), test accuracy "
            f"{clf.test_accuracy:.4f}")
        return clf
    recipe = recipe or RECIPES[dataset]
    directory = cache_dir(data_dir, dataset)
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
    try:
        shipped = load_shipped(dataset)
    except ClassifierError as e:
        log(f" [classifier] not compared with the shipped one: {e}")
        return clf
    same = float(np.mean(clf.labels(x_test) == shipped.labels(x_test)))
    log(f" [classifier] retrained: test accuracy {clf.test_accuracy:.4f}, the shipped one "
        f"{shipped.test_accuracy:.4f}; they give the same label to {same:.2%} of the {len(x_test)} test images"
        + ("" if same == 1.0 else ": scores differ from those made with the shipped classifier (docs/RESULTS.md)"))
    return clf
